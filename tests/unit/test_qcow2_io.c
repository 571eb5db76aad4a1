/* qcow2 library behaviour: random I/O against a shadow copy, reopen,
 * snapshots, backing files, consistency after every step, bad headers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <vireo/img.h>
#include "../../lib/img/qcow2.h"

static char dir[64];

static const char *path(const char *name)
{
	static char buf[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint64_t cache_bytes;   /* 0: default; small values force evictions */

static struct vimg *open_rw(const char *p)
{
	struct vimg_open_opts o = { .format = "qcow2", .cache_size = cache_bytes };
	struct vimg *img;
	char err[512];
	int r = vimg_open(p, &o, &img, err, sizeof(err));

	if (r < 0)
		fail_msg("open %s: %s", p, err);
	return img;
}

static void assert_clean(struct vimg *img)
{
	struct vimg_check res;

	assert_int_equal(vimg_check(img, 0, &res, stderr), 0);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(res.leaks, 0);
}

static void assert_same(struct vimg *img, const uint8_t *shadow, size_t size)
{
	uint8_t *buf = malloc(size);

	assert_int_equal(vimg_pread(img, buf, size, 0), 0);
	for (size_t i = 0; i < size; i++)
		if (buf[i] != shadow[i])
			fail_msg("byte %zu: image has %u, expected %u", i, buf[i], shadow[i]);
	free(buf);
}

static void random_ops(struct vimg *img, uint8_t *shadow, size_t size, int n)
{
	uint8_t *buf = malloc(300000);

	for (int i = 0; i < n; i++) {
		uint64_t len = 1 + rnd() % 200000, off = rnd() % size, op = rnd() % 10;
		if (off + len > size)
			len = size - off;
		if (op < 7) {
			for (uint64_t k = 0; k < len; k++)
				buf[k] = (uint8_t)(rnd() | 1);
			assert_int_equal(vimg_pwrite(img, buf, len, off), 0);
			memcpy(shadow + off, buf, len);
		} else if (op < 9) {
			assert_int_equal(vimg_pwrite_zeroes(img, off, len), 0);
			memset(shadow + off, 0, len);
		} else {
			assert_int_equal(vimg_flush(img), 0);
		}
		if (getenv("QDEBUG")) {
			fprintf(stderr, "op %d: %s off=%llu len=%llu\n", i,
				op < 7 ? "write" : op < 9 ? "zero" : "flush",
				(unsigned long long)off, (unsigned long long)len);
			assert_same(img, shadow, size);
		}
	}
	free(buf);
}


/* Replay random_ops on a shadow only (same RNG draws). */
static void random_ops_shadow_only(uint8_t *shadow, size_t size, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t len = 1 + rnd() % 200000, off = rnd() % size, op = rnd() % 10;
		if (off + len > size)
			len = size - off;
		if (op < 7) {
			for (uint64_t k = 0; k < len; k++)
				shadow[off + k] = (uint8_t)(rnd() | 1);
		} else if (op < 9) {
			memset(shadow + off, 0, len);
		}
	}
}

/* Mark the bytes the next n random_ops would touch. */
static void random_ops_mark(uint8_t *mark, size_t size, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t len = 1 + rnd() % 200000, off = rnd() % size, op = rnd() % 10;
		if (off + len > size)
			len = size - off;
		if (op < 7)
			for (uint64_t k = 0; k < len; k++)
				(void)rnd();
		if (op < 9)
			memset(mark + off, 1, len);
	}
}

static bool extl2;

