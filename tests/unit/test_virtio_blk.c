/*
 * virtio-blk against a temporary raw file: request decoding, execution,
 * error statuses, and the image lock.  Every test runs on each I/O engine
 * (io_uring, worker threads, synchronous).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/io_uring.h>
#include <cmocka.h>

#include <vireo/util.h>

#include "blk.h"
#include "virtio_test_ring.h"

#define DISK_SIZE (1u << 20)
#define QSIZE 64
#define W VIRTQ_DESC_F_WRITE
#define N VIRTQ_DESC_F_NEXT

struct bfx {
	char path[64];
	struct tmem m;
	struct virtio_env env;
	struct tring r;
	struct virtio_dev *d;
	unsigned engine_flags;
	uint16_t next_desc;
};

static unsigned engine_uring = 0;
static unsigned engine_threads = BLK_RAW_NO_URING;
static unsigned engine_sync = BLK_RAW_SYNC;

static void make_disk(struct bfx *f)
{
	int fd;
	uint8_t *buf = malloc(DISK_SIZE);

	snprintf(f->path, sizeof(f->path), "/tmp/vireo-blk-test-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	/* sector s is filled with byte (s & 0xff) */
	for (unsigned i = 0; i < DISK_SIZE; i++)
		buf[i] = (uint8_t)(i / 512);
	assert_int_equal(vio_pwrite_full(fd, buf, DISK_SIZE, 0), 0);
	close(fd);
	free(buf);
}

static void start(struct bfx *f, unsigned flags)
{
	struct blk_backend *be;
	struct virtio_dev *d;

	assert_int_equal(blk_raw_open(f->path, f->engine_flags | flags, &be), 0);
	tmem_init(&f->m);
	f->env.mem = &f->m.mem;
	assert_int_equal(virtio_blk_create(&f->env, be, "disk0", NULL, &f->d), 0);
	d = f->d;
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_guest_features(d, 0, virtio_dev_host_features(d, 0));
	virtio_dev_set_guest_features(d, 1, virtio_dev_host_features(d, 1));
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK);
	tring_init(&f->r, &f->m, TMEM_GPA, QSIZE);
	tring_attach(&f->r, &d->vq[0]);
	assert_int_equal(virtio_dev_queue_enable(d, 0), 0);
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_dev_running(d));
}

static int setup(void **state)
{
	struct bfx *f = calloc(1, sizeof(*f));

	f->engine_flags = *(unsigned *)*state;
	make_disk(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct bfx *f = *state;

	if (f->d)
		virtio_dev_destroy(f->d);
	tmem_free(&f->m);
	unlink(f->path);
	free(f);
	return 0;
}

struct req {
	uint16_t head;
	uint64_t hdr, data, status;
};

/* Lay out a request: header, optional data (in or out), status byte. */
static struct req make_req(struct bfx *f, uint32_t type, uint64_t sector,
			   uint32_t len, bool data_in)
{
	struct req q;
	uint8_t hdr[16] = { 0 };
	uint16_t i = f->next_desc;

	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
	q.hdr = tmem_alloc(&f->m, 16, 0);
	memcpy(tmem_ptr(&f->m, q.hdr), hdr, 16);
	q.data = len ? tmem_alloc(&f->m, len, 0) : 0;
	q.status = tmem_alloc(&f->m, 1, 0xee);
	q.head = i;
	tring_desc(&f->r, i, q.hdr, 16, N, (uint16_t)((i + 1) % QSIZE));
	if (len) {
		i = (uint16_t)((i + 1) % QSIZE);
		tring_desc(&f->r, i, q.data, len, (data_in ? W : 0) | N,
			   (uint16_t)((i + 1) % QSIZE));
	}
	i = (uint16_t)((i + 1) % QSIZE);
	tring_desc(&f->r, i, q.status, 1, W, 0);
	f->next_desc = (uint16_t)((i + 1) % QSIZE);
	return q;
}

/* Run everything published and wait for it. */
static void run(struct bfx *f)
{
	virtio_dev_queue_notify(f->d, 0);
	virtio_blk_drain(f->d);
	assert_int_equal(virtio_blk_inflight(f->d), 0);
}

static uint8_t status_of(struct bfx *f, const struct req *q)
{
	return *(uint8_t *)tmem_ptr(&f->m, q->status);
}

/* One request, run to completion; returns the status byte. */
static uint8_t do_req(struct bfx *f, uint32_t type, uint64_t sector,
		      void *data, uint32_t len, bool data_in, uint32_t *used_len)
{
	struct req q = make_req(f, type, sector, len, data_in);
	uint16_t before = tring_used_idx(&f->r);
	uint32_t id, ulen;

	if (len && !data_in)
		memcpy(tmem_ptr(&f->m, q.data), data, len);
	tring_publish(&f->r, q.head);
	run(f);
	assert_int_equal(tring_used_idx(&f->r), (uint16_t)(before + 1));
	tring_used_elem(&f->r, before, &id, &ulen);
	assert_int_equal(id, q.head);
	if (used_len)
		*used_len = ulen;
	if (len && data_in)
		memcpy(data, tmem_ptr(&f->m, q.data), len);
	return status_of(f, &q);
}

static void test_read(void **state)
{
	struct bfx *f = *state;
	uint8_t buf[1024];
	uint32_t ulen;

	start(f, 0);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 7, buf, sizeof(buf), true, &ulen),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(ulen, 1025);
	assert_int_equal(buf[0], 7);
	assert_int_equal(buf[511], 7);
	assert_int_equal(buf[512], 8);
	assert_int_equal(buf[1023], 8);
}

