/* virtio-rng: one request queue of writable buffers, filled by getrandom(). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <vireo/util.h>

#include "rng.h"

#define RNG_WAKE_BYTES 64u   /* wait for at least this many tokens */

struct virtio_rng {
	struct virtio_dev vdev;
	uint64_t rate;          /* bytes/s, 0 = unlimited */
	uint64_t tokens;        /* bytes we may hand out now */
	uint64_t last_ns;       /* last refill */
	uint64_t total;
	uint64_t (*clock)(void);
	int tfd;
	bool timer_armed;
	struct virtq_chain chain;
};

static struct virtio_rng *to_rng(struct virtio_dev *d)
{
	return (struct virtio_rng *)d;
}

static void rng_refill(struct virtio_rng *r)
{
	uint64_t now = r->clock(), elapsed, add;

	if (!r->rate)
		return;
	elapsed = now - r->last_ns;
	if (elapsed >= 1000000000ULL) {
		r->tokens = r->rate;
		r->last_ns = now;
		return;
	}
	add = (uint64_t)((unsigned __int128)elapsed * r->rate / 1000000000ULL);
	if (add == 0)
		return;
	/* Advance time only by what the tokens paid for, so fractions add
	 * up; the bucket holds one second's worth. */
	r->last_ns += (uint64_t)((unsigned __int128)add * 1000000000ULL / r->rate);
	r->tokens = VIREO_MIN(r->tokens + add, r->rate);
	if (r->tokens == r->rate)
		r->last_ns = now;
}

static void rng_arm_timer(struct virtio_rng *r)
{
	uint64_t need = VIREO_MIN((uint64_t)RNG_WAKE_BYTES, r->rate);
	uint64_t ns = (need - VIREO_MIN(need, r->tokens)) * 1000000000ULL / r->rate;
	struct itimerspec its = { 0 };

	if (r->tfd < 0 || r->timer_armed)
		return;
	if (ns == 0)
		ns = 1000;
	its.it_value.tv_sec = (time_t)(ns / 1000000000ULL);
	its.it_value.tv_nsec = (long)(ns % 1000000000ULL);
	if (timerfd_settime(r->tfd, 0, &its, NULL) == 0)
		r->timer_armed = true;
}

static size_t rng_fill(void *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = getrandom((char *)p + done, len - done, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		done += (size_t)n;
	}
	return done;
}

/* Fill up to want bytes of the chain's writable buffers; returns how many. */
static uint64_t rng_give(struct virtio_rng *r, uint64_t want)
{
	uint64_t given = 0;

	for (unsigned i = r->chain.nr_out;
	     i < r->chain.nr_out + r->chain.nr_in && given < want; i++) {
		size_t n = (size_t)VIREO_MIN(r->chain.iov[i].iov_len, want - given);
		size_t got = rng_fill(r->chain.iov[i].iov_base, n);

		given += got;
		if (got < n)
			break;
	}
	return given;
}

static void rng_process(struct virtio_rng *r)
{
	struct virtq *q = &r->vdev.vq[0];
	uint64_t spent = 0;
	bool pushed = false;

	if (!virtio_dev_running(&r->vdev) || !q->ready)
		return;
	for (;;) {
		uint64_t want, given;

		rng_refill(r);
		if (r->rate && r->tokens == 0) {
			if (virtq_has_work(q))
				rng_arm_timer(r);
			break;
		}
		if (spent >= VIRTIO_RNG_WAKE_BUDGET) {
			if (virtq_has_work(q))
				virtio_dev_yield(&r->vdev, 0);
			break;
		}
		if (virtq_pop(q, &r->chain) <= 0)
			break;
		want = VIREO_MIN(r->chain.in_len, (uint64_t)VIRTIO_RNG_CHAIN_MAX);
		if (r->rate)
			want = VIREO_MIN(want, r->tokens);
		given = rng_give(r, want);
		if (r->rate)
			r->tokens -= given;
		r->total += given;
		spent += given;
		virtq_push(q, r->chain.head, (uint32_t)given);
		pushed = true;
	}
	if (pushed)
		virtio_dev_queue_interrupt(&r->vdev, 0);
}

static void rng_timer_locked(struct virtio_rng *r)
{
	virtio_dev_lock(&r->vdev);
	r->timer_armed = false;
	rng_process(r);
	virtio_dev_unlock(&r->vdev);
}

static void rng_timer(void *opaque)
{
	struct virtio_rng *r = opaque;
	uint64_t exp;

	if (read(r->tfd, &exp, sizeof(exp)) < 0) {
		/* spurious wake-up: fine */
	}
	rng_timer_locked(r);
}

void virtio_rng_kick(struct virtio_dev *d)
{
	rng_timer_locked(to_rng(d));
}

uint64_t virtio_rng_bytes(const struct virtio_dev *d)
{
	return ((const struct virtio_rng *)d)->total;
}

static void rng_queue_notify(struct virtio_dev *d, unsigned q)
{
	if (q == 0)
		rng_process(to_rng(d));
}

static void rng_destroy(struct virtio_dev *d)
{
	struct virtio_rng *r = to_rng(d);

	if (r->tfd >= 0) {
		if (d->env->unwatch_fd)
			d->env->unwatch_fd(d->env->loop, r->tfd);
		close(r->tfd);
	}
	virtio_dev_fini(d);
	free(r);
}

static const struct virtio_dev_ops rng_ops = {
	.device_id = VIRTIO_ID_RNG,
	.config_size = 0,
	.nr_queues = 1,
	.max_queue_size = VIRTIO_RNG_QUEUE_SIZE,
	.queue_notify = rng_queue_notify,
	.destroy = rng_destroy,
};

int virtio_rng_create(const struct virtio_env *env, uint64_t rate,
		      struct virtio_dev **out)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	virtio_dev_init(&r->vdev, &rng_ops, env, "virtio-rng", 0);
	r->rate = rate;
	r->tokens = rate;
	r->clock = vtime_ns;
	r->last_ns = vtime_ns();
	r->tfd = -1;
	if (rate && env->watch_fd) {
		int e;

		r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (r->tfd < 0) {
			e = -errno;
			virtio_dev_fini(&r->vdev);
			free(r);
			return e;
		}
		e = env->watch_fd(env->loop, r->tfd, rng_timer, r);
		if (e < 0) {
			close(r->tfd);
			virtio_dev_fini(&r->vdev);
			free(r);
			return e;
		}
	}
	*out = &r->vdev;
	return 0;
}

void virtio_rng_set_clock(struct virtio_dev *d, uint64_t (*now)(void))
{
	struct virtio_rng *r = to_rng(d);

	r->clock = now;
	r->last_ns = now();
}
