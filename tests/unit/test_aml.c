/* The AML byte-code writer (vmm/x86/aml.c): encodings, PkgLength at its
 * boundaries, nesting, overflow handling. */
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

#include "x86/aml.h"

static uint64_t rd(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ------------------------------------------------------------------ */
/* AML                                                                 */

/* An independent PkgLength decoder: returns the encoded total length and
 * stores the number of bytes used. */
static size_t pkglen_decode(const uint8_t *p, unsigned *nbytes)
{
	unsigned n = (p[0] >> 6) + 1;
	size_t v;

	*nbytes = n;
	if (n == 1)
		return p[0] & 0x3f;
	assert_int_equal(p[0] & 0x30, 0);
	v = p[0] & 0x0f;
	for (unsigned i = 1; i < n; i++)
		v |= (size_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

static void test_aml_pkglen(void **state)
{
	static const struct {
		size_t body;
		unsigned n;
		uint8_t bytes[4];
	} cases[] = {
		{ 0, 1, { 0x01 } },
		{ 62, 1, { 0x3f } },                    /* total 63 */
		{ 63, 2, { 0x41, 0x04 } },              /* total 65 */
		{ 4093, 2, { 0x4f, 0xff } },            /* total 4095 */
		{ 4094, 3, { 0x81, 0x00, 0x01 } },      /* total 4097 */
		{ 0xffffc, 3, { 0x8f, 0xff, 0xff } },   /* total 0xfffff */
		{ 0xffffd, 4, { 0xc1, 0x00, 0x00, 0x01 } },
		{ AML_PKGLEN_MAX - 4, 4, { 0xcf, 0xff, 0xff, 0xff } },
	};
	uint8_t out[4];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned n = aml_pkglen_encode(cases[i].body, out);

		assert_int_equal(n, cases[i].n);
		assert_memory_equal(out, cases[i].bytes, n);
	}
	assert_int_equal(aml_pkglen_encode(AML_PKGLEN_MAX - 3, out), 0);
	assert_int_equal(aml_pkglen_encode(SIZE_MAX, out), 0);

	/* Round trip around every boundary. */
	static const size_t edges[] = { 63, 4095, 0xfffff };
	for (size_t e = 0; e < 3; e++) {
		for (size_t body = edges[e] - 8; body < edges[e] + 8; body++) {
			unsigned n = aml_pkglen_encode(body, out), m;

			assert_true(n >= 1 && n <= 4);
			assert_int_equal(pkglen_decode(out, &m), body + n);
			assert_int_equal(m, n);
			/* and it is the shortest encoding */
			if (n > 1)
				assert_true(body + n - 1 >
					    (n == 2 ? 0x3fu :
					     n == 3 ? 0xfffu : 0xfffffu));
		}
	}
}

/* A scope around a body of `body` bytes, checked through the decoder. */
static void check_scope_body(size_t body)
{
	size_t cap = body + 64;
	uint8_t *buf = malloc(cap), *fill = malloc(body);
	struct aml a;
	unsigned n;
	size_t total;
	long len;

	memset(fill, 0xa3, body);
	aml_init(&a, buf, cap);
	aml_scope_begin(&a, "\\");
	aml_bytes(&a, fill, body - 2);           /* "\\" + NullName = 2 */
	aml_end(&a);
	len = aml_finish(&a);
	assert_true(len > 0);
	assert_int_equal(buf[0], 0x10);
	total = pkglen_decode(buf + 1, &n);
	assert_int_equal(total, body + n);
	assert_int_equal((size_t)len, 1 + n + body);
	assert_int_equal(buf[1 + n], 0x5c);
	assert_int_equal(buf[2 + n], 0x00);
	assert_memory_equal(buf + 3 + n, fill, body - 2);
	free(buf);
	free(fill);
}

static void test_aml_nesting(void **state)
{
	static const size_t bodies[] = { 2, 62, 63, 64, 4093, 4094, 4095,
					 4096, 0xffffc, 0xffffd };
	uint8_t buf[64];
	struct aml a;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		check_scope_body(bodies[i]);

	/* Package(2){One, "A"} */
	aml_init(&a, buf, sizeof(buf));
	aml_package_begin(&a, 2);
	aml_integer(&a, 1);
	aml_string(&a, "A");
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 7);
	assert_memory_equal(buf, "\x12\x06\x02\x01\x0d\x41\x00", 7);

	/* Nested: Package(1){Package(1){Zero}} */
	aml_init(&a, buf, sizeof(buf));
	aml_package_begin(&a, 1);
	aml_package_begin(&a, 1);
	aml_integer(&a, 0);
	aml_end(&a);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 7);
	assert_memory_equal(buf, "\x12\x06\x01\x12\x03\x01\x00", 7);

	/* Unbalanced */
	aml_init(&a, buf, sizeof(buf));
	aml_package_begin(&a, 1);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	aml_end(&a);
	assert_int_equal(aml_finish(&a), -EINVAL);
}

