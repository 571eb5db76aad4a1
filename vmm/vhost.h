/*
 * The one helper for the kernel's vhost devices (/dev/vhost-vsock,
 * /dev/vhost-net): the ioctls a device model needs to hand its virtqueues
 * to the host kernel.  The vsock CID stays in the vsock device.
 *
 * Order (Documentation of the vhost ABI, linux/vhost.h): vhost_attach or
 * vhost_open (owner, features offered), vhost_set_features (what the
 * driver accepted),
 * vhost_set_mem_table (guest RAM), then per queue vhost_vring_start; on a
 * driver reset or teardown vhost_vring_stop per queue.  Functions return 0
 * or -errno; none prints.
 */
#ifndef VIREO_VMM_VHOST_H
#define VIREO_VMM_VHOST_H

#include <stdint.h>
#include <sys/types.h>

#include "gmem.h"

struct virtq;

struct vhost {
	int fd;
	uint64_t features;      /* VHOST_GET_FEATURES */
};

/* Take @fd (an open vhost node; closed on failure), become its owner and
 * read its features.  An fd this process already owns (one kept across
 * VM restarts, see vmm/hold.h) is accepted as it is: the kernel refuses a
 * second VHOST_SET_OWNER with EBUSY, and no other process holds it.
 * -ENOTTY when @fd is not a vhost device. */
int vhost_attach(struct vhost *v, int fd);
/* Open @path with @open_file (open(2) when NULL), then vhost_attach.
 * -ENOENT, -EACCES, ... from the open. */
int vhost_open(struct vhost *v, const char *path,
	       int (*open_file)(const char *path, int flags, mode_t mode));
void vhost_close(struct vhost *v);

int vhost_set_features(struct vhost *v, uint64_t features);
/* One vhost memory region per guest RAM region (host addresses). */
int vhost_set_mem_table(struct vhost *v, const struct gmem *m);
/* Ring @idx from an enabled queue q (its host views, size and next
 * available index), kicked through @kick_fd, interrupting through
 * @call_fd. */
int vhost_vring_start(struct vhost *v, unsigned idx, const struct virtq *q,
		      int kick_fd, int call_fd);
/* Detach ring @idx's eventfds; returns the next available index vhost
 * would have used (>= 0) or -errno. */
int vhost_vring_stop(struct vhost *v, unsigned idx);
/* For a save, the ring's work stopped (its backend detached): bring
 * @q's indices up to date from vhost (the next available entry, from
 * VHOST_GET_VRING_BASE, and the used index the kernel wrote to the guest's
 * ring), leaving its eventfds in place.  0 or -errno. */
int vhost_vring_sync(struct vhost *v, unsigned idx, struct virtq *q);
/* vhost-net: the tap behind queue @idx (-1 detaches it, stopping the
 * kernel's work on that queue). */
int vhost_net_set_backend(struct vhost *v, unsigned idx, int tap_fd);

#endif
