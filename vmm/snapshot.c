#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vireo/util.h>

#include "dev/pci.h"
#include "hold.h"
#include "net/mac.h"
#include "net/user.h"
#include "sandbox.h"
#include "snapshot.h"
#include "state.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "vm.h"
#include "x86/acpi.h"

#define SNAP_PAGE 4096u

/* The MSRs a vCPU's save carries, where KVM has them (probed one by one).
 * The TSC comes first: the restore writes them in this order, and the TSC
 * deadline only means something once the TSC and the LAPIC are set. */
static const uint32_t snap_msrs[] = {
	0x10,        /* IA32_TSC */
	0x3b,        /* IA32_TSC_ADJUST */
	0x174, 0x175, 0x176,   /* SYSENTER_CS/ESP/EIP */
	0x1a0,       /* IA32_MISC_ENABLE */
	0x277,       /* IA32_PAT */
	0x2ff,       /* MTRR default type */
	0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084,   /* STAR, LSTAR, CSTAR, FMASK */
	0xc0000102,  /* KERNEL_GS_BASE */
	0xc0000103,  /* TSC_AUX */
	0x4b564d00, 0x4b564d01,   /* kvmclock: wall clock, system time */
	0x4b564d02,  /* async page faults */
	0x4b564d03,  /* steal time */
	0x4b564d04,  /* PV EOI */
	0x6e0,       /* IA32_TSC_DEADLINE */
};
_Static_assert(sizeof(snap_msrs) / sizeof(snap_msrs[0]) <= VSTATE_MAX_MSRS, "MSR list");

static int snap_msg(char *msg, size_t len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int snap_msg(char *msg, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return err;
}

/* The host's wall clock (CLOCK_REALTIME), ns since the epoch. */
static uint64_t vtime_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- save ------------------------------------------------------------------- */

/* struct kvm_msrs ends in a flexible array: room for @n entries. */
static struct kvm_msrs *snap_msrs_alloc(unsigned n)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));

	if (m)
		m->nmsrs = n;
	return m;
}

static int snap_get_msrs(int fd, struct vstate_vcpu *v)
{
	struct kvm_msrs *m = snap_msrs_alloc(1);

	if (!m)
		return -ENOMEM;
	v->nr_msrs = 0;
	for (unsigned i = 0; i < VIREO_ARRAY_SIZE(snap_msrs); i++) {
		m->entries[0] = (struct kvm_msr_entry){ .index = snap_msrs[i] };
		if (ioctl(fd, KVM_GET_MSRS, m) != 1)
			continue;   /* not on this host */
		v->msrs[v->nr_msrs].index = snap_msrs[i];
		v->msrs[v->nr_msrs].value = m->entries[0].data;
		v->nr_msrs++;
	}
	free(m);
	return 0;
}

static int snap_get_vcpu(struct vcpu *c, struct vstate_vcpu *v, char *msg, size_t msglen)
{
	struct kvm_xsave *xs = calloc(1, sizeof(*xs) + 4096);
	int fd = c->fd;
	const char *what = NULL;

	if (!xs)
		return -ENOMEM;
	memset(v, 0, sizeof(*v));
	if (ioctl(fd, KVM_GET_REGS, &v->regs) < 0)
		what = "KVM_GET_REGS";
	else if (ioctl(fd, KVM_GET_SREGS, &v->sregs) < 0)
		what = "KVM_GET_SREGS";
	else if (ioctl(fd, KVM_GET_DEBUGREGS, &v->debugregs) < 0)
		what = "KVM_GET_DEBUGREGS";
	else if (ioctl(fd, KVM_GET_XSAVE, xs) < 0)
		what = "KVM_GET_XSAVE";
	else if (ioctl(fd, KVM_GET_XCRS, &v->xcrs) < 0)
		what = "KVM_GET_XCRS";
	else if (ioctl(fd, KVM_GET_LAPIC, &v->lapic) < 0)
		what = "KVM_GET_LAPIC";
	else if (ioctl(fd, KVM_GET_VCPU_EVENTS, &v->events) < 0)
		what = "KVM_GET_VCPU_EVENTS";
	else if (ioctl(fd, KVM_GET_MP_STATE, &v->mp_state) < 0)
		what = "KVM_GET_MP_STATE";
	if (what) {
		int e = -errno;

		free(xs);
		return snap_msg(msg, msglen, e, "vCPU %u: %s: %s", c->index, what, strerror(-e));
	}
	memcpy(v->xsave, xs->region, sizeof(v->xsave));
	free(xs);
	return snap_get_msrs(fd, v);
}

static int snap_get_vm(struct vm *vm, struct vstate_vm *s, char *msg, size_t msglen)
{
	const char *what = NULL;

	memset(s, 0, sizeof(*s));
	s->pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	s->pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	s->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &s->clock) < 0)
		what = "KVM_GET_CLOCK";
	else if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s->pic_master) < 0 ||
		 ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s->pic_slave) < 0 ||
		 ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s->ioapic) < 0)
		what = "KVM_GET_IRQCHIP";
	else if (ioctl(vm->vm_fd, KVM_GET_PIT2, &s->pit) < 0)
		what = "KVM_GET_PIT2";
	if (what)
		return snap_msg(msg, msglen, -errno, "%s: %s", what, strerror(errno));
	/* The wall time of the save goes with the clock, so that a restore
	 * can advance the guest's clock by the time it was away: the
	 * kernel's (read with the clock) when it gives it, else ours. */
	s->clock.flags &= VSTATE_CLOCK_FLAGS;
	if (!(s->clock.flags & KVM_CLOCK_REALTIME)) {
		s->clock.realtime = (uint64_t)vtime_real_ns();
		s->clock.flags |= KVM_CLOCK_REALTIME;
	}
	return 0;
}

static void snap_get_devices(struct vm *vm, struct vstate_devices *d)
{
	struct ns16550 *u = &vm->console.uart;
	struct acpi_pm_state pm;

	memset(d, 0, sizeof(*d));
	pthread_mutex_lock(&u->lock);
	d->uart = (struct vstate_uart){
		.ier = u->ier, .iir_fifo = u->iir_fifo, .lcr = u->lcr, .mcr = u->mcr,
		.lsr = u->lsr, .msr = u->msr, .scr = u->scr, .dll = u->dll, .dlm = u->dlm,
		.fcr = u->fcr, .thr_ipending = u->thr_ipending, .rx_was_full = u->rx_was_full,
		.irq_level = (uint32_t)u->irq_level, .rx_head = u->rx_head,
		.rx_count = u->rx_count,
	};
	memcpy(d->uart.rx, u->rx, sizeof(d->uart.rx));
	pthread_mutex_unlock(&u->lock);

	pthread_mutex_lock(&vm->dev.rtc.lock);
	d->rtc_index = vm->dev.rtc.index & 0x7f;
	memcpy(d->rtc_cmos, vm->dev.rtc.cmos, sizeof(d->rtc_cmos));
	pthread_mutex_unlock(&vm->dev.rtc.lock);

	pthread_mutex_lock(&vm->dev.i8042.lock);
	d->i8042_cmd = vm->dev.i8042.cmd;
	d->i8042_ctr = vm->dev.i8042.ctr;
	d->i8042_out = vm->dev.i8042.out;
	d->i8042_out_full = vm->dev.i8042.out_full;
	pthread_mutex_unlock(&vm->dev.i8042.lock);

	pthread_mutex_lock(&vm->dev.pm_lock);
	acpi_pm_get_state(vm->dev.pm, &pm);
	pthread_mutex_unlock(&vm->dev.pm_lock);
	d->pm_sts = pm.sts;
	d->pm_en = pm.en;
	d->pm_cnt = pm.cnt;
	d->pm_sci_level = (uint32_t)pm.sci_level;
	d->pm_timer = pm.timer;

	pthread_mutex_lock(&vm->dev.pci->lock);
	d->pci_cf8 = vm->dev.pci->cf8;
	memcpy(d->pci_bridge_cfg, vm->dev.pci->bridge.cfg, sizeof(d->pci_bridge_cfg));
	pthread_mutex_unlock(&vm->dev.pci->lock);
}

