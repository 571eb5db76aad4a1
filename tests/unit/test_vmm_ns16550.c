/* 16550A register model: THR/RBR, IIR priorities and the IRQ line, FIFO,
 * loopback, divisor latch. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dev/ns16550.h"

struct sink {
	char out[256];
	unsigned nout;
	int level, edges, space_calls;
};

static void tx(void *o, uint8_t b) { struct sink *s = o; s->out[s->nout++] = (char)b; }
static void irq(void *o, int level) { struct sink *s = o; s->level = level; s->edges++; }
static void space(void *o) { struct sink *s = o; s->space_calls++; }
static const struct ns16550_ops ops = { tx, irq, space };

static void test_tx(void **state)
{
	struct ns16550 u;
	struct sink s = { 0 };

	ns16550_init(&u, &ops, &s);
	assert_int_equal(ns16550_read(&u, 5) & 0x60, 0x60);   /* THRE, TEMT */
	ns16550_write(&u, 0, 'h');
	ns16550_write(&u, 0, 'i');
	assert_int_equal(s.nout, 2);
	assert_memory_equal(s.out, "hi", 2);
	assert_int_equal(s.level, 0);                        /* IER = 0 */
	ns16550_destroy(&u);
}

static void test_thre_irq(void **state)
{
	struct ns16550 u;
	struct sink s = { 0 };

	ns16550_init(&u, &ops, &s);
	ns16550_write(&u, 1, 0x02);                   /* ETBEI */
	assert_int_equal(s.level, 1);
	assert_int_equal(ns16550_read(&u, 2) & 0x0f, 0x02);   /* THRI */
	assert_int_equal(s.level, 0);                 /* IIR read acknowledges */
	assert_int_equal(ns16550_read(&u, 2) & 0x0f, 0x01);   /* none */
	ns16550_write(&u, 0, 'x');                    /* next THR empty */
	assert_int_equal(s.level, 1);
	ns16550_write(&u, 1, 0);
	assert_int_equal(s.level, 0);
	ns16550_destroy(&u);
}

static void test_rx(void **state)
{
	struct ns16550 u;
	struct sink s = { 0 };
	uint8_t buf[100];

	ns16550_init(&u, &ops, &s);
	ns16550_write(&u, 1, 0x01);                   /* ERBFI */
	assert_int_equal(ns16550_rx_push(&u, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(s.level, 1);
	assert_int_equal(ns16550_read(&u, 2) & 0x0f, 0x04);   /* RDI over THRI */
	assert_int_equal(ns16550_read(&u, 5) & 1, 1);
	assert_int_equal(ns16550_read(&u, 0), 'a');
	assert_int_equal(ns16550_read(&u, 0), 'b');
	assert_int_equal(ns16550_read(&u, 5) & 1, 0);
	assert_int_equal(s.level, 0);
	/* FIFO limit: only what fits is taken, and draining reports space. */
	memset(buf, 'z', sizeof(buf));
	assert_int_equal(ns16550_rx_push(&u, buf, sizeof(buf)), NS16550_RX_FIFO);
	assert_int_equal(ns16550_rx_space(&u), 0);
	for (int i = 0; i < NS16550_RX_FIFO; i++)
		assert_int_equal(ns16550_read(&u, 0), 'z');
	assert_int_equal(s.space_calls, 1);
	assert_int_equal(ns16550_read(&u, 0), 0);     /* empty reads 0 */
	ns16550_destroy(&u);
}

static void test_fifo_loop_dlab(void **state)
{
	struct ns16550 u;
	struct sink s = { 0 };

	ns16550_init(&u, &ops, &s);
	ns16550_write(&u, 2, 0x07);                   /* FIFO on, clear */
	assert_int_equal(ns16550_read(&u, 2) & 0xc0, 0xc0);   /* 16550A */
	ns16550_write(&u, 3, 0x80);                   /* DLAB */
	ns16550_write(&u, 0, 0x0c);
	ns16550_write(&u, 1, 0x00);
	assert_int_equal(ns16550_read(&u, 0), 0x0c);
	ns16550_write(&u, 3, 0x03);
	assert_int_equal(s.nout, 0);                  /* divisor writes are not data */
	ns16550_write(&u, 7, 0x5a);
	assert_int_equal(ns16550_read(&u, 7), 0x5a);  /* scratch */
	ns16550_write(&u, 4, 0x10 | 0x0a);            /* loopback, RTS, OUT2 */
	assert_int_equal(ns16550_read(&u, 6) & 0xf0, 0x90);   /* CTS, DCD */
	ns16550_write(&u, 0, 'L');
	assert_int_equal(s.nout, 0);
	assert_int_equal(ns16550_read(&u, 0), 'L');   /* looped back */
	ns16550_destroy(&u);
}

static void test_bus_adapter(void **state)
{
	struct ns16550 u;
	struct sink s = { 0 };
	uint8_t d[2] = { 'q', 0 };

	ns16550_init(&u, &ops, &s);
	ns16550_bus_io(&u, 0, d, 1, true);
	assert_int_equal(s.nout, 1);
	ns16550_bus_io(&u, 8, d, 1, false);            /* out of range */
	assert_int_equal(d[0], 0xff);
	ns16550_destroy(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx),
		cmocka_unit_test(test_thre_irq),
		cmocka_unit_test(test_rx),
		cmocka_unit_test(test_fifo_loop_dlab),
		cmocka_unit_test(test_bus_adapter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
