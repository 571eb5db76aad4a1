/* qcow2 refcounts: get/update through the cache, cluster allocation,
 * growing the refcount table, deferred frees, full rebuild (repair). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2.h"

uint64_t qcow2_rb_get(const uint8_t *rb, uint32_t order, uint64_t idx)
{
	switch (order) {
	case 0: case 1: case 2: {
		uint32_t bits = 1u << order;
		uint64_t bit = idx * bits;
		return (rb[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
	}
	case 3: return rb[idx];
	case 4: { uint16_t v; memcpy(&v, rb + idx * 2, 2); return be16toh(v); }
	case 5: { uint32_t v; memcpy(&v, rb + idx * 4, 4); return be32toh(v); }
	default: { uint64_t v; memcpy(&v, rb + idx * 8, 8); return be64toh(v); }
	}
}

void qcow2_rb_set(uint8_t *rb, uint32_t order, uint64_t idx, uint64_t v)
{
	switch (order) {
	case 0: case 1: case 2: {
		uint32_t bits = 1u << order;
		uint64_t bit = idx * bits;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
		rb[bit / 8] = (uint8_t)((rb[bit / 8] & ~mask) |
					((v << (bit % 8)) & mask));
		break;
	}
	case 3: rb[idx] = (uint8_t)v; break;
	case 4: { uint16_t x = htobe16((uint16_t)v); memcpy(rb + idx * 2, &x, 2); break; }
	case 5: { uint32_t x = htobe32((uint32_t)v); memcpy(rb + idx * 4, &x, 4); break; }
	default: { uint64_t x = htobe64(v); memcpy(rb + idx * 8, &x, 8); break; }
	}
}

static int rb_evict_slot(struct qcow2 *q, int slot)
{
	struct qcow2_cache_entry *e = &q->rbc.e[slot];
	int r;

	if (e->off && e->dirty) {
		r = qcow2_pwrite(q, q->rbc.mem + (size_t)slot * q->rbc.tsize,
				 q->cluster_size, e->off);
		if (r < 0)
			return r;
		e->dirty = false;
	}
	return 0;
}

static int rt_grow(struct qcow2 *q, uint64_t min_entries);

/* Create the missing refcount block for table index ri, placed inside the
 * range it describes (so it counts itself), avoiding cluster @avoid. */
static int rb_create(struct qcow2 *q, uint64_t ri, uint64_t avoid, uint8_t **out)
{
	uint64_t first = ri * q->rb_entries, p = first;
	uint8_t *t;
	int slot, r;

	if (ri >= q->rt_size) {
		r = rt_grow(q, ri + 1);
		if (r < 0)
			return r;
		if (q->rt[ri])
			return 1;   /* the grow created it; caller reloads */
	}
	if (p == 0)
		p = 1;
	if (p == avoid)
		p++;
	if (p >= first + q->rb_entries)
		return vimg_fail(q->img, -EIO, "no room for a refcount block");
	slot = qcow2_cache_victim(&q->rbc);
	r = rb_evict_slot(q, slot);
	if (r < 0)
		return r;
	t = qcow2_cache_install(&q->rbc, slot, ri, p << q->cluster_bits);
	if (!t)
		return -ENOMEM;
	memset(t, 0, q->cluster_size);
	qcow2_rb_set(t, (uint32_t)q->refcount_order, p - first, 1);
	q->rbc.e[slot].dirty = true;
	q->rt[ri] = p << q->cluster_bits;
	q->rt_dirty = true;
	q->meta_changed = true;
	q->file_end = VIREO_MAX(q->file_end, (p + 1) << q->cluster_bits);
	qcow2_meta_mark(q, q->rt[ri], q->cluster_size, true);
	*out = t;
	return 0;
}

