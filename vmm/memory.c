#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vireo/util.h>

#include "layout.h"
#include "memory.h"

#define MEMORY_GUARD (2 * MiB)
_Static_assert(MEMORY_GUARD == MEMORY_ALIGN, "a guard is one alignment unit");

int memory_layout(struct gmem *m, uint64_t ram)
{
	memset(m, 0, sizeof(*m));
	if (ram < 2 * MiB || ram > (1ULL << 46))
		return -EINVAL;
	m->region[0].gpa = 0;
	m->region[0].size = VIREO_MIN(ram, LAYOUT_PCI_HOLE);
	m->nr_regions = 1;
	if (ram > LAYOUT_PCI_HOLE) {
		m->region[1].gpa = LAYOUT_4G;
		m->region[1].size = ram - LAYOUT_PCI_HOLE;
		m->nr_regions = 2;
	}
	m->ram_size = ram;
	return 0;
}

static unsigned e820_add(struct e820_entry *e, unsigned n, unsigned max,
			 uint64_t addr, uint64_t size, uint32_t type)
{
	if (n < max && size)
		e[n++] = (struct e820_entry){ addr, size, type };
	return n;
}

unsigned memory_e820(const struct gmem *m, struct e820_entry *e, unsigned max)
{
	unsigned n = 0;
	uint64_t low = m->region[0].size;

	n = e820_add(e, n, max, 0, VIREO_MIN(low, LAYOUT_EBDA), E820_RAM);
	n = e820_add(e, n, max, LAYOUT_EBDA, LAYOUT_HIGH_RAM - LAYOUT_EBDA,
		     E820_RESERVED);
	if (low > LAYOUT_HIGH_RAM)
		n = e820_add(e, n, max, LAYOUT_HIGH_RAM, low - LAYOUT_HIGH_RAM,
			     E820_RAM);
	/* ECAM must be reserved in e820 for Linux to trust MCFG. */
	n = e820_add(e, n, max, LAYOUT_ECAM_BASE, LAYOUT_ECAM_SIZE, E820_RESERVED);
	for (unsigned i = 1; i < m->nr_regions; i++)
		n = e820_add(e, n, max, m->region[i].gpa, m->region[i].size,
			     E820_RAM);
	return n;
}

uint8_t *memory_reserve(size_t len, uint8_t **aligned)
{
	uint8_t *base = mmap(NULL, len + MEMORY_ALIGN, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (base == MAP_FAILED)
		return NULL;
	*aligned = base + (VIREO_ALIGN_UP((uintptr_t)base, MEMORY_ALIGN) - (uintptr_t)base);
	return base;
}

int memory_map(struct gmem *m, bool merge, bool hugepages,
	       uint8_t **reservation, size_t *reservation_len)
{
	size_t total = MEMORY_GUARD, off;
	uint8_t *base, *start;

	for (unsigned i = 0; i < m->nr_regions; i++)
		total += m->region[i].size + MEMORY_GUARD;
	/* At a 2 MiB boundary, so that huge pages can back the RAM. */
	base = memory_reserve(total, &start);
	if (!base)
		return -errno;
	*reservation = base;
	*reservation_len = total + MEMORY_ALIGN;
	off = (size_t)(start - base) + MEMORY_GUARD;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		struct gmem_region *r = &m->region[i];
		void *p = mmap(base + off, r->size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
			       -1, 0);
		if (p == MAP_FAILED) {
			int err = -errno;
			memory_unmap(base, *reservation_len);
			*reservation = NULL;
			return err;
		}
		if (merge)
			madvise(p, r->size, MADV_MERGEABLE);
		if (hugepages)
			madvise(p, r->size, MADV_HUGEPAGE);
		r->hva = p;
		off += r->size + MEMORY_GUARD;
	}
	return 0;
}

void memory_unmap(uint8_t *reservation, size_t reservation_len)
{
	if (reservation)
		munmap(reservation, reservation_len);
}

int memory_dirty_alloc(struct gmem *m)
{
	struct gmem_dirty *d;

	if (m->dirty)
		return 0;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		uint64_t pages = m->region[i].size / GMEM_DIRTY_PAGE + 1;

		d->bits[i] = calloc((pages + 63) / 64, sizeof(uint64_t));
		if (!d->bits[i]) {
			for (unsigned k = 0; k < i; k++)
				free(d->bits[k]);
			free(d);
			return -ENOMEM;
		}
	}
	__atomic_store_n(&m->dirty, d, __ATOMIC_RELEASE);
	return 0;
}

void memory_dirty_free(struct gmem *m)
{
	struct gmem_dirty *d = m->dirty;

	if (!d)
		return;
	m->dirty = NULL;
	for (unsigned i = 0; i < GMEM_MAX_REGIONS; i++)
		free(d->bits[i]);
	free(d);
}
