/* Split virtqueue parsing: good chains, and every way a guest can lie. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "virtq.h"
#include "virtio_test_ring.h"

#define RING_BASE TMEM_GPA
#define W VIRTQ_DESC_F_WRITE
#define N VIRTQ_DESC_F_NEXT
#define I VIRTQ_DESC_F_INDIRECT

struct fx {
	struct tmem m;
	struct tring r;
	struct virtq q;
	struct virtq_chain c;
};

static struct fx *fx_new(uint16_t size, bool indirect, bool event_idx)
{
	struct fx *f = calloc(1, sizeof(*f));

	tmem_init(&f->m);
	tring_init(&f->r, &f->m, RING_BASE, size);
	virtq_reset(&f->q);
	tring_attach(&f->r, &f->q);
	f->q.indirect = indirect;
	f->q.event_idx = event_idx;
	assert_int_equal(virtq_enable(&f->q, &f->m.mem), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	tmem_free(&f->m);
	free(f);
}

static void test_empty(void **state)
{
	struct fx *f = fx_new(8, false, false);

	(void)state;
	assert_int_equal(virtq_pop(&f->q, &f->c), 0);
	assert_false(virtq_has_work(&f->q));
	fx_free(f);
}

static void test_good_chain(void **state)
{
	struct fx *f = fx_new(8, false, false);
	uint64_t a = tmem_alloc(&f->m, 100, 0xaa);
	uint64_t b = tmem_alloc(&f->m, 200, 0xbb);
	uint64_t c = tmem_alloc(&f->m, 50, 0);
	uint32_t id, len;

	(void)state;
	/* Out of order in the table: 5 -> 2 -> 7. */
	tring_desc(&f->r, 5, a, 100, N, 2);
	tring_desc(&f->r, 2, b, 200, N, 7);
	tring_desc(&f->r, 7, c, 50, W, 0);
	tring_publish(&f->r, 5);
	assert_true(virtq_has_work(&f->q));
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	assert_int_equal(f->c.head, 5);
	assert_int_equal(f->c.nr_out, 2);
	assert_int_equal(f->c.nr_in, 1);
	assert_int_equal(f->c.out_len, 300);
	assert_int_equal(f->c.in_len, 50);
	assert_ptr_equal(f->c.iov[0].iov_base, tmem_ptr(&f->m, a));
	assert_ptr_equal(f->c.iov[1].iov_base, tmem_ptr(&f->m, b));
	assert_ptr_equal(f->c.iov[2].iov_base, tmem_ptr(&f->m, c));
	assert_false(virtq_seg_writable(&f->c, 1));
	assert_true(virtq_seg_writable(&f->c, 2));
	assert_int_equal(virtq_pop(&f->q, &f->c), 0);

	virtq_push(&f->q, 5, 42);
	assert_int_equal(tring_used_idx(&f->r), 1);
	tring_used_elem(&f->r, 0, &id, &len);
	assert_int_equal(id, 5);
	assert_int_equal(len, 42);
	fx_free(f);
}

