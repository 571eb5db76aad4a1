/*
 * Concurrency harness for the device layer's locks (vmm/README.md, lock
 * order): several "vCPU" threads hammer what a hostile guest controls, all
 * through the buses as vCPU exits are (ECAM config writes that move BARs
 * and toggle decoding, MSI-X enable/mask bits, MSI-X table entries, the
 * common configuration, queue notifies, ISR reads), while the event-loop
 * thread raises interrupts from the device side (config changes under the
 * device lock, which route MSI-X vectors) and runs the loop.
 *
 * Behind the buses: the PCI host and virtio-blk (an in-memory disk),
 * virtio-console and virtio-rng on the virtio PCI transport, with a real
 * KVM VM (irqchip, so routes, irqfds and ioeventfds are real ioctls) when
 * /dev/kvm opens, else without KVM.
 *
 * Fails when a thread stops making progress for STRESS_STALL_S (a
 * deadlock), and, built with ThreadSanitizer (scripts/build.sh tsan), on
 * any data race or lock-order inversion TSan reports.
 *   stress_pci [SECONDS]   (default 5)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <vireo/util.h>

#include "bus.h"
#include "dev/pci.h"
#include "gmem.h"
#include "irq.h"
#include "layout.h"
#include "loop.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "pci_guest.h"

#include "fuzz_mem_disk.h"

#define NVCPU 3
#define NDEV 3
#define STRESS_STALL_S 10
#define RAM_SIZE (1u << 20)

static void sink_write(void *o, const void *b, size_t n) { (void)o; (void)b; (void)n; }

static struct {
	struct bus pio, mmio;
	struct gmem mem;
	struct irq_ctl irq;
	struct dev_env env;
	struct pci_host *host;
	struct virtio_env venv;
	struct virtio_pci *vp[NDEV];
	struct virtio_dev *vdev[NDEV];
	unsigned slot[NDEV];
	unsigned msix_cap[NDEV];
	uint64_t bar_addr[NDEV][2];      /* the two places BAR 4 moves between */
	_Atomic bool stop;
	_Atomic uint64_t progress[NVCPU + 1];
	int kvm_fd, vm_fd;
} S;

static uint32_t cfg_rd(unsigned slot, unsigned off, unsigned len)
{
	return pg_cfg_rd(&S.mmio, slot, off, len);
}

static void cfg_wr(unsigned slot, unsigned off, uint32_t v, unsigned len)
{
	pg_cfg_wr(&S.mmio, slot, off, v, len);
}

static void bar_wr(unsigned k, uint64_t off, uint32_t v, unsigned len)
{
	pg_bar_wr(&S.mmio, S.slot[k], off, v, len);
}

static uint32_t bar_rd(unsigned k, uint64_t off, unsigned len)
{
	return pg_bar_rd(&S.mmio, S.slot[k], off, len);
}

