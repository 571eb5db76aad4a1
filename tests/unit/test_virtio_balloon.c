/*
 * virtio-balloon: page frame number and range translation (and what is
 * refused), statistics parsing, and the queues against a fake guest.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <vireo/util.h>

#include "balloon.h"
#include "virtio_test_ring.h"

#define QSIZE 16
#define PG 4096ULL

/* ---- pure translation ---- */

static void test_pfn_hva(void **state)
{
	uint8_t *ram0 = malloc(16 * PG), *ram1 = malloc(16 * PG);
	struct gmem m = {
		.region = { { 0, 16 * PG, ram0 }, { 0x100000000ULL, 16 * PG, ram1 } },
		.nr_regions = 2, .ram_size = 32 * PG,
	};
	/* Balloonable: pages 4..15 of region 0, all of region 1. */
	struct virtio_balloon_range r[] = { { 4 * PG, 12 * PG }, { 0x100000000ULL, 16 * PG } };

	(void)state;
	assert_ptr_equal(virtio_balloon_pfn_hva(&m, r, 2, 4, 1), ram0 + 4 * PG);
	assert_ptr_equal(virtio_balloon_pfn_hva(&m, r, 2, 15, 1), ram0 + 15 * PG);
	assert_ptr_equal(virtio_balloon_pfn_hva(&m, r, 2, 4, 12), ram0 + 4 * PG);
	assert_ptr_equal(virtio_balloon_pfn_hva(&m, r, 2, 0x100000, 16), ram1);
	/* below the balloonable range (the BIOS area), though RAM */
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, 3, 1));
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, 0, 1));
	/* past the end of RAM, in the hole between the regions */
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, 16, 1));
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, 0xc0000, 1));
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, 0x100010, 1));
	/* straddling an end */
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, 15, 2));
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, 0x10000f, 2));
	/* overflowing the address space, zero pages */
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, 1ULL << 52, 1));
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, (1ULL << 52) - 1, 2));
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, UINT64_MAX, 1));
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, 4, UINT64_MAX));
	assert_null(virtio_balloon_pfn_hva(&m, r, 2, 4, 0));
	/* a range that claims more than RAM holds: gmem still refuses */
	{
		struct virtio_balloon_range big = { 0, 1ULL << 40 };

		assert_null(virtio_balloon_pfn_hva(&m, &big, 1, 16, 1));
		assert_non_null(virtio_balloon_pfn_hva(&m, &big, 1, 0, 1));
	}
	free(ram0);
	free(ram1);
}

static void test_host_range(void **state)
{
	uint8_t *ram = aligned_alloc(4096, 16 * PG);
	struct gmem m = { .region = { { 0x100000, 16 * PG, ram } }, .nr_regions = 1,
			  .ram_size = 16 * PG };
	struct virtio_balloon_range r = { 0x101000, 15 * PG };
	uint8_t *start;
	uint64_t pages;

	(void)state;
	assert_int_equal(virtio_balloon_host_range(&m, &r, 1, ram + PG, 4 * PG, &start, &pages), 0);
	assert_ptr_equal(start, ram + PG);
	assert_int_equal(pages, 4);
	/* unaligned: only the whole pages inside */
	assert_int_equal(virtio_balloon_host_range(&m, &r, 1, ram + PG + 1, 4 * PG, &start,
						   &pages), 0);
	assert_ptr_equal(start, ram + 2 * PG);
	assert_int_equal(pages, 3);
	assert_int_equal(virtio_balloon_host_range(&m, &r, 1, ram + PG + 8, 100, &start, &pages), 0);
	assert_int_equal(pages, 0);
	/* first page not balloonable; past the end; not guest memory at all */
	assert_int_equal(virtio_balloon_host_range(&m, &r, 1, ram, PG, &start, &pages), -EINVAL);
	assert_int_equal(virtio_balloon_host_range(&m, &r, 1, ram + 15 * PG, 2 * PG, &start,
						   &pages), -EINVAL);
	assert_int_equal(virtio_balloon_host_range(&m, &r, 1, &pages, 8, &start, &pages), -EINVAL);
	assert_int_equal(virtio_balloon_host_range(&m, &r, 1, ram + PG, 0, &start, &pages), -EINVAL);
	free(ram);
}

static void put_stat(uint8_t *p, uint16_t tag, uint64_t v)
{
	p[0] = (uint8_t)tag;
	p[1] = (uint8_t)(tag >> 8);
	for (unsigned i = 0; i < 8; i++)
		p[2 + i] = (uint8_t)(v >> (8 * i));
}

