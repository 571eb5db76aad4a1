/* PCI host bridge: config mechanism #1 and ECAM, BAR sizing, assignment,
 * reprogramming and decode enable, with dispatch through the buses. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bus.h"
#include "dev/pci.h"
#include "irq.h"
#include "layout.h"
#include "memory.h"

struct tdev {
	struct pci_dev pci;
	unsigned hits[PCI_NUM_BARS];
	uint64_t last_off;
	unsigned remaps;
};

static void tdev_bar_io(struct pci_dev *d, unsigned bar, uint64_t off, uint8_t *data,
			unsigned len, bool is_write)
{
	struct tdev *t = d->opaque;

	t->hits[bar]++;
	t->last_off = off;
	if (!is_write)
		memset(data, 0xa0 + bar, len);
}

static void tdev_remap(struct pci_dev *d, unsigned bar, uint64_t addr, bool mapped)
{
	((struct tdev *)d->opaque)->remaps++;
}

static const struct pci_dev_ops tdev_ops = { .bar_io = tdev_bar_io, .bar_remap = tdev_remap };

/* A VM's worth of what the host needs, without KVM (irq vm_fd -1). */
static struct {
	struct bus pio, mmio;
	struct gmem mem;
	struct irq_ctl irq;
	struct dev_env env;
} vm;
static struct pci_host *h;

static int setup(void **state)
{
	memset(&vm, 0, sizeof(vm));
	bus_init(&vm.pio, "pio");
	bus_init(&vm.mmio, "mmio");
	memory_layout(&vm.mem, 512 * MiB);
	if (irq_ctl_init(&vm.irq, -1))
		return -1;
	vm.env = (struct dev_env){ .mem = &vm.mem, .pio = &vm.pio, .mmio = &vm.mmio,
				   .irq = &vm.irq };
	h = pci_host_new(&vm.env);
	return h ? 0 : -1;
}

static int teardown(void **state)
{
	pci_host_free(h);
	irq_ctl_destroy(&vm.irq);
	bus_destroy(&vm.pio);
	bus_destroy(&vm.mmio);
	return 0;
}

static uint32_t cfg_read32(unsigned slot, unsigned off)
{
	uint32_t a = 0x80000000u | slot << 11 | off, v;
	uint8_t d[4];

	memcpy(d, &a, 4);
	assert_true(bus_access(&vm.pio, 0xcf8, d, 4, true));
	assert_true(bus_access(&vm.pio, 0xcfc, d, 4, false));
	memcpy(&v, d, 4);
	return v;
}

static void cfg_write32(unsigned slot, unsigned off, uint32_t v)
{
	uint32_t a = 0x80000000u | slot << 11 | off;
	uint8_t d[4];

	memcpy(d, &a, 4);
	bus_access(&vm.pio, 0xcf8, d, 4, true);
	memcpy(d, &v, 4);
	bus_access(&vm.pio, 0xcfc, d, 4, true);
}

static void test_bridge_and_empty_slots(void **state)
{
	uint8_t d[4];

	assert_int_equal(cfg_read32(0, 0), 0x00081b36);          /* host bridge */
	assert_int_equal(cfg_read32(0, 8) >> 8, 0x060000);
	assert_int_equal(cfg_read32(5, 0), 0xffffffff);          /* empty slot */
	/* Config space is on the buses: 0xcf8-0xcff and ECAM, nothing more. */
	assert_false(bus_access(&vm.pio, 0xcf7, d, 1, false));
	assert_false(bus_access(&vm.pio, 0xd00, d, 1, false));
	/* ECAM: same registers. */
	assert_true(bus_access(&vm.mmio, LAYOUT_ECAM_BASE, d, 4, false));
	assert_int_equal(d[0] | d[1] << 8, 0x1b36);
	assert_false(bus_access(&vm.mmio, LAYOUT_ECAM_BASE + LAYOUT_ECAM_SIZE, d, 4, false));
}

