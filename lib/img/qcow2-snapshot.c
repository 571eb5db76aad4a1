/* qcow2 internal snapshots: the snapshot table, create, apply, delete, with
 * their refcount bookkeeping and OFLAG_COPIED maintenance. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qcow2.h"

static uint64_t g64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static uint32_t g32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint16_t g16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static void p64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }
static void p32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void p16(uint8_t *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }

static void snap_clear(struct qcow2_snap *s)
{
	free(s->id);
	free(s->name);
	free(s->extra);
	memset(s, 0, sizeof(*s));
}

void qcow2_snapshots_free(struct qcow2 *q)
{
	for (uint32_t i = 0; q->snaps && i < q->nb_snapshots; i++)
		snap_clear(&q->snaps[i]);
	free(q->snaps);
	q->snaps = NULL;
}

int qcow2_snapshots_load(struct qcow2 *q)
{
	uint64_t pos = 0, max = 64ull << 20;
	uint8_t *buf;
	int r;

	if (!q->nb_snapshots)
		return 0;
	/* An unsigned on-disk count: bound it before it sizes anything or
	 * is reported as an int. */
	if (q->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return vimg_fail(q->img, -EINVAL, "too many snapshots: %u (at most %u)",
				 q->nb_snapshots, (unsigned)QCOW2_MAX_SNAPSHOTS);
	if ((q->snapshots_offset & (q->cluster_size - 1)) || !q->snapshots_offset ||
	    q->snapshots_offset >= q->file_end)
		return vimg_fail(q->img, -EINVAL,
			"snapshot table offset %llu is unaligned or past the end of the file",
			(unsigned long long)q->snapshots_offset);
	max = VIREO_MIN(max, q->file_end - q->snapshots_offset);
	buf = malloc(max);
	q->snaps = calloc(q->nb_snapshots, sizeof(*q->snaps));
	if (!buf || !q->snaps) {
		free(buf);
		return -ENOMEM;
	}
	r = qcow2_pread(q, buf, max, q->snapshots_offset);
	for (uint32_t i = 0; r == 0 && i < q->nb_snapshots; i++) {
		struct qcow2_snap *s = &q->snaps[i];
		uint32_t idl, nl, ex;
		if (pos + 40 > max) {
			r = vimg_fail(q->img, -EINVAL, "snapshot table is truncated at entry %u", i);
			break;
		}
		s->l1_offset = g64(buf + pos);
		s->l1_size = g32(buf + pos + 8);
		idl = g16(buf + pos + 12);
		nl = g16(buf + pos + 14);
		s->date_sec = g32(buf + pos + 16);
		s->date_nsec = g32(buf + pos + 20);
		s->vm_clock_nsec = g64(buf + pos + 24);
		s->vm_state_size = g32(buf + pos + 32);
		ex = g32(buf + pos + 36);
		if (ex > 1024 || pos + 40 + ex + idl + nl > max) {
			r = vimg_fail(q->img, -EINVAL, "snapshot table entry %u is too large", i);
			break;
		}
		s->extra_size = ex;
		s->extra = malloc(ex ? ex : 1);
		s->id = strndup((char *)buf + pos + 40 + ex, idl);
		s->name = strndup((char *)buf + pos + 40 + ex + idl, nl);
		if (!s->extra || !s->id || !s->name) {
			r = -ENOMEM;
			break;
		}
		memcpy(s->extra, buf + pos + 40, ex);
		if (ex >= 8)
			s->vm_state_size = g64(buf + pos + 40);
		s->disk_size = ex >= 16 ? g64(buf + pos + 48) : q->img->size;
		if ((s->l1_offset & (q->cluster_size - 1)) ||
		    (uint64_t)s->l1_size * 8 > QCOW2_MAX_L1_BYTES ||
		    !qcow2_within(s->l1_offset, (uint64_t)s->l1_size * 8, q->file_end)) {
			r = vimg_fail(q->img, -EINVAL,
				"snapshot '%s': L1 table at %llu (%u entries) is invalid",
				s->name, (unsigned long long)s->l1_offset, s->l1_size);
			break;
		}
		pos += VIREO_ALIGN_UP(40 + ex + idl + nl, 8);
	}
	free(buf);
	q->snapshots_size = pos;
	return r;
}

