/*
 * libFuzzer target: vireod's network definition parser (daemon/netdef.c),
 * the JSON of `vireo net-define` and of POST /networks.
 *
 * Input: the definition's bytes.  A definition that parses must hold what
 * the parser promises (a valid name and bridge, a prefix of 8 to 30, an
 * address that is neither the subnet's network nor its broadcast one, a
 * DHCP range inside the subnet without the bridge's address) and survive
 * its canonical JSON unchanged (parse, print, parse: the same).  Seeds:
 * fuzz/corpus/netdef/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netdef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct netdef a, b;
	char err[256];

	if (netdef_parse((const char *)data, size, &a, err, sizeof(err))) {
		/* an error is one line naming a field or the JSON */
		if (!err[0] || strchr(err, '\n'))
			abort();
		return 0;
	}
	uint32_t m = netdef_mask(a.prefix);
	if (!netdef_name_ok(a.name) || (a.bridge[0] && !netdef_ifname_ok(a.bridge)) ||
	    a.prefix < 8 || a.prefix > 30 || (a.addr & ~m) == 0 || (a.addr & ~m) == ~m)
		abort();
	if (a.dhcp && ((a.dhcp_start & m) != (a.addr & m) || (a.dhcp_end & m) != (a.addr & m) ||
		       a.dhcp_start > a.dhcp_end || (a.addr >= a.dhcp_start && a.addr <= a.dhcp_end)))
		abort();
	char *j = netdef_to_json(&a);
	if (!j)
		return 0;
	if (netdef_parse(j, strlen(j), &b, err, sizeof(err)) || memcmp(&a, &b, sizeof(a)))
		abort();
	free(j);
	return 0;
}
