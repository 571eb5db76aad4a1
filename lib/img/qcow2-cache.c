/* qcow2 metadata cache: cluster-sized tables kept in memory, written back
 * by the owner (qcow2-cluster.c / qcow2-refcount.c) in crash-safe order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

int qcow2_cache_init(struct qcow2_cache *c, uint32_t tsize, int n)
{
	memset(c, 0, sizeof(*c));
	if (n < 4)
		n = 4;
	c->tsize = tsize;
	c->n = n;
	c->mem = aligned_alloc(4096, (size_t)tsize * (size_t)n < 4096 ? 4096 :
			       VIREO_ALIGN_UP((size_t)tsize * (size_t)n, 4096));
	c->e = calloc((size_t)n, sizeof(*c->e));
	if (!c->mem || !c->e) {
		qcow2_cache_free(c);
		return -ENOMEM;
	}
	return 0;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
	free(c->mem);
	free(c->e);
	free(c->map);
	memset(c, 0, sizeof(*c));
}

static int slot_of(const struct qcow2_cache *c, uint64_t key)
{
	if (key >= c->map_len)
		return -1;
	return c->map[key] - 1;
}

uint8_t *qcow2_cache_find(struct qcow2_cache *c, uint64_t key, uint64_t off)
{
	int s = slot_of(c, key);

	if (s < 0 || c->e[s].off != off)
		return NULL;
	c->e[s].lru = ++c->tick;
	return c->mem + (size_t)s * c->tsize;
}

int qcow2_cache_victim(struct qcow2_cache *c)
{
	int best = 0;

	for (int i = 0; i < c->n; i++) {
		if (!c->e[i].off)
			return i;
		if (c->e[i].lru < c->e[best].lru)
			best = i;
	}
	return best;
}

uint8_t *qcow2_cache_install(struct qcow2_cache *c, int slot, uint64_t key,
			     uint64_t off)
{
	struct qcow2_cache_entry *e = &c->e[slot];
	int old;

	if (key >= c->map_len) {
		uint64_t nl = VIREO_MAX(key + 1, c->map_len * 2);
		int32_t *m = realloc(c->map, nl * sizeof(*m));
		if (!m)
			return NULL;
		memset(m + c->map_len, 0, (nl - c->map_len) * sizeof(*m));
		c->map = m;
		c->map_len = nl;
	}
	if (e->off && c->map[e->key] == slot + 1)
		c->map[e->key] = 0;
	old = c->map[key] - 1;
	if (old >= 0 && old != slot)
		c->e[old].off = 0;  /* stale copy under the same key */
	e->off = off;
	e->key = key;
	e->dirty = false;
	e->lru = ++c->tick;
	c->map[key] = slot + 1;
	return c->mem + (size_t)slot * c->tsize;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, const uint8_t *table)
{
	size_t s = (size_t)(table - c->mem) / c->tsize;

	c->e[s].dirty = true;
}

void qcow2_cache_drop(struct qcow2_cache *c, uint64_t key)
{
	int s = slot_of(c, key);

	if (s >= 0) {
		c->e[s].off = 0;
		c->e[s].dirty = false;
		c->map[key] = 0;
	}
}

void qcow2_cache_clear(struct qcow2_cache *c)
{
	for (int i = 0; i < c->n; i++) {
		c->e[i].off = 0;
		c->e[i].dirty = false;
	}
	if (c->map)
		memset(c->map, 0, c->map_len * sizeof(*c->map));
}
