/* Coalesced writes: replay of KVM's shared ring in order (with wrap-around),
 * entries outside the registered zones dropped, a ring whose indices are
 * out of range given up, console output held and flushed in order. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "coalesce.h"
#include "console.h"

#define PAGE 4096

struct seen {
	uint64_t addr[512];
	uint8_t byte[512];
	unsigned len[512];
	bool pio[512];
	unsigned n;
};

static void rec(void *o, bool pio, uint64_t addr, const uint8_t *data, unsigned len)
{
	struct seen *s = o;

	assert_true(s->n < 512);
	s->addr[s->n] = addr;
	s->byte[s->n] = data[0];
	s->len[s->n] = len;
	s->pio[s->n] = pio;
	s->n++;
}

/* What KVM does for one queued write. */
static void kvm_push(struct kvm_coalesced_mmio_ring *r, uint32_t max, uint64_t addr,
		     uint32_t len, uint8_t byte, bool pio)
{
	struct kvm_coalesced_mmio *e = &r->coalesced_mmio[r->last];

	assert_int_not_equal((r->last + 1) % max, r->first);   /* room */
	e->phys_addr = addr;
	e->len = len;
	e->pio = pio;
	memset(e->data, 0, sizeof(e->data));
	e->data[0] = byte;
	r->last = (r->last + 1) % max;
}

static struct kvm_coalesced_mmio_ring *new_ring(void)
{
	struct kvm_coalesced_mmio_ring *r = aligned_alloc(PAGE, PAGE);

	assert_non_null(r);
	memset(r, 0, PAGE);
	return r;
}

/* A started coalesce over a fresh ring with COM1's transmit port as its
 * zone. */
static struct kvm_coalesced_mmio_ring *start_com1(struct coalesce *c, struct seen *s,
						   uint32_t *max)
{
	struct kvm_coalesced_mmio_ring *r = new_ring();

	*max = coalesce_ring_entries(PAGE);
	coalesce_init(c, rec, s);
	coalesce_start(c, r, *max);
	assert_int_equal(coalesce_add_zone(c, -1, 0x3f8, 1, true), 0);
	return r;
}

static void test_entries(void **state)
{
	(void)state;
	assert_int_equal(coalesce_ring_entries(4096),
			 (4096 - sizeof(struct kvm_coalesced_mmio_ring)) /
			 sizeof(struct kvm_coalesced_mmio));
	assert_int_equal(coalesce_ring_entries(4), 0);
}

static void test_replay_in_order_with_wrap(void **state)
{
	struct kvm_coalesced_mmio_ring *r = new_ring();
	uint32_t max = coalesce_ring_entries(PAGE);
	struct coalesce c;
	struct seen s = { 0 };

	(void)state;
	coalesce_init(&c, rec, &s);
	assert_false(coalesce_pending(&c));               /* no ring yet */
	coalesce_start(&c, r, max);
	assert_int_equal(coalesce_add_zone(&c, -1, 0x3f8, 1, true), 0);
	/* Start near the end so that the entries wrap. */
	r->first = r->last = max - 3;
	for (unsigned i = 0; i < 10; i++)
		kvm_push(r, max, 0x3f8, 1, (uint8_t)('a' + i), true);
	assert_true(coalesce_pending(&c));
	assert_int_equal(coalesce_drain(&c), 10);
	assert_false(coalesce_pending(&c));
	assert_int_equal(s.n, 10);
	for (unsigned i = 0; i < 10; i++) {
		assert_int_equal(s.byte[i], 'a' + i);
		assert_int_equal(s.addr[i], 0x3f8);
		assert_true(s.pio[i]);
	}
	assert_int_equal(r->first, r->last);
	assert_int_equal(r->first, 7);
	assert_int_equal(c.replayed, 10);
	assert_int_equal(coalesce_drain(&c), 0);          /* nothing left */
	coalesce_destroy(&c);
	free(r);
}

