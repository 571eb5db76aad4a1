/* The guest page walk used in register dumps (vmm/x86/pagewalk.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "x86/pagewalk.h"

#define RAM (4u << 20)   /* 4 MiB of "guest RAM" at gpa 0 */

static uint8_t *ram;
static struct gmem mem;

static int setup(void **state)
{
	(void)state;
	ram = calloc(1, RAM);
	if (!ram)
		return -1;
	mem.region[0].gpa = 0;
	mem.region[0].size = RAM;
	mem.region[0].hva = ram;
	mem.nr_regions = 1;
	mem.ram_size = RAM;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(ram);
	return 0;
}

static void put(uint64_t table, unsigned index, uint64_t entry)
{
	memcpy(ram + table + index * 8, &entry, 8);
}

/* 4-level tables for a kernel-style address: PML4 at 0x1000, PDPT 0x2000,
 * PD 0x3000, PT 0x4000, data page at 0x5000. */
#define KVA 0xffffffff81234567ULL
static void build_4k(void)
{
	memset(ram, 0, RAM);
	put(0x1000, (KVA >> 39) & 511, 0x2000 | 0x3);
	put(0x2000, (KVA >> 30) & 511, 0x3000 | 0x3);
	put(0x3000, (KVA >> 21) & 511, 0x4000 | 0x3);
	put(0x4000, (KVA >> 12) & 511, 0x8000000000005000ULL | 0x3);   /* NX set */
}

static void test_4k_page(void **state)
{
	char text[320];
	uint64_t gpa = 0;

	(void)state;
	build_4k();
	assert_int_equal(pagewalk(&mem, 0x1000 | 0x18, false, KVA, &gpa, text, sizeof(text)),
			 PAGEWALK_OK);
	assert_int_equal(gpa, 0x5567);
	assert_non_null(strstr(text, "pml4e 0x2003 pdpte 0x3003 pde 0x4003 pte 0x8000000000005003"));
	assert_non_null(strstr(text, "-> gpa 0x5567"));
	assert_null(strstr(text, "outside"));
}

static void test_large_pages(void **state)
{
	char text[320];
	uint64_t gpa = 0;

	(void)state;
	build_4k();
	/* A 2 MiB page at 0x200000 in the PDE. */
	put(0x3000, (KVA >> 21) & 511, 0x200000 | 0x80 | 0x3);
	assert_int_equal(pagewalk(&mem, 0x1000, false, KVA, &gpa, text, sizeof(text)), PAGEWALK_OK);
	assert_int_equal(gpa, 0x200000 | (KVA & 0x1fffff));
	assert_non_null(strstr(text, "(2 MiB page)"));
	/* A 1 GiB page at 0 in the PDPTE: offset within 1 GiB lands beyond RAM. */
	put(0x2000, (KVA >> 30) & 511, 0x0 | 0x80 | 0x3);
	assert_int_equal(pagewalk(&mem, 0x1000, false, KVA, &gpa, text, sizeof(text)),
			 PAGEWALK_OUTSIDE_RAM);
	assert_int_equal(gpa, KVA & 0x3fffffff);
	assert_non_null(strstr(text, "(1 GiB page), outside guest RAM"));
}

static void test_not_present(void **state)
{
	char text[320];
	uint64_t gpa = 0x1234;

	(void)state;
	build_4k();
	put(0x3000, (KVA >> 21) & 511, 0x4000);   /* PDE without P */
	assert_int_equal(pagewalk(&mem, 0x1000, false, KVA, &gpa, text, sizeof(text)),
			 PAGEWALK_NOT_PRESENT);
	assert_int_equal(gpa, 0x1234);             /* untouched */
	assert_non_null(strstr(text, "pde 0x4000 (not present)"));
	assert_null(strstr(text, " pte 0x"));
}

/* A table pointer 4 GiB above RAM (as seen in a lab hang): reported, not read. */
static void test_table_outside_ram(void **state)
{
	char text[320];
	uint64_t gpa = 0;

	(void)state;
	build_4k();
	put(0x2000, (KVA >> 30) & 511, 0x100003000ULL | 0x3);
	assert_int_equal(pagewalk(&mem, 0x1000, false, KVA, &gpa, text, sizeof(text)),
			 PAGEWALK_OUTSIDE_RAM);
	assert_non_null(strstr(text, "pdpte 0x100003003 pde table at gpa 0x100003000: outside guest RAM"));
	/* CR3 itself outside RAM. */
	assert_int_equal(pagewalk(&mem, 0xfffff000ULL, false, KVA, &gpa, text, sizeof(text)),
			 PAGEWALK_OUTSIDE_RAM);
	assert_non_null(strstr(text, "pml4e table at gpa 0xfffff000: outside guest RAM"));
}

static void test_la57_and_canonical(void **state)
{
	char text[320];
	uint64_t gpa = 0;
	const uint64_t va = 0xff00000000001000ULL;   /* canonical only with 5 levels */

	(void)state;
	build_4k();
	assert_int_equal(pagewalk(&mem, 0x1000, false, va, &gpa, text, sizeof(text)),
			 PAGEWALK_NONCANONICAL);
	assert_non_null(strstr(text, "not canonical for 4-level"));
	put(0x6000, (va >> 48) & 511, 0x7000 | 3);
	put(0x7000, (va >> 39) & 511, 0x2000 | 3);
	put(0x2000, (va >> 30) & 511, 0x3000 | 3);
	put(0x3000, (va >> 21) & 511, 0x4000 | 3);
	put(0x4000, (va >> 12) & 511, 0x9000 | 3);
	assert_int_equal(pagewalk(&mem, 0x6000, true, va, &gpa, text, sizeof(text)), PAGEWALK_OK);
	assert_int_equal(gpa, 0x9000);
	assert_non_null(strstr(text, "pml5e 0x7003 pml4e 0x2003"));
}

/* Small buffers: always terminated, never overrun. */
static void test_short_text(void **state)
{
	char text[16];
	uint64_t gpa = 0;

	(void)state;
	build_4k();
	memset(text, 'x', sizeof(text));
	assert_int_equal(pagewalk(&mem, 0x1000, false, KVA, &gpa, text, 8), PAGEWALK_OK);
	assert_int_equal(strlen(text), 7);
	assert_int_equal(text[8], 'x');
	assert_int_equal(pagewalk(&mem, 0x1000, false, KVA, &gpa, NULL, 0), PAGEWALK_OK);
	assert_int_equal(gpa, 0x5567);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_4k_page),
		cmocka_unit_test(test_large_pages),
		cmocka_unit_test(test_not_present),
		cmocka_unit_test(test_table_outside_ram),
		cmocka_unit_test(test_la57_and_canonical),
		cmocka_unit_test(test_short_text),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
