/*
 * Whether the VM runs, and why it stopped.  Any thread may ask for a stop
 * (a vCPU on a guest power-off, the event loop on a signal); the first
 * request wins and wakes the event loop through an eventfd.  It also
 * carries the generation counter of register-dump requests (SIGQUIT, or
 * a vCPU's crash): each vCPU prints its state once per generation.
 *
 * Pausing (the control API, api.h): the pauser sets `paused` and kicks the
 * vCPUs; each vCPU parks in runstate_park() before its next KVM_RUN and
 * stays there until resumed or stopping.  The pause lock is a leaf of the
 * lock order (vmm/README.md): nothing else is taken while holding it.
 */
#ifndef VIREO_VMM_RUNSTATE_H
#define VIREO_VMM_RUNSTATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Why the VM stopped; main() maps it to the exit status (see options.h). */
enum vm_stop {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,
	VM_STOP_REBOOT,
	VM_STOP_SIGNAL,
	VM_STOP_ERROR,
	VM_STOP_DEBUG_EXIT,
	VM_STOP_SAVED,          /* PUT /vm/save with "exit": true */
	VM_STOP_API_POWEROFF,   /* PUT /vm/poweroff */
};

struct runstate {
	_Atomic int stop;              /* enum vm_stop */
	int status;                    /* debug-exit value or signal number */
	int efd;                       /* eventfd, readable once stopping */
	_Atomic unsigned dump_gen;
	_Atomic bool paused;           /* vCPUs are to park */
	pthread_mutex_t pause_lock;    /* a leaf: guards parked, both conds */
	pthread_cond_t parked_cond;    /* parked changed (the pauser waits) */
	pthread_cond_t resume_cond;    /* paused cleared or stopping */
	unsigned parked;               /* vCPUs in runstate_park() */
};

/* Returns 0 or -errno. */
int runstate_init(struct runstate *rs);
void runstate_destroy(struct runstate *rs);

/* Ask the VM to stop (any thread).  The first request wins. */
void runstate_request_stop(struct runstate *rs, enum vm_stop why, int status);

/* A vCPU thread, before KVM_RUN, when runstate_pause_asked(): count
 * itself parked and wait until resumed or stopping. */
void runstate_park(struct runstate *rs);
static inline bool runstate_pause_asked(struct runstate *rs)
{
	return atomic_load(&rs->paused);
}
/* The pauser: wait until @n vCPUs are parked (0), the VM is stopping
 * (-ESHUTDOWN) or @timeout_ms passed (-ETIMEDOUT). */
int runstate_wait_parked(struct runstate *rs, unsigned n, unsigned timeout_ms);
/* Let parked vCPUs go on (the caller cleared `paused`). */
void runstate_wake_parked(struct runstate *rs);

static inline bool runstate_stopping(struct runstate *rs)
{
	return atomic_load(&rs->stop) != VM_RUNNING;
}

static inline enum vm_stop runstate_why(struct runstate *rs)
{
	return (enum vm_stop)atomic_load(&rs->stop);
}

#endif