static void test_parse_stats(void **state)
{
	uint8_t buf[64];
	struct virtio_balloon_stats st = { 0 };

	(void)state;
	put_stat(buf, VIRTIO_BALLOON_S_MEMTOT, 1ULL << 30);
	put_stat(buf + 10, VIRTIO_BALLOON_S_MEMFREE, 123456789012ULL);
	put_stat(buf + 20, 0x1234, 7);                       /* unknown: skipped */
	put_stat(buf + 30, VIRTIO_BALLOON_S_AVAIL, 42);
	assert_int_equal(virtio_balloon_parse_stats(buf, 45, &st), 4);  /* 5 bytes left over */
	assert_int_equal(st.val[VIRTIO_BALLOON_S_MEMTOT], 1ULL << 30);
	assert_int_equal(st.val[VIRTIO_BALLOON_S_MEMFREE], 123456789012ULL);
	assert_int_equal(st.val[VIRTIO_BALLOON_S_AVAIL], 42);
	assert_int_equal(st.valid, (1u << VIRTIO_BALLOON_S_MEMTOT) |
			 (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_AVAIL));
	memset(&st, 0, sizeof(st));
	assert_int_equal(virtio_balloon_parse_stats(buf, 9, &st), 0);
	assert_int_equal(virtio_balloon_parse_stats(buf, 0, &st), 0);
	assert_int_equal(st.valid, 0);
}

/* ---- the device against a fake guest ---- */

struct discard_log {
	unsigned n;
	void *hva[64];
	size_t len[64];
};

static int record(void *opaque, void *hva, size_t len)
{
	struct discard_log *l = opaque;

	if (l->n < 64) {
		l->hva[l->n] = hva;
		l->len[l->n] = len;
	}
	l->n++;
	return 0;
}

struct bfx {
	struct tmem m;
	struct virtio_env env;
	struct tring r[4];
	struct virtio_dev *d;
	struct discard_log log;
	struct virtio_balloon_range range;
	uint16_t next[4];
};

static void start(struct bfx *f, bool reporting)
{
	struct virtio_dev *d;
	struct virtio_balloon_config cfg = { .reporting = reporting, .target = 64 * PG };

	memset(f, 0, sizeof(*f));
	tmem_init(&f->m);
	f->env.mem = &f->m.mem;
	/* balloonable: the data half of the fake RAM */
	f->range = (struct virtio_balloon_range){ TMEM_DATA, TMEM_GPA + TMEM_SIZE - TMEM_DATA };
	cfg.ranges = &f->range;
	cfg.nr_ranges = 1;
	assert_int_equal(virtio_balloon_create(&f->env, &cfg, &f->d), 0);
	d = f->d;
	virtio_balloon_set_discard(d, record, &f->log);
	assert_true(d->host_features & VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ));
	assert_int_equal(!!(d->host_features & VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING)),
			 reporting);
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_guest_features(d, 0, virtio_dev_host_features(d, 0));
	virtio_dev_set_guest_features(d, 1, virtio_dev_host_features(d, 1));
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < (reporting ? 4u : 3u); q++) {
		tring_init(&f->r[q], &f->m, TMEM_GPA + q * 0x10000, QSIZE);
		tring_attach(&f->r[q], &d->vq[q]);
		assert_int_equal(virtio_dev_queue_enable(d, q), 0);
	}
}

static void go(struct bfx *f)
{
	virtio_dev_set_status(f->d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_dev_running(f->d));
}

static void stop(struct bfx *f)
{
	virtio_dev_destroy(f->d);
	tmem_free(&f->m);
}

/* Publish one buffer on queue q (readable unless writable). */
static void post(struct bfx *f, unsigned q, const void *data, uint32_t len, bool writable)
{
	uint64_t gpa = tmem_alloc(&f->m, len, 0);
	uint16_t i = f->next[q]++;

	memcpy(tmem_ptr(&f->m, gpa), data, len);
	tring_desc(&f->r[q], i, gpa, len, writable ? VIRTQ_DESC_F_WRITE : 0, 0);
	tring_publish(&f->r[q], i);
}

static void post_range(struct bfx *f, unsigned q, uint64_t gpa, uint32_t len)
{
	uint16_t i = f->next[q]++;

	tring_desc(&f->r[q], i, gpa, len, VIRTQ_DESC_F_WRITE, 0);
	tring_publish(&f->r[q], i);
}

static void kick(struct bfx *f, unsigned q)
{
	virtio_dev_lock(f->d);
	virtio_dev_queue_notify(f->d, q);
	virtio_dev_unlock(f->d);
}

