/* Creating a fresh qcow2 image. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2.h"

static int is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

static int log2u(uint64_t x)
{
	int n = 0;

	while (x > 1) {
		x >>= 1;
		n++;
	}
	return n;
}

/* The options qcow2 cannot honour; 0 or -errno with @err set. */
static int check_create_opts(const struct vimg_create_opts *o, uint32_t cs,
			     int rbits, int version, char *err, size_t errlen)
{
	if (!is_pow2(cs) || cs < 512 || cs > (2u << 20)) {
		snprintf(err, errlen, "cluster size %u must be a power of two from 512 to 2M", cs);
		return -EINVAL;
	}
	if (!is_pow2((uint64_t)rbits) || rbits > 64) {
		snprintf(err, errlen, "refcount bits %d must be a power of two from 1 to 64", rbits);
		return -EINVAL;
	}
	if (version != 2 && version != 3) {
		snprintf(err, errlen, "qcow2 version %d is not 2 or 3 (compat=0.10 or 1.1)", version);
		return -EINVAL;
	}
	if (version == 2 && (rbits != 16 || o->lazy_refcounts || o->compression || o->extended_l2)) {
		snprintf(err, errlen,
			 "compat=0.10 images support only 16-bit refcounts, no lazy refcounts, zlib and no extended L2");
		return -EINVAL;
	}
	if (o->extended_l2 && cs < 16384) {
		snprintf(err, errlen, "extended L2 entries need a cluster size of at least 16K");
		return -EINVAL;
	}
	return 0;
}

/* The size of the backing file (named relative to @path's directory). */
static int backing_size(const char *path, const struct vimg_create_opts *o,
			uint64_t *size, char *err, size_t errlen)
{
	struct vimg_open_opts bo = { .format = o->backing_fmt, .readonly = true };
	struct vimg *b;
	char *bp = NULL, e2[600];
	const char *slash = strrchr(path, '/');
	int r;

	if (o->backing[0] != '/' && slash &&
	    asprintf(&bp, "%.*s/%s", (int)(slash - path), path, o->backing) < 0)
		return -ENOMEM;
	r = vimg_open(bp ? bp : o->backing, &bo, &b, e2, sizeof(e2));
	free(bp);
	if (r < 0) {
		snprintf(err, errlen, "cannot open backing file to get its size: %s", e2);
		return r;
	}
	*size = vimg_size(b);
	vimg_close(b);
	return 0;
}

/* Where a new image's first clusters go: header, refcount table, refcount
 * blocks, L1 table. */
struct create_layout {
	uint64_t l1_entries, l1c, rtc, rbc, total;
	uint64_t rb_entries;   /* refcounts a block holds */
};

static int plan_layout(uint64_t size, uint32_t cs, uint32_t l2_bits, int rbits,
		       struct create_layout *l, char *err, size_t errlen)
{
	uint32_t cbits = (uint32_t)log2u(cs);

	l->l1_entries = (size + ((uint64_t)cs << l2_bits) - 1) >> (cbits + l2_bits);
	if (l->l1_entries * 8 > QCOW2_MAX_L1_BYTES) {
		snprintf(err, errlen, "size %llu needs an L1 table of %llu entries: use larger clusters",
			 (unsigned long long)size, (unsigned long long)l->l1_entries);
		return -EFBIG;
	}
	l->l1c = (l->l1_entries * 8 + cs - 1) / cs;
	l->rb_entries = (uint64_t)cs * 8 / (uint64_t)rbits;
	l->rtc = 1;
	l->rbc = 1;
	for (;;) {
		uint64_t nrb, nrt;

		l->total = 1 + l->rtc + l->rbc + l->l1c;
		nrb = (l->total + l->rb_entries - 1) / l->rb_entries;
		nrt = (nrb * 8 + cs - 1) / cs;
		if (nrb <= l->rbc && nrt <= l->rtc)
			break;
		l->rbc = VIREO_MAX(l->rbc, nrb);
		l->rtc = VIREO_MAX(l->rtc, nrt);
	}
	return 0;
}

