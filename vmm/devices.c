/* Creating the devices of a VM from vireo-vmm's options. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <vireo/util.h>

#include "bus.h"
#include "console.h"
#include "dev/pci.h"
#include "devices.h"
#include "hold.h"
#include "irq.h"
#include "layout.h"
#include "loop.h"
#include "memory.h"
#include "options.h"
#include "runstate.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/net.h"
#include "net/mac.h"
#include "net/user.h"
#include "net/tap.h"
#include "vhost.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"
#include "x86/acpi.h"

/* ---- platform chips -------------------------------------------------------------- */

static void devices_reset_request(void *opaque)
{
	struct devices *d = opaque;

	runstate_request_stop(d->rs, VM_STOP_REBOOT, 0);
}

static void devices_debug_exit_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
				  bool is_write)
{
	struct devices *d = opaque;

	if (is_write)
		runstate_request_stop(d->rs, VM_STOP_DEBUG_EXIT, data[0]);
	else
		memset(data, 0xff, len);
}

static void devices_set_sci(void *opaque, int level)
{
	struct devices *d = opaque;

	irq_line(d->env.irq, LAYOUT_SCI_IRQ, level);
}

static void devices_pm_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
			  bool is_write)
{
	struct devices *d = opaque;
	enum acpi_pm_action a;

	pthread_mutex_lock(&d->pm_lock);
	a = acpi_pm_io(d->pm, (uint16_t)off, is_write, data, len);
	pthread_mutex_unlock(&d->pm_lock);
	if (a == ACPI_PM_POWEROFF)
		runstate_request_stop(d->rs, VM_STOP_POWEROFF, 0);
	else if (a == ACPI_PM_RESET)
		runstate_request_stop(d->rs, VM_STOP_REBOOT, 0);
}

void devices_power_button(struct devices *d)
{
	pthread_mutex_lock(&d->pm_lock);
	acpi_pm_power_button(d->pm);
	pthread_mutex_unlock(&d->pm_lock);
}

static time_t devices_rtc_now(void)
{
	return time(NULL);
}

static int devices_platform(struct devices *d, const struct vmm_opts *o, uint64_t start_ns)
{
	const struct dev_env *e = &d->env;
	int r;

	i8042_init(&d->i8042, devices_reset_request, d);
	mc146818_init(&d->rtc, devices_rtc_now);
	d->boot_timer.start_ns = start_ns;
	d->pm = acpi_pm_new(devices_set_sci, d);
	if (!d->pm)
		return -ENOMEM;
	r = bus_add(e->pio, I8042_BASE, I8042_NREGS, i8042_bus_io, &d->i8042, "i8042");
	if (!r)
		r = bus_add(e->pio, MC146818_BASE, MC146818_NREGS, mc146818_bus_io, &d->rtc, "rtc");
	if (!r)
		r = bus_add(e->pio, LAYOUT_PM_IO_BASE, ACPI_PM_IO_LEN, devices_pm_io, d, "acpi-pm");
	if (!r && o->boot_timer)
		r = bus_add(e->mmio, LAYOUT_BOOT_TIMER, BOOT_TIMER_LEN, boot_timer_bus_io,
			    &d->boot_timer, "boot-timer");
	if (!r && o->debug_exit)
		r = bus_add(e->pio, LAYOUT_DEBUG_EXIT, 1, devices_debug_exit_io, d, "debug-exit");
	return r;
}

/* ---- what virtio device models get: fd watches on the event loop ------------------ */

struct devices_watch {
	int fd;
	void (*cb)(void *opaque);
	void *opaque;
};

static void devices_watch_fn(void *opaque, uint32_t events)
{
	struct devices_watch *w = opaque;

	(void)events;
	w->cb(w->opaque);
}

