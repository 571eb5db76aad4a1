#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

/* Watches live in chunks that are never moved or freed before the loop
 * is: epoll's events point at them, and a watch deleted while a batch of
 * events is being dispatched is only marked (fd -1). */
#define EVLOOP_CHUNK 32

struct evloop_watch {
	int fd;
	evloop_fn *fn;
	void *opaque;
};

struct evloop_chunk {
	struct evloop_watch w[EVLOOP_CHUNK];
	struct evloop_chunk *next;
};

struct evloop {
	int epfd;
	struct evloop_chunk *chunks;
};

static struct evloop_chunk *evloop_chunk_new(void)
{
	struct evloop_chunk *c = calloc(1, sizeof(*c));

	if (c)
		for (int i = 0; i < EVLOOP_CHUNK; i++)
			c->w[i].fd = -1;
	return c;
}

struct evloop *evloop_new(void)
{
	struct evloop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->chunks = evloop_chunk_new();
	if (l->epfd < 0 || !l->chunks) {
		evloop_free(l);
		return NULL;
	}
	return l;
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	while (l->chunks) {
		struct evloop_chunk *c = l->chunks;

		l->chunks = c->next;
		free(c);
	}
	if (l->epfd >= 0)
		close(l->epfd);
	free(l);
}

/* A free watch slot (a new chunk when all are taken), or NULL. */
static struct evloop_watch *evloop_free_slot(struct evloop *l)
{
	struct evloop_chunk *c, *last = NULL;

	for (c = l->chunks; c; last = c, c = c->next)
		for (int i = 0; i < EVLOOP_CHUNK; i++)
			if (c->w[i].fd < 0)
				return &c->w[i];
	c = evloop_chunk_new();
	if (!c)
		return NULL;
	last->next = c;
	return &c->w[0];
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn *fn, void *opaque)
{
	struct epoll_event ev = { .events = events };
	struct evloop_watch *w = evloop_free_slot(l);

	if (!w)
		return -ENOMEM;
	ev.data.ptr = w;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	*w = (struct evloop_watch){ fd, fn, opaque };
	return 0;
}

static struct evloop_watch *evloop_find(struct evloop *l, int fd)
{
	for (struct evloop_chunk *c = l->chunks; c; c = c->next)
		for (int i = 0; i < EVLOOP_CHUNK; i++)
			if (c->w[i].fd == fd)
				return &c->w[i];
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
