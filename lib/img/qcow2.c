/* qcow2: header parsing and validation, open/close, create, driver ops. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2.h"

int qcow2_pread(struct qcow2 *q, void *buf, size_t len, uint64_t off)
{
	int r = vio_pread_zfill(q->fd, buf, len, (off_t)off);

	if (r < 0)
		return vimg_fail(q->img, r, "read of %zu bytes at %llu: %s", len,
				 (unsigned long long)off, strerror(-r));
	return 0;
}

int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
	int r = vio_pwrite_full(q->fd, buf, len, (off_t)off);

	if (r < 0)
		return vimg_fail(q->img, r, "write of %zu bytes at %llu: %s", len,
				 (unsigned long long)off, strerror(-r));
	if (off + len > q->file_size)
		q->file_size = off + len;
	return 0;
}

int qcow2_sync(struct qcow2 *q)
{
	if (q->img->opts.unsafe)
		return 0;
	if (fdatasync(q->fd) < 0)
		return vimg_fail(q->img, -errno, "flush: %s", strerror(errno));
	return 0;
}

static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static void put64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }
static void put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }

/* The first write of a session sets the dirty bit (lazy refcounts) and
 * clears autoclear bits we do not maintain (e.g. persistent bitmaps). */
int qcow2_mark_dirty(struct qcow2 *q)
{
	uint8_t b[8];
	int r;

	if (q->dirty_written)
		return 0;
	if (q->version >= 3 && q->autoclear) {
		q->autoclear = 0;
		put64(b, 0);
		r = qcow2_pwrite(q, b, 8, 88);
		if (r < 0)
			return r;
	}
	if (q->lazy) {
		q->incompat |= QCOW2_INCOMPAT_DIRTY;
		put64(b, q->incompat);
		r = qcow2_pwrite(q, b, 8, 72);
		if (r < 0)
			return r;
		r = qcow2_sync(q);
		if (r < 0)
			return r;
	}
	q->dirty_written = true;
	return 0;
}

int qcow2_clear_dirty(struct qcow2 *q)
{
	uint8_t b[8];
	int r;

	if (!(q->incompat & QCOW2_INCOMPAT_DIRTY))
		return 0;
	q->incompat &= ~QCOW2_INCOMPAT_DIRTY;
	put64(b, q->incompat);
	r = qcow2_pwrite(q, b, 8, 72);
	if (r < 0)
		return r;
	return qcow2_sync(q);
}

/* Serialise the header cluster: fields, extensions, backing file name. */
static int build_header(struct qcow2 *q, uint8_t *h)
{
	uint32_t cs = q->cluster_size, pos;
	size_t blen = q->backing_file ? strlen(q->backing_file) : 0;

	memset(h, 0, cs);
	put32(h, QCOW2_MAGIC);
	put32(h + 4, (uint32_t)q->version);
	put32(h + 20, q->cluster_bits);
	put64(h + 24, q->img->size);
	put32(h + 36, q->l1_size);
	put64(h + 40, q->l1_offset);
	put64(h + 48, q->rt_offset);
	put32(h + 56, q->rt_clusters);
	put32(h + 60, q->nb_snapshots);
	put64(h + 64, q->snapshots_offset);
	if (q->version >= 3) {
		uint64_t inc = q->incompat & ~QCOW2_INCOMPAT_COMPRESS;
		if (q->compression)
			inc |= QCOW2_INCOMPAT_COMPRESS;
		put64(h + 72, inc);
		put64(h + 80, q->compat);
		put64(h + 88, q->autoclear);
		put32(h + 96, (uint32_t)q->refcount_order);
		put32(h + 100, 112);
		h[104] = (uint8_t)q->compression;
		pos = 112;
	} else {
		pos = 72;
	}
	if (q->backing_fmt && q->backing_file) {
		uint32_t l = (uint32_t)strlen(q->backing_fmt);
		if (pos + 8 + VIREO_ALIGN_UP(l, 8) > cs)
			goto toobig;
		put32(h + pos, QCOW2_EXT_BACKING_FMT);
		put32(h + pos + 4, l);
		memcpy(h + pos + 8, q->backing_fmt, l);
		pos += 8 + VIREO_ALIGN_UP(l, 8);
	}
	for (int i = 0; i < q->n_exts; i++) {
		struct qcow2_ext *x = &q->exts[i];
		if (pos + 8 + VIREO_ALIGN_UP(x->len, 8) > cs)
			goto toobig;
		put32(h + pos, x->type);
		put32(h + pos + 4, x->len);
		memcpy(h + pos + 8, x->data, x->len);
		pos += 8 + VIREO_ALIGN_UP(x->len, 8);
	}
	if (pos + 8 + blen > cs)
		goto toobig;
	pos += 8;   /* end-of-extensions marker (zeros) */
	if (blen) {
		put64(h + 8, pos);
		put32(h + 16, (uint32_t)blen);
		memcpy(h + pos, q->backing_file, blen);
	}
	return 0;
toobig:
	return vimg_fail(q->img, -ENAMETOOLONG,
		"header, extensions and backing file name do not fit in one %u-byte cluster", cs);
}

