/* Guest-controlled device registers: a program of port and MMIO accesses
 * (PCI configuration through 0xcf8/0xcfc and ECAM, BAR moves and BAR
 * accesses, the 16550, i8042 and RTC) run against the real dispatch code.
 * Input: records of [kind:1][addr:4][len:1][data:4]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "bus.h"
#include "dev/legacy.h"
#include "dev/ns16550.h"
#include "dev/pci.h"
#include "layout.h"
#include "memory.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fdev {
	struct pci_dev pci;
	uint8_t bar_mem[0x1000];
};

static void fdev_bar_io(struct pci_dev *d, unsigned bar, uint64_t off, uint8_t *p,
			unsigned len, bool is_write)
{
	struct fdev *f = d->opaque;

	if (off >= sizeof(f->bar_mem) || len > sizeof(f->bar_mem) - off)
		abort();   /* dispatch must never pass an offset outside the BAR */
	if (is_write)
		memcpy(f->bar_mem + off, p, len);
	else
		memcpy(p, f->bar_mem + off, len);
}

static const struct pci_dev_ops fdev_ops = { .bar_io = fdev_bar_io };

static void sink_tx(void *o, uint8_t b) { (void)o; (void)b; }
static void sink_irq(void *o, int l) { (void)o; (void)l; }
static const struct ns16550_ops uart_ops = { sink_tx, sink_irq, NULL };
static void no_reset(void *o) { (void)o; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm vm;
	struct fdev a, b;
	struct ns16550 uart;
	struct i8042 kbd;
	struct mc146818 rtc;

	memset(&vm, 0, sizeof(vm));
	vm.vm_fd = -1;
	bus_init(&vm.pio, "pio");
	bus_init(&vm.mmio, "mmio");
	memory_layout(&vm.mem, 256 * MiB);
	vm.pci = pci_host_new(&vm);
	if (!vm.pci)
		abort();
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	pci_dev_init(&a.pci, 0x1af4, 0x1041, 0x020000, 0x1af4, 1, &fdev_ops, &a, "a");
	pci_bar_add(&a.pci, 0, 0x1000, PCI_BAR_MEM32);
	pci_bar_add(&a.pci, 2, 0x1000, PCI_BAR_MEM64 | PCI_BAR_PREFETCH);
	pci_cap_add(&a.pci, 0x11, 12);
	pci_dev_init(&b.pci, 0x1af4, 0x1042, 0x010000, 0x1af4, 2, &fdev_ops, &b, "b");
	pci_bar_add(&b.pci, 0, 0x1000, PCI_BAR_MEM32);
	pci_bar_add(&b.pci, 1, 0x100, PCI_BAR_IO);
	pci_register(vm.pci, &a.pci);
	pci_register(vm.pci, &b.pci);
	ns16550_init(&uart, &uart_ops, NULL);
	i8042_init(&kbd, no_reset, NULL);
	mc146818_init(&rtc, NULL);
	bus_add(&vm.pio, NS16550_COM1_BASE, NS16550_NREGS, ns16550_bus_io, &uart, "com1");
	bus_add(&vm.pio, 0x60, 5, i8042_bus_io, &kbd, "i8042");
	bus_add(&vm.pio, 0x70, 2, mc146818_bus_io, &rtc, "rtc");

	for (size_t i = 0; i + 10 <= size; i += 10) {
		const uint8_t *r = data + i;
		uint32_t addr;
		unsigned len = r[5] % 9;
		uint8_t buf[8];
		bool wr = r[0] & 1;

		memcpy(&addr, r + 1, 4);
		memset(buf, 0, sizeof(buf));
		memcpy(buf, r + 6, 4);
		if (!len)
			len = 1;
		if (r[0] & 2) {   /* MMIO: ECAM, the BAR window, anything */
			uint64_t gpa = (r[0] & 4) ? LAYOUT_ECAM_BASE + (addr & 0xfffff)
				     : (r[0] & 8) ? LAYOUT_MMIO32_BASE + (addr & 0xffff) : addr;
			if (!pci_cfg_mmio(vm.pci, gpa, buf, len, wr))
				bus_access(&vm.mmio, gpa, buf, len, wr);
		} else {          /* port I/O */
			uint16_t port = (r[0] & 4) ? (uint16_t)(0xcf8 + (addr & 7)) : (uint16_t)addr;
			if (len > 4)
				len = 4;
			if (!pci_cfg_pio(vm.pci, port, buf, len, wr))
				bus_access(&vm.pio, port, buf, len, wr);
		}
	}
	ns16550_destroy(&uart);
	pci_host_free(vm.pci);
	bus_destroy(&vm.pio);
	bus_destroy(&vm.mmio);
	return 0;
}
