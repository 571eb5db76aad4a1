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

unsigned cpuid_fixup(struct kvm_cpuid_entry2 *e, unsigned n, unsigned cap,
		     unsigned index, unsigned ncpus, uint32_t tsc_khz)
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
