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


/* Where each header field lives: offset, width in bytes, first version. */
static const struct qcow2_header_field {
	uint8_t off, width, version;
	uint8_t member;   /* offsetof in struct qcow2_header */
} header_fields[] = {
#define F(o, w, v, m) { o, w, v, offsetof(struct qcow2_header, m) }
	F(QH_MAGIC, 4, 2, magic),             F(QH_VERSION, 4, 2, version),
	F(QH_BACKING_OFFSET, 8, 2, backing_offset),
	F(QH_BACKING_SIZE, 4, 2, backing_size),
	F(QH_CLUSTER_BITS, 4, 2, cluster_bits), F(QH_SIZE, 8, 2, size),
	F(QH_CRYPT_METHOD, 4, 2, crypt_method), F(QH_L1_SIZE, 4, 2, l1_size),
	F(QH_L1_OFFSET, 8, 2, l1_offset),     F(QH_RT_OFFSET, 8, 2, rt_offset),
	F(QH_RT_CLUSTERS, 4, 2, rt_clusters), F(QH_NB_SNAPSHOTS, 4, 2, nb_snapshots),
	F(QH_SNAPSHOTS_OFFSET, 8, 2, snapshots_offset),
	F(QH_INCOMPAT, 8, 3, incompat),       F(QH_COMPAT, 8, 3, compat),
	F(QH_AUTOCLEAR, 8, 3, autoclear),     F(QH_REFCOUNT_ORDER, 4, 3, refcount_order),
	F(QH_HEADER_LENGTH, 4, 3, header_length),
	F(QH_COMPRESSION_TYPE, 1, 3, compression_type),
#undef F
};

static uint64_t *field_of(struct qcow2_header *hd, const struct qcow2_header_field *f)
{
	return (uint64_t *)((char *)hd + f->member);
}

static uint64_t get_be(const uint8_t *p, unsigned width)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < width; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be(uint8_t *p, unsigned width, uint64_t v)
{
	for (unsigned i = width; i-- > 0; v >>= 8)
		p[i] = (uint8_t)v;
}

void qcow2_header_decode(const uint8_t *h, struct qcow2_header *hd)
{
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(header_fields); i++) {
		const struct qcow2_header_field *f = &header_fields[i];
		*field_of(hd, f) = get_be(h + f->off, f->width);
	}
}

/* The fields a version @hd->version header has (nothing past them). */
static void header_encode(const struct qcow2_header *hd, uint8_t *h)
{
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(header_fields); i++) {
		const struct qcow2_header_field *f = &header_fields[i];
		if (f->version <= hd->version)
			put_be(h + f->off, f->width,
			       *field_of((struct qcow2_header *)hd, f));
	}
}

int qcow2_header_put(struct qcow2 *q, enum qcow2_header_off off, uint64_t v)
{
	uint8_t b[8];

	for (size_t i = 0; i < VIREO_ARRAY_SIZE(header_fields); i++) {
		const struct qcow2_header_field *f = &header_fields[i];
		if (f->off == off && f->version <= q->version) {
			put_be(b, f->width, v);
			return qcow2_pwrite(q, b, f->width, off);
		}
	}
	return -EINVAL;
}

/* The first write of a session sets the dirty bit (lazy refcounts) and
 * clears autoclear bits we do not maintain (e.g. persistent bitmaps). */
