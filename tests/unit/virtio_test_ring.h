/*
 * Test helper: a fake guest (RAM + a driver's view of split rings) for the
 * virtqueue and virtio device unit tests.  Header-only, static functions.
 */
#ifndef VIREO_TEST_VIRTIO_RING_H
#define VIREO_TEST_VIRTIO_RING_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtq.h"

#define TMEM_GPA  0x100000ULL
#define TMEM_SIZE (8ULL << 20)
#define TMEM_DATA (TMEM_GPA + (4ULL << 20))   /* buffers from here */

struct tmem {
	struct gmem mem;
	uint8_t *ram;
	uint64_t next;   /* bump allocator for buffers */
};

struct tring {
	struct tmem *m;
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx;
};

static inline void tmem_init(struct tmem *m)
{
	memset(m, 0, sizeof(*m));
	m->ram = aligned_alloc(4096, TMEM_SIZE);
	memset(m->ram, 0, TMEM_SIZE);
	m->mem.region[0].gpa = TMEM_GPA;
	m->mem.region[0].size = TMEM_SIZE;
	m->mem.region[0].hva = m->ram;
	m->mem.nr_regions = 1;
	m->mem.ram_size = TMEM_SIZE;
	m->next = TMEM_DATA;
}

static inline void tmem_free(struct tmem *m)
{
	free(m->ram);
}

static inline void *tmem_ptr(struct tmem *m, uint64_t gpa)
{
	return m->ram + (gpa - TMEM_GPA);
}

/* A fresh 16-byte aligned buffer in guest RAM, filled with @fill. */
static inline uint64_t tmem_alloc(struct tmem *m, uint64_t len, int fill)
{
	uint64_t gpa = m->next;

	m->next = (m->next + len + 15) & ~15ULL;
	if (m->next > TMEM_GPA + TMEM_SIZE)
		abort();
	memset(tmem_ptr(m, gpa), fill, len);
	return gpa;
}

/* Rings for a queue of @size at @base (needs 16*size + 6+2*size + 6+8*size
 * bytes, rounded; up to 32768 entries fit in the first 4 MiB of RAM). */
static inline void tring_init(struct tring *r, struct tmem *m, uint64_t base,
			      uint16_t size)
{
	memset(r, 0, sizeof(*r));
	r->m = m;
	r->size = size;
	r->desc = base;
	r->avail = base + 16ULL * size;
	r->used = (r->avail + 6 + 2ULL * size + 3) & ~3ULL;
	memset(tmem_ptr(m, base), 0, (size_t)(r->used + 6 + 8ULL * size - base));
}

static inline void tring_attach(struct tring *r, struct virtq *q)
{
	q->size = r->size;
	q->desc_gpa = r->desc;
	q->avail_gpa = r->avail;
	q->used_gpa = r->used;
}

static inline void tring_desc(struct tring *r, uint16_t i, uint64_t addr,
			      uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = tmem_ptr(r->m, r->desc + 16ULL * i);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* Write one entry of an indirect table living at @table. */
static inline void tring_idesc(struct tmem *m, uint64_t table, uint16_t i,
			       uint64_t addr, uint32_t len, uint16_t flags,
			       uint16_t next)
{
	uint8_t *d = tmem_ptr(m, table + 16ULL * i);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static inline uint16_t *tring_avail_field(struct tring *r, unsigned i)
{
	return (uint16_t *)tmem_ptr(r->m, r->avail + 2ULL * i);
}

static inline void tring_set_avail_idx(struct tring *r, uint16_t idx)
{
	r->avail_idx = idx;
	*tring_avail_field(r, 1) = idx;
}

/* Make chain @head available. */
static inline void tring_publish(struct tring *r, uint16_t head)
{
	*tring_avail_field(r, 2 + (r->avail_idx % r->size)) = head;
	tring_set_avail_idx(r, (uint16_t)(r->avail_idx + 1));
}

static inline void tring_set_avail_flags(struct tring *r, uint16_t flags)
{
	*tring_avail_field(r, 0) = flags;
}

static inline void tring_set_used_event(struct tring *r, uint16_t v)
{
	*tring_avail_field(r, 2 + r->size) = v;
}

static inline uint16_t tring_used_idx(struct tring *r)
{
	uint16_t v;

	memcpy(&v, tmem_ptr(r->m, r->used + 2), 2);
	return v;
}

static inline uint16_t tring_used_flags(struct tring *r)
{
	uint16_t v;

	memcpy(&v, tmem_ptr(r->m, r->used), 2);
	return v;
}

static inline uint16_t tring_avail_event(struct tring *r)
{
	uint16_t v;

	memcpy(&v, tmem_ptr(r->m, r->used + 4 + 8ULL * r->size), 2);
	return v;
}

static inline void tring_used_elem(struct tring *r, uint16_t k, uint32_t *id,
				   uint32_t *len)
{
	uint8_t *e = tmem_ptr(r->m, r->used + 4 + 8ULL * (k % r->size));

	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
}

#endif