static void test_chain_copy(void **state)
{
	struct fx *f = fx_new(8, false, false);
	uint64_t a = tmem_alloc(&f->m, 3, 0), b = tmem_alloc(&f->m, 5, 0);
	uint64_t c = tmem_alloc(&f->m, 4, 0), d = tmem_alloc(&f->m, 4, 0);
	char buf[16] = { 0 };

	(void)state;
	memcpy(tmem_ptr(&f->m, a), "abc", 3);
	memcpy(tmem_ptr(&f->m, b), "defgh", 5);
	tring_desc(&f->r, 0, a, 3, N, 1);
	tring_desc(&f->r, 1, b, 5, N, 2);
	tring_desc(&f->r, 2, c, 4, W | N, 3);
	tring_desc(&f->r, 3, d, 4, W, 0);
	tring_publish(&f->r, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	assert_int_equal(virtq_chain_read(&f->c, 2, buf, sizeof(buf)), 6);
	assert_string_equal(buf, "cdefgh");
	assert_int_equal(virtq_chain_write(&f->c, 1, "123456789", 9), 7);
	assert_memory_equal(tmem_ptr(&f->m, c), "\0" "123", 4);
	assert_memory_equal(tmem_ptr(&f->m, d), "4567", 4);
	fx_free(f);
}

static void test_zero_length_dropped(void **state)
{
	struct fx *f = fx_new(4, false, false);
	uint64_t a = tmem_alloc(&f->m, 16, 0);

	(void)state;
	tring_desc(&f->r, 0, 0xdeadbeef0000ULL, 0, N, 1);  /* len 0: no access */
	tring_desc(&f->r, 1, a, 16, W, 0);
	tring_publish(&f->r, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	assert_int_equal(f->c.nr_out, 0);
	assert_int_equal(f->c.nr_in, 1);
	fx_free(f);
}

static void test_indirect(void **state)
{
	struct fx *f = fx_new(8, true, false);
	uint64_t t = tmem_alloc(&f->m, 16 * 3, 0);
	uint64_t a = tmem_alloc(&f->m, 16, 0), b = tmem_alloc(&f->m, 512, 0);
	uint64_t s = tmem_alloc(&f->m, 1, 0);

	(void)state;
	tring_idesc(&f->m, t, 0, a, 16, N, 2);
	tring_idesc(&f->m, t, 2, b, 512, W | N, 1);
	tring_idesc(&f->m, t, 1, s, 1, W, 0);
	tring_desc(&f->r, 3, t, 48, I, 0);
	tring_publish(&f->r, 3);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	assert_int_equal(f->c.head, 3);
	assert_int_equal(f->c.nr_out, 1);
	assert_int_equal(f->c.nr_in, 2);
	assert_int_equal(f->c.in_len, 513);
	assert_ptr_equal(f->c.iov[2].iov_base, tmem_ptr(&f->m, s));
	fx_free(f);
}

static bool dirty_page(const uint64_t *bits, uint64_t gpa)
{
	uint64_t p = (gpa - TMEM_GPA) / GMEM_DIRTY_PAGE;

	return bits[p / 64] >> (p % 64) & 1;
}

/* Live migration's dirty log of the VMM's writes (gmem.h): virtq_push()
 * marks the pages of the chain's writable buffers (direct and indirect)
 * and of the used ring, not its readable ones; nothing while it is off. */
static void test_dirty_log(void **state)
{
	struct fx *f = fx_new(8, true, false);
	uint64_t pages = TMEM_SIZE / GMEM_DIRTY_PAGE;
	uint64_t *bits = calloc((pages + 63) / 64, 8);
	struct gmem_dirty d = { .on = false, .bits = { bits } };
	uint64_t hdr = tmem_alloc(&f->m, 16, 0);
	uint64_t big, t, s, a, rd;
	unsigned n = 0;

	(void)state;
	f->m.next = (f->m.next + 8191) & ~4095ULL;
	big = tmem_alloc(&f->m, 3 * 4096 + 8, 0);   /* 4 pages, 2 partly */
	f->m.next = (f->m.next + 8191) & ~4095ULL;
	rd = tmem_alloc(&f->m, 4096, 0);
	f->m.next = (f->m.next + 8191) & ~4095ULL;
	t = tmem_alloc(&f->m, 32, 0);
	f->m.next = (f->m.next + 8191) & ~4095ULL;
	a = tmem_alloc(&f->m, 100, 0);
	f->m.next = (f->m.next + 8191) & ~4095ULL;
	s = tmem_alloc(&f->m, 1, 0);
	f->m.mem.dirty = &d;
	/* off: nothing marked */
	tring_desc(&f->r, 0, hdr, 16, N, 1);
	tring_desc(&f->r, 1, big - 8, 3 * 4096 + 16, W, 0);
	tring_publish(&f->r, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	virtq_push(&f->q, 0, 0);
	for (uint64_t w = 0; w < (pages + 63) / 64; w++)
		assert_true(bits[w] == 0);
	/* on: the writable buffer's pages and the used ring's */
	d.on = true;
	tring_publish(&f->r, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	virtq_push(&f->q, 0, 16);
	for (uint64_t g = big - 8; g < big + 3 * 4096 + 8; g += 4096)
		assert_true(dirty_page(bits, g));
	assert_true(dirty_page(bits, big + 3 * 4096 + 7));
	assert_true(dirty_page(bits, f->r.used));
	assert_false(dirty_page(bits, hdr));
	for (uint64_t p = 0; p < pages; p++)
		n += (unsigned)(bits[p / 64] >> (p % 64) & 1);
	/* the buffer spans 5 pages (from 8 bytes before a page boundary
	 * to 8 bytes after the third next), the used ring one */
	assert_int_equal(n, 5 + 1);
	assert_false(dirty_page(bits, rd));
	/* indirect: the table's writable entries only */
	memset(bits, 0, (pages + 63) / 64 * 8);
	tring_idesc(&f->m, t, 0, rd, 4096, N, 1);
	tring_idesc(&f->m, t, 1, a, 100, W, 0);
	tring_desc(&f->r, 2, t, 32, I, 0);
	tring_publish(&f->r, 2);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	virtq_push(&f->q, 2, 100);
	assert_true(dirty_page(bits, a));
	assert_false(dirty_page(bits, rd));
	assert_false(dirty_page(bits, t));
	assert_false(dirty_page(bits, s));
	f->m.mem.dirty = NULL;
	free(bits);
	fx_free(f);
}

/* Each case: one bad chain at head 0 must break the queue. */
static void expect_broken(struct fx *f)
{
	tring_publish(&f->r, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EIO);
	assert_true(f->q.broken);
	/* and it stays broken */
	assert_int_equal(virtq_pop(&f->q, &f->c), -EIO);
	assert_false(virtq_has_work(&f->q));
	fx_free(f);
}

static void test_indirect_without_feature(void **state)
{
	struct fx *f = fx_new(8, false, false);
	uint64_t t = tmem_alloc(&f->m, 16, 0);

	(void)state;
	tring_idesc(&f->m, t, 0, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	tring_desc(&f->r, 0, t, 16, I, 0);
	expect_broken(f);
}

static void test_indirect_nested(void **state)
{
	struct fx *f = fx_new(8, true, false);
	uint64_t t = tmem_alloc(&f->m, 32, 0), t2 = tmem_alloc(&f->m, 16, 0);

	(void)state;
	tring_idesc(&f->m, t2, 0, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	tring_idesc(&f->m, t, 0, t2, 16, I, 0);
	tring_desc(&f->r, 0, t, 16, I, 0);
	expect_broken(f);
}

static void test_indirect_bad_len(void **state)
{
	struct fx *f = fx_new(8, true, false);
	uint64_t t = tmem_alloc(&f->m, 64, 0);

	(void)state;
	tring_idesc(&f->m, t, 0, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	tring_desc(&f->r, 0, t, 17, I, 0);
	expect_broken(f);
}

static void test_indirect_with_next(void **state)
{
	struct fx *f = fx_new(8, true, false);
	uint64_t t = tmem_alloc(&f->m, 16, 0);

	(void)state;
	tring_idesc(&f->m, t, 0, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	tring_desc(&f->r, 0, t, 16, I | N, 1);
	tring_desc(&f->r, 1, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	expect_broken(f);
}

static void test_indirect_too_many(void **state)
{
	/* A table with more entries than the queue size. */
	struct fx *f = fx_new(4, true, false);
	uint64_t t = tmem_alloc(&f->m, 16 * 5, 0);

	(void)state;
	for (uint16_t i = 0; i < 5; i++)
		tring_idesc(&f->m, t, i, tmem_alloc(&f->m, 8, 0), 8,
			    i < 4 ? N : 0, (uint16_t)(i + 1));
	tring_desc(&f->r, 0, t, 16 * 5, I, 0);
	expect_broken(f);
}

static void test_indirect_full_queue_size(void **state)
{
	/* A table of exactly queue-size entries, reached through a ring
	 * descriptor, is legal: Linux's virtio-blk sends seg_max + 2 entries
	 * with seg_max = queue size - 2. */
	struct fx *f = fx_new(4, true, false);
	uint64_t t = tmem_alloc(&f->m, 16 * 4, 0);

	(void)state;
	for (uint16_t i = 0; i < 4; i++)
		tring_idesc(&f->m, t, i, tmem_alloc(&f->m, 8, 0), 8,
			    (i < 3 ? N : 0) | (i == 3 ? W : 0), (uint16_t)(i + 1));
	tring_desc(&f->r, 0, t, 16 * 4, I, 0);
	tring_publish(&f->r, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	assert_false(f->q.broken);
	assert_int_equal(f->c.nr_out, 3);
	assert_int_equal(f->c.nr_in, 1);
	fx_free(f);
}

static void test_indirect_loop(void **state)
{
	struct fx *f = fx_new(8, true, false);
	uint64_t t = tmem_alloc(&f->m, 32, 0), a = tmem_alloc(&f->m, 8, 0);

	(void)state;
	tring_idesc(&f->m, t, 0, a, 8, N, 1);
	tring_idesc(&f->m, t, 1, a, 8, N, 0);
	tring_desc(&f->r, 0, t, 32, I, 0);
	expect_broken(f);
}

static void test_indirect_next_out_of_table(void **state)
{
	struct fx *f = fx_new(8, true, false);
	uint64_t t = tmem_alloc(&f->m, 32, 0), a = tmem_alloc(&f->m, 8, 0);

	(void)state;
	tring_idesc(&f->m, t, 0, a, 8, N, 2);
	tring_desc(&f->r, 0, t, 32, I, 0);
	expect_broken(f);
}

static void test_indirect_table_outside(void **state)
{
	struct fx *f = fx_new(8, true, false);

	(void)state;
	tring_desc(&f->r, 0, TMEM_GPA + TMEM_SIZE - 16, 32, I, 0);
	expect_broken(f);
}

static void test_buffer_outside_ram(void **state)
{
	struct fx *f = fx_new(8, false, false);

	(void)state;
	tring_desc(&f->r, 0, TMEM_GPA - 4096, 16, 0, 0);
	expect_broken(f);
}

static void test_buffer_straddles_end(void **state)
{
	struct fx *f = fx_new(8, false, false);

	(void)state;
	tring_desc(&f->r, 0, TMEM_GPA + TMEM_SIZE - 8, 16, W, 0);
	expect_broken(f);
}

static void test_buffer_wraps(void **state)
{
	struct fx *f = fx_new(8, false, false);

	(void)state;
	tring_desc(&f->r, 0, 0xfffffffffffff000ULL, 0x2000, 0, 0);
	expect_broken(f);
}

static void test_loop(void **state)
{
	struct fx *f = fx_new(8, false, false);
	uint64_t a = tmem_alloc(&f->m, 8, 0);

	(void)state;
	tring_desc(&f->r, 0, a, 8, N, 1);
	tring_desc(&f->r, 1, a, 8, N, 2);
	tring_desc(&f->r, 2, a, 8, N, 1);
	expect_broken(f);
}

static void test_self_loop(void **state)
{
	struct fx *f = fx_new(8, false, false);

	(void)state;
	tring_desc(&f->r, 0, tmem_alloc(&f->m, 8, 0), 8, N, 0);
	expect_broken(f);
}

static void test_next_out_of_range(void **state)
{
	struct fx *f = fx_new(8, false, false);

	(void)state;
	tring_desc(&f->r, 0, tmem_alloc(&f->m, 8, 0), 8, N, 8);
	expect_broken(f);
}

static void test_head_out_of_range(void **state)
{
	struct fx *f = fx_new(8, false, false);

	(void)state;
	tring_publish(&f->r, 9);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EIO);
	assert_true(f->q.broken);
	fx_free(f);
}

static void test_readable_after_writable(void **state)
{
	struct fx *f = fx_new(8, false, false);

	(void)state;
	tring_desc(&f->r, 0, tmem_alloc(&f->m, 8, 0), 8, W | N, 1);
	tring_desc(&f->r, 1, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	expect_broken(f);
}

static void test_chain_max(void **state)
{
	/* A chain of exactly VIRTQ_CHAIN_MAX buffers is fine; one more is not. */
	struct fx *f = fx_new(2048, false, false);
	uint64_t a = tmem_alloc(&f->m, 8, 0);
	uint16_t i;

	(void)state;
	for (i = 0; i < VIRTQ_CHAIN_MAX; i++)
		tring_desc(&f->r, i, a, 8, i + 1u < VIRTQ_CHAIN_MAX ? N : 0,
			   (uint16_t)(i + 1));
	tring_publish(&f->r, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	assert_int_equal(f->c.nr_out, VIRTQ_CHAIN_MAX);
	tring_desc(&f->r, VIRTQ_CHAIN_MAX - 1, a, 8, N, VIRTQ_CHAIN_MAX);
	tring_desc(&f->r, VIRTQ_CHAIN_MAX, a, 8, 0, 0);
	expect_broken(f);
}

static void test_avail_jump(void **state)
{
	struct fx *f = fx_new(8, false, false);

	(void)state;
	tring_desc(&f->r, 0, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	tring_set_avail_idx(&f->r, 9);   /* 9 new entries in a ring of 8 */
	assert_int_equal(virtq_pop(&f->q, &f->c), -EIO);
	assert_true(f->q.broken);
	fx_free(f);
}

static void test_avail_full_ring_ok(void **state)
{
	struct fx *f = fx_new(8, false, false);
	int n = 0;

	(void)state;
	tring_desc(&f->r, 0, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	tring_set_avail_idx(&f->r, 8);   /* exactly the ring size: legal */
	while (virtq_pop(&f->q, &f->c) == 1)
		n++;
	assert_int_equal(n, 8);
	assert_false(f->q.broken);
	fx_free(f);
}

static void test_index_wrap(void **state)
{
	/* 70000 chains through a ring of 4: both indexes wrap at 65536. */
	struct fx *f = fx_new(4, false, false);
	uint32_t id, len;

	(void)state;
	tring_desc(&f->r, 1, tmem_alloc(&f->m, 8, 0), 8, W, 0);
	for (unsigned k = 0; k < 70000; k++) {
		tring_publish(&f->r, 1);
		assert_int_equal(virtq_pop(&f->q, &f->c), 1);
		assert_int_equal(f->c.head, 1);
		virtq_push(&f->q, 1, k & 0xff);
	}
	assert_int_equal(virtq_pop(&f->q, &f->c), 0);
	assert_int_equal(tring_used_idx(&f->r), (uint16_t)70000);
	tring_used_elem(&f->r, (uint16_t)69999, &id, &len);
	assert_int_equal(id, 1);
	assert_int_equal(len, 69999 & 0xff);
	fx_free(f);
}

static void test_enable_checks(void **state)
{
	struct tmem m;
	struct tring r;
	struct virtq q = { 0 };

	(void)state;
	tmem_init(&m);
	tring_init(&r, &m, TMEM_GPA, 8);
	virtq_reset(&q);
	tring_attach(&r, &q);
	q.size = 12;   /* not a power of two */
	assert_int_equal(virtq_enable(&q, &m.mem), -EINVAL);
	assert_false(q.ready);
	q.size = 0;
	assert_int_equal(virtq_enable(&q, &m.mem), -EINVAL);

	virtq_reset(&q);
	tring_attach(&r, &q);
	q.desc_gpa += 8;   /* descriptor table must be 16-aligned */
	assert_int_equal(virtq_enable(&q, &m.mem), -EINVAL);

	virtq_reset(&q);
	tring_attach(&r, &q);
	q.used_gpa = TMEM_GPA + TMEM_SIZE - 16;   /* used ring runs off RAM */
	assert_int_equal(virtq_enable(&q, &m.mem), -EINVAL);
	assert_int_equal(virtq_pop(&q, NULL), -EIO);

	virtq_reset(&q);
	tring_attach(&r, &q);
	assert_int_equal(virtq_enable(&q, &m.mem), 0);
	assert_true(q.ready);
	tmem_free(&m);
}

static void test_max_size(void **state)
{
	struct fx *f = fx_new(32768, false, false);

	(void)state;
	tring_desc(&f->r, 32767, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	tring_publish(&f->r, 32767);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	assert_int_equal(f->c.head, 32767);
	fx_free(f);
}

static void test_need_event_rule(void **state)
{
	(void)state;
	/* Guest asked for an interrupt once entry 5 is used. */
	assert_true(virtq_need_event(5, 6, 5));
	assert_true(virtq_need_event(5, 10, 0));
	assert_false(virtq_need_event(5, 5, 0));
	assert_false(virtq_need_event(5, 12, 6));
	/* across the 16-bit wrap */
	assert_true(virtq_need_event(65535, 1, 65534));
	assert_false(virtq_need_event(2, 1, 65534));
}

static void test_notify_plain(void **state)
{
	struct fx *f = fx_new(8, false, false);

	(void)state;
	virtq_push(&f->q, 0, 0);
	assert_true(virtq_should_notify(&f->q));
	tring_set_avail_flags(&f->r, VIRTQ_AVAIL_F_NO_INTERRUPT);
	virtq_push(&f->q, 0, 0);
	assert_false(virtq_should_notify(&f->q));
	fx_free(f);
}

static void test_notify_event_idx(void **state)
{
	struct fx *f = fx_new(8, false, true);

	(void)state;
	/* NO_INTERRUPT is ignored with EVENT_IDX; used_event rules. */
	tring_set_avail_flags(&f->r, VIRTQ_AVAIL_F_NO_INTERRUPT);
	tring_set_used_event(&f->r, 0);
	virtq_push(&f->q, 0, 0);          /* used idx 0 -> 1 passes event 0 */
	assert_true(virtq_should_notify(&f->q));
	virtq_push(&f->q, 0, 0);          /* 1 -> 2, event still 0: quiet */
	assert_false(virtq_should_notify(&f->q));
	tring_set_used_event(&f->r, 3);   /* wants one once entry 3 is used */
	virtq_push(&f->q, 0, 0);          /* 2 -> 3 */
	assert_false(virtq_should_notify(&f->q));
	virtq_push(&f->q, 0, 0);          /* 3 -> 4 */
	virtq_push(&f->q, 0, 0);          /* 4 -> 5: batch passes 3 */
	assert_true(virtq_should_notify(&f->q));
	/* Nothing new since the last interrupt: no second one. */
	assert_false(virtq_should_notify(&f->q));
	fx_free(f);
}

static void test_notify_suppression(void **state)
{
	struct fx *f = fx_new(8, false, false), *g;

	(void)state;
	virtq_notify_off(&f->q);
	assert_int_equal(tring_used_flags(&f->r), VIRTQ_USED_F_NO_NOTIFY);
	assert_false(virtq_notify_on(&f->q));
	assert_int_equal(tring_used_flags(&f->r), 0);
	tring_desc(&f->r, 0, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	tring_publish(&f->r, 0);
	assert_true(virtq_notify_on(&f->q));   /* work arrived meanwhile */
	fx_free(f);

	g = fx_new(8, false, true);
	tring_desc(&g->r, 0, tmem_alloc(&g->m, 8, 0), 8, 0, 0);
	tring_publish(&g->r, 0);
	tring_publish(&g->r, 0);
	assert_int_equal(virtq_pop(&g->q, &g->c), 1);
	assert_true(virtq_notify_on(&g->q));
	assert_int_equal(tring_avail_event(&g->r), 1);
	assert_int_equal(virtq_pop(&g->q, &g->c), 1);
	assert_false(virtq_notify_on(&g->q));
	assert_int_equal(tring_avail_event(&g->r), 2);
	fx_free(g);
}

static void test_event_idx_asks_for_kicks(void **state)
{
	/* A device that simply pops until empty must keep avail_event at
	 * its position, or an EVENT_IDX driver stops kicking. */
	struct fx *f = fx_new(8, false, true);

	(void)state;
	tring_desc(&f->r, 0, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	for (uint16_t k = 1; k <= 20; k++) {
		tring_publish(&f->r, 0);
		assert_int_equal(virtq_pop(&f->q, &f->c), 1);
		assert_int_equal(virtq_pop(&f->q, &f->c), 0);
		assert_int_equal(tring_avail_event(&f->r), k);
		/* the driver's rule: kick when the new entry passes avail_event */
		assert_true(virtq_need_event(tring_avail_event(&f->r),
					     (uint16_t)(k + 1), k));
	}
	fx_free(f);
}

static void test_reset_recovers(void **state)
{
	struct fx *f = fx_new(8, false, false);

	(void)state;
	tring_desc(&f->r, 0, TMEM_GPA - 4096, 16, 0, 0);
	tring_publish(&f->r, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EIO);
	virtq_reset(&f->q);
	tring_init(&f->r, &f->m, RING_BASE, 8);
	tring_attach(&f->r, &f->q);
	assert_int_equal(virtq_enable(&f->q, &f->m.mem), 0);
	tring_desc(&f->r, 0, tmem_alloc(&f->m, 8, 0), 8, 0, 0);
	tring_publish(&f->r, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_good_chain),
		cmocka_unit_test(test_dirty_log),
		cmocka_unit_test(test_chain_copy),
		cmocka_unit_test(test_zero_length_dropped),
		cmocka_unit_test(test_indirect),
		cmocka_unit_test(test_indirect_without_feature),
		cmocka_unit_test(test_indirect_nested),
		cmocka_unit_test(test_indirect_bad_len),
		cmocka_unit_test(test_indirect_with_next),
		cmocka_unit_test(test_indirect_too_many),
		cmocka_unit_test(test_indirect_full_queue_size),
		cmocka_unit_test(test_indirect_loop),
		cmocka_unit_test(test_indirect_next_out_of_table),
		cmocka_unit_test(test_indirect_table_outside),
		cmocka_unit_test(test_buffer_outside_ram),
		cmocka_unit_test(test_buffer_straddles_end),
		cmocka_unit_test(test_buffer_wraps),
		cmocka_unit_test(test_loop),
		cmocka_unit_test(test_self_loop),
		cmocka_unit_test(test_next_out_of_range),
		cmocka_unit_test(test_head_out_of_range),
		cmocka_unit_test(test_readable_after_writable),
		cmocka_unit_test(test_chain_max),
		cmocka_unit_test(test_avail_jump),
		cmocka_unit_test(test_avail_full_ring_ok),
		cmocka_unit_test(test_index_wrap),
		cmocka_unit_test(test_enable_checks),
		cmocka_unit_test(test_max_size),
		cmocka_unit_test(test_need_event_rule),
		cmocka_unit_test(test_notify_plain),
		cmocka_unit_test(test_notify_event_idx),
		cmocka_unit_test(test_notify_suppression),
		cmocka_unit_test(test_event_idx_asks_for_kicks),
		cmocka_unit_test(test_reset_recovers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