static void io_with(uint32_t cluster, int rbits, int version)
{
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = 8u << 20,
				       .cluster_size = cluster, .refcount_bits = rbits,
				       .version = version, .extended_l2 = extl2 };
	size_t size = 8u << 20;
	uint8_t *shadow = calloc(1, size);
	struct vimg *img;
	char err[512];

	assert_int_equal(vimg_create(path("io.qcow2"), &co, err, sizeof(err)), 0);
	img = open_rw(path("io.qcow2"));
	random_ops(img, shadow, size, 150);
	assert_same(img, shadow, size);
	assert_clean(img);
	assert_int_equal(vimg_close(img), 0);
	img = open_rw(path("io.qcow2"));
	assert_same(img, shadow, size);
	assert_clean(img);
	vimg_close(img);
	free(shadow);
}

static void test_io_default(void **s) { (void)s; io_with(0, 0, 3); }
static void test_io_small_clusters(void **s) { (void)s; io_with(512, 64, 3); }
static void test_io_4k_1bit(void **s) { (void)s; io_with(4096, 1, 3); }
static void test_io_v2(void **s) { (void)s; io_with(65536, 16, 2); }
static void test_io_2m(void **s) { (void)s; io_with(2u << 20, 8, 3); }
static void test_io_extl2(void **s)
{
	(void)s;
	extl2 = true;
	io_with(65536, 16, 3);
	io_with(16384, 16, 3);
	extl2 = false;
}

static void test_io_evict(void **s)
{
	(void)s;
	cache_bytes = 1;   /* the minimum: 16 L2 tables, 8 refcount blocks */
	io_with(512, 16, 3);
	io_with(1024, 4, 3);
	cache_bytes = 0;
}

static void test_snapshots(void **s)
{
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = 4u << 20,
				       .cluster_size = 4096 };
	size_t size = 4u << 20;
	uint8_t *shadow = calloc(1, size), *snap = malloc(size);
	struct vimg_snapshot *list;
	struct vimg *img;
	char err[512];
	int n;

	(void)s;
	assert_int_equal(vimg_create(path("snap.qcow2"), &co, err, sizeof(err)), 0);
	img = open_rw(path("snap.qcow2"));
	random_ops(img, shadow, size, 60);
	assert_int_equal(vimg_snapshot_create(img, "one"), 0);
	assert_int_equal(vimg_snapshot_create(img, "one"), -EEXIST);
	memcpy(snap, shadow, size);
	assert_clean(img);
	random_ops(img, shadow, size, 60);
	assert_same(img, shadow, size);
	assert_clean(img);
	assert_int_equal(vimg_snapshot_list(img, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].name, "one");
	free(list);
	assert_int_equal(vimg_snapshot_apply(img, "one"), 0);
	assert_same(img, snap, size);
	assert_clean(img);
	random_ops(img, snap, size, 30);
	assert_same(img, snap, size);
	assert_int_equal(vimg_snapshot_delete(img, "one"), 0);
	assert_same(img, snap, size);
	assert_clean(img);
	assert_int_equal(vimg_snapshot_apply(img, "one"), -ENOENT);
	vimg_close(img);
	free(shadow);
	free(snap);
}

static void test_backing(void **s)
{
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = 2u << 20 };
	size_t size = 2u << 20;
	uint8_t *shadow = calloc(1, size);
	struct vimg *img;
	char err[512];

	(void)s;
	assert_int_equal(vimg_create(path("base.qcow2"), &co, err, sizeof(err)), 0);
	img = open_rw(path("base.qcow2"));
	random_ops(img, shadow, size, 40);
	vimg_close(img);
	co.backing = "base.qcow2";
	co.backing_fmt = "qcow2";
	co.size = 0;   /* from the backing file */
	assert_int_equal(vimg_create(path("top.qcow2"), &co, err, sizeof(err)), 0);
	img = open_rw(path("top.qcow2"));
	assert_int_equal(vimg_size(img), size);
	assert_same(img, shadow, size);
	random_ops(img, shadow, size, 40);   /* partial-cluster COW from base */
	assert_same(img, shadow, size);
	assert_int_equal(vimg_discard(img, 0, size), 0);
	memset(shadow, 0, size);             /* v3 discard reads zeros */
	assert_same(img, shadow, size);
	assert_clean(img);
	vimg_close(img);
	/* A loop: base -> top. */
	img = open_rw(path("base.qcow2"));
	assert_int_equal(vimg_set_backing(img, "top.qcow2", "qcow2"), 0);
	vimg_close(img);
	{
		struct vimg_open_opts o = { .format = "qcow2", .readonly = true };
		assert_int_equal(vimg_open(path("top.qcow2"), &o, &img, err, sizeof(err)), -ELOOP);
		assert_non_null(strstr(err, "loop"));
	}
	free(shadow);
}