void snapshot_config(struct vm *vm, struct vstate_config *c)
{
	const struct vmm_opts *o = vm->opts;
	uint64_t off = 0;

	memset(c, 0, sizeof(*c));
	c->memory = o->memory;
	c->cpus = vm->ncpus;
	c->flags = (o->boot_timer ? VSTATE_CFG_BOOT_TIMER : 0) |
		   (o->debug_exit ? VSTATE_CFG_DEBUG_EXIT : 0) |
		   (o->mem_merge ? VSTATE_CFG_MEM_MERGE : 0) |
		   (o->mem_hugepages ? VSTATE_CFG_HUGEPAGES : 0);
	c->flags |= (o->virtio.rng ? VSTATE_CFG_RNG : 0) |
		    (o->virtio.console ? VSTATE_CFG_CONSOLE : 0);
	c->rng_rate = o->virtio.rng ? o->virtio.rng_rate : 0;
	if (o->virtio.vsock) {
		c->flags |= VSTATE_CFG_VSOCK;
		c->vsock_cid = o->virtio.vsock_cid;
	}
	if (o->virtio.balloon) {
		c->flags |= VSTATE_CFG_BALLOON;
		c->balloon_flags = (o->virtio.balloon_reporting ? VSTATE_BALLOON_REPORTING : 0) |
				   (o->virtio.balloon_deflate_on_oom ?
				    VSTATE_BALLOON_DEFLATE_ON_OOM : 0);
		c->balloon_target = o->virtio.balloon_target;
	}
	c->nr_nets = o->virtio.nr_nets;
	c->nr_disks = o->virtio.nr_disks;
	c->nr_virtio = vm->dev.nr_virtio;
	c->serial_coalesce = (uint32_t)o->serial_coalesce;
	c->nr_regions = vm->mem.nr_regions;
	for (unsigned i = 0; i < vm->mem.nr_regions && i < VSTATE_MAX_REGIONS; i++) {
		c->region[i] = (struct vstate_region){
			.gpa = vm->mem.region[i].gpa, .size = vm->mem.region[i].size,
			.file_offset = off,
		};
		off += vm->mem.region[i].size;
	}
	c->memory_file_size = off;
}

