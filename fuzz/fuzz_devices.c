/* Guest-controlled device registers: a program of port and MMIO accesses
 * (PCI configuration through 0xcf8/0xcfc and ECAM, BAR moves and BAR
 * accesses, the 16550, i8042 and RTC) sent through the buses as a vCPU
 * sends its exits.  Input: guest_io.h's records. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "bus.h"
#include "dev/i8042.h"
#include "dev/mc146818.h"
#include "dev/ns16550.h"
#include "dev/pci.h"
#include "guest_io.h"
#include "irq.h"
#include "layout.h"
#include "memory.h"

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
	struct bus pio, mmio;
	struct gmem mem;
	struct irq_ctl irq;
	struct dev_env env = { .mem = &mem, .pio = &pio, .mmio = &mmio, .irq = &irq };
	struct pci_host *host;
	struct fdev a, b;
	struct ns16550 uart;
	struct i8042 kbd;
	struct mc146818 rtc;

	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	memset(&mem, 0, sizeof(mem));
	memory_layout(&mem, 256 * MiB);
	if (irq_ctl_init(&irq, -1))
		abort();
	host = pci_host_new(&env);
	if (!host)
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
	pci_register(host, &a.pci);
	pci_register(host, &b.pci);
	ns16550_init(&uart, &uart_ops, NULL);
	i8042_init(&kbd, no_reset, NULL);
	mc146818_init(&rtc, NULL);
	bus_add(&pio, NS16550_COM1_BASE, NS16550_NREGS, ns16550_bus_io, &uart, "com1");
	bus_add(&pio, I8042_BASE, I8042_NREGS, i8042_bus_io, &kbd, "i8042");
	bus_add(&pio, MC146818_BASE, MC146818_NREGS, mc146818_bus_io, &rtc, "rtc");

	guest_io_run(&pio, &mmio, data, size, NULL, 0);

	ns16550_destroy(&uart);
	pci_host_free(host);
	irq_ctl_destroy(&irq);
	bus_destroy(&pio);
	bus_destroy(&mmio);
	return 0;
}