/* One random guest action on device k. */
static void guest_action(unsigned k, unsigned r)
{
	unsigned slot = S.slot[k], v = (r >> 8) % 4;

	switch (r % 10) {
	case 0:   /* move BAR 4 */
		cfg_wr(slot, 0x20, (uint32_t)S.bar_addr[k][(r >> 4) & 1] | 4, 4);
		break;
	case 1:   /* memory decode off and on */
		cfg_wr(slot, 0x04, (r & 0x100) ? 0x6 : 0x4, 2);
		cfg_wr(slot, 0x04, 0x6, 2);
		break;
	case 2:   /* MSI-X enable / function mask */
		cfg_wr(slot, S.msix_cap[k] + 3, (r & 0x200) ? 0x80 : 0xc0, 1);
		break;
	case 3:   /* an MSI-X table entry: address, data, mask */
		bar_wr(k, VIRTIO_PCI_MSIX_OFF + 16 * v, 0xfee00000u | ((r >> 12) & 0xf) << 12, 4);
		bar_wr(k, VIRTIO_PCI_MSIX_OFF + 16 * v + 8, 0x40 + (r >> 20 & 0x3f), 4);
		bar_wr(k, VIRTIO_PCI_MSIX_OFF + 16 * v + 12, (r >> 16) & 1, 4);
		break;
	case 4:   /* queue select and its vector, the config vector */
		bar_wr(k, VIRTIO_PCI_COMMON_OFF + 0x16, v % 2, 2);
		bar_wr(k, VIRTIO_PCI_COMMON_OFF + 0x1a, v, 2);
		bar_wr(k, VIRTIO_PCI_COMMON_OFF + 0x10, (r >> 6) % 3, 2);
		break;
	case 5:   /* queue notify */
		bar_wr(k, VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * (v % 2), v, 2);
		break;
	case 6:   /* ISR read (clears it) */
		(void)bar_rd(k, VIRTIO_PCI_ISR_OFF, 1);
		break;
	case 7:   /* reset and start again */
		pg_virtio_start(&S.mmio, S.slot[k]);
		break;
	case 8:   /* the PBA */
		(void)bar_rd(k, VIRTIO_PCI_PBA_OFF, 8);
		break;
	default:  /* device config space */
		(void)bar_rd(k, VIRTIO_PCI_DEVICE_OFF, 4);
		break;
	}
}

static void *vcpu_thread(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg, seed = 12345u * (id + 1);

	while (!atomic_load(&S.stop)) {
		unsigned r = (unsigned)rand_r(&seed);

		guest_action(r % NDEV, (unsigned)rand_r(&seed));
		atomic_fetch_add(&S.progress[id], 1);
	}
	return NULL;
}

/* The event loop: device-side interrupts under the device lock, kicks. */
static void *loop_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&S.stop)) {
		for (unsigned k = 0; k < NDEV; k++) {
			virtio_dev_lock(S.vdev[k]);
			virtio_dev_config_changed(S.vdev[k]);
			virtio_dev_unlock(S.vdev[k]);
		}
		evloop_run_once(S.env.loop, 0);
		atomic_fetch_add(&S.progress[NVCPU], 1);
	}
	return NULL;
}

