#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <vireo/util.h>

#include <linux/kvm.h>

#include "../layout.h"
#include "cpu.h"
#include "pagewalk.h"
#include "cpuid.h"

#define MSR_IA32_APICBASE         0x1b
#define MSR_IA32_SYSENTER_CS      0x174
#define MSR_IA32_SYSENTER_ESP     0x175
#define MSR_IA32_SYSENTER_EIP     0x176
#define MSR_IA32_MISC_ENABLE      0x1a0
#define MSR_MTRR_DEF_TYPE         0x2ff
#define MSR_STAR                  0xc0000081
#define MSR_LSTAR                 0xc0000082
#define MSR_CSTAR                 0xc0000083
#define MSR_SYSCALL_MASK          0xc0000084
#define MSR_KERNEL_GS_BASE        0xc0000102

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_EXTINT 0x7
#define APIC_MODE_NMI    0x4

static int cpu_set_cpuid(const struct cpu_cfg *cfg, int fd, unsigned index)
{
	const struct kvm_cpuid2 *sup = cfg->supported;
	struct kvm_cpuid2 *c;
	int ret = 0;

	c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	memcpy(c->entries, sup->entries, sup->nent * sizeof(c->entries[0]));
	c->nent = cpuid_fixup(c->entries, sup->nent, CPUID_MAX_ENTRIES, index,
			      cfg->ncpus, cfg->tsc_khz, cfg->tsc_deadline);
	if (ioctl(fd, KVM_SET_CPUID2, c) < 0) {
		ret = -errno;
		verr("KVM_SET_CPUID2 for vCPU %u failed: %s", index, strerror(errno));
	}
	free(c);
	return ret;
}

static int cpu_set_msrs(int fd, unsigned index)
{
	static const struct { uint32_t idx; uint64_t val; } init[] = {
		{ MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 }, { MSR_STAR, 0 }, { MSR_CSTAR, 0 },
		{ MSR_KERNEL_GS_BASE, 0 }, { MSR_SYSCALL_MASK, 0 }, { MSR_LSTAR, 0 },
		{ MSR_IA32_MISC_ENABLE, 1 },                 /* fast strings */
		{ MSR_MTRR_DEF_TYPE, (1u << 11) | 6 },       /* MTRRs on, WB */
	};
	size_t nr = VIREO_ARRAY_SIZE(init);
	struct kvm_msrs *m = calloc(1, sizeof(*m) + nr * sizeof(m->entries[0]));
	int n, ret = 0;

	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		m->entries[i].index = init[i].idx;
		m->entries[i].data = init[i].val;
	}
	m->nmsrs = (uint32_t)nr;
	n = ioctl(fd, KVM_SET_MSRS, m);
	if (n < 0)
		ret = -errno;
	else if ((unsigned)n != m->nmsrs)
		vdebug("vCPU %u: KVM accepted %d of %u boot MSRs (MSR 0x%x refused)",
		       index, n, m->nmsrs, m->entries[n].index);
	free(m);
	return ret;
}

