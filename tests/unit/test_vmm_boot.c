/* Guest memory layout, e820, bzImage header checks and the zero page. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "layout.h"
#include "memory.h"
#include "x86/boot.h"

static void test_layout_small(void **state)
{
	struct gmem m;

	assert_int_equal(memory_layout(&m, 512 * MiB), 0);
	assert_int_equal(m.nr_regions, 1);
	assert_int_equal(m.region[0].gpa, 0);
	assert_int_equal(m.region[0].size, 512 * MiB);
	assert_int_equal(m.ram_size, 512 * MiB);
}

static void test_layout_hole(void **state)
{
	struct gmem m;

	assert_int_equal(memory_layout(&m, 5 * GiB), 0);
	assert_int_equal(m.nr_regions, 2);
	assert_int_equal(m.region[0].size, 3 * GiB);
	assert_int_equal(m.region[1].gpa, 4 * GiB);
	assert_int_equal(m.region[1].size, 2 * GiB);
	assert_int_equal(memory_layout(&m, 0), -EINVAL);
}

static void test_e820(void **state)
{
	struct gmem m;
	struct e820_entry e[16];
	unsigned n;
	uint64_t ram = 0;

	memory_layout(&m, 5 * GiB);
	n = memory_e820(&m, e, 16);
	assert_int_equal(n, 5);
	for (unsigned i = 0; i < n; i++) {
		if (e[i].type == E820_RAM)
			ram += e[i].size;
		/* Sorted and non-overlapping. */
		if (i)
			assert_true(e[i].addr >= e[i - 1].addr + e[i - 1].size);
		/* No RAM inside the PCI hole. */
		if (e[i].type == E820_RAM)
			assert_true(e[i].addr + e[i].size <= LAYOUT_PCI_HOLE ||
				    e[i].addr >= LAYOUT_4G);
	}
	/* Everything but the EBDA/BIOS area is usable. */
	assert_int_equal(ram, 5 * GiB - (LAYOUT_HIGH_RAM - LAYOUT_EBDA));
	assert_int_equal(e[1].addr, LAYOUT_EBDA);
	assert_int_equal(e[1].type, E820_RESERVED);
	/* ECAM reserved. */
	assert_int_equal(e[3].addr, LAYOUT_ECAM_BASE);
	assert_int_equal(e[3].type, E820_RESERVED);
	/* Truncation never writes past max. */
	assert_int_equal(memory_e820(&m, e, 2), 2);
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static void make_hdr(uint8_t *h, uint16_t version, uint16_t xlf, uint32_t syssize)
{
	memset(h, 0, 1024);
	h[0x1f1] = 4;
	put32(h + 0x1f4, syssize);
	put16(h + 0x1fe, 0xaa55);
	h[0x200] = 0xeb;
	h[0x201] = 0x66;
	memcpy(h + 0x202, "HdrS", 4);
	put16(h + 0x206, version);
	put32(h + 0x22c, 0x7fffffff);
	put16(h + 0x236, xlf);
	put32(h + 0x238, 2047);
	put64(h + 0x258, 0x1000000);
	put32(h + 0x260, 0x2000000);
}

static void test_bzimage_check(void **state)
{
	uint8_t h[1024];
	struct bzimage_info bi;
	char msg[160];

	make_hdr(h, 0x20f, 1, 0x1000);
	assert_int_equal(boot_bzimage_check(h, sizeof(h), 2560 + 0x10000, &bi, msg, sizeof(msg)), 0);
	assert_int_equal(bi.setup_size, 2560);
	assert_int_equal(bi.pm_size, 0x10000);
	assert_int_equal(bi.pref_address, 0x1000000);
	assert_int_equal(bi.cmdline_max, 2047);
	assert_int_equal(bi.hdr_len, 0x268 - 0x1f1);
	/* Truncated file */
	assert_int_equal(boot_bzimage_check(h, sizeof(h), 2560 + 0x8000, &bi, msg, sizeof(msg)), -EIO);
	assert_non_null(strstr(msg, "truncated"));
	/* Old protocol */
	make_hdr(h, 0x20a, 1, 0x10);
	assert_int_equal(boot_bzimage_check(h, sizeof(h), 1 << 20, &bi, msg, sizeof(msg)), -ENOTSUP);
	assert_non_null(strstr(msg, "2.10"));
	/* No 64-bit entry */
	make_hdr(h, 0x20f, 0, 0x10);
	assert_int_equal(boot_bzimage_check(h, sizeof(h), 1 << 20, &bi, msg, sizeof(msg)), -ENOTSUP);
	/* Not a bzImage */
	memset(h, 0, sizeof(h));
	assert_int_equal(boot_bzimage_check(h, sizeof(h), 1 << 20, &bi, msg, sizeof(msg)), -ENOEXEC);
	/* Short header buffer */
	make_hdr(h, 0x20f, 1, 0x10);
	assert_int_equal(boot_bzimage_check(h, 0x200, 1 << 20, &bi, msg, sizeof(msg)), -ENOEXEC);
}

static void test_boot_params(void **state)
{
	uint8_t h[1024], zp[BOOT_PARAMS_SIZE];
	struct bzimage_info bi;
	struct e820_entry e[3] = {
		{ 0, 0x9fc00, E820_RAM }, { 0x9fc00, 0x60400, E820_RESERVED },
		{ 0x100000, 0x1ff00000, E820_RAM },
	};
	char msg[160];

	make_hdr(h, 0x20f, 1, 0x1000);
	assert_int_equal(boot_bzimage_check(h, sizeof(h), 2560 + 0x10000, &bi, msg, sizeof(msg)), 0);
	memset(zp, 0xcc, sizeof(zp));
	boot_params_fill(zp, h, &bi, 0x20000, 2047, 0x1f000000, 0x123456, e, 3, 0xe0000);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(zp[0x210], 0xff);                  /* type_of_loader */
	assert_true(zp[0x211] & 0x80);                      /* CAN_USE_HEAP */
	assert_true(zp[0x211] & 0x01);                      /* LOADED_HIGH */
	assert_int_equal(get32(zp + 0x228), 0x20000);       /* cmd_line_ptr */
	assert_int_equal(get32(zp + 0x218), 0x1f000000);    /* ramdisk_image */
	assert_int_equal(get32(zp + 0x21c), 0x123456);      /* ramdisk_size */
	assert_int_equal(get32(zp + 0x70), 0xe0000);        /* acpi_rsdp_addr */
	assert_int_equal(zp[0x1e8], 3);                     /* e820_entries */
	assert_int_equal(get32(zp + 0x2d0 + 2 * 20 + 0), 0x100000);
	assert_int_equal(get32(zp + 0x2d0 + 2 * 20 + 16), E820_RAM);
	/* Fields outside the header are zeroed. */
	assert_int_equal(zp[0x0], 0);
	assert_int_equal(zp[0xfff], 0);
	/* ELF (no header): a minimal one is made up. */
	boot_params_fill(zp, NULL, NULL, 0x20000, 2047, 0, 0, e, 3, 0);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(get32(zp + 0x218), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_small),
		cmocka_unit_test(test_layout_hole),
		cmocka_unit_test(test_e820),
		cmocka_unit_test(test_bzimage_check),
		cmocka_unit_test(test_boot_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