int qcow2_build_header_for_create(struct qcow2 *q, uint8_t *h)
{
	return build_header(q, h);
}

int qcow2_write_header(struct qcow2 *q)
{
	uint8_t *h = calloc(1, q->cluster_size);
	int r;

	if (!h)
		return -ENOMEM;
	r = build_header(q, h);
	if (r == 0)
		r = qcow2_pwrite(q, h, q->cluster_size, 0);
	free(h);
	return r;
}

static int read_extensions(struct qcow2 *q, const uint8_t *h, uint64_t end)
{
	uint64_t pos = q->header_length;

	while (pos + 8 <= end) {
		uint32_t type = get32(h + pos), len = get32(h + pos + 4);
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - pos - 8)
			return vimg_fail(q->img, -EINVAL,
				"header extension 0x%08x of %u bytes runs past the header cluster",
				type, len);
		if (type == QCOW2_EXT_BACKING_FMT) {
			q->backing_fmt = strndup((const char *)h + pos + 8, len);
		} else if (type == 0x44415441u) {
			return vimg_fail(q->img, -ENOTSUP,
				"images with an external data file are not supported");
		} else if (type == 0x0537be77u) {
			return vimg_fail(q->img, -ENOTSUP, "encrypted images are not supported");
		} else {
			struct qcow2_ext *x = realloc(q->exts, (size_t)(q->n_exts + 1) * sizeof(*x));
			if (!x)
				return -ENOMEM;
			q->exts = x;
			x[q->n_exts].type = type;
			x[q->n_exts].len = len;
			x[q->n_exts].data = malloc(len ? len : 1);
			if (!x[q->n_exts].data)
				return -ENOMEM;
			memcpy(x[q->n_exts].data, h + pos + 8, len);
			q->n_exts++;
		}
		pos += 8 + VIREO_ALIGN_UP((uint64_t)len, 8);
	}
	return 0;
}

static void qcow2_free(struct qcow2 *q)
{
	if (!q)
		return;
	qcow2_cpool_free(q);
	qcow2_cache_free(&q->l2c);
	qcow2_cache_free(&q->rbc);
	qcow2_snapshots_free(q);
	free(q->l1);
	free(q->rt);
	free(q->backing_file);
	free(q->backing_fmt);
	for (int i = 0; i < q->n_exts; i++)
		free(q->exts[i].data);
	free(q->exts);
	free(q->pending_free);
	free(q->cbuf);
	free(q->cbuf2);
	free(q->zbuf);
	free(q);
}