/* Load the refcount block of table index ri (NULL if none and !create). */
static int rb_load(struct qcow2 *q, uint64_t ri, bool create, uint64_t avoid,
		   uint8_t **out)
{
	uint64_t off;
	uint8_t *t;
	int slot, r;

	*out = NULL;
	for (;;) {
		if (ri < q->rt_size && q->rt[ri])
			break;
		if (!create)
			return 0;
		r = rb_create(q, ri, avoid, out);
		if (r <= 0)
			return r;
	}
	off = q->rt[ri] & QCOW2_RT_OFFSET_MASK;
	t = qcow2_cache_find(&q->rbc, ri, off);
	if (t) {
		*out = t;
		return 0;
	}
	r = qcow2_check_host(q, off, q->cluster_size, "refcount block");
	if (r < 0)
		return r;
	slot = qcow2_cache_victim(&q->rbc);
	r = rb_evict_slot(q, slot);
	if (r < 0)
		return r;
	t = qcow2_cache_install(&q->rbc, slot, ri, off);
	if (!t)
		return -ENOMEM;
	r = qcow2_pread(q, t, q->cluster_size, off);
	if (r < 0) {
		qcow2_cache_drop(&q->rbc, ri);
		return r;
	}
	*out = t;
	return 0;
}

int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *rc)
{
	uint8_t *t;
	int r = rb_load(q, cluster >> q->rb_bits, false, 0, &t);

	if (r < 0)
		return r;
	*rc = t ? qcow2_rb_get(t, (uint32_t)q->refcount_order,
			       cluster & (q->rb_entries - 1)) : 0;
	return 0;
}

int qcow2_refcount_update(struct qcow2 *q, uint64_t cluster, int64_t delta)
{
	uint8_t *t;
	uint64_t v, nv, idx = cluster & (q->rb_entries - 1);
	int r = rb_load(q, cluster >> q->rb_bits, delta > 0, cluster, &t);

	if (r < 0)
		return r;
	if (!t)
		return vimg_fail(q->img, -EIO,
			"refcount of cluster at %llu is already 0; run 'vireo-img check -r all'",
			(unsigned long long)(cluster << q->cluster_bits));
	v = qcow2_rb_get(t, (uint32_t)q->refcount_order, idx);
	if (delta < 0 && v < (uint64_t)-delta)
		return vimg_fail(q->img, -EIO,
			"refcount of cluster at %llu would drop below 0; run 'vireo-img check -r all'",
			(unsigned long long)(cluster << q->cluster_bits));
	nv = v + (uint64_t)delta;
	if (delta > 0 && (nv > q->refcount_max || nv < v))
		return vimg_fail(q->img, -ERANGE,
			"refcount overflow on cluster at %llu (max %llu with %u-bit refcounts)",
			(unsigned long long)(cluster << q->cluster_bits),
			(unsigned long long)q->refcount_max, q->refcount_bits);
	qcow2_rb_set(t, (uint32_t)q->refcount_order, idx, nv);
	qcow2_cache_mark_dirty(&q->rbc, t);
	q->meta_changed = true;
	if (nv == 0 && cluster < q->free_hint)
		q->free_hint = cluster;
	return 0;
}

/* Find n free contiguous clusters starting at the hint. */
static int find_free(struct qcow2 *q, uint64_t n, uint64_t *start,
		     uint64_t *first_free)
{
	uint64_t c = VIREO_MAX(q->free_hint, 1), s = c, run = 0;

	*first_free = UINT64_MAX;
	uint64_t limit = (1ull << 56) >> q->cluster_bits;

	while (run < n) {
		uint64_t ri = c >> q->rb_bits, rc;
		if (c >= limit)
			return vimg_fail(q->img, -ENOSPC, "image file would exceed 64 PiB");
		if (ri >= q->rt_size || !q->rt[ri]) {
			/* Whole block free: jump over it. */
			uint64_t end = (ri + 1) << q->rb_bits;
			if (*first_free == UINT64_MAX)
				*first_free = c;
			run += end - c;
			c = end;
			continue;
		}
		int r = qcow2_refcount_get(q, c, &rc);
		if (r < 0)
			return r;
		if (rc && c >= q->file_end >> q->cluster_bits)
			/* Nothing past the end of the file can be in use: this
			 * refcount block holds something else (e.g. data). */
			return vimg_fail(q->img, -EIO,
				"corrupt refcounts: refcount block %llu (host offset %llu) says cluster at %llu, past the end of the file (%llu bytes), is in use; run 'vireo-img check -r all'",
				(unsigned long long)ri,
				(unsigned long long)(q->rt[ri] & QCOW2_RT_OFFSET_MASK),
				(unsigned long long)(c << q->cluster_bits),
				(unsigned long long)q->file_end);
		if (rc) {
			run = 0;
			s = c + 1;
		} else {
			if (*first_free == UINT64_MAX)
				*first_free = c;
			run++;
		}
		c++;
	}
	*start = s;
	return 0;
}

