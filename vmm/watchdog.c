#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <vireo/util.h>

#include "filters.h"
#include "runstate.h"
#include "watchdog.h"

static void watchdog_expired(struct watchdog *w, int signo)
{
	verr("the VM did not stop within %u ms of %s: flushing disks and exiting",
	     w->grace_ms, strsignal(signo));
	if (w->emergency)
		w->emergency(w->opaque);
	sync();
	_exit(128 + signo);
}

static void *watchdog_thread(void *arg)
{
	struct watchdog *w = arg;
	uint64_t deadline = 0;
	int stop_sig = 0;

	pthread_setname_np(pthread_self(), "watchdog");
	if (filters_enter(VMM_ROLE_WATCHDOG))
		runstate_request_stop(w->rs, VM_STOP_ERROR, 1);   /* it said why */
	for (;;) {
		struct pollfd p[2] = { { w->sig_fd, POLLIN, 0 }, { w->quit_efd, POLLIN, 0 } };
		int timeout = -1;
		struct signalfd_siginfo si;

		if (deadline) {
			uint64_t now = vtime_ns();

			if (now >= deadline)
				watchdog_expired(w, stop_sig);
			timeout = (int)((deadline - now) / 1000000u) + 1;
		}
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN) ||
		    read(w->sig_fd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGUSR2 || si.ssi_signo == SIGQUIT) {
			uint8_t b = (uint8_t)si.ssi_signo;

			if (write(w->fwd[1], &b, 1) < 0) {
				/* pipe full: the loop is behind; drop the request */
			}
			continue;
		}
		runstate_request_stop(w->rs, VM_STOP_SIGNAL, (int)si.ssi_signo);
		if (!deadline) {
			atomic_store(&w->stop_sig, (int)si.ssi_signo);
			stop_sig = (int)si.ssi_signo;
			deadline = vtime_ns() + (uint64_t)w->grace_ms * 1000000u;
		}
	}
	return NULL;
}

void watchdog_signals(sigset_t *set)
{
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGQUIT);
}

int watchdog_start(struct watchdog *w, struct runstate *rs, unsigned grace_ms,
		   void (*emergency)(void *opaque), void *opaque)
{
	sigset_t set;
	int ret;

	memset(w, 0, sizeof(*w));
	w->rs = rs;
	w->grace_ms = grace_ms;
	w->emergency = emergency;
	w->opaque = opaque;
	w->fwd[0] = w->fwd[1] = -1;
	sigemptyset(&set);
	watchdog_signals(&set);
	w->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	w->quit_efd = eventfd(0, EFD_CLOEXEC);
	if (w->sig_fd < 0 || w->quit_efd < 0 || pipe2(w->fwd, O_CLOEXEC | O_NONBLOCK) < 0) {
		ret = -errno;
		watchdog_stop(w);
		return ret;
	}
	ret = pthread_create(&w->thread, NULL, watchdog_thread, w);
	if (ret) {
		watchdog_stop(w);
		return -ret;
	}
	w->started = true;
	return 0;
}

void watchdog_stop(struct watchdog *w)
{
	uint64_t one = 1;

	if (w->started) {
		if (write(w->quit_efd, &one, sizeof(one)) < 0) {
			/* cannot fail on a fresh eventfd */
		}
		pthread_join(w->thread, NULL);
		w->started = false;
	}
	if (w->sig_fd > 0)
		close(w->sig_fd);
	if (w->quit_efd > 0)
		close(w->quit_efd);
	for (int i = 0; i < 2; i++)
		if (w->fwd[i] > 0)
			close(w->fwd[i]);
	w->sig_fd = w->quit_efd = w->fwd[0] = w->fwd[1] = -1;
}