static void setup_kvm(void)
{
	S.kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	S.vm_fd = S.kvm_fd < 0 ? -1 : ioctl(S.kvm_fd, KVM_CREATE_VM, 0);
	if (S.vm_fd >= 0 && ioctl(S.vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		close(S.vm_fd);
		S.vm_fd = -1;
	}
	printf("stress: %s\n", S.vm_fd >= 0 ? "with a KVM VM (real routes, irqfds, ioeventfds)"
					    : "without KVM (/dev/kvm did not open)");
}

static void setup(void)
{
	static const struct virtio_console_backend con_be = { .write = sink_write };
	struct blk_backend *disk;
	uint8_t *ram = calloc(1, RAM_SIZE);
	struct virtio_dev *d;

	setup_kvm();
	bus_init(&S.pio, "pio");
	bus_init(&S.mmio, "mmio");
	S.mem.region[0] = (struct gmem_region){ 0, RAM_SIZE, ram };
	S.mem.nr_regions = 1;
	S.mem.ram_size = RAM_SIZE;
	if (!ram || irq_ctl_init(&S.irq, S.vm_fd))
		abort();
	S.env = (struct dev_env){ .mem = &S.mem, .loop = evloop_new(), .pio = &S.pio,
				  .mmio = &S.mmio, .irq = &S.irq };
	S.host = pci_host_new(&S.env);
	S.venv.mem = &S.mem;
	disk = mem_disk_new(false);
	if (!S.env.loop || !S.host || !disk)
		abort();
	if (virtio_blk_create(&S.venv, disk, "stress", NULL, &d) ||
	    virtio_pci_create(S.host, d, &S.vp[0]))
		abort();
	S.vdev[0] = d;
	if (virtio_console_create(&S.venv, &con_be, 80, 25, &d) ||
	    virtio_pci_create(S.host, d, &S.vp[1]))
		abort();
	S.vdev[1] = d;
	if (virtio_rng_create(&S.venv, 0, &d) || virtio_pci_create(S.host, d, &S.vp[2]))
		abort();
	S.vdev[2] = d;
	for (unsigned k = 0; k < NDEV; k++) {
		S.slot[k] = k + 1;
		S.msix_cap[k] = pg_find_cap(&S.mmio, S.slot[k], 0x11);
		if (!S.msix_cap[k] || cfg_rd(S.slot[k], 0, 2) != 0x1af4)
			abort();
		S.bar_addr[k][0] = pg_bar4(&S.mmio, S.slot[k]);
		S.bar_addr[k][1] = LAYOUT_MMIO32_BASE + 0x10000000u + 0x10000u * k;
		/* A driver's start: MSI-X on, vectors unmasked and assigned. */
		for (unsigned v = 0; v < 3; v++)
			pg_msix_vector(&S.mmio, S.slot[k], v, 0xfee00000u, 0x41 + v);
		pg_virtio_start(&S.mmio, S.slot[k]);
		if (!(bar_rd(k, VIRTIO_PCI_COMMON_OFF + 0x14, 1) & 4))
			abort();   /* the device did not start */
	}
}

static void teardown(void)
{
	uint8_t *ram = S.mem.region[0].hva;

	for (unsigned k = 0; k < NDEV; k++)
		virtio_pci_destroy(S.vp[k]);
	pci_host_free(S.host);
	irq_ctl_destroy(&S.irq);
	evloop_free(S.env.loop);
	bus_destroy(&S.pio);
	bus_destroy(&S.mmio);
	free(ram);
	if (S.vm_fd >= 0)
		close(S.vm_fd);
	if (S.kvm_fd >= 0)
		close(S.kvm_fd);
}

int main(int argc, char **argv)
{
	unsigned seconds = argc > 1 ? (unsigned)atoi(argv[1]) : 5;
	uint64_t last[NVCPU + 1] = { 0 }, stalled[NVCPU + 1] = { 0 };
	pthread_t t[NVCPU + 1];
	int failed = 0;

	setup();
	for (unsigned i = 0; i < NVCPU; i++)
		pthread_create(&t[i], NULL, vcpu_thread, (void *)(uintptr_t)i);
	pthread_create(&t[NVCPU], NULL, loop_thread, NULL);
	for (unsigned s = 0; s < seconds && !failed; s++) {
		sleep(1);
		for (unsigned i = 0; i <= NVCPU; i++) {
			uint64_t p = atomic_load(&S.progress[i]);

			stalled[i] = p == last[i] ? stalled[i] + 1 : 0;
			last[i] = p;
			if (stalled[i] >= STRESS_STALL_S) {
				fprintf(stderr, "stress: %s thread %u made no progress for %u s: "
					"deadlock\n", i < NVCPU ? "vCPU" : "event-loop", i,
					STRESS_STALL_S);
				failed = 1;
			}
		}
		if (s + 1 == seconds) {
			/* Let a thread that is only slow (TSan) show progress. */
			for (unsigned i = 0; i <= NVCPU; i++)
				if (stalled[i])
					seconds++;
		}
	}
	if (failed) {
		fflush(NULL);
		_exit(1);   /* the threads are stuck: no teardown */
	}
	atomic_store(&S.stop, true);
	for (unsigned i = 0; i <= NVCPU; i++)
		pthread_join(t[i], NULL);
	printf("stress: %u s; vCPU actions %llu %llu %llu, loop rounds %llu, "
	       "route table commits %llu\n", seconds,
	       (unsigned long long)last[0], (unsigned long long)last[1],
	       (unsigned long long)last[2], (unsigned long long)last[3],
	       (unsigned long long)S.irq.commits);
	teardown();
	return 0;
}
