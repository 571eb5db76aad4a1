/* qcow2 consistency check: walk every reference, compare with the stored
 * refcounts, report leaks and corruptions, and repair by rebuilding. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

struct walk {
	struct qcow2 *q;
	uint64_t *counts;
	uint64_t n;            /* clusters in the file */
	struct vimg_check *res;
	FILE *log;
	int fix;
	uint8_t *t;
	uint64_t last_host;
	uint8_t *meta;         /* clusters holding metadata */
	uint64_t *eff;         /* stored refcounts as they are after this pass */
	uint64_t *l2refs;      /* per cluster: L1 entries (all trees) naming it as an L2 table */
	uint8_t *l2seen;       /* per cluster: L2 table already walked */
};

static void mark_meta(struct walk *w, uint64_t off, uint64_t len)
{
	if (!len || !off)
		return;
	for (uint64_t c = off >> w->q->cluster_bits;
	     c <= (off + len - 1) >> w->q->cluster_bits && c < w->n; c++)
		w->meta[c] = 1;
}

static void inc(struct walk *w, uint64_t off, uint64_t len, const char *what)
{
	uint64_t first = off >> w->q->cluster_bits;
	uint64_t last = (off + len - 1) >> w->q->cluster_bits;

	if (!len)
		return;
	for (uint64_t c = first; c <= last; c++) {
		if (c >= w->n) {
			if (w->log)
				fprintf(w->log, "ERROR %s at offset %llu is past the end of the file\n",
					what, (unsigned long long)(c << w->q->cluster_bits));
			w->res->corruptions++;
			return;
		}
		w->counts[c]++;
	}
}

/* Is this host range fully inside the file and clear of the header? */
static bool valid_range(struct walk *w, uint64_t off, uint64_t len, const char *what)
{
	if (off == 0 || ((off + len - 1) >> w->q->cluster_bits) >= w->n) {
		if (w->log)
			fprintf(w->log, "ERROR %s offset=%llx is %s\n", what,
				(unsigned long long)off,
				off == 0 ? "in the header" : "past the end of the file");
		w->res->corruptions++;
		return false;
	}
	return true;
}

/* Walk one L2 table: its data clusters get @weight references (one per
 * L1 entry, of any tree, naming this table). */
static int walk_l2(struct walk *w, uint64_t l2off, bool active, uint64_t weight)
{
	struct qcow2 *q = w->q;
	bool changed = false;
	int r;

	r = qcow2_pread(q, w->t, q->cluster_size, l2off);
	if (r < 0)
		return r;
	for (uint32_t j = 0; j < q->l2_entries; j++) {
		uint64_t e = qcow2_l2_entry(q, w->t, j), first, last;
		if (!qcow2_entry_clusters(q, e, &first, &last))
			continue;
		if (!(e & QCOW2_OFLAG_COMPRESSED) && (e & QCOW2_L2_RESERVED)) {
			if (w->log)
				fprintf(w->log, "ERROR found L2 entry with reserved bits set: %llx\n",
					(unsigned long long)e);
			w->res->corruptions++;
		}
		if (e & QCOW2_OFLAG_COMPRESSED) {
			if (active)
				w->res->compressed_clusters++;
		} else if ((e & QCOW2_OFFSET_MASK) & (q->cluster_size - 1)) {
			if (w->log)
				fprintf(w->log, "ERROR offset=%llx: data cluster is not properly aligned; L2 entry corrupted\n",
					(unsigned long long)(e & QCOW2_OFFSET_MASK));
			w->res->corruptions++;
			continue;
		}
		if (!valid_range(w, first << q->cluster_bits,
				 (last - first + 1) << q->cluster_bits, "data cluster")) {
			if ((w->fix & VIMG_FIX_ERRORS) && active) {
				memset(w->t + (size_t)j * q->l2_entry_size, 0, q->l2_entry_size);
				changed = true;
				w->res->corruptions_fixed++;
			}
			continue;
		}
		{
			bool overlap = false;
			for (uint64_t c = first; c <= last; c++)
				overlap |= w->meta[c] != 0;
			if (overlap) {
				if (w->log)
					fprintf(w->log, "ERROR data cluster at %llx (guest cluster %u of its L2 table) overlaps metadata\n",
						(unsigned long long)(first << q->cluster_bits), j);
				w->res->corruptions++;
				if ((w->fix & VIMG_FIX_ERRORS) && active) {
					memset(w->t + (size_t)j * q->l2_entry_size, 0, q->l2_entry_size);
					changed = true;
					w->res->corruptions_fixed++;
				}
				continue;
			}
		}
		if (active) {
			w->res->allocated_clusters++;
			if (!(e & QCOW2_OFLAG_COMPRESSED)) {
				if (w->last_host && first != w->last_host + 1)
					w->res->fragmented_clusters++;
				w->last_host = first;
			}
		}
		for (uint64_t c = first; c <= last; c++)
			w->counts[c] += weight;
	}
	if (changed)
		return qcow2_pwrite(q, w->t, q->cluster_size, l2off);
	return 0;
}

