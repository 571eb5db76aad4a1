/* The event loop: one epoll set run by the main thread.  It owns the
 * console input, signals (signalfd) and requests from vCPU threads
 * (eventfds).  Callbacks run on the loop thread only. */
#ifndef VIREO_VMM_LOOP_H
#define VIREO_VMM_LOOP_H

#include <stdbool.h>
#include <stdint.h>

typedef void evloop_fn(void *opaque, uint32_t events);

struct evloop;

struct evloop *evloop_new(void);
void evloop_free(struct evloop *l);
/* Watch fd for events (EPOLLIN...); returns 0 or -errno. */
int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn *fn, void *opaque);
int evloop_mod(struct evloop *l, int fd, uint32_t events);
int evloop_del(struct evloop *l, int fd);
/* Wait and dispatch once (timeout_ms -1: forever).  Returns -errno on error. */
int evloop_run_once(struct evloop *l, int timeout_ms);

#endif