int qcow2_snapshot_list(struct vimg *img, struct vimg_snapshot **out, int *n)
{
	struct qcow2 *q = qcow2_of(img);
	struct vimg_snapshot *v = calloc(q->nb_snapshots + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		struct qcow2_snap *s = &q->snaps[i];
		snprintf(v[i].id, sizeof(v[i].id), "%s", s->id);
		snprintf(v[i].name, sizeof(v[i].name), "%s", s->name);
		v[i].vm_state_size = s->vm_state_size;
		v[i].date_sec = s->date_sec;
		v[i].date_nsec = s->date_nsec;
		v[i].vm_clock_nsec = s->vm_clock_nsec;
		v[i].disk_size = s->disk_size;
		v[i].l1_size = s->l1_size;
	}
	*out = v;
	*n = (int)q->nb_snapshots;
	return 0;
}

/* Write the snapshot table for snaps[0..n) and switch the header to it. */
static int write_table(struct qcow2 *q, struct qcow2_snap *snaps, uint32_t n)
{
	uint64_t size = 0, pos = 0, off = 0, clusters;
	uint8_t *buf, hb[12];
	int r;

	for (uint32_t i = 0; i < n; i++)
		size += VIREO_ALIGN_UP(40 + snaps[i].extra_size + strlen(snaps[i].id) +
				       strlen(snaps[i].name), 8);
	buf = calloc(1, size ? size : 1);
	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct qcow2_snap *s = &snaps[i];
		size_t idl = strlen(s->id), nl = strlen(s->name);
		p64(buf + pos, s->l1_offset);
		p32(buf + pos + 8, s->l1_size);
		p16(buf + pos + 12, (uint16_t)idl);
		p16(buf + pos + 14, (uint16_t)nl);
		p32(buf + pos + 16, s->date_sec);
		p32(buf + pos + 20, s->date_nsec);
		p64(buf + pos + 24, s->vm_clock_nsec);
		p32(buf + pos + 32, s->vm_state_size > UINT32_MAX ? 0 : (uint32_t)s->vm_state_size);
		p32(buf + pos + 36, s->extra_size);
		memcpy(buf + pos + 40, s->extra, s->extra_size);
		memcpy(buf + pos + 40 + s->extra_size, s->id, idl);
		memcpy(buf + pos + 40 + s->extra_size + idl, s->name, nl);
		pos += VIREO_ALIGN_UP(40 + s->extra_size + idl + nl, 8);
	}
	r = 0;
	if (size) {
		clusters = qcow2_align(q, size) >> q->cluster_bits;
		r = qcow2_alloc_clusters(q, clusters, &off);
		if (r == 0) {
			qcow2_meta_mark(q, off, size, true);
			r = qcow2_pwrite(q, buf, size, off);
		}
	}
	free(buf);
	if (r == 0)
		r = qcow2_refcount_sync(q);
	if (r < 0)
		return r;
	p32(hb, n);
	p64(hb + 4, off);
	r = qcow2_pwrite(q, hb, 12, QH_NB_SNAPSHOTS);   /* with snapshots_offset */
	if (r == 0)
		r = qcow2_sync(q);
	if (r < 0)
		return r;
	if (q->nb_snapshots && q->snapshots_size)
		qcow2_free_later(q, q->snapshots_offset,
				 qcow2_align(q, q->snapshots_size) >> q->cluster_bits);
	q->snapshots_offset = off;
	q->snapshots_size = size;
	return 0;
}

static int read_l1(struct qcow2 *q, uint64_t off, uint32_t n, uint64_t **out)
{
	uint64_t *l1 = calloc(n ? n : 1, 8);
	int r;

	if (!l1)
		return -ENOMEM;
	r = qcow2_pread(q, l1, (size_t)n * 8, off);
	if (r < 0) {
		free(l1);
		return r;
	}
	for (uint32_t i = 0; i < n; i++)
		l1[i] = be64toh(l1[i]);
	*out = l1;
	return 0;
}

