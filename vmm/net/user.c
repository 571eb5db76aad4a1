#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <vireo/util.h>

#include "../loop.h"
#include "user.h"

#define NET_USER_QLEN  256u      /* frames waiting for the guest */
#define NET_USER_SLOT  2048u     /* slirp's frames: MTU 1500 + Ethernet */

struct net_user_timer {
	SlirpTimerId id;
	SlirpTimerCb cb;             /* timer_new's kind; NULL for opaque ones */
	void *cb_opaque;
	int64_t expire_ms;           /* -1: not armed */
	struct net_user_timer *next;
};

struct net_user_watch {
	int fd;
	uint32_t events;
};

struct net_user {
	struct net_backend be;
	Slirp *slirp;
	struct evloop *loop;
	int epfd;                    /* libslirp's sockets */
	int tfd;                     /* its timers, and deferred work */
	int rx_efd;                  /* readable while frames wait */
	bool work_pending;
	/* Frames to the guest: a ring of fixed slots (no allocation per frame). */
	uint8_t (*slot)[NET_USER_SLOT];
	uint16_t len[NET_USER_QLEN];
	unsigned head, count;
	/* What libslirp asked to poll, and what the epoll set holds. */
	struct pollfd *pfd;
	unsigned npfd, pfd_cap;
	struct net_user_watch *watch;
	unsigned nwatch, watch_cap;
	struct net_user_timer *timers;
	uint8_t tx[VIRTIO_NET_HDR_LEN + NET_FRAME_MAX];
	uint64_t drop_to_guest, drop_from_guest;
};

static struct net_user *to_user(struct net_backend *be)
{
	return (struct net_user *)be;
}

/* ---- frames to the guest ------------------------------------------------------- */

static void net_user_rx_signal(struct net_user *u, bool ready)
{
	uint64_t v = 1;

	if (ready) {
		if (write(u->rx_efd, &v, sizeof(v)) < 0) {
			/* counter saturated: still readable */
		}
	} else if (read(u->rx_efd, &v, sizeof(v)) < 0) {
		/* not readable: nothing to clear */
	}
}

static ssize_t net_user_slirp_send(const void *buf, size_t len, void *opaque)
{
	struct net_user *u = opaque;
	unsigned tail;

	if (len > NET_USER_SLOT || u->count == NET_USER_QLEN) {
		u->drop_to_guest++;
		return (ssize_t)len;   /* TCP resends; slirp is not stopped */
	}
	tail = (u->head + u->count) % NET_USER_QLEN;
	memcpy(u->slot[tail], buf, len);
	u->len[tail] = (uint16_t)len;
	if (u->count++ == 0)
		net_user_rx_signal(u, true);
	return (ssize_t)len;
}

static ssize_t net_user_recv(struct net_backend *be, unsigned pair, const struct iovec *iov,
			     int iovcnt)
{
	struct net_user *u = to_user(be);
	static const uint8_t hdr[VIRTIO_NET_HDR_LEN];
	size_t total, done = 0;
	const uint8_t *frame;
	unsigned len;

	if (pair != 0 || u->count == 0)
		return -EAGAIN;
	frame = u->slot[u->head];
	len = u->len[u->head];
	total = VIRTIO_NET_HDR_LEN + len;
	for (int i = 0; i < iovcnt && done < total; i++) {
		size_t n = VIREO_MIN(iov[i].iov_len, total - done);

		for (size_t k = 0; k < n; k++) {
			size_t at = done + k;
			((uint8_t *)iov[i].iov_base)[k] = at < VIRTIO_NET_HDR_LEN ? hdr[at] :
							  frame[at - VIRTIO_NET_HDR_LEN];
		}
		done += n;
	}
	u->head = (u->head + 1) % NET_USER_QLEN;
	if (--u->count == 0)
		net_user_rx_signal(u, false);
	return (ssize_t)total;
}

/* ---- libslirp on the event loop ---------------------------------------------------- */

