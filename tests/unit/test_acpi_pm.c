/* The ACPI PM register block (vmm/x86/acpi_pm.c): power button and SCI,
 * write-1-to-clear status, S5 and reset, the PM timer, bad accesses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "x86/acpi.h"

static uint64_t rd(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ------------------------------------------------------------------ */
/* PM block                                                            */

struct sci_rec {
	int level;
	int calls;
};

static void rec_sci(void *opaque, int level)
{
	struct sci_rec *r = opaque;

	r->level = level;
	r->calls++;
}

static uint32_t pm_rd(struct acpi_pm *pm, uint16_t off, unsigned size)
{
	uint8_t d[4] = { 0 };

	assert_int_equal(acpi_pm_io(pm, off, false, d, size), ACPI_PM_NONE);
	return (uint32_t)rd(d, size);
}

static enum acpi_pm_action pm_wr(struct acpi_pm *pm, uint16_t off,
				 unsigned size, uint32_t v)
{
	uint8_t d[4];

	for (int i = 0; i < 4; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	return acpi_pm_io(pm, off, true, d, size);
}

static void test_pm_power_button(void **state)
{
	struct sci_rec r = { 0, 0 };
	struct acpi_pm *pm = acpi_pm_new(rec_sci, &r);

	(void)state;
	assert_non_null(pm);
	/* Not enabled: status set, no SCI. */
	acpi_pm_power_button(pm);
	assert_int_equal(pm_rd(pm, 0, 2) & 0x100, 0x100);
	assert_int_equal(r.calls, 0);
	/* Enabling raises the SCI because the status is pending. */
	assert_int_equal(pm_wr(pm, 2, 2, 0x100), ACPI_PM_NONE);
	assert_int_equal(pm_rd(pm, 2, 2), 0x100);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.level, 1);
	/* Writing 0 does not clear (W1C); nor does writing other bits. */
	pm_wr(pm, 0, 2, 0x0000);
	pm_wr(pm, 0, 2, 0x00ff);
	assert_int_equal(pm_rd(pm, 0, 2) & 0x100, 0x100);
	assert_int_equal(r.calls, 1);
	/* Writing 1 clears it and lowers the SCI. */
	pm_wr(pm, 1, 1, 0x01);
	assert_int_equal(pm_rd(pm, 0, 2) & 0x100, 0);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.level, 0);
	/* Press while enabled: one raise; a second press changes nothing. */
	acpi_pm_power_button(pm);
	acpi_pm_power_button(pm);
	assert_int_equal(r.calls, 3);
	assert_int_equal(r.level, 1);
	/* Disabling lowers it while the status stays. */
	pm_wr(pm, 2, 2, 0);
	assert_int_equal(r.calls, 4);
	assert_int_equal(r.level, 0);
	assert_int_equal(pm_rd(pm, 0, 2) & 0x100, 0x100);
	/* A 4-byte write to STS+EN at once: clear and enable together. */
	pm_wr(pm, 0, 4, 0x01000100);
	assert_int_equal(pm_rd(pm, 0, 4), 0x01000000);
	assert_int_equal(r.calls, 4);
	acpi_pm_free(pm);

	/* No callback is fine. */
	pm = acpi_pm_new(NULL, NULL);
	pm_wr(pm, 2, 2, 0x100);
	acpi_pm_power_button(pm);
	assert_int_equal(pm_rd(pm, 0, 2), 0x100);
	acpi_pm_free(pm);
}

