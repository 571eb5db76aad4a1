#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vireo/util.h>

#include "bus.h"
#include "filters.h"
#include "runstate.h"
#include "vcpu.h"
#include "x86/cpu.h"

int vcpu_create(const struct vcpu_env *env, unsigned index, struct vcpu **out)
{
	struct vcpu *v = calloc(1, sizeof(*v));
	int ret;

	if (!v)
		return -ENOMEM;
	v->env = env;
	v->index = index;
	v->fd = ioctl(env->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0) {
		ret = -errno;
		verr("cannot create vCPU %u: %s", index, strerror(errno));
		free(v);
		return ret;
	}
	v->run = mmap(NULL, env->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		ret = -errno;
		verr("cannot map the run area of vCPU %u: %s", index, strerror(errno));
		close(v->fd);
		free(v);
		return ret;
	}
	*out = v;
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	munmap(v->run, v->env->run_size);
	close(v->fd);
	free(v);
}

/* Print this vCPU's registers if a dump was asked for since its last one
 * (SIGQUIT, or another vCPU's crash); returns whether it printed. */
static bool vcpu_dump_if_asked(struct vcpu *v, const char *when)
{
	unsigned gen = atomic_load(&v->env->rs->dump_gen);

	if (gen == v->dumped_gen)
		return false;
	v->dumped_gen = gen;
	vinfo("vCPU %u state %s:", v->index, when);
	cpu_dump(v->fd, v->env->mem, stderr);
	return true;
}

static void vcpu_fatal(struct vcpu *v, const char *fmt, ...) VIREO_PRINTF(2, 3);
static void vcpu_fatal(struct vcpu *v, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (runstate_stopping(v->env->rs))
		return;
	verr("vCPU %u: %s", v->index, msg);
	cpu_dump(v->fd, v->env->mem, stderr);
	/* The other vCPUs print where they were as they stop. */
	v->dumped_gen = atomic_fetch_add(&v->env->rs->dump_gen, 1) + 1;
	runstate_request_stop(v->env->rs, VM_STOP_ERROR, 1);
}

static void vcpu_exit_begin(struct vcpu *v)
{
	if (v->env->exit_begin)
		v->env->exit_begin(v->env->exit_opaque);
}

static void vcpu_io(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	bool wr = r->io.direction == KVM_EXIT_IO_OUT;

	if (r->io.size == 0 || r->io.size > 4 ||
	    r->io.data_offset + (uint64_t)r->io.size * r->io.count > v->env->run_size)
		return;
	for (unsigned i = 0; i < r->io.count; i++, data += r->io.size) {
		if (!bus_access(v->env->pio, r->io.port, data, r->io.size, wr))
			vdebug("vCPU %u: unclaimed port %s 0x%x size %u", v->index,
			       wr ? "write" : "read", r->io.port, r->io.size);
	}
}

static void vcpu_mmio(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	unsigned len = r->mmio.len;

	if (len == 0 || len > 8)
		return;
	if (!bus_access(v->env->mmio, r->mmio.phys_addr, r->mmio.data, len,
			r->mmio.is_write))
		vdebug("vCPU %u: unclaimed MMIO %s 0x%llx size %u", v->index,
		       r->mmio.is_write ? "write" : "read", r->mmio.phys_addr, len);
}

/* The owner thread's increment: no other thread writes these. */
static inline void vcpu_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static enum vcpu_exit vcpu_exit_kind(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return VCPU_EXIT_IO;
	case KVM_EXIT_MMIO: return VCPU_EXIT_MMIO;
	case KVM_EXIT_INTR: return VCPU_EXIT_INTR;
	case KVM_EXIT_HLT: return VCPU_EXIT_HLT;
	case KVM_EXIT_SHUTDOWN: return VCPU_EXIT_SHUTDOWN;
	case KVM_EXIT_SYSTEM_EVENT: return VCPU_EXIT_SYSTEM_EVENT;
	default: return VCPU_EXIT_OTHER;
	}
}