/* The library's OFD locks: one writer or many readers per file, backing
 * files shared, force_share for read-only inspection, no create over an
 * image in use, and the file of a lock_holder not locked twice. */
static void test_locks(void **s)
{
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = 1u << 20 };
	struct vimg_open_opts ro = { .format = "qcow2", .readonly = true };
	struct vimg_open_opts rw = { .format = "qcow2" };
	struct vimg_open_opts fs = { .format = "qcow2", .readonly = true, .force_share = true };
	struct vimg *a, *b, *c;
	char err[512];

	(void)s;
	assert_int_equal(vimg_create(path("lbase.qcow2"), &co, err, sizeof(err)), 0);
	co.backing = "lbase.qcow2";
	co.backing_fmt = "qcow2";
	assert_int_equal(vimg_create(path("ltop.qcow2"), &co, err, sizeof(err)), 0);

	/* a writer excludes every other open but force_share */
	assert_int_equal(vimg_open(path("ltop.qcow2"), &rw, &a, err, sizeof(err)), 0);
	assert_int_equal(vimg_open(path("ltop.qcow2"), &rw, &b, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "in use"));
	assert_int_equal(vimg_open(path("ltop.qcow2"), &ro, &b, err, sizeof(err)), -EBUSY);
	assert_int_equal(vimg_open(path("ltop.qcow2"), &fs, &b, err, sizeof(err)), 0);
	vimg_close(b);
	/* force_share is for read-only opens only */
	fs.readonly = false;
	assert_int_equal(vimg_open(path("ltop.qcow2"), &fs, &b, err, sizeof(err)), -EINVAL);
	fs.readonly = true;
	/* create over it is refused and leaves it alone */
	assert_int_equal(vimg_create(path("ltop.qcow2"), &co, err, sizeof(err)), -EBUSY);
	assert_int_equal(vimg_pwrite(a, "x", 1, 0), 0);
	/* its backing file is shared: readers yes, a writer no */
	assert_int_equal(vimg_open(path("lbase.qcow2"), &ro, &b, err, sizeof(err)), 0);
	vimg_close(b);
	assert_int_equal(vimg_open(path("lbase.qcow2"), &rw, &b, err, sizeof(err)), -EBUSY);
	vimg_close(a);

	/* readers share */
	assert_int_equal(vimg_open(path("ltop.qcow2"), &ro, &a, err, sizeof(err)), 0);
	assert_int_equal(vimg_open(path("ltop.qcow2"), &ro, &b, err, sizeof(err)), 0);
	assert_int_equal(vimg_open(path("ltop.qcow2"), &rw, &c, err, sizeof(err)), -EBUSY);
	vimg_close(a);
	vimg_close(b);

	/* commit's case: the base open for writing, then the top's chain */
	rw.no_backing = true;
	assert_int_equal(vimg_open(path("lbase.qcow2"), &rw, &b, err, sizeof(err)), 0);
	assert_int_equal(vimg_open(path("ltop.qcow2"), &ro, &a, err, sizeof(err)), -EBUSY);
	ro.lock_holder = b;
	assert_int_equal(vimg_open(path("ltop.qcow2"), &ro, &a, err, sizeof(err)), 0);
	vimg_close(a);
	vimg_close(b);
	unlink(path("ltop.qcow2"));
	unlink(path("lbase.qcow2"));
}

