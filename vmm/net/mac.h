/* MAC addresses for virtio-net devices (pure; unit-tested). */
#ifndef VIREO_VMM_NET_MAC_H
#define VIREO_VMM_NET_MAC_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The MAC of the index'th --net device of the VM called name, when none is
 * given: FNV-1a (64 bits) over "vireo-net", the name, a NUL and the index
 * as 4 little-endian bytes; its first six bytes, with the first byte's
 * multicast bit cleared and its locally-administered bit set.  The same
 * name and index give the same MAC on every start (a DHCP lease is kept).
 */
void net_mac_generate(const char *name, unsigned index, uint8_t mac[6]);

static inline bool net_mac_is_multicast(const uint8_t *mac)
{
	return mac[0] & 1;
}

static inline bool net_mac_is_broadcast(const uint8_t *mac)
{
	return (mac[0] & mac[1] & mac[2] & mac[3] & mac[4] & mac[5]) == 0xff;
}

#endif