int qcow2_mark_dirty(struct qcow2 *q)
{
	int r;

	if (q->dirty_written)
		return 0;
	if (q->version >= 3 && q->autoclear) {
		q->autoclear = 0;
		r = qcow2_header_put(q, QH_AUTOCLEAR, 0);
		if (r < 0)
			return r;
	}
	if (q->lazy) {
		q->incompat |= QCOW2_INCOMPAT_DIRTY;
		r = qcow2_header_put(q, QH_INCOMPAT, q->incompat);
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
	int r;

	if (!(q->incompat & QCOW2_INCOMPAT_DIRTY))
		return 0;
	q->incompat &= ~QCOW2_INCOMPAT_DIRTY;
	r = qcow2_header_put(q, QH_INCOMPAT, q->incompat);
	if (r < 0)
		return r;
	return qcow2_sync(q);
}

/* Append one extension at *pos; false if it does not fit in @cs. */
static bool put_ext(uint8_t *h, uint32_t *pos, uint32_t cs, uint32_t type,
		    const void *data, uint32_t len)
{
	if (*pos + 8 + VIREO_ALIGN_UP(len, 8) > cs)
		return false;
	put_be(h + *pos, 4, type);
	put_be(h + *pos + 4, 4, len);
	memcpy(h + *pos + 8, data, len);
	*pos += 8 + VIREO_ALIGN_UP(len, 8);
	return true;
}

/* Serialise the header cluster: fields, extensions, backing file name. */
static int build_header(struct qcow2 *q, uint8_t *h)
{
	uint32_t cs = q->cluster_size, pos;
	size_t blen = q->backing_file ? strlen(q->backing_file) : 0;
	struct qcow2_header hd = {
		.magic = QCOW2_MAGIC, .version = (uint64_t)q->version,
		.cluster_bits = q->cluster_bits, .size = q->img->size,
		.l1_size = q->l1_size, .l1_offset = q->l1_offset,
		.rt_offset = q->rt_offset, .rt_clusters = q->rt_clusters,
		.nb_snapshots = q->nb_snapshots, .snapshots_offset = q->snapshots_offset,
		.compat = q->compat, .autoclear = q->autoclear,
		.refcount_order = (uint64_t)q->refcount_order,
		.header_length = QH_V3_LENGTH,
		.compression_type = (uint64_t)q->compression,
	};

	memset(h, 0, cs);
	hd.incompat = q->incompat & ~QCOW2_INCOMPAT_COMPRESS;
	if (q->compression)
		hd.incompat |= QCOW2_INCOMPAT_COMPRESS;
	pos = q->version >= 3 ? QH_V3_LENGTH : QH_V2_LENGTH;
	if (q->backing_fmt && q->backing_file &&
	    !put_ext(h, &pos, cs, QCOW2_EXT_BACKING_FMT, q->backing_fmt,
		     (uint32_t)strlen(q->backing_fmt)))
		goto toobig;
	for (int i = 0; i < q->n_exts; i++)
		if (!put_ext(h, &pos, cs, q->exts[i].type, q->exts[i].data,
			     q->exts[i].len))
			goto toobig;
	if (pos + 8 + blen > cs)
		goto toobig;
	pos += 8;   /* end-of-extensions marker (zeros) */
	if (blen) {
		hd.backing_offset = pos;
		hd.backing_size = blen;
		memcpy(h + pos, q->backing_file, blen);
	}
	header_encode(&hd, h);
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
		uint32_t type = (uint32_t)get_be(h + pos, 4);
		uint32_t len = (uint32_t)get_be(h + pos + 4, 4);
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - pos - 8)
			return vimg_fail(q->img, -EINVAL,
				"header extension 0x%08x of %u bytes runs past the header cluster",
				type, len);
		if (type == QCOW2_EXT_BACKING_FMT) {
			/* A repeated extension: the last one counts. */
			free(q->backing_fmt);
			q->backing_fmt = strndup((const char *)h + pos + 8, len);
			if (!q->backing_fmt)
				return -ENOMEM;
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
	free(q->meta_map);
	free(q);
}

/* Parse: the fixed part of the header, decoded. */
static int header_read(struct qcow2 *q, struct qcow2_header *hd)
{
	uint8_t h0[QH_V3_LENGTH] = { 0 };
	struct stat st;
	int r;

	if (fstat(q->fd, &st) < 0)
		return vimg_fail(q->img, -errno, "cannot stat: %s", strerror(errno));
	q->file_size = (uint64_t)st.st_size;
	if (q->file_size < QH_V2_LENGTH)
		return vimg_fail(q->img, -EINVAL,
			"truncated qcow2 header: file has %llu bytes, a header needs at least %d",
			(unsigned long long)q->file_size, QH_V2_LENGTH);
	r = qcow2_pread(q, h0, sizeof(h0), 0);
	if (r < 0)
		return r;
	qcow2_header_decode(h0, hd);
	return 0;
}

/* Validate the version 3 fields. */
static int header_check_v3(struct vimg *img, const struct qcow2_header *hd,
			   uint64_t file_size)
{
	uint64_t inc = hd->incompat;

	if (file_size < QH_V3_MIN_LENGTH)
		return vimg_fail(img, -EINVAL,
			"truncated qcow2 v3 header: file has %llu bytes, needs at least %d",
			(unsigned long long)file_size, QH_V3_MIN_LENGTH);
	/* Checked as the unsigned field it is on disk: a value such as
	 * 0xffffff04 must not turn into a small negative int. */
	if (hd->refcount_order > 6)
		return vimg_fail(img, -EINVAL,
			"bad refcount_order %u (at most 6: 64-bit refcounts)",
			(unsigned)hd->refcount_order);
	if (hd->header_length < QH_V3_MIN_LENGTH ||
	    hd->header_length > 1ull << hd->cluster_bits || hd->header_length % 8)
		return vimg_fail(img, -EINVAL, "bad header_length %u",
				 (unsigned)hd->header_length);
	if (inc & ~QCOW2_INCOMPAT_KNOWN)
		return vimg_fail(img, -ENOTSUP,
			"unknown incompatible feature bits 0x%llx; this image needs a newer program",
			(unsigned long long)(inc & ~QCOW2_INCOMPAT_KNOWN));
	if (inc & QCOW2_INCOMPAT_DATAFILE)
		return vimg_fail(img, -ENOTSUP, "images with an external data file are not supported");
	if (inc & QCOW2_INCOMPAT_COMPRESS) {
		if (hd->header_length <= QH_COMPRESSION_TYPE)
			return vimg_fail(img, -EINVAL,
				"compression type bit set but header_length %u has no room for it",
				(unsigned)hd->header_length);
		if (hd->compression_type > 1)
			return vimg_fail(img, -ENOTSUP,
				"unknown compression type %d (0 zlib, 1 zstd)",
				(int)hd->compression_type);
	}
	if (inc & QCOW2_INCOMPAT_CORRUPT && !img->readonly)
		return vimg_fail(img, -EIO,
			"image is marked corrupt; open it read-only or run 'vireo-img check -r all'");
	if (inc & QCOW2_INCOMPAT_EXTL2 && hd->cluster_bits < 14)
		return vimg_fail(img, -EINVAL, "extended L2 entries need clusters of at least 16 KiB");
	return 0;
}

/* Validate the fields that stand on their own. */
static int header_check_fields(struct vimg *img, const struct qcow2_header *hd,
			       uint64_t file_size)
{
	if (hd->magic != QCOW2_MAGIC)
		return vimg_fail(img, -EINVAL, "not a qcow2 image (bad magic 0x%08x)",
				 (unsigned)hd->magic);
	if (hd->version != 2 && hd->version != 3)
		return vimg_fail(img, -ENOTSUP, "unsupported qcow2 version %u (2 and 3 are)",
				 (unsigned)hd->version);
	if (hd->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    hd->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return vimg_fail(img, -EINVAL,
			"bad cluster_bits %u (must be 9 to 21: 512 B to 2 MiB clusters)",
			(unsigned)hd->cluster_bits);
	if (hd->crypt_method)
		return vimg_fail(img, -ENOTSUP, "encrypted images are not supported (crypt_method %u)",
				 (unsigned)hd->crypt_method);
	return hd->version >= 3 ? header_check_v3(img, hd, file_size) : 0;
}

/* Take the checked fields and derive the geometry. */
static void header_apply(struct qcow2 *q, const struct qcow2_header *hd)
{
	q->version = (int)hd->version;
	q->cluster_bits = (uint32_t)hd->cluster_bits;
	q->cluster_size = 1u << q->cluster_bits;
	q->l1_size = (uint32_t)hd->l1_size;
	q->l1_offset = hd->l1_offset;
	q->rt_offset = hd->rt_offset;
	q->rt_clusters = (uint32_t)hd->rt_clusters;
	q->nb_snapshots = (uint32_t)hd->nb_snapshots;
	q->snapshots_offset = hd->snapshots_offset;
	q->backing_offset = hd->backing_offset;
	q->backing_size = (uint32_t)hd->backing_size;
	if (q->version >= 3) {
		q->incompat = hd->incompat;
		q->compat = hd->compat;
		q->autoclear = hd->autoclear;
		q->refcount_order = (int)hd->refcount_order;
		q->header_length = (uint32_t)hd->header_length;
		if (q->incompat & QCOW2_INCOMPAT_COMPRESS)
			q->compression = (int)hd->compression_type;
		q->extl2 = q->incompat & QCOW2_INCOMPAT_EXTL2;
		q->lazy = q->compat & QCOW2_COMPAT_LAZY;
	} else {
		q->refcount_order = 4;
		q->header_length = QH_V2_LENGTH;
	}
	q->refcount_bits = 1u << q->refcount_order;
	q->refcount_max = q->refcount_bits == 64 ? UINT64_MAX : (1ull << q->refcount_bits) - 1;
	q->rb_bits = q->cluster_bits + 3 - (uint32_t)q->refcount_order;
	q->rb_entries = 1u << q->rb_bits;
	q->l2_entry_size = q->extl2 ? 16 : 8;
	q->l2_bits = q->cluster_bits - (q->extl2 ? 4 : 3);
	q->l2_entries = 1u << q->l2_bits;
	q->subcluster_size = q->extl2 ? q->cluster_size / 32 : q->cluster_size;
	q->file_end = qcow2_align(q, q->file_size);
}

/* Validate sizes and offsets against the file before anything is
 * allocated from them. */
static int header_check_layout(struct qcow2 *q, uint64_t size)
{
	struct vimg *img = q->img;
	uint64_t l1_need;

	if (size > (1ull << 56))
		return vimg_fail(img, -EFBIG, "virtual size %llu is absurd (more than 64 PiB)",
				 (unsigned long long)size);
	l1_need = (size + ((uint64_t)q->cluster_size << q->l2_bits) - 1) >>
		  (q->cluster_bits + q->l2_bits);
	if (q->l1_size < l1_need)
		return vimg_fail(img, -EINVAL,
			"L1 table has %u entries, the virtual size %llu needs %llu",
			q->l1_size, (unsigned long long)size, (unsigned long long)l1_need);
	if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return vimg_fail(img, -EFBIG, "L1 table of %u entries is too large", q->l1_size);
	if ((q->l1_offset & (q->cluster_size - 1)) ||
	    (q->l1_size && (q->l1_offset == 0 ||
			    !qcow2_within(q->l1_offset, (uint64_t)q->l1_size * 8, q->file_end))))
		return vimg_fail(img, -EINVAL,
			"L1 table offset %llu is unaligned or past the end of the file",
			(unsigned long long)q->l1_offset);
	if (!q->rt_clusters || (uint64_t)q->rt_clusters * q->cluster_size > QCOW2_MAX_RT_BYTES * 4ull)
		return vimg_fail(img, -EINVAL, "bad refcount table size: %u clusters", q->rt_clusters);
	if ((q->rt_offset & (q->cluster_size - 1)) || q->rt_offset == 0 ||
	    !qcow2_within(q->rt_offset, (uint64_t)q->rt_clusters << q->cluster_bits, q->file_end))
		return vimg_fail(img, -EINVAL,
			"refcount table offset %llu is unaligned or past the end of the file",
			(unsigned long long)q->rt_offset);
	if (q->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return vimg_fail(img, -EINVAL, "too many snapshots: %u", q->nb_snapshots);
	if (q->backing_offset &&
	    (q->backing_size > 1023 || q->backing_offset >= q->cluster_size ||
	     q->backing_offset + q->backing_size > q->cluster_size))
		return vimg_fail(img, -EINVAL,
			"backing file name (offset %llu, %u bytes) must lie within the header cluster",
			(unsigned long long)q->backing_offset, q->backing_size);
	img->size = size;
	return 0;
}

/* Load the rest of cluster 0: extensions and the backing file name (and
 * allocate the per-image scratch buffers). */
static int load_header_cluster(struct qcow2 *q)
{
	uint8_t *h = calloc(1, q->cluster_size);
	int r;

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
	return r;
}

/* Load the L1 and refcount tables (host order), checking every refcount
 * table entry. */
static int load_tables(struct qcow2 *q)
{
	int r;

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
			return vimg_fail(q->img, -EINVAL,
				"refcount table entry %llu (%llu) is not cluster-aligned",
				(unsigned long long)i, (unsigned long long)q->rt[i]);
		if (!qcow2_within(q->rt[i], q->cluster_size, q->file_end))
			return vimg_fail(q->img, -EINVAL,
				"refcount table entry %llu points past the end of the file (%llu)",
				(unsigned long long)i, (unsigned long long)q->rt[i]);
	}
	return 0;
}

/* Size the L2 and refcount block caches from opts.cache_size. */
static int init_caches(struct qcow2 *q)
{
	const struct vimg_open_opts *o = &q->img->opts;
	uint64_t cache = o->cache_size ? o->cache_size : 32ull << 20;
	uint64_t l2n = VIREO_MIN((uint64_t)q->l1_size + 1, cache / q->cluster_size);
	/* Not bounded by today's table: it grows with the image. */
	uint64_t rbn = (o->cache_size ? o->cache_size / 4 : 4ull << 20) / q->cluster_size;
	int r;

	l2n = VIREO_MAX(VIREO_MIN(l2n, 4096), 16);
	rbn = VIREO_MAX(VIREO_MIN(rbn, 1024), 8);
	r = qcow2_cache_init(&q->l2c, q->cluster_size, (int)l2n);
	if (r == 0)
		r = qcow2_cache_init(&q->rbc, q->cluster_size, (int)rbn);
	return r;
}

/* A writable image left dirty (lazy refcounts) gets its refcounts
 * repaired before use. */
static int repair_if_dirty(struct qcow2 *q)
{
	struct vimg *img = q->img;
	struct vimg_check res;
	int r;

	if (img->readonly || !(q->incompat & QCOW2_INCOMPAT_DIRTY) || img->opts.no_repair)
		return 0;
	r = qcow2_check(img, VIMG_FIX_LEAKS | VIMG_FIX_ERRORS, &res, NULL);
	if (r < 0)
		return r;
	if (res.corruptions)
		return vimg_fail(img, -EIO,
			"image was not closed cleanly and %llu corruptions remain after repair",
			(unsigned long long)res.corruptions);
	return qcow2_clear_dirty(q);
}

/* What the validated header points to, loaded in this order. */
static int (*const load_steps[])(struct qcow2 *q) = {
	load_header_cluster, load_tables, qcow2_snapshots_load, init_caches,
};

/* Open in three steps: parse the header, validate it, load what it
 * points to. */
static int qcow2_open_inner(struct vimg *img)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	struct qcow2_header hd;
	int r;

	if (!q)
		return -ENOMEM;
	img->priv = q;
	q->img = img;
	q->fd = img->fd;
	r = header_read(q, &hd);
	if (r == 0)
		r = header_check_fields(img, &hd, q->file_size);
	if (r < 0)
		return r;
	header_apply(q, &hd);
	r = header_check_layout(q, hd.size);
	for (size_t i = 0; r == 0 && i < VIREO_ARRAY_SIZE(load_steps); i++)
		r = load_steps[i](q);
	if (r < 0)
		return r;
	q->free_hint = 1;
	if (q->backing_file && !img->opts.no_backing) {
		r = vimg_open_backing(img, q->backing_file, q->backing_fmt);
		if (r < 0)
			return r;
	}
	r = repair_if_dirty(q);
	return r < 0 ? r : qcow2_meta_build(q);
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
	if (qcow2_check_data(q, h) < 0)
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
	qcow2_meta_mark(q, noff, n << q->cluster_bits, true);
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
		r = qcow2_refcount_sync(q);
	if (r == 0) {
		put_be(hb, 4, new_size);
		put_be(hb + 4, 8, noff);
		r = qcow2_pwrite(q, hb, 12, QH_L1_SIZE);   /* with l1_offset */
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
	r = qcow2_header_put(q, QH_SIZE, new_size);
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