static void write_file(const char *p, const void *buf, size_t len)
{
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void test_bad_headers(void **s)
{
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = 1u << 20 };
	struct vimg_open_opts o = { .format = "qcow2" };
	uint8_t hdr[512];
	struct vimg *img;
	char err[512];
	int fd;

	(void)s;
	write_file(path("trunc.qcow2"), "QFI\xfb\0\0\0\3", 8);
	assert_true(vimg_open(path("trunc.qcow2"), &o, &img, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "truncated"));

	assert_int_equal(vimg_create(path("bad.qcow2"), &co, err, sizeof(err)), 0);
	fd = open(path("bad.qcow2"), O_RDWR);
	assert_int_equal(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	hdr[72 + 7 - 5] = 0x80;   /* incompatible bit 47 */
	assert_int_equal(pwrite(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	close(fd);
	assert_true(vimg_open(path("bad.qcow2"), &o, &img, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "incompatible feature"));

	/* An absurd virtual size. */
	assert_int_equal(vimg_create(path("big.qcow2"), &co, err, sizeof(err)), 0);
	fd = open(path("big.qcow2"), O_RDWR);
	memset(hdr, 0xff, 8);
	assert_int_equal(pwrite(fd, hdr, 8, 24), 8);
	close(fd);
	assert_true(vimg_open(path("big.qcow2"), &o, &img, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "size"));

	/* Raw probing never says qcow2 without the magic... */
	assert_int_equal(vimg_probe("QFI", 3), VIMG_FMT_RAW);
	assert_int_equal(vimg_probe("QFI\xfb", 4), VIMG_FMT_QCOW2);
	/* ...and a raw disk holding a qcow2 header stays raw when told. */
	o.format = "raw";
	assert_int_equal(vimg_open(path("big.qcow2"), &o, &img, err, sizeof(err)), 0);
	assert_int_equal(vimg_get_format(img), VIMG_FMT_RAW);
	vimg_close(img);
}

static void test_l2_past_eof(void **s)
{
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = 1u << 20 };
	struct vimg_open_opts o = { .format = "qcow2" };
	uint64_t l1off, bad = htobe64(0x8000000000000000ull | (1ull << 40));
	uint8_t hdr[64], buf[512];
	struct vimg *img;
	char err[512];
	int fd;

	(void)s;
	assert_int_equal(vimg_create(path("eof.qcow2"), &co, err, sizeof(err)), 0);
	fd = open(path("eof.qcow2"), O_RDWR);
	assert_int_equal(pread(fd, hdr, 64, 0), 64);
	memcpy(&l1off, hdr + 40, 8);
	assert_int_equal(pwrite(fd, &bad, 8, (off_t)be64toh(l1off)), 8);
	close(fd);
	assert_int_equal(vimg_open(path("eof.qcow2"), &o, &img, err, sizeof(err)), 0);
	assert_true(vimg_pread(img, buf, sizeof(buf), 0) < 0);
	assert_non_null(strstr(vimg_errmsg(img), "past the end"));
	assert_true(vimg_pwrite(img, buf, sizeof(buf), 0) < 0);
	vimg_close(img);
}

static void test_compress_roundtrip(void **s)
{
	uint8_t src[65536], c[65536], out[65536];

	(void)s;
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)((i / 100) * 7);
	for (int type = 0; type <= 1; type++) {
		long n = qcow2_compress(type, src, sizeof(src), c, sizeof(c) - 1);
		assert_true(n > 0 && n < (long)sizeof(src) / 4);
		/* Trailing bytes after the stream (the next cluster's data)
		 * must not disturb decompression. */
		memset(c + n, 0xee, 600);
		assert_int_equal(qcow2_decompress(type, c, (size_t)n + 600, out, sizeof(out)), 0);
		assert_memory_equal(src, out, sizeof(src));
		/* Truncated input is an error, not a crash. */
		assert_true(qcow2_decompress(type, c, (size_t)n / 2, out, sizeof(out)) < 0);
	}
	/* Random data does not shrink: reported as 0 (store plainly). */
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)rnd();
	assert_int_equal(qcow2_compress(0, src, sizeof(src), c, sizeof(src) - 1), 0);
}

