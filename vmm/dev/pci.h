/*
 * PCI host bridge (bus 0, function 0 of each slot) and the device interface.
 *
 * Config space is reached through ports 0xCF8/0xCFC and through ECAM at
 * LAYOUT_ECAM_BASE (announced in ACPI MCFG): the host registers both on
 * the buses of its struct dev_env like any device.  A device fills struct pci_dev
 * with pci_dev_init(), declares BARs with pci_bar_add() and capabilities
 * with pci_cap_add(), then pci_register() gives it a slot and assigns its
 * BARs in the MMIO window (memory) or the PCI port window (I/O).  The guest
 * may move BARs: dispatch follows the BAR registers and the command
 * register's decode bits, and ops->bar_remap tells the device (so it can
 * move its ioeventfds).
 *
 * Threads: config accesses and BAR accesses arrive on vCPU threads.  Config
 * space is serialized by the host lock, which comes after the device locks
 * and before the interrupt-route and bus locks in the lock order
 * (vmm/README.md): ops->bar_remap runs under it and must take no device
 * lock; ops->cfg_read/cfg_write run without it.  BAR accesses are not
 * serialized by this layer (the device locks its own state).
 */
#ifndef VIREO_VMM_DEV_PCI_H
#define VIREO_VMM_DEV_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../devenv.h"

struct pci_dev;

#define PCI_MAX_SLOTS   32
#define PCI_CFG_SIZE    256
#define PCI_NUM_BARS    6

#define PCI_BAR_MEM32   0x0
#define PCI_BAR_MEM64   0x4
#define PCI_BAR_IO      0x1
#define PCI_BAR_PREFETCH 0x8

struct pci_dev_ops {
	/* BAR access: off from the BAR start, len 1..8, data little-endian. */
	void (*bar_io)(struct pci_dev *d, unsigned bar, uint64_t off,
		       uint8_t *data, unsigned len, bool is_write);
	/* Optional: called after the default config read (may change data). */
	void (*cfg_read)(struct pci_dev *d, unsigned off, uint8_t *data, unsigned len);
	/* Optional: called after the default config write was applied. */
	void (*cfg_write)(struct pci_dev *d, unsigned off, const uint8_t *data,
			  unsigned len);
	/* Optional: BAR now decodes at addr (mapped true) or not at all. */
	void (*bar_remap)(struct pci_dev *d, unsigned bar, uint64_t addr, bool mapped);
};

struct pci_bar {
	struct pci_dev *dev;
	unsigned index;
	uint64_t size;          /* 0: unused; power of two */
	unsigned flags;         /* PCI_BAR_* */
	uint64_t addr;          /* where it is on the bus now */
	bool mapped;
};

struct pci_dev {
	struct pci_host *host;
	const struct pci_dev_ops *ops;
	void *opaque;
	const char *name;
	unsigned slot;
	unsigned intx_gsi;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];    /* writable bits */
	uint8_t cap_end;                /* next free config offset */
	struct pci_bar bar[PCI_NUM_BARS];
};

struct pci_host {
	struct dev_env env;
	pthread_mutex_t lock;
	uint32_t cf8;
	struct pci_dev *slot[PCI_MAX_SLOTS];
	struct pci_dev bridge;
	uint64_t mmio_next, mmio_end;
	uint32_t pio_next, pio_end;
};

/* The host bridge, with config space registered on env's buses. */
struct pci_host *pci_host_new(const struct dev_env *env);
void pci_host_free(struct pci_host *h);

void pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id,
		  const struct pci_dev_ops *ops, void *opaque, const char *name);
/* size: power of two >= 16 (memory) or >= 4 (I/O). */
int pci_bar_add(struct pci_dev *d, unsigned bar, uint64_t size, unsigned flags);
/* Reserve len bytes for a capability with id; returns its config offset
 * (fill d->cfg[off + 2 ..] and set d->wmask for writable bits), or -ENOSPC. */
int pci_cap_add(struct pci_dev *d, uint8_t id, unsigned len);
/* Give the device a slot and map its BARs.  Returns the slot or -errno. */
int pci_register(struct pci_host *h, struct pci_dev *d);
/* Drive the device's INTA# line (level). */
void pci_intx(struct pci_dev *d, int level);

/* Config space of a slot (tests; ECAM and CF8/CFC come here). */
void pci_cfg_access(struct pci_host *h, unsigned slot, unsigned off,
		    uint8_t *data, unsigned len, bool is_write);
/* Read a config register of d (under the host lock; any thread). */
uint32_t pci_cfg_read(struct pci_dev *d, unsigned off, unsigned len);

#endif