/* Write the first clusters of the new image described by @q and @l. */
static int write_initial(struct qcow2 *q, const struct create_layout *l,
			 const char *path, char *err, size_t errlen)
{
	uint32_t cs = q->cluster_size;
	uint8_t *buf = calloc(l->total, cs);
	int r;

	if (!buf)
		return -ENOMEM;
	r = qcow2_build_header_for_create(q, buf);
	if (r < 0) {
		snprintf(err, errlen, "%s", q->img->err);
		free(buf);
		return r;
	}
	for (uint64_t i = 0; i < l->rbc; i++) {
		uint64_t v = htobe64((1 + l->rtc + i) * cs);
		memcpy(buf + cs + i * 8, &v, 8);
	}
	for (uint64_t c = 0; c < l->total; c++)
		qcow2_rb_set(buf + (1 + l->rtc) * cs + (c / l->rb_entries) * cs,
			     (uint32_t)q->refcount_order, c % l->rb_entries, 1);
	r = vio_pwrite_full(q->fd, buf, l->total * cs, 0);
	if (r == 0 && fdatasync(q->fd) < 0)
		r = -errno;
	if (r < 0)
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(-r));
	free(buf);
	return r;
}

/* preallocation=metadata: reopen the new image and allocate every L2 table. */
static int preallocate(const char *path, char *err, size_t errlen)
{
	struct vimg_open_opts po = { .format = "qcow2", .no_backing = true };
	struct vimg *pi;
	char e2[600];
	int r = vimg_open(path, &po, &pi, e2, sizeof(e2));

	if (r < 0) {
		snprintf(err, errlen, "cannot reopen to preallocate: %s", e2);
		return r;
	}
	r = qcow2_preallocate(qcow2_of(pi));
	if (r < 0)
		snprintf(err, errlen, "preallocation failed: %s", vimg_errmsg(pi));
	if (vimg_close(pi) < 0 && r == 0) {
		snprintf(err, errlen, "preallocation: flush failed");
		r = -EIO;
	}
	return r;
}

int qcow2_create(const char *path, const struct vimg_create_opts *o,
		 char *err, size_t errlen)
{
	struct vimg img = { 0 };
	struct qcow2 q = { 0 };
	struct create_layout l;
	uint32_t cs = o->cluster_size ? o->cluster_size : 65536;
	int version = o->version ? o->version : 3;
	int rbits = o->refcount_bits ? o->refcount_bits : 16;
	uint64_t size = o->size;
	int fd, r;

	r = check_create_opts(o, cs, rbits, version, err, errlen);
	if (r == 0 && o->backing && !size)
		r = backing_size(path, o, &size, err, errlen);
	if (r < 0)
		return r;
	if (size > (1ull << 56)) {
		snprintf(err, errlen, "size %llu is too large for qcow2", (unsigned long long)size);
		return -EFBIG;
	}
	q.cluster_bits = (uint32_t)log2u(cs);
	q.cluster_size = cs;
	q.l2_bits = q.cluster_bits - (o->extended_l2 ? 4 : 3);
	r = plan_layout(size, cs, q.l2_bits, rbits, &l, err, errlen);
	if (r < 0)
		return r;
	if (o->backing && strlen(o->backing) > 1023) {
		snprintf(err, errlen, "backing file name is longer than 1023 bytes");
		return -ENAMETOOLONG;
	}
	fd = vimg_create_file(path, err, errlen);
	if (fd < 0)
		return fd;
	img.fd = fd;
	img.size = size;
	img.priv = &q;
	q.img = &img;
	q.fd = fd;
	q.version = version;
	q.refcount_order = log2u((uint64_t)rbits);
	q.compression = o->compression;
	q.compat = o->lazy_refcounts ? QCOW2_COMPAT_LAZY : 0;
	q.incompat = o->extended_l2 ? QCOW2_INCOMPAT_EXTL2 : 0;
	q.rt_offset = (uint64_t)cs;
	q.rt_clusters = (uint32_t)l.rtc;
	q.l1_offset = (1 + l.rtc + l.rbc) * cs;
	q.l1_size = (uint32_t)l.l1_entries;
	q.backing_file = (char *)o->backing;
	q.backing_fmt = (char *)(o->backing ? o->backing_fmt : NULL);
	r = write_initial(&q, &l, path, err, errlen);
	close(fd);
	if (r == 0 && o->preallocate_metadata)
		r = preallocate(path, err, errlen);
	return r;
}