static int qcow2_open_inner(struct vimg *img)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	uint8_t h0[112] = { 0 }, *h = NULL;
	struct stat st;
	uint64_t size, l1_need, cache;
	int r;

	if (!q)
		return -ENOMEM;
	img->priv = q;
	q->img = img;
	q->fd = img->fd;
	if (fstat(q->fd, &st) < 0)
		return vimg_fail(img, -errno, "cannot stat: %s", strerror(errno));
	q->file_size = (uint64_t)st.st_size;
	if (q->file_size < 72)
		return vimg_fail(img, -EINVAL,
			"truncated qcow2 header: file has %llu bytes, a header needs at least 72",
			(unsigned long long)q->file_size);
	r = qcow2_pread(q, h0, sizeof(h0), 0);
	if (r < 0)
		return r;
	if (get32(h0) != QCOW2_MAGIC)
		return vimg_fail(img, -EINVAL, "not a qcow2 image (bad magic 0x%08x)", get32(h0));
	if (get32(h0 + 4) != 2 && get32(h0 + 4) != 3)
		return vimg_fail(img, -ENOTSUP, "unsupported qcow2 version %u (2 and 3 are)",
				 get32(h0 + 4));
	q->version = (int)get32(h0 + 4);
	q->cluster_bits = get32(h0 + 20);
	if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return vimg_fail(img, -EINVAL,
			"bad cluster_bits %u (must be 9 to 21: 512 B to 2 MiB clusters)",
			q->cluster_bits);
	q->cluster_size = 1u << q->cluster_bits;
	if (get32(h0 + 32))
		return vimg_fail(img, -ENOTSUP, "encrypted images are not supported (crypt_method %u)",
				 get32(h0 + 32));
	size = get64(h0 + 24);
	q->l1_size = get32(h0 + 36);
	q->l1_offset = get64(h0 + 40);
	q->rt_offset = get64(h0 + 48);
	q->rt_clusters = get32(h0 + 56);
	q->nb_snapshots = get32(h0 + 60);
	q->snapshots_offset = get64(h0 + 64);
	q->backing_offset = get64(h0 + 8);
	q->backing_size = get32(h0 + 16);
	if (q->version >= 3) {
		if (q->file_size < 104)
			return vimg_fail(img, -EINVAL,
				"truncated qcow2 v3 header: file has %llu bytes, needs at least 104",
				(unsigned long long)q->file_size);
		q->incompat = get64(h0 + 72);
		q->compat = get64(h0 + 80);
		q->autoclear = get64(h0 + 88);
		/* Checked as the unsigned field it is on disk: a value such
		 * as 0xffffff04 must not turn into a small negative int. */
		if (get32(h0 + 96) > 6)
			return vimg_fail(img, -EINVAL,
				"bad refcount_order %u (at most 6: 64-bit refcounts)",
				get32(h0 + 96));
		q->refcount_order = (int)get32(h0 + 96);
		q->header_length = get32(h0 + 100);
		if (q->header_length < 104 || q->header_length > q->cluster_size ||
		    q->header_length % 8)
			return vimg_fail(img, -EINVAL, "bad header_length %u", q->header_length);
		if (q->incompat & ~QCOW2_INCOMPAT_KNOWN)
			return vimg_fail(img, -ENOTSUP,
				"unknown incompatible feature bits 0x%llx; this image needs a newer program",
				(unsigned long long)(q->incompat & ~QCOW2_INCOMPAT_KNOWN));
		if (q->incompat & QCOW2_INCOMPAT_DATAFILE)
			return vimg_fail(img, -ENOTSUP, "images with an external data file are not supported");
		if (q->incompat & QCOW2_INCOMPAT_COMPRESS) {
			if (q->header_length < 105)
				return vimg_fail(img, -EINVAL,
					"compression type bit set but header_length %u has no room for it",
					q->header_length);
			q->compression = h0[104];
			if (q->compression > 1)
				return vimg_fail(img, -ENOTSUP,
					"unknown compression type %d (0 zlib, 1 zstd)", q->compression);
		}
		if (q->incompat & QCOW2_INCOMPAT_CORRUPT && !img->readonly)
			return vimg_fail(img, -EIO,
				"image is marked corrupt; open it read-only or run 'vireo-img check -r all'");
		q->extl2 = q->incompat & QCOW2_INCOMPAT_EXTL2;
		q->lazy = q->compat & QCOW2_COMPAT_LAZY;
	} else {
		q->refcount_order = 4;
		q->header_length = 72;
	}
	if (q->refcount_order < 0 || q->refcount_order > 6)
		return vimg_fail(img, -EINVAL, "bad refcount_order %d (at most 6: 64-bit refcounts)",
				 q->refcount_order);
	if (q->extl2 && q->cluster_bits < 14)
		return vimg_fail(img, -EINVAL, "extended L2 entries need clusters of at least 16 KiB");
	q->refcount_bits = 1u << q->refcount_order;
	q->refcount_max = q->refcount_bits == 64 ? UINT64_MAX : (1ull << q->refcount_bits) - 1;
	q->rb_bits = q->cluster_bits + 3 - (uint32_t)q->refcount_order;
	q->rb_entries = 1u << q->rb_bits;
	q->l2_entry_size = q->extl2 ? 16 : 8;
	q->l2_bits = q->cluster_bits - (q->extl2 ? 4 : 3);
	q->l2_entries = 1u << q->l2_bits;
	q->subcluster_size = q->extl2 ? q->cluster_size / 32 : q->cluster_size;
	q->file_end = qcow2_align(q, q->file_size);

	/* Sizes and offsets must be sane before anything is allocated. */
	if (size > (1ull << 56))
		return vimg_fail(img, -EFBIG, "virtual size %llu is absurd (more than 64 PiB)",
				 (unsigned long long)size);
	img->size = size;
	l1_need = (size + ((uint64_t)q->cluster_size << q->l2_bits) - 1) >>
		  (q->cluster_bits + q->l2_bits);
	if (q->l1_size < l1_need)
		return vimg_fail(img, -EINVAL,
			"L1 table has %u entries, the virtual size %llu needs %llu",
			q->l1_size, (unsigned long long)size, (unsigned long long)l1_need);
	if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return vimg_fail(img, -EFBIG, "L1 table of %u entries is too large", q->l1_size);
	if ((q->l1_offset & (q->cluster_size - 1)) ||
	    (q->l1_size && (q->l1_offset == 0 || q->l1_offset + (uint64_t)q->l1_size * 8 > q->file_end)))
		return vimg_fail(img, -EINVAL,
			"L1 table offset %llu is unaligned or past the end of the file",
			(unsigned long long)q->l1_offset);
	if (!q->rt_clusters || (uint64_t)q->rt_clusters * q->cluster_size > QCOW2_MAX_RT_BYTES * 4ull)
		return vimg_fail(img, -EINVAL, "bad refcount table size: %u clusters", q->rt_clusters);
	if ((q->rt_offset & (q->cluster_size - 1)) || q->rt_offset == 0 ||
	    q->rt_offset + ((uint64_t)q->rt_clusters << q->cluster_bits) > q->file_end)
		return vimg_fail(img, -EINVAL,
			"refcount table offset %llu is unaligned or past the end of the file",
			(unsigned long long)q->rt_offset);
	if (q->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return vimg_fail(img, -EINVAL, "too many snapshots: %u", q->nb_snapshots);
	if (q->backing_offset) {
		if (q->backing_size > 1023 || q->backing_offset >= q->cluster_size ||
		    q->backing_offset + q->backing_size > q->cluster_size)
			return vimg_fail(img, -EINVAL,
				"backing file name (offset %llu, %u bytes) must lie within the header cluster",
				(unsigned long long)q->backing_offset, q->backing_size);
	}

	h = calloc(1, q->cluster_size);
	q->cbuf = aligned_alloc(4096, VIREO_ALIGN_UP(q->cluster_size, 4096));
	q->cbuf2 = aligned_alloc(4096, VIREO_ALIGN_UP(2 * q->cluster_size, 4096));
	q->zbuf = calloc(1, q->cluster_size);
	if (!h || !q->cbuf || !q->cbuf2 || !q->zbuf) {
		free(h);
		return -ENOMEM;
	}
	r = qcow2_pread(q, h, q->cluster_size, 0);
	if (r == 0)
		r = read_extensions(q, h, q->backing_offset ? q->backing_offset : q->cluster_size);
	if (r == 0 && q->backing_offset) {
		q->backing_file = strndup((const char *)h + q->backing_offset, q->backing_size);
		if (!q->backing_file)
			r = -ENOMEM;
	}
	free(h);
	if (r < 0)
		return r;

	q->l1 = calloc(q->l1_size ? q->l1_size : 1, 8);
	q->rt_size = ((uint64_t)q->rt_clusters << q->cluster_bits) / 8;
	q->rt = calloc(q->rt_size, 8);
	if (!q->l1 || !q->rt)
		return -ENOMEM;
	r = qcow2_pread(q, q->l1, (size_t)q->l1_size * 8, q->l1_offset);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < q->l1_size; i++)
		q->l1[i] = be64toh(q->l1[i]);
	r = qcow2_pread(q, q->rt, q->rt_size * 8, q->rt_offset);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < q->rt_size; i++) {
		q->rt[i] = be64toh(q->rt[i]);
		if (q->rt[i] & ~QCOW2_RT_OFFSET_MASK || (q->rt[i] & (q->cluster_size - 1)))
			return vimg_fail(img, -EINVAL,
				"refcount table entry %llu (%llu) is not cluster-aligned",
				(unsigned long long)i, (unsigned long long)q->rt[i]);
		if (q->rt[i] + q->cluster_size > q->file_end)
			return vimg_fail(img, -EINVAL,
				"refcount table entry %llu points past the end of the file (%llu)",
				(unsigned long long)i, (unsigned long long)q->rt[i]);
	}
	r = qcow2_snapshots_load(q);
	if (r < 0)
		return r;

	cache = img->opts.cache_size ? img->opts.cache_size : 32ull << 20;
	{
		uint64_t l2n = VIREO_MIN((uint64_t)q->l1_size + 1, cache / q->cluster_size);
		/* Not bounded by today's table: it grows with the image. */
		uint64_t rbn = (img->opts.cache_size ? img->opts.cache_size / 4 :
				4ull << 20) / q->cluster_size;
		l2n = VIREO_MAX(VIREO_MIN(l2n, 4096), 16);
		rbn = VIREO_MAX(VIREO_MIN(rbn, 1024), 8);
		r = qcow2_cache_init(&q->l2c, q->cluster_size, (int)l2n);
		if (r == 0)
			r = qcow2_cache_init(&q->rbc, q->cluster_size, (int)rbn);
		if (r < 0)
			return r;
	}
	q->free_hint = 1;

	if (q->backing_file && !img->opts.no_backing) {
		r = vimg_open_backing(img, q->backing_file, q->backing_fmt);
		if (r < 0)
			return r;
	}
	if (!img->readonly && (q->incompat & QCOW2_INCOMPAT_DIRTY) && !img->opts.no_repair) {
		struct vimg_check res;
		r = qcow2_check(img, VIMG_FIX_LEAKS | VIMG_FIX_ERRORS, &res, NULL);
		if (r < 0)
			return r;
		if (res.corruptions)
			return vimg_fail(img, -EIO,
				"image was not closed cleanly and %llu corruptions remain after repair",
				(unsigned long long)res.corruptions);
		r = qcow2_clear_dirty(q);
		if (r < 0)
			return r;
	}
	return 0;
}

