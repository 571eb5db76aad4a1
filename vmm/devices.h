/*
 * The devices of one VM, as vireo-vmm's options ask for them: the i8042
 * (reset line), the MC146818 RTC, the ACPI PM block (power button, sleep
 * and reset registers), the optional boot-timer page and debug-exit port,
 * the PCI host, and a virtio PCI function per --disk, --virtio-console,
 * --rng, --vsock, --balloon and --net.  COM1 belongs to the console (console.h).
 *
 * vm.c creates them after guest RAM and the irqchip exist and destroys
 * them after the vCPUs are gone.  Guest requests to power off, reset or
 * exit (debug-exit) become stop requests on the VM's struct runstate.
 */
#ifndef VIREO_VMM_DEVICES_H
#define VIREO_VMM_DEVICES_H

#include <pthread.h>

#include "dev/boot_timer.h"
#include "dev/i8042.h"
#include "dev/mc146818.h"
#include "devenv.h"
#include "virtio/virtio.h"
#include "virtio/virtio_opts.h"

struct console;
struct runstate;
struct pci_host;
struct acpi_pm;
struct virtio_pci;
struct vmm_opts;

#define DEVICES_MAX_VIRTIO (VIRTIO_OPTS_MAX_DISKS + 4 + VIRTIO_OPTS_MAX_NETS)
#define DEVICES_MAX_WATCH  (DEVICES_MAX_VIRTIO * 2)

struct devices_watch;

struct devices {
	struct dev_env env;
	struct runstate *rs;
	struct i8042 i8042;
	struct mc146818 rtc;
	struct boot_timer boot_timer;
	struct acpi_pm *pm;
	pthread_mutex_t pm_lock;
	struct pci_host *pci;
	struct virtio_env venv;              /* what virtio device models get */
	struct virtio_pci *virtio[DEVICES_MAX_VIRTIO];
	unsigned nr_virtio;
	struct devices_watch *watch[DEVICES_MAX_WATCH];
	struct virtio_dev *balloon;          /* --balloon, owned by its transport */
};

/* Returns 0 or -errno (a message is printed for option errors); call
 * devices_destroy() either way. */
int devices_create(struct devices *d, const struct vmm_opts *o, const struct dev_env *env,
		   struct runstate *rs, struct console *con, uint64_t start_ns);
void devices_destroy(struct devices *d);
/* Open the back end of one --disk (hold.c: before the sandbox); 0 or
 * -errno after printing one line. */
struct blk_backend;
int devices_open_disk(const struct virtio_disk_opt *disk, struct blk_backend **be);

/* Press the ACPI power button (the guest shuts down if it listens). */
void devices_power_button(struct devices *d);

#endif
