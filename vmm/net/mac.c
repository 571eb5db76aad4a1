/* MAC addresses: see mac.h. */
#include <string.h>

#include "mac.h"

static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void net_mac_generate(const char *name, unsigned index, uint8_t mac[6])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	uint8_t idx[4] = { (uint8_t)index, (uint8_t)(index >> 8), (uint8_t)(index >> 16),
			   (uint8_t)(index >> 24) };

	h = fnv1a(h, "vireo-net", 9);
	h = fnv1a(h, name, strlen(name) + 1);
	h = fnv1a(h, idx, sizeof(idx));
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02);
}
