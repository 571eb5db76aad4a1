/*
 * Virtual network definitions: the JSON of `vireo net-define` and of
 * POST /networks, validated field by field, and its canonical form.
 * Pure (no I/O), so that fuzz/fuzz_netdef.c runs it directly.
 *
 *   {"name": "default", "mode": "nat", "bridge": "vireo0",
 *    "address": "192.168.122.1/24",
 *    "dhcp": {"start": "192.168.122.10", "end": "192.168.122.200"},
 *    "domain": "vm.test", "autostart": true}
 */
#ifndef VIREO_DAEMON_NETDEF_H
#define VIREO_DAEMON_NETDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETDEF_MAX_JSON    4096
#define NETDEF_NAME_MAX    32
#define NETDEF_BRIDGE_MAX  15          /* IFNAMSIZ - 1 */
#define NETDEF_DOMAIN_MAX  63

enum netdef_mode { NETDEF_NAT, NETDEF_ISOLATED };

struct netdef {
	char name[NETDEF_NAME_MAX + 1];
	enum netdef_mode mode;
	char bridge[NETDEF_BRIDGE_MAX + 1];     /* "" until given or generated */
	uint32_t addr;                          /* the bridge's, host order */
	unsigned prefix;                        /* 8..30 */
	bool dhcp;
	uint32_t dhcp_start, dhcp_end;          /* host order, in the subnet */
	char domain[NETDEF_DOMAIN_MAX + 1];     /* "" for none */
	bool autostart;
};

/* Parse and validate @len bytes (not NUL-terminated): 0, or -1 with one
 * line in @err naming the field ("dhcp.start: not in 192.168.1.0/24"). */
int netdef_parse(const char *text, size_t len, struct netdef *def, char *err, size_t errlen);

/* A network name: 1..32 of [A-Za-z0-9._-], starting with a letter or digit. */
bool netdef_name_ok(const char *name);
/* An interface name: 1..15 of [A-Za-z0-9._-], starting with a letter or digit. */
bool netdef_ifname_ok(const char *name);

/* The canonical JSON (every field); malloc'd, NULL on ENOMEM. */
char *netdef_to_json(const struct netdef *def);

const char *netdef_mode_name(enum netdef_mode m);
uint32_t netdef_mask(unsigned prefix);
/* A dotted quad of @a (host order) into @buf (16 bytes). */
const char *netdef_ip_str(uint32_t a, char buf[16]);
/* Parse a dotted quad (no leading zeros, no extra text): 0 or -1. */
int netdef_ip_parse(const char *s, uint32_t *out);

#endif
