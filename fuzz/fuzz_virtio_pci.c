/*
 * libFuzzer target: the virtio PCI transport's guest-facing registers.
 * A program of accesses runs against the real dispatch (config space
 * through 0xcf8/0xcfc and ECAM, BAR moves, BAR 4 of each function: common
 * configuration, ISR, device configuration, notifications, MSI-X table and
 * PBA) with virtio-blk (in-memory disk), virtio-console and virtio-rng
 * behind it, plus writes into guest RAM so queues can carry requests.
 * Input: records of [kind:1][addr:4][len:1][data:4]; kind bit 0 write,
 * bits 1-3 select PIO / ECAM / the BAR window / other MMIO, kind 0x30 in
 * bits 4-5 writes the data into guest RAM (64 KiB at GPA 0).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "bus.h"
#include "dev/pci.h"
#include "layout.h"
#include "loop.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "vm.h"

#include "fuzz_mem_disk.h"

#define RAM_SIZE  0x10000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink_write(void *o, const void *b, size_t n) { (void)o; (void)b; (void)n; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct virtio_console_backend con_be = { .write = sink_write };
	struct virtio_pci *vp[3] = { NULL, NULL, NULL };
	struct virtio_env env = { 0 };
	struct virtio_dev *d;
	struct blk_backend *disk;
	struct vm vm;
	uint8_t *ram;

	memset(&vm, 0, sizeof(vm));
	vm.vm_fd = -1;
	ram = calloc(1, RAM_SIZE);
	vm.mem.region[0] = (struct gmem_region){ 0, RAM_SIZE, ram };
	vm.mem.nr_regions = 1;
	vm.mem.ram_size = RAM_SIZE;
	bus_init(&vm.pio, "pio");
	bus_init(&vm.mmio, "mmio");
	vm.loop = evloop_new();
	vm.pci = pci_host_new(&vm);
	if (!vm.pci || !vm.loop)
		abort();
	env.mem = &vm.mem;

	disk = mem_disk_new(false);
	if (virtio_blk_create(&env, disk, "fuzz", NULL, &d) == 0)
		virtio_pci_create(&vm, d, &vp[0]);
	if (virtio_console_create(&env, &con_be, 80, 25, &d) == 0)
		virtio_pci_create(&vm, d, &vp[1]);
	if (virtio_rng_create(&env, 0, &d) == 0)
		virtio_pci_create(&vm, d, &vp[2]);

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
		if ((r[0] & 0x30) == 0x30) {      /* guest RAM */
			memcpy(ram + (addr & (RAM_SIZE - 4)), r + 6, 4);
		} else if (r[0] & 2) {            /* MMIO */
			uint64_t gpa = (r[0] & 4) ? LAYOUT_ECAM_BASE + (addr & 0xfffff)
				     : (r[0] & 8) ? LAYOUT_MMIO32_BASE + (addr & 0xfffff) : addr;
			if (!pci_cfg_mmio(vm.pci, gpa, buf, len, wr))
				bus_access(&vm.mmio, gpa, buf, len, wr);
		} else {                          /* port I/O */
			uint16_t port = (r[0] & 4) ? (uint16_t)(0xcf8 + (addr & 7)) : (uint16_t)addr;
			if (len > 4)
				len = 4;
			if (!pci_cfg_pio(vm.pci, port, buf, len, wr))
				bus_access(&vm.pio, port, buf, len, wr);
		}
	}
	for (unsigned k = 0; k < 3; k++)
		virtio_pci_destroy(vp[k]);
	pci_host_free(vm.pci);
	evloop_free(vm.loop);
	bus_destroy(&vm.pio);
	bus_destroy(&vm.mmio);
	free(ram);
	return 0;
}