static void test_write_read_back(void **state)
{
	struct bfx *f = *state;
	uint8_t buf[2048], back[2048], file[2048];
	int fd;

	start(f, 0);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_OUT, 100, buf, sizeof(buf), false, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 100, back, sizeof(back), true, NULL),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(do_req(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, NULL),
			 VIRTIO_BLK_S_OK);
	/* and it really is in the file, at byte 100 * 512 */
	fd = open(f->path, O_RDONLY);
	assert_int_equal(vio_pread_full(fd, file, sizeof(file), 100 * 512), 0);
	close(fd);
	assert_memory_equal(buf, file, sizeof(file));
	/* neighbours untouched */
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 99, back, 512, true, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(back[511], 99);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 104, back, 512, true, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(back[0], 104);
}

static void test_odd_framing(void **state)
{
	/* Header split over two descriptors, data and status sharing one. */
	struct bfx *f = *state;
	uint64_t h = 0, hdr, buf;
	uint32_t type = VIRTIO_BLK_T_IN, id, len;
	uint8_t *p;

	start(f, 0);
	hdr = tmem_alloc(&f->m, 16, 0);
	memcpy(tmem_ptr(&f->m, hdr), &type, 4);
	h = 3;
	memcpy(tmem_ptr(&f->m, hdr + 8), &h, 8);
	buf = tmem_alloc(&f->m, 513, 0xee);
	tring_desc(&f->r, 0, hdr, 5, N, 1);
	tring_desc(&f->r, 1, hdr + 5, 11, N, 2);
	tring_desc(&f->r, 2, buf, 513, W, 0);
	tring_publish(&f->r, 0);
	run(f);
	assert_int_equal(tring_used_idx(&f->r), 1);
	tring_used_elem(&f->r, 0, &id, &len);
	assert_int_equal(len, 513);
	p = tmem_ptr(&f->m, buf);
	assert_int_equal(p[0], 3);
	assert_int_equal(p[511], 3);
	assert_int_equal(p[512], VIRTIO_BLK_S_OK);
}

static void test_read_only(void **state)
{
	struct bfx *f = *state;
	uint8_t buf[512] = { 1 };
	uint8_t seg[16] = { 0 };
	int fd;

	start(f, BLK_RAW_READONLY);
	assert_true(virtio_dev_has(f->d, VIRTIO_BLK_F_RO));
	assert_false(virtio_dev_has(f->d, VIRTIO_BLK_F_DISCARD));
	assert_int_equal(do_req(f, VIRTIO_BLK_T_OUT, 0, buf, sizeof(buf), false, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 0, buf, sizeof(buf), true, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(buf[0], 0);   /* the write did not happen */
	seg[8] = 1;
	assert_int_equal(do_req(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16, false, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, NULL),
			 VIRTIO_BLK_S_OK);
	fd = open(f->path, O_RDONLY);
	assert_int_equal(vio_pread_full(fd, buf, 1, 0), 0);
	close(fd);
	assert_int_equal(buf[0], 0);
}

static void test_out_of_range(void **state)
{
	struct bfx *f = *state;
	uint8_t buf[1024];
	uint64_t cap = DISK_SIZE / 512;

	start(f, 0);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, cap - 1, buf, 512, true, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, cap, buf, 512, true, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, cap - 1, buf, 1024, true, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_OUT, cap - 1, buf, 1024, false, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* sector * 512 would wrap around 2^64 */
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 1ULL << 55, buf, 512, true, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, UINT64_MAX, buf, 512, true, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* not a whole number of sectors */
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 0, buf, 100, true, NULL),
			 VIRTIO_BLK_S_IOERR);
}

static void test_unknown_type(void **state)
{
	struct bfx *f = *state;
	uint8_t buf[512];
	uint32_t ulen;

	start(f, 0);
	assert_int_equal(do_req(f, 99, 0, buf, sizeof(buf), true, &ulen),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(ulen, 1);
	/* still working afterwards */
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 0, buf, 512, true, NULL),
			 VIRTIO_BLK_S_OK);
}

