/* vhost-net: see vhost.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <vireo/util.h>

#include "vhost.h"

int net_vhost_open(void)
{
	int fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC), e;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, VHOST_SET_OWNER, NULL) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

uint64_t net_vhost_features(int fd)
{
	uint64_t f = 0;

	if (ioctl(fd, VHOST_GET_FEATURES, &f) < 0)
		return 0;
	return f;
}

static int vhost_mem(int fd, const struct gmem *mem)
{
	union {
		struct vhost_memory hdr;
		uint8_t bytes[sizeof(struct vhost_memory) +
			      GMEM_MAX_REGIONS * sizeof(struct vhost_memory_region)];
	} m;

	memset(&m, 0, sizeof(m));
	m.hdr.nregions = VIREO_MIN(mem->nr_regions, (unsigned)GMEM_MAX_REGIONS);
	for (unsigned i = 0; i < m.hdr.nregions; i++) {
		m.hdr.regions[i].guest_phys_addr = mem->region[i].gpa;
		m.hdr.regions[i].memory_size = mem->region[i].size;
		m.hdr.regions[i].userspace_addr = (uint64_t)(uintptr_t)mem->region[i].hva;
	}
	return ioctl(fd, VHOST_SET_MEM_TABLE, &m.hdr) < 0 ? -errno : 0;
}

int net_vhost_start(int fd, const char *name, uint64_t features,
		    const struct gmem *mem, const struct net_vhost_ring r[2],
		    int tap_fd)
{
	const char *what = "features";
	int e;

	if (ioctl(fd, VHOST_SET_FEATURES, &features) < 0)
		goto fail;
	what = "memory table";
	if ((e = vhost_mem(fd, mem)) < 0) {
		errno = -e;
		goto fail;
	}
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_state num = { i, r[i].num }, base = { i, r[i].base };
		struct vhost_vring_addr a = {
			.index = i,
			.desc_user_addr = (uint64_t)(uintptr_t)r[i].desc,
			.avail_user_addr = (uint64_t)(uintptr_t)r[i].avail,
			.used_user_addr = (uint64_t)(uintptr_t)r[i].used,
		};
		struct vhost_vring_file kick = { i, r[i].kick }, call = { i, r[i].call };

		what = "ring";
		if (ioctl(fd, VHOST_SET_VRING_NUM, &num) < 0 ||
		    ioctl(fd, VHOST_SET_VRING_BASE, &base) < 0 ||
		    ioctl(fd, VHOST_SET_VRING_ADDR, &a) < 0)
			goto fail;
		what = "doorbells";
		if (ioctl(fd, VHOST_SET_VRING_KICK, &kick) < 0 ||
		    ioctl(fd, VHOST_SET_VRING_CALL, &call) < 0)
			goto fail;
	}
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file be = { i, tap_fd };

		what = "backend";
		if (ioctl(fd, VHOST_NET_SET_BACKEND, &be) < 0)
			goto fail;
	}
	return 0;
fail:
	e = -errno;
	verr("%s: vhost-net: cannot set the %s: %s", name, what, strerror(errno));
	net_vhost_stop(fd, NULL);
	return e;
}

void net_vhost_stop(int fd, uint16_t base[2])
{
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file be = { i, -1 };
		struct vhost_vring_state st = { i, 0 };

		ioctl(fd, VHOST_NET_SET_BACKEND, &be);
		if (ioctl(fd, VHOST_GET_VRING_BASE, &st) == 0 && base)
			base[i] = (uint16_t)st.num;
	}
}