/*
 * Add delta to the refcount of every L2 table and data cluster reachable
 * from l1; with fix_flags, rewrite OFLAG_COPIED in l1 and its L2 tables from
 * the resulting refcounts (the L2 cache must be clean and is bypassed).
 */
static int tree_update(struct qcow2 *q, uint64_t *l1, uint32_t n, int delta,
		       bool fix_flags, bool *l1_changed)
{
	uint8_t *t = malloc(q->cluster_size);
	int r = 0;

	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; i < n && r == 0; i++) {
		uint64_t l2off = l1[i] & QCOW2_OFFSET_MASK, rc;
		bool changed = false;
		if (!l2off)
			continue;
		r = qcow2_check_host(q, l2off, q->cluster_size, "L2 table");
		if (r == 0)
			r = qcow2_pread(q, t, q->cluster_size, l2off);
		if (r == 0 && delta)
			r = qcow2_refcount_update(q, l2off >> q->cluster_bits, delta);
		for (uint32_t j = 0; j < q->l2_entries && r == 0; j++) {
			uint64_t e = qcow2_l2_entry(q, t, j), first, last;
			if (!qcow2_entry_clusters(q, e, &first, &last))
				continue;
			/* A reference past the end would size a refcount table
			 * (and the file) by a hostile offset. */
			if (delta > 0 && last >= q->file_end >> q->cluster_bits) {
				r = vimg_fail(q->img, -EIO, "L2 entry %llx points past the end of "
					      "the file; run 'vireo-img check -r all'",
					      (unsigned long long)e);
				break;
			}
			for (uint64_t c = first; delta && c <= last && r == 0; c++)
				r = qcow2_refcount_update(q, c, delta);
			if (r == 0 && fix_flags && !(e & QCOW2_OFLAG_COMPRESSED)) {
				uint64_t ne;
				r = qcow2_refcount_get(q, first, &rc);
				ne = rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
				if (ne != e) {
					uint64_t be = htobe64(ne);
					memcpy(t + (size_t)j * q->l2_entry_size, &be, 8);
					changed = true;
				}
			}
		}
		if (r == 0 && changed)
			r = qcow2_pwrite(q, t, q->cluster_size, l2off);
		if (r == 0 && fix_flags) {
			uint64_t ne;
			r = qcow2_refcount_get(q, l2off >> q->cluster_bits, &rc);
			ne = rc == 1 ? l1[i] | QCOW2_OFLAG_COPIED : l1[i] & ~QCOW2_OFLAG_COPIED;
			if (ne != l1[i]) {
				l1[i] = ne;
				*l1_changed = true;
			}
		}
	}
	free(t);
	return r;
}

/* Would one more reference to everything in the tree overflow a refcount?
 * Checked before a snapshot changes anything. */
static int tree_precheck(struct qcow2 *q, const uint64_t *l1, uint32_t n)
{
	uint8_t *t = malloc(q->cluster_size);
	int r = 0;

	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; i < n && r == 0; i++) {
		uint64_t l2off = l1[i] & QCOW2_OFFSET_MASK, rc = 0;
		if (!l2off)
			continue;
		r = qcow2_check_host(q, l2off, q->cluster_size, "L2 table");
		if (r == 0)
			r = qcow2_refcount_get(q, l2off >> q->cluster_bits, &rc);
		if (r == 0 && rc >= q->refcount_max)
			goto overflow;
		if (r == 0)
			r = qcow2_pread(q, t, q->cluster_size, l2off);
		for (uint32_t j = 0; j < q->l2_entries && r == 0; j++) {
			uint64_t first, last;
			if (!qcow2_entry_clusters(q, qcow2_l2_entry(q, t, j), &first, &last))
				continue;
			for (uint64_t c = first; c <= last && r == 0; c++) {
				r = qcow2_refcount_get(q, c, &rc);
				if (r == 0 && rc + (last > first ? 1 : 0) >= q->refcount_max)
					goto overflow;
			}
		}
	}
	free(t);
	return r;