int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *off)
{
	uint64_t s = 0, first_free = 0;
	int r;
	bool again;

	do {
		again = false;
		r = find_free(q, n, &s, &first_free);
		if (r < 0)
			return r;
		for (uint64_t ri = s >> q->rb_bits; ri <= (s + n - 1) >> q->rb_bits; ri++) {
			if (ri < q->rt_size && q->rt[ri])
				continue;
			uint8_t *t;
			r = rb_load(q, ri, true, UINT64_MAX, &t);
			if (r < 0)
				return r;
			again = true;
		}
	} while (again);
	for (uint64_t i = 0; i < n; i++) {
		r = qcow2_refcount_update(q, s + i, 1);
		if (r < 0)
			return r;
	}
	/* Everything before the first free cluster seen is in use. */
	q->free_hint = first_free >= s ? s + n : first_free;
	*off = s << q->cluster_bits;
	q->file_end = VIREO_MAX(q->file_end, (s + n) << q->cluster_bits);
	/* Freed metadata may come back as data: the callers that allocate
	 * metadata mark it again. */
	qcow2_meta_mark(q, *off, n << q->cluster_bits, false);
	return 0;
}

int qcow2_free_later(struct qcow2 *q, uint64_t host_off, uint64_t nclusters)
{
	for (uint64_t i = 0; i < nclusters; i++) {
		if (q->n_pending == q->cap_pending) {
			size_t nc = q->cap_pending ? q->cap_pending * 2 : 256;
			uint64_t *p = realloc(q->pending_free, nc * sizeof(*p));
			if (!p)
				return -ENOMEM;
			q->pending_free = p;
			q->cap_pending = nc;
		}
		q->pending_free[q->n_pending++] = host_off + (i << q->cluster_bits);
	}
	q->meta_changed = true;
	return 0;
}

int qcow2_apply_pending_frees(struct qcow2 *q)
{
	for (size_t i = 0; i < q->n_pending; i++) {
		int r = qcow2_refcount_update(q, q->pending_free[i] >> q->cluster_bits, -1);
		if (r < 0) {
			q->n_pending = 0;
			return r;
		}
	}
	q->n_pending = 0;
	return 0;
}

static int rt_write(struct qcow2 *q)
{
	size_t bytes = (size_t)q->rt_clusters << q->cluster_bits;
	uint64_t *be = calloc(1, bytes);
	int r;

	if (!be)
		return -ENOMEM;
	for (uint64_t i = 0; i < q->rt_size; i++)
		be[i] = htobe64(q->rt[i]);
	r = qcow2_pwrite(q, be, bytes, q->rt_offset);
	free(be);
	if (r == 0)
		q->rt_dirty = false;
	return r;
}

int qcow2_refcount_write_dirty(struct qcow2 *q)
{
	int r;

	for (int i = 0; i < q->rbc.n; i++) {
		r = rb_evict_slot(q, i);
		if (r < 0)
			return r;
	}
	if (q->rt_dirty)
		return rt_write(q);
	return 0;
}

int qcow2_refcount_sync(struct qcow2 *q)
{
	int r = qcow2_refcount_write_dirty(q);

	return r < 0 ? r : qcow2_sync(q);
}

