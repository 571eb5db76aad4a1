/*
 * The guest-access program the device fuzz targets share: records of
 * [kind:1][addr:4][len:1][data:4], each one port or MMIO access sent
 * through the buses exactly as a vCPU sends its exits.
 *   kind bit 0: write;  bit 1: MMIO (else port I/O);
 *   bit 2: the address is inside the config mechanism (ports 0xcf8-0xcff,
 *          or ECAM);  bit 3 (MMIO): inside the 32-bit BAR window;
 *   bits 4-5 both set: no access, the 4 data bytes go into guest RAM at
 *          addr (when the target gives RAM).
 */
#ifndef VIREO_FUZZ_GUEST_IO_H
#define VIREO_FUZZ_GUEST_IO_H

#include <stddef.h>
#include <stdint.h>

struct bus;

#define GUEST_IO_RECORD 10

/* Run the program in data; ram (ram_len, a power of two >= 4) may be NULL. */
void guest_io_run(struct bus *pio, struct bus *mmio, const uint8_t *data, size_t size,
		 uint8_t *ram, size_t ram_len);

#endif