static void test_get_id(void **state)
{
	struct bfx *f = *state;
	uint8_t id[VIRTIO_BLK_ID_BYTES];
	uint8_t want[VIRTIO_BLK_ID_BYTES] = "vireo-disk0";
	uint32_t ulen;

	start(f, 0);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id), true, &ulen),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(ulen, 21);
	assert_memory_equal(id, want, sizeof(want));
}

static void put_seg(uint8_t *s, uint64_t sector, uint32_t n, uint32_t flags)
{
	memcpy(s, &sector, 8);
	memcpy(s + 8, &n, 4);
	memcpy(s + 12, &flags, 4);
}

static void test_write_zeroes_discard(void **state)
{
	struct bfx *f = *state;
	uint8_t seg[32], buf[512 * 6];
	static const uint8_t zero[512 * 2];

	start(f, 0);
	assert_true(virtio_dev_has(f->d, VIRTIO_BLK_F_WRITE_ZEROES));
	/* two ranges in one request: sectors 10-11 and 14 */
	put_seg(seg, 10, 2, 0);
	put_seg(seg + 16, 14, 1, VIRTIO_BLK_WZ_F_UNMAP);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 32, false, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 9, buf, sizeof(buf), true, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(buf[511], 9);
	assert_memory_equal(buf + 512, zero, 1024);
	assert_int_equal(buf[512 * 3], 12);
	assert_int_equal(buf[512 * 4], 13);
	assert_memory_equal(buf + 512 * 5, zero, 512);

	put_seg(seg, 20, 4, 0);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_DISCARD, 0, seg, 16, false, NULL),
			 VIRTIO_BLK_S_OK);
	/* discard with the unmap flag, or unknown flags: unsupported */
	put_seg(seg, 20, 4, VIRTIO_BLK_WZ_F_UNMAP);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_DISCARD, 0, seg, 16, false, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	put_seg(seg, 20, 4, 2);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16, false, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	/* range past the end, or too long, or a torn segment list */
	put_seg(seg, DISK_SIZE / 512 - 1, 2, 0);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16, false, NULL),
			 VIRTIO_BLK_S_IOERR);
	put_seg(seg, 0, VIRTIO_BLK_MAX_RANGE + 1, 0);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_DISCARD, 0, seg, 16, false, NULL),
			 VIRTIO_BLK_S_IOERR);
	put_seg(seg, 0, 1, 0);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_DISCARD, 0, seg, 12, false, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* the failed write-zeroes left sector 2047 alone */
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, buf, 512,
				true, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(buf[0], (DISK_SIZE / 512 - 1) & 0xff);
}

static void test_config(void **state)
{
	struct bfx *f = *state;
	uint8_t cfg[VIRTIO_BLK_CFG_SIZE];
	uint64_t cap;
	uint32_t v;

	start(f, 0);
	virtio_dev_config_read(f->d, 0, cfg, sizeof(cfg));
	memcpy(&cap, cfg + VIRTIO_BLK_CFG_CAPACITY, 8);
	assert_int_equal(cap, DISK_SIZE / 512);
	memcpy(&v, cfg + VIRTIO_BLK_CFG_BLK_SIZE, 4);
	assert_int_equal(v, 512);
	memcpy(&v, cfg + VIRTIO_BLK_CFG_SEG_MAX, 4);
	assert_int_equal(v, VIRTIO_BLK_QUEUE_SIZE - 2);
	memcpy(&v, cfg + VIRTIO_BLK_CFG_MAX_WZ_SEG, 4);
	assert_int_equal(v, VIRTIO_BLK_MAX_SEGS);
	/* a read beyond the config space gives zeros, not memory */
	memset(cfg, 0x55, 8);
	virtio_dev_config_read(f->d, VIRTIO_BLK_CFG_SIZE - 4, cfg, 8);
	assert_int_equal(cfg[0], 0);
}