static int net_user_add_poll(int fd, int events, void *opaque)
{
	struct net_user *u = opaque;
	short ev = 0;

	if (u->npfd == u->pfd_cap) {
		unsigned cap = u->pfd_cap ? 2 * u->pfd_cap : 32;
		struct pollfd *p = realloc(u->pfd, cap * sizeof(*p));

		if (!p)
			return -1;
		u->pfd = p;
		u->pfd_cap = cap;
	}
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	u->pfd[u->npfd] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)u->npfd++;
}

static int net_user_get_revents(int idx, void *opaque)
{
	struct net_user *u = opaque;
	short r;
	int ev = 0;

	if (idx < 0 || (unsigned)idx >= u->npfd)
		return 0;
	r = u->pfd[idx].revents;
	if (r & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (r & (POLLERR | POLLNVAL))
		ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

static struct net_user_watch *net_user_watched(struct net_user *u, int fd)
{
	for (unsigned i = 0; i < u->nwatch; i++)
		if (u->watch[i].fd == fd)
			return &u->watch[i];
	return NULL;
}

/* Bring the epoll set in line with u->pfd (what libslirp polls next). */
static void net_user_sync(struct net_user *u)
{
	for (unsigned i = 0; i < u->nwatch;) {
		bool keep = false;

		for (unsigned k = 0; k < u->npfd && !keep; k++)
			keep = u->pfd[k].fd == u->watch[i].fd;
		if (keep) {
			i++;
			continue;
		}
		epoll_ctl(u->epfd, EPOLL_CTL_DEL, u->watch[i].fd, NULL);
		u->watch[i] = u->watch[--u->nwatch];
	}
	for (unsigned k = 0; k < u->npfd; k++) {
		struct net_user_watch *w = net_user_watched(u, u->pfd[k].fd);
		struct epoll_event ev = { .events = (uint32_t)u->pfd[k].events };

		ev.data.fd = u->pfd[k].fd;
		if (w) {
			if (w->events != ev.events &&
			    epoll_ctl(u->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0)
				w->events = ev.events;
			continue;
		}
		if (u->nwatch == u->watch_cap) {
			unsigned cap = u->watch_cap ? 2 * u->watch_cap : 32;
			struct net_user_watch *nw = realloc(u->watch, cap * sizeof(*nw));

			if (!nw)
				continue;   /* polled again at the next timer */
			u->watch = nw;
			u->watch_cap = cap;
		}
		if (epoll_ctl(u->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) == 0)
			u->watch[u->nwatch++] = (struct net_user_watch){ ev.data.fd, ev.events };
	}
}

/* The timerfd fires at the earliest of libslirp's own timers and the
 * deadline slirp_pollfds_fill gave (ms from now); at once with work pending. */
static void net_user_arm(struct net_user *u, uint32_t timeout_ms)
{
	int64_t now_ms = (int64_t)(vtime_ns() / 1000000u);
	int64_t at_ms = timeout_ms == UINT32_MAX ? INT64_MAX : now_ms + timeout_ms;
	struct itimerspec its = { 0 };
	uint64_t ns;

	for (struct net_user_timer *t = u->timers; t; t = t->next)
		if (t->expire_ms >= 0 && t->expire_ms < at_ms)
			at_ms = t->expire_ms;
	if (u->work_pending)
		at_ms = now_ms;
	if (at_ms == INT64_MAX) {
		timerfd_settime(u->tfd, 0, &its, NULL);   /* disarm */
		return;
	}
	ns = at_ms > now_ms ? (uint64_t)(at_ms - now_ms) * 1000000u : 1;
	its.it_value.tv_sec = (time_t)(ns / 1000000000u);
	its.it_value.tv_nsec = (long)(ns % 1000000000u);
	timerfd_settime(u->tfd, 0, &its, NULL);
}

/* One round of libslirp's work: its sockets, its TCP timers; then what
 * to wait for next. */
static void net_user_work(struct net_user *u)
{
	uint32_t timeout = UINT32_MAX;
	int n;

	u->work_pending = false;
	u->npfd = 0;
	slirp_pollfds_fill(u->slirp, &timeout, net_user_add_poll, u);
	n = poll(u->pfd, u->npfd, 0);
	slirp_pollfds_poll(u->slirp, n < 0, net_user_get_revents, u);
	timeout = UINT32_MAX;
	u->npfd = 0;
	slirp_pollfds_fill(u->slirp, &timeout, net_user_add_poll, u);
	net_user_sync(u);
	net_user_arm(u, timeout);
}

static void net_user_on_sockets(void *opaque, uint32_t events)
{
	net_user_work(opaque);
}

static void net_user_on_timer(void *opaque, uint32_t events)
{
	struct net_user *u = opaque;
	int64_t now_ms = (int64_t)(vtime_ns() / 1000000u);
	uint64_t v;

	if (read(u->tfd, &v, sizeof(v)) < 0) {
		/* not expired: a re-arm raced it */
	}
	for (struct net_user_timer *t = u->timers; t; t = t->next) {
		if (t->expire_ms < 0 || t->expire_ms > now_ms)
			continue;
		t->expire_ms = -1;
		if (t->cb)
			t->cb(t->cb_opaque);
		else
			slirp_handle_timer(u->slirp, t->id, t->cb_opaque);
	}
	net_user_work(u);
}

static void net_user_defer(struct net_user *u)
{
	if (!u->work_pending) {
		u->work_pending = true;
		net_user_arm(u, UINT32_MAX);
	}
}

/* ---- libslirp's callbacks ---------------------------------------------------------- */

static void net_user_guest_error(const char *msg, void *opaque)
{
	vdebug("user network: guest error: %s", msg);
}

static int64_t net_user_clock(void *opaque)
{
	return (int64_t)vtime_ns();
}

static void *net_user_timer_add(struct net_user *u, SlirpTimerId id, SlirpTimerCb cb,
				void *cb_opaque)
{
	struct net_user_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	*t = (struct net_user_timer){ id, cb, cb_opaque, -1, u->timers };
	u->timers = t;
	return t;
}

static void *net_user_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	return net_user_timer_add(opaque, SLIRP_TIMER_NUM, cb, cb_opaque);
}

static void *net_user_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	return net_user_timer_add(opaque, id, NULL, cb_opaque);
}

static void net_user_timer_free(void *timer, void *opaque)
{
	struct net_user *u = opaque;

	for (struct net_user_timer **p = &u->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
	}
}

static void net_user_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	((struct net_user_timer *)timer)->expire_ms = expire_ms < 0 ? 0 : expire_ms;
	net_user_arm(opaque, UINT32_MAX);
}

