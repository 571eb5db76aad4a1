#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vireo/util.h>

#include "devices.h"
#include "hold.h"
#include "net/tap.h"
#include "snapshot.h"
#include "virtio/blk_backend.h"
#include "virtio/vsock.h"

#define HOLD_MAX_FILES 8

struct hold_file {
	const char *path;
	int flags;       /* O_ACCMODE part */
	int fd;          /* -1: err */
	int err;
};

static struct {
	bool active;
	struct hold_file file[HOLD_MAX_FILES];
	unsigned nr_files;
	struct blk_backend *disk[VIRTIO_OPTS_MAX_DISKS];
	unsigned nr_disks;
	/* --net: taps opened by name (before the sandbox's network
	 * namespace), /dev/vhost-net per pair (fd, or -errno) */
	struct net_backend *tap[VIRTIO_OPTS_MAX_NETS];
	int vhost_net[VIRTIO_OPTS_MAX_NETS][VIRTIO_NET_MAX_PAIRS];
	bool vhost_held[VIRTIO_OPTS_MAX_NETS];
} hold;

static void hold_add_file(const char *path, int flags, mode_t mode)
{
	struct hold_file *f = &hold.file[hold.nr_files++];

	f->path = path;
	f->flags = flags & O_ACCMODE;
	f->fd = open(path, flags | O_CLOEXEC, mode);
	f->err = f->fd < 0 ? errno : 0;
}

int hold_open_net(const struct vmm_opts *o)
{
	for (unsigned i = 0; i < o->virtio.nr_nets; i++) {
		const struct virtio_net_opt *n = &o->virtio.net[i];
		int r;

		if (n->user || !n->tap[0])
			continue;
		r = net_tap_open(n->tap, n->queues, &hold.tap[i]);
		if (r < 0) {
			hold_close();
			return r;
		}
	}
	return 0;
}

void hold_forget(void)
{
	for (unsigned i = 0; i < VIRTIO_OPTS_MAX_NETS; i++)
		if (hold.tap[i])
			net_backend_close(hold.tap[i]);
	memset(hold.tap, 0, sizeof(hold.tap));
}

/* One /dev/vhost-net per pair of every --net that may use it. */
static void hold_open_vhost_net(const struct vmm_opts *o)
{
	for (unsigned i = 0; i < o->virtio.nr_nets; i++) {
		const struct virtio_net_opt *n = &o->virtio.net[i];

		if (n->user || n->vhost == VIRTIO_NET_VHOST_OFF)
			continue;
		hold.vhost_held[i] = true;
		for (unsigned p = 0; p < n->queues && p < VIRTIO_NET_MAX_PAIRS; p++) {
			int fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);

			hold.vhost_net[i][p] = fd >= 0 ? fd : -errno;
		}
	}
}

