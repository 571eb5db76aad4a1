/* qcow2 cluster mapping: L1/L2 lookups through the cache, reads, allocating
 * writes with copy-on-write, zero clusters, block status and the ordered
 * flush (data, refcounts, L2, L1) that keeps the image crash-consistent. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2.h"

enum ctype { C_UNALLOC, C_ZERO, C_NORMAL, C_COMPRESSED };

static enum ctype classify(const struct qcow2 *q, uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED)
		return C_COMPRESSED;
	if (!q->extl2 && (e & QCOW2_OFLAG_ZERO) && q->version >= 3)
		return C_ZERO;
	if (e & QCOW2_OFFSET_MASK)
		return C_NORMAL;
	return C_UNALLOC;
}

uint64_t qcow2_l2_entry(const struct qcow2 *q, const uint8_t *t, uint32_t i)
{
	uint64_t v;

	memcpy(&v, t + (size_t)i * q->l2_entry_size, 8);
	return be64toh(v);
}

uint64_t qcow2_l2_bitmap(const struct qcow2 *q, const uint8_t *t, uint32_t i)
{
	uint64_t v;

	if (!q->extl2)
		return 0;
	memcpy(&v, t + (size_t)i * q->l2_entry_size + 8, 8);
	return be64toh(v);
}

void qcow2_l2_set(struct qcow2 *q, uint8_t *t, uint32_t i, uint64_t e)
{
	uint64_t v = htobe64(e);

	memcpy(t + (size_t)i * q->l2_entry_size, &v, 8);
	qcow2_cache_mark_dirty(&q->l2c, t);
	q->meta_changed = true;
}

static void l2_set_bitmap(struct qcow2 *q, uint8_t *t, uint32_t i, uint64_t b)
{
	uint64_t v = htobe64(b);

	memcpy(t + (size_t)i * q->l2_entry_size + 8, &v, 8);
	qcow2_cache_mark_dirty(&q->l2c, t);
}

int qcow2_check_host(struct qcow2 *q, uint64_t off, uint64_t len,
		     const char *what)
{
	uint64_t end = off + len;

	if (off == 0 || end < off)
		return vimg_fail(q->img, -EIO, "%s at host offset %llu overlaps the header",
				 what, (unsigned long long)off);
	if (end > q->file_end)
		return vimg_fail(q->img, -EIO,
			"%s at host offset %llu points past the end of the file (%llu bytes); run 'vireo-img check'",
			what, (unsigned long long)off, (unsigned long long)q->file_end);
	if (off < q->l1_offset + (uint64_t)q->l1_size * 8 && end > q->l1_offset)
		return vimg_fail(q->img, -EIO,
			"%s at host offset %llu overlaps the L1 table; run 'vireo-img check'",
			what, (unsigned long long)off);
	if (off < q->rt_offset + ((uint64_t)q->rt_clusters << q->cluster_bits) &&
	    end > q->rt_offset)
		return vimg_fail(q->img, -EIO,
			"%s at host offset %llu overlaps the refcount table; run 'vireo-img check'",
			what, (unsigned long long)off);
	return 0;
}

void qcow2_meta_mark(struct qcow2 *q, uint64_t off, uint64_t len, bool meta)
{
	uint64_t first, last;

	if (q->img->readonly || !len || !q->meta_map)
		return;
	first = off >> q->cluster_bits;
	last = (off + len - 1) >> q->cluster_bits;
	if (last < first)
		return;
	/* Only what lies in the file: a hostile table entry pointing far past
	 * its end must not size the map (such entries are refused anyway). */
	if (meta && last >= q->file_end >> q->cluster_bits) {
		if (first >= q->file_end >> q->cluster_bits)
			return;
		last = (q->file_end >> q->cluster_bits) - 1;
	}
	if (meta && last >= q->meta_clusters) {
		uint64_t n = VIREO_MAX(last + 1, q->meta_clusters * 2);
		uint8_t *m = realloc(q->meta_map, (n + 7) / 8);
		if (!m)
			return;   /* the check below then misses this range */
		memset(m + (q->meta_clusters + 7) / 8, 0, (n + 7) / 8 - (q->meta_clusters + 7) / 8);
		/* bits of the last old byte past meta_clusters are already 0 */
		q->meta_map = m;
		q->meta_clusters = n;
	}
	for (uint64_t c = first; c <= last && c < q->meta_clusters; c++) {
		if (meta)
			q->meta_map[c / 8] |= (uint8_t)(1u << (c % 8));
		else
			q->meta_map[c / 8] &= (uint8_t)~(1u << (c % 8));
	}
}

/* Mark the L2 tables an L1 table (host order) names. */
static void meta_mark_l1(struct qcow2 *q, const uint64_t *l1, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = l1[i] & QCOW2_OFFSET_MASK;
		if (off && !(off & (q->cluster_size - 1)))
			qcow2_meta_mark(q, off, q->cluster_size, true);
	}
}

