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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 4

struct gmem_region {
	uint64_t gpa;   /* guest physical start */
	uint64_t size;  /* bytes */
	uint8_t *hva;   /* host virtual start */
};

/*
 * The VMM's own dirty log (live migration).  KVM's dirty log sees only the
 * vCPUs' writes; what the VMM writes into guest RAM (virtqueue used rings,
 * a disk's read data, received frames, console and rng buffers) is marked
 * here, one bit per 4 KiB page per region, while @on is set.  The migration
 * thread allocates it once (vmm/migrate.c) and it lives as long as the VM
 * (vm.c frees it): a device may test @on and mark a page on any thread
 * without taking a lock, so it is never freed under it.  Marking happens
 * after the write (a release), the migration thread takes the bits with an
 * atomic exchange (an acquire) before it reads the pages.
 */
#define GMEM_DIRTY_PAGE 4096u

struct gmem_dirty {
	bool on;
	uint64_t *bits[GMEM_MAX_REGIONS];
};

struct gmem {
	struct gmem_region region[GMEM_MAX_REGIONS];
	unsigned nr_regions;
	uint64_t ram_size;  /* sum of region sizes */
	struct gmem_dirty *dirty;   /* NULL until a migration needs it */
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

/* Mark guest range [gpa, gpa + len) as written by the VMM, when a
 * migration is logging (a no-op otherwise).  Bytes outside guest RAM are
 * ignored: the caller checked its range with gmem_ptr() before it wrote. */
static inline void gmem_mark_dirty(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	struct gmem_dirty *d = __atomic_load_n(&m->dirty, __ATOMIC_ACQUIRE);

	if (!d || !len || !__atomic_load_n(&d->on, __ATOMIC_ACQUIRE))
		return;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct gmem_region *r = &m->region[i];
		uint64_t first, last;

		if (gpa >= r->gpa + r->size || gpa + len <= r->gpa || gpa + len < gpa)
			continue;
		first = (gpa > r->gpa ? gpa - r->gpa : 0) / GMEM_DIRTY_PAGE;
		last = ((gpa + len < r->gpa + r->size ? gpa + len : r->gpa + r->size) - r->gpa - 1) /
		       GMEM_DIRTY_PAGE;
		for (uint64_t p = first; p <= last;) {
			/* whole words at once inside a long range */
			uint64_t n = 64 - p % 64 <= last - p + 1 ? 64 - p % 64 : last - p + 1;
			uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << (p % 64);

			__atomic_fetch_or(&d->bits[i][p / 64], mask, __ATOMIC_RELEASE);
			p += n;
		}
	}
}

/* The same for a host pointer into guest RAM (an iovec a device wrote). */
static inline void gmem_mark_dirty_hva(const struct gmem *m, const void *hva, uint64_t len)
{
	const uint8_t *p = hva;

	if (!__atomic_load_n(&m->dirty, __ATOMIC_ACQUIRE))
		return;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct gmem_region *r = &m->region[i];

		if (p >= r->hva && (uint64_t)(p - r->hva) < r->size) {
			gmem_mark_dirty(m, r->gpa + (uint64_t)(p - r->hva), len);
			return;
		}
	}
}

#endif
