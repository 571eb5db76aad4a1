/* vCPU threads: one per vCPU, each looping on KVM_RUN and dispatching
 * port/MMIO exits to the buses.  A vCPU that hits a fatal exit reports one
 * line plus a register dump and asks the VM to stop.  A vCPU knows its VM
 * only through struct vcpu_env. */
#ifndef VIREO_VMM_VCPU_H
#define VIREO_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct gmem;
struct runstate;

struct vcpu_env {
	int vm_fd;
	size_t run_size;                 /* KVM_GET_VCPU_MMAP_SIZE */
	struct bus *pio, *mmio;
	const struct gmem *mem;          /* register dumps walk page tables */
	struct runstate *rs;
	uint64_t start_ns;               /* process start, for log lines */
	/* Around the handling of every exit (may be NULL). */
	void (*exit_begin)(void *opaque);
	void (*exit_end)(void *opaque);
	void *exit_opaque;
};

/* Exit reasons counted per vCPU (GET /metrics). */
enum vcpu_exit {
	VCPU_EXIT_IO,          /* port I/O */
	VCPU_EXIT_MMIO,
	VCPU_EXIT_INTR,        /* KVM_EXIT_INTR, or KVM_RUN interrupted (kicks) */
	VCPU_EXIT_HLT,
	VCPU_EXIT_SHUTDOWN,
	VCPU_EXIT_SYSTEM_EVENT,
	VCPU_EXIT_OTHER,       /* fail entry, internal error, unknown */
	VCPU_EXIT_NR
};

/*
 * Counters of one vCPU: written only by its own thread (a relaxed load and
 * store, no locked instruction), read by any thread (GET /metrics).
 */
struct vcpu_stats {
	_Atomic uint64_t exits[VCPU_EXIT_NR];
	_Atomic uint64_t run_ns;         /* time inside KVM_RUN */
};

struct vcpu {
	const struct vcpu_env *env;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	bool pause_ready;                /* KVM_RUN returned since the pause was asked */
	unsigned dumped_gen;             /* last runstate dump_gen handled */
	struct vcpu_stats stats;
};

/* Read @v's counters (any thread). */
void vcpu_get_stats(const struct vcpu *v, uint64_t exits[VCPU_EXIT_NR], uint64_t *run_ns);

int vcpu_create(const struct vcpu_env *env, unsigned index, struct vcpu **out);
void vcpu_destroy(struct vcpu *v);
int vcpu_start(struct vcpu *v);
/* Make KVM_RUN return and keep it from re-entering (any thread). */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
/* Signal used to kick vCPU threads out of KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

#endif
