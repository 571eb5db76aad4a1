/*
 * CPUID for each vCPU: start from KVM_GET_SUPPORTED_CPUID and make the
 * topology coherent for N vCPUs (one socket, N cores, one thread per core;
 * APIC id = vCPU index), add the KVM paravirt leaves with the TSC frequency.
 */
#ifndef VIREO_VMM_X86_CPUID_H
#define VIREO_VMM_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define CPUID_MAX_ENTRIES 256

/* Rewrite the entries in place for vCPU index (APIC id) of ncpus; may add
 * entries (up to cap).  tsc_khz 0: unknown.  tsc_deadline: the in-kernel
 * LAPIC has the TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER; KVM does not
 * report it in the supported CPUID).  Returns the new count. */
unsigned cpuid_fixup(struct kvm_cpuid_entry2 *e, unsigned n, unsigned cap,
		     unsigned index, unsigned ncpus, uint32_t tsc_khz,
		     bool tsc_deadline);

/* Bits needed to hold n distinct ids (0 for n <= 1). */
unsigned cpuid_id_bits(unsigned n);

/* Find entry (function, index); NULL if absent. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid_entry2 *e, unsigned n,
				    uint32_t function, uint32_t index);

#endif
