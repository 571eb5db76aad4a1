/* Creating the virtio devices of a VM from vireo-vmm's options. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <vireo/util.h>

#include "../loop.h"
#include "../vm.h"
#include "blk.h"
#include "console.h"
#include "pci.h"
#include "rng.h"
#include "vmm.h"
#include "virtio_opts.h"

#define VV_MAX_DEVS  (VIRTIO_OPTS_MAX_DISKS + 2)
#define VV_MAX_WATCH (VV_MAX_DEVS * 2)

struct vv_watch {
	int fd;
	void (*cb)(void *opaque);
	void *opaque;
};

struct virtio_vmm {
	struct vm *vm;
	struct virtio_env env;
	struct virtio_pci *dev[VV_MAX_DEVS];
	unsigned nr;
	struct virtio_dev *console;
	struct vv_watch *watch[VV_MAX_WATCH];
};

static void vv_watch_fn(void *opaque, uint32_t events)
{
	struct vv_watch *w = opaque;

	(void)events;
	w->cb(w->opaque);
}

static int vv_watch_fd(void *loop, int fd, void (*cb)(void *), void *opaque)
{
	struct virtio_vmm *v = loop;
	struct vv_watch *w;
	int r;

	for (unsigned i = 0; i < VV_MAX_WATCH; i++) {
		if (v->watch[i])
			continue;
		w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		*w = (struct vv_watch){ fd, cb, opaque };
		r = evloop_add(v->vm->loop, fd, EPOLLIN, vv_watch_fn, w);
		if (r < 0) {
			free(w);
			return r;
		}
		v->watch[i] = w;
		return 0;
	}
	return -ENOSPC;
}

static void vv_unwatch_fd(void *loop, int fd)
{
	struct virtio_vmm *v = loop;

	for (unsigned i = 0; i < VV_MAX_WATCH; i++) {
		if (v->watch[i] && v->watch[i]->fd == fd) {
			evloop_del(v->vm->loop, fd);
			free(v->watch[i]);
			v->watch[i] = NULL;
		}
	}
}

static void vv_con_write(void *opaque, const void *buf, size_t len)
{
	struct vm *vm = opaque;

	console_write(&vm->console, buf, len);
}

static void vv_con_room(void *opaque)
{
	struct vm *vm = opaque;
	uint64_t one = 1;

	/* The loop resumes reading input if it had paused it. */
	if (write(vm->console_wake_efd, &one, sizeof(one)) < 0) {
		/* the loop is woken by the next input anyway */
	}
}

/* Refuse to hand a qcow2 file to the guest as a raw disk: the guest could
 * then rewrite the header to point at host files as backing images. */
static int vv_check_format(const struct virtio_disk_opt *d)
{
	uint8_t magic[4] = { 0 };
	int fd;

	if (d->format == VIRTIO_DISK_QCOW2 || d->format == VIRTIO_DISK_RAW)
		return 0;
	fd = open(d->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;   /* blk_raw_open reports it */
	if (read(fd, magic, 4) == 4 && !memcmp(magic, "QFI\xfb", 4)) {
		close(fd);
		verr("disk %s (%s) looks like a qcow2 image; say format=qcow2 (or "
		     "format=raw to give the guest the file as it is)", d->id, d->path);
		return -EINVAL;
	}
	close(fd);
	return 0;
}

static int vv_add(struct virtio_vmm *v, struct virtio_dev *d)
{
	int r = virtio_pci_create(v->vm, d, &v->dev[v->nr]);

	if (r == 0)
		v->nr++;
	return r;
}

int virtio_vmm_create(struct vm *vm)
{
	const struct virtio_opts *o = &vm->opts->virtio;
	struct virtio_vmm *v = calloc(1, sizeof(*v));
	struct virtio_dev *d;
	int r = 0;

	if (!v)
		return -ENOMEM;
	vm->virtio = v;
	v->vm = vm;
	v->env.mem = &vm->mem;
	v->env.loop = v;
	v->env.watch_fd = vv_watch_fd;
	v->env.unwatch_fd = vv_unwatch_fd;

	for (unsigned i = 0; i < o->nr_disks && r == 0; i++) {
		const struct virtio_disk_opt *disk = &o->disk[i];
		struct blk_backend *be;

		r = vv_check_format(disk);
		if (r == 0 && disk->format == VIRTIO_DISK_QCOW2)
			r = blk_img_open(disk->path, "qcow2",
					 disk->readonly ? BLK_IMG_READONLY : 0, &be);
		else if (r == 0)
			r = blk_raw_open(disk->path, disk->readonly ? BLK_RAW_READONLY : 0, &be);
		if (r == 0)
			r = virtio_blk_create(&v->env, be, disk->id,
					      disk->serial[0] ? disk->serial : NULL, &d);
		if (r == 0) {
			vdebug("disk %s: %s, %llu bytes%s, %s I/O", disk->id, disk->path,
			       (unsigned long long)be->size, disk->readonly ? ", read-only" : "",
			       blk_img_image(be) ? "image-library" : blk_raw_engine(be));
			r = vv_add(v, d);
		}
	}
	if (r == 0 && o->console) {
		struct virtio_console_backend be = {
			.write = vv_con_write, .rx_room = vv_con_room, .opaque = vm,
		};
		r = virtio_console_create(&v->env, &be, 0, 0, &d);
		if (r == 0) {
			v->console = d;
			r = vv_add(v, d);
			if (r < 0)
				v->console = NULL;
		}
	}
	if (r == 0 && o->rng) {
		r = virtio_rng_create(&v->env, o->rng_rate, &d);
		if (r == 0)
			r = vv_add(v, d);
	}
	return r;
}

void virtio_vmm_destroy(struct vm *vm)
{
	struct virtio_vmm *v = vm->virtio;

	if (!v)
		return;
	for (unsigned i = 0; i < v->nr; i++)
		virtio_pci_destroy(v->dev[i]);
	for (unsigned i = 0; i < VV_MAX_WATCH; i++)
		if (v->watch[i])
			vv_unwatch_fd(v, v->watch[i]->fd);
	free(v);
	vm->virtio = NULL;
}

struct virtio_dev *virtio_vmm_console(struct vm *vm)
{
	return vm->virtio ? vm->virtio->console : NULL;
}