static void test_refcount_bits(void **s)
{
	uint8_t rb[64];

	(void)s;
	for (uint32_t order = 0; order <= 6; order++) {
		uint64_t max = order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
		uint64_t n = 64 * 8 >> order;
		memset(rb, 0, sizeof(rb));
		for (uint64_t i = 0; i < n; i++)
			qcow2_rb_set(rb, order, i, (i * 7 + 3) & max);
		for (uint64_t i = 0; i < n; i++)
			assert_int_equal(qcow2_rb_get(rb, order, i), (i * 7 + 3) & max);
	}
	/* Sub-byte widths: entry 0 is in the least significant bits. */
	memset(rb, 0, sizeof(rb));
	qcow2_rb_set(rb, 0, 0, 1);
	assert_int_equal(rb[0], 1);
	qcow2_rb_set(rb, 2, 1, 0xf);
	assert_int_equal(rb[0], 0xf1);
	/* 16 bits are big-endian. */
	memset(rb, 0, sizeof(rb));
	qcow2_rb_set(rb, 4, 0, 0x1234);
	assert_int_equal(rb[0], 0x12);
	assert_int_equal(rb[1], 0x34);
}

static void test_leak_repair(void **s)
{
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = 1u << 20 };
	struct vimg_check res;
	struct vimg *img;
	char err[512];
	uint8_t buf[4096] = { 1 };

	(void)s;
	assert_int_equal(vimg_create(path("leak.qcow2"), &co, err, sizeof(err)), 0);
	img = open_rw(path("leak.qcow2"));
	assert_int_equal(vimg_pwrite(img, buf, sizeof(buf), 0), 0);
	vimg_close(img);
	{
		/* Raise the refcount of cluster 5 by hand: a leak. */
		int fd = open(path("leak.qcow2"), O_RDWR);
		uint16_t one = htobe16(1);
		assert_int_equal(pwrite(fd, &one, 2, 2 * 65536 + 2 * 9), 2);
		assert_int_equal(ftruncate(fd, 10 * 65536), 0);
		close(fd);
	}
	img = open_rw(path("leak.qcow2"));
	assert_int_equal(vimg_check(img, 0, &res, NULL), 0);
	assert_int_equal(res.leaks, 1);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(vimg_check(img, VIMG_FIX_LEAKS, &res, NULL), 0);
	assert_int_equal(res.leaks, 0);
	assert_int_equal(res.leaks_fixed, 1);
	assert_clean(img);
	vimg_close(img);
}


/* vimg_lock: a live migration's hand-over of a writable image (lazy
 * refcounts: the dirty bit is set while it is written).  Released, the
 * image is flushed, another writer may open it, this one cannot write and
 * its close writes nothing; taken back only once the other has gone. */