static int cpu_set_fpu(int fd)
{
	struct kvm_fpu fpu;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	return ioctl(fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

static void lapic_set_lvt(struct kvm_lapic_state *l, unsigned reg, unsigned mode)
{
	uint32_t v;

	memcpy(&v, l->regs + reg, 4);
	v = (v & ~0x700u) | (mode << 8);
	memcpy(l->regs + reg, &v, 4);
}

static int cpu_set_lint(int fd)
{
	struct kvm_lapic_state l;

	if (ioctl(fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	lapic_set_lvt(&l, APIC_LVT0, APIC_MODE_EXTINT);
	lapic_set_lvt(&l, APIC_LVT1, APIC_MODE_NMI);
	return ioctl(fd, KVM_SET_LAPIC, &l) < 0 ? -errno : 0;
}

int cpu_init(const struct cpu_cfg *cfg, int fd, unsigned index)
{
	int ret;

	ret = cpu_set_cpuid(cfg, fd, index);
	if (ret)
		return ret;
	ret = cpu_set_msrs(fd, index);
	if (ret) {
		verr("KVM_SET_MSRS for vCPU %u failed: %s", index, strerror(-ret));
		return ret;
	}
	ret = cpu_set_fpu(fd);
	if (ret) {
		verr("KVM_SET_FPU for vCPU %u failed: %s", index, strerror(-ret));
		return ret;
	}
	ret = cpu_set_lint(fd);
	if (ret) {
		verr("setting the LAPIC LINT pins of vCPU %u failed: %s", index,
		     strerror(-ret));
		return ret;
	}
	return 0;
}

void cpu_write_boot_tables(struct gmem *m)
{
	uint64_t *gdt = gmem_ptr(m, LAYOUT_GDT, 4 * 8);
	uint64_t *pml4 = gmem_ptr(m, LAYOUT_PML4, 4096);
	uint64_t *pdpt = gmem_ptr(m, LAYOUT_PDPT, 4096);
	uint64_t *pd = gmem_ptr(m, LAYOUT_PD, 4 * 4096);

	gdt[0] = 0;
	gdt[1] = 0x00cf9b000000ffffULL;   /* 0x08: 32-bit code, flat */
	gdt[2] = 0x00af9b000000ffffULL;   /* 0x10: 64-bit code */
	gdt[3] = 0x00cf93000000ffffULL;   /* 0x18: data, flat */
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | 0x3;
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | 0x3;
	for (unsigned i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;   /* present, rw, 2 MiB */
}

static void cpu_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool l, bool db)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = db;
	s->s = 1;
	s->l = l;
	s->g = 1;
}

int cpu_set_entry(int fd, const struct boot_entry *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	bool lm = e->mode == BOOT_MODE_LINUX64;

	if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	cpu_seg(&sregs.cs, lm ? 0x10 : 0x08, 0xb, lm, !lm);
	cpu_seg(&sregs.ds, 0x18, 0x3, false, true);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = LAYOUT_GDT;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	/* A valid TSS keeps VMX entry checks happy. */
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.limit = 0xffff;
	sregs.tr.type = 0xb;
	sregs.tr.present = 1;
	if (lm) {
		sregs.cr0 = 0x80050033;            /* PG WP NE ET MP PE */
		sregs.cr3 = LAYOUT_PML4;
		sregs.cr4 = 0x20;                  /* PAE */
		sregs.efer = 0x500;                /* LME LMA */
	} else {
		sregs.cr0 = 0x11;                  /* PE ET */
		sregs.cr3 = 0;
		sregs.cr4 = 0;
		sregs.efer = 0;
	}
	if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 2;
	regs.rip = e->rip;
	regs.rsp = LAYOUT_STACK_TOP;
	if (lm)
		regs.rsi = e->arg;
	else
		regs.rbx = e->arg;
	return ioctl(fd, KVM_SET_REGS, &regs) < 0 ? -errno : 0;
}

void cpu_dump(int fd, const struct gmem *m, FILE *f)
{
	static const char *const names[3] = { "rip", "rsp", "cr2" };
	struct kvm_regs r;
	struct kvm_sregs s;
	uint64_t vas[3];
	char text[320];

	if (ioctl(fd, KVM_GET_REGS, &r) < 0 || ioctl(fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(f, "  (registers unavailable: %s)\n", strerror(errno));
		return;
	}
	fprintf(f,
		"  rip %016llx rflags %08llx rsp %016llx rbp %016llx\n"
		"  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
		"  rsi %016llx rdi %016llx r8  %016llx r9  %016llx\n"
		"  r10 %016llx r11 %016llx r12 %016llx r13 %016llx\n"
		"  r14 %016llx r15 %016llx\n"
		"  cs %04x (base %llx l %u db %u) ss %04x ds %04x\n"
		"  cr0 %llx cr2 %llx cr3 %llx cr4 %llx efer %llx\n"
		"  gdt %llx/%x idt %llx/%x\n",
		r.rip, r.rflags, r.rsp, r.rbp, r.rax, r.rbx, r.rcx, r.rdx,
		r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15,
		s.cs.selector, s.cs.base, s.cs.l, s.cs.db, s.ss.selector, s.ds.selector,
		s.cr0, s.cr2, s.cr3, s.cr4, s.efer,
		s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
	/* The page walks: only in long mode with paging (CR0.PG, EFER.LMA). */
	if (!(s.cr0 & (1ULL << 31)) || !(s.efer & (1ULL << 10)))
		return;
	vas[0] = r.rip;
	vas[1] = r.rsp;
	vas[2] = s.cr2;
	for (unsigned i = 0; i < 3; i++) {
		uint64_t gpa;

		pagewalk(m, s.cr3, (s.cr4 >> 12) & 1, vas[i], &gpa, text, sizeof(text));
		fprintf(f, "  walk %s %016llx: %s\n", names[i], (unsigned long long)vas[i], text);
	}
}