int hold_open(const struct vmm_opts *o)
{
	hold.active = true;
	hold_add_file("/dev/kvm", O_RDWR, 0);
	if (o->kernel)
		hold_add_file(o->kernel, O_RDONLY, 0);
	if (snapshot_memory_path())
		hold_add_file(snapshot_memory_path(), O_RDONLY, 0);
	if (o->initrd)
		hold_add_file(o->initrd, O_RDONLY, 0);
	if (o->console == VMM_CONSOLE_FILE)
		hold_add_file(o->console_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (o->virtio.vsock)
		hold_add_file(VIRTIO_VSOCK_DEFAULT_DEV, O_RDWR, 0);
	hold_open_vhost_net(o);
	for (unsigned i = 0; i < o->virtio.nr_disks; i++) {
		int r = devices_open_disk(&o->virtio.disk[i], &hold.disk[i]);
		if (r) {
			hold_close();
			return r;
		}
		hold.nr_disks = i + 1;
	}
	return 0;
}

void hold_close(void)
{
	for (unsigned i = 0; i < hold.nr_files; i++)
		if (hold.file[i].fd >= 0)
			close(hold.file[i].fd);
	for (unsigned i = 0; i < hold.nr_disks; i++)
		blk_backend_close(hold.disk[i]);
	hold_forget();
	for (unsigned i = 0; i < VIRTIO_OPTS_MAX_NETS; i++)
		for (unsigned p = 0; hold.vhost_held[i] && p < VIRTIO_NET_MAX_PAIRS; p++)
			if (hold.vhost_net[i][p] >= 0)
				close(hold.vhost_net[i][p]);
	memset(&hold, 0, sizeof(hold));
}

int hold_net_tap(unsigned index, struct net_backend **out)
{
	int r;

	if (index >= VIRTIO_OPTS_MAX_NETS || !hold.tap[index])
		return 0;
	r = net_tap_dup(hold.tap[index], out);
	return r < 0 ? r : 1;
}

int hold_vhost_net(unsigned index, unsigned pair, int *fd)
{
	int k;

	if (!hold.active || index >= VIRTIO_OPTS_MAX_NETS || !hold.vhost_held[index] ||
	    pair >= VIRTIO_NET_MAX_PAIRS)
		return 0;
	k = hold.vhost_net[index][pair];
	if (k < 0) {
		*fd = k;
		return 1;
	}
	*fd = fcntl(k, F_DUPFD_CLOEXEC, 3);
	if (*fd < 0)
		*fd = -errno;
	return 1;
}

int hold_open_file(const char *path, int flags, mode_t mode)
{
	for (unsigned i = 0; hold.active && i < hold.nr_files; i++) {
		struct hold_file *f = &hold.file[i];
		int fd;

		if (strcmp(f->path, path) || f->flags != (flags & O_ACCMODE))
			continue;
		if (f->fd < 0) {
			errno = f->err;
			return -1;
		}
		fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 3);
		if (fd >= 0 && (flags & O_TRUNC) &&
		    (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET) < 0)) {
			/* a pipe or a device: nothing to empty */
		}
		return fd;
	}
	return open(path, flags, mode);
}

/* ---- a kept disk, lent to one VM ------------------------------------------------ */

struct hold_be {
	struct blk_backend b;
	struct blk_backend *kept;
};

static struct blk_backend *kept(struct blk_backend *b)
{
	return ((struct hold_be *)b)->kept;
}

static int hb_run(struct blk_backend *b, struct blk_io *io)
{
	return kept(b)->ops->run(kept(b), io);
}

static int hb_lock(struct blk_backend *b, bool on, char *err, size_t errlen)
{
	return kept(b)->ops->lock(kept(b), on, err, errlen);
}

static int hb_snapshot(struct blk_backend *b, enum blk_snap_op op, const char *name,
		       uint64_t *size, char *err, size_t errlen)
{
	int r = kept(b)->ops->snapshot(kept(b), op, name, size, err, errlen);

	b->size = kept(b)->size;
	return r;
}

static int hb_submit(struct blk_backend *b, struct blk_io *io)
{
	return kept(b)->ops->submit(kept(b), io);
}

static int hb_event_fd(struct blk_backend *b)
{
	return kept(b)->ops->event_fd(kept(b));
}

static int hb_complete(struct blk_backend *b)
{
	return kept(b)->ops->complete(kept(b));
}

static void hb_close(struct blk_backend *b)
{
	free(b);   /* the device drained its requests before closing */
}

int hold_disk(unsigned index, struct blk_backend **out)
{
	struct blk_backend *k;
	struct hold_be *hb;

	if (!hold.active || index >= hold.nr_disks)
		return 0;
	k = hold.disk[index];
	hb = calloc(1, sizeof(*hb) + sizeof(struct blk_backend_ops));
	if (!hb)
		return -ENOMEM;
	struct blk_backend_ops *ops = (struct blk_backend_ops *)(hb + 1);
	*ops = (struct blk_backend_ops){
		.run = hb_run,
		.submit = k->ops->submit ? hb_submit : NULL,
		.event_fd = k->ops->event_fd ? hb_event_fd : NULL,
		.complete = k->ops->complete ? hb_complete : NULL,
		.close = hb_close,
		.snapshot = k->ops->snapshot ? hb_snapshot : NULL,
		.lock = k->ops->lock ? hb_lock : NULL,
	};
	hb->b = *k;
	hb->b.ops = ops;
	hb->kept = k;
	*out = &hb->b;
	return 1;
}
