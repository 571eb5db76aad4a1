#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "runstate.h"

int runstate_init(struct runstate *rs)
{
	pthread_condattr_t ca;

	memset(rs, 0, sizeof(*rs));
	pthread_mutex_init(&rs->pause_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rs->parked_cond, &ca);
	pthread_cond_init(&rs->resume_cond, &ca);
	pthread_condattr_destroy(&ca);
	rs->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return rs->efd < 0 ? -errno : 0;
}

void runstate_destroy(struct runstate *rs)
{
	if (rs->efd >= 0) {
		close(rs->efd);
		pthread_cond_destroy(&rs->parked_cond);
		pthread_cond_destroy(&rs->resume_cond);
		pthread_mutex_destroy(&rs->pause_lock);
	}
	rs->efd = -1;
}

void runstate_park(struct runstate *rs)
{
	pthread_mutex_lock(&rs->pause_lock);
	rs->parked++;
	pthread_cond_broadcast(&rs->parked_cond);
	while (atomic_load(&rs->paused) && !runstate_stopping(rs))
		pthread_cond_wait(&rs->resume_cond, &rs->pause_lock);
	rs->parked--;
	pthread_cond_broadcast(&rs->parked_cond);
	pthread_mutex_unlock(&rs->pause_lock);
}

int runstate_wait_parked(struct runstate *rs, unsigned n, unsigned timeout_ms)
{
	struct timespec dl;
	int r = 0;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&rs->pause_lock);
	while (rs->parked < n && !runstate_stopping(rs) && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&rs->parked_cond, &rs->pause_lock, &dl);
	if (runstate_stopping(rs))
		r = -ESHUTDOWN;
	else if (rs->parked >= n)
		r = 0;
	else
		r = -ETIMEDOUT;
	pthread_mutex_unlock(&rs->pause_lock);
	return r;
}

void runstate_wake_parked(struct runstate *rs)
{
	pthread_mutex_lock(&rs->pause_lock);
	pthread_cond_broadcast(&rs->resume_cond);
	pthread_mutex_unlock(&rs->pause_lock);
}

void runstate_request_stop(struct runstate *rs, enum vm_stop why, int status)
{
	int expected = VM_RUNNING;
	uint64_t one = 1;

	if (atomic_compare_exchange_strong(&rs->stop, &expected, (int)why)) {
		rs->status = status;
		if (write(rs->efd, &one, sizeof(one)) < 0) {
			/* an eventfd counter cannot overflow here */
		}
		/* Parked vCPUs and a waiting pauser see the stop. */
		runstate_wake_parked(rs);
		pthread_mutex_lock(&rs->pause_lock);
		pthread_cond_broadcast(&rs->parked_cond);
		pthread_mutex_unlock(&rs->pause_lock);
	}
}
