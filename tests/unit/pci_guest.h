/*
 * Test helper: a guest driver's side of the PCI host and the virtio PCI
 * transport, every access sent through the MMIO bus as a vCPU's exits are
 * (config space through ECAM, BAR 4 wherever config space says it is now).
 * Header-only, static functions; used by unit tests and the stress harness.
 */
#ifndef VIREO_TEST_PCI_GUEST_H
#define VIREO_TEST_PCI_GUEST_H

#include <stdint.h>
#include <string.h>

#include "bus.h"
#include "layout.h"
#include "virtio/pci.h"

static inline uint64_t pg_ecam(unsigned slot, unsigned off)
{
	return LAYOUT_ECAM_BASE + ((uint64_t)slot << 15) + off;
}

static inline uint32_t pg_cfg_rd(struct bus *mmio, unsigned slot, unsigned off, unsigned len)
{
	uint8_t d[4] = { 0 };

	bus_access(mmio, pg_ecam(slot, off), d, len, false);
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static inline void pg_cfg_wr(struct bus *mmio, unsigned slot, unsigned off, uint32_t v,
			     unsigned len)
{
	uint8_t d[4];

	memcpy(d, &v, 4);
	bus_access(mmio, pg_ecam(slot, off), d, len, true);
}

/* BAR 4's address per config space (0: not programmed). */
static inline uint64_t pg_bar4(struct bus *mmio, unsigned slot)
{
	uint64_t lo = pg_cfg_rd(mmio, slot, 0x20, 4) & ~15u;

	return (uint64_t)pg_cfg_rd(mmio, slot, 0x24, 4) << 32 | lo;
}

static inline void pg_bar_wr(struct bus *mmio, unsigned slot, uint64_t off, uint32_t v,
			     unsigned len)
{
	uint8_t d[8] = { 0 };
	uint64_t a = pg_bar4(mmio, slot);

	memcpy(d, &v, 4);
	if (a)
		bus_access(mmio, a + off, d, len, true);
}

static inline uint32_t pg_bar_rd(struct bus *mmio, unsigned slot, uint64_t off, unsigned len)
{
	uint8_t d[8] = { 0 };
	uint64_t a = pg_bar4(mmio, slot);

	if (a)
		bus_access(mmio, a + off, d, len, false);
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

/* Config offset of capability id, or 0. */
static inline unsigned pg_find_cap(struct bus *mmio, unsigned slot, uint8_t id)
{
	unsigned off = pg_cfg_rd(mmio, slot, 0x34, 1);

	for (int n = 0; off && n < 48; n++, off = pg_cfg_rd(mmio, slot, off + 1, 1))
		if (pg_cfg_rd(mmio, slot, off, 1) == id)
			return off;
	return 0;
}

/* What a driver does to start a virtio device: reset, accept every
 * offered feature, FEATURES_OK, config vector 0, DRIVER_OK. */
static inline void pg_virtio_start(struct bus *mmio, unsigned slot)
{
	pg_bar_wr(mmio, slot, VIRTIO_PCI_COMMON_OFF + 0x14, 0, 1);
	pg_bar_wr(mmio, slot, VIRTIO_PCI_COMMON_OFF + 0x14, 0x3, 1);
	for (uint32_t sel = 0; sel < 2; sel++) {
		pg_bar_wr(mmio, slot, VIRTIO_PCI_COMMON_OFF + 0x00, sel, 4);
		pg_bar_wr(mmio, slot, VIRTIO_PCI_COMMON_OFF + 0x08, sel, 4);
		pg_bar_wr(mmio, slot, VIRTIO_PCI_COMMON_OFF + 0x0c,
			  pg_bar_rd(mmio, slot, VIRTIO_PCI_COMMON_OFF + 0x04, 4), 4);
	}
	pg_bar_wr(mmio, slot, VIRTIO_PCI_COMMON_OFF + 0x14, 0xb, 1);
	pg_bar_wr(mmio, slot, VIRTIO_PCI_COMMON_OFF + 0x10, 0, 2);
	pg_bar_wr(mmio, slot, VIRTIO_PCI_COMMON_OFF + 0x14, 0xf, 1);
}

/* MSI-X on, and table entry v pointing at (addr, data), unmasked. */
static inline void pg_msix_vector(struct bus *mmio, unsigned slot, unsigned v,
				  uint32_t addr, uint32_t data)
{
	unsigned cap = pg_find_cap(mmio, slot, 0x11);

	pg_cfg_wr(mmio, slot, cap + 3, 0x80, 1);
	pg_bar_wr(mmio, slot, VIRTIO_PCI_MSIX_OFF + 16 * v, addr, 4);
	pg_bar_wr(mmio, slot, VIRTIO_PCI_MSIX_OFF + 16 * v + 8, data, 4);
	pg_bar_wr(mmio, slot, VIRTIO_PCI_MSIX_OFF + 16 * v + 12, 0, 4);
}

#endif
