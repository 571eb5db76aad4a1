#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "../bus.h"
#include "../gmem.h"
#include "../irq.h"
#include "../layout.h"
#include "pci.h"

#define PCI_COMMAND      0x04
#define PCI_STATUS       0x06
#define PCI_BAR0         0x10
#define PCI_CAP_PTR      0x34
#define PCI_INT_LINE     0x3c
#define PCI_INT_PIN      0x3d
#define PCI_CMD_IO       0x1
#define PCI_CMD_MEM      0x2
#define PCI_STATUS_CAP   0x10
#define PCI_INTX_GSI_BASE 20      /* INTA..INTD rotate over GSIs 20..23 */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

void pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id,
		  const struct pci_dev_ops *ops, void *opaque, const char *name)
{
	memset(d, 0, sizeof(*d));
	put16(d->cfg + 0x00, vendor);
	put16(d->cfg + 0x02, device);
	put32(d->cfg + 0x08, class_code << 8);   /* revision 0 */
	put16(d->cfg + 0x2c, subsys_vendor);
	put16(d->cfg + 0x2e, subsys_id);
	d->cfg[PCI_INT_PIN] = ops && ops->bar_io ? 1 : 0;
	put16(d->wmask + PCI_COMMAND, 0x0547);   /* io, mem, master, parity, serr, intx-disable */
	d->wmask[PCI_INT_LINE] = 0xff;
	d->wmask[0x0c] = 0xff;                   /* cache line size */
	d->wmask[0x0d] = 0xff;                   /* latency timer */
	d->cap_end = 0x40;
	d->ops = ops;
	d->opaque = opaque;
	d->name = name;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		d->bar[i].dev = d;
		d->bar[i].index = i;
	}
}

int pci_bar_add(struct pci_dev *d, unsigned bar, uint64_t size, unsigned flags)
{
	bool io = flags & PCI_BAR_IO, is64 = flags & PCI_BAR_MEM64;
	uint64_t mask;
	uint8_t *p;

	if (bar >= PCI_NUM_BARS || (is64 && bar + 1 >= PCI_NUM_BARS) ||
	    size & (size - 1) || size < (io ? 4u : 16u) || (io && size > 0x1000) ||
	    d->bar[bar].size)
		return -EINVAL;
	d->bar[bar].size = size;
	d->bar[bar].flags = flags;
	mask = ~(size - 1);
	p = d->cfg + PCI_BAR0 + 4 * bar;
	put32(p, io ? 1 : (flags & (PCI_BAR_MEM64 | PCI_BAR_PREFETCH)));
	put32(d->wmask + PCI_BAR0 + 4 * bar, (uint32_t)mask & (io ? ~3u : ~15u));
	if (is64)
		put32(d->wmask + PCI_BAR0 + 4 * (bar + 1), (uint32_t)(mask >> 32));
	return 0;
}

int pci_cap_add(struct pci_dev *d, uint8_t id, unsigned len)
{
	unsigned off = VIREO_ALIGN_UP(d->cap_end, 4u);

	if (len < 2 || off + len > PCI_CFG_SIZE)
		return -ENOSPC;
	d->cfg[off] = id;
	d->cfg[off + 1] = d->cfg[PCI_CAP_PTR];
	d->cfg[PCI_CAP_PTR] = (uint8_t)off;
	d->cfg[PCI_STATUS] |= PCI_STATUS_CAP;
	d->cap_end = (uint8_t)VIREO_MIN(off + len, 0xff);
	return (int)off;
}

/* Where BAR i decodes now per config space (0 if disabled/unassigned). */
static bool pci_bar_decoded(const struct pci_dev *d, unsigned i, uint64_t *addr)
{
	const struct pci_bar *b = &d->bar[i];
	uint16_t cmd = (uint16_t)(d->cfg[PCI_COMMAND] | d->cfg[PCI_COMMAND + 1] << 8);
	uint64_t a = get32(d->cfg + PCI_BAR0 + 4 * i);

	if (!b->size)
		return false;
	if (b->flags & PCI_BAR_IO) {
		a &= ~3ull;
		if (!(cmd & PCI_CMD_IO) || !a || a + b->size > 0x10000)
			return false;
	} else {
		a &= ~15ull;
		if (b->flags & PCI_BAR_MEM64)
			a |= (uint64_t)get32(d->cfg + PCI_BAR0 + 4 * (i + 1)) << 32;
		if (!(cmd & PCI_CMD_MEM) || !a || a + b->size < a)
			return false;
	}
	*addr = a;
	return true;
}