static void test_missing_status(void **state)
{
	struct bfx *f = *state;
	uint64_t hdr;

	start(f, 0);
	hdr = tmem_alloc(&f->m, 16, 0);
	tring_desc(&f->r, 0, hdr, 16, 0, 0);   /* nothing writable */
	tring_publish(&f->r, 0);
	run(f);
	assert_true(virtio_dev_status(f->d) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(tring_used_idx(&f->r), 0);
}

static void test_short_header(void **state)
{
	struct bfx *f = *state;
	uint64_t hdr, st;

	start(f, 0);
	hdr = tmem_alloc(&f->m, 8, 0);
	st = tmem_alloc(&f->m, 1, 0xee);
	tring_desc(&f->r, 0, hdr, 8, N, 1);
	tring_desc(&f->r, 1, st, 1, W, 0);
	tring_publish(&f->r, 0);
	run(f);
	assert_int_equal(tring_used_idx(&f->r), 1);
	assert_int_equal(*(uint8_t *)tmem_ptr(&f->m, st), VIRTIO_BLK_S_IOERR);
	assert_false(virtio_dev_status(f->d) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_many_in_flight(void **state)
{
	struct bfx *f = *state;
	struct req q[20];

	start(f, 0);
	for (unsigned i = 0; i < 20; i++) {
		q[i] = make_req(f, VIRTIO_BLK_T_IN, 50 + i, 512, true);
		tring_publish(&f->r, q[i].head);
	}
	run(f);
	assert_int_equal(tring_used_idx(&f->r), 20);
	for (unsigned i = 0; i < 20; i++) {
		assert_int_equal(status_of(f, &q[i]), VIRTIO_BLK_S_OK);
		assert_int_equal(*(uint8_t *)tmem_ptr(&f->m, q[i].data + 100), 50 + i);
	}
}

static void test_reset_in_flight(void **state)
{
	struct bfx *f = *state;
	struct req q;
	unsigned inflight;

	start(f, 0);
	/* A flush goes to the engine (no page-cache shortcut). */
	q = make_req(f, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	tring_publish(&f->r, q.head);
	virtio_dev_queue_notify(f->d, 0);
	inflight = virtio_blk_inflight(f->d);
	virtio_dev_set_status(f->d, 0);
	virtio_blk_drain(f->d);
	assert_int_equal(virtio_blk_inflight(f->d), 0);
	/* Finished before the reset: reported; still in flight at the reset:
	 * it must not touch the used ring of the reset queue. */
	assert_int_equal(tring_used_idx(&f->r), inflight ? 0 : 1);
	if (f->engine_flags & BLK_RAW_SYNC)
		assert_int_equal(inflight, 0);
}

static void test_lock(void **state)
{
	struct bfx *f = *state;
	struct blk_backend *a, *b;

	assert_int_equal(blk_raw_open(f->path, f->engine_flags, &a), 0);
	assert_int_equal(blk_raw_open(f->path, f->engine_flags, &b), -EBUSY);
	assert_int_equal(blk_raw_open(f->path, f->engine_flags | BLK_RAW_READONLY, &b),
			 -EBUSY);
	blk_backend_close(a);
	/* readers share */
	assert_int_equal(blk_raw_open(f->path, f->engine_flags | BLK_RAW_READONLY, &a), 0);
	assert_int_equal(blk_raw_open(f->path, f->engine_flags | BLK_RAW_READONLY, &b), 0);
	blk_backend_close(b);
	assert_int_equal(blk_raw_open(f->path, f->engine_flags, &b), -EBUSY);
	blk_backend_close(a);
	assert_int_equal(blk_raw_open(f->path, f->engine_flags, &b), 0);
	blk_backend_close(b);
	assert_int_equal(blk_raw_open("/nonexistent/disk.img", f->engine_flags, &b),
			 -ENOENT);
}

/* Whether this kernel lets us set up an io_uring (not disabled by
 * sysctl, seccomp or an old kernel). */
static bool uring_works(void)
{
	struct io_uring_params p;
	long fd;

	memset(&p, 0, sizeof(p));
	fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0)
		return false;
	close((int)fd);
	return true;
}

static void test_engine(void **state)
{
	struct bfx *f = *state;
	struct blk_backend *b;
	const char *e;

	assert_int_equal(blk_raw_open(f->path, f->engine_flags, &b), 0);
	e = blk_raw_engine(b);
	if (f->engine_flags & BLK_RAW_SYNC)
		assert_string_equal(e, "sync");
	else if (f->engine_flags & BLK_RAW_NO_URING)
		assert_string_equal(e, "threads");
	else if (uring_works())   /* asked for, available: must be used */
		assert_string_equal(e, "io_uring");
	else
		assert_string_equal(e, "threads");
	blk_backend_close(b);
}

#define T(fn, eng) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &eng)
#define ALL(eng) \
	T(test_engine, eng), T(test_read, eng), T(test_write_read_back, eng), \
	T(test_odd_framing, eng), T(test_read_only, eng), \
	T(test_out_of_range, eng), T(test_unknown_type, eng), \
	T(test_get_id, eng), T(test_write_zeroes_discard, eng), \
	T(test_config, eng), T(test_missing_status, eng), \
	T(test_short_header, eng), T(test_many_in_flight, eng), \
	T(test_reset_in_flight, eng), T(test_lock, eng)

int main(void)
{
	const struct CMUnitTest tests[] = {
		ALL(engine_uring),
		ALL(engine_threads),
		ALL(engine_sync),
	};

	vlog_set_level(VLOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