static void test_out_of_zone_dropped(void **state)
{
	struct coalesce c;
	struct seen s = { 0 };
	uint32_t max;
	struct kvm_coalesced_mmio_ring *r = start_com1(&c, &s, &max);

	(void)state;
	assert_int_equal(coalesce_add_zone(&c, -1, 0xfeb00000, 8, false), 0);
	kvm_push(r, max, 0x3f8, 1, 'x', true);            /* ok */
	kvm_push(r, max, 0x3f9, 1, 'y', true);            /* next port */
	kvm_push(r, max, 0x3f8, 2, 'z', true);            /* runs past the zone */
	kvm_push(r, max, 0x3f8, 1, 'w', false);           /* MMIO, not port */
	kvm_push(r, max, 0x3f8, 0, 'v', true);            /* empty */
	kvm_push(r, max, 0xfeb00004, 4, 'u', false);      /* ok, inside */
	kvm_push(r, max, 0xfeb00004, 8, 't', false);      /* runs past */
	kvm_push(r, max, 0xfeb00000, 9, 's', false);      /* longer than data */
	kvm_push(r, max, UINT64_MAX, 1, 'r', true);       /* wraps */
	kvm_push(r, max, 0x3f8, 1, 'q', true);            /* ok */
	assert_int_equal(coalesce_drain(&c), 3);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.byte[0], 'x');
	assert_int_equal(s.byte[1], 'u');
	assert_int_equal(s.len[1], 4);
	assert_false(s.pio[1]);
	assert_int_equal(s.byte[2], 'q');
	assert_int_equal(c.dropped, 7);
	assert_false(coalesce_pending(&c));
	coalesce_destroy(&c);
	free(r);
}

static void test_bad_indices_give_up(void **state)
{
	struct coalesce c;
	struct seen s = { 0 };
	uint32_t max;
	struct kvm_coalesced_mmio_ring *r = start_com1(&c, &s, &max);

	(void)state;
	kvm_push(r, max, 0x3f8, 1, 'a', true);
	r->last = max + 5;                                /* not KVM's */
	assert_true(coalesce_pending(&c));
	assert_int_equal(coalesce_drain(&c), 0);
	assert_true(c.broken);
	assert_int_equal(s.n, 0);
	assert_false(coalesce_pending(&c));               /* given up */
	assert_int_equal(coalesce_drain(&c), 0);
	coalesce_destroy(&c);
	free(r);
}

static void test_zone_limits(void **state)
{
	struct coalesce c;
	struct seen s = { 0 };

	(void)state;
	coalesce_init(&c, rec, &s);
	assert_int_equal(coalesce_add_zone(&c, -1, 0x3f8, 0, true), -EINVAL);
	assert_int_equal(coalesce_add_zone(&c, -1, UINT64_MAX - 1, 4, true), -EINVAL);
	for (unsigned i = 0; i < COALESCE_MAX_ZONES; i++)
		assert_int_equal(coalesce_add_zone(&c, -1, 0x100 + i, 1, true), 0);
	assert_int_equal(coalesce_add_zone(&c, -1, 0x200, 1, true), -EINVAL);
	assert_int_equal(coalesce_drain(&c), 0);          /* not started */
	coalesce_destroy(&c);
}

/* Held console output comes out in order with direct writes. */
static void test_console_hold_and_flush(void **state)
{
	struct vmm_opts o;
	struct console con;
	char path[] = "/tmp/vireo-coalesce-XXXXXX";
	char buf[8200];
	int fd = mkstemp(path);
	ssize_t n;

	(void)state;
	assert_true(fd >= 0);
	memset(&o, 0, sizeof(o));
	memset(&con, 0, sizeof(con));   /* console_open() does not clear it */
	o.console = VMM_CONSOLE_FILE;
	o.console_path = path;
	assert_int_equal(console_open(&con, &o), 0);
	console_put(&con, 'a');
	console_put(&con, 'b');
	assert_int_equal(lseek(fd, 0, SEEK_END), 0);       /* held */
	console_write(&con, (const uint8_t *)"CD", 2);    /* held bytes first */
	assert_int_equal(lseek(fd, 0, SEEK_END), 4);
	for (unsigned i = 0; i < 5000; i++)               /* more than the buffer */
		console_put(&con, (uint8_t)('0' + i % 10));
	assert_true(lseek(fd, 0, SEEK_END) > 4);
	console_flush(&con);
	assert_int_equal(lseek(fd, 0, SEEK_END), 5004);
	console_put(&con, '!');
	console_close(&con);                              /* flushes */
	n = pread(fd, buf, sizeof(buf), 0);
	assert_int_equal(n, 5005);
	assert_memory_equal(buf, "abCD0123", 8);
	assert_int_equal(buf[5003], '9');
	assert_int_equal(buf[5004], '!');
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_replay_in_order_with_wrap),
		cmocka_unit_test(test_out_of_zone_dropped),
		cmocka_unit_test(test_bad_indices_give_up),
		cmocka_unit_test(test_zone_limits),
		cmocka_unit_test(test_console_hold_and_flush),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
