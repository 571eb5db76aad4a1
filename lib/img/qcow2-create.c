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

int qcow2_create(const char *path, const struct vimg_create_opts *o,
		      char *err, size_t errlen)
{
	struct vimg img = { 0 };
	struct qcow2 q = { 0 };
	uint32_t cs = o->cluster_size ? o->cluster_size : 65536;
	int version = o->version ? o->version : 3;
	int rbits = o->refcount_bits ? o->refcount_bits : 16;
	uint64_t size = o->size, l1_entries, l1c, rtc, rbc, total, E;
	uint8_t *buf = NULL;
	int fd, r;

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
	if (o->backing && !size) {
		struct vimg_open_opts bo = { .format = o->backing_fmt, .readonly = true,
					     .no_backing = false };
		struct vimg *b;
		char *bp = NULL, e2[600];
		const char *slash = strrchr(path, '/');
		if (o->backing[0] != '/' && slash) {
			if (asprintf(&bp, "%.*s/%s", (int)(slash - path), path, o->backing) < 0)
				return -ENOMEM;
		}
		r = vimg_open(bp ? bp : o->backing, &bo, &b, e2, sizeof(e2));
		free(bp);
		if (r < 0) {
			snprintf(err, errlen, "cannot open backing file to get its size: %s", e2);
			return r;
		}
		size = vimg_size(b);
		vimg_close(b);
	}
	if (size > (1ull << 56)) {
		snprintf(err, errlen, "size %llu is too large for qcow2", (unsigned long long)size);
		return -EFBIG;
	}
	q.cluster_bits = (uint32_t)log2u(cs);
	q.cluster_size = cs;
	q.l2_bits = q.cluster_bits - (o->extended_l2 ? 4 : 3);
	l1_entries = (size + ((uint64_t)cs << q.l2_bits) - 1) >> (q.cluster_bits + q.l2_bits);
	if (l1_entries * 8 > QCOW2_MAX_L1_BYTES) {
		snprintf(err, errlen, "size %llu needs an L1 table of %llu entries: use larger clusters",
			 (unsigned long long)size, (unsigned long long)l1_entries);
		return -EFBIG;
	}
	l1c = (l1_entries * 8 + cs - 1) / cs;
	E = (uint64_t)cs * 8 / (uint64_t)rbits;
	rtc = 1;
	rbc = 1;
	for (;;) {
		total = 1 + rtc + rbc + l1c;
		uint64_t nrb = (total + E - 1) / E, nrt = (nrb * 8 + cs - 1) / cs;
		if (nrb <= rbc && nrt <= rtc)
			break;
		rbc = VIREO_MAX(rbc, nrb);
		rtc = VIREO_MAX(rtc, nrt);
	}
	if (o->backing && strlen(o->backing) > 1023) {
		snprintf(err, errlen, "backing file name is longer than 1023 bytes");
		return -ENAMETOOLONG;
	}

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", path, strerror(errno));
		return -errno;
	}
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
	q.rt_clusters = (uint32_t)rtc;
	q.l1_offset = (1 + rtc + rbc) * cs;
	q.l1_size = (uint32_t)l1_entries;
	q.backing_file = (char *)o->backing;
	q.backing_fmt = (char *)(o->backing ? o->backing_fmt : NULL);

	buf = calloc(total, cs);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	r = 0;
	{
		uint8_t *h = buf;
		r = qcow2_build_header_for_create(&q, h);
		if (r < 0) {
			snprintf(err, errlen, "%s", img.err);
			goto out;
		}
	}
	for (uint64_t i = 0; i < rbc; i++) {
		uint64_t v = htobe64((1 + rtc + i) * cs);
		memcpy(buf + cs + i * 8, &v, 8);
	}
	for (uint64_t c = 0; c < total; c++)
		qcow2_rb_set(buf + (1 + rtc) * cs + (c / E) * cs, (uint32_t)q.refcount_order,
			     c % E, 1);
	r = vio_pwrite_full(fd, buf, total * cs, 0);
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	if (r < 0)
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(-r));
out:
	free(buf);
	close(fd);
	if (r == 0 && o->preallocate_metadata) {
		struct vimg_open_opts po = { .format = "qcow2", .no_backing = true };
		struct vimg *pi;
		char e2[600];
		r = vimg_open(path, &po, &pi, e2, sizeof(e2));
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
	}
	return r;
}