static void test_pm_sleep_and_reset(void **state)
{
	struct sci_rec r = { 0, 0 };
	struct acpi_pm *pm = acpi_pm_new(rec_sci, &r);
	const uint32_t s5 = (uint32_t)ACPI_S5_SLP_TYP << 10;

	(void)state;
	/* SCI_EN reads 1 and cannot be cleared. */
	assert_int_equal(pm_rd(pm, 4, 2) & 1, 1);
	assert_int_equal(pm_wr(pm, 4, 2, 0), ACPI_PM_NONE);
	assert_int_equal(pm_rd(pm, 4, 2) & 1, 1);
	/* SLP_TYP alone does nothing; SLP_EN reads back 0. */
	assert_int_equal(pm_wr(pm, 4, 2, s5), ACPI_PM_NONE);
	assert_int_equal(pm_rd(pm, 4, 2), s5 | 1);
	/* Other sleep types are not supported. */
	assert_int_equal(pm_wr(pm, 4, 2, (3u << 10) | (1u << 13)),
			 ACPI_PM_NONE);
	assert_int_equal(pm_rd(pm, 4, 2) & (1u << 13), 0);
	/* S5 with SLP_EN: power off, as a word or as the high byte. */
	assert_int_equal(pm_wr(pm, 4, 2, s5 | (1u << 13) | 1),
			 ACPI_PM_POWEROFF);
	assert_int_equal(pm_wr(pm, 5, 1, (s5 | (1u << 13)) >> 8),
			 ACPI_PM_POWEROFF);
	assert_int_equal(pm_wr(pm, 4, 4, s5 | (1u << 13)), ACPI_PM_POWEROFF);

	/* Reset register */
	assert_int_equal(pm_wr(pm, 12, 1, ACPI_RESET_VALUE), ACPI_PM_RESET);
	assert_int_equal(pm_wr(pm, 12, 1, 0x02), ACPI_PM_NONE);
	assert_int_equal(pm_wr(pm, 12, 1, 0x00), ACPI_PM_NONE);
	assert_int_equal(pm_wr(pm, 12, 4, ACPI_RESET_VALUE), ACPI_PM_RESET);
	assert_int_equal(pm_rd(pm, 12, 1), 0);
	assert_int_equal(r.calls, 0);
	acpi_pm_free(pm);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void test_pm_timer(void **state)
{
	struct acpi_pm *pm = acpi_pm_new(NULL, NULL);
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	uint64_t a0, a1, b0, b1;
	uint32_t t0, t1, d;

	(void)state;
	a0 = now_ns();
	t0 = pm_rd(pm, 8, 4);
	a1 = now_ns();
	nanosleep(&ts, NULL);
	b0 = now_ns();
	t1 = pm_rd(pm, 8, 4);
	b1 = now_ns();
	assert_int_equal(t0 >> 24, 0);
	assert_int_equal(t1 >> 24, 0);
	d = (t1 - t0) & 0xffffff;
	/* The counter runs at 3.579545 MHz: the delta lies between what the
	 * inner and the outer time brackets allow (not a timing assertion:
	 * the brackets are measured). */
	assert_true(d + 1 >= (b0 - a1) * 3579545ULL / 1000000000ULL);
	assert_true(d <= (b1 - a0) * 3579545ULL / 1000000000ULL + 1);
	assert_true(d > 0);
	/* Writes to the timer are ignored; byte reads agree with a dword. */
	assert_int_equal(pm_wr(pm, 8, 4, 0), ACPI_PM_NONE);
	assert_int_equal(pm_rd(pm, 11, 1), 0);
	acpi_pm_free(pm);
}

static void test_pm_bad_access(void **state)
{
	struct sci_rec r = { 0, 0 };
	struct acpi_pm *pm = acpi_pm_new(rec_sci, &r);
	uint8_t d[8];

	(void)state;
	/* Bad offsets and sizes read as all-ones... */
	static const struct { uint16_t off; unsigned size; } bad[] = {
		{ 16, 1 }, { 15, 2 }, { 13, 4 }, { 0, 3 }, { 0, 0 }, { 0, 8 },
		{ 0xffff, 4 }, { 14, 4 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(d, 0, sizeof(d));
		assert_int_equal(acpi_pm_io(pm, bad[i].off, false, d,
					    bad[i].size), ACPI_PM_NONE);
		for (unsigned k = 0; k < bad[i].size && k < 8; k++)
			assert_int_equal(d[k], 0xff);
		/* ...and writes are ignored, even of the reset value. */
		memset(d, ACPI_RESET_VALUE, sizeof(d));
		assert_int_equal(acpi_pm_io(pm, bad[i].off, true, d,
					    bad[i].size), ACPI_PM_NONE);
	}
	assert_int_equal(acpi_pm_io(pm, 0, false, NULL, 4), ACPI_PM_NONE);
	assert_int_equal(acpi_pm_io(pm, 12, true, NULL, 1), ACPI_PM_NONE);
	assert_int_equal(acpi_pm_io(NULL, 12, true, d, 1), ACPI_PM_NONE);
	acpi_pm_power_button(NULL);

	/* Every offset and size with all-ones data: no action (0xff is not
	 * the reset value, SLP_TYP 7 is not S5), no crash, and SCI_EN
	 * stays set. */
	for (unsigned off = 0; off < 0x20; off++) {
		for (unsigned size = 0; size <= 8; size++) {
			memset(d, 0xff, sizeof(d));
			assert_int_equal(acpi_pm_io(pm, (uint16_t)off, true, d,
						    size), ACPI_PM_NONE);
			memset(d, 0, sizeof(d));
			acpi_pm_io(pm, (uint16_t)off, false, d, size);
		}
	}
	assert_int_equal(pm_rd(pm, 4, 2) & 1, 1);
	/* Only defined enable bits stick. */
	assert_int_equal(pm_rd(pm, 2, 2) & ~0x4721u, 0);
	assert_int_equal(r.calls, 0);
	acpi_pm_free(pm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pm_power_button),
		cmocka_unit_test(test_pm_sleep_and_reset),
		cmocka_unit_test(test_pm_timer),
		cmocka_unit_test(test_pm_bad_access),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
