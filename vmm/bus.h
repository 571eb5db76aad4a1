/*
 * Port I/O and MMIO dispatch.  Devices register address ranges with a
 * handler; vCPU threads call bus_access() on every PIO/MMIO exit.  Every
 * device is on a bus, PCI configuration space (0xCF8-0xCFF, ECAM) included.
 *
 * Ranges may be added, moved and removed at any time, from any thread and
 * from inside a handler (a config-space write moves a BAR): the bus lock is
 * a leaf (lock order in vmm/README.md) held only to look a range up or
 * change the table, never while a handler runs.  So a handler may still be
 * called for a range an instant after it moved or went away, as if the
 * access had come just before: a range's opaque must stay valid until the
 * vCPUs have stopped (devices are freed only after that).
 */
#ifndef VIREO_VMM_BUS_H
#define VIREO_VMM_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* offset is relative to the range start; data is little-endian, len 1..8.
 * A read must fill data[0..len). */
typedef void bus_io_fn(void *opaque, uint64_t offset, uint8_t *data,
		       unsigned len, bool is_write);

struct bus_range {
	uint64_t base, len;
	bus_io_fn *fn;
	void *opaque;
	const char *name;
};

struct bus {
	pthread_rwlock_t lock;
	struct bus_range *r;
	unsigned n, cap;
	const char *name;      /* "pio" or "mmio" for messages */
};

int bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);
/* Returns 0, -EEXIST if it overlaps a registered range, -ENOMEM. */
int bus_add(struct bus *b, uint64_t base, uint64_t len, bus_io_fn *fn,
	    void *opaque, const char *name);
/* Remove the range registered with exactly this base and opaque. */
int bus_remove(struct bus *b, uint64_t base, void *opaque);
/* Move a range to new_base (same length); -EEXIST on overlap. */
int bus_move(struct bus *b, uint64_t old_base, void *opaque, uint64_t new_base);
/* Dispatch an access.  Returns false if no device claims addr, or the
 * access runs past the end of the range that holds addr (reads then
 * return all-ones; writes are dropped). */
bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, unsigned len,
		bool is_write);

#endif