overflow:
	free(t);
	return vimg_fail(q->img, -ERANGE,
		"refcount overflow: %u-bit refcounts cannot hold another reference; recreate the image with a larger refcount_bits",
		q->refcount_bits);
}

static int write_active_l1(struct qcow2 *q)
{
	q->l1_dirty_lo = 0;
	q->l1_dirty_hi = q->l1_size;
	return qcow2_l1_write_dirty(q);
}

static int find_snap(struct qcow2 *q, const char *name)
{
	for (uint32_t i = 0; i < q->nb_snapshots; i++)
		if (!strcmp(q->snaps[i].id, name))
			return (int)i;
	for (uint32_t i = 0; i < q->nb_snapshots; i++)
		if (!strcmp(q->snaps[i].name, name))
			return (int)i;
	return -1;
}

static int prepare(struct qcow2 *q)
{
	int r = qcow2_mark_dirty(q);

	if (r == 0)
		r = qcow2_flush_all(q);
	if (r == 0)
		qcow2_cache_clear(&q->l2c);
	return r;
}

static int snapshot_create(struct vimg *img, const char *name)
{
	struct qcow2 *q = qcow2_of(img);
	struct qcow2_snap *ns, s = { 0 };
	uint64_t *be, l1c, maxid = 0;
	struct timespec ts;
	bool l1_changed = false;
	char idbuf[32];
	int r;

	if (!name || !name[0] || strlen(name) > 1000)
		return vimg_fail(img, -EINVAL, "snapshot name must be 1 to 1000 bytes");
	if (find_snap(q, name) >= 0)
		return vimg_fail(img, -EEXIST, "a snapshot named '%s' already exists", name);
	if (q->nb_snapshots >= QCOW2_MAX_SNAPSHOTS)
		return vimg_fail(img, -ENOSPC, "too many snapshots");
	r = prepare(q);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		uint64_t v = strtoull(q->snaps[i].id, NULL, 10);
		maxid = VIREO_MAX(maxid, v);
	}
	snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)maxid + 1);
	r = tree_precheck(q, q->l1, q->l1_size);
	if (r < 0)
		return r;
	/* 1. Copy of the active L1 table. */
	l1c = qcow2_align(q, (uint64_t)q->l1_size * 8) >> q->cluster_bits;
	if (q->l1_size) {
		r = qcow2_alloc_clusters(q, l1c, &s.l1_offset);
		if (r < 0)
			return r;
		qcow2_meta_mark(q, s.l1_offset, l1c << q->cluster_bits, true);
		be = calloc(l1c, q->cluster_size);
		if (!be)
			return -ENOMEM;
		for (uint32_t i = 0; i < q->l1_size; i++)
			be[i] = htobe64(q->l1[i] & ~QCOW2_OFLAG_COPIED);
		r = qcow2_pwrite(q, be, l1c << q->cluster_bits, s.l1_offset);
		free(be);
		if (r < 0)
			return r;
	}
	/* 2. One more reference to everything; clear COPIED in the active tree. */
	r = tree_update(q, q->l1, q->l1_size, 1, true, &l1_changed);
	if (r == 0)
		r = qcow2_refcount_sync(q);
	if (r == 0)
		r = write_active_l1(q);
	if (r == 0)
		r = qcow2_sync(q);
	if (r < 0)
		return r;
	/* 3. The table entry. */
	clock_gettime(CLOCK_REALTIME, &ts);
	s.l1_size = q->l1_size;
	s.id = strdup(idbuf);
	s.name = strdup(name);
	s.date_sec = (uint32_t)ts.tv_sec;
	s.date_nsec = (uint32_t)ts.tv_nsec;
	s.disk_size = img->size;
	s.extra_size = 24;   /* vm_state_size_large, disk_size, icount */
	s.extra = calloc(1, 24);
	if (!s.id || !s.name || !s.extra) {
		snap_clear(&s);
		return -ENOMEM;
	}
	p64(s.extra + 8, img->size);
	ns = realloc(q->snaps, (q->nb_snapshots + 1) * sizeof(*ns));
	if (!ns) {
		snap_clear(&s);
		return -ENOMEM;
	}
	q->snaps = ns;
	ns[q->nb_snapshots] = s;
	r = write_table(q, ns, q->nb_snapshots + 1);
	if (r < 0) {
		snap_clear(&ns[q->nb_snapshots]);
		return r;
	}
	q->nb_snapshots++;
	return qcow2_flush_all(q);
}