int qcow2_meta_build(struct qcow2 *q)
{
	uint64_t n = q->file_end >> q->cluster_bits;

	if (q->img->readonly)
		return 0;
	free(q->meta_map);
	q->meta_clusters = VIREO_MAX(n, 1);
	q->meta_map = calloc((q->meta_clusters + 7) / 8, 1);
	if (!q->meta_map)
		return -ENOMEM;
	qcow2_meta_mark(q, 0, q->cluster_size, true);
	qcow2_meta_mark(q, q->l1_offset, (uint64_t)q->l1_size * 8, true);
	qcow2_meta_mark(q, q->rt_offset, (uint64_t)q->rt_clusters << q->cluster_bits, true);
	for (uint64_t i = 0; i < q->rt_size; i++)
		if (q->rt[i] & QCOW2_RT_OFFSET_MASK)
			qcow2_meta_mark(q, q->rt[i] & QCOW2_RT_OFFSET_MASK, q->cluster_size, true);
	meta_mark_l1(q, q->l1, q->l1_size);
	if (q->nb_snapshots)
		qcow2_meta_mark(q, q->snapshots_offset, q->snapshots_size, true);
	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		const struct qcow2_snap *s = &q->snaps[i];
		uint64_t *l1 = calloc((size_t)s->l1_size + 1, 8);
		if (!l1)
			return -ENOMEM;
		qcow2_meta_mark(q, s->l1_offset, (uint64_t)s->l1_size * 8, true);
		if (qcow2_pread(q, l1, (size_t)s->l1_size * 8, s->l1_offset) == 0) {
			for (uint32_t k = 0; k < s->l1_size; k++)
				l1[k] = be64toh(l1[k]);
			meta_mark_l1(q, l1, s->l1_size);
		}
		free(l1);
	}
	return 0;
}

int qcow2_check_data(struct qcow2 *q, uint64_t off)
{
	uint64_t c = off >> q->cluster_bits;
	int r = qcow2_check_host(q, off, q->cluster_size, "data cluster");

	if (r < 0)
		return r;
	if (q->meta_map && c < q->meta_clusters &&
	    (q->meta_map[c / 8] & (1u << (c % 8))))
		return vimg_fail(q->img, -EIO,
			"data cluster at host offset %llu overlaps metadata (an L2 or "
			"refcount block, a snapshot table or L1 table); the image is "
			"corrupt: run 'vireo-img check -r all'", (unsigned long long)off);
	return 0;
}

/* Write back one L2 slot; refcounts must reach the disk before it. */
static int l2_evict_slot(struct qcow2 *q, int slot)
{
	struct qcow2_cache_entry *e = &q->l2c.e[slot];
	int r;

	if (!e->off || !e->dirty)
		return 0;
	vimg_drain(q->img);   /* data writes running outside the lock first */
	r = qcow2_sync(q);
	if (r < 0)
		return r;
	if (!q->lazy) {
		/* Lazy refcounts: the dirty bit covers them until close. */
		r = qcow2_refcount_write_dirty(q);
		if (r < 0)
			return r;
		r = qcow2_sync(q);
		if (r < 0)
			return r;
	}
	r = qcow2_pwrite(q, q->l2c.mem + (size_t)slot * q->l2c.tsize,
			 q->cluster_size, e->off);
	if (r == 0)
		e->dirty = false;
	return r;
}

/* A cache slot (*slot, its table evicted) for the L2 table of @l1_idx at
 * host @off; its contents (*t) are for the caller to fill. */
static int l2_install(struct qcow2 *q, uint32_t l1_idx, uint64_t off,
		      uint8_t **t, int *slot)
{
	int r;

	*slot = qcow2_cache_victim(&q->l2c);
	r = l2_evict_slot(q, *slot);
	if (r < 0)
		return r;
	*t = qcow2_cache_install(&q->l2c, *slot, l1_idx, off);
	return *t ? 0 : -ENOMEM;
}

int qcow2_l2_load(struct qcow2 *q, uint32_t l1_idx, uint8_t **table)
{
	uint64_t off;
	uint8_t *t;
	int slot, r;

	*table = NULL;
	if (l1_idx >= q->l1_size)
		return 0;
	off = q->l1[l1_idx] & QCOW2_OFFSET_MASK;
	if (!off)
		return 0;
	t = qcow2_cache_find(&q->l2c, l1_idx, off);
	if (t) {
		*table = t;
		return 0;
	}
	if (off & (q->cluster_size - 1))
		return vimg_fail(q->img, -EIO,
			"L1 entry %u: L2 table offset %llu is not cluster-aligned; run 'vireo-img check'",
			l1_idx, (unsigned long long)off);
	r = qcow2_check_host(q, off, q->cluster_size, "L2 table");
	if (r < 0)
		return r;
	for (uint64_t ri = 0; ri < q->rt_size; ri++)
		if ((q->rt[ri] & QCOW2_RT_OFFSET_MASK) == off)
			return vimg_fail(q->img, -EIO,
				"L1 entry %u: L2 table at host offset %llu is refcount block %llu; run 'vireo-img check'",
				l1_idx, (unsigned long long)off, (unsigned long long)ri);
	r = l2_install(q, l1_idx, off, &t, &slot);
	if (r < 0)
		return r;
	r = qcow2_pread(q, t, q->cluster_size, off);
	if (r < 0) {
		qcow2_cache_drop(&q->l2c, l1_idx);
		return r;
	}
	*table = t;
	return 0;
}