static int qcow2_open(struct vimg *img)
{
	int r = qcow2_open_inner(img);

	if (r < 0) {
		/* Refused: free everything without writing a byte. */
		qcow2_free(img->priv);
		img->priv = NULL;
		if (img->backing) {
			img->backing->readonly = true;
			vimg_close(img->backing);
			img->backing = NULL;
		}
	}
	return r;
}

static void qcow2_close(struct vimg *img)
{
	struct qcow2 *q = qcow2_of(img);

	if (!q)
		return;
	if (!img->readonly && q->l1) {
		if (q->lazy && q->dirty_written) {
			q->closing = true;
			q->meta_changed = true;
		}
		if (qcow2_flush_all(q) == 0) {
			/* Trim the sparse room made ahead of allocations. */
			if (q->file_size > q->file_end &&
			    ftruncate(q->fd, (off_t)q->file_end) == 0)
				q->file_size = q->file_end;
			if (q->dirty_written)
				qcow2_clear_dirty(q);
		}
	}
	qcow2_free(q);
	img->priv = NULL;
}

static int drv_pread(struct vimg *img, void *buf, size_t len, uint64_t off)
{
	return qcow2_read(qcow2_of(img), buf, len, off);
}

static int drv_pwrite(struct vimg *img, const void *buf, size_t len, uint64_t off)
{
	return qcow2_write(qcow2_of(img), buf, len, off);
}

