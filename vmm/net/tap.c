/* Linux tap backend: see tap.h. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vireo/util.h>

#include "tap.h"

struct net_tap {
	struct net_backend be;
	int fd[NET_TAP_MAX_PAIRS];
	unsigned attached;       /* pairs attached (multi-queue) */
	bool multi;
};

static struct net_tap *to_tap(struct net_backend *be)
{
	return (struct net_tap *)be;
}

unsigned net_tap_offload_flags(unsigned off)
{
	unsigned f = 0;

	if (off & NET_OFF_CSUM) {
		f |= TUN_F_CSUM;
		/* Segmentation offloads need partial checksums. */
		if (off & NET_OFF_TSO4)
			f |= TUN_F_TSO4;
		if (off & NET_OFF_TSO6)
			f |= TUN_F_TSO6;
		if ((off & NET_OFF_ECN) && (off & (NET_OFF_TSO4 | NET_OFF_TSO6)))
			f |= TUN_F_TSO_ECN;
	}
	return f;
}

static ssize_t tap_send(struct net_backend *be, unsigned pair,
			const struct iovec *iov, int iovcnt)
{
	struct net_tap *t = to_tap(be);
	ssize_t n;

	if (pair >= be->nr_pairs)
		return -EINVAL;
	do
		n = writev(t->fd[pair], iov, iovcnt);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static ssize_t tap_recv(struct net_backend *be, unsigned pair,
			const struct iovec *iov, int iovcnt)
{
	struct net_tap *t = to_tap(be);
	ssize_t n;

	if (pair >= be->nr_pairs)
		return -EINVAL;
	do
		n = readv(t->fd[pair], iov, iovcnt);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static int tap_fd(struct net_backend *be, unsigned pair)
{
	return pair < be->nr_pairs ? to_tap(be)->fd[pair] : -1;
}

static int tap_set_offloads(struct net_backend *be, unsigned off)
{
	struct net_tap *t = to_tap(be);
	unsigned long f = net_tap_offload_flags(off);

	/* The flags are the device's (shared by its queues), but set them on
	 * each fd: a detached queue keeps its own copy. */
	for (unsigned i = 0; i < be->nr_pairs; i++)
		if (ioctl(t->fd[i], TUNSETOFFLOAD, f) < 0)
			return -errno;
	return 0;
}

static int tap_set_pairs(struct net_backend *be, unsigned n)
{
	struct net_tap *t = to_tap(be);

	if (!t->multi || n == 0 || n > be->nr_pairs)
		return n == 1 || !t->multi ? 0 : -EINVAL;
	for (unsigned i = 1; i < be->nr_pairs; i++) {
		struct ifreq ifr = { 0 };
		bool want = i < n;

		if (want == (i < t->attached))
			continue;
		ifr.ifr_flags = want ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
		if (ioctl(t->fd[i], TUNSETQUEUE, &ifr) < 0)
			return -errno;
	}
	t->attached = n;
	return 0;
}

static void tap_close(struct net_backend *be)
{
	struct net_tap *t = to_tap(be);

	for (unsigned i = 0; i < NET_TAP_MAX_PAIRS; i++)
		if (t->fd[i] >= 0)
			close(t->fd[i]);
	free(t);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.recv = tap_recv,
	.fd = tap_fd,
	.set_offloads = tap_set_offloads,
	.set_pairs = tap_set_pairs,
	.tap_fd = tap_fd,
	.close = tap_close,
};

static struct net_tap *tap_alloc(unsigned pairs)
{
	struct net_tap *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->be.ops = &tap_ops;
	t->be.nr_pairs = pairs;
	t->be.tx_offloads = NET_OFF_CSUM | NET_OFF_TSO4 | NET_OFF_TSO6 | NET_OFF_ECN;
	t->attached = pairs;
	t->multi = pairs > 1;
	for (unsigned i = 0; i < NET_TAP_MAX_PAIRS; i++)
		t->fd[i] = -1;
	return t;
}

/* vnet header size, no offloads yet, non-blocking. */
static int tap_setup_fd(const char *name, int fd)
{
	int sz = VIRTIO_NET_HDR_LEN, fl;

	if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
		verr("tap %s: cannot set the virtio-net header size: %s", name, strerror(errno));
		return -errno;
	}
	if (ioctl(fd, TUNSETOFFLOAD, 0UL) < 0) {
		verr("tap %s: cannot set its offloads: %s", name, strerror(errno));
		return -errno;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		verr("tap %s: cannot make it non-blocking: %s", name, strerror(errno));
		return -errno;
	}
	return 0;
}

static int tap_set_up(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	if (s < 0)
		return -errno;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0))
		r = -errno;
	close(s);
	return r;
}

