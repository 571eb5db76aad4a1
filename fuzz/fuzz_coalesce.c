/* The coalesced-write ring (vmm/coalesce.c): KVM fills it with the guest's
 * writes; replay must stay inside the ring and pass on only writes inside
 * the registered zones.  Input: [zone flags:1][ring page contents...]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coalesce.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PAGE 4096

static void check_write(void *opaque, bool pio, uint64_t addr, const uint8_t *d,
			unsigned len)
{
	const struct coalesce *c = opaque;
	bool ok = false;

	(void)d;
	if (len == 0 || len > 8)
		abort();
	for (unsigned i = 0; i < c->nzones; i++)
		if (c->zone[i].pio == pio && addr >= c->zone[i].addr &&
		    addr + len <= c->zone[i].addr + c->zone[i].size)
			ok = true;
	if (!ok)
		abort();   /* replayed a write outside every zone */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kvm_coalesced_mmio_ring *ring;
	struct coalesce c;
	uint32_t max = coalesce_ring_entries(PAGE);

	if (size < 1)
		return 0;
	if (!ring)
		ring = aligned_alloc(PAGE, PAGE);
	memset(ring, 0, PAGE);
	memcpy(ring, data + 1, size - 1 < PAGE ? size - 1 : PAGE);
	coalesce_init(&c, check_write, &c);
	coalesce_add_zone(&c, -1, 0x3f8, 1, true);
	if (data[0] & 1)
		coalesce_add_zone(&c, -1, 0xcf8, 4, true);
	if (data[0] & 2)
		coalesce_add_zone(&c, -1, 0xfeb00000, 0x1000, false);
	coalesce_start(&c, ring, data[0] & 4 ? max / 2 : max);
	coalesce_drain(&c);
	coalesce_drain(&c);
	coalesce_destroy(&c);
	return 0;
}