static void test_inflate_deflate(void **state)
{
	struct bfx f;
	struct virtio_balloon_counters c;
	uint64_t p0 = TMEM_DATA / PG;
	uint32_t pfns[] = {
		(uint32_t)p0, (uint32_t)p0 + 1, (uint32_t)p0 + 2,   /* one run */
		(uint32_t)p0 + 10,                                    /* another */
		0, 0xfffff, 0xffffffff,                               /* refused */
		(uint32_t)(TMEM_GPA / PG),                            /* RAM, not balloonable */
		(uint32_t)p0 + 11,
	};
	uint8_t config[16];

	(void)state;
	start(&f, true);
	go(&f);
	virtio_dev_config_read(f.d, 0, config, 4);
	assert_int_equal(config[0] | config[1] << 8, 64);     /* num_pages = target */
	post(&f, 0, pfns, sizeof(pfns), false);
	kick(&f, 0);
	assert_int_equal(tring_used_idx(&f.r[0]), 1);
	/* p0+10 and p0+11 make one run: the refused frames between them
	 * are skipped */
	assert_int_equal(f.log.n, 2);
	assert_ptr_equal(f.log.hva[0], tmem_ptr(&f.m, TMEM_DATA));
	assert_int_equal(f.log.len[0], 3 * PG);
	assert_ptr_equal(f.log.hva[1], tmem_ptr(&f.m, TMEM_DATA + 10 * PG));
	assert_int_equal(f.log.len[1], 2 * PG);
	virtio_balloon_get_counters(f.d, &c);
	assert_int_equal(c.inflated_pages, 5);
	assert_int_equal(c.bad_pfns, 4);
	assert_int_equal(c.discarded_bytes, 5 * PG);
	assert_true(virtio_dev_running(f.d));   /* bogus frames do not break it */

	/* deflate: counted, nothing discarded; an odd-sized buffer counted */
	post(&f, 1, pfns, 6, false);
	kick(&f, 1);
	assert_int_equal(tring_used_idx(&f.r[1]), 1);
	virtio_balloon_get_counters(f.d, &c);
	assert_int_equal(c.deflated_pages, 1);
	assert_int_equal(c.bad_buffers, 1);
	assert_int_equal(f.log.n, 2);

	/* the driver's actual, and a new target */
	config[0] = 5; config[1] = config[2] = config[3] = 0;
	virtio_dev_config_write(f.d, 4, config, 4);
	virtio_dev_config_write(f.d, 0, "\xff\xff\xff\xff", 4);   /* num_pages is ours */
	assert_int_equal(virtio_balloon_set_target(f.d, 128 * PG + 5), 0);
	assert_int_equal(virtio_balloon_set_target(f.d, TMEM_SIZE + 1), -ERANGE);
	virtio_balloon_get_counters(f.d, &c);
	assert_int_equal(c.actual_pages, 5);
	assert_int_equal(c.target_pages, 128);
	virtio_dev_config_read(f.d, 0, config, 8);
	assert_int_equal(config[0] | config[1] << 8, 128);
	assert_int_equal(config[4], 5);
	stop(&f);
}

static void test_stats_queue(void **state)
{
	struct bfx f;
	struct virtio_balloon_stats st;
	uint8_t buf[30];

	(void)state;
	start(&f, false);
	virtio_balloon_get_stats(f.d, &st);
	assert_int_equal(st.valid, 0);
	/* Linux adds its buffer before DRIVER_OK */
	put_stat(buf, VIRTIO_BALLOON_S_MEMTOT, 1000);
	put_stat(buf + 10, VIRTIO_BALLOON_S_MEMFREE, 600);
	put_stat(buf + 20, VIRTIO_BALLOON_S_AVAIL, 700);
	post(&f, 2, buf, sizeof(buf), false);
	go(&f);
	virtio_balloon_get_stats(f.d, &st);
	assert_int_equal(st.val[VIRTIO_BALLOON_S_MEMTOT], 1000);
	assert_int_equal(st.val[VIRTIO_BALLOON_S_AVAIL], 700);
	assert_int_equal(st.updates, 1);
	assert_int_equal(tring_used_idx(&f.r[2]), 0);    /* held */
	virtio_balloon_request_stats(f.d, false);
	assert_int_equal(tring_used_idx(&f.r[2]), 1);    /* given back */
	virtio_balloon_request_stats(f.d, false);        /* nothing held: no-op */
	assert_int_equal(tring_used_idx(&f.r[2]), 1);
	put_stat(buf, VIRTIO_BALLOON_S_MEMTOT, 2000);
	post(&f, 2, buf, sizeof(buf), false);
	kick(&f, 2);
	virtio_balloon_get_stats(f.d, &st);
	assert_int_equal(st.val[VIRTIO_BALLOON_S_MEMTOT], 2000);
	assert_int_equal(st.updates, 2);
	/* reset forgets the held buffer */
	virtio_dev_lock(f.d);
	virtio_dev_set_status(f.d, 0);
	virtio_dev_unlock(f.d);
	virtio_balloon_request_stats(f.d, false);
	stop(&f);
}

