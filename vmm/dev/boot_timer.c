#include <stdio.h>
#include <string.h>

#include <vireo/util.h>

#include "boot_timer.h"

void boot_timer_bus_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		       bool is_write)
{
	struct boot_timer *bt = opaque;
	uint32_t v = 0;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (offset != 0 || len != 4)
		return;
	memcpy(&v, data, 4);
	if (v == 123) {
		uint64_t ms = (vtime_ns() - bt->start_ns) / 1000000;
		/* Contract line (docs/vireo-vmm.1), printed as is. */
		fprintf(stderr, "vireo-vmm: boot-timer: %llu ms since start\n",
			(unsigned long long)ms);
	}
}
