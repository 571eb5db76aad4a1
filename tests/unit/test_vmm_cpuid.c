/* CPUID topology for N vCPUs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "x86/cpuid.h"

static unsigned base(struct kvm_cpuid_entry2 *e)
{
	unsigned n = 0;

	memset(e, 0, sizeof(*e) * CPUID_MAX_ENTRIES);
	e[n].function = 1; e[n].ebx = 0x00000800; e[n].edx = 1u << 28; n++;
	e[n].function = 4; e[n].index = 0; e[n].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e[n].eax = 0x121 | (7u << 26) | (1u << 14); n++;          /* L1d */
	e[n].function = 4; e[n].index = 1; e[n].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e[n].eax = 0x163 | (7u << 26) | (15u << 14); n++;         /* L3 */
	e[n].function = 4; e[n].index = 2; e[n].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e[n].eax = 0; n++;                                        /* end */
	for (unsigned i = 0; i < 3; i++) {
		e[n].function = 0xb; e[n].index = i; e[n].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX; n++;
	}
	e[n].function = 0x80000008; e[n].ecx = 0xff; n++;
	e[n].function = 0x40000001; e[n].eax = 0x1234; n++;
	return n;
}

static void test_id_bits(void **state)
{
	assert_int_equal(cpuid_id_bits(1), 0);
	assert_int_equal(cpuid_id_bits(2), 1);
	assert_int_equal(cpuid_id_bits(3), 2);
	assert_int_equal(cpuid_id_bits(4), 2);
	assert_int_equal(cpuid_id_bits(5), 3);
	assert_int_equal(cpuid_id_bits(255), 8);
}

static void test_topology(void **state)
{
	struct kvm_cpuid_entry2 e[CPUID_MAX_ENTRIES], *c;
	unsigned n = base(e);

	n = cpuid_fixup(e, n, CPUID_MAX_ENTRIES, 2, 3, 2500000, true);
	c = cpuid_find(e, n, 1, 0);
	assert_int_equal(c->ebx >> 24, 2);                /* initial APIC id */
	assert_int_equal((c->ebx >> 16) & 0xff, 4);       /* logical count: 2^2 */
	assert_true(c->edx & (1u << 28));                 /* HTT */
	assert_true(c->ecx & (1u << 31));                 /* hypervisor */
	assert_true(c->ecx & (1u << 24));                 /* TSC deadline */
	assert_int_equal(c->ebx & 0xffff, 0x0800);        /* CLFLUSH size kept */

	c = cpuid_find(e, n, 4, 0);
	assert_int_equal(c->eax >> 26, 3);                /* cores per package - 1 */
	assert_int_equal((c->eax >> 14) & 0xfff, 0);      /* L1 per core */
	c = cpuid_find(e, n, 4, 1);
	assert_int_equal((c->eax >> 14) & 0xfff, 3);      /* L3 shared */

	c = cpuid_find(e, n, 0xb, 0);
	assert_int_equal(c->ebx, 1);
	assert_int_equal((c->ecx >> 8) & 0xff, 1);        /* SMT level */
	assert_int_equal(c->edx, 2);
	c = cpuid_find(e, n, 0xb, 1);
	assert_int_equal(c->eax, 2);                      /* shift to package */
	assert_int_equal(c->ebx, 3);                      /* 3 cores */
	assert_int_equal((c->ecx >> 8) & 0xff, 2);        /* core level */
	c = cpuid_find(e, n, 0xb, 2);
	assert_int_equal((c->ecx >> 8) & 0xff, 0);        /* invalid: end */

	c = cpuid_find(e, n, 0x80000008, 0);
	assert_int_equal(c->ecx & 0xff, 2);               /* NC = cores - 1 */
	assert_int_equal((c->ecx >> 12) & 0xf, 2);

	/* KVM leaves: signature added, timing leaf carries the TSC kHz. */
	c = cpuid_find(e, n, 0x40000000, 0);
	assert_non_null(c);
	assert_memory_equal(&c->ebx, "KVMK", 4);
	assert_int_equal(c->eax, 0x40000010);
	c = cpuid_find(e, n, 0x40000010, 0);
	assert_non_null(c);
	assert_int_equal(c->eax, 2500000);
	assert_int_equal(cpuid_find(e, n, 0x40000001, 0)->eax, 0x1234);
}

static void test_single_cpu(void **state)
{
	struct kvm_cpuid_entry2 e[CPUID_MAX_ENTRIES], *c;
	unsigned n = base(e);

	n = cpuid_fixup(e, n, CPUID_MAX_ENTRIES, 0, 1, 0, false);
	c = cpuid_find(e, n, 1, 0);
	assert_false(c->edx & (1u << 28));
	assert_false(c->ecx & (1u << 24));
	assert_int_equal(c->ebx >> 24, 0);
	assert_int_equal(cpuid_find(e, n, 0xb, 1)->ebx, 1);
}

static void test_xsave_coherent(void **state)
{
	struct kvm_cpuid_entry2 e[CPUID_MAX_ENTRIES], *c;
	unsigned n = base(e);

	/* XCR0 mask says x87, SSE, AVX (2) and PKRU (9); only AVX has a sub-leaf. */
	e[n].function = 0xd; e[n].index = 0; e[n].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e[n].eax = 0x207; e[n].ebx = 2696; e[n].ecx = 2696; n++;
	e[n].function = 0xd; e[n].index = 2; e[n].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e[n].eax = 256; e[n].ebx = 576; n++;
	n = cpuid_fixup(e, n, CPUID_MAX_ENTRIES, 0, 1, 0, false);
	c = cpuid_find(e, n, 0xd, 0);
	assert_int_equal(c->eax, 0x7);            /* PKRU dropped, AVX kept */
	assert_int_equal(c->ecx, 832);            /* 576 + 256 */
}

static void test_cap_respected(void **state)
{
	struct kvm_cpuid_entry2 e[CPUID_MAX_ENTRIES];
	unsigned n = base(e);

	/* No room: nothing added, nothing written past cap. */
	assert_int_equal(cpuid_fixup(e, n, n, 0, 2, 1000, false), n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_bits),
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_single_cpu),
		cmocka_unit_test(test_xsave_coherent),
		cmocka_unit_test(test_cap_respected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