static int write_rt_header(struct qcow2 *q, uint64_t off, uint32_t clusters)
{
	uint8_t h[12];
	uint64_t o = htobe64(off);
	uint32_t c = htobe32(clusters);

	memcpy(h, &o, 8);
	memcpy(h + 8, &c, 4);
	return qcow2_pwrite(q, h, sizeof(h), QH_RT_OFFSET);   /* with rt_clusters */
}

/*
 * Move the refcount table to the end of the file with room for at least
 * min_entries, creating the refcount blocks that describe the new table
 * (placed right after it).  Crash-safe: the new structures are complete on
 * disk before the header points to them; the old table is freed later.
 */
static int rt_grow(struct qcow2 *q, uint64_t min_entries)
{
	uint64_t cs = q->cluster_size, T = q->file_end >> q->cluster_bits;
	uint64_t per = cs / 8, n, m = 0, new_entries;
	uint64_t *nrt = NULL;
	uint8_t *blk = NULL;
	int r;

	new_entries = VIREO_MAX(min_entries, q->rt_size + q->rt_size / 2 + 1);
	/* Refuse before sizing anything by a cluster index far past the end
	 * (the loop below is linear in the table's size). */
	if (new_entries > QCOW2_MAX_RT_BYTES * 4ull / 8)
		return vimg_fail(q->img, -EFBIG, "refcount table would be too large "
				 "(%llu entries)", (unsigned long long)new_entries);
	for (;;) {
		uint64_t end, cnt = 0, maxri;
		n = (new_entries + per - 1) / per;
		end = T + n + m;
		maxri = (end - 1) >> q->rb_bits;
		for (uint64_t ri = T >> q->rb_bits; ri <= maxri; ri++)
			if (ri >= q->rt_size || !q->rt[ri])
				cnt++;
		if (maxri + 1 > n * per) {
			new_entries = maxri + 1;
			continue;
		}
		if (cnt == m)
			break;
		m = cnt;
	}
	if (n * cs > QCOW2_MAX_RT_BYTES * 4ull)
		return vimg_fail(q->img, -EFBIG, "refcount table would be too large");
	nrt = calloc(n * per, 8);
	blk = calloc(1, cs);
	if (!nrt || !blk) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(nrt, q->rt, q->rt_size * 8);
	/* Assign the new blocks' places. */
	{
		uint64_t b = T + n;
		for (uint64_t ri = T >> q->rb_bits; ri <= (T + n + m - 1) >> q->rb_bits; ri++)
			if (!nrt[ri])
				nrt[ri] = (b++) << q->cluster_bits;
	}
	/* New blocks: count every new cluster in their range. */
	for (uint64_t ri = T >> q->rb_bits; ri <= (T + n + m - 1) >> q->rb_bits; ri++) {
		uint64_t first = ri << q->rb_bits;
		bool is_new = ri >= q->rt_size || !q->rt[ri];
		if (!is_new) {
			for (uint64_t c = VIREO_MAX(first, T);
			     c < VIREO_MIN(first + q->rb_entries, T + n + m); c++) {
				r = qcow2_refcount_update(q, c, 1);
				if (r < 0)
					goto out;
			}
			continue;
		}
		memset(blk, 0, cs);
		for (uint64_t c = VIREO_MAX(first, T);
		     c < VIREO_MIN(first + q->rb_entries, T + n + m); c++)
			qcow2_rb_set(blk, (uint32_t)q->refcount_order, c - first, 1);
		r = qcow2_pwrite(q, blk, cs, nrt[ri]);
		if (r < 0)
			goto out;
	}
	/* Blocks still cached must be on disk before the new table. */
	for (int i = 0; i < q->rbc.n; i++) {
		r = rb_evict_slot(q, i);
		if (r < 0)
			goto out;
	}
	{
		uint64_t *be = calloc(n * per, 8);
		if (!be) {
			r = -ENOMEM;
			goto out;
		}
		for (uint64_t i = 0; i < n * per; i++)
			be[i] = htobe64(nrt[i]);
		r = qcow2_pwrite(q, be, n * cs, T << q->cluster_bits);
		free(be);
		if (r < 0)
			goto out;
	}
	r = qcow2_sync(q);
	if (r < 0)
		goto out;
	r = write_rt_header(q, T << q->cluster_bits, (uint32_t)n);
	if (r < 0)
		goto out;
	r = qcow2_sync(q);
	if (r < 0)
		goto out;
	r = qcow2_free_later(q, q->rt_offset, q->rt_clusters);
	if (r < 0)
		goto out;
	free(q->rt);
	q->rt = nrt;
	nrt = NULL;
	q->rt_offset = T << q->cluster_bits;
	q->rt_clusters = (uint32_t)n;
	q->rt_size = n * per;
	q->rt_dirty = false;
	q->file_end = (T + n + m) << q->cluster_bits;
	qcow2_meta_mark(q, T << q->cluster_bits, (n + m) << q->cluster_bits, true);
out:
	free(nrt);
	free(blk);
	return r;
}