static void test_aml_encodings(void **state)
{
	uint8_t buf[128];
	struct aml a;

	(void)state;
	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "\\_SB.PCI0");
	assert_int_equal(aml_finish(&a), 10);
	assert_memory_equal(buf, "\\\x2e_SB_PCI0", 10);

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "^^A.B.C");
	assert_int_equal(aml_finish(&a), 2 + 2 + 12);
	assert_memory_equal(buf, "^^\x2f\x03" "A___B___C___", 16);

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "_S5");
	assert_int_equal(aml_finish(&a), 4);
	assert_memory_equal(buf, "_S5_", 4);

	static const char *bad[] = { "", "a", "ABCDE", "1ABC", "A..B", "A.",
				     "\\A^B", "A-B" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_init(&a, buf, sizeof(buf));
		aml_name(&a, bad[i]);
		if (bad[i][0] == '\0') {
			/* A bare NameOp with the NullName is legal bytes. */
			assert_int_equal(aml_finish(&a), 2);
			continue;
		}
		assert_int_equal(aml_finish(&a), -EINVAL);
	}

	/* Integers take the smallest encoding. */
	static const struct {
		uint64_t v;
		size_t n;
		const char *bytes;
	} ints[] = {
		{ 0, 1, "\x00" }, { 1, 1, "\x01" }, { 2, 2, "\x0a\x02" },
		{ 0xff, 2, "\x0a\xff" }, { 0x100, 3, "\x0b\x00\x01" },
		{ 0x10000, 5, "\x0c\x00\x00\x01\x00" },
		{ 0x100000000ULL, 9, "\x0e\x00\x00\x00\x00\x01\x00\x00\x00" },
		{ UINT64_MAX, 1, "\xff" },
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		aml_init(&a, buf, sizeof(buf));
		aml_integer(&a, ints[i].v);
		assert_int_equal(aml_finish(&a), ints[i].n);
		assert_memory_equal(buf, ints[i].bytes, ints[i].n);
	}

	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "PNP0A08");
	aml_eisaid(&a, "PNP0A03");
	assert_int_equal(aml_finish(&a), 10);
	assert_int_equal(rd(buf + 1, 4), 0x080ad041);
	assert_int_equal(rd(buf + 6, 4), 0x030ad041);
	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "pnp0a08");
	assert_int_equal(aml_finish(&a), -EINVAL);

	/* ToUUID: a 16-byte buffer, first three groups byte-swapped */
	aml_init(&a, buf, sizeof(buf));
	aml_uuid(&a, "33DB4D5B-1ff7-401c-9657-7441c03dd766");
	assert_int_equal(aml_finish(&a), 20);
	assert_memory_equal(buf, "\x11\x13\x0a\x10"
			    "\x5b\x4d\xdb\x33\xf7\x1f\x1c\x40"
			    "\x96\x57\x74\x41\xc0\x3d\xd7\x66", 20);
	static const char *bad_uuid[] = {
		"33db4d5b-1ff7-401c-9657-7441c03dd76",
		"33db4d5b-1ff7-401c-9657x7441c03dd766",
		"33db4d5b-1ff7-401c-9657-7441c03dd76g",
	};
	for (size_t i = 0; i < 3; i++) {
		aml_init(&a, buf, sizeof(buf));
		aml_uuid(&a, bad_uuid[i]);
		assert_int_equal(aml_finish(&a), -EINVAL);
	}
	aml_init(&a, buf, sizeof(buf));
	aml_arg(&a, 6);
	aml_local(&a, 7);
	assert_int_equal(aml_finish(&a), 2);
	assert_memory_equal(buf, "\x6e\x67", 2);
	aml_arg(&a, 7);
	assert_int_equal(aml_finish(&a), -EINVAL);

	/* IO and IRQ descriptors */
	aml_init(&a, buf, sizeof(buf));
	aml_res_io(&a, 0x3f8, 0x3f8, 1, 8);
	aml_res_irq(&a, 4, false, false, false);
	aml_res_end(&a);
	assert_int_equal(aml_finish(&a), 14);
	assert_memory_equal(buf, "\x47\x01\xf8\x03\xf8\x03\x01\x08"
			    "\x23\x10\x00\x01\x79\x00", 14);
	aml_init(&a, buf, sizeof(buf));
	aml_res_irq(&a, 16, false, false, false);
	assert_int_equal(aml_finish(&a), -EINVAL);

	/* QWord memory: 0x2e bytes, length field = max - min + 1 */
	aml_init(&a, buf, sizeof(buf));
	aml_res_qword_mem(&a, 0x8000000000ULL, 0xffffffffffULL,
			  AML_MEM_CACHEABLE);
	assert_int_equal(aml_finish(&a), 3 + 43);
	assert_int_equal(buf[0], 0x8a);
	assert_int_equal(rd(buf + 1, 2), 43);
	assert_int_equal(rd(buf + 14, 8), 0x8000000000ULL);
	assert_int_equal(rd(buf + 22, 8), 0xffffffffffULL);
	assert_int_equal(rd(buf + 38, 8), 0x8000000000ULL);
}

static void test_aml_overflow(void **state)
{
	(void)state;
	/* Each capacity short of the full size fails cleanly; exact heap
	 * allocations let ASan see any stray write. */
	for (size_t cap = 0; cap < 40; cap++) {
		uint8_t *buf = malloc(cap ? cap : 1);
		struct aml a;
		long n;

		aml_init(&a, buf, cap);
		aml_device_begin(&a, "COM1");
		aml_name(&a, "_HID");
		aml_eisaid(&a, "PNP0501");
		aml_name_integer(&a, "_UID", 1);
		aml_end(&a);
		n = aml_finish(&a);
		/* 5b 82 <len> COM1, 08 _HID 0c <4>, 08 _UID 01: 23 bytes */
		if (cap < 23)
			assert_int_equal(n, -ENOSPC);
		else
			assert_int_equal(n, 23);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aml_pkglen),
		cmocka_unit_test(test_aml_nesting),
		cmocka_unit_test(test_aml_encodings),
		cmocka_unit_test(test_aml_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