/* With the refcounts on disk: set OFLAG_COPIED in the active tree where
 * a cluster's refcount is now 1 (and clear it where shared), then sync. */
static int fix_copied(struct qcow2 *q)
{
	bool ch = false;
	int r = tree_update(q, q->l1, q->l1_size, 0, true, &ch);

	if (r == 0 && ch)
		r = write_active_l1(q);
	if (r == 0)
		r = qcow2_sync(q);
	return r;
}

/* A snapshot's disk size comes from the image: it must be sane and its L1
 * table must cover it (every guest offset below it has an L1 entry). */
static int snap_check_size(struct qcow2 *q, const struct qcow2_snap *s)
{
	if (s->disk_size > (1ull << 56))
		return vimg_fail(q->img, -EINVAL, "snapshot '%s' has an absurd disk size %llu",
				 s->name, (unsigned long long)s->disk_size);
	if ((uint64_t)s->l1_size << (q->cluster_bits + q->l2_bits) < s->disk_size)
		return vimg_fail(q->img, -EINVAL,
			"snapshot '%s': L1 table of %u entries is too small for %llu bytes",
			s->name, s->l1_size, (unsigned long long)s->disk_size);
	return 0;
}

static int snapshot_apply(struct vimg *img, const char *name)
{
	struct qcow2 *q = qcow2_of(img);
	struct qcow2_snap *s;
	uint64_t *sl1 = NULL, *old = NULL;
	uint32_t old_n = q->l1_size;
	bool ch = false;
	int idx = find_snap(q, name), r;

	if (idx < 0)
		return vimg_fail(img, -ENOENT, "no snapshot '%s' (see 'vireo-img snapshot -l')", name);
	s = &q->snaps[idx];
	r = snap_check_size(q, s);
	if (r == 0)
		r = prepare(q);
	if (r < 0)
		return r;
	if (s->l1_size > q->l1_size) {
		r = qcow2_l1_grow(q, s->l1_size);
		if (r < 0)
			return r;
		qcow2_cache_clear(&q->l2c);
		old_n = q->l1_size;
	}
	r = read_l1(q, s->l1_offset, s->l1_size, &sl1);
	if (r < 0)
		return r;
	r = tree_precheck(q, sl1, s->l1_size);
	if (r < 0)
		goto out;
	/* New tree gains a reference before anything points to it. */
	r = tree_update(q, sl1, s->l1_size, 1, false, &ch);
	if (r == 0)
		r = qcow2_refcount_sync(q);
	if (r < 0)
		goto out;
	old = malloc((size_t)old_n * 8 + 8);
	if (!old) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(old, q->l1, (size_t)old_n * 8);
	memset(q->l1, 0, (size_t)q->l1_size * 8);
	for (uint32_t i = 0; i < s->l1_size; i++)
		q->l1[i] = sl1[i] & ~QCOW2_OFLAG_COPIED;
	r = write_active_l1(q);
	if (r == 0)
		r = qcow2_sync(q);
	if (r < 0)
		goto out;
	if (s->disk_size != img->size) {
		r = qcow2_header_put(q, QH_SIZE, s->disk_size);
		if (r < 0)
			goto out;
		img->size = s->disk_size;
	}
	qcow2_cache_clear(&q->l2c);
	/* The old tree loses its reference; then fix COPIED in the new one. */
	r = tree_update(q, old, old_n, -1, false, &ch);
	if (r == 0)
		r = qcow2_refcount_sync(q);
	if (r == 0)
		r = fix_copied(q);
out:
	free(sl1);
	free(old);
	return r;
}

