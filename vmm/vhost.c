/* vhost ioctls common to the vhost device models: see vhost.h. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vhost.h>

#include "vhost.h"
#include "virtio/virtq.h"

static int vhost_ioctl(struct vhost *v, unsigned long req, void *arg)
{
	return ioctl(v->fd, req, arg) < 0 ? -errno : 0;
}

int vhost_attach(struct vhost *v, int fd)
{
	int r;

	v->features = 0;
	v->fd = fd;
	r = vhost_ioctl(v, VHOST_SET_OWNER, NULL);
	if (r == -EBUSY)
		r = 0;   /* ours from an earlier VM (see vhost.h) */
	if (r == 0)
		r = vhost_ioctl(v, VHOST_GET_FEATURES, &v->features);
	if (r < 0)
		vhost_close(v);
	return r;
}

int vhost_open(struct vhost *v, const char *path,
	       int (*open_file)(const char *path, int flags, mode_t mode))
{
	int fd = open_file ? open_file(path, O_RDWR | O_CLOEXEC, 0) :
			     open(path, O_RDWR | O_CLOEXEC);

	v->features = 0;
	v->fd = -1;
	if (fd < 0)
		return -errno;
	return vhost_attach(v, fd);
}

void vhost_close(struct vhost *v)
{
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
}

int vhost_set_features(struct vhost *v, uint64_t features)
{
	return vhost_ioctl(v, VHOST_SET_FEATURES, &features);
}

int vhost_set_mem_table(struct vhost *v, const struct gmem *m)
{
	struct vhost_memory *mem = calloc(1, sizeof(*mem) +
					  GMEM_MAX_REGIONS * sizeof(mem->regions[0]));
	int r;

	if (!mem)
		return -ENOMEM;
	for (unsigned i = 0; i < m->nr_regions && i < GMEM_MAX_REGIONS; i++) {
		mem->regions[i].guest_phys_addr = m->region[i].gpa;
		mem->regions[i].memory_size = m->region[i].size;
		mem->regions[i].userspace_addr = (uint64_t)(uintptr_t)m->region[i].hva;
		mem->nregions++;
	}
	r = vhost_ioctl(v, VHOST_SET_MEM_TABLE, mem);
	free(mem);
	return r;
}

int vhost_vring_start(struct vhost *v, unsigned idx, const struct virtq *q,
		      int kick_fd, int call_fd)
{
	struct vhost_vring_state num = { .index = idx, .num = q->size };
	struct vhost_vring_state base = { .index = idx, .num = q->last_avail };
	struct vhost_vring_addr addr = {
		.index = idx,
		.desc_user_addr = (uint64_t)(uintptr_t)q->desc,
		.avail_user_addr = (uint64_t)(uintptr_t)q->avail,
		.used_user_addr = (uint64_t)(uintptr_t)q->used,
	};
	struct vhost_vring_file kick = { .index = idx, .fd = kick_fd };
	struct vhost_vring_file call = { .index = idx, .fd = call_fd };
	int r;

	if (!q->ready || !q->desc)
		return -EINVAL;
	r = vhost_ioctl(v, VHOST_SET_VRING_NUM, &num);
	if (r == 0)
		r = vhost_ioctl(v, VHOST_SET_VRING_BASE, &base);
	if (r == 0)
		r = vhost_ioctl(v, VHOST_SET_VRING_ADDR, &addr);
	if (r == 0)
		r = vhost_ioctl(v, VHOST_SET_VRING_CALL, &call);
	if (r == 0)
		r = vhost_ioctl(v, VHOST_SET_VRING_KICK, &kick);
	return r;
}

int vhost_vring_stop(struct vhost *v, unsigned idx)
{
	struct vhost_vring_state base = { .index = idx };
	struct vhost_vring_file f = { .index = idx, .fd = -1 };
	int r;

	vhost_ioctl(v, VHOST_SET_VRING_KICK, &f);
	vhost_ioctl(v, VHOST_SET_VRING_CALL, &f);
	r = vhost_ioctl(v, VHOST_GET_VRING_BASE, &base);
	return r < 0 ? r : (int)base.num;
}

int vhost_vring_sync(struct vhost *v, unsigned idx, struct virtq *q)
{
	struct vhost_vring_state base = { .index = idx };
	int r;

	if (!q->ready || !q->used)
		return -EINVAL;
	r = vhost_ioctl(v, VHOST_GET_VRING_BASE, &base);
	if (r < 0)
		return r;
	q->last_avail = (uint16_t)base.num;
	/* used->idx: the kernel wrote it, the guest only reads it. */
	q->used_idx = le16toh(__atomic_load_n((uint16_t *)((uint8_t *)q->used + 2),
					      __ATOMIC_ACQUIRE));
	return 0;
}

int vhost_net_set_backend(struct vhost *v, unsigned idx, int tap_fd)
{
	struct vhost_vring_file be = { .index = idx, .fd = tap_fd };

	return vhost_ioctl(v, VHOST_NET_SET_BACKEND, &be);
}