static void pci_bar_bus_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
			   bool is_write)
{
	struct pci_bar *b = opaque;

	if (b->dev->ops && b->dev->ops->bar_io)
		b->dev->ops->bar_io(b->dev, b->index, off, data, len, is_write);
	else if (!is_write)
		memset(data, 0xff, len);
}

static bool pci_window_ok(const struct gmem *mem, const struct pci_bar *b, uint64_t addr)
{
	uint64_t high_end = LAYOUT_4G + (mem->nr_regions > 1 ? mem->region[1].size : 0);

	if (b->flags & PCI_BAR_IO)
		return addr >= 0x1000;
	if (addr >= LAYOUT_MMIO32_BASE && addr + b->size <= LAYOUT_ECAM_BASE)
		return true;
	return addr >= high_end && addr + b->size > addr;
}

/* Bring the bus mappings in line with config space (host lock held). */
static void pci_update_bars(struct pci_dev *d)
{
	const struct dev_env *env = &d->host->env;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bar[i];
		struct bus *bus = (b->flags & PCI_BAR_IO) ? env->pio : env->mmio;
		uint64_t addr = 0;
		bool on = pci_bar_decoded(d, i, &addr);

		if (!b->size || (on == b->mapped && (!on || addr == b->addr)))
			continue;
		if (b->mapped) {
			bus_remove(bus, b->addr, b);
			b->mapped = false;
		}
		/* A BAR over RAM, ECAM, the boot timer, the APICs or another
		 * device stays unmapped: the guest only breaks this device. */
		if (on && pci_window_ok(env->mem, b, addr) &&
		    bus_add(bus, addr, b->size, pci_bar_bus_io, b, d->name) == 0) {
			b->mapped = true;
			b->addr = addr;
		}
		if (d->ops && d->ops->bar_remap)
			d->ops->bar_remap(d, i, b->addr, b->mapped);
	}
}

int pci_register(struct pci_host *h, struct pci_dev *d)
{
	unsigned slot;
	uint16_t cmd = 0;

	pthread_mutex_lock(&h->lock);
	for (slot = 0; slot < PCI_MAX_SLOTS && h->slot[slot]; slot++)
		;
	if (slot == PCI_MAX_SLOTS) {
		pthread_mutex_unlock(&h->lock);
		return -ENOSPC;
	}
	d->host = h;
	d->slot = slot;
	/* Assign BARs, largest alignment first is not needed: natural
	 * alignment from a bump allocator suffices for our few devices. */
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bar[i];
		uint8_t *p = d->cfg + PCI_BAR0 + 4 * i;
		if (!b->size)
			continue;
		if (b->flags & PCI_BAR_IO) {
			uint32_t a = VIREO_ALIGN_UP(h->pio_next, (uint32_t)b->size);
			if (a + b->size > h->pio_end)
				goto nospace;
			h->pio_next = a + (uint32_t)b->size;
			put32(p, a | 1);
			cmd |= PCI_CMD_IO;
		} else {
			uint64_t a = VIREO_ALIGN_UP(h->mmio_next, b->size);
			if (a + b->size > h->mmio_end)
				goto nospace;
			h->mmio_next = a + b->size;
			put32(p, (uint32_t)a | (b->flags & (PCI_BAR_MEM64 | PCI_BAR_PREFETCH)));
			if (b->flags & PCI_BAR_MEM64)
				put32(p + 4, (uint32_t)(a >> 32));
			cmd |= PCI_CMD_MEM;
		}
	}
	d->intx_gsi = PCI_INTX_GSI_BASE + (slot + (d->cfg[PCI_INT_PIN] ? d->cfg[PCI_INT_PIN] - 1u : 0u)) % 4;
	d->cfg[PCI_INT_LINE] = d->cfg[PCI_INT_PIN] ? (uint8_t)d->intx_gsi : 0xff;
	put16(d->cfg + PCI_COMMAND, cmd);
	h->slot[slot] = d;
	pci_update_bars(d);
	pthread_mutex_unlock(&h->lock);
	return (int)slot;
nospace:
	pthread_mutex_unlock(&h->lock);
	return -ENOSPC;
}

uint32_t pci_cfg_read(struct pci_dev *d, unsigned off, unsigned len)
{
	uint32_t v = 0;

	if (off >= PCI_CFG_SIZE || len > 4 || len > PCI_CFG_SIZE - off)
		return 0;
	pthread_mutex_lock(&d->host->lock);
	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)d->cfg[off + i] << (8 * i);
	pthread_mutex_unlock(&d->host->lock);
	return v;
}

