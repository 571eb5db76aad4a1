/*
 * The VM: KVM's VM and vCPU file descriptors, guest RAM, the two buses, the
 * event loop, and what lives on them (the console, devices.h's devices).
 * Threads: one per vCPU (vcpu.c) and the main thread running the epoll
 * event loop (loop.c), which handles signals and stop requests.  Nothing
 * below vm.c sees struct vm: vCPUs get a struct vcpu_env, devices a struct
 * dev_env.
 */
#ifndef VIREO_VMM_VM_H
#define VIREO_VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "console.h"
#include "devenv.h"
#include "devices.h"
#include "gmem.h"
#include "irq.h"
#include "options.h"
#include "runstate.h"
#include "vcpu.h"
#include "watchdog.h"
#include "x86/cpu.h"

struct evloop;

struct vm_mem {
	uint8_t *reservation;   /* whole PROT_NONE reservation incl. guards */
	size_t reservation_len;
};

struct vm {
	const struct vmm_opts *opts;
	int kvm_fd, vm_fd;
	bool kvm_ready;   /* vm_fd came from vm_prepare, TSS, irqchip and PIT made */
	size_t run_size;
	struct gmem mem;
	struct vm_mem mem_map;
	unsigned ncpus;
	struct vcpu **vcpus;
	struct bus pio, mmio;
	struct evloop *loop;
	struct runstate rs;
	uint64_t start_ns;               /* process start (boot timer, logs) */
	struct cpu_cfg cpu;
	struct kvm_cpuid2 *supported_cpuid;
	uint32_t *apic_ids;
	struct irq_ctl irq;
	struct dev_env env;              /* what devices get */
	struct vcpu_env vcpu_env;        /* what vCPUs get */
	struct console console;
	struct devices dev;
	struct watchdog wd;              /* signals; the stop deadline */
	uint64_t rsdp_gpa;
	/* vm_call(): one request from another thread at a time, run by the
	 * event loop (call_fd wakes it).  call_lock is a leaf. */
	int call_fd;
	pthread_mutex_t call_lock;
	pthread_cond_t call_cond;
	struct vm_call *call;
	struct vm_call *call_running;    /* the loop's own: the one it runs */
	bool call_closed;                /* the loop has ended */
};

/* Create the VM: KVM fds, memory, irqchip, devices, vCPUs.  On failure
 * prints one error line and returns -errno (vm_destroy still required). */
int vm_create(struct vm *vm, const struct vmm_opts *opts, uint64_t start_ns);
/* Make the KVM VM (KVM_CREATE_VM) that the next vm_create of this process
 * takes, ahead of it: a migration target's, before its stream (in the
 * nested lab a VM takes tens of ms to make).  Failures are left for
 * vm_create to meet and report. */
void vm_prepare(void);
/* Load the kernel and set the boot vCPU's registers (--restore: load the
 * saved state instead, snapshot.h). */
int vm_load(struct vm *vm);
/* Run until the guest or a signal stops it; returns the enum vm_stop.
 * From here until vm_destroy() has returned, a stop signal that is not
 * followed by a finished teardown within WATCHDOG_GRACE_MS ends the
 * process (watchdog.h). */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);
/* --verbose: "start-up: @what done at N ms" (ms since @start_ns), for each
 * start-up step, in main.c before the VM and in vm.c for its own. */
void vm_start_phase(uint64_t start_ns, const char *what);

/* The control API (any thread but a vCPU's, while vm_run runs): park
 * every vCPU out of KVM_RUN and return once all are (0), or let them go
 * on.  -EALREADY when already in that state, -ESHUTDOWN when the VM is
 * stopping, -ETIMEDOUT (pause: not all vCPUs parked within @timeout_ms;
 * the VM runs on).  Takes only the runstate's pause lock. */
int vm_pause(struct vm *vm, unsigned timeout_ms);
int vm_resume(struct vm *vm);
/*
 * Run @fn(@vm, @arg) on the event loop and return its result (the control
 * API's thread: device work raises interrupts with KVM ioctls, which only
 * the VM's own threads' filters allow).  -ESHUTDOWN when the loop has
 * ended or ends first.  The caller blocks, the loop does not; @fn runs
 * with no lock held, as any loop handler.
 */
struct vm_call;
int vm_call(struct vm *vm, int (*fn)(struct vm *vm, void *arg), void *arg);
/* From within a vm_call's function, on the loop: the caller's vm_call
 * returns @result now, while the function goes on (what it returns then
 * is dropped).  For a function that holds the loop, all its devices
 * still, until the caller has done something and says so (migrate.c's
 * last pass). */
void vm_call_answer(struct vm *vm, int result);

#endif
