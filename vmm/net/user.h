/*
 * User-mode networking through libslirp (struct net_backend, backend.h):
 * NAT to the host's own sockets, no root needed, QEMU's default addresses:
 * network 10.0.2.0/24, the guest's DHCP address 10.0.2.15, the gateway
 * 10.0.2.2 (which reaches the host's loopback), DNS 10.0.2.3.  IPv4 only.
 *
 * libslirp runs on vireo-vmm's event loop, with no thread of its own: its
 * sockets are gathered in one epoll set the loop watches, its timers in
 * one timerfd; after every batch of work the set is brought in line with
 * what libslirp wants polled next.
 *
 * Frames from slirp to the guest wait in a bounded queue (dropped, and
 * counted, when the guest does not take them: TCP resends); the backend's
 * fd is readable while one waits.  No offloads: a frame from the guest that
 * asks for a checksum gets it computed here; a GSO frame is dropped and
 * counted (the device offers no host TSO with this backend).
 */
#ifndef VIREO_VMM_NET_USER_H
#define VIREO_VMM_NET_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "hostfwd.h"

struct evloop;

struct net_user_cfg {
	struct net_hostfwd fwd[NET_USER_MAX_FWD];
	unsigned nr_fwd;
};

/* Start libslirp on loop with cfg's forwards.  Errors print one line
 * (a forward whose host port is taken names it) and return -errno. */
int net_user_open(const struct net_user_cfg *cfg, struct evloop *loop,
		  struct net_backend **out);

/* Frames dropped: to the guest (queue full), from the guest (GSO). */
void net_user_dropped(struct net_backend *be, uint64_t *to_guest, uint64_t *from_guest);

/* libslirp's own state (its ARP table, DHCP leases, guestfwd
 * connections): slirp_state_save's bytes into a malloc'ed *buf (at
 * most max bytes: -EFBIG beyond), and the version they are in
 * (net_user_state_version).  0 or -errno. */
int net_user_state_save(struct net_backend *be, size_t max, void **buf, size_t *len);
int net_user_state_version(void);

/* Load what net_user_state_save gave (at @version) into a backend opened
 * with the saved configuration.  0, or -EINVAL with one line in err (a
 * version this libslirp does not read, bytes it refuses). */
int net_user_state_load(struct net_backend *be, int version, const void *buf, size_t len,
			char *err, size_t errlen);

/* Whether @be is a user-mode backend. */
bool net_user_is(const struct net_backend *be);

#endif