static void net_user_poll_fd(int fd, void *opaque)
{
	/* The poll set is rebuilt from slirp_pollfds_fill after each round. */
}

static void net_user_notify(void *opaque)
{
	net_user_defer(opaque);
}

static const SlirpCb net_user_cb = {
	.send_packet = net_user_slirp_send,
	.guest_error = net_user_guest_error,
	.clock_get_ns = net_user_clock,
	.timer_new = net_user_timer_new,
	.timer_free = net_user_timer_free,
	.timer_mod = net_user_timer_mod,
	.register_poll_fd = net_user_poll_fd,
	.unregister_poll_fd = net_user_poll_fd,
	.notify = net_user_notify,
	.timer_new_opaque = net_user_timer_new_opaque,
};

/* ---- frames from the guest ------------------------------------------------------- */

/* RFC 1071 checksum of len bytes, folded and complemented. */
static uint16_t net_user_csum(const uint8_t *p, size_t len)
{
	uint64_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static ssize_t net_user_send(struct net_backend *be, unsigned pair, const struct iovec *iov,
			     int iovcnt)
{
	struct net_user *u = to_user(be);
	size_t total = 0;
	uint8_t *frame = u->tx + VIRTIO_NET_HDR_LEN;
	struct virtio_net_hdr h;
	size_t len;

	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > sizeof(u->tx) - total) {
			u->drop_from_guest++;
			return -EMSGSIZE;
		}
		memcpy(u->tx + total, iov[i].iov_base, iov[i].iov_len);
		total += iov[i].iov_len;
	}
	if (total < VIRTIO_NET_HDR_LEN + 14) {
		u->drop_from_guest++;
		return -EINVAL;
	}
	memcpy(&h, u->tx, sizeof(h));
	len = total - VIRTIO_NET_HDR_LEN;
	if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		u->drop_from_guest++;
		return -EOPNOTSUPP;
	}
	if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		size_t start = le16toh(h.csum_start), at = start + le16toh(h.csum_offset);
		uint16_t c;

		if (start >= len || at + 2 > len) {
			u->drop_from_guest++;
			return -EINVAL;
		}
		/* The guest put the pseudo-header's sum in the field. */
		c = net_user_csum(frame + start, len - start);
		frame[at] = (uint8_t)(c >> 8);
		frame[at + 1] = (uint8_t)c;
	}
	slirp_input(u->slirp, frame, (int)len);
	net_user_defer(u);
	return (ssize_t)total;
}