void vcpu_get_stats(const struct vcpu *v, uint64_t exits[VCPU_EXIT_NR], uint64_t *run_ns)
{
	for (unsigned i = 0; i < VCPU_EXIT_NR; i++)
		exits[i] = atomic_load_explicit(&v->stats.exits[i], memory_order_relaxed);
	*run_ns = atomic_load_explicit(&v->stats.run_ns, memory_order_relaxed);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct kvm_run *r = v->run;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (filters_enter(VMM_ROLE_VCPU)) {
		vcpu_fatal(v, "no system call filter: not running the guest");
		return NULL;
	}

	if (v->index == 0)
		vdebug("entering the guest %.3f ms after start",
		       (double)(vtime_ns() - v->env->start_ns) / 1e6);
	while (!runstate_stopping(v->env->rs)) {
		if (vcpu_dump_if_asked(v, "(SIGQUIT)")) {
			/* The kick that asked for it set immediate_exit. */
			v->run->immediate_exit = 0;
			if (runstate_stopping(v->env->rs))
				break;  /* a stop's kick may have been undone */
		}
		if (runstate_pause_asked(v->env->rs)) {
			if (v->pause_ready) {
				/* Paused (the control API): out of KVM_RUN
				 * until resumed. */
				runstate_park(v->env->rs);
				v->run->immediate_exit = 0;
				v->pause_ready = false;
				continue;   /* a stop or a new pause is checked again */
			}
			/* KVM finishes the exit handled last (an IN's or MMIO
			 * read's data into the registers, RIP past an OUT) only
			 * in the next KVM_RUN: one with immediate_exit does that
			 * and returns without running the guest, so that a
			 * parked vCPU's registers are whole (PUT /vm/save). */
			v->run->immediate_exit = 1;
		}
		uint64_t t0 = vtime_ns();
		int rr = ioctl(v->fd, KVM_RUN, 0);
		int rerr = errno;

		vcpu_count(&v->stats.run_ns, vtime_ns() - t0);
		if (rr < 0) {
			errno = rerr;
			if (errno == EINTR || errno == EAGAIN) {
				vcpu_count(&v->stats.exits[VCPU_EXIT_INTR], 1);
				if (runstate_pause_asked(v->env->rs))
					v->pause_ready = true;
				vcpu_exit_begin(v);
				continue;
			}
			vcpu_fatal(v, "KVM_RUN failed: %s", strerror(errno));
			break;
		}
		v->pause_ready = false;   /* an exit to handle first */
		vcpu_count(&v->stats.exits[vcpu_exit_kind(r->exit_reason)], 1);
		vcpu_exit_begin(v);
		switch (r->exit_reason) {
		case KVM_EXIT_IO:
			vcpu_io(v);
			break;
		case KVM_EXIT_MMIO:
			vcpu_mmio(v);
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_HLT:
			/* Only without an in-kernel LAPIC: treat as power off. */
			runstate_request_stop(v->env->rs, VM_STOP_POWEROFF, 0);
			break;
		case KVM_EXIT_SHUTDOWN:
			vcpu_fatal(v, "triple fault (KVM_EXIT_SHUTDOWN): the guest crashed");
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			if (r->system_event.type == KVM_SYSTEM_EVENT_RESET)
				runstate_request_stop(v->env->rs, VM_STOP_REBOOT, 0);
			else if (r->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
				runstate_request_stop(v->env->rs, VM_STOP_POWEROFF, 0);
			else
				vcpu_fatal(v, "system event %u", r->system_event.type);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			vcpu_fatal(v, "KVM entry failed (hardware reason 0x%llx)",
				   (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			vcpu_fatal(v, "KVM internal error (suberror %u%s)",
				   r->internal.suberror,
				   r->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
				   ": instruction emulation failed" : "");
			break;
		default:
			vcpu_fatal(v, "unhandled KVM exit reason %u", r->exit_reason);
			break;
		}
		if (v->env->exit_end)
			v->env->exit_end(v->env->exit_opaque);
	}
	vcpu_dump_if_asked(v, "when the VM stopped");
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	int ret = pthread_create(&v->thread, NULL, vcpu_thread, v);

	if (ret) {
		verr("cannot start the thread of vCPU %u: %s", v->index, strerror(ret));
		return -ret;
	}
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	v->run->immediate_exit = 1;
	if (v->started)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (v->started) {
		pthread_join(v->thread, NULL);
		v->started = false;
	}
}
