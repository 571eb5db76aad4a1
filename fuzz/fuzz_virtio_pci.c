/*
 * libFuzzer target: the virtio PCI transport's guest-facing registers.
 * A program of accesses runs against the real dispatch (config space
 * through 0xcf8/0xcfc and ECAM, BAR moves, BAR 4 of each function: common
 * configuration, ISR, device configuration, notifications, MSI-X table and
 * PBA) with virtio-blk (in-memory disk), virtio-console and virtio-rng
 * behind it, plus writes into guest RAM so queues can carry requests.
 * Input: guest_io.h's records, sent through the buses as a vCPU sends its
 * exits; guest RAM is 64 KiB at GPA 0.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "bus.h"
#include "dev/pci.h"
#include "guest_io.h"
#include "gmem.h"
#include "irq.h"
#include "layout.h"
#include "loop.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/pci.h"
#include "virtio/rng.h"

#include "fuzz_mem_disk.h"

#define RAM_SIZE  0x10000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink_write(void *o, const void *b, size_t n) { (void)o; (void)b; (void)n; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct virtio_console_backend con_be = { .write = sink_write };
	struct virtio_pci *vp[3] = { NULL, NULL, NULL };
	struct virtio_env venv = { 0 };
	struct virtio_dev *d;
	struct blk_backend *disk;
	struct bus pio, mmio;
	struct gmem mem;
	struct irq_ctl irq;
	struct dev_env env = { .mem = &mem, .pio = &pio, .mmio = &mmio, .irq = &irq };
	struct pci_host *host;
	uint8_t *ram;

	memset(&mem, 0, sizeof(mem));
	ram = calloc(1, RAM_SIZE);
	mem.region[0] = (struct gmem_region){ 0, RAM_SIZE, ram };
	mem.nr_regions = 1;
	mem.ram_size = RAM_SIZE;
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	env.loop = evloop_new();
	if (!ram || !env.loop || irq_ctl_init(&irq, -1))
		abort();
	host = pci_host_new(&env);
	if (!host)
		abort();
	venv.mem = &mem;

	disk = mem_disk_new(false);
	if (virtio_blk_create(&venv, disk, "fuzz", NULL, &d) == 0)
		virtio_pci_create(host, d, &vp[0]);
	if (virtio_console_create(&venv, &con_be, 80, 25, &d) == 0)
		virtio_pci_create(host, d, &vp[1]);
	if (virtio_rng_create(&venv, 0, &d) == 0)
		virtio_pci_create(host, d, &vp[2]);

	guest_io_run(&pio, &mmio, data, size, ram, RAM_SIZE);

	for (unsigned k = 0; k < 3; k++)
		virtio_pci_destroy(vp[k]);
	pci_host_free(host);
	irq_ctl_destroy(&irq);
	evloop_free(env.loop);
	bus_destroy(&pio);
	bus_destroy(&mmio);
	free(ram);
	return 0;
}
