/* The boot-timer MMIO page (contract, docs/vireo-vmm.1): a 32-bit write of
 * 123 at its offset 0 prints the time since the VMM started on stderr. */
#ifndef VIREO_VMM_DEV_BOOT_TIMER_H
#define VIREO_VMM_DEV_BOOT_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define BOOT_TIMER_LEN 0x1000

struct boot_timer {
	uint64_t start_ns;
};
void boot_timer_bus_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		       bool is_write);

#endif