/*
 * Rewrite all refcounts from counts[0..nclusters) (computed by a full walk).
 * Missing refcount blocks and a bigger table go to the end of the file.
 */
/* The counted references a rebuild starts from. */
struct rebuild {
	struct qcow2 *q;
	const uint64_t *counts_in;  /* per cluster, from the check walk */
	uint64_t nclusters;         /* entries of counts_in */
	uint64_t T;                 /* new structures go from this cluster on */
};

/* Whether refcount block @ri is there and valid (the walk counted it). */
static bool block_valid(const struct rebuild *rb, uint64_t ri)
{
	const struct qcow2 *q = rb->q;
	uint64_t c;

	if (ri >= q->rt_size || !q->rt[ri])
		return false;
	c = (q->rt[ri] & QCOW2_RT_OFFSET_MASK) >> q->cluster_bits;
	return c < rb->nclusters && rb->counts_in[c];
}

/* Whether block @ri must exist: it describes used clusters or the new
 * structures past T. */
static bool block_needed(const struct rebuild *rb, uint64_t ri)
{
	const struct qcow2 *q = rb->q;
	uint64_t first = ri << q->rb_bits, last = first + q->rb_entries;

	if (last > rb->T)
		return true;
	for (uint64_t c = first; c < VIREO_MIN(last, rb->nclusters); c++)
		if (rb->counts_in[c])
			return true;
	return false;
}

/* Decide how many new blocks (*m) and whether the table must move (then
 * *rt_n clusters at T). */
static bool plan_rebuild(const struct rebuild *rb, uint64_t *rt_n, uint64_t *m)
{
	const struct qcow2 *q = rb->q;
	uint64_t per = q->cluster_size / 8;
	bool new_table = false;

	*rt_n = *m = 0;
	for (int iter = 0; iter < 64; iter++) {
		uint64_t need_ri, cnt = 0;
		uint64_t total = rb->T + *rt_n + *m;

		need_ri = ((total - 1) >> q->rb_bits) + 1;
		new_table = need_ri > q->rt_size;
		*rt_n = new_table ? (need_ri + per - 1) / per : 0;
		total = rb->T + *rt_n + *m;
		need_ri = ((total - 1) >> q->rb_bits) + 1;
		for (uint64_t ri = 0; ri < need_ri; ri++)
			if (!block_valid(rb, ri) && block_needed(rb, ri))
				cnt++;
		if (cnt == *m && (!new_table || *rt_n * per >= need_ri))
			break;
		*m = cnt;
	}
	return new_table;
}

/* Write every block of table @nrt from @counts (@total clusters). */
static int write_blocks(struct qcow2 *q, const uint64_t *nrt, uint64_t nrt_entries,
			const uint64_t *counts, uint64_t total)
{
	uint8_t *blk = malloc(q->cluster_size);
	int r = 0;

	if (!blk)
		return -ENOMEM;
	for (uint64_t ri = 0; ri < nrt_entries && r == 0; ri++) {
		uint64_t first = ri << q->rb_bits;
		if (!nrt[ri])
			continue;
		memset(blk, 0, q->cluster_size);
		for (uint64_t i = 0; i < q->rb_entries && first + i < total && r == 0; i++) {
			uint64_t v = counts[first + i];
			if (v > q->refcount_max)
				r = vimg_fail(q->img, -ERANGE,
					"cluster at %llu is used %llu times, more than %u-bit refcounts hold",
					(unsigned long long)((first + i) << q->cluster_bits),
					(unsigned long long)v, q->refcount_bits);
			else
				qcow2_rb_set(blk, (uint32_t)q->refcount_order, i, v);
		}
		if (r == 0)
			r = qcow2_pwrite(q, blk, q->cluster_size, nrt[ri]);
	}
	free(blk);
	return r;
}