static void l1_touch(struct qcow2 *q, uint32_t i)
{
	if (q->l1_dirty_lo >= q->l1_dirty_hi) {
		q->l1_dirty_lo = i;
		q->l1_dirty_hi = i + 1;
	} else {
		q->l1_dirty_lo = VIREO_MIN(q->l1_dirty_lo, i);
		q->l1_dirty_hi = VIREO_MAX(q->l1_dirty_hi, i + 1);
	}
	q->meta_changed = true;
}

bool qcow2_entry_clusters(const struct qcow2 *q, uint64_t e, uint64_t *first,
			  uint64_t *last)
{
	enum ctype ct = classify(q, e);

	if (ct == C_COMPRESSED) {
		uint32_t x = 62 - (q->cluster_bits - 8);
		uint64_t hoff = e & ((1ull << x) - 1);
		uint64_t nsec = ((e & ~QCOW2_OFLAG_COPIED & ~QCOW2_OFLAG_COMPRESSED) >> x) + 1;
		uint64_t end = (hoff & ~511ull) + nsec * 512 - 1;
		*first = hoff >> q->cluster_bits;
		*last = end >> q->cluster_bits;
		/* Compressed data spans at most two host clusters; a larger
		 * count from a hostile image is cut (check flags the rest). */
		if (*last > *first + 1)
			*last = *first + 1;
		return true;
	}
	if (e & QCOW2_OFFSET_MASK) {
		*first = *last = (e & QCOW2_OFFSET_MASK) >> q->cluster_bits;
		return true;
	}
	return false;
}

/* Add or drop one reference to every host cluster an L2 entry uses. */
static int entry_ref(struct qcow2 *q, uint64_t e, int delta, bool later)
{
	uint64_t first, last;

	if (!qcow2_entry_clusters(q, e, &first, &last))
		return 0;
	if (last > (q->file_end >> q->cluster_bits))
		last = first;
	for (uint64_t c = first; c <= last; c++) {
		int r = later ? qcow2_free_later(q, c << q->cluster_bits, 1) :
				qcow2_refcount_update(q, c, delta);
		if (r < 0)
			return r;
	}
	return 0;
}

int qcow2_l2_prepare(struct qcow2 *q, uint32_t l1_idx, uint8_t **table)
{
	uint64_t ent = q->l1[l1_idx], old = ent & QCOW2_OFFSET_MASK, noff, rc;
	uint8_t *t, *src = NULL;
	int slot, r;

	if (old) {
		r = qcow2_l2_load(q, l1_idx, &t);
		if (r < 0)
			return r;
		if (ent & QCOW2_OFLAG_COPIED) {
			*table = t;
			return 0;
		}
		r = qcow2_refcount_get(q, old >> q->cluster_bits, &rc);
		if (r < 0)
			return r;
		if (rc == 1) {
			q->l1[l1_idx] |= QCOW2_OFLAG_COPIED;
			l1_touch(q, l1_idx);
			*table = t;
			return 0;
		}
		/* Shared with a snapshot: copy it. */
		memcpy(q->cbuf2, t, q->cluster_size);
		src = q->cbuf2;
	}
	r = qcow2_alloc_clusters(q, 1, &noff);
	if (r < 0)
		return r;
	qcow2_meta_mark(q, noff, q->cluster_size, true);
	r = l2_install(q, l1_idx, noff, &t, &slot);
	if (r < 0)
		return r;
	if (src) {
		memcpy(t, src, q->cluster_size);
		/* Data clusters are counted once per L1 path: moving the
		 * active path from the old table to the copy leaves their
		 * refcounts unchanged; only the old table loses one. */
		for (uint32_t i = 0; i < q->l2_entries; i++) {
			uint64_t e = qcow2_l2_entry(q, t, i);
			if (e & QCOW2_OFLAG_COPIED) {
				uint64_t v = htobe64(e & ~QCOW2_OFLAG_COPIED);
				memcpy(t + (size_t)i * q->l2_entry_size, &v, 8);
			}
		}
		r = qcow2_free_later(q, old, 1);
		if (r < 0)
			return r;
	} else {
		memset(t, 0, q->cluster_size);
	}
	q->l2c.e[slot].dirty = true;
	q->l1[l1_idx] = noff | QCOW2_OFLAG_COPIED;
	l1_touch(q, l1_idx);
	*table = t;
	return 0;
}

int qcow2_l2_write_dirty(struct qcow2 *q)
{
	for (int i = 0; i < q->l2c.n; i++) {
		struct qcow2_cache_entry *e = &q->l2c.e[i];
		if (e->off && e->dirty) {
			int r = qcow2_pwrite(q, q->l2c.mem + (size_t)i * q->l2c.tsize,
					     q->cluster_size, e->off);
			if (r < 0)
				return r;
			e->dirty = false;
		}
	}
	return 0;
}

int qcow2_l1_write_dirty(struct qcow2 *q)
{
	uint32_t lo = q->l1_dirty_lo, hi = q->l1_dirty_hi;
	uint64_t *be;
	int r;

	if (lo >= hi)
		return 0;
	be = malloc((size_t)(hi - lo) * 8);
	if (!be)
		return -ENOMEM;
	for (uint32_t i = lo; i < hi; i++)
		be[i - lo] = htobe64(q->l1[i]);
	r = qcow2_pwrite(q, be, (size_t)(hi - lo) * 8, q->l1_offset + (uint64_t)lo * 8);
	free(be);
	if (r == 0)
		q->l1_dirty_lo = q->l1_dirty_hi = 0;
	return r;
}

