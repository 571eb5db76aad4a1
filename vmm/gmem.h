/*
 * Guest physical memory as the VMM sees it: a few contiguous regions of
 * host memory, each mapped at a guest physical address.  Every device uses
 * gmem_ptr() to turn a guest-supplied address into a host pointer; it checks
 * the whole range and returns NULL for anything outside guest RAM (including
 * ranges that wrap or straddle two regions), so a hostile guest can never
 * make a device touch host memory outside its RAM.
 */
#ifndef VIREO_VMM_GMEM_H
#define VIREO_VMM_GMEM_H

#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 4

struct gmem_region {
	uint64_t gpa;   /* guest physical start */
	uint64_t size;  /* bytes */
	uint8_t *hva;   /* host virtual start */
};

struct gmem {
	struct gmem_region region[GMEM_MAX_REGIONS];
	unsigned nr_regions;
	uint64_t ram_size;  /* sum of region sizes */
};

/* Host pointer for guest range [gpa, gpa + len), or NULL if any byte of it
 * lies outside a single RAM region.  len == 0 is treated as len == 1. */
static inline void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct gmem_region *r = &m->region[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size &&
		    len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

#endif
