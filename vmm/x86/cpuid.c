#include <stdbool.h>
#include <string.h>

#include "cpuid.h"

unsigned cpuid_id_bits(unsigned n)
{
	unsigned b = 0;

	while (n > 1 && (1u << b) < n)
		b++;
	return b;
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid_entry2 *e, unsigned n,
				    uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].function == function &&
		    (!(e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e[i].index == index))
			return &e[i];
	return NULL;
}

static void cpuid_topology_leaf(struct kvm_cpuid_entry2 *c, unsigned apic_id,
				unsigned ncpus)
{
	unsigned shift = cpuid_id_bits(ncpus);

	switch (c->index) {
	case 0:  /* SMT level: one thread per core */
		c->eax = 0;
		c->ebx = 1;
		c->ecx = (1u << 8) | 0;
		break;
	case 1:  /* core level: ncpus cores */
		c->eax = shift;
		c->ebx = ncpus;
		c->ecx = (2u << 8) | 1;
		break;
	default: /* invalid level */
		c->eax = 0;
		c->ebx = 0;
		c->ecx = c->index;
		break;
	}
	c->edx = apic_id;
}

/*
 * Leaf 0xD: keep only the XSAVE state components that have a sub-leaf
 * describing them (some hosts, e.g. nested under emulators, announce a
 * component in XCR0's supported mask without its size and offset; Linux
 * then finds the sizes inconsistent and turns XSAVE off altogether), and
 * make the maximum size (ECX) match what remains.
 */
static void cpuid_xsave_coherent(struct kvm_cpuid_entry2 *e, unsigned n)
{
	struct kvm_cpuid_entry2 *d0 = cpuid_find(e, n, 0xd, 0), *c;
	uint64_t mask;
	uint32_t max = 576;     /* legacy area + XSAVE header */

	if (!d0)
		return;
	mask = d0->eax | (uint64_t)d0->edx << 32;
	for (unsigned i = 2; i < 64; i++) {
		if (!(mask & (1ULL << i)))
			continue;
		c = cpuid_find(e, n, 0xd, i);
		if (!c || c->index != i || c->eax == 0) {
			mask &= ~(1ULL << i);
			continue;
		}
		/* User (XCR0) components have a standard-format offset. */
		if (!(c->ecx & 1) && c->ebx + c->eax > max)
			max = c->ebx + c->eax;
	}
	d0->eax = (uint32_t)mask;
	d0->edx = (uint32_t)(mask >> 32);
	if (d0->ecx > max || d0->ecx < 576)
		d0->ecx = max;
}

unsigned cpuid_fixup(struct kvm_cpuid_entry2 *e, unsigned n, unsigned cap,
		     unsigned index, unsigned ncpus, uint32_t tsc_khz,
		     bool tsc_deadline)
{
	unsigned shift = cpuid_id_bits(ncpus);
	unsigned logical = 1u << shift;
	struct kvm_cpuid_entry2 *c;

	for (unsigned i = 0; i < n; i++) {
		c = &e[i];
		switch (c->function) {
		case 1:
			c->ebx = (c->ebx & 0x0000ffffu) | (index << 24) |
				 ((logical > 255 ? 255 : logical) << 16);
			if (ncpus > 1)
				c->edx |= 1u << 28;    /* HTT: multi-core package */
			else
				c->edx &= ~(1u << 28);
			c->ecx |= 1u << 31;            /* running under a hypervisor */
			if (tsc_deadline)
				c->ecx |= 1u << 24;
			else
				c->ecx &= ~(1u << 24);
			break;
		case 4:
			if ((c->eax & 0x1f) == 0)      /* no more cache levels */
				break;
			c->eax &= 0x3ffu;              /* keep type, level, flags */
			c->eax |= ((logical - 1) & 0x3f) << 26;
			/* L1/L2 per core, L3 shared by the package. */
			if (((c->eax >> 5) & 7) >= 3)
				c->eax |= ((logical - 1) & 0xfff) << 14;
			break;
		case 6:
			c->ecx &= ~(1u << 3);          /* no energy/perf bias MSR */
			break;
		case 0xb:
			cpuid_topology_leaf(c, index, ncpus);
			break;
		case 0x1f:
			cpuid_topology_leaf(c, index, ncpus);
			break;
		case 0x80000001:
			c->ecx &= ~(1u << 1);          /* CmpLegacy off: cores, not HT */
			break;
		case 0x80000008:
			c->ecx = (c->ecx & ~0xf0ffu) | (shift << 12) | ((ncpus - 1) & 0xff);
			break;
		case 0x8000001e:
			c->eax = index;
			c->ebx = (c->ebx & ~0xffffu) | (index & 0xff);
			c->ecx = 0;
			break;
		case 0x40000000:
			c->eax = 0x40000010;
			break;
		}
	}
	cpuid_xsave_coherent(e, n);
	/* KVM's signature leaf; some hosts leave it out. */
	if (!cpuid_find(e, n, 0x40000000, 0) && n < cap) {
		c = &e[n++];
		memset(c, 0, sizeof(*c));
		c->function = 0x40000000;
		c->eax = 0x40000010;
		memcpy(&c->ebx, "KVMK", 4);
		memcpy(&c->ecx, "VMKV", 4);
		memcpy(&c->edx, "M\0\0\0", 4);
	}
	/* Timing leaf: TSC and LAPIC bus frequencies in kHz. */
	c = cpuid_find(e, n, 0x40000010, 0);
	if (!c && n < cap) {
		c = &e[n++];
		memset(c, 0, sizeof(*c));
		c->function = 0x40000010;
	}
	if (c) {
		c->eax = tsc_khz;
		c->ebx = 1000000;              /* KVM's LAPIC timer runs at 1 GHz */
		c->ecx = c->edx = 0;
	}
	return n;
}
