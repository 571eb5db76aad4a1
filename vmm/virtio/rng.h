/* virtio-rng (virtio 1.2, 5.4): random bytes from getrandom(). */
#ifndef VIREO_VMM_VIRTIO_RNG_H
#define VIREO_VMM_VIRTIO_RNG_H

#include <stdint.h>

#include "virtio.h"

#define VIRTIO_RNG_QUEUE_SIZE 64u
/* Budgets (virtio.h): at most this much per request, whatever length the
 * guest's buffers claim (Linux asks for at most a few KiB), and per
 * wake-up of the event loop. */
#define VIRTIO_RNG_CHAIN_MAX   (64u << 10)
#define VIRTIO_RNG_WAKE_BUDGET (256u << 10)

/*
 * @rate: bytes per second the guest may take (token bucket holding up to
 * one second's worth), 0 for no limit.  With a limit and env->watch_fd,
 * a timerfd is registered to resume when tokens are back.
 */
int virtio_rng_create(const struct virtio_env *env, uint64_t rate,
		      struct virtio_dev **out);

/* Serve waiting requests (the timer callback; tests call it directly).
 * Takes the device lock. */
void virtio_rng_kick(struct virtio_dev *d);

/* Replace the monotonic clock (ns) behind the rate limit (tests). */
void virtio_rng_set_clock(struct virtio_dev *d, uint64_t (*now)(void));

/* Bytes handed to the guest so far. */
uint64_t virtio_rng_bytes(const struct virtio_dev *d);

#endif
