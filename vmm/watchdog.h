/*
 * Signals and the stop deadline, on a thread of their own.
 *
 * SIGTERM, SIGINT and SIGHUP ask the VM to stop (status 128+N), SIGUSR2
 * (power button) and SIGQUIT (state dump) are passed to the event loop
 * through a pipe.  This thread never takes a device lock, so it works while
 * the event loop or a vCPU is stuck: if the VM has not finished tearing
 * down (disks flushed and closed) within the grace period after a stop
 * signal, it prints one line, runs the emergency hook (the terminal comes
 * back), flushes the host's page cache to disk with sync(2), so every guest
 * write that reached an image file is on disk, and ends the process with
 * status 128+N.
 */
#ifndef VIREO_VMM_WATCHDOG_H
#define VIREO_VMM_WATCHDOG_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

struct runstate;

#define WATCHDOG_GRACE_MS 20000u

struct watchdog {
	struct runstate *rs;
	unsigned grace_ms;
	int sig_fd;              /* signalfd of the signals above */
	int quit_efd;            /* watchdog_stop(): the thread ends */
	int fwd[2];              /* pipe: SIGUSR2/SIGQUIT numbers for the loop */
	pthread_t thread;
	bool started;
	_Atomic int stop_sig;    /* the first stop signal taken, or 0 */
	void (*emergency)(void *opaque);
	void *opaque;
};

/* The signals the watchdog takes (SIGTERM, SIGINT, SIGHUP, SIGUSR2,
 * SIGQUIT), added to set: they must be blocked in every thread. */
void watchdog_signals(sigset_t *set);

/* Start the thread (the signals must be blocked in every thread). */
int watchdog_start(struct watchdog *w, struct runstate *rs, unsigned grace_ms,
		   void (*emergency)(void *opaque), void *opaque);
/* The event loop watches this; each byte read is a signal number. */
static inline int watchdog_forward_fd(const struct watchdog *w)
{
	return w->fwd[0];
}
/* Teardown is over: cancel any deadline, end the thread (idempotent).
 * Afterwards stop_sig says whether a stop signal came, also one that came
 * after the VM had stopped for another reason (a reboot). */
void watchdog_stop(struct watchdog *w);

#endif
