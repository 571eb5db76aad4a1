/*
 * The few rtnetlink requests vireod's networks need (network.c), on a
 * plain NETLINK_ROUTE socket: make and delete a bridge, give it an IPv4
 * address, bring a link up, attach a link to a bridge.  Each call opens
 * its own socket, so the calls are thread-safe.  Every one returns 0 or
 * -errno (the kernel's answer).
 */
#ifndef VIREO_DAEMON_NETLINK_H
#define VIREO_DAEMON_NETLINK_H

#include <stdint.h>

int nl_bridge_add(const char *name);
int nl_link_del(const char *name);
/* @addr in host order. */
int nl_addr_add(const char *name, uint32_t addr, unsigned prefix);
int nl_link_up(const char *name);
/* Attach @name to the bridge @master. */
int nl_link_set_master(const char *name, const char *master);
/* The ifindex of the bridge that @name is attached to (0: none), or -errno. */
int nl_link_master(const char *name);

#endif