static void test_handover(void **s)
{
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = 1u << 20,
				       .cluster_size = 4096, .lazy_refcounts = true };
	struct vimg_open_opts rw = { .format = "qcow2" };
	struct vimg_info info;
	struct vimg *a, *b;
	char err[512], buf[4] = "";

	(void)s;
	assert_int_equal(vimg_create(path("hand.qcow2"), &co, err, sizeof(err)), 0);
	assert_int_equal(vimg_open(path("hand.qcow2"), &rw, &a, err, sizeof(err)), 0);
	assert_int_equal(vimg_pwrite(a, "src", 3, 0), 0);
	assert_int_equal(vimg_open(path("hand.qcow2"), &rw, &b, err, sizeof(err)), -EBUSY);
	/* released: flushed (the other sees the data), read-only here */
	assert_int_equal(vimg_lock(a, false, err, sizeof(err)), 0);
	assert_true(vimg_pwrite(a, "bad", 3, 8192) < 0);
	assert_int_equal(vimg_open(path("hand.qcow2"), &rw, &b, err, sizeof(err)), 0);
	assert_int_equal(vimg_pread(b, buf, 3, 0), 0);
	assert_memory_equal(buf, "src", 3);
	/* the other holds it: not taken back */
	assert_int_equal(vimg_lock(a, true, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "in use"));
	assert_int_equal(vimg_close(b), 0);
	/* the migration failed: taken back, writable again */
	assert_int_equal(vimg_lock(a, true, err, sizeof(err)), 0);
	assert_int_equal(vimg_pwrite(a, "again", 5, 4096), 0);
	assert_int_equal(vimg_open(path("hand.qcow2"), &rw, &b, err, sizeof(err)), -EBUSY);
	/* handed over for good: the other writes and closes cleanly, then
	 * this one closes, writing nothing (no dirty bit, no trim) */
	assert_int_equal(vimg_lock(a, false, err, sizeof(err)), 0);
	assert_int_equal(vimg_open(path("hand.qcow2"), &rw, &b, err, sizeof(err)), 0);
	assert_int_equal(vimg_pwrite(b, "dst", 3, 65536), 0);
	assert_int_equal(vimg_close(b), 0);
	vimg_close(a);
	assert_int_equal(vimg_open(path("hand.qcow2"), &rw, &b, err, sizeof(err)), 0);
	assert_int_equal(vimg_get_info(b, &info), 0);
	assert_false(info.dirty);
	assert_int_equal(vimg_pread(b, buf, 3, 65536), 0);
	assert_memory_equal(buf, "dst", 3);
	assert_int_equal(vimg_pread(b, buf, 3, 0), 0);
	assert_memory_equal(buf, "src", 3);
	assert_int_equal(vimg_close(b), 0);
	unlink(path("hand.qcow2"));
}

/* A child writes, flushes, writes more and dies without closing: the
 * flushed data must survive and the image may only have leaks. */
static void crash_with(bool lazy)
{
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = 8u << 20,
				       .cluster_size = 4096, .lazy_refcounts = lazy };
	struct vimg_open_opts o = { .format = "qcow2", .cache_size = 4 * 4096 };
	size_t size = 8u << 20;
	uint8_t *shadow = calloc(1, size);
	struct vimg_check res;
	struct vimg *img;
	char err[512];
	pid_t pid;
	int st;

	assert_int_equal(vimg_create(path("crash.qcow2"), &co, err, sizeof(err)), 0);
	/* Same random sequence in parent (for the shadow) and child. */
	rng_state = 12345;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (vimg_open(path("crash.qcow2"), &o, &img, err, sizeof(err)) < 0)
			_exit(2);
		random_ops(img, shadow, size, 80);
		if (vimg_flush(img) < 0)
			_exit(3);
		random_ops(img, shadow, size, 40);  /* lost: never flushed */
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Read-only look first: no corruption, at worst leaks. */
	o.readonly = true;
	o.no_repair = true;
	assert_int_equal(vimg_open(path("crash.qcow2"), &o, &img, err, sizeof(err)), 0);
	assert_int_equal(vimg_check(img, 0, &res, NULL), 0);
	if (!lazy)
		assert_int_equal(res.corruptions, 0);
	vimg_close(img);
	/* Opening read-write repairs (lazy: rebuilds refcounts). */
	o.readonly = false;
	o.no_repair = false;
	assert_int_equal(vimg_open(path("crash.qcow2"), &o, &img, err, sizeof(err)), 0);
	if (!lazy)
		assert_int_equal(vimg_check(img, VIMG_FIX_LEAKS, &res, NULL), 0);
	assert_clean(img);
	{
		/* Where the unflushed writes never touched, every byte must
		 * hold its flushed value. */
		uint8_t *buf = malloc(size), *after = calloc(1, size);
		uint8_t *lost = calloc(1, size);
		rng_state = 12345;
		random_ops_shadow_only(after, size, 80);
		random_ops_mark(lost, size, 40);
		assert_int_equal(vimg_pread(img, buf, size, 0), 0);
		for (size_t i = 0; i < size; i++)
			if (!lost[i] && buf[i] != after[i])
				fail_msg("flushed byte %zu lost: %u != %u", i, buf[i], after[i]);
		free(buf);
		free(after);
		free(lost);
	}
	vimg_close(img);
	free(shadow);
}

