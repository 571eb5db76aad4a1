/* The virtio PCI transport from the guest's side, on a KVM VM (suite kvm:
 * the routes, irqfds and ioeventfds are real): a device starts through its
 * BAR, its config interrupts go out on MSI-X, and a guest that keeps
 * rewriting an MSI-X entry cannot make every interrupt rebuild the GSI
 * routing table; a device restored over a new one maps its BARs where the
 * saved one had them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dev/pci.h"
#include "gmem.h"
#include "irq.h"
#include "loop.h"
#include "pci_guest.h"
#include "state.h"
#include "virtio/pci.h"
#include "virtio/rng.h"

static struct {
	struct bus pio, mmio;
	struct gmem mem;
	struct irq_ctl irq;
	struct dev_env env;
	struct virtio_env venv;
	struct pci_host *host;
	struct virtio_pci *vp;
	struct virtio_dev *rng;
	int kvm_fd, vm_fd;
} F;

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	bus_init(&F.pio, "pio");
	bus_init(&F.mmio, "mmio");
	F.kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	F.vm_fd = F.kvm_fd < 0 ? -1 : ioctl(F.kvm_fd, KVM_CREATE_VM, 0);
	if (F.vm_fd < 0 || ioctl(F.vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		fprintf(stderr, "test needs a KVM VM with an irqchip: %s\n", strerror(errno));
		return -1;
	}
	if (irq_ctl_init(&F.irq, F.vm_fd))
		return -1;
	F.env = (struct dev_env){ .mem = &F.mem, .loop = evloop_new(), .pio = &F.pio,
				  .mmio = &F.mmio, .irq = &F.irq };
	F.venv.mem = &F.mem;
	F.host = pci_host_new(&F.env);
	if (!F.env.loop || !F.host || virtio_rng_create(&F.venv, 0, &F.rng) ||
	    virtio_pci_create(F.host, F.rng, &F.vp))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	virtio_pci_destroy(F.vp);
	pci_host_free(F.host);
	irq_ctl_destroy(&F.irq);
	evloop_free(F.env.loop);
	bus_destroy(&F.pio);
	bus_destroy(&F.mmio);
	close(F.vm_fd);
	close(F.kvm_fd);
	return 0;
}

static void config_interrupt(void)
{
	virtio_dev_lock(F.rng);
	virtio_dev_config_changed(F.rng);
	virtio_dev_unlock(F.rng);
}

static void test_start_through_bar(void **state)
{
	(void)state;
	assert_int_equal(pg_cfg_rd(&F.mmio, 1, 0, 4), 0x10441af4);   /* virtio-rng */
	pg_virtio_start(&F.mmio, 1);
	assert_int_equal(pg_bar_rd(&F.mmio, 1, VIRTIO_PCI_COMMON_OFF + 0x14, 1), 0xf);
	assert_true(virtio_dev_running(F.rng));
}

static void test_route_updates_limited(void **state)
{
	uint64_t before;

	(void)state;
	pg_virtio_start(&F.mmio, 1);
	pg_msix_vector(&F.mmio, 1, 0, 0xfee00000u, 0x41);
	before = F.irq.commits;
	/* The guest rewrites the entry before every interrupt. */
	for (uint32_t i = 0; i < 1000; i++) {
		pg_bar_wr(&F.mmio, 1, VIRTIO_PCI_MSIX_OFF + 8, 0x41 + (i & 1), 4);
		config_interrupt();
	}
	assert_true(F.irq.commits - before >= 1);
	assert_true(F.irq.commits - before <= 32);
}

static unsigned routes_to(unsigned gsi_min)
{
	unsigned n = 0;

	for (unsigned i = 0; i < F.irq.nr_routes; i++)
		if (F.irq.routes->entries[i].gsi >= gsi_min)
			n++;
	return n;
}

/* The vhost hooks: a queue's kick eventfd and its vector's irqfd, the
 * route kept in step with the guest's MSI-X table. */
