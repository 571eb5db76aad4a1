/*
 * A small helper for the kernel's vhost devices (/dev/vhost-vsock, later
 * /dev/vhost-net): the common ioctls a device model needs to hand its
 * virtqueues to the host kernel.  Device-specific ioctls (the vsock CID,
 * the net backend) stay in the device.
 *
 * Order (Documentation of the vhost ABI, linux/vhost.h): vhost_open (owner,
 * features offered), vhost_set_features (what the driver accepted),
 * vhost_set_mem_table (guest RAM), then per queue vhost_vring_start; on a
 * driver reset or teardown vhost_vring_stop per queue.  Functions return 0
 * or -errno; none prints.
 */
#ifndef VIREO_VMM_VHOST_H
#define VIREO_VMM_VHOST_H

#include <stdint.h>

#include "gmem.h"

struct virtq;

struct vhost {
	int fd;
	uint64_t features;      /* VHOST_GET_FEATURES */
};

/* Open @path, become its owner and read its features.  -ENOENT, -EACCES,
 * ... from open(); -ENOTTY when @path is not a vhost device. */
int vhost_open(struct vhost *v, const char *path);
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

#endif