static int snapshot_delete(struct vimg *img, const char *name)
{
	struct qcow2 *q = qcow2_of(img);
	struct qcow2_snap s, *rest;
	uint64_t *sl1 = NULL;
	bool ch = false;
	int idx = find_snap(q, name), r;
	uint32_t n = 0;

	if (idx < 0)
		return vimg_fail(img, -ENOENT, "no snapshot '%s' (see 'vireo-img snapshot -l')", name);
	r = prepare(q);
	if (r < 0)
		return r;
	s = q->snaps[idx];
	r = read_l1(q, s.l1_offset, s.l1_size, &sl1);
	if (r < 0)
		return r;
	rest = calloc(q->nb_snapshots, sizeof(*rest));
	if (!rest) {
		free(sl1);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < q->nb_snapshots; i++)
		if ((int)i != idx)
			rest[n++] = q->snaps[i];
	/* Unlink first: afterwards the dropped references can only leak. */
	r = write_table(q, rest, n);
	if (r < 0) {
		free(rest);
		free(sl1);
		return r;
	}
	free(q->snaps);
	q->snaps = rest;
	q->nb_snapshots = n;
	r = qcow2_flush_all(q);
	if (r == 0)
		r = tree_update(q, sl1, s.l1_size, -1, false, &ch);
	if (r == 0 && s.l1_size)
		for (uint64_t c = 0; c < qcow2_align(q, (uint64_t)s.l1_size * 8) >> q->cluster_bits && r == 0; c++)
			r = qcow2_refcount_update(q, (s.l1_offset >> q->cluster_bits) + c, -1);
	if (r == 0)
		r = qcow2_refcount_sync(q);
	qcow2_cache_clear(&q->l2c);
	if (r == 0)
		r = fix_copied(q);
	free(s.id);
	free(s.name);
	free(s.extra);
	free(sl1);
	return r;
}

/*
 * Read-only view of a snapshot: the active L1 table in memory is replaced
 * by the snapshot's (nothing is written; the image must be read-only).
 * id and/or name select it; with both, both must match.
 */
static int snapshot_load(struct vimg *img, const char *id, const char *name)
{
	struct qcow2 *q = qcow2_of(img);
	struct qcow2_snap *s = NULL;
	uint64_t *sl1;
	int r;

	for (uint32_t i = 0; i < q->nb_snapshots && !s; i++)
		if ((!id || !strcmp(q->snaps[i].id, id)) &&
		    (!name || !strcmp(q->snaps[i].name, name)))
			s = &q->snaps[i];
	if (!s && id && !name) {
		/* A bare word is an ID first, then a name (as qemu-img). */
		for (uint32_t i = 0; i < q->nb_snapshots && !s; i++)
			if (!strcmp(q->snaps[i].name, id))
				s = &q->snaps[i];
	}
	if (!s)
		return vimg_fail(img, -ENOENT,
			"no snapshot with %s%s%s%s%s%s (see 'vireo-img snapshot -l')",
			id ? "id '" : "", id ? id : "", id ? "'" : "",
			name ? (id ? " and name '" : "name '") : "", name ? name : "",
			name ? "'" : "");
	r = snap_check_size(q, s);
	if (r < 0)
		return r;
	r = read_l1(q, s->l1_offset, s->l1_size, &sl1);
	if (r < 0)
		return r;
	qcow2_cache_clear(&q->l2c);
	free(q->l1);
	q->l1 = sl1;
	q->l1_size = s->l1_size;
	q->l1_offset = s->l1_offset;
	q->l1_dirty_lo = q->l1_dirty_hi = 0;
	img->size = s->disk_size;
	return 0;
}

/* The driver's snapshot entry (img.c has checked access and holds the lock). */
int qcow2_snapshot(struct vimg *img, enum vimg_snap_op op, const char *id,
		   const char *name)
{
	switch (op) {
	case VIMG_SNAP_CREATE: return snapshot_create(img, name);
	case VIMG_SNAP_APPLY:  return snapshot_apply(img, name);
	case VIMG_SNAP_DELETE: return snapshot_delete(img, name);
	case VIMG_SNAP_LOAD:   return snapshot_load(img, id, name);
	}
	return -EINVAL;
}
