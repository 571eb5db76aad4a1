#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

#define EVLOOP_MAX 32

struct evloop_watch {
	int fd;
	evloop_fn *fn;
	void *opaque;
};

struct evloop {
	int epfd;
	struct evloop_watch w[EVLOOP_MAX];
};

struct evloop *evloop_new(void)
{
	struct evloop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	for (int i = 0; i < EVLOOP_MAX; i++)
		l->w[i].fd = -1;
	return l;
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn *fn, void *opaque)
{
	struct epoll_event ev = { .events = events };

	for (int i = 0; i < EVLOOP_MAX; i++) {
		if (l->w[i].fd >= 0)
			continue;
		ev.data.ptr = &l->w[i];
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			return -errno;
		l->w[i] = (struct evloop_watch){ fd, fn, opaque };
		return 0;
	}
	return -ENOSPC;
}

static struct evloop_watch *evloop_find(struct evloop *l, int fd)
{
	for (int i = 0; i < EVLOOP_MAX; i++)
		if (l->w[i].fd == fd)
			return &l->w[i];
	return NULL;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	struct evloop_watch *w = evloop_find(l, fd);
	struct epoll_event ev = { .events = events };

	if (!w)
		return -ENOENT;
	ev.data.ptr = w;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int evloop_del(struct evloop *l, int fd)
{
	struct evloop_watch *w = evloop_find(l, fd);

	if (!w)
		return -ENOENT;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->fd = -1;
	return 0;
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
	struct epoll_event ev[8];
	int n = epoll_wait(l->epfd, ev, 8, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct evloop_watch *w = ev[i].data.ptr;
		if (w->fd >= 0)
			w->fn(w->opaque, ev[i].events);
	}
	return 0;
}