static int drv_zero(struct vimg *img, uint64_t off, uint64_t len)
{
	return qcow2_zero(qcow2_of(img), off, len, QCOW2_ZERO_WRITE);
}

static int drv_discard(struct vimg *img, uint64_t off, uint64_t len)
{
	return qcow2_zero(qcow2_of(img), off, len, QCOW2_ZERO_DISCARD);
}

static int drv_flush(struct vimg *img)
{
	return qcow2_flush_all(qcow2_of(img));
}

static int drv_status(struct vimg *img, uint64_t off, uint64_t len,
		      struct vimg_extent *ext)
{
	return qcow2_status(qcow2_of(img), off, len, ext);
}

static int drv_map(struct vimg *img, uint64_t off, uint64_t len, bool for_write,
		   uint64_t *host_off, uint64_t *run)
{
	struct qcow2 *q = qcow2_of(img);
	uint32_t l1i = (uint32_t)(off >> (q->cluster_bits + q->l2_bits));
	uint32_t l2i = (uint32_t)((off >> q->cluster_bits) & (q->l2_entries - 1));
	uint64_t in_cl = off & (q->cluster_size - 1), e, h;
	uint8_t *t;
	int r;

	if (q->extl2 || l1i >= q->l1_size)
		return -ENOENT;
	if (for_write && !(q->l1[l1i] & QCOW2_OFLAG_COPIED))
		return -ENOENT;
	r = qcow2_l2_load(q, l1i, &t);
	if (r < 0 || !t)
		return -ENOENT;
	e = qcow2_l2_entry(q, t, l2i);
	h = e & QCOW2_OFFSET_MASK;
	if ((e & QCOW2_OFLAG_COMPRESSED) || !h || (h & (q->cluster_size - 1)) ||
	    ((e & QCOW2_OFLAG_ZERO) && q->version >= 3))
		return -ENOENT;
	if (for_write && !(e & QCOW2_OFLAG_COPIED))
		return -ENOENT;
	if (qcow2_check_host(q, h, q->cluster_size, "data cluster") < 0)
		return -ENOENT;   /* the slow path reports it */
	if (for_write && !q->dirty_written) {
		r = qcow2_mark_dirty(q);
		if (r < 0)
			return r;
	}
	*host_off = h + in_cl;
	*run = VIREO_MIN(len, q->cluster_size - in_cl);
	return 0;
}