static void test_bars(void **state)
{
	struct tdev t;
	uint8_t d[4];
	uint32_t bar0, bar1;
	int slot;

	memset(&t, 0, sizeof(t));
	pci_dev_init(&t.pci, 0x1af4, 0x1042, 0x010000, 0x1af4, 2, &tdev_ops, &t, "test");
	assert_int_equal(pci_bar_add(&t.pci, 0, 0x4000, PCI_BAR_MEM32), 0);
	assert_int_equal(pci_bar_add(&t.pci, 1, 0x40, PCI_BAR_IO), 0);
	assert_int_equal(pci_bar_add(&t.pci, 1, 0x40, PCI_BAR_IO), -EINVAL);   /* taken */
	assert_int_equal(pci_bar_add(&t.pci, 2, 0x3000, PCI_BAR_MEM32), -EINVAL); /* not 2^n */
	assert_int_equal(pci_bar_add(&t.pci, 5, 0x4000, PCI_BAR_MEM64), -EINVAL); /* no room */
	slot = pci_register(h, &t.pci);
	assert_true(slot > 0);
	assert_int_equal(cfg_read32((unsigned)slot, 0), 0x10421af4);

	bar0 = cfg_read32((unsigned)slot, 0x10);
	bar1 = cfg_read32((unsigned)slot, 0x14);
	assert_true(bar0 >= LAYOUT_MMIO32_BASE && bar0 < LAYOUT_ECAM_BASE);
	assert_int_equal(bar0 & 0x3fff, 0);
	assert_int_equal(bar1 & 1, 1);
	assert_true((bar1 & ~3u) >= LAYOUT_PIO_PCI_BASE);
	assert_true(cfg_read32((unsigned)slot, 4) & 3);       /* decoding on */

	/* Dispatch to BAR 0 at its address. */
	assert_true(bus_access(&vm.mmio, bar0 + 0x10, d, 4, false));
	assert_int_equal(d[0], 0xa0);
	assert_int_equal(t.last_off, 0x10);
	assert_true(bus_access(&vm.pio, (bar1 & ~3u) + 4, d, 1, false));
	assert_int_equal(d[0], 0xa1);

	/* Size probe. */
	cfg_write32((unsigned)slot, 0x10, 0xffffffff);
	assert_int_equal(cfg_read32((unsigned)slot, 0x10), 0xffffc000);
	/* Move BAR 0: old address dead, new one live. */
	cfg_write32((unsigned)slot, 0x10, 0xd0000000);
	assert_false(bus_access(&vm.mmio, bar0, d, 4, false));
	assert_true(bus_access(&vm.mmio, 0xd0000000 + 8, d, 4, false));
	assert_int_equal(t.last_off, 8);
	assert_true(t.remaps >= 2);
	/* Memory decode off: unmapped; back on: mapped again. */
	cfg_write32((unsigned)slot, 4, 0x1);
	assert_false(bus_access(&vm.mmio, 0xd0000000, d, 4, false));
	assert_true(bus_access(&vm.pio, bar1 & ~3u, d, 1, false));
	cfg_write32((unsigned)slot, 4, 0x3);
	assert_true(bus_access(&vm.mmio, 0xd0000000, d, 4, false));
	/* An access running past the BAR's end never reaches the device. */
	t.hits[0] = 0;
	assert_false(bus_access(&vm.mmio, 0xd0000000 + 0x4000 - 2, d, 4, false));
	assert_int_equal(d[0], 0xff);
	assert_int_equal(t.hits[0], 0);
	assert_true(bus_access(&vm.mmio, 0xd0000000 + 0x4000 - 4, d, 4, false));
	/* A hostile BAR over guest RAM or the APICs is not decoded. */
	cfg_write32((unsigned)slot, 0x10, 0x00100000);
	assert_false(bus_access(&vm.mmio, 0x00100000, d, 4, false));
	cfg_write32((unsigned)slot, 0x10, 0xfee00000);
	assert_false(bus_access(&vm.mmio, 0xfee00000, d, 4, false));
	/* Read-only registers stay read-only. */
	cfg_write32((unsigned)slot, 0, 0x12345678);
	assert_int_equal(cfg_read32((unsigned)slot, 0), 0x10421af4);
	/* Out-of-range config offsets do not crash. */
	pci_cfg_access(h, (unsigned)slot, 254, d, 4, false);
	pci_cfg_access(h, 99, 0, d, 4, true);
}

static void test_caps(void **state)
{
	struct pci_dev d;
	int off1, off2;

	pci_dev_init(&d, 1, 2, 0xff0000, 0, 0, NULL, NULL, "caps");
	off1 = pci_cap_add(&d, 0x11, 12);
	off2 = pci_cap_add(&d, 0x09, 20);
	assert_int_equal(off1, 0x40);
	assert_int_equal(off2, 0x4c);
	assert_int_equal(d.cfg[0x34], off2);
	assert_int_equal(d.cfg[off2 + 1], off1);
	assert_int_equal(d.cfg[off1 + 1], 0);
	assert_true(d.cfg[6] & 0x10);
	assert_int_equal(pci_cap_add(&d, 0x09, 250), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bridge_and_empty_slots),
		cmocka_unit_test(test_bars),
		cmocka_unit_test(test_caps),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