static void test_reporting(void **state)
{
	struct bfx f;
	struct virtio_balloon_counters c;

	(void)state;
	start(&f, true);
	go(&f);
	/* queue 3 is the reporting queue (stats at 2) */
	post_range(&f, 3, TMEM_DATA + 16 * PG, 8 * PG);
	post_range(&f, 3, TMEM_GPA, 2 * PG);               /* RAM, not balloonable */
	post_range(&f, 3, TMEM_DATA + 64 * PG + 100, 2 * PG);  /* unaligned: 1 page */
	kick(&f, 3);
	assert_int_equal(tring_used_idx(&f.r[3]), 3);
	virtio_balloon_get_counters(f.d, &c);
	assert_int_equal(c.reported_bytes, 9 * PG);
	assert_int_equal(c.bad_ranges, 1);
	assert_int_equal(f.log.n, 2);
	assert_ptr_equal(f.log.hva[0], tmem_ptr(&f.m, TMEM_DATA + 16 * PG));
	assert_int_equal(f.log.len[0], 8 * PG);
	assert_ptr_equal(f.log.hva[1], tmem_ptr(&f.m, TMEM_DATA + 65 * PG));
	/* a buffer outside guest RAM is the ring's business: NEEDS_RESET */
	post_range(&f, 3, 0x40000000ULL, PG);
	kick(&f, 3);
	assert_false(virtio_dev_running(f.d));
	stop(&f);
}

static void test_create_checks(void **state)
{
	struct tmem m;
	struct virtio_env env = { 0 };
	struct virtio_balloon_config cfg = { .target = TMEM_SIZE + PG };
	struct virtio_dev *d;

	(void)state;
	tmem_init(&m);
	env.mem = &m.mem;
	assert_int_equal(virtio_balloon_create(&env, &cfg, &d), -EINVAL);
	cfg.target = 0;
	cfg.nr_ranges = VIRTIO_BALLOON_MAX_RANGES + 1;
	assert_int_equal(virtio_balloon_create(&env, &cfg, &d), -EINVAL);
	tmem_free(&m);
}

/* ---- giving pages back: private, shared and private file memory ---- */

static long blocks_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return (long)st.st_blocks;
}

static void test_release(void **state)
{
	size_t len = 16 * PG;
	uint8_t *anon, *shared, *priv, back[PG];
	int fd;

	(void)state;
	/* private anonymous RAM (a booted VM): the page reads back as zeros */
	anon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(anon != MAP_FAILED);
	memset(anon, 0x5a, len);
	assert_int_equal(virtio_balloon_release(anon + 4 * PG, 2 * PG), 0);
	assert_int_equal(anon[4 * PG], 0);
	assert_int_equal(anon[6 * PG - 1], 0);
	assert_int_equal(anon[6 * PG], 0x5a);
	munmap(anon, len);

	/* shared memfd RAM (a migrated VM): freed from the file, not only
	 * unmapped (MADV_DONTNEED alone would leave the data in the file) */
	fd = memfd_create("balloon-test", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(shared != MAP_FAILED);
	memset(shared, 0x5a, len);
	{
		long before = blocks_of(fd);

		assert_int_equal(virtio_balloon_release(shared + 4 * PG, 2 * PG), 0);
		assert_true(blocks_of(fd) <= before - (long)(2 * PG / 512));
	}
	assert_int_equal(pread(fd, back, PG, (off_t)(4 * PG)), (ssize_t)PG);
	assert_int_equal(back[0], 0);
	assert_int_equal(shared[5 * PG], 0);
	assert_int_equal(shared[6 * PG], 0x5a);

	/* private file mapping (a restored VM): its own copies go, the
	 * file's content shows through again, the file is untouched */
	priv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	assert_true(priv != MAP_FAILED);
	memset(priv + 8 * PG, 0x33, PG);
	assert_int_equal(virtio_balloon_release(priv + 8 * PG, PG), 0);
	assert_int_equal(priv[8 * PG], 0x5a);
	assert_int_equal(shared[8 * PG], 0x5a);
	munmap(priv, len);
	munmap(shared, len);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pfn_hva),
		cmocka_unit_test(test_host_range),
		cmocka_unit_test(test_parse_stats),
		cmocka_unit_test(test_inflate_deflate),
		cmocka_unit_test(test_stats_queue),
		cmocka_unit_test(test_reporting),
		cmocka_unit_test(test_create_checks),
		cmocka_unit_test(test_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