/*
 * Validate the L1 entries of one tree and count their references to L2
 * tables (the tables themselves are walked by walk_l2s, once each).
 */
static void count_l1(struct walk *w, uint64_t *l1, uint32_t n, bool active,
		     bool *l1_changed)
{
	struct qcow2 *q = w->q;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = l1[i] & QCOW2_OFFSET_MASK;
		if (l1[i] & QCOW2_L1_RESERVED) {
			if (w->log)
				fprintf(w->log, "ERROR found L1 entry with reserved bits set: %llx\n",
					(unsigned long long)l1[i]);
			w->res->corruptions++;
		}
		if (!off)
			continue;
		if ((off & (q->cluster_size - 1)) || !valid_range(w, off, q->cluster_size, "L2 table")) {
			if (off & (q->cluster_size - 1)) {
				if (w->log)
					fprintf(w->log, "ERROR l2_offset=%llx: Table is not cluster aligned; L1 entry corrupted\n",
						(unsigned long long)off);
				w->res->corruptions++;
			}
			if ((w->fix & VIMG_FIX_ERRORS) && active) {
				l1[i] = 0;
				*l1_changed = true;
				w->res->corruptions_fixed++;
			}
			continue;
		}
		w->counts[off >> q->cluster_bits]++;
		w->l2refs[off >> q->cluster_bits]++;
	}
}

