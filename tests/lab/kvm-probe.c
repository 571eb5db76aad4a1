/*
 * kvm-probe: check that /dev/kvm really runs guest code.
 *
 * Creates a VM with 64 KiB of RAM at guest address 0, loads a few real-mode
 * instructions at 0x1000 and runs one vCPU through them, checking every
 * exit on the way:
 *
 *   mov al, 0x5a ; out 0x10, al          -> KVM_EXIT_IO, port 0x10, 1 byte, 0x5a
 *   mov ax, 0x1234 ; add ax, 0x0101
 *   out 0x11, ax                         -> KVM_EXIT_IO, port 0x11, 2 bytes, 0x1335
 *   mov byte [0x8000:0x0010], 0xa5      -> KVM_EXIT_MMIO at 0x80010, write 0xa5
 *                                          (outside RAM)
 *   mov bx, 0x7777 ; hlt                 -> KVM_EXIT_HLT, then bx == 0x7777
 *
 * Used by the lab self-test (scenario lab-kvm, inside the outer VM) and as a
 * meson test on the host's /dev/kvm. Exit 0 when every step matched, 1 on a
 * mismatch (the message names the step, what was expected and what came),
 * 77 when there is no /dev/kvm (meson's "skipped").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PROBE_RAM_SIZE 0x10000u
#define PROBE_CODE_GPA 0x1000u

struct probe {
	int kvm;
	int vm;
	int vcpu;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *ram;
};

static const uint8_t probe_code[] = {
	0xb0, 0x5a,                   /* mov al, 0x5a */
	0xe6, 0x10,                   /* out 0x10, al */
	0xb8, 0x34, 0x12,             /* mov ax, 0x1234 */
	0x05, 0x01, 0x01,             /* add ax, 0x0101 */
	0xe7, 0x11,                   /* out 0x11, ax */
	0xb8, 0x00, 0x80,             /* mov ax, 0x8000 */
	0x8e, 0xd8,                   /* mov ds, ax */
	0xc6, 0x06, 0x10, 0x00, 0xa5, /* mov byte [0x0010], 0xa5 */
	0xbb, 0x77, 0x77,             /* mov bx, 0x7777 */
	0xf4,                         /* hlt */
};

static int probe_fail(const char *step, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int probe_fail(const char *step, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "kvm-probe: FAIL at %s: ", step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static const char *probe_exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	default: return "other";
	}
}