int net_tap_open(const char *name, unsigned pairs, struct net_backend **out)
{
	struct net_tap *t;
	bool existed = if_nametoindex(name) != 0;
	int r = 0;

	if (pairs == 0 || pairs > NET_TAP_MAX_PAIRS || strlen(name) >= IFNAMSIZ) {
		verr("tap %s: bad name or queue count", name);
		return -EINVAL;
	}
	t = tap_alloc(pairs);
	if (!t)
		return -ENOMEM;
	snprintf(t->be.name, sizeof(t->be.name), "%s", name);
	for (unsigned i = 0; i < pairs; i++) {
		struct ifreq ifr = { 0 };
		int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

		if (fd < 0) {
			r = -errno;
			verr("tap %s: cannot open /dev/net/tun: %s", name, strerror(errno));
			goto fail;
		}
		t->fd[i] = fd;
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
				(pairs > 1 ? IFF_MULTI_QUEUE : 0);
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			r = -errno;
			if (errno == EPERM && !existed)
				verr("tap %s does not exist and creating it needs root "
				     "(CAP_NET_ADMIN): create it with `ip tuntap add dev %s "
				     "mode tap user USER%s`", name, name,
				     pairs > 1 ? " multi_queue" : "");
			else if (errno == EPERM)
				verr("tap %s: not allowed to open it (owned by another user?)",
				     name);
			else if (errno == EINVAL && existed)
				verr("tap %s: cannot attach to it: not a tap, or its "
				     "multi_queue setting does not match queues=%u", name, pairs);
			else if (errno == EBUSY)
				verr("tap %s is in use by another process", name);
			else
				verr("tap %s: cannot attach: %s", name, strerror(errno));
			goto fail;
		}
		r = tap_setup_fd(name, fd);
		if (r < 0)
			goto fail;
	}
	if (!existed) {
		r = tap_set_up(name);
		if (r < 0) {
			verr("tap %s: cannot set it up: %s", name, strerror(-r));
			goto fail;
		}
	}
	vdebug("tap %s: %s, %u queue pair(s)", name, existed ? "opened" : "created", pairs);
	*out = &t->be;
	return 0;
fail:
	tap_close(&t->be);   /* a tap we created goes away with its fds */
	return r;
}

int net_tap_open_fd(int fd, unsigned pairs, struct net_backend **out)
{
	struct ifreq ifr = { 0 };
	struct net_tap *t;
	char nm[32];
	int r, dupfd;

	snprintf(nm, sizeof(nm), "fd %d", fd);
	if (pairs != 1) {
		verr("tap %s: fd= gives one queue pair only (queues=1)", nm);
		return -EINVAL;
	}
	if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
		int e = errno;

		verr("tap %s: not an open tap file descriptor: %s", nm, strerror(e));
		return e == EBADF ? -EBADF : -EINVAL;
	}
	if ((ifr.ifr_flags & (IFF_TAP | IFF_TUN)) != IFF_TAP ||
	    !(ifr.ifr_flags & IFF_NO_PI) || !(ifr.ifr_flags & IFF_VNET_HDR)) {
		verr("tap %s (%s): open it with IFF_TAP, IFF_NO_PI and IFF_VNET_HDR", nm,
		     ifr.ifr_name);
		return -EINVAL;
	}
	/* Our own descriptor, so that closing the device never closes the
	 * number the parent may reuse. */
	dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dupfd < 0)
		return -errno;
	t = tap_alloc(1);
	if (!t) {
		close(dupfd);
		return -ENOMEM;
	}
	t->fd[0] = dupfd;
	snprintf(t->be.name, sizeof(t->be.name), "%s", ifr.ifr_name);
	r = tap_setup_fd(t->be.name, dupfd);
	if (r < 0) {
		tap_close(&t->be);
		return r;
	}
	*out = &t->be;
	return 0;
}

int net_tap_dup(struct net_backend *kept, struct net_backend **out)
{
	struct net_tap *k = to_tap(kept), *t = tap_alloc(kept->nr_pairs);
	int r = 0;

	if (!t)
		return -ENOMEM;
	snprintf(t->be.name, sizeof(t->be.name), "%s", kept->name);
	for (unsigned i = 0; i < kept->nr_pairs && r == 0; i++) {
		t->fd[i] = fcntl(k->fd[i], F_DUPFD_CLOEXEC, 3);
		if (t->fd[i] < 0) {
			r = -errno;
			verr("tap %s: cannot duplicate its descriptor: %s", t->be.name,
			     strerror(errno));
			break;
		}
		r = tap_setup_fd(t->be.name, t->fd[i]);
		if (r == 0 && t->multi) {
			/* A queue the last driver detached comes back; an
			 * attached one says EINVAL. */
			struct ifreq ifr = { .ifr_flags = IFF_ATTACH_QUEUE };

			if (ioctl(t->fd[i], TUNSETQUEUE, &ifr) < 0 && errno != EINVAL) {
				r = -errno;
				verr("tap %s: cannot attach queue %u again: %s", t->be.name, i,
				     strerror(errno));
			}
		}
	}
	if (r < 0) {
		tap_close(&t->be);
		return r;
	}
	*out = &t->be;
	return 0;
}
