/* Per-vCPU x86 set-up: CPUID, MSRs, FPU, LAPIC LINT pins, and the entry
 * registers for the boot vCPU (64-bit with identity paging, or PVH 32-bit). */
#ifndef VIREO_VMM_X86_CPU_H
#define VIREO_VMM_X86_CPU_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../gmem.h"
#include "boot.h"

struct kvm_cpuid2;

/* What every vCPU of a VM shares. */
struct cpu_cfg {
	const struct kvm_cpuid2 *supported;   /* KVM_GET_SUPPORTED_CPUID */
	unsigned ncpus;
	uint32_t tsc_khz;                     /* 0: unknown */
	bool tsc_deadline;                    /* KVM emulates the TSC deadline timer */
};

/* Set CPUID, MSRs, FPU and LAPIC of vCPU fd index. */
int cpu_init(const struct cpu_cfg *cfg, int vcpu_fd, unsigned index);
/* Page tables and GDT in guest memory (for BOOT_MODE_LINUX64). */
void cpu_write_boot_tables(struct gmem *m);
/* Entry registers of the boot vCPU. */
int cpu_set_entry(int vcpu_fd, const struct boot_entry *e);
/* One-paragraph register dump for error reports; with guest RAM m and
 * 64-bit paging on, also the guest's own page walk of RIP, RSP and CR2
 * (x86/pagewalk.h), one line each. */
void cpu_dump(int vcpu_fd, const struct gmem *m, FILE *f);

#endif