static int probe_setup(struct probe *p)
{
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int version, mmap_size;

	version = ioctl(p->kvm, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION)
		return probe_fail("KVM_GET_API_VERSION", "got %d, want %d", version, KVM_API_VERSION);
	p->vm = ioctl(p->kvm, KVM_CREATE_VM, 0);
	if (p->vm < 0)
		return probe_fail("KVM_CREATE_VM", "%s", strerror(errno));

	p->ram = mmap(NULL, PROBE_RAM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->ram == MAP_FAILED)
		return probe_fail("mmap guest RAM", "%s", strerror(errno));
	memcpy(p->ram + PROBE_CODE_GPA, probe_code, sizeof(probe_code));
	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = PROBE_RAM_SIZE;
	region.userspace_addr = (uintptr_t)p->ram;
	if (ioctl(p->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return probe_fail("KVM_SET_USER_MEMORY_REGION", "%s", strerror(errno));

	p->vcpu = ioctl(p->vm, KVM_CREATE_VCPU, 0);
	if (p->vcpu < 0)
		return probe_fail("KVM_CREATE_VCPU", "%s", strerror(errno));
	mmap_size = ioctl(p->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run))
		return probe_fail("KVM_GET_VCPU_MMAP_SIZE", "got %d", mmap_size);
	p->run_size = (size_t)mmap_size;
	p->run = mmap(NULL, p->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, p->vcpu, 0);
	if (p->run == MAP_FAILED)
		return probe_fail("mmap kvm_run", "%s", strerror(errno));

	if (ioctl(p->vcpu, KVM_GET_SREGS, &sregs) < 0)
		return probe_fail("KVM_GET_SREGS", "%s", strerror(errno));
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	if (ioctl(p->vcpu, KVM_SET_SREGS, &sregs) < 0)
		return probe_fail("KVM_SET_SREGS", "%s", strerror(errno));
	memset(&regs, 0, sizeof(regs));
	regs.rip = PROBE_CODE_GPA;
	regs.rflags = 0x2;
	if (ioctl(p->vcpu, KVM_SET_REGS, &regs) < 0)
		return probe_fail("KVM_SET_REGS", "%s", strerror(errno));
	return 0;
}

/* Run until the next exit; KVM_EXIT_INTR (a signal) just runs again. */
static int probe_run(struct probe *p, const char *step, uint32_t want)
{
	for (;;) {
		if (ioctl(p->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			return probe_fail(step, "KVM_RUN: %s", strerror(errno));
		}
		if (p->run->exit_reason == KVM_EXIT_INTR)
			continue;
		break;
	}
	if (p->run->exit_reason != want)
		return probe_fail(step, "exit reason %u (%s), want %u (%s)",
				  p->run->exit_reason, probe_exit_name(p->run->exit_reason),
				  want, probe_exit_name(want));
	return 0;
}

static int probe_expect_out(struct probe *p, const char *step, uint16_t port,
			    uint8_t size, uint32_t value)
{
	uint32_t got = 0;

	if (probe_run(p, step, KVM_EXIT_IO))
		return 1;
	if (p->run->io.direction != KVM_EXIT_IO_OUT || p->run->io.port != port ||
	    p->run->io.size != size || p->run->io.count != 1)
		return probe_fail(step, "io dir %u port 0x%x size %u count %u, want out port 0x%x size %u count 1",
				  p->run->io.direction, p->run->io.port, p->run->io.size,
				  p->run->io.count, port, size);
	if (p->run->io.data_offset > p->run_size - size)
		return probe_fail(step, "io data offset %llu outside kvm_run (%zu bytes)",
				  (unsigned long long)p->run->io.data_offset, p->run_size);
	memcpy(&got, (uint8_t *)p->run + p->run->io.data_offset, size);
	if (got != value)
		return probe_fail(step, "value 0x%x, want 0x%x", got, value);
	return 0;
}

static int probe_steps(struct probe *p)
{
	struct kvm_regs regs;

	if (probe_expect_out(p, "out 0x10, al", 0x10, 1, 0x5a))
		return 1;
	if (probe_expect_out(p, "out 0x11, ax", 0x11, 2, 0x1335))
		return 1;
	if (probe_run(p, "mov [0x80010], 0xa5", KVM_EXIT_MMIO))
		return 1;
	if (!p->run->mmio.is_write || p->run->mmio.phys_addr != 0x80010 ||
	    p->run->mmio.len != 1 || p->run->mmio.data[0] != 0xa5)
		return probe_fail("mov [0x80010], 0xa5",
				  "mmio %s at 0x%llx len %u data 0x%x, want write at 0x80010 len 1 data 0xa5",
				  p->run->mmio.is_write ? "write" : "read",
				  (unsigned long long)p->run->mmio.phys_addr, p->run->mmio.len,
				  p->run->mmio.data[0]);
	if (probe_run(p, "hlt", KVM_EXIT_HLT))
		return 1;
	if (ioctl(p->vcpu, KVM_GET_REGS, &regs) < 0)
		return probe_fail("KVM_GET_REGS", "%s", strerror(errno));
	if ((regs.rbx & 0xffff) != 0x7777)
		return probe_fail("registers after hlt", "bx 0x%llx, want 0x7777",
				  (unsigned long long)regs.rbx);
	if (regs.rip != PROBE_CODE_GPA + sizeof(probe_code))
		return probe_fail("registers after hlt", "rip 0x%llx, want 0x%zx",
				  (unsigned long long)regs.rip, PROBE_CODE_GPA + sizeof(probe_code));
	return 0;
}

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "/dev/kvm";
	struct probe p = { .kvm = -1, .vm = -1, .vcpu = -1 };
	int rc;

	p.kvm = open(dev, O_RDWR | O_CLOEXEC);
	if (p.kvm < 0) {
		fprintf(stderr, "kvm-probe: cannot open %s: %s%s\n", dev, strerror(errno),
			errno == ENOENT ? " (no KVM here: skipped)" : "");
		return errno == ENOENT ? 77 : 1;
	}
	rc = probe_setup(&p);
	if (rc == 0)
		rc = probe_steps(&p);
	if (rc == 0)
		printf("kvm-probe: ok: %s ran %zu bytes of guest code: 2 port writes, 1 MMIO write, HLT\n",
		       dev, sizeof(probe_code));
	if (p.run && p.run != MAP_FAILED)
		munmap(p.run, p.run_size);
	if (p.ram && p.ram != MAP_FAILED)
		munmap(p.ram, PROBE_RAM_SIZE);
	if (p.vcpu >= 0)
		close(p.vcpu);
	if (p.vm >= 0)
		close(p.vm);
	close(p.kvm);
	return rc;
}