/* Walk every L2 table one tree names that no tree walked yet. */
static int walk_l2s(struct walk *w, const uint64_t *l1, uint32_t n, bool active)
{
	struct qcow2 *q = w->q;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = l1[i] & QCOW2_OFFSET_MASK, c = off >> q->cluster_bits;
		int r;
		if (!off || (off & (q->cluster_size - 1)) || c >= w->n || !w->l2refs[c] ||
		    w->l2seen[c])
			continue;
		w->l2seen[c] = 1;
		r = walk_l2(w, off, active, w->l2refs[c]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A snapshot's L1 table, in host order (NULL on failure). */
static uint64_t *snap_l1(struct walk *w, const struct qcow2_snap *s, int *err)
{
	uint64_t *l1 = calloc(s->l1_size + 1, 8);

	*err = l1 ? qcow2_pread(w->q, l1, (size_t)s->l1_size * 8, s->l1_offset) : -ENOMEM;
	if (*err < 0) {
		free(l1);
		return NULL;
	}
	for (uint32_t k = 0; k < s->l1_size; k++)
		l1[k] = be64toh(l1[k]);
	return l1;
}

/*
 * The work of a check is bounded by the file: every L2 table is walked
 * once, and a file of N bytes has room for at most N/8 table entries.
 * Only L1 tables shared by many snapshots (which qcow2 writers never
 * make) could ask for more; such an image is refused instead of walked.
 */
static int check_budget(struct walk *w)
{
	struct qcow2 *q = w->q;
	uint64_t bytes = w->n << q->cluster_bits;
	uint64_t budget = bytes / 4 + 65536, entries = q->l1_size;

	for (uint32_t i = 0; i < q->nb_snapshots; i++)
		entries += q->snaps[i].l1_size;
	if (entries > budget)
		return vimg_fail(q->img, -E2BIG,
			"the L1 tables of the image and its %u snapshots hold %llu entries, "
			"more than a %llu-byte file can hold (limit %llu): refusing to "
			"check or repair it", q->nb_snapshots, (unsigned long long)entries,
			(unsigned long long)bytes, (unsigned long long)budget);
	return 0;
}

/* Check (and with fix, repair) OFLAG_COPIED in the active tree. */
static int check_copied(struct walk *w, bool *l1_changed)
{
	struct qcow2 *q = w->q;

	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t off = q->l1[i] & QCOW2_OFFSET_MASK, c = off >> q->cluster_bits;
		bool changed = false;
		int r;
		if (!off || (off & (q->cluster_size - 1)) || c >= w->n)
			continue;
		if ((w->eff[c] == 1) != !!(q->l1[i] & QCOW2_OFLAG_COPIED)) {
			if (w->log)
				fprintf(w->log, "%s OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%llx refcount=%llu\n",
					w->fix & VIMG_FIX_ERRORS ? "Repairing" : "ERROR", i,
					(unsigned long long)q->l1[i], (unsigned long long)w->eff[c]);
			w->res->corruptions++;
			if (w->fix & VIMG_FIX_ERRORS) {
				q->l1[i] ^= QCOW2_OFLAG_COPIED;
				*l1_changed = true;
				w->res->corruptions_fixed++;
			}
		}
		if (w->l2seen[c] == 2)
			continue;   /* this table's entries were checked already */
		w->l2seen[c] = 2;
		r = qcow2_pread(q, w->t, q->cluster_size, off);
		if (r < 0)
			return r;
		for (uint32_t j = 0; j < q->l2_entries; j++) {
			uint64_t e = qcow2_l2_entry(q, w->t, j), dc;
			if ((e & QCOW2_OFLAG_COMPRESSED) || !(e & QCOW2_OFFSET_MASK))
				continue;
			dc = (e & QCOW2_OFFSET_MASK) >> q->cluster_bits;
			if (dc >= w->n)
				continue;
			if ((w->eff[dc] == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
				if (w->log)
					fprintf(w->log, "%s OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu\n",
						w->fix & VIMG_FIX_ERRORS ? "Repairing" : "ERROR",
						(unsigned long long)e, (unsigned long long)w->eff[dc]);
				w->res->corruptions++;
				if (w->fix & VIMG_FIX_ERRORS) {
					uint64_t be = htobe64(e ^ QCOW2_OFLAG_COPIED);
					memcpy(w->t + (size_t)j * q->l2_entry_size, &be, 8);
					changed = true;
					w->res->corruptions_fixed++;
				}
			}
		}
		if (changed) {
			r = qcow2_pwrite(q, w->t, q->cluster_size, off);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static void walk_free(struct walk *w)
{
	free(w->counts);
	free(w->t);
	free(w->meta);
	free(w->eff);
	free(w->l2refs);
	free(w->l2seen);
}

static int walk_alloc(struct walk *w)
{
	struct qcow2 *q = w->q;

	w->n = qcow2_align(q, VIREO_MAX(q->file_size, q->file_end)) >> q->cluster_bits;
	w->counts = calloc(w->n + 1, sizeof(uint64_t));
	w->t = malloc(q->cluster_size);
	w->meta = calloc(w->n + 1, 1);
	w->eff = calloc(w->n + 1, sizeof(uint64_t));
	w->l2refs = calloc(w->n + 1, sizeof(uint64_t));
	w->l2seen = calloc(w->n + 1, 1);
	if (!w->counts || !w->t || !w->meta || !w->eff || !w->l2refs || !w->l2seen) {
		walk_free(w);
		return -ENOMEM;
	}
	return 0;
}

/* Note every cluster that holds metadata (tables of every snapshot too). */
static void mark_all_meta(struct walk *w)
{
	struct qcow2 *q = w->q;
	uint64_t *l1;

	mark_meta(w, 0, q->cluster_size);
	mark_meta(w, q->l1_offset, (uint64_t)q->l1_size * 8);
	mark_meta(w, q->rt_offset, (uint64_t)q->rt_clusters << q->cluster_bits);
	if (q->nb_snapshots)
		mark_meta(w, q->snapshots_offset, q->snapshots_size);
	for (uint64_t ri = 0; ri < q->rt_size; ri++)
		mark_meta(w, q->rt[ri] & QCOW2_RT_OFFSET_MASK, q->cluster_size);
	for (uint32_t i = 0; i < q->l1_size; i++)
		if (!((q->l1[i] & QCOW2_OFFSET_MASK) & (q->cluster_size - 1)))
			mark_meta(w, q->l1[i] & QCOW2_OFFSET_MASK, q->cluster_size);
	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		struct qcow2_snap *s = &q->snaps[i];
		l1 = calloc(s->l1_size + 1, 8);
		if (!l1 || qcow2_pread(q, l1, (size_t)s->l1_size * 8, s->l1_offset) < 0) {
			free(l1);
			continue;
		}
		mark_meta(w, s->l1_offset, (uint64_t)s->l1_size * 8);
		for (uint32_t k = 0; k < s->l1_size; k++) {
			uint64_t o = be64toh(l1[k]) & QCOW2_OFFSET_MASK;
			if (!(o & (q->cluster_size - 1)))
				mark_meta(w, o, q->cluster_size);
		}
		free(l1);
	}
}

/* Count every reference: header, tables, the active and every snapshot's
 * tree, refcount blocks. */
static int count_refs(struct walk *w, bool *l1_changed)
{
	struct qcow2 *q = w->q;
	int r;

	inc(w, 0, q->cluster_size, "header");
	inc(w, q->l1_offset, (uint64_t)q->l1_size * 8, "L1 table");
	inc(w, q->rt_offset, (uint64_t)q->rt_clusters << q->cluster_bits, "refcount table");
	if (q->nb_snapshots)
		inc(w, q->snapshots_offset, q->snapshots_size, "snapshot table");
	/* First every reference to an L2 table, from every tree... */
	count_l1(w, q->l1, q->l1_size, true, l1_changed);
	r = 0;
	for (uint32_t i = 0; r == 0 && i < q->nb_snapshots; i++) {
		struct qcow2_snap *s = &q->snaps[i];
		bool dummy = false;
		uint64_t *l1;
		inc(w, s->l1_offset, (uint64_t)s->l1_size * 8, "snapshot L1 table");
		l1 = snap_l1(w, s, &r);
		if (l1)
			count_l1(w, l1, s->l1_size, false, &dummy);
		free(l1);
	}
	/* ... then each L2 table once, the active tree's first. */
	if (r == 0)
		r = walk_l2s(w, q->l1, q->l1_size, true);
	for (uint32_t i = 0; r == 0 && i < q->nb_snapshots; i++) {
		uint64_t *l1 = snap_l1(w, &q->snaps[i], &r);
		if (l1)
			r = walk_l2s(w, l1, q->snaps[i].l1_size, false);
		free(l1);
	}
	for (uint64_t ri = 0; r == 0 && ri < q->rt_size; ri++) {
		uint64_t off = q->rt[ri] & QCOW2_RT_OFFSET_MASK;
		if (off && valid_range(w, off, q->cluster_size, "refcount block"))
			w->counts[off >> q->cluster_bits]++;
	}
	for (uint64_t c = w->n; c-- > 0;)
		if (w->counts[c]) {
			w->res->image_end_offset = (c + 1) << q->cluster_bits;
			break;
		}
	return r;
}

/* Log a refcount that differs from the references counted. */
static void report(struct walk *w, uint64_t c, uint64_t v, uint64_t want)
{
	bool leak = v > want;

	if (leak)
		w->res->leaks++;
	else
		w->res->corruptions++;
	if (w->log)
		fprintf(w->log, "%s cluster %llu refcount=%llu reference=%llu\n",
			w->fix & (leak ? VIMG_FIX_LEAKS : VIMG_FIX_ERRORS) ? "Repairing" :
			leak ? "Leaked" : "ERROR",
			(unsigned long long)c, (unsigned long long)v,
			(unsigned long long)want);
}

/* Compare the stored refcounts of block @ri with the counted ones, and
 * settle what each becomes (counts) and is after this pass (eff). */
static int compare_block(struct walk *w, uint64_t ri)
{
	struct qcow2 *q = w->q;
	uint64_t off = q->rt[ri] & QCOW2_RT_OFFSET_MASK;
	int fix = w->fix, r;

	if (!off || ((off >> q->cluster_bits) >= w->n))
		return 0;
	r = qcow2_pread(q, w->t, q->cluster_size, off);
	for (uint64_t i = 0; r == 0 && i < q->rb_entries; i++) {
		uint64_t c = (ri << q->rb_bits) + i;
		uint64_t v = qcow2_rb_get(w->t, (uint32_t)q->refcount_order, i);
		uint64_t want = c < w->n ? w->counts[c] : 0;
		if (v != want)
			report(w, c, v, want);
		if (c < w->n) {
			w->counts[c] = (fix & VIMG_FIX_ERRORS) || v >= want ?
				       want : v;  /* -r leaks leaves errors alone */
			/* What the refcount is once this pass is done. */
			w->eff[c] = (v > want && (fix & VIMG_FIX_LEAKS)) ||
				    (v < want && (fix & VIMG_FIX_ERRORS)) ? want : v;
		}
	}
	return r;
}

/* Clusters referenced but with no refcount block at all. */
static void check_unblocked(struct walk *w)
{
	struct qcow2 *q = w->q;

	for (uint64_t c = 0; c < w->n; c++) {
		uint64_t ri = c >> q->rb_bits;
		if (w->counts[c] && (ri >= q->rt_size || !q->rt[ri] ||
				     ((q->rt[ri] & QCOW2_RT_OFFSET_MASK) >> q->cluster_bits) >= w->n)) {
			report(w, c, 0, w->counts[c]);
			if (!(w->fix & VIMG_FIX_ERRORS))
				w->counts[c] = 0;
			else
				w->eff[c] = w->counts[c];
		}
	}
}

static int check_once(struct qcow2 *q, int fix, struct vimg_check *res, FILE *log,
		      uint64_t **counts_out, uint64_t *n_out)
{
	struct walk w = { .q = q, .res = res, .log = log, .fix = fix };
	bool l1_changed = false;
	int r;

	memset(res, 0, sizeof(*res));
	r = walk_alloc(&w);
	if (r < 0)
		return r;
	r = check_budget(&w);
	if (r < 0) {
		walk_free(&w);
		return r;
	}
	mark_all_meta(&w);
	r = count_refs(&w, &l1_changed);
	/* Compare with what is stored. */
	for (uint64_t ri = 0; r == 0 && ri < q->rt_size; ri++)
		r = compare_block(&w, ri);
	if (r == 0)
		check_unblocked(&w);
	/* OFLAG_COPIED is checked against the refcounts as stored (or as
	 * repaired), as qemu-img does: a shared cluster with COPIED set is a
	 * corruption even when the extra reference is only a leak. */
	if (r == 0)
		r = check_copied(&w, &l1_changed);
	if (r == 0 && l1_changed) {
		q->l1_dirty_lo = 0;
		q->l1_dirty_hi = q->l1_size;
		r = qcow2_l1_write_dirty(q);
	}
	res->total_clusters = (q->img->size + q->cluster_size - 1) >> q->cluster_bits;
	if (r == 0 && counts_out) {
		*counts_out = w.counts;
		*n_out = w.n;
		w.counts = NULL;
	}
	walk_free(&w);
	return r;
}

int qcow2_check(struct vimg *img, int fix, struct vimg_check *res, FILE *log)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t *counts = NULL, n = 0;
	int r;

	memset(res, 0, sizeof(*res));
	if (!img->readonly) {
		r = qcow2_flush_all(q);
		if (r == 0)
			r = qcow2_refcount_write_dirty(q);   /* lazy ones too */
		if (r == 0)
			r = qcow2_sync(q);
		if (r < 0)
			return r;
	}
	for (int i = 0; i < q->n_exts; i++)
		if (q->exts[i].type == 0x23852875u && fix)
			return vimg_fail(img, -ENOTSUP,
				"repairing images with persistent bitmaps is not supported");
	qcow2_cache_clear(&q->l2c);
	r = check_once(q, fix, res, log, fix ? &counts : NULL, &n);
	if (r < 0 || !fix)
		goto out;
	if ((res->leaks && (fix & VIMG_FIX_LEAKS)) || (res->corruptions && (fix & VIMG_FIX_ERRORS))) {
		struct vimg_check again;
		uint64_t leaks = res->leaks, corr = res->corruptions;
		r = qcow2_rebuild_refcounts(q, counts, n);
		if (r < 0)
			goto out;
		qcow2_cache_clear(&q->l2c);
		r = check_once(q, 0, &again, NULL, NULL, NULL);
		if (r < 0)
			goto out;
		again.leaks_fixed = leaks > again.leaks ? leaks - again.leaks : 0;
		again.corruptions_fixed = corr > again.corruptions ? corr - again.corruptions : 0;
		*res = again;
	}
	/* Refcounts are now right: a dirty (lazy refcounts) image is clean,
	 * as after qemu-img check -r. */
	if (res->corruptions == 0) {
		r = qcow2_clear_dirty(q);
		q->dirty_written = false;   /* a later write marks it again */
	}
out:
	free(counts);
	return r;
}