/* ---- the backend ------------------------------------------------------------------ */

static int net_user_fd(struct net_backend *be, unsigned pair)
{
	return pair == 0 ? to_user(be)->rx_efd : -1;
}

static int net_user_set_offloads(struct net_backend *be, unsigned off)
{
	return 0;   /* frames to the guest carry no offloads whatever it takes */
}

static int net_user_set_pairs(struct net_backend *be, unsigned n)
{
	return n == 1 ? 0 : -EINVAL;
}

static int net_user_tap_fd(struct net_backend *be, unsigned pair)
{
	return -1;
}

static void net_user_close(struct net_backend *be)
{
	struct net_user *u = to_user(be);

	if (u->slirp)
		slirp_cleanup(u->slirp);
	while (u->timers)
		net_user_timer_free(u->timers, u);
	if (u->loop) {
		if (u->epfd >= 0)
			evloop_del(u->loop, u->epfd);
		if (u->tfd >= 0)
			evloop_del(u->loop, u->tfd);
	}
	if (u->epfd >= 0)
		close(u->epfd);
	if (u->tfd >= 0)
		close(u->tfd);
	if (u->rx_efd >= 0)
		close(u->rx_efd);
	free(u->slot);
	free(u->pfd);
	free(u->watch);
	free(u);
}

static const struct net_backend_ops net_user_ops = {
	.send = net_user_send,
	.recv = net_user_recv,
	.fd = net_user_fd,
	.set_offloads = net_user_set_offloads,
	.set_pairs = net_user_set_pairs,
	.tap_fd = net_user_tap_fd,
	.close = net_user_close,
};

void net_user_dropped(struct net_backend *be, uint64_t *to_guest, uint64_t *from_guest)
{
	*to_guest = to_user(be)->drop_to_guest;
	*from_guest = to_user(be)->drop_from_guest;
}

bool net_user_is(const struct net_backend *be)
{
	return be && be->ops == &net_user_ops;
}

int net_user_state_version(void)
{
	return slirp_state_version();
}

struct net_user_buf {
	uint8_t *p;
	size_t len, cap, max, at;
	bool over, toobig;
};

static ssize_t net_user_state_write(const void *data, size_t n, void *opaque)
{
	struct net_user_buf *b = opaque;

	if (b->over || n > b->max - b->len) {
		b->over = true;
		b->toobig = true;
		return -1;
	}
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *q;

		while (cap - b->len < n)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q) {
			b->over = true;
			return -1;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return (ssize_t)n;
}

int net_user_state_save(struct net_backend *be, size_t max, void **buf, size_t *len)
{
	struct net_user_buf b = { .max = max };

	if (!net_user_is(be))
		return -EINVAL;
	slirp_state_save(to_user(be)->slirp, net_user_state_write, &b);
	if (b.over) {
		free(b.p);
		return b.toobig ? -EFBIG : -ENOMEM;
	}
	*buf = b.p;
	*len = b.len;
	return 0;
}

/* Reads past the saved bytes fail: libslirp then refuses the state. */
static ssize_t net_user_state_read(void *data, size_t n, void *opaque)
{
	struct net_user_buf *b = opaque;

	if (n > b->len - b->at)
		return -1;
	memcpy(data, b->p + b->at, n);
	b->at += n;
	return (ssize_t)n;
}