static void test_vhost_hooks(void **state)
{
	const struct virtio_transport *t;
	int kick, call;

	(void)state;
	pg_virtio_start(&F.mmio, 1);
	t = F.rng->transport;
	assert_non_null(t->queue_kick_fd);
	assert_non_null(t->queue_call_fd);
	virtio_dev_lock(F.rng);
	assert_int_equal(t->queue_call_fd(F.rng, 0, true), -ENOENT);   /* no MSI-X yet */
	assert_int_equal(t->queue_kick_fd(F.rng, 5, true), -EINVAL);
	virtio_dev_unlock(F.rng);
	pg_bar_wr(&F.mmio, 1, VIRTIO_PCI_COMMON_OFF + 0x16, 0, 2);      /* queue 0 */
	pg_bar_wr(&F.mmio, 1, VIRTIO_PCI_COMMON_OFF + 0x1a, 1, 2);      /* -> vector 1 */
	pg_msix_vector(&F.mmio, 1, 1, 0xfee00000u, 0x42);
	assert_int_equal(routes_to(IRQ_FIRST_MSI_GSI), 0);   /* lazy until an interrupt */
	virtio_dev_lock(F.rng);
	kick = t->queue_kick_fd(F.rng, 0, true);
	call = t->queue_call_fd(F.rng, 0, true);
	virtio_dev_unlock(F.rng);
	assert_true(kick >= 0);
	assert_true(call >= 0 && call != kick);
	assert_int_equal(routes_to(IRQ_FIRST_MSI_GSI), 1);   /* installed at once */
	/* masked: the route goes; unmasked: back, and new data follows */
	pg_bar_wr(&F.mmio, 1, VIRTIO_PCI_MSIX_OFF + 16 + 12, 1, 4);
	assert_int_equal(routes_to(IRQ_FIRST_MSI_GSI), 0);
	pg_bar_wr(&F.mmio, 1, VIRTIO_PCI_MSIX_OFF + 16 + 12, 0, 4);
	assert_int_equal(routes_to(IRQ_FIRST_MSI_GSI), 1);
	pg_bar_wr(&F.mmio, 1, VIRTIO_PCI_MSIX_OFF + 16 + 8, 0x43, 4);
	assert_int_equal(routes_to(IRQ_FIRST_MSI_GSI), 1);
	for (unsigned i = 0; i < F.irq.nr_routes; i++)
		if (F.irq.routes->entries[i].gsi >= IRQ_FIRST_MSI_GSI)
			assert_int_equal(F.irq.routes->entries[i].u.msi.data, 0x43);
	/* given back: the vector is no longer followed (a mask leaves the
	 * route, which the transport's own path installs lazily) */
	virtio_dev_lock(F.rng);
	assert_int_equal(t->queue_call_fd(F.rng, 0, false), 0);
	assert_int_equal(t->queue_kick_fd(F.rng, 0, false), kick);
	virtio_dev_unlock(F.rng);
	pg_bar_wr(&F.mmio, 1, VIRTIO_PCI_MSIX_OFF + 16 + 12, 1, 4);
	assert_int_equal(routes_to(IRQ_FIRST_MSI_GSI), 1);
	pg_bar_wr(&F.mmio, 1, VIRTIO_PCI_MSIX_OFF + 16 + 12, 0, 4);
	/* taken again, then a driver reset ends it: the transport's own kick
	 * handling is back and the vector is no longer followed */
	virtio_dev_lock(F.rng);
	assert_int_equal(t->queue_kick_fd(F.rng, 0, true), kick);
	assert_int_equal(t->queue_call_fd(F.rng, 0, true), call);
	virtio_dev_unlock(F.rng);
	pg_bar_wr(&F.mmio, 1, VIRTIO_PCI_COMMON_OFF + 0x14, 0, 1);
	pg_bar_wr(&F.mmio, 1, VIRTIO_PCI_MSIX_OFF + 16 + 12, 1, 4);
	assert_int_equal(routes_to(IRQ_FIRST_MSI_GSI), 1);
	assert_int_equal(evloop_mod(F.env.loop, kick, EPOLLIN), 0);
}

/* Saved, then restored into the device built anew (a migration's target,
 * which builds where the source was built): BAR 4 maps where the saved
 * device had it, the guest's move kept, and the device runs as saved. */
static void restore_with_bar_moved(uint64_t move)
{
	struct vstate_virtio *s = calloc(1, sizeof(*s));
	char err[256];
	uint8_t d[4] = { 0 };
	uint64_t a;

	assert_non_null(s);
	pg_virtio_start(&F.mmio, 1);
	a = pg_bar4(&F.mmio, 1);
	assert_true(a != 0);
	if (move) {
		uint32_t flags = pg_cfg_rd(&F.mmio, 1, 0x20, 4) & 15u;

		pg_cfg_wr(&F.mmio, 1, 0x04, 0, 2);     /* decoding off, as a guest does */
		pg_cfg_wr(&F.mmio, 1, 0x20, (uint32_t)(a + move) | flags, 4);
		pg_cfg_wr(&F.mmio, 1, 0x24, (uint32_t)((a + move) >> 32), 4);
		pg_cfg_wr(&F.mmio, 1, 0x04, 0x6, 2);   /* memory and bus master */
		assert_true(pg_bar4(&F.mmio, 1) == a + move);
	}
	assert_int_equal(pg_bar_rd(&F.mmio, 1, VIRTIO_PCI_COMMON_OFF + 0x14, 1), 0xf);
	assert_int_equal(virtio_pci_save(F.vp, s, err, sizeof(err)), 0);
	teardown(NULL);
	assert_int_equal(setup(NULL), 0);
	assert_true(pg_bar4(&F.mmio, 1) == a);
	assert_int_equal(pg_bar_rd(&F.mmio, 1, VIRTIO_PCI_COMMON_OFF + 0x14, 1), 0);
	assert_int_equal(virtio_pci_restore(F.vp, s, err, sizeof(err)), 0);
	assert_true(pg_bar4(&F.mmio, 1) == a + move);
	assert_int_equal(pg_cfg_rd(&F.mmio, 1, 0x04, 2), s->cfg[4] | s->cfg[5] << 8);
	assert_int_equal(pg_bar_rd(&F.mmio, 1, VIRTIO_PCI_COMMON_OFF + 0x14, 1), 0xf);
	assert_true(virtio_dev_running(F.rng));
	if (move) {
		/* Nothing of the device at the address it was built at. */
		bus_access(&F.mmio, a + VIRTIO_PCI_COMMON_OFF + 0x14, d, 1, false);
		assert_int_not_equal(d[0], 0xf);
	}
	free(s);
}

static void test_restore_bars_kept(void **state)
{
	(void)state;
	restore_with_bar_moved(0);
}

static void test_restore_bars_moved(void **state)
{
	(void)state;
	restore_with_bar_moved(1u << 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_through_bar, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_updates_limited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vhost_hooks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_bars_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_bars_moved, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