static bool snap_zero_page(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (unsigned i = 0; i < SNAP_PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Guest RAM into @fd: runs of non-zero pages written, zero pages left as
 * holes, the file's size set at the end. */
static int snap_write_memory(struct vm *vm, int fd)
{
	uint64_t off = 0;

	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct gmem_region *r = &vm->mem.region[i];
		uint64_t p = 0;

		while (p < r->size) {
			uint64_t run;
			int e;

			if (snap_zero_page(r->hva + p)) {
				p += SNAP_PAGE;
				continue;
			}
			run = p;
			while (run < r->size && run - p < (64u << 20) && !snap_zero_page(r->hva + run))
				run += SNAP_PAGE;
			e = vio_pwrite_full(fd, r->hva + p, (size_t)(run - p), (off_t)(off + p));
			if (e)
				return e < 0 ? e : -EIO;
			p = run;
		}
		off += r->size;
	}
	if (ftruncate(fd, (off_t)off) < 0)
		return -errno;
	return 0;
}

_Static_assert(NET_USER_MAX_FWD == VSTATE_MAX_FWD, "hostfwd rules saved");

/* The @i-th virtio-net device (the order of --net). */
static struct virtio_dev *snap_net_dev(struct vm *vm, unsigned i)
{
	for (unsigned k = 0; k < vm->dev.nr_virtio; k++) {
		struct virtio_dev *vd = virtio_pci_vdev(vm->dev.virtio[k]);

		if (vd->ops->device_id == VIRTIO_ID_NET && i-- == 0)
			return vd;
	}
	return NULL;
}

/* A user-mode net's SLIRP section: its hostfwd rules and libslirp's state. */
static int snap_add_slirp(struct vm *vm, struct vstate_writer *w, unsigned i,
			  const struct virtio_net_opt *k, char *msg, size_t msglen)
{
	struct virtio_dev *vd = snap_net_dev(vm, i);
	struct vstate_slirp *sl;
	void *st = NULL;
	size_t len = 0;
	int r;

	if (!vd || !net_user_is(virtio_net_backend(vd)))
		return snap_msg(msg, msglen, -EINVAL, "net %s: no user-mode back end", k->id);
	virtio_dev_lock(vd);
	r = net_user_state_save(virtio_net_backend(vd), VSTATE_MAX_SLIRP_STATE, &st, &len);
	virtio_dev_unlock(vd);
	if (r)   /* too large: cannot be saved (409), like a device that is not */
		return snap_msg(msg, msglen, r == -EFBIG ? -ENOTSUP : r, "net %s: libslirp's "
				"state %s", k->id, r == -EFBIG ? "is larger than 1 MiB" :
				"could not be saved");
	sl = calloc(1, vstate_slirp_len(len));
	if (!sl) {
		free(st);
		return snap_msg(msg, msglen, -ENOMEM, "out of memory");
	}
	sl->state_version = (uint32_t)net_user_state_version();
	sl->nr_fwd = k->nr_fwd;
	for (unsigned f = 0; f < k->nr_fwd && f < VSTATE_MAX_FWD; f++) {
		sl->fwd[f].udp = k->fwd[f].udp;
		sl->fwd[f].host_addr = k->fwd[f].host_addr.s_addr;
		sl->fwd[f].guest_addr = k->fwd[f].guest_addr.s_addr;
		sl->fwd[f].host_port = k->fwd[f].host_port;
		sl->fwd[f].guest_port = k->fwd[f].guest_port;
	}
	sl->state_len = (uint32_t)len;
	if (len)
		memcpy(sl->state, st, len);
	vstate_add(w, VSTATE_SEC_SLIRP, i, sl, vstate_slirp_len(len));
	free(st);
	free(sl);
	return 0;
}

/* The disks' options (to build the same devices again) and every virtio
 * function's state. */
static int snap_add_virtio(struct vm *vm, struct vstate_writer *w, char *msg, size_t msglen)
{
	const struct virtio_opts *o = &vm->opts->virtio;
	struct vstate_virtio *sv = malloc(sizeof(*sv));
	struct vstate_disk *sd = malloc(sizeof(*sd));
	int r = 0;

	if (!sv || !sd) {
		r = snap_msg(msg, msglen, -ENOMEM, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < o->nr_disks && !r; i++) {
		const struct virtio_disk_opt *k = &o->disk[i];
		struct virtio_dev *vd = virtio_pci_vdev(vm->dev.virtio[i]);
		uint64_t sectors = 0;

		memset(sd, 0, sizeof(*sd));
		if (strlen(k->path) >= sizeof(sd->path)) {
			r = snap_msg(msg, msglen, -ENAMETOOLONG, "disk %s: path too long", k->id);
			break;
		}
		snprintf(sd->path, sizeof(sd->path), "%s", k->path);
		snprintf(sd->id, sizeof(sd->id), "%s", k->id);
		snprintf(sd->serial, sizeof(sd->serial), "%s", k->serial);
		sd->format = (uint32_t)k->format;
		sd->readonly = k->readonly;
		sd->backing_off = k->backing_off;
		for (unsigned b = 0; b < VSTATE_MAX_BACKING_DIRS && k->backing_dirs[b] && !r; b++) {
			if (strlen(k->backing_dirs[b]) >= sizeof(sd->backing_dirs[b])) {
				r = snap_msg(msg, msglen, -ENAMETOOLONG, "disk %s: backing "
					     "directory path too long", k->id);
				break;
			}
			snprintf(sd->backing_dirs[b], sizeof(sd->backing_dirs[b]), "%s",
				 k->backing_dirs[b]);
			sd->nr_backing_dirs = b + 1;
		}
		if (r)
			break;
		virtio_dev_lock(vd);
		virtio_dev_config_read(vd, VIRTIO_BLK_CFG_CAPACITY, &sectors, sizeof(sectors));
		virtio_dev_unlock(vd);
		sd->size = sectors * 512;
		vstate_add(w, VSTATE_SEC_DISK, i, sd, sizeof(*sd));
	}
	for (unsigned i = 0; i < o->nr_nets && i < VSTATE_MAX_NETS && !r; i++) {
		const struct virtio_net_opt *k = &o->net[i];
		struct vstate_net sn;

		memset(&sn, 0, sizeof(sn));
		snprintf(sn.id, sizeof(sn.id), "%s", k->id);
		sn.kind = k->user ? VSTATE_NET_USER : k->tap[0] ? VSTATE_NET_TAP : VSTATE_NET_FD;
		snprintf(sn.tap, sizeof(sn.tap), "%s", k->tap);
		/* The MAC it was made with, also when derived from the VM's
		 * name: a restore under another name keeps it. */
		if (k->has_mac)
			memcpy(sn.mac, k->mac, 6);
		else
			net_mac_generate(vm->opts->name, i, sn.mac);
		sn.vhost = (uint8_t)k->vhost;
		sn.queues = k->queues;
		vstate_add(w, VSTATE_SEC_NET, i, &sn, sizeof(sn));
		if (k->user)
			r = snap_add_slirp(vm, w, i, k, msg, msglen);
	}
	for (unsigned i = 0; i < vm->dev.nr_virtio && !r; i++) {
		r = virtio_pci_save(vm->dev.virtio[i], sv, msg, msglen);
		if (!r)
			vstate_add(w, VSTATE_SEC_VIRTIO, i, sv, sizeof(*sv));
	}
out:
	free(sv);
	free(sd);
	return r;
}

static int snap_build_state(struct vm *vm, struct vstate_writer *w,
			    const struct vstate_snapshot *sn, char *msg, size_t msglen)
{
	struct vstate_config cfg;
	struct vstate_vcpu *v = malloc(sizeof(*v));
	struct vstate_vm *s = malloc(sizeof(*s));
	struct vstate_devices *d = malloc(sizeof(*d));
	int r = 0;

	if (!v || !s || !d) {
		r = snap_msg(msg, msglen, -ENOMEM, "out of memory");
		goto out;
	}
	snapshot_config(vm, &cfg);
	vstate_add(w, VSTATE_SEC_CONFIG, 0, &cfg, sizeof(cfg));
	for (unsigned i = 0; i < vm->ncpus && !r; i++) {
		r = snap_get_vcpu(vm->vcpus[i], v, msg, msglen);
		if (!r)
			vstate_add(w, VSTATE_SEC_VCPU, i, v, sizeof(*v));
	}
	if (!r)
		r = snap_get_vm(vm, s, msg, msglen);
	if (!r) {
		vstate_add(w, VSTATE_SEC_VM, 0, s, sizeof(*s));
		snap_get_devices(vm, d);
		vstate_add(w, VSTATE_SEC_DEVICES, 0, d, sizeof(*d));
		r = snap_add_virtio(vm, w, msg, msglen);
	}
	if (!r && sn)
		vstate_add(w, VSTATE_SEC_SNAPSHOT, 0, sn, sizeof(*sn));
	if (!r) {
		r = vstate_finish(w);
		if (r)
			snap_msg(msg, msglen, r, "out of memory");
	}
out:
	free(v);
	free(s);
	free(d);
	return r;
}

/* Open DIR/NAME.new for writing (made or emptied; DIR made when
 * missing).  In the sandbox the monitor does it.  A descriptor, or -1
 * with errno set. */
static int snap_create(const char *dir, const char *name, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/%s.new", dir, name);
	if (sandbox_active()) {
		fd = sandbox_save_create(dir, name);
		if (fd < 0)
			errno = -fd;
		return fd < 0 ? -1 : fd;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

/* DIR/NAME.new to DIR/NAME; 0 or -1 with errno set. */
static int snap_rename(const char *dir, const char *name, const char *from)
{
	char to[PATH_MAX];
	int r;

	if (sandbox_active()) {
		r = sandbox_save_rename(dir, name);
		if (r)
			errno = -r;
		return r ? -1 : 0;
	}
	snprintf(to, sizeof(to), "%s/%s", dir, name);
	return rename(from, to);
}

/* Whether every device's state can be saved: each virtio device type
 * has its save hook, and the state file holds at most VSTATE_MAX_NETS
 * nets. */
int snapshot_check_devices(struct vm *vm, const char *what, char *msg, size_t msglen)
{
	for (unsigned i = 0; i < vm->dev.nr_virtio; i++) {
		struct virtio_dev *vd = virtio_pci_vdev(vm->dev.virtio[i]);
		uint16_t id = vd->ops->device_id;

		if (id != VIRTIO_ID_BLOCK && id != VIRTIO_ID_CONSOLE && id != VIRTIO_ID_RNG &&
		    id != VIRTIO_ID_NET && id != VIRTIO_ID_VSOCK && id != VIRTIO_ID_BALLOON)
			return snap_msg(msg, msglen, -ENOTSUP, "%s cannot be %s", vd->name, what);
	}
	if (vm->opts->virtio.nr_nets > VSTATE_MAX_NETS)
		return snap_msg(msg, msglen, -ENOTSUP, "%u nets cannot be %s: at most %u",
				vm->opts->virtio.nr_nets, what, VSTATE_MAX_NETS);
	return 0;
}

/* The disks' requests under way complete (their used entries and
 * interrupts are then part of the state); the vCPUs are parked, so no
 * new ones come. */
static void snap_drain_disks(struct vm *vm)
{
	for (unsigned i = 0; i < vm->dev.nr_virtio; i++) {
		struct virtio_dev *vd = virtio_pci_vdev(vm->dev.virtio[i]);

		if (vd->ops->device_id == VIRTIO_ID_BLOCK)
			virtio_blk_drain(vd);
	}
}

/* snapshot_state, with @sn's section for a snapshot. */
static int snap_state(struct vm *vm, struct vstate_writer *w, const struct vstate_snapshot *sn,
		      char *msg, size_t msglen)
{
	int r;

	r = snapshot_check_devices(vm, "saved", msg, msglen);
	if (r)
		return r;
	snap_drain_disks(vm);
	/* What the vCPUs wrote to COM1 before they parked goes out first, so
	 * the UART's state below is the one the guest last saw. */
	coalesce_drain(&vm->console.coal);
	console_flush(&vm->console);
	return snap_build_state(vm, w, sn, msg, msglen);
}

int snapshot_state(struct vm *vm, struct vstate_writer *w, char *msg, size_t msglen)
{
	return snap_state(vm, w, NULL, msg, msglen);
}

/* The save of snapshot_save, with @sn's section for a snapshot. */
static int snap_save_dir(struct vm *vm, const char *dir, const struct vstate_snapshot *sn,
			 char *msg, size_t msglen)
{
	char mpath[PATH_MAX], spath[PATH_MAX];
	struct vstate_writer w;
	int mfd = -1, sfd = -1, r;

	if (strlen(dir) + 16 > PATH_MAX)
		return snap_msg(msg, msglen, -ENAMETOOLONG, "%s: path too long", dir);
	vstate_writer_init(&w);
	r = snap_state(vm, &w, sn, msg, msglen);
	if (r)
		goto out;
	mfd = snap_create(dir, SNAPSHOT_MEMORY_FILE, mpath, sizeof(mpath));
	if (mfd < 0) {
		r = snap_msg(msg, msglen, -errno, "cannot create %s: %s", mpath, strerror(errno));
		goto out;
	}
	r = snap_write_memory(vm, mfd);
	if (!r && fsync(mfd) < 0)
		r = -errno;
	if (r) {
		snap_msg(msg, msglen, r, "cannot write %s: %s", mpath, strerror(-r));
		goto out;
	}
	sfd = snap_create(dir, SNAPSHOT_STATE_FILE, spath, sizeof(spath));
	if (sfd < 0) {
		r = snap_msg(msg, msglen, -errno, "cannot create %s: %s", spath, strerror(errno));
		goto out;
	}
	r = vio_pwrite_full(sfd, w.buf, w.len, 0);
	if (!r && fsync(sfd) < 0)
		r = -errno;
	if (r) {
		snap_msg(msg, msglen, r < 0 ? r : -EIO, "cannot write %s: %s", spath,
			 strerror(r < 0 ? -r : EIO));
		goto out;
	}
	/* The memory file first: a state file under its final name always
	 * has its memory beside it. */
	if (snap_rename(dir, SNAPSHOT_MEMORY_FILE, mpath) < 0) {
		r = snap_msg(msg, msglen, -errno, "cannot rename %s: %s", mpath, strerror(errno));
		goto out;
	}
	if (snap_rename(dir, SNAPSHOT_STATE_FILE, spath) < 0)
		r = snap_msg(msg, msglen, -errno, "cannot rename %s: %s", spath, strerror(errno));
out:
	if (mfd >= 0)
		close(mfd);
	if (sfd >= 0)
		close(sfd);
	vstate_writer_free(&w);
	return r;
}

int snapshot_save(struct vm *vm, const char *dir, char *msg, size_t msglen)
{
	return snap_save_dir(vm, dir, NULL, msg, msglen);
}

/* Disk i's back end, or NULL. */
static struct blk_backend *snap_disk_be(struct vm *vm, unsigned i)
{
	struct virtio_dev *vd = virtio_pci_vdev(vm->dev.virtio[i]);

	return vd->ops->device_id == VIRTIO_ID_BLOCK ? virtio_blk_backend(vd) : NULL;
}

int snapshot_take(struct vm *vm, const char *name, const char *dir, char *msg, size_t msglen)
{
	const struct virtio_opts *o = &vm->opts->virtio;
	struct vstate_snapshot sn;
	char err[256], def[PATH_MAX];
	unsigned first = ~0u, made = 0;
	int r;

	memset(&sn, 0, sizeof(sn));
	if (!vstate_snapshot_name_ok(name))
		return snap_msg(msg, msglen, -EINVAL, "'%s' is not a snapshot name", name);
	snprintf(sn.name, sizeof(sn.name), "%s", name);
	r = snapshot_check_devices(vm, "saved", msg, msglen);
	if (r)
		return r;
	snap_drain_disks(vm);
	/* Which disks: every writable one, each a qcow2 image without a
	 * snapshot of this name; read-only disks cannot change. */
	for (unsigned i = 0; i < o->nr_disks && i < VSTATE_MAX_DISKS; i++) {
		struct blk_backend *be = snap_disk_be(vm, i);
		uint64_t size;

		if (!be || be->read_only)
			continue;
		if (!be->ops->snapshot || strcmp(be->format, "qcow2"))
			return snap_msg(msg, msglen, -ENOTSUP, "disk %s (%s) is a writable %s "
					"image: only qcow2 images have internal snapshots (make it "
					"read-only, or use PUT /vm/save)", o->disk[i].id,
					o->disk[i].path, be->format);
		r = be->ops->snapshot(be, BLK_SNAP_FIND, name, &size, err, sizeof(err));
		if (r < 0)
			return snap_msg(msg, msglen, r, "disk %s (%s): %s", o->disk[i].id,
					o->disk[i].path, err);
		if (r > 0)
			return snap_msg(msg, msglen, -EEXIST, "disk %s (%s) already has a snapshot "
					"named %s", o->disk[i].id, o->disk[i].path, name);
		sn.disk[i] = 1;
		if (first == ~0u)
			first = i;
	}
	if (first == ~0u)
		return snap_msg(msg, msglen, -ENOTSUP, "the VM has no writable qcow2 disk "
				"(use PUT /vm/save)");
	if (!dir) {
		if (strlen(o->disk[first].path) + strlen(name) + 8 > sizeof(def))
			return snap_msg(msg, msglen, -ENAMETOOLONG, "%s: path too long",
					o->disk[first].path);
		snprintf(def, sizeof(def), "%s.snap-%s", o->disk[first].path, name);
		dir = def;
	}
	for (unsigned i = 0; i < o->nr_disks && i < VSTATE_MAX_DISKS && !r; i++) {
		struct blk_backend *be = snap_disk_be(vm, i);

		if (!sn.disk[i])
			continue;
		r = be->ops->snapshot(be, BLK_SNAP_CREATE, name, NULL, err, sizeof(err));
		if (r < 0)
			snap_msg(msg, msglen, r, "disk %s (%s): cannot take the snapshot: %s",
				 o->disk[i].id, o->disk[i].path, err);
		else
			made = i + 1;
	}
	if (!r)
		r = snap_save_dir(vm, dir, &sn, msg, msglen);
	if (r) {
		/* Nothing left behind: the disks' snapshots go again. */
		for (unsigned i = 0; i < made; i++) {
			struct blk_backend *be = snap_disk_be(vm, i);

			if (sn.disk[i] && be->ops->snapshot(be, BLK_SNAP_DELETE, name, NULL, err,
							    sizeof(err)) < 0)
				verr("disk %s (%s): cannot delete the snapshot %s again: %s",
				     o->disk[i].id, o->disk[i].path, name, err);
		}
		return r;
	}
	vinfo("snapshot %s: the disks' internal snapshots and the VM in %s", name, dir);
	return 0;
}

/* ---- restore ---------------------------------------------------------------- */

static struct {
	void *buf;          /* the state file, 8-byte aligned */
	size_t len;
	struct vstate st;
	char mem_path[PATH_MAX];
	char label[4200];   /* "--restore DIR" or "--incoming URI", for messages */
	int mem_fd;         /* --incoming: guest RAM received (a memfd), else -1 */
	uint8_t *mem_map;   /* --incoming: its mapping, until moved into place */
	struct vstate_config early_cfg;   /* snapshot_incoming_early's, until the state */
} snap = { .mem_fd = -1 };

static int snap_fail(const struct vmm_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int snap_fail(const struct vmm_opts *o, const char *fmt, ...)
{
	char m[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	(void)o;
	verr("%s: %s", snap.label, m);
	snapshot_release();
	return -EINVAL;
}

static int snap_read_state(const struct vmm_opts *o)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, e;

	snprintf(path, sizeof(path), "%s/%s", o->restore_dir, SNAPSHOT_STATE_FILE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return snap_fail(o, "cannot open the state file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > VSTATE_MAX_FILE) {
		close(fd);
		return snap_fail(o, "%s is not a state file (not a regular file of at most %u bytes)",
				 path, VSTATE_MAX_FILE);
	}
	snap.len = (size_t)st.st_size;
	snap.buf = aligned_alloc(8, snap.len ? VIREO_ALIGN_UP(snap.len, 8) : 8);
	if (!snap.buf) {
		close(fd);
		return snap_fail(o, "out of memory");
	}
	e = vio_pread_full(fd, snap.buf, snap.len, 0);
	close(fd);
	if (e)
		return snap_fail(o, "cannot read %s: %s", path, e < 0 ? strerror(-e) : "short read");
	return 0;
}

/* The saved disks into @o; a --disk given replaces the saved path of the
 * disk at its place, and must agree with the save on everything else. */
static int snap_prepare_disks(struct vmm_opts *o)
{
	const struct vstate_config *c = snap.st.config;
	bool given = o->virtio.nr_disks != 0;

	for (unsigned i = 0; i < c->nr_disks; i++) {
		const struct vstate_disk *sd = snap.st.disk[i];
		struct virtio_disk_opt *k = &o->virtio.disk[i];

		if (!virtio_opts_id_ok(sd->id))
			return snap_fail(o, "state file: disk %u has the id '%s'", i, sd->id);
		if (sd->format == VIRTIO_DISK_RAW && (sd->backing_off || sd->nr_backing_dirs))
			return snap_fail(o, "state file: disk %s: backing options on a raw disk",
					 sd->id);
		if (given && (strcmp(k->id, sd->id) || k->readonly != (bool)sd->readonly ||
			      (k->format != VIRTIO_DISK_AUTO &&
			       k->format != (enum virtio_disk_format)sd->format) ||
			      (k->serial[0] && strcmp(k->serial, sd->serial))))
			return snap_fail(o, "--disk %s does not match the saved disk %u (id %s%s): "
					 "only its path may differ", k->path, i, sd->id,
					 sd->readonly ? ", read-only" : "");
		if (!given) {
			memset(k, 0, sizeof(*k));
			k->path = sd->path;
		}
		k->format = (enum virtio_disk_format)sd->format;
		k->readonly = sd->readonly;
		snprintf(k->id, sizeof(k->id), "%s", sd->id);
		/* at most 20 characters: checked by vstate_parse */
		memcpy(k->serial, sd->serial, strnlen(sd->serial, sizeof(k->serial) - 1));
		k->serial[strnlen(sd->serial, sizeof(k->serial) - 1)] = 0;
		k->backing_off = sd->backing_off;
		memset(k->backing_dirs, 0, sizeof(k->backing_dirs));
		for (unsigned b = 0; b < sd->nr_backing_dirs && b < VIRTIO_DISK_MAX_BACKING_DIRS; b++)
			k->backing_dirs[b] = sd->backing_dirs[b];
	}
	o->virtio.nr_disks = c->nr_disks;
	return 0;
}

/* A snapshot's disks: each must have the internal snapshot, of the saved
 * size; only when all do are they reverted to it. */
static int snap_revert_disks(const struct vmm_opts *o)
{
	const struct vstate_snapshot *sn = snap.st.snapshot;
	const struct vstate_config *c = snap.st.config;
	char err[256];

	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < c->nr_disks; i++) {
			const struct virtio_disk_opt *k = &o->virtio.disk[i];
			struct blk_backend *be = NULL;
			uint64_t size = 0;
			int r;

			if (!sn->disk[i])
				continue;
			if (hold_disk(i, &be) <= 0) {
				verr("--restore %s: disk %s (%s) cannot be reverted: not open",
				     o->restore_dir, k->id, k->path);
				return -EINVAL;
			}
			if (!be->ops->snapshot) {
				blk_backend_close(be);
				verr("--restore %s: disk %s (%s) is a %s image, without the "
				     "snapshot %s", o->restore_dir, k->id, k->path, be->format,
				     sn->name);
				return -EINVAL;
			}
			if (pass == 0)
				r = be->ops->snapshot(be, BLK_SNAP_FIND, sn->name, &size, err,
						      sizeof(err));
			else
				r = be->ops->snapshot(be, BLK_SNAP_APPLY, sn->name, NULL, err,
						      sizeof(err));
			blk_backend_close(be);
			if (r < 0) {
				verr("--restore %s: disk %s (%s): %s snapshot %s: %s", o->restore_dir,
				     k->id, k->path, pass ? "cannot revert to the" : "the",
				     sn->name, err);
				return -EINVAL;
			}
			if (pass == 0 && r == 0) {
				verr("--restore %s: disk %s (%s) has no snapshot named %s",
				     o->restore_dir, k->id, k->path, sn->name);
				return -EINVAL;
			}
			if (pass == 0 && size != snap.st.disk[i]->size) {
				verr("--restore %s: disk %s (%s): its snapshot %s has %llu bytes, "
				     "the saved disk had %llu", o->restore_dir, k->id, k->path,
				     sn->name, (unsigned long long)size,
				     (unsigned long long)snap.st.disk[i]->size);
				return -EINVAL;
			}
		}
	}
	vinfo("--restore %s: the disks are back at their snapshot %s", o->restore_dir, sn->name);
	return 0;
}

int snapshot_check_disks(const struct vmm_opts *o)
{
	const struct vstate_config *c = snap.st.config;

	for (unsigned i = 0; c && i < c->nr_disks; i++) {
		struct blk_backend *be = NULL;
		uint64_t size;

		if (snap.st.snapshot && snap.st.snapshot->disk[i])
			continue;   /* its snapshot's size counts: snap_revert_disks */
		if (hold_disk(i, &be) <= 0)
			continue;   /* nothing held: devices.c opens it and fails alike */
		size = be->size / 512 * 512;
		blk_backend_close(be);
		if (size != snap.st.disk[i]->size) {
			verr("%s: disk %s (%s) has %llu bytes, the saved one had %llu",
			     snap.label, o->virtio.disk[i].id, o->virtio.disk[i].path,
			     (unsigned long long)size, (unsigned long long)snap.st.disk[i]->size);
			return -EINVAL;
		}
	}
	if (c && snap.st.snapshot)
		return snap_revert_disks(o);
	return 0;
}

/* The saved nets into @o; a --net given (tap= or fd=) replaces the saved
 * back end of the net at its place, and must agree with the save on its
 * id (and MAC and queues when it names them); a net saved with fd= needs
 * one. */
static int snap_prepare_nets(struct vmm_opts *o)
{
	const struct vstate_config *c = snap.st.config;
	bool given = o->virtio.nr_nets != 0;

	if (given && o->virtio.nr_nets != c->nr_nets)
		return snap_fail(o, "the saved VM has %u nets, %u --net given", c->nr_nets,
				 o->virtio.nr_nets);
	for (unsigned i = 0; i < c->nr_nets; i++) {
		const struct vstate_net *sn = snap.st.net[i];
		struct virtio_net_opt *k = &o->virtio.net[i];

		if (!virtio_opts_id_ok(sn->id))
			return snap_fail(o, "state file: net %u has the id '%s'", i, sn->id);
		if (sn->kind == VSTATE_NET_TAP && !virtio_opts_tapname_ok(sn->tap))
			return snap_fail(o, "state file: net %s: tap '%s' is not an interface "
					 "name", sn->id, sn->tap);
		if (given && (k->user != (sn->kind == VSTATE_NET_USER) || strcmp(k->id, sn->id) ||
			      (k->has_mac && memcmp(k->mac, sn->mac, 6)) ||
			      k->queues != sn->queues))
			return snap_fail(o, "--net %s does not match the saved net %u (id %s, "
					 "%u queue pair(s)%s): only its tap= or fd= may differ",
					 k->id, i, sn->id, sn->queues,
					 sn->kind == VSTATE_NET_USER ? ", user-mode" : "");
		if (!given && sn->kind == VSTATE_NET_FD)
			return snap_fail(o, "the saved net %s was given a tap by fd=: give "
					 "--net fd=N,id=%s again", sn->id, sn->id);
		if (!given) {
			memset(k, 0, sizeof(*k));
			k->fd = -1;
			snprintf(k->tap, sizeof(k->tap), "%s", sn->tap);
		}
		if (sn->kind == VSTATE_NET_USER) {
			/* The saved hostfwd rules, whatever --net user gave. */
			const struct vstate_slirp *sl = snap.st.slirp[i];   /* vstate_parse */

			k->user = true;
			k->tap[0] = 0;
			k->fd = -1;
			k->nr_fwd = sl->nr_fwd;
			memset(k->fwd, 0, sizeof(k->fwd));
			for (unsigned f = 0; f < sl->nr_fwd && f < NET_USER_MAX_FWD; f++) {
				k->fwd[f].udp = sl->fwd[f].udp;
				k->fwd[f].host_addr.s_addr = sl->fwd[f].host_addr;
				k->fwd[f].guest_addr.s_addr = sl->fwd[f].guest_addr;
				k->fwd[f].host_port = sl->fwd[f].host_port;
				k->fwd[f].guest_port = sl->fwd[f].guest_port;
			}
		}
		snprintf(k->id, sizeof(k->id), "%s", sn->id);
		memcpy(k->mac, sn->mac, 6);
		k->has_mac = true;
		k->queues = sn->queues;
		k->vhost = (enum virtio_net_vhost)sn->vhost;
	}
	o->virtio.nr_nets = c->nr_nets;
	return 0;
}

/* The machine's own settings (not its disks and nets) from @c into @o. */
static void snap_opts_config(struct vmm_opts *o, const struct vstate_config *c)
{
	o->virtio.rng = c->flags & VSTATE_CFG_RNG;
	o->virtio.rng_rate = c->rng_rate;
	o->virtio.console = c->flags & VSTATE_CFG_CONSOLE;
	o->virtio.vsock = c->flags & VSTATE_CFG_VSOCK;
	o->virtio.vsock_cid = c->vsock_cid;
	o->virtio.balloon = c->flags & VSTATE_CFG_BALLOON;
	o->virtio.balloon_reporting = c->balloon_flags & VSTATE_BALLOON_REPORTING;
	o->virtio.balloon_deflate_on_oom = c->balloon_flags & VSTATE_BALLOON_DEFLATE_ON_OOM;
	o->virtio.balloon_target = c->balloon_target;
	o->memory = c->memory;
	o->cpus = c->cpus;
	o->boot_timer = c->flags & VSTATE_CFG_BOOT_TIMER;
	o->debug_exit = c->flags & VSTATE_CFG_DEBUG_EXIT;
	o->mem_merge = c->flags & VSTATE_CFG_MEM_MERGE;
	o->mem_hugepages = c->flags & VSTATE_CFG_HUGEPAGES;
	o->serial_coalesce = (enum vmm_coalesce)c->serial_coalesce;
	/* A guest reboot cannot boot anything: there is no kernel. */
	o->reboot_restart = false;
}

/* The machine from the checked save into @o. */
static int snap_prepare_opts(struct vmm_opts *o)
{
	const struct vstate_config *c = snap.st.config;

	if (o->virtio.nr_disks && o->virtio.nr_disks != c->nr_disks)
		return snap_fail(o, "the saved VM has %u disks, %u --disk given", c->nr_disks,
				 o->virtio.nr_disks);
	if (snap_prepare_disks(o) || snap_prepare_nets(o))
		return -EINVAL;
	snap_opts_config(o, c);
	return 0;
}

/* --incoming before the stream's end: the source's command line without
 * its boot options and devices, which come from @o's config. */
static void snap_incoming_opts(struct vmm_opts *o)
{
	snprintf(snap.label, sizeof(snap.label), "--incoming %s", o->incoming);
	o->kernel = o->initrd = NULL;
	o->virtio.rng = o->virtio.console = o->virtio.vsock = o->virtio.balloon = false;
}

int snapshot_prepare_incoming(struct vmm_opts *o, void *state, size_t len,
			      const struct vstate *st, int mem_fd, void *mem_map)
{
	snap_incoming_opts(o);
	snap.buf = state;
	snap.len = len;
	snap.st = *st;
	snap.mem_fd = mem_fd;
	snap.mem_map = mem_map;
	/* The source's command line: its boot options and devices are
	 * replaced by the stream's. */
	for (unsigned i = 0; i < o->virtio.nr_nets; i++)
		if (o->virtio.net[i].user)
			o->virtio.nr_nets = 0;   /* the stream's nets and hostfwd rules count */
	return snap_prepare_opts(o);
}

int snapshot_incoming_early(struct vmm_opts *o, const struct vstate_config *c, int mem_fd)
{
	/* A disk opens once the source has let it go, after the stream; a
	 * net is built from this command line only when it gives each one
	 * the MAC (a user-mode net's forwarding rules come from the state). */
	if (c->nr_disks || (c->nr_nets && o->virtio.nr_nets != c->nr_nets))
		return 0;
	for (unsigned i = 0; i < c->nr_nets; i++)
		if (o->virtio.net[i].user || !o->virtio.net[i].has_mac)
			return 0;
	snap_incoming_opts(o);
	snap.early_cfg = *c;
	snap.st.config = &snap.early_cfg;
	snap.mem_fd = mem_fd;
	snap.mem_map = NULL;   /* still being received into: guest RAM maps the memfd anew */
	snap_opts_config(o, c);
	return 1;
}

int snapshot_incoming_state(struct vmm_opts *o, void *state, size_t len, const struct vstate *st,
			    void *mem_map)
{
	struct vmm_opts *x;
	int r = 0;

	snap.buf = state;
	snap.len = len;
	snap.st = *st;   /* its config equals the CONFIG record (migstream.c) */
	snap.mem_map = mem_map;   /* moved over guest RAM by snapshot_load */
	if (!snap.st.config->nr_nets)
		return 0;
	/* The nets built from this command line, checked against the saved
	 * ones as a --net given to a restore is. */
	x = malloc(sizeof(*x));
	if (!x)
		return snap_fail(o, "out of memory");
	*x = *o;
	if (snap_prepare_nets(x))
		r = -EINVAL;
	for (unsigned i = 0; !r && i < x->virtio.nr_nets; i++)
		if (x->virtio.net[i].vhost != o->virtio.net[i].vhost)
			r = snap_fail(o, "--net %s: vhost= differs from the source's net",
				      o->virtio.net[i].id);
	free(x);
	return r;
}

int snapshot_prepare(struct vmm_opts *o)
{
	const struct vstate_config *c;
	char err[256];
	struct stat st;
	int fd;

	if (!o->restore_dir)
		return 0;
	snprintf(snap.label, sizeof(snap.label), "--restore %s", o->restore_dir);
	if (snap_read_state(o))
		return -EINVAL;
	if (vstate_parse(snap.buf, snap.len, &snap.st, err, sizeof(err)))
		return snap_fail(o, "state file: %s", err);
	c = snap.st.config;
	snprintf(snap.mem_path, sizeof(snap.mem_path), "%s/%s", o->restore_dir,
		 SNAPSHOT_MEMORY_FILE);
	fd = open(snap.mem_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return snap_fail(o, "cannot open the memory file %s: %s", snap.mem_path,
				 strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != c->memory_file_size) {
		close(fd);
		return snap_fail(o, "the memory file %s is %lld bytes, the state file says %llu",
				 snap.mem_path, (long long)st.st_size,
				 (unsigned long long)c->memory_file_size);
	}
	close(fd);
	if (o->virtio.rng || o->virtio.console || o->virtio.vsock || o->virtio.balloon)
		return snap_fail(o, "the devices come from the save: no --rng, "
				 "--virtio-console, --vsock or --balloon (--disk and --net "
				 "only to give a saved one's image or tap)");
	return snap_prepare_opts(o);
}

const char *snapshot_memory_path(void)
{
	return snap.st.config && snap.mem_fd < 0 ? snap.mem_path : NULL;
}

/* The received RAM's mapping, what of it was not moved into place. */
static void snap_unmap_received(void)
{
	if (snap.mem_map && snap.st.config)
		munmap(snap.mem_map, snap.st.config->memory_file_size);
	snap.mem_map = NULL;
}

void snapshot_release(void)
{
	snap_unmap_received();
	free(snap.buf);
	if (snap.mem_fd >= 0)
		close(snap.mem_fd);
	memset(&snap, 0, sizeof(snap));
	snap.mem_fd = -1;
}

/* --incoming: the pages of region @g the stream was received into
 * (snap.mem_map), moved over it with their page tables: no unmapping of
 * what the receive faulted in (in the lab, tens of milliseconds for
 * 256 MiB), no faulting it in again.  Guest RAM, or MAP_FAILED (the
 * received mapping of @g then gone) for the caller to map anew. */
static void *snap_move_received(struct gmem_region *g, const struct vstate_region *s,
				const struct vmm_opts *o)
{
	void *p = mremap(snap.mem_map + s->file_offset, g->size, g->size,
			 MREMAP_MAYMOVE | MREMAP_FIXED, g->hva);

	if (p == MAP_FAILED)
		munmap(snap.mem_map + s->file_offset, g->size);
	else if (o->mem_merge)
		madvise(p, g->size, MADV_MERGEABLE);
	return p;
}

/* snapshot_incoming_state's VM: guest RAM, the same memfd mapped anew
 * while the stream came in, replaced by the mapping it came into. */
static void snap_move_incoming(struct vm *vm)
{
	const struct vstate_config *c = snap.st.config;
	bool failed = false;

	for (unsigned i = 0; i < c->nr_regions; i++) {
		if (failed) {
			munmap(snap.mem_map + c->region[i].file_offset, c->region[i].size);
		} else if (snap_move_received(&vm->mem.region[i], &c->region[i], vm->opts) ==
			   MAP_FAILED) {
			/* Guest RAM still maps the same pages: only slower. */
			vwarn("%s: cannot move the received RAM into place: %s", snap.label,
			      strerror(errno));
			failed = true;
		}
	}
	snap.mem_map = NULL;
}

int snapshot_map_memory(struct gmem *m, const struct vmm_opts *o)
{
	const struct vstate_config *c = snap.st.config;
	unsigned done = 0;   /* regions of the received mapping moved or unmapped */
	int fd, r = 0;

	if (!c)
		return -EINVAL;
	if (m->nr_regions != c->nr_regions) {
		verr("%s: guest RAM is laid out in %u regions here, %u in the save",
		     snap.label, m->nr_regions, c->nr_regions);
		return -EINVAL;
	}
	/* --incoming: the received RAM, shared (the stream's copy is the
	 * only one); --restore: the file, private. */
	fd = snap.mem_fd >= 0 ? fcntl(snap.mem_fd, F_DUPFD_CLOEXEC, 0)
			      : hold_open_file(snap.mem_path, O_RDONLY, 0);
	if (fd < 0) {
		r = -errno;
		verr("%s: cannot open %s: %s", snap.label,
		     snap.mem_fd >= 0 ? "the received memory" : snap.mem_path, strerror(errno));
		return r;
	}
	for (unsigned i = 0; i < m->nr_regions && !r; i++) {
		struct gmem_region *g = &m->region[i];
		const struct vstate_region *s = &c->region[i];
		void *p;

		if (g->gpa != s->gpa || g->size != s->size) {
			verr("%s: guest RAM region %u differs from the save's", snap.label, i);
			r = -EINVAL;
			break;
		}
		p = MAP_FAILED;
		if (snap.mem_map) {
			p = snap_move_received(g, s, o);
			done = i + 1;
		}
		if (p == MAP_FAILED)
			p = mmap(g->hva, g->size, PROT_READ | PROT_WRITE,
				 (snap.mem_fd >= 0 ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED |
				 MAP_NORESERVE | (o->restore_prefault ? MAP_POPULATE : 0),
				 fd, (off_t)s->file_offset);
		if (p == MAP_FAILED) {
			r = -errno;
			verr("%s: cannot map the saved memory: %s", snap.label, strerror(errno));
			break;
		}
		if (o->mem_merge)
			madvise(p, g->size, MADV_MERGEABLE);
	}
	/* What of the received mapping the loop did not reach (an error):
	 * not the whole range, where other threads may have mapped since. */
	for (unsigned k = done; snap.mem_map && k < c->nr_regions; k++)
		munmap(snap.mem_map + c->region[k].file_offset, c->region[k].size);
	snap.mem_map = NULL;
	close(fd);
	return r;
}

static int snap_set_vcpu(struct vcpu *c, const struct vstate_vcpu *v)
{
	struct kvm_msrs *m = snap_msrs_alloc(v->nr_msrs);   /* checked by vstate_parse */
	struct kvm_xsave *xs = calloc(1, sizeof(*xs) + 4096);
	struct kvm_vcpu_events ev = v->events;
	int fd = c->fd, n;
	const char *what = NULL;

	if (!xs || !m) {
		free(xs);
		free(m);
		return -ENOMEM;
	}
	memcpy(xs->region, v->xsave, sizeof(v->xsave));
	for (unsigned i = 0; i < v->nr_msrs && i < VSTATE_MAX_MSRS; i++) {
		m->entries[i].index = v->msrs[i].index;
		m->entries[i].data = v->msrs[i].value;
	}
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if (ioctl(fd, KVM_SET_SREGS, &v->sregs) < 0)
		what = "KVM_SET_SREGS";
	else if (ioctl(fd, KVM_SET_REGS, &v->regs) < 0)
		what = "KVM_SET_REGS";
	else if (ioctl(fd, KVM_SET_XSAVE, xs) < 0)
		what = "KVM_SET_XSAVE";
	else if (ioctl(fd, KVM_SET_XCRS, &v->xcrs) < 0)
		what = "KVM_SET_XCRS";
	else if (ioctl(fd, KVM_SET_LAPIC, &v->lapic) < 0)
		what = "KVM_SET_LAPIC";
	else if ((n = ioctl(fd, KVM_SET_MSRS, m)) != (int)v->nr_msrs) {
		free(xs);
		free(m);
		verr("vCPU %u: KVM refused the saved MSR 0x%x", c->index,
		     n >= 0 && (unsigned)n < v->nr_msrs ? v->msrs[n].index : 0);
		return -EINVAL;
	} else if (ioctl(fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		what = "KVM_SET_VCPU_EVENTS";
	else if (ioctl(fd, KVM_SET_MP_STATE, &v->mp_state) < 0)
		what = "KVM_SET_MP_STATE";
	else if (ioctl(fd, KVM_SET_DEBUGREGS, &v->debugregs) < 0)
		what = "KVM_SET_DEBUGREGS";
	free(xs);
	free(m);
	if (what) {
		int e = -errno;

		verr("vCPU %u: %s refused the saved state: %s", c->index, what, strerror(-e));
		return e;
	}
	return 0;
}

static int snap_set_vm(struct vm *vm, const struct vstate_vm *s)
{
	int adjust = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK);
	struct kvm_clock_data clock;
	struct kvm_irqchip chip;
	struct kvm_pit_state2 pit = s->pit;
	const char *what = NULL;

	chip = s->pic_master;
	chip.chip_id = KVM_IRQCHIP_PIC_MASTER;
	if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
		what = "KVM_SET_IRQCHIP (PIC master)";
	chip = s->pic_slave;
	chip.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	if (!what && ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
		what = "KVM_SET_IRQCHIP (PIC slave)";
	chip = s->ioapic;
	chip.chip_id = KVM_IRQCHIP_IOAPIC;
	if (!what && ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
		what = "KVM_SET_IRQCHIP (IOAPIC)";
	if (!what && ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		what = "KVM_SET_PIT2";
	/* The guest's clock advances by the time the VM was saved (or on
	 * its way): see vstate_clock_restore. */
	vstate_clock_restore(&s->clock, (uint64_t)vtime_real_ns(),
			     adjust > 0 && (adjust & KVM_CLOCK_REALTIME), &clock);
	if (!what && ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		what = "KVM_SET_CLOCK";
	if (!what)
		vdebug("%s: guest clock %llu ns, +%lld ms of wall time since the save", snap.label,
		       (unsigned long long)s->clock.clock,
		       (s->clock.flags & KVM_CLOCK_REALTIME) ?
		       (long long)(((int64_t)vtime_real_ns() - (int64_t)s->clock.realtime) / 1000000)
		       : 0LL);
	if (what) {
		int e = -errno;

		verr("%s refused the saved state: %s", what, strerror(-e));
		return e;
	}
	return 0;
}

/* After the clock: each vCPU's TSC moves on by the wall time since the
 * save, as the kvmclock did (KVM_VCPU_TSC_OFFSET, Linux 5.16 and later;
 * without it the TSC is what KVM made of the saved IA32_TSC). */
static void snap_set_tsc(struct vm *vm, const struct vstate *st)
{
	struct kvm_clock_data now = { 0 };

	if (!(st->vm->clock.flags & KVM_CLOCK_REALTIME) ||
	    ioctl(vm->vm_fd, KVM_GET_CLOCK, &now) < 0 ||
	    (now.flags & (KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)) !=
	    (KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)) {
		vdebug("%s: the TSC is as KVM set it from the saved one", snap.label);
		return;
	}
	for (unsigned i = 0; i < vm->ncpus; i++) {
		const struct vstate_vcpu *v = st->vcpu[i];
		uint64_t off;
		struct kvm_device_attr attr = {
			.group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET,
			.addr = (uint64_t)(uintptr_t)&off,
		};
		int khz = ioctl(vm->vcpus[i]->fd, KVM_GET_TSC_KHZ, 0);
		unsigned m;

		for (m = 0; m < v->nr_msrs && m < VSTATE_MAX_MSRS && v->msrs[m].index != 0x10; m++)
			;
		if (khz <= 0 || m == v->nr_msrs || m == VSTATE_MAX_MSRS ||
		    ioctl(vm->vcpus[i]->fd, KVM_HAS_DEVICE_ATTR, &attr) < 0)
			continue;
		off = vstate_tsc_offset(v->msrs[m].value, st->vm->clock.realtime, now.realtime,
					now.host_tsc, (uint32_t)khz);
		if (ioctl(vm->vcpus[i]->fd, KVM_SET_DEVICE_ATTR, &attr) < 0)
			vwarn("vCPU %u: cannot set the TSC offset: %s", i, strerror(errno));
	}
}

static void snap_set_devices(struct vm *vm, const struct vstate_devices *d)
{
	struct ns16550 *u = &vm->console.uart;
	struct acpi_pm_state pm = {
		.sts = d->pm_sts, .en = d->pm_en, .cnt = d->pm_cnt,
		.sci_level = d->pm_sci_level != 0, .timer = d->pm_timer,
	};

	pthread_mutex_lock(&u->lock);
	u->ier = d->uart.ier;
	u->iir_fifo = d->uart.iir_fifo;
	u->lcr = d->uart.lcr;
	u->mcr = d->uart.mcr;
	u->lsr = d->uart.lsr;
	u->msr = d->uart.msr;
	u->scr = d->uart.scr;
	u->dll = d->uart.dll;
	u->dlm = d->uart.dlm;
	u->fcr = d->uart.fcr;
	u->thr_ipending = d->uart.thr_ipending != 0;
	u->rx_was_full = d->uart.rx_was_full != 0;
	u->irq_level = d->uart.irq_level != 0;
	u->rx_head = d->uart.rx_head;      /* checked by vstate_parse */
	u->rx_count = d->uart.rx_count;
	memcpy(u->rx, d->uart.rx, sizeof(u->rx));
	pthread_mutex_unlock(&u->lock);

	pthread_mutex_lock(&vm->dev.rtc.lock);
	vm->dev.rtc.index = d->rtc_index;
	memcpy(vm->dev.rtc.cmos, d->rtc_cmos, sizeof(vm->dev.rtc.cmos));
	pthread_mutex_unlock(&vm->dev.rtc.lock);

	pthread_mutex_lock(&vm->dev.i8042.lock);
	vm->dev.i8042.cmd = d->i8042_cmd;
	vm->dev.i8042.ctr = d->i8042_ctr;
	vm->dev.i8042.out = d->i8042_out;
	vm->dev.i8042.out_full = d->i8042_out_full != 0;
	pthread_mutex_unlock(&vm->dev.i8042.lock);

	pthread_mutex_lock(&vm->dev.pm_lock);
	acpi_pm_set_state(vm->dev.pm, &pm);
	pthread_mutex_unlock(&vm->dev.pm_lock);

	/* The bridge: only what the guest can write (identity and
	 * read-only bits stay this vireo-vmm's). */
	pthread_mutex_lock(&vm->dev.pci->lock);
	vm->dev.pci->cf8 = d->pci_cf8;     /* checked by vstate_parse */
	for (unsigned i = 0; i < sizeof(d->pci_bridge_cfg) && i < PCI_CFG_SIZE; i++) {
		uint8_t w = vm->dev.pci->bridge.wmask[i];

		vm->dev.pci->bridge.cfg[i] = (uint8_t)((vm->dev.pci->bridge.cfg[i] & ~w) |
						       (d->pci_bridge_cfg[i] & w));
	}
	pthread_mutex_unlock(&vm->dev.pci->lock);
}

int snapshot_load(struct vm *vm)
{
	const struct vstate *st = &snap.st;
	int r;

	if (!st->config || st->config->cpus != vm->ncpus)
		return -EINVAL;
	if (snap.mem_map)
		snap_move_incoming(vm);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		r = snap_set_vcpu(vm->vcpus[i], st->vcpu[i]);
		if (r)
			return r;
	}
	r = snap_set_vm(vm, st->vm);
	if (r)
		return r;
	snap_set_tsc(vm, st);
	snap_set_devices(vm, st->devices);
	if (vm->dev.nr_virtio != st->config->nr_virtio) {
		verr("%s: %u virtio devices built, %u saved", snap.label,
		     vm->dev.nr_virtio, st->config->nr_virtio);
		return -EINVAL;
	}
	for (unsigned i = 0; i < vm->dev.nr_virtio; i++) {
		char err[256];

		r = virtio_pci_restore(vm->dev.virtio[i], st->virtio[i], err, sizeof(err));
		if (r) {
			verr("%s: %s", snap.label, err);
			return r;
		}
	}
	for (unsigned i = 0; i < st->config->nr_nets; i++) {
		const struct vstate_slirp *sl = st->slirp[i];
		struct virtio_dev *vd;
		char err[256];

		if (!sl)
			continue;
		vd = snap_net_dev(vm, i);
		if (!vd) {
			verr("%s: net %u not built", snap.label, i);
			return -EINVAL;
		}
		virtio_dev_lock(vd);
		r = net_user_state_load(virtio_net_backend(vd), (int)sl->state_version, sl->state,
					sl->state_len, err, sizeof(err));
		virtio_dev_unlock(vd);
		if (r) {
			verr("%s: net %s: %s", snap.label, st->net[i]->id, err);
			return r;
		}
	}
	/* Everything is in place: only now may a device act on the guest's
	 * requests (a refused restore has written nothing to the disks). */
	for (unsigned i = 0; i < vm->dev.nr_virtio; i++)
		virtio_pci_restore_kick(vm->dev.virtio[i]);
	vdebug("restored (%s): %u vCPUs, %llu MiB", snap.label, vm->ncpus,
	       (unsigned long long)(vm->opts->memory >> 20));
	return 0;
}
