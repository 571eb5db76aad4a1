/*
 * Linux tap backend (struct net_backend, backend.h).
 *
 * Every queue fd is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR
 * (+ IFF_MULTI_QUEUE when there is more than one pair), a 12-byte vnet
 * header (TUNSETVNETHDRSZ) and no offloads until the guest's features
 * say which (TUNSETOFFLOAD), non-blocking.
 *
 * By name: an existing tap is opened (a persistent one made with
 * `ip tuntap add`; its owner or root); a missing one is created, which
 * needs CAP_NET_ADMIN, non-persistent (the kernel removes it when the last
 * fd closes, so nothing is left behind whatever way vireo-vmm ends) and set
 * up (IFF_UP).  By fd: a tap fd a parent opened (vireod), which must
 * already have IFF_TAP, IFF_NO_PI and IFF_VNET_HDR; one pair only.
 *
 * Errors print one line and return -errno.
 */
#ifndef VIREO_VMM_NET_TAP_H
#define VIREO_VMM_NET_TAP_H

#include "backend.h"

#define NET_TAP_MAX_PAIRS 3u

int net_tap_open(const char *name, unsigned pairs, struct net_backend **out);
int net_tap_open_fd(int fd, unsigned pairs, struct net_backend **out);
/* A new back end on duplicates of @kept's descriptors (a tap opened
 * before the sandbox, lent to each VM): set up afresh, every queue
 * attached; closing it leaves @kept open. */
int net_tap_dup(struct net_backend *kept, struct net_backend **out);

/* TUN_F_* flags for NET_OFF_* offloads (pure; unit-tested). */
unsigned net_tap_offload_flags(unsigned off);

#endif