static int write_then_sync(struct qcow2 *q, int (*write_dirty)(struct qcow2 *q))
{
	int r = write_dirty(q);

	return r < 0 ? r : qcow2_sync(q);
}

int qcow2_flush_all(struct qcow2 *q)
{
	int r;

	for (int pass = 0; pass < 2; pass++) {
		bool had_frees = q->n_pending > 0;
		r = qcow2_sync(q);                  /* guest data */
		if (r < 0)
			return r;
		if (!q->meta_changed)
			return 0;
		if (q->file_size < q->file_end) {
			if (ftruncate(q->fd, (off_t)q->file_end) < 0)
				return vimg_fail(q->img, -errno, "cannot extend file: %s",
						 strerror(errno));
			q->file_size = q->file_end;
		}
		/* Refcounts before L2, L2 before L1, each on disk first. */
		if (!q->lazy || q->closing)
			r = qcow2_refcount_sync(q);
		if (r == 0)
			r = write_then_sync(q, qcow2_l2_write_dirty);
		if (r == 0)
			r = write_then_sync(q, qcow2_l1_write_dirty);
		if (r < 0)
			return r;
		/* Only now may references dropped from L2/L1 leave refcounts. */
		r = qcow2_apply_pending_frees(q);
		if (r < 0)
			return r;
		q->meta_changed = had_frees;
		if (!had_frees)
			break;
	}
	return 0;
}

/* Read @n bytes at @in_cl of the data cluster at host @h. */
static int read_data(struct qcow2 *q, uint64_t h, uint32_t in_cl, uint8_t *dst,
		     uint64_t n)
{
	int r = qcow2_check_data(q, h);

	if (r < 0)
		return r;
	r = vio_pread_zfill(q->fd, dst, n, (off_t)(h + in_cl));
	return r < 0 ? vimg_fail(q->img, r, "read: %s", strerror(-r)) : 0;
}

/* Read part of one guest cluster given its L2 entry (not extended). */
static int read_part(struct qcow2 *q, uint64_t e, uint64_t bmp, uint64_t goff,
		     uint32_t in_cl, uint32_t n, uint8_t *dst)
{
	enum ctype ct = classify(q, e);
	int r;

	if (q->extl2 && ct != C_COMPRESSED) {
		uint32_t sc = q->subcluster_size;
		while (n) {
			uint32_t i = in_cl / sc, k = VIREO_MIN(n, sc - in_cl % sc);
			if (bmp & (1ull << i)) {
				uint64_t h = (e & QCOW2_OFFSET_MASK);
				if (!h)
					return vimg_fail(q->img, -EIO,
						"subcluster allocated without a host cluster");
				r = read_data(q, h, in_cl, dst, k);
				if (r < 0)
					return r;
			} else if (bmp & (1ull << (32 + i))) {
				memset(dst, 0, k);
			} else {
				r = vimg_read_backing(q->img, dst, k, goff + in_cl);
				if (r < 0)
					return r;
			}
			dst += k;
			in_cl += k;
			n -= k;
		}
		return 0;
	}
	switch (ct) {
	case C_ZERO:
		memset(dst, 0, n);
		return 0;
	case C_UNALLOC:
		return vimg_read_backing(q->img, dst, n, goff + in_cl);
	case C_COMPRESSED:
		r = qcow2_read_compressed(q, e, q->cbuf);
		if (r < 0)
			return r;
		memcpy(dst, q->cbuf + in_cl, n);
		return 0;
	case C_NORMAL: {
		uint64_t h = e & QCOW2_OFFSET_MASK;
		if (h & (q->cluster_size - 1))
			return vimg_fail(q->img, -EIO,
				"L2 entry for guest offset %llu: host offset %llu is not cluster-aligned",
				(unsigned long long)goff, (unsigned long long)h);
		return read_data(q, h, in_cl, dst, n);
	}
	}
	return 0;
}

/* The L2 entry and subcluster bitmap of guest offset @off (zeros where
 * its L2 table is not allocated). */
static int entry_at(struct qcow2 *q, uint64_t off, uint64_t *e, uint64_t *bmp)
{
	uint32_t cb = q->cluster_bits;
	uint32_t l2i = (uint32_t)((off >> cb) & (q->l2_entries - 1));
	uint8_t *t;
	int r = qcow2_l2_load(q, (uint32_t)(off >> (cb + q->l2_bits)), &t);

	*e = *bmp = 0;
	if (r < 0)
		return r;
	if (t) {
		*e = qcow2_l2_entry(q, t, l2i);
		*bmp = qcow2_l2_bitmap(q, t, l2i);
	}
	return 0;
}

/*
 * Data I/O gathered across clusters: consecutive pieces that are also
 * consecutive in the host file and in the buffer become one pread/pwrite.
 */
struct host_run {
	bool write;
	uint64_t host, len;
	const uint8_t *buf;
};

/* Do the run gathered so far. */
static int run_flush(struct qcow2 *q, struct host_run *run)
{
	int r = 0;

	if (run->len && run->write) {
		r = qcow2_pwrite(q, run->buf, run->len, run->host);
	} else if (run->len) {
		/* A read run's buffer is the caller's destination. */
		r = vio_pread_zfill(q->fd, (void *)run->buf, run->len, (off_t)run->host);
		if (r < 0)
			r = vimg_fail(q->img, r, "read: %s", strerror(-r));
	}
	run->len = 0;
	return r;
}