void pci_intx(struct pci_dev *d, int level)
{
	if (pci_cfg_read(d, PCI_COMMAND, 2) & 0x400)   /* INTx disabled */
		level = 0;
	irq_line(d->host->env.irq, d->intx_gsi, level);
}

void pci_cfg_access(struct pci_host *h, unsigned slot, unsigned off,
		    uint8_t *data, unsigned len, bool is_write)
{
	struct pci_dev *d;

	if (slot >= PCI_MAX_SLOTS || !(d = h->slot[slot]) || off >= PCI_CFG_SIZE ||
	    len > PCI_CFG_SIZE - off) {
		if (!is_write)
			memset(data, off >= PCI_CFG_SIZE && slot < PCI_MAX_SLOTS && h->slot[slot] ? 0 : 0xff, len);
		return;
	}
	pthread_mutex_lock(&h->lock);
	if (is_write) {
		for (unsigned i = 0; i < len; i++)
			d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~d->wmask[off + i]) |
						    (data[i] & d->wmask[off + i]));
		if (off < PCI_BAR0 + 24 && off + len > PCI_COMMAND)
			pci_update_bars(d);
	} else {
		memcpy(data, d->cfg + off, len);
	}
	pthread_mutex_unlock(&h->lock);
	/* Device hooks run without the host lock (they may take their own). */
	if (is_write && d->ops && d->ops->cfg_write)
		d->ops->cfg_write(d, off, data, len);
	else if (!is_write && d->ops && d->ops->cfg_read)
		d->ops->cfg_read(d, off, data, len);
}

/* Ports 0xCF8-0xCFF (bus handler; off from 0xCF8). */
static void pci_cf8_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
		       bool is_write)
{
	struct pci_host *h = opaque;
	unsigned port = 0xcf8 + (unsigned)off;
	uint32_t a;

	if (port == 0xcf8) {
		if (len == 4) {
			pthread_mutex_lock(&h->lock);
			if (is_write)
				h->cf8 = get32(data) & 0x80fffffcu;
			else
				put32(data, h->cf8);
			pthread_mutex_unlock(&h->lock);
		} else if (!is_write) {
			memset(data, 0xff, len);
		}
		return;
	}
	if (port < 0xcfc) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&h->lock);
	a = h->cf8;
	pthread_mutex_unlock(&h->lock);
	if (!(a & 0x80000000u) || ((a >> 16) & 0xff) != 0 || ((a >> 8) & 7) != 0 ||
	    (port - 0xcfc) + len > 4) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pci_cfg_access(h, (a >> 11) & 0x1f, (a & 0xfc) + (port - 0xcfc), data, len, is_write);
}

/* ECAM, bus 0 (bus handler; off from LAYOUT_ECAM_BASE). */
static void pci_ecam_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
			bool is_write)
{
	struct pci_host *h = opaque;

	if (((off >> 12) & 7) != 0 || len > 4 || (off & 0xfff) + len > 0x1000) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pci_cfg_access(h, (unsigned)(off >> 15) & 0x1f, (unsigned)(off & 0xfff), data,
		       len, is_write);
}

/* --- host bridge ------------------------------------------------------------ */

struct pci_host *pci_host_new(const struct dev_env *env)
{
	struct pci_host *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	h->env = *env;
	h->mmio_next = LAYOUT_MMIO32_BASE;
	h->mmio_end = LAYOUT_MMIO32_BASE + LAYOUT_MMIO32_SIZE;
	h->pio_next = LAYOUT_PIO_PCI_BASE;
	h->pio_end = LAYOUT_PIO_PCI_BASE + LAYOUT_PIO_PCI_SIZE;
	/* Slot 0: the host bridge itself (Red Hat vendor id, generic PCIe
	 * host bridge device id, class 0x0600). */
	pci_dev_init(&h->bridge, 0x1b36, 0x0008, 0x060000, 0x1af4, 0x1100,
		     NULL, NULL, "host-bridge");
	if (pci_register(h, &h->bridge) < 0 ||
	    bus_add(env->pio, 0xcf8, 8, pci_cf8_io, h, "pci-config") < 0 ||
	    bus_add(env->mmio, LAYOUT_ECAM_BASE, LAYOUT_ECAM_SIZE, pci_ecam_io, h,
		    "pci-ecam") < 0) {
		pci_host_free(h);
		return NULL;
	}
	return h;
}

void pci_host_free(struct pci_host *h)
{
	if (!h)
		return;
	bus_remove(h->env.pio, 0xcf8, h);
	bus_remove(h->env.mmio, LAYOUT_ECAM_BASE, h);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
