#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "coalesce.h"

uint32_t coalesce_ring_entries(size_t page_size)
{
	if (page_size <= sizeof(struct kvm_coalesced_mmio_ring))
		return 0;
	return (uint32_t)((page_size - sizeof(struct kvm_coalesced_mmio_ring)) /
			  sizeof(struct kvm_coalesced_mmio));
}

void coalesce_init(struct coalesce *c, coalesce_write_fn *write, void *opaque)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->write = write;
	c->opaque = opaque;
}

void coalesce_start(struct coalesce *c, struct kvm_coalesced_mmio_ring *ring,
		    uint32_t max)
{
	pthread_mutex_lock(&c->lock);
	c->max = max;
	__atomic_store_n(&c->ring, max ? ring : NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->lock);
}

void coalesce_stop(struct coalesce *c)
{
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->ring, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->lock);
}

void coalesce_destroy(struct coalesce *c)
{
	pthread_mutex_destroy(&c->lock);
	c->ring = NULL;
}

int coalesce_add_zone(struct coalesce *c, int vm_fd, uint64_t addr, uint32_t size,
		      bool pio)
{
	struct kvm_coalesced_mmio_zone z = { .addr = addr, .size = size };

	if (!size || c->nzones == COALESCE_MAX_ZONES || addr + size < addr)
		return -EINVAL;
	z.pio = pio ? 1 : 0;
	if (vm_fd >= 0 && ioctl(vm_fd, KVM_REGISTER_COALESCED_MMIO, &z) < 0)
		return -errno;
	c->zone[c->nzones++] = (struct coalesce_zone){ addr, size, pio };
	return 0;
}

static bool coalesce_in_zone(const struct coalesce *c, bool pio, uint64_t addr,
			     uint32_t len)
{
	for (unsigned i = 0; i < c->nzones; i++) {
		const struct coalesce_zone *z = &c->zone[i];

		if (z->pio == pio && addr >= z->addr && len <= z->size &&
		    addr - z->addr <= z->size - len)
			return true;
	}
	return false;
}

unsigned coalesce_drain(struct coalesce *c)
{
	struct kvm_coalesced_mmio_ring *r;
	unsigned n = 0;

	pthread_mutex_lock(&c->lock);
	r = __atomic_load_n(&c->ring, __ATOMIC_RELAXED);
	while (r) {
		uint32_t first = __atomic_load_n(&r->first, __ATOMIC_RELAXED);
		uint32_t last = __atomic_load_n(&r->last, __ATOMIC_ACQUIRE);
		struct kvm_coalesced_mmio e;

		if (first == last)
			break;
		if (first >= c->max || last >= c->max) {
			/* Not something KVM writes: stop using the ring rather
			 * than read outside it. */
			c->broken = true;
			__atomic_store_n(&c->ring, NULL, __ATOMIC_RELAXED);
			break;
		}
		memcpy(&e, &r->coalesced_mmio[first], sizeof(e));
		/* The slot may be reused once 'first' moves past it. */
		__atomic_store_n(&r->first, (first + 1) % c->max, __ATOMIC_RELEASE);
		if (e.len == 0 || e.len > sizeof(e.data) ||
		    !coalesce_in_zone(c, e.pio != 0, e.phys_addr, e.len)) {
			c->dropped++;
			continue;
		}
		c->write(c->opaque, e.pio != 0, e.phys_addr, e.data, e.len);
		c->replayed++;
		n++;
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}