/* Add @n bytes at @in_cl of the data cluster of L2 entry @e, to or from @p. */
static int run_add(struct qcow2 *q, struct host_run *run, uint64_t e,
		   uint32_t in_cl, const uint8_t *p, uint32_t n)
{
	uint64_t h = (e & QCOW2_OFFSET_MASK) + in_cl;
	int r = qcow2_check_data(q, e & QCOW2_OFFSET_MASK);

	if (r < 0)
		return r;
	if (run->len && run->host + run->len == h && run->buf + run->len == p) {
		run->len += n;
		return 0;
	}
	r = run_flush(q, run);
	run->host = h;
	run->buf = p;
	run->len = n;
	return r;
}

int qcow2_read(struct qcow2 *q, void *buf, size_t len, uint64_t off)
{
	struct host_run run = { .write = false };
	uint8_t *p = buf;
	int r;

	while (len) {
		uint32_t in_cl = (uint32_t)(off & (q->cluster_size - 1));
		uint32_t n = (uint32_t)VIREO_MIN((uint64_t)len, q->cluster_size - in_cl);
		uint64_t e, bmp;

		r = entry_at(q, off, &e, &bmp);
		if (r < 0)
			return r;
		if (!q->extl2 && classify(q, e) == C_NORMAL &&
		    !((e & QCOW2_OFFSET_MASK) & (q->cluster_size - 1)))
			r = run_add(q, &run, e, in_cl, p, n);
		else
			r = read_part(q, e, bmp, off - in_cl, in_cl, n, p);
		if (r < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return run_flush(q, &run);
}

static bool in_place(const struct qcow2 *q, uint64_t e)
{
	return classify(q, e) == C_NORMAL && (e & QCOW2_OFLAG_COPIED) &&
	       !((e & QCOW2_OFFSET_MASK) & (q->cluster_size - 1));
}

/* Fill [h+from, h+to) of a new host cluster with the old content. */
static int cow_fill(struct qcow2 *q, uint64_t e, uint64_t goff, uint64_t h,
		    uint32_t from, uint32_t to, bool fresh)
{
	enum ctype ct = classify(q, e);
	int r;

	if (from >= to)
		return 0;
	if (fresh && (ct == C_ZERO || (ct == C_UNALLOC && !q->img->backing)))
		return 0;   /* past the old end of file: already reads as zeros */
	r = read_part(q, e, 0, goff, from, to - from, q->cbuf2);
	if (r < 0)
		return r;
	return qcow2_pwrite(q, q->cbuf2, to - from, h + from);
}

/*
 * Validate an L2 entry that an allocating write will copy from and drop a
 * reference to, before anything is allocated: a write the image refuses
 * must leave the file as it was.
 */
static int entry_check(struct qcow2 *q, uint64_t e, uint64_t goff)
{
	enum ctype ct = classify(q, e);
	uint64_t h = e & QCOW2_OFFSET_MASK, first, last;

	if (ct == C_COMPRESSED) {
		if (!qcow2_entry_clusters(q, e, &first, &last))
			return 0;
		return qcow2_check_host(q, first << q->cluster_bits, 1, "compressed cluster");
	}
	if (!h || ct == C_UNALLOC)
		return 0;
	if (h & (q->cluster_size - 1))
		return vimg_fail(q->img, -EIO,
			"L2 entry for guest offset %llu: host offset %llu is not cluster-aligned; run 'vireo-img check'",
			(unsigned long long)goff, (unsigned long long)h);
	return qcow2_check_data(q, h);
}

#define SC_ALLOC(i) (1ull << (i))
#define SC_ZERO(i) (1ull << (32 + (i)))

/*
 * Write within one cluster of an image with extended L2 entries: touched
 * subclusters become allocated; partly written ones are completed from
 * their old content (zeros, backing or data).  A compressed or shared
 * cluster is copied whole first.
 */
static int write_extl2(struct qcow2 *q, const uint8_t *p, uint64_t off, uint32_t n)
{
	uint32_t cb = q->cluster_bits, sc = q->subcluster_size;
	uint32_t l1i = (uint32_t)(off >> (cb + q->l2_bits));
	uint32_t l2i = (uint32_t)((off >> cb) & (q->l2_entries - 1));
	uint32_t in_cl = (uint32_t)(off & (q->cluster_size - 1));
	uint32_t fs = in_cl / sc, ls = (in_cl + n - 1) / sc;
	uint64_t goff = off - in_cl, e, bmp, h;
	enum ctype ct;
	uint8_t *t;
	int r;

	r = qcow2_l2_prepare(q, l1i, &t);
	if (r < 0)
		return r;
	e = qcow2_l2_entry(q, t, l2i);
	bmp = qcow2_l2_bitmap(q, t, l2i);
	ct = classify(q, e);
	if (ct == C_COMPRESSED || (ct == C_NORMAL && !(e & QCOW2_OFLAG_COPIED))) {
		uint8_t *full = malloc(q->cluster_size);
		if (!full)
			return -ENOMEM;
		r = read_part(q, e, bmp, goff, 0, q->cluster_size, full);
		if (r == 0) {
			memcpy(full + in_cl, p, n);
			r = qcow2_alloc_clusters(q, 1, &h);
		}
		if (r == 0)
			r = qcow2_pwrite(q, full, q->cluster_size, h);
		free(full);
		if (r == 0)
			r = qcow2_l2_prepare(q, l1i, &t);
		if (r == 0)
			r = entry_ref(q, e, -1, true);
		if (r < 0)
			return r;
		qcow2_l2_set(q, t, l2i, h | QCOW2_OFLAG_COPIED);
		l2_set_bitmap(q, t, l2i, 0xffffffffull);
		return 0;
	}
	if (ct == C_NORMAL) {
		h = e & QCOW2_OFFSET_MASK;
		if (h & (q->cluster_size - 1))
			return vimg_fail(q->img, -EIO, "L2 entry host offset %llu is not cluster-aligned",
					 (unsigned long long)h);
		r = qcow2_check_data(q, h);
		if (r < 0)
			return r;
	} else {
		r = qcow2_alloc_clusters(q, 1, &h);
		if (r == 0)
			r = qcow2_l2_prepare(q, l1i, &t);
		if (r < 0)
			return r;
	}
	{
		uint32_t from = fs * sc, to = (ls + 1) * sc;
		uint8_t *buf = q->cbuf;   /* read_part uses cbuf only for compressed */
		uint8_t *tmp = malloc(to - from);
		if (!tmp)
			return -ENOMEM;
		(void)buf;
		r = 0;
		if (in_cl > from)
			r = read_part(q, e, bmp, goff, from, in_cl - from, tmp);
		if (r == 0 && in_cl + n < to)
			r = read_part(q, e, bmp, goff, in_cl + n, to - (in_cl + n),
				      tmp + (in_cl + n - from));
		if (r == 0) {
			memcpy(tmp + (in_cl - from), p, n);
			r = qcow2_pwrite(q, tmp, to - from, h + from);
		}
		free(tmp);
		if (r < 0)
			return r;
	}
	for (uint32_t i = fs; i <= ls; i++)
		bmp = (bmp | SC_ALLOC(i)) & ~SC_ZERO(i);
	qcow2_l2_set(q, t, l2i, h | QCOW2_OFLAG_COPIED);
	l2_set_bitmap(q, t, l2i, bmp);
	return 0;
}

/* Make the file at least @end bytes long.  It is extended ahead (sparse)
 * so most allocations need no syscall; close trims it back to its end. */
static int extend_file(struct qcow2 *q, uint64_t end)
{
	uint64_t ns;

	if (end <= q->file_size)
		return 0;
	ns = VIREO_MAX(end, q->file_size +
		VIREO_MIN(VIREO_MAX(q->file_size / 8, 1ull << 20), 64ull << 20));
	ns = qcow2_align(q, ns);
	if (ftruncate(q->fd, (off_t)ns) < 0)
		return vimg_fail(q->img, -errno, "cannot extend file: %s", strerror(errno));
	q->file_size = ns;
	return 0;
}

/*
 * Write at @off into clusters that need new space: as many of this
 * request's clusters in this L2 table as do, allocated together, with
 * copy-on-write of the partial first and last ones.  When @may_defer and
 * this is the request's last piece, the data write is left to the caller
 * (q->defer_*).  @t is the loaded L2 table of @off.  Returns the bytes
 * consumed, or -errno.
 */
static int64_t write_alloc(struct qcow2 *q, uint8_t *t, const uint8_t *p,
			   uint64_t off, uint64_t len, bool may_defer)
{
	uint32_t cb = q->cluster_bits;
	uint32_t l1i = (uint32_t)(off >> (cb + q->l2_bits));
	uint32_t l2i = (uint32_t)((off >> cb) & (q->l2_entries - 1));
	uint32_t in_cl = (uint32_t)(off & (q->cluster_size - 1)), tail;
	uint64_t total = ((uint64_t)in_cl + len + q->cluster_size - 1) >> cb;
	uint64_t k = 1, h, fe, span, dlen, gbase = off - in_cl;
	uint64_t first_e, last_e;
	bool fresh;
	int r;

	/* How many clusters of this request in this L2 table need new space. */
	while (k < total && l2i + k < q->l2_entries && k < 1024 &&
	       k < q->rb_entries / 2 && !in_place(q, qcow2_l2_entry(q, t, l2i + (uint32_t)k)))
		k++;
	for (uint64_t i = 0; i < k; i++) {
		r = entry_check(q, qcow2_l2_entry(q, t, l2i + (uint32_t)i),
				gbase + (i << cb));
		if (r < 0)
			return r;
	}
	fe = q->file_end;
	r = qcow2_alloc_clusters(q, k, &h);
	if (r < 0)
		return r;
	/* The L2 table may have been evicted by allocation; reload. */
	r = qcow2_l2_prepare(q, l1i, &t);
	if (r < 0)
		return r;
	span = (k << cb) - in_cl;
	dlen = VIREO_MIN(len, span);
	fresh = h >= fe;
	/* Grow the file to the end of the new clusters at once so the data
	 * writes below do not each extend it. */
	r = extend_file(q, h + (k << cb));
	if (r < 0)
		return r;
	first_e = qcow2_l2_entry(q, t, l2i);
	last_e = qcow2_l2_entry(q, t, l2i + (uint32_t)k - 1);
	r = cow_fill(q, first_e, gbase, h, 0, in_cl, fresh);
	if (r < 0)
		return r;
	if (may_defer && dlen == len) {
		q->defer_src = p;
		q->defer_host = h + in_cl;
		q->defer_len = dlen;
	} else {
		r = qcow2_pwrite(q, p, dlen, h + in_cl);
		if (r < 0)
			return r;
	}
	tail = (uint32_t)((in_cl + dlen) & (q->cluster_size - 1));
	if (tail) {
		r = cow_fill(q, last_e, gbase + ((k - 1) << cb), h + ((k - 1) << cb),
			     tail, q->cluster_size, fresh);
		if (r < 0)
			return r;
	}
	for (uint64_t i = 0; i < k; i++) {
		uint64_t oe = qcow2_l2_entry(q, t, l2i + (uint32_t)i);
		r = entry_ref(q, oe, -1, true);
		if (r < 0)
			return r;
		qcow2_l2_set(q, t, l2i + (uint32_t)i, (h + (i << cb)) | QCOW2_OFLAG_COPIED);
	}
	return (int64_t)dlen;
}

int qcow2_write(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
	struct host_run run = { .write = true };
	const uint8_t *p = buf;
	uint32_t cb = q->cluster_bits, l2b = q->l2_bits;
	int r;

	r = qcow2_mark_dirty(q);
	if (r < 0)
		return r;
	while (q->extl2 && len) {
		uint32_t n = (uint32_t)VIREO_MIN((uint64_t)len,
				q->cluster_size - (off & (q->cluster_size - 1)));
		r = write_extl2(q, p, off, n);
		if (r < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	while (len) {
		uint32_t l1i = (uint32_t)(off >> (cb + l2b));
		uint32_t l2i = (uint32_t)((off >> cb) & (q->l2_entries - 1));
		uint32_t in_cl = (uint32_t)(off & (q->cluster_size - 1));
		uint64_t n;
		int64_t done;
		uint8_t *t;

		r = qcow2_l2_prepare(q, l1i, &t);
		if (r < 0)
			return r;
		if (in_place(q, qcow2_l2_entry(q, t, l2i))) {
			n = VIREO_MIN((uint64_t)len, q->cluster_size - in_cl);
			r = run_add(q, &run, qcow2_l2_entry(q, t, l2i), in_cl, p,
				    (uint32_t)n);
			if (r < 0)
				return r;
		} else {
			r = run_flush(q, &run);
			if (r < 0)
				return r;
			done = write_alloc(q, t, p, off, len, q->defer_ok);
			if (done < 0)
				return (int)done;
			n = (uint64_t)done;
		}
		p += n;
		off += n;
		len -= n;
	}
	return run_flush(q, &run);
}

/* Set the L2 entry @l1i/@l2i to @ne, dropping the old entry's reference
 * (at the next flush); *t is the table. */
static int entry_replace(struct qcow2 *q, uint32_t l1i, uint32_t l2i, uint64_t ne,
			 uint8_t **t)
{
	int r = qcow2_l2_prepare(q, l1i, t);

	if (r == 0)
		r = entry_ref(q, qcow2_l2_entry(q, *t, l2i), -1, true);
	if (r == 0)
		qcow2_l2_set(q, *t, l2i, ne);
	return r;
}

int qcow2_zero(struct qcow2 *q, uint64_t off, uint64_t len, int mode)
{
	bool discard = mode != QCOW2_ZERO_WRITE;

	uint32_t cb = q->cluster_bits, l2b = q->l2_bits;
	int r;

	r = qcow2_mark_dirty(q);
	if (r < 0)
		return r;
	while (len) {
		uint32_t in_cl = (uint32_t)(off & (q->cluster_size - 1));
		uint32_t n = (uint32_t)VIREO_MIN(len, (uint64_t)q->cluster_size - in_cl);
		uint32_t l1i = (uint32_t)(off >> (cb + l2b));
		uint32_t l2i = (uint32_t)((off >> cb) & (q->l2_entries - 1));
		bool whole = in_cl == 0 && n == q->cluster_size;
		uint64_t ne;
		uint8_t *t;

		/* A cluster past the end of a shorter image is still whole. */
		if (!whole && in_cl == 0 && off + n == q->img->size)
			whole = true;
		if (q->extl2 && whole) {
			/* Drop the host cluster; subclusters read as zeros (or
			 * unallocated when making room for the backing file). */
			uint64_t nb = (mode == QCOW2_ZERO_UNALLOC ||
				       (discard && !q->img->backing)) ? 0 : 0xffffffff00000000ull;
			r = entry_replace(q, l1i, l2i, 0, &t);
			if (r < 0)
				return r;
			l2_set_bitmap(q, t, l2i, nb);
		} else if (!whole) {
			if (!discard) {
				r = qcow2_write(q, q->zbuf, n, off);
				if (r < 0)
					return r;
			}
		} else {
			bool backing = q->img->backing != NULL;
			if (mode == QCOW2_ZERO_UNALLOC) {
				r = qcow2_l2_load(q, l1i, &t);
				if (r < 0)
					return r;
				if (!t || !qcow2_l2_entry(q, t, l2i))
					goto next;
				r = entry_replace(q, l1i, l2i, 0, &t);
				if (r < 0)
					return r;
			} else if (q->version < 3 && backing) {
				if (!discard) {
					r = qcow2_write(q, q->zbuf, n, off);
					if (r < 0)
						return r;
				}
			} else {
				if (!discard && !backing) {
					/* Skip clusters that already read as zeros. */
					r = qcow2_l2_load(q, l1i, &t);
					if (r < 0)
						return r;
					if (!t || classify(q, qcow2_l2_entry(q, t, l2i)) == C_UNALLOC)
						goto next;
				}
				ne = (q->version >= 3 && (backing || !discard)) ?
					QCOW2_OFLAG_ZERO : 0;
				r = entry_replace(q, l1i, l2i, ne, &t);
				if (r < 0)
					return r;
			}
		}
next:
		off += n;
		len -= n;
	}
	return 0;
}

int qcow2_status(struct qcow2 *q, uint64_t off, uint64_t len,
		 struct vimg_extent *ext)
{
	uint64_t pos = off, first_h = 0;
	unsigned flags = 0;
	bool first = true;
	int r;

	while (pos < off + len) {
		uint32_t in_cl = (uint32_t)(pos & (q->cluster_size - 1));
		uint64_t n = VIREO_MIN(off + len - pos, (uint64_t)q->cluster_size - in_cl);
		uint64_t e, bmp, h = 0;
		unsigned f = 0;

		r = entry_at(q, pos, &e, &bmp);
		if (r < 0)
			return r;
		switch (classify(q, e)) {
		case C_UNALLOC: f = 0; break;
		case C_ZERO: f = VIMG_BS_ZERO; break;
		case C_COMPRESSED: f = VIMG_BS_DATA | VIMG_BS_COMPRESSED; break;
		case C_NORMAL:
			f = VIMG_BS_DATA | VIMG_BS_OFFSET_VALID;
			h = (e & QCOW2_OFFSET_MASK) + in_cl;
			break;
		}
		if (q->extl2 && !(f & VIMG_BS_COMPRESSED)) {
			uint32_t sc = q->subcluster_size, i = in_cl / sc;
			n = VIREO_MIN(n, (uint64_t)sc - in_cl % sc);
			h = (e & QCOW2_OFFSET_MASK) ? (e & QCOW2_OFFSET_MASK) + in_cl : 0;
			if (bmp & (1ull << i))
				f = VIMG_BS_DATA;
			else if (bmp & (1ull << (32 + i)))
				f = VIMG_BS_ZERO;
			else
				f = 0;
			if (h)
				f |= VIMG_BS_OFFSET_VALID;
		}
		if (first) {
			flags = f;
			first_h = h;
			first = false;
		} else if (f != flags || (f & VIMG_BS_COMPRESSED) ||
			   ((f & VIMG_BS_OFFSET_VALID) && h != first_h + (pos - off))) {
			break;
		}
		pos += n;
		if (f & VIMG_BS_COMPRESSED)
			break;
	}
	ext->off = off;
	ext->len = pos - off;
	ext->flags = flags;
	ext->host_off = first_h;
	return 0;
}

/* Preallocation of metadata: every guest cluster gets a host cluster past
 * the old end of the file (which reads as zeros), in large batches. */
int qcow2_preallocate(struct qcow2 *q)
{
	uint64_t nclusters = (q->img->size + q->cluster_size - 1) >> q->cluster_bits;
	uint64_t g = 0;
	int r = qcow2_mark_dirty(q);

	while (r == 0 && g < nclusters) {
		uint32_t l1i = (uint32_t)(g >> q->l2_bits);
		uint32_t l2i = (uint32_t)(g & (q->l2_entries - 1));
		uint64_t k = VIREO_MIN(nclusters - g, (uint64_t)(q->l2_entries - l2i));
		uint64_t h;
		uint8_t *t;

		k = VIREO_MIN(k, VIREO_MAX(q->rb_entries / 2, 1u));
		r = qcow2_l2_prepare(q, l1i, &t);
		if (r == 0)
			r = qcow2_alloc_clusters(q, k, &h);
		if (r == 0)
			r = qcow2_l2_prepare(q, l1i, &t);
		for (uint64_t i = 0; r == 0 && i < k; i++) {
			uint64_t e = qcow2_l2_entry(q, t, l2i + (uint32_t)i);
			if (e) {   /* already mapped: give the new cluster back */
				r = qcow2_free_later(q, h + (i << q->cluster_bits), 1);
				continue;
			}
			/* With subclusters the bitmap stays 0 (unallocated
			 * subclusters of a mapped cluster), as qemu-img does. */
			qcow2_l2_set(q, t, l2i + (uint32_t)i, (h + (i << q->cluster_bits)) |
				     QCOW2_OFLAG_COPIED);
		}
		g += k;
	}
	if (r == 0 && q->file_size < q->file_end) {
		if (ftruncate(q->fd, (off_t)q->file_end) < 0)
			return vimg_fail(q->img, -errno, "cannot extend file: %s", strerror(errno));
		q->file_size = q->file_end;
	}
	return r == 0 ? qcow2_flush_all(q) : r;
}
