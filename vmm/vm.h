/*
 * The VM context: one struct passed to every part of the VMM (no globals).
 * Threads: one per vCPU (vcpu.c) and the main thread running the epoll
 * event loop (loop.c) that owns the console and signal handling.
 */
#ifndef VIREO_VMM_VM_H
#define VIREO_VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "coalesce.h"
#include "console.h"
#include "gmem.h"
#include "options.h"

struct vcpu;
struct evloop;
struct ns16550;
struct i8042;
struct mc146818;
struct boot_timer;
struct pci_host;
struct acpi_pm;
struct virtio_vmm;

/* Why the VM stopped; main() maps it to the exit status (see options.h). */
enum vm_stop {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,
	VM_STOP_REBOOT,
	VM_STOP_SIGNAL,
	VM_STOP_ERROR,
	VM_STOP_DEBUG_EXIT,
};

struct vm_mem {
	uint8_t *reservation;   /* whole PROT_NONE reservation incl. guards */
	size_t reservation_len;
};

struct vm {
	const struct vmm_opts *opts;
	int kvm_fd, vm_fd;
	size_t run_size;
	struct gmem mem;
	struct vm_mem mem_map;
	unsigned ncpus;
	struct vcpu **vcpus;
	struct bus pio, mmio;
	struct evloop *loop;
	int stop_efd;                    /* eventfd: a vCPU asks main to stop */
	_Atomic int stop;                /* enum vm_stop */
	_Atomic unsigned dump_gen;       /* SIGQUIT: vCPUs dump their state */
	int stop_status;                 /* debug-exit value or signal */
	uint64_t start_ns;               /* process start (boot timer) */
	uint64_t tsc_khz;

	struct kvm_cpuid2 *supported_cpuid;
	uint32_t *apic_ids;

	struct console console;
	int console_wake_efd;            /* UART drained: read input again */
	struct coalesce coal;            /* queued COM1 transmit writes */
	int coal_tfd;                    /* timerfd: replay them (event loop) */
	_Atomic bool coal_fast;          /* timer at the fast rate */
	_Atomic bool coal_busy;          /* COM1 used since the last tick */
	struct ns16550 *uart;
	struct boot_timer *boot_timer;
	struct i8042 *i8042;
	struct mc146818 *rtc;
	struct pci_host *pci;
	struct acpi_pm *pm;
	struct virtio_vmm *virtio;        /* vmm/virtio/vmm.h */
	pthread_mutex_t pm_lock;
	uint64_t rsdp_gpa;
};

/* Create the VM: KVM fds, memory, irqchip, devices, vCPUs.  On failure
 * prints one error line and returns -errno (vm_destroy still required). */
int vm_create(struct vm *vm, const struct vmm_opts *opts, uint64_t start_ns);
/* Milliseconds since the process started (for log lines). */
double vm_ms_since_start(const struct vm *vm);
/* Load the kernel and set the boot vCPU's registers. */
int vm_load(struct vm *vm);
/* Run until the guest or a signal stops it; returns the enum vm_stop. */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Ask the VM to stop (any thread).  The first request wins. */
void vm_request_stop(struct vm *vm, enum vm_stop why, int status);
static inline bool vm_stopping(struct vm *vm)
{
	return atomic_load(&vm->stop) != VM_RUNNING;
}

/* Replay queued port writes now and write out the console (any thread). */
void vm_coal_drain(struct vm *vm);
/* vCPU threads: call before handling each exit (replays the queued port
 * writes, so the exit sees the guest's earlier writes done) and after it
 * (writes out console output held meanwhile). */
static inline void vm_exit_begin(struct vm *vm)
{
	if (coalesce_pending(&vm->coal))
		vm_coal_drain(vm);
}
static inline void vm_exit_end(struct vm *vm)
{
	console_flush(&vm->console);
}

/* Set the level of an ISA/IOAPIC interrupt line (GSI). */
int vm_irq_line(struct vm *vm, unsigned gsi, int level);
/* Press the ACPI power button (guest shuts down gracefully). */
void vm_power_button(struct vm *vm);

#endif