static int devices_watch_fd(void *loop, int fd, void (*cb)(void *), void *opaque)
{
	struct devices *d = loop;
	struct devices_watch *w;
	int r;

	for (unsigned i = 0; i < DEVICES_MAX_WATCH; i++) {
		if (d->watch[i])
			continue;
		w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		*w = (struct devices_watch){ fd, cb, opaque };
		r = evloop_add(d->env.loop, fd, EPOLLIN, devices_watch_fn, w);
		if (r < 0) {
			free(w);
			return r;
		}
		d->watch[i] = w;
		return 0;
	}
	return -ENOSPC;
}

static void devices_unwatch_fd(void *loop, int fd)
{
	struct devices *d = loop;

	for (unsigned i = 0; i < DEVICES_MAX_WATCH; i++) {
		if (d->watch[i] && d->watch[i]->fd == fd) {
			evloop_del(d->env.loop, fd);
			free(d->watch[i]);
			d->watch[i] = NULL;
		}
	}
}

/* ---- virtio functions ------------------------------------------------------------ */

/* Refuse to hand a qcow2 file to the guest as a raw disk: the guest could
 * then rewrite the header to point at host files as backing images. */
static int devices_check_format(const struct virtio_disk_opt *disk)
{
	uint8_t magic[4] = { 0 };
	int fd;

	if (disk->format == VIRTIO_DISK_QCOW2 || disk->format == VIRTIO_DISK_RAW)
		return 0;
	fd = open(disk->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;   /* blk_raw_open reports it */
	if (read(fd, magic, 4) == 4 && !memcmp(magic, "QFI\xfb", 4)) {
		close(fd);
		verr("disk %s (%s) looks like a qcow2 image; say format=qcow2 (or "
		     "format=raw to give the guest the file as it is)", disk->id, disk->path);
		return -EINVAL;
	}
	close(fd);
	return 0;
}

static int devices_add_virtio(struct devices *d, struct virtio_dev *vdev)
{
	int r;

	if (d->nr_virtio == DEVICES_MAX_VIRTIO) {
		virtio_dev_destroy(vdev);
		return -ENOSPC;
	}
	r = virtio_pci_create(d->pci, vdev, &d->virtio[d->nr_virtio]);
	if (r == 0)
		d->nr_virtio++;
	return r;
}

/* Open the back end of one --disk (hold.c keeps it for every VM). */
int devices_open_disk(const struct virtio_disk_opt *disk, struct blk_backend **be)
{
	int r = devices_check_format(disk);

	if (r == 0 && disk->format == VIRTIO_DISK_QCOW2)
		r = blk_img_open_dirs(disk->path, "qcow2",
				      (disk->readonly ? BLK_IMG_READONLY : 0) |
				      (disk->backing_off ? BLK_IMG_NO_BACKING : 0),
				      disk->backing_dirs, be);
	else if (r == 0)
		r = blk_raw_open(disk->path, disk->readonly ? BLK_RAW_READONLY : 0, be);
	if (r == 0)
		vdebug("disk %s: %s, %llu bytes%s, %s I/O", disk->id, disk->path,
		       (unsigned long long)(*be)->size, disk->readonly ? ", read-only" : "",
		       blk_img_image(*be) ? "image-library" : blk_raw_engine(*be));
	return r;
}

static int devices_add_disk(struct devices *d, const struct virtio_disk_opt *disk,
			    unsigned index)
{
	struct blk_backend *be;
	struct virtio_dev *vdev;
	int r = hold_disk(index, &be);   /* kept from before the sandbox */

	r = r > 0 ? 0 : r == 0 ? devices_open_disk(disk, &be) : r;
	if (r == 0)
		r = virtio_blk_create(&d->venv, be, disk->id,
				      disk->serial[0] ? disk->serial : NULL, &vdev);
	if (r)
		return r;
	return devices_add_virtio(d, vdev);
}

/* ---- virtio-vsock ------------------------------------------------------------------ */

static int devices_add_vsock(struct devices *d, const struct virtio_opts *o)
{
	struct virtio_dev *vdev;
	int r = virtio_vsock_create(&d->venv, VIRTIO_VSOCK_DEFAULT_DEV, o->vsock_cid, &vdev);

	if (r == 0)
		r = devices_add_virtio(d, vdev);
	return r;
}

/* ---- virtio-balloon ---------------------------------------------------------------- */

static int devices_add_balloon(struct devices *d, const struct virtio_opts *o)
{
	struct virtio_balloon_range ranges[VIRTIO_BALLOON_MAX_RANGES];
	struct e820_entry e820[16];
	struct virtio_balloon_config cfg = {
		.reporting = o->balloon_reporting,
		.deflate_on_oom = o->balloon_deflate_on_oom,
		.target = o->balloon_target,
		.ranges = ranges,
	};
	unsigned n = memory_e820(d->env.mem, e820, VIREO_ARRAY_SIZE(e820));
	struct virtio_dev *vdev;
	int r;

	/* e820 RAM from 1 MiB up: never the BIOS area, the PCI hole or ECAM. */
	for (unsigned i = 0; i < n && cfg.nr_ranges < VIRTIO_BALLOON_MAX_RANGES; i++)
		if (e820[i].type == E820_RAM && e820[i].addr >= LAYOUT_HIGH_RAM)
			ranges[cfg.nr_ranges++] = (struct virtio_balloon_range){
				e820[i].addr, e820[i].size };
	if (o->balloon_target > d->env.mem->ram_size) {
		verr("--balloon target=%llu MiB is more than the guest's %llu MiB of RAM",
		     (unsigned long long)(o->balloon_target >> 20),
		     (unsigned long long)(d->env.mem->ram_size >> 20));
		return -EINVAL;
	}
	r = virtio_balloon_create(&d->venv, &cfg, &vdev);
	if (r == 0)
		r = devices_add_virtio(d, vdev);
	if (r)
		return r;
	d->balloon = vdev;
	return 0;
}

static int devices_virtio(struct devices *d, const struct virtio_opts *o, struct console *con)
{
	struct virtio_dev *vdev;
	int r = 0;

	d->venv = (struct virtio_env){
		.mem = d->env.mem, .loop = d,
		.watch_fd = devices_watch_fd, .unwatch_fd = devices_unwatch_fd,
		.open_file = hold_open_file,
	};
	for (unsigned i = 0; i < o->nr_disks && r == 0; i++)
		r = devices_add_disk(d, &o->disk[i], i);
	if (r == 0 && o->console) {
		struct virtio_console_backend be;

		console_hvc_backend(con, &be);
		r = virtio_console_create(&d->venv, &be, 0, 0, &vdev);
		if (r == 0)
			r = devices_add_virtio(d, vdev);
		if (r == 0)
			console_set_hvc(con, vdev);
	}
	if (r == 0 && o->rng) {
		r = virtio_rng_create(&d->venv, o->rng_rate, &vdev);
		if (r == 0)
			r = devices_add_virtio(d, vdev);
	}
	if (r == 0 && o->vsock)
		r = devices_add_vsock(d, o);
	if (r == 0 && o->balloon)
		r = devices_add_balloon(d, o);
	return r;
}

/* ---- network devices (--net) ------------------------------------------------------ */

/* /dev/vhost-net for the pairs of --net @index, or none (own data path):
 * vh[0].fd -1. */
static int devices_net_vhost(const struct virtio_net_opt *n, unsigned index,
			     struct vhost *vh)
{
	for (unsigned p = 0; p < VIRTIO_NET_MAX_PAIRS; p++)
		vh[p] = (struct vhost){ .fd = -1 };
	if (n->vhost == VIRTIO_NET_VHOST_OFF)
		return 0;
	for (unsigned p = 0; p < n->queues; p++) {
		int fd, e;

		if (!hold_vhost_net(index, p, &fd)) {
			fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
			if (fd < 0)
				fd = -errno;
		}
		e = fd < 0 ? fd : vhost_attach(&vh[p], fd);
		if (e == 0)
			continue;
		for (unsigned i = 0; i < VIRTIO_NET_MAX_PAIRS; i++)
			vhost_close(&vh[i]);
		if (n->vhost == VIRTIO_NET_VHOST_ON) {
			verr("--net %s: vhost=on, but /dev/vhost-net: %s", n->id, strerror(-e));
			return e;
		}
		vdebug("net %s: /dev/vhost-net: %s: data path in vireo-vmm", n->id,
		       strerror(-e));
		return 0;
	}
	return 0;
}

static int devices_add_net(struct devices *d, const struct virtio_net_opt *n, unsigned index,
			   const char *vm_name)
{
	struct net_backend *be;
	struct virtio_dev *vdev;
	struct vhost vh[VIRTIO_NET_MAX_PAIRS];
	uint8_t mac[6];
	int r;

	if (n->has_mac)
		memcpy(mac, n->mac, 6);
	else
		net_mac_generate(vm_name, index, mac);
	if (n->user) {
		struct net_user_cfg cfg = { .nr_fwd = n->nr_fwd };

		memcpy(cfg.fwd, n->fwd, sizeof(cfg.fwd));
		r = net_user_open(&cfg, d->env.loop, &be);
	} else if (n->tap[0]) {
		r = hold_net_tap(index, &be);   /* opened before the sandbox */
		r = r > 0 ? 0 : r == 0 ? net_tap_open(n->tap, n->queues, &be) : r;
	} else {
		r = net_tap_open_fd(n->fd, n->queues, &be);
	}
	if (r < 0)
		return r;
	if (n->user)
		for (unsigned p = 0; p < VIRTIO_NET_MAX_PAIRS; p++)
			vh[p] = (struct vhost){ .fd = -1 };   /* vhost-net needs a tap */
	else
		r = devices_net_vhost(n, index, vh);
	if (r < 0) {
		net_backend_close(be);
		return r;
	}
	r = virtio_net_create(&d->venv, be, mac, n->id, vh[0].fd >= 0 ? vh : NULL, &vdev);
	if (r < 0)
		return r;
	r = devices_add_virtio(d, vdev);
	vdebug("net %s: %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, %u queue pair(s), %s", n->id,
	       be->name, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], n->queues,
	       vh[0].fd >= 0 ? "vhost-net" : "own data path");
	return r;
}