static void test_crash(void **s) { (void)s; crash_with(false); }
static void test_crash_lazy(void **s) { (void)s; crash_with(true); }

static void aio_done(void *opaque, int ret)
{
	int *left = opaque;

	assert_int_equal(ret, 0);
	__atomic_sub_fetch(left, 1, __ATOMIC_SEQ_CST);
}

/* Many concurrent writes to distinct 4 KiB blocks through the async pool,
 * some in allocated clusters (direct path), some allocating. */
static void test_aio(void **s)
{
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = 16u << 20,
				       .cluster_size = 65536 };
	size_t size = 16u << 20, nblk = size / 4096;
	uint8_t *shadow = calloc(1, size), *bufs = calloc(1, size);
	struct vimg_aio *a;
	struct vimg *img;
	char err[512];
	int left;

	(void)s;
	assert_int_equal(vimg_create(path("aio.qcow2"), &co, err, sizeof(err)), 0);
	img = open_rw(path("aio.qcow2"));
	memset(bufs, 0x5a, 1u << 20);
	assert_int_equal(vimg_pwrite(img, bufs, 1u << 20, 0), 0);   /* allocate 1 MiB */
	memcpy(shadow, bufs, 1u << 20);
	assert_int_equal(vimg_aio_start(img, 8, &a), 0);
	left = (int)nblk / 2;
	for (size_t i = 0; i < nblk / 2; i++) {
		size_t b = (i * 7919) % nblk;   /* distinct blocks, scattered */
		memset(bufs + b * 4096, (int)(i & 0xff) | 1, 4096);
		memcpy(shadow + b * 4096, bufs + b * 4096, 4096);
		assert_int_equal(vimg_aio_submit(a, VIMG_AIO_WRITE, bufs + b * 4096, 4096,
						 b * 4096, aio_done, &left), 0);
	}
	vimg_aio_drain(a);
	assert_int_equal(left, 0);
	left = 1;
	assert_int_equal(vimg_aio_submit(a, VIMG_AIO_FLUSH, NULL, 0, 0, aio_done, &left), 0);
	vimg_aio_stop(a);
	assert_int_equal(left, 0);
	assert_same(img, shadow, size);
	assert_clean(img);
	vimg_close(img);
	free(shadow);
	free(bufs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refcount_bits),
		cmocka_unit_test(test_compress_roundtrip),
		cmocka_unit_test(test_io_default),
		cmocka_unit_test(test_io_small_clusters),
		cmocka_unit_test(test_io_4k_1bit),
		cmocka_unit_test(test_io_v2),
		cmocka_unit_test(test_io_2m),
		cmocka_unit_test(test_io_evict),
		cmocka_unit_test(test_io_extl2),
		cmocka_unit_test(test_snapshots),
		cmocka_unit_test(test_backing),
		cmocka_unit_test(test_locks),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_l2_past_eof),
		cmocka_unit_test(test_leak_repair),
		cmocka_unit_test(test_crash),
		cmocka_unit_test(test_aio),
		cmocka_unit_test(test_crash_lazy),
		cmocka_unit_test(test_handover),
	};
	int r;

	snprintf(dir, sizeof(dir), "/tmp/vireo-qcow2-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	if (r == 0) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			r = 1;
	}
	return r;
}
