/* i8042 (self-test, command byte, reset line) and the MC146818 RTC (BCD and
 * binary time from the time source, status registers, NVRAM). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dev/i8042.h"
#include "dev/mc146818.h"

static int resets;
static void on_reset(void *o) { (void)o; resets++; }

static uint8_t kbd_io(struct i8042 *k, unsigned off, int wr, uint8_t v)
{
	i8042_bus_io(k, off, &v, 1, wr);
	return v;
}

static void test_i8042(void **state)
{
	struct i8042 k;

	i8042_init(&k, on_reset, NULL);
	resets = 0;
	assert_int_equal(kbd_io(&k, 4, 0, 0) & 0x01, 0);   /* output buffer empty */
	assert_int_equal(kbd_io(&k, 4, 0, 0) & 0x02, 0);   /* input buffer never full */
	kbd_io(&k, 4, 1, 0xaa);                            /* self test */
	assert_int_equal(kbd_io(&k, 4, 0, 0) & 0x01, 1);
	assert_int_equal(kbd_io(&k, 0, 0, 0), 0x55);
	assert_int_equal(kbd_io(&k, 4, 0, 0) & 0x01, 0);
	kbd_io(&k, 4, 1, 0x60);                            /* write command byte */
	kbd_io(&k, 0, 1, 0x47);
	kbd_io(&k, 4, 1, 0x20);
	assert_int_equal(kbd_io(&k, 0, 0, 0), 0x47);
	assert_int_equal(resets, 0);
	kbd_io(&k, 4, 1, 0xfe);                            /* pulse reset */
	assert_int_equal(resets, 1);
	kbd_io(&k, 4, 1, 0xd1);                            /* output port, bit 0 low */
	kbd_io(&k, 0, 1, 0xfe);
	assert_int_equal(resets, 2);
	/* Wide accesses are ignored, reads give all-ones. */
	uint8_t w[2] = { 0, 0 };
	i8042_bus_io(&k, 0, w, 2, false);
	assert_int_equal(w[0], 0xff);
}

static time_t fixed_now(void)
{
	return 1795318043;   /* 2026-11-22 03:27:23 UTC, a Sunday */
}

static uint8_t rtc_io(struct mc146818 *r, unsigned off, int wr, uint8_t v)
{
	mc146818_bus_io(r, off, &v, 1, wr);
	return v;
}

static uint8_t rtc_reg(struct mc146818 *r, uint8_t reg)
{
	rtc_io(r, 0, 1, reg);
	return rtc_io(r, 1, 0, 0);
}

static void test_rtc(void **state)
{
	struct mc146818 r;

	mc146818_init(&r, fixed_now);
	assert_int_equal(rtc_reg(&r, 0x00), 0x23);    /* seconds, BCD */
	assert_int_equal(rtc_reg(&r, 0x02), 0x27);
	assert_int_equal(rtc_reg(&r, 0x04), 0x03);
	assert_int_equal(rtc_reg(&r, 0x07), 0x22);
	assert_int_equal(rtc_reg(&r, 0x08), 0x11);
	assert_int_equal(rtc_reg(&r, 0x09), 0x26);
	assert_int_equal(rtc_reg(&r, 0x32), 0x20);    /* century */
	assert_int_equal(rtc_reg(&r, 0x06), 1);       /* Sunday = 1 */
	assert_int_equal(rtc_reg(&r, 0x0a) & 0x80, 0);/* never updating */
	assert_int_equal(rtc_reg(&r, 0x0b) & 0x02, 0x02);   /* 24-hour */
	assert_int_equal(rtc_reg(&r, 0x0d), 0x80);    /* valid */
	/* Binary mode. */
	rtc_io(&r, 0, 1, 0x0b);
	rtc_io(&r, 1, 1, 0x06);
	assert_int_equal(rtc_reg(&r, 0x00), 23);
	assert_int_equal(rtc_reg(&r, 0x09), 26);
	/* NVRAM keeps what is written; time writes do not change the clock. */
	rtc_io(&r, 0, 1, 0x40);
	rtc_io(&r, 1, 1, 0x5a);
	assert_int_equal(rtc_reg(&r, 0x40), 0x5a);
	rtc_io(&r, 0, 1, 0x00);
	rtc_io(&r, 1, 1, 0x59);
	assert_int_equal(rtc_reg(&r, 0x00), 23);
	/* The NMI-mask bit of the index is ignored. */
	assert_int_equal(rtc_reg(&r, 0x80 | 0x40), 0x5a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_i8042),
		cmocka_unit_test(test_rtc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
