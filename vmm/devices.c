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
#include "irq.h"
#include "layout.h"
#include "loop.h"
#include "options.h"
#include "runstate.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
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

static int devices_add_disk(struct devices *d, const struct virtio_disk_opt *disk)
{
	struct blk_backend *be;
	struct virtio_dev *vdev;
	int r = devices_check_format(disk);

	if (r == 0 && disk->format == VIRTIO_DISK_QCOW2)
		r = blk_img_open_dirs(disk->path, "qcow2",
				      (disk->readonly ? BLK_IMG_READONLY : 0) |
				      (disk->backing_off ? BLK_IMG_NO_BACKING : 0),
				      disk->backing_dirs, &be);
	else if (r == 0)
		r = blk_raw_open(disk->path, disk->readonly ? BLK_RAW_READONLY : 0, &be);
	if (r == 0)
		r = virtio_blk_create(&d->venv, be, disk->id,
				      disk->serial[0] ? disk->serial : NULL, &vdev);
	if (r)
		return r;
	vdebug("disk %s: %s, %llu bytes%s, %s I/O", disk->id, disk->path,
	       (unsigned long long)be->size, disk->readonly ? ", read-only" : "",
	       blk_img_image(be) ? "image-library" : blk_raw_engine(be));
	return devices_add_virtio(d, vdev);
}

static int devices_virtio(struct devices *d, const struct virtio_opts *o, struct console *con)
{
	struct virtio_dev *vdev;
	int r = 0;

	d->venv = (struct virtio_env){
		.mem = d->env.mem, .loop = d,
		.watch_fd = devices_watch_fd, .unwatch_fd = devices_unwatch_fd,
	};
	for (unsigned i = 0; i < o->nr_disks && r == 0; i++)
		r = devices_add_disk(d, &o->disk[i]);
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
	return devices_virtio(d, &o->virtio, con);
}

void devices_destroy(struct devices *d)
{
	for (unsigned i = 0; i < d->nr_virtio; i++)
		virtio_pci_destroy(d->virtio[i]);
	d->nr_virtio = 0;
	for (unsigned i = 0; i < DEVICES_MAX_WATCH; i++)
		if (d->watch[i])
			devices_unwatch_fd(d, d->watch[i]->fd);
	pci_host_free(d->pci);
	d->pci = NULL;
	if (d->pm)
		acpi_pm_free(d->pm);
	d->pm = NULL;
	pthread_mutex_destroy(&d->pm_lock);
}
