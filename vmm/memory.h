/*
 * Guest RAM: the region layout around the PCI hole, the e820 map that
 * describes it, and the host mapping (anonymous, with guard regions).
 */
#ifndef VIREO_VMM_MEMORY_H
#define VIREO_VMM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmem.h"

#define E820_RAM       1
#define E820_RESERVED  2
#define E820_ACPI      3

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
};

/* Fill regions (gpa/size only, hva NULL) for ram bytes of RAM: below the
 * PCI hole first, the rest from 4 GiB.  Returns 0 or -EINVAL. */
int memory_layout(struct gmem *m, uint64_t ram);

/* The e820 map for layout m: low RAM up to the EBDA, the reserved BIOS area
 * (with the ACPI tables), RAM from 1 MiB, RAM above 4 GiB, and the PCI
 * ECAM window reserved.  Returns the number of entries written (<= max). */
unsigned memory_e820(const struct gmem *m, struct e820_entry *e, unsigned max);

/* Guest RAM's alignment: a huge page. */
#define MEMORY_ALIGN (2u << 20)
/* Address space only (PROT_NONE, nothing committed) for @len bytes at a
 * MEMORY_ALIGN boundary: the reservation (@len + MEMORY_ALIGN bytes, for
 * munmap), its first aligned address in *@aligned; NULL with errno set. */
uint8_t *memory_reserve(size_t len, uint8_t **aligned);

/* Map the host memory for layout m: one PROT_NONE reservation with guard
 * gaps between and around the regions, then read-write anonymous mappings
 * inside it.  Nothing is touched per page.  Sets m->region[].hva. */
int memory_map(struct gmem *m, bool merge, bool hugepages,
	       uint8_t **reservation, size_t *reservation_len);
void memory_unmap(uint8_t *reservation, size_t reservation_len);

/* The VMM's dirty log (gmem.h): allocated once, off (m->dirty->on false),
 * by the first migration; freed with the VM, once no thread can mark.
 * memory_dirty_alloc returns 0 or -ENOMEM. */
int memory_dirty_alloc(struct gmem *m);
void memory_dirty_free(struct gmem *m);

#endif