/* Write table @nrt in place, or at T and point the header at it. */
static int write_table(struct qcow2 *q, const uint64_t *nrt, uint64_t nrt_entries,
		       bool new_table, uint64_t T, uint64_t rt_n)
{
	uint64_t *be = calloc(nrt_entries, 8);
	int r;

	if (!be)
		return -ENOMEM;
	for (uint64_t i = 0; i < nrt_entries; i++)
		be[i] = htobe64(nrt[i]);
	r = qcow2_pwrite(q, be, nrt_entries * 8,
			 new_table ? T << q->cluster_bits : q->rt_offset);
	free(be);
	if (r == 0)
		r = qcow2_sync(q);
	if (r == 0 && new_table) {
		r = write_rt_header(q, T << q->cluster_bits, (uint32_t)rt_n);
		if (r == 0)
			r = qcow2_sync(q);
		if (r == 0) {
			q->rt_offset = T << q->cluster_bits;
			q->rt_clusters = (uint32_t)rt_n;
		}
	}
	return r;
}

int qcow2_rebuild_refcounts(struct qcow2 *q, const uint64_t *counts_in,
			    uint64_t nclusters)
{
	struct rebuild rb = { .q = q, .counts_in = counts_in, .nclusters = nclusters,
		.T = VIREO_MAX(VIREO_MAX(nclusters, q->file_end >> q->cluster_bits), 1) };
	uint64_t T = rb.T, per = q->cluster_size / 8;
	uint64_t total, nrt_entries, rt_n, m, b, need_ri;
	uint64_t *counts, *nrt;
	bool new_table = plan_rebuild(&rb, &rt_n, &m);
	int r;

	total = T + rt_n + m;
	nrt_entries = new_table ? rt_n * per : q->rt_size;
	counts = calloc(total, sizeof(*counts));
	nrt = calloc(nrt_entries, 8);
	if (!counts || !nrt) {
		free(counts);
		free(nrt);
		return -ENOMEM;
	}
	memcpy(counts, counts_in, nclusters * sizeof(*counts));
	/* Keep the valid blocks; new ones go after the new table. */
	for (uint64_t ri = 0; ri < VIREO_MIN(q->rt_size, nrt_entries); ri++)
		if (block_valid(&rb, ri))
			nrt[ri] = q->rt[ri] & QCOW2_RT_OFFSET_MASK;
	b = T + rt_n;
	need_ri = ((total - 1) >> q->rb_bits) + 1;
	for (uint64_t ri = 0; ri < need_ri && b < total; ri++) {
		if (!nrt[ri] && block_needed(&rb, ri)) {
			counts[b] = 1;
			nrt[ri] = (b++) << q->cluster_bits;
		}
	}
	for (uint64_t c = T; c < T + rt_n; c++)
		counts[c] = 1;
	r = write_blocks(q, nrt, nrt_entries, counts, total);
	if (r == 0)
		r = write_table(q, nrt, nrt_entries, new_table, T, rt_n);
	free(counts);
	if (r < 0) {
		free(nrt);
		return r;
	}
	free(q->rt);
	q->rt = nrt;
	q->rt_size = nrt_entries;
	q->rt_dirty = false;
	qcow2_cache_clear(&q->rbc);
	q->free_hint = 1;
	q->n_pending = 0;
	if (total > T)
		q->file_end = VIREO_MAX(q->file_end, total << q->cluster_bits);
	return qcow2_meta_build(q);   /* refcount blocks moved */
}
