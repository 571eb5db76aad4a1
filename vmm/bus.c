#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"

int bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	return -pthread_rwlock_init(&b->lock, NULL);
}

void bus_destroy(struct bus *b)
{
	free(b->r);
	b->r = NULL;
	b->n = b->cap = 0;
	pthread_rwlock_destroy(&b->lock);
}

static bool bus_overlaps(const struct bus *b, uint64_t base, uint64_t len,
			 const struct bus_range *skip)
{
	for (unsigned i = 0; i < b->n; i++) {
		const struct bus_range *r = &b->r[i];
		if (r == skip)
			continue;
		if (base < r->base + r->len && r->base < base + len)
			return true;
	}
	return false;
}

int bus_add(struct bus *b, uint64_t base, uint64_t len, bus_io_fn *fn,
	    void *opaque, const char *name)
{
	int ret = 0;

	if (!len || base + len < base)
		return -EINVAL;
	pthread_rwlock_wrlock(&b->lock);
	if (bus_overlaps(b, base, len, NULL)) {
		ret = -EEXIST;
		goto out;
	}
	if (b->n == b->cap) {
		unsigned cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *r = realloc(b->r, cap * sizeof(*r));
		if (!r) {
			ret = -ENOMEM;
			goto out;
		}
		b->r = r;
		b->cap = cap;
	}
	b->r[b->n++] = (struct bus_range){ base, len, fn, opaque, name };
out:
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

static struct bus_range *bus_find_exact(struct bus *b, uint64_t base, void *opaque)
{
	for (unsigned i = 0; i < b->n; i++)
		if (b->r[i].base == base && b->r[i].opaque == opaque)
			return &b->r[i];
	return NULL;
}

int bus_remove(struct bus *b, uint64_t base, void *opaque)
{
	struct bus_range *r;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&b->lock);
	r = bus_find_exact(b, base, opaque);
	if (r) {
		*r = b->r[--b->n];
		ret = 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

int bus_move(struct bus *b, uint64_t old_base, void *opaque, uint64_t new_base)
{
	struct bus_range *r;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&b->lock);
	r = bus_find_exact(b, old_base, opaque);
	if (r) {
		if (new_base + r->len < new_base ||
		    bus_overlaps(b, new_base, r->len, r)) {
			ret = -EEXIST;
		} else {
			r->base = new_base;
			ret = 0;
		}
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, unsigned len,
		bool is_write)
{
	struct bus_range hit = { 0 };
	bool found = false;

	pthread_rwlock_rdlock(&b->lock);
	for (unsigned i = 0; i < b->n; i++) {
		const struct bus_range *r = &b->r[i];
		if (addr >= r->base && addr - r->base < r->len) {
			/* An access straddling the end of a range is dropped:
			 * handlers only ever see offsets inside their range. */
			if (len <= r->len - (addr - r->base)) {
				hit = *r;
				found = true;
			}
			break;
		}
	}
	pthread_rwlock_unlock(&b->lock);
	if (found)
		hit.fn(hit.opaque, addr - hit.base, data, len, is_write);
	else if (!is_write)
		memset(data, 0xff, len);
	return found;
}