static int devices_net(struct devices *d, const struct virtio_opts *o, const char *vm_name)
{
	int r = 0;

	for (unsigned i = 0; i < o->nr_nets && r == 0; i++)
		r = devices_add_net(d, &o->net[i], i, vm_name);
	return r;
}

/* ---- life cycle ---------------------------------------------------------------- */

int devices_create(struct devices *d, const struct vmm_opts *o, const struct dev_env *env,
		   struct runstate *rs, struct console *con, uint64_t start_ns)
{
	int r;

	memset(d, 0, sizeof(*d));
	d->env = *env;
	d->rs = rs;
	pthread_mutex_init(&d->pm_lock, NULL);
	r = devices_platform(d, o, start_ns);
	if (r)
		return r;
	d->pci = pci_host_new(&d->env);
	if (!d->pci)
		return -ENOMEM;
	r = devices_virtio(d, &o->virtio, con);
	if (r == 0)
		r = devices_net(d, &o->virtio, o->name);
	return r;
}

void devices_destroy(struct devices *d)
{
	for (unsigned i = 0; i < d->nr_virtio; i++)
		virtio_pci_destroy(d->virtio[i]);
	d->nr_virtio = 0;
	for (unsigned i = 0; i < DEVICES_MAX_WATCH; i++)
		if (d->watch[i])
			devices_unwatch_fd(d, d->watch[i]->fd);
	d->balloon = NULL;
	pci_host_free(d->pci);
	d->pci = NULL;
	if (d->pm)
		acpi_pm_free(d->pm);
	d->pm = NULL;
	pthread_mutex_destroy(&d->pm_lock);
}
