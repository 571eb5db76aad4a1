/*
 * Coalesced writes.  KVM can queue a guest's writes to chosen port (or
 * MMIO) ranges in a ring page it shares with us, instead of leaving
 * KVM_RUN for each one (KVM_REGISTER_COALESCED_MMIO).  vireo-vmm queues
 * the 16550's transmit register: a kernel printing on the serial console
 * reads the line status before every character and then writes it, so
 * each character costs one exit instead of two.
 *
 * Queued writes are replayed in the guest's order by coalesce_drain().
 * Callers drain before handling any exit, so a read (or an unqueued write)
 * always comes after every queued write the guest made before it, and
 * from a timer, so that output no exit follows still comes out.
 *
 * The ring's contents come from the guest through KVM: every entry is
 * checked against the registered zones before it is replayed.
 */
#ifndef VIREO_VMM_COALESCE_H
#define VIREO_VMM_COALESCE_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define COALESCE_MAX_ZONES 4

/* Replay one queued write (data little-endian, len 1..8). */
typedef void coalesce_write_fn(void *opaque, bool pio, uint64_t addr,
			       const uint8_t *data, unsigned len);

struct coalesce_zone {
	uint64_t addr;
	uint32_t size;
	bool pio;
};

struct coalesce {
	struct kvm_coalesced_mmio_ring *ring;    /* NULL: not in use (atomic) */
	uint32_t max;                            /* entries in the ring */
	struct coalesce_zone zone[COALESCE_MAX_ZONES];
	unsigned nzones;
	pthread_mutex_t lock;                    /* one replayer at a time */
	coalesce_write_fn *write;
	void *opaque;
	uint64_t replayed, dropped;              /* under lock */
	bool broken;                             /* ring indices were out of
						  * range: ring given up */
};

/* Number of entries a ring page of page_size bytes holds. */
uint32_t coalesce_ring_entries(size_t page_size);

/* Set up, not in use yet: coalesce_drain() replays nothing. */
void coalesce_init(struct coalesce *c, coalesce_write_fn *write, void *opaque);
/* Use a ring of max entries (the page KVM maps at KVM_CAP_COALESCED_MMIO's
 * page offset of a vCPU's run area); before any zone is added. */
void coalesce_start(struct coalesce *c, struct kvm_coalesced_mmio_ring *ring,
		    uint32_t max);
/* Stop using the ring (after a zone could not be added). */
void coalesce_stop(struct coalesce *c);
void coalesce_destroy(struct coalesce *c);

/* Ask KVM (vm_fd) to queue writes to [addr, addr+size); with vm_fd < 0
 * only record the zone (unit tests).  Returns 0 or -errno. */
int coalesce_add_zone(struct coalesce *c, int vm_fd, uint64_t addr, uint32_t size,
		      bool pio);

/* Whether writes are queued (cheap; any thread). */
static inline bool coalesce_pending(struct coalesce *c)
{
	struct kvm_coalesced_mmio_ring *r = __atomic_load_n(&c->ring, __ATOMIC_RELAXED);

	return r && __atomic_load_n(&r->last, __ATOMIC_ACQUIRE) !=
		    __atomic_load_n(&r->first, __ATOMIC_RELAXED);
}

/* Replay every queued write, oldest first; returns how many were replayed.
 * Entries outside the zones are counted in 'dropped' and skipped. */
unsigned coalesce_drain(struct coalesce *c);

#endif