static int qcow2_make_empty(struct vimg *img)
{
	struct qcow2 *q = qcow2_of(img);
	int r = qcow2_zero(q, 0, img->size, QCOW2_ZERO_UNALLOC);

	return r < 0 ? r : qcow2_flush_all(q);
}

static int qcow2_pwrite_defer(struct vimg *img, const void *buf, size_t len,
			      uint64_t off, uint64_t *host, uint64_t *dlen,
			      const void **src)
{
	struct qcow2 *q = qcow2_of(img);
	int r;

	q->defer_ok = true;
	q->defer_len = 0;
	r = qcow2_write(q, buf, len, off);
	q->defer_ok = false;
	if (r < 0 || !q->defer_len)
		return r;
	*host = q->defer_host;
	*dlen = q->defer_len;
	*src = q->defer_src;
	return 1;
}

static uint32_t qcow2_cluster_size(struct vimg *img)
{
	return qcow2_of(img)->cluster_size;
}

static int qcow2_pwrite_compressed(struct vimg *img, const void *buf,
				   size_t len, uint64_t off)
{
	struct qcow2 *q = qcow2_of(img);
	const uint8_t *p = buf;

	if ((off | len) & (q->cluster_size - 1) && off + len != img->size)
		return vimg_fail(img, -EINVAL,
			"compressed writes must cover whole %u-byte clusters", q->cluster_size);
	while (len) {
		size_t n = VIREO_MIN(len, (size_t)q->cluster_size);
		int r;
		if (n < q->cluster_size || q->extl2) {
			/* Short tail cluster; subcluster images store plainly. */
			r = qcow2_write(q, p, n, off);
		} else if (len >= 2 * (size_t)q->cluster_size) {
			n = len & ~((size_t)q->cluster_size - 1);
			r = qcow2_write_compressed_many(q, p, n >> q->cluster_bits, off);
		} else {
			r = qcow2_write_compressed(q, p, off);
		}
		if (r < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int qcow2_info(struct vimg *img, struct vimg_info *info)
{
	struct qcow2 *q = qcow2_of(img);

	info->cluster_size = q->cluster_size;
	info->version = q->version;
	info->refcount_bits = (int)q->refcount_bits;
	info->compression = q->compression;
	info->lazy_refcounts = q->lazy;
	info->dirty = q->incompat & QCOW2_INCOMPAT_DIRTY;
	info->corrupt = q->incompat & QCOW2_INCOMPAT_CORRUPT;
	info->extended_l2 = q->extl2;
	info->nb_snapshots = (int)q->nb_snapshots;
	if (q->backing_file)
		snprintf(info->backing, sizeof(info->backing), "%s", q->backing_file);
	if (q->backing_fmt)
		snprintf(info->backing_fmt, sizeof(info->backing_fmt), "%s", q->backing_fmt);
	return 0;
}

int qcow2_l1_grow(struct qcow2 *q, uint32_t new_size)
{
	uint64_t bytes = (uint64_t)new_size * 8, n = qcow2_align(q, bytes) >> q->cluster_bits;
	uint64_t noff, *nl1, *be;
	uint8_t hb[12];
	int r;

	if (new_size <= q->l1_size)
		return 0;
	if (bytes > QCOW2_MAX_L1_BYTES)
		return vimg_fail(q->img, -EFBIG, "L1 table of %u entries would be too large", new_size);
	r = qcow2_flush_all(q);
	if (r < 0)
		return r;
	r = qcow2_alloc_clusters(q, n, &noff);
	if (r < 0)
		return r;
	nl1 = calloc(n << q->cluster_bits, 1);
	be = calloc(n << q->cluster_bits, 1);
	if (!nl1 || !be) {
		free(nl1);
		free(be);
		return -ENOMEM;
	}
	memcpy(nl1, q->l1, (size_t)q->l1_size * 8);
	for (uint32_t i = 0; i < new_size; i++)
		be[i] = htobe64(nl1[i]);
	r = qcow2_pwrite(q, be, n << q->cluster_bits, noff);
	free(be);
	if (r == 0)
		r = qcow2_refcount_write_dirty(q);
	if (r == 0)
		r = qcow2_sync(q);
	if (r == 0) {
		put32(hb, new_size);
		put64(hb + 4, noff);
		r = qcow2_pwrite(q, hb, 12, 36);
	}
	if (r == 0)
		r = qcow2_sync(q);
	if (r < 0) {
		free(nl1);
		return r;
	}
	if (q->l1_size)
		qcow2_free_later(q, q->l1_offset,
				 qcow2_align(q, (uint64_t)q->l1_size * 8) >> q->cluster_bits);
	free(q->l1);
	q->l1 = nl1;
	q->l1_offset = noff;
	q->l1_size = new_size;
	return qcow2_flush_all(q);
}

static int qcow2_resize(struct vimg *img, uint64_t new_size)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t need = (new_size + ((uint64_t)q->cluster_size << q->l2_bits) - 1) >>
			(q->cluster_bits + q->l2_bits);
	uint8_t b[8];
	int r;

	if (new_size > (1ull << 56))
		return vimg_fail(img, -EFBIG, "size %llu is absurd", (unsigned long long)new_size);
	if (new_size < img->size) {
		uint64_t from = qcow2_align(q, new_size);
		if (from < img->size) {
			r = qcow2_zero(q, from, img->size - from, QCOW2_ZERO_UNALLOC);
			if (r < 0)
				return r;
		}
	}
	if (need > q->l1_size) {
		r = qcow2_l1_grow(q, (uint32_t)need);
		if (r < 0)
			return r;
	}
	r = qcow2_flush_all(q);
	if (r < 0)
		return r;
	put64(b, new_size);
	r = qcow2_pwrite(q, b, 8, 24);
	if (r < 0)
		return r;
	img->size = new_size;
	return qcow2_sync(q);
}

static int qcow2_set_backing(struct vimg *img, const char *b, const char *fmt)
{
	struct qcow2 *q = qcow2_of(img);
	int r;

	r = qcow2_flush_all(q);
	if (r < 0)
		return r;
	free(q->backing_file);
	free(q->backing_fmt);
	q->backing_file = b && b[0] ? strdup(b) : NULL;
	q->backing_fmt = q->backing_file && fmt && fmt[0] ? strdup(fmt) : NULL;
	if (q->version < 3 && q->backing_fmt) {
		/* v2 images can carry the format extension too. */
	}
	r = qcow2_write_header(q);
	if (r < 0)
		return r;
	return qcow2_sync(q);
}

const struct vimg_driver qcow2_driver = {
	.name = "qcow2",
	.fmt = VIMG_FMT_QCOW2,
	.open = qcow2_open,
	.close = qcow2_close,
	.pread = drv_pread,
	.pwrite = drv_pwrite,
	.pwrite_zeroes = drv_zero,
	.discard = drv_discard,
	.flush = drv_flush,
	.block_status = drv_status,
	.map = drv_map,
	.create = qcow2_create,
	.info = qcow2_info,
	.check = qcow2_check,
	.resize = qcow2_resize,
	.set_backing = qcow2_set_backing,
	.make_empty = qcow2_make_empty,
	.cluster_size = qcow2_cluster_size,
	.pwrite_compressed = qcow2_pwrite_compressed,
	.pwrite_defer = qcow2_pwrite_defer,
	.snapshot_list = qcow2_snapshot_list,
	.snapshot = qcow2_snapshot,
};