int net_user_state_load(struct net_backend *be, int version, const void *buf, size_t len,
			char *err, size_t errlen)
{
	struct net_user_buf b = { .p = (uint8_t *)buf, .len = len };
	struct net_user *u;
	int r;

	if (!net_user_is(be)) {
		snprintf(err, errlen, "not a user-mode network");
		return -EINVAL;
	}
	u = to_user(be);
	if (version != slirp_state_version()) {
		snprintf(err, errlen, "user network: libslirp state version %d, this libslirp "
			 "(%s) reads version %d", version, slirp_version_string(),
			 slirp_state_version());
		return -EINVAL;
	}
	r = slirp_state_load(u->slirp, version, net_user_state_read, &b);
	if (r < 0) {
		snprintf(err, errlen, "user network: libslirp refused its saved state "
			 "(error %d)", r);
		return -EINVAL;
	}
	if (b.at != len) {
		snprintf(err, errlen, "user network: %zu bytes of saved state left over",
			 len - b.at);
		return -EINVAL;
	}
	net_user_work(u);
	return 0;
}

static int net_user_forwards(struct net_user *u, const struct net_user_cfg *cfg)
{
	for (unsigned i = 0; i < cfg->nr_fwd; i++) {
		const struct net_hostfwd *f = &cfg->fwd[i];
		char a[INET_ADDRSTRLEN];

		if (slirp_add_hostfwd(u->slirp, f->udp, f->host_addr, f->host_port,
				      f->guest_addr, f->guest_port) < 0) {
			verr("user network: cannot forward %s %s:%u (the port is in use, or "
			     "not allowed)", f->udp ? "udp" : "tcp",
			     inet_ntop(AF_INET, &f->host_addr, a, sizeof(a)), f->host_port);
			return -EADDRINUSE;
		}
	}
	return 0;
}

int net_user_open(const struct net_user_cfg *cfg, struct evloop *loop,
		  struct net_backend **out)
{
	struct net_user *u = calloc(1, sizeof(*u));
	SlirpConfig sc = { .version = 4, .in_enabled = true };
	int r;

	if (!u)
		return -ENOMEM;
	u->be.ops = &net_user_ops;
	u->be.nr_pairs = 1;
	u->be.tx_offloads = NET_OFF_CSUM;   /* checksums computed here; no GSO */
	snprintf(u->be.name, sizeof(u->be.name), "user");
	u->epfd = epoll_create1(EPOLL_CLOEXEC);
	u->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	u->rx_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	u->slot = calloc(NET_USER_QLEN, NET_USER_SLOT);
	if (u->epfd < 0 || u->tfd < 0 || u->rx_efd < 0 || !u->slot) {
		r = -errno;
		verr("user network: %s", strerror(errno));
		goto fail;
	}
	inet_pton(AF_INET, "10.0.2.0", &sc.vnetwork);
	inet_pton(AF_INET, "255.255.255.0", &sc.vnetmask);
	inet_pton(AF_INET, "10.0.2.2", &sc.vhost);
	inet_pton(AF_INET, "10.0.2.15", &sc.vdhcp_start);
	inet_pton(AF_INET, "10.0.2.3", &sc.vnameserver);
	u->slirp = slirp_new(&sc, &net_user_cb, u);
	if (!u->slirp) {
		verr("user network: libslirp did not start");
		r = -ENOMEM;
		goto fail;
	}
	if ((r = net_user_forwards(u, cfg)))
		goto fail;
	if ((r = evloop_add(loop, u->epfd, EPOLLIN, net_user_on_sockets, u)) < 0)
		goto fail;
	if ((r = evloop_add(loop, u->tfd, EPOLLIN, net_user_on_timer, u)) < 0) {
		evloop_del(loop, u->epfd);
		goto fail;
	}
	u->loop = loop;
	net_user_work(u);
	*out = &u->be;
	return 0;
fail:
	net_user_close(&u->be);
	return r;
}
