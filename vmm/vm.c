#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <vireo/util.h>

#include "filters.h"
#include "hold.h"
#include "layout.h"
#include "loop.h"
#include "memory.h"
#include "snapshot.h"
#include "vm.h"
#include "x86/acpi.h"
#include "x86/boot.h"
#include "x86/cpuid.h"

/* ---- creation ------------------------------------------------------------------ */

static int vm_open_kvm(struct vm *vm)
{
	int v;

	vm->kvm_fd = hold_open_file("/dev/kvm", O_RDWR | O_CLOEXEC, 0);
	if (vm->kvm_fd < 0) {
		int err = -errno;
		if (errno == ENOENT)
			verr("/dev/kvm does not exist: KVM is not available on this host "
			     "(load the kvm module or enable virtualization)");
		else if (errno == EACCES || errno == EPERM)
			verr("/dev/kvm: permission denied (run as root or join the group that owns /dev/kvm)");
		else
			verr("cannot open /dev/kvm: %s", strerror(errno));
		return err;
	}
	v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		verr("/dev/kvm speaks API version %d, %d needed", v, KVM_API_VERSION);
		return -ENOTSUP;
	}
	return 0;
}

static int vm_check_limits(struct vm *vm, const struct vmm_opts *o)
{
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	struct sysinfo si;
	uint64_t host = 0;
	char b1[32], b2[32];

	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max <= 0)
		max = 4;
	if (o->cpus < 1 || o->cpus > (unsigned)max) {
		verr("--cpus %u: KVM on this host allows 1 to %d vCPUs", o->cpus, max);
		return -EINVAL;
	}
	/* Guest RAM is allocated lazily, so some overcommit is fine; the
	 * limit is twice the host's RAM plus swap. */
	if (sysinfo(&si) == 0)
		host = 2 * ((uint64_t)si.totalram + si.totalswap) * si.mem_unit;
	if (host && o->memory > host) {
		verr("--memory %s: more than this host allows (%s: twice its RAM plus swap)",
		     vsize_format(o->memory, b1, sizeof(b1)), vsize_format(host, b2, sizeof(b2)));
		return -EINVAL;
	}
	return 0;
}

/* A KVM VM made ahead with its TSS, irqchip and PIT (vm_prepare), for the
 * next vm_create; -1: none. */
static int vm_ready_fd = -1;

/* KVM_CREATE_VM on /dev/kvm's @kvm_fd: the VM's fd, or -1 with errno. */
static int vm_kvm_create(int kvm_fd)
{
	int fd;

	do {
		fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	} while (fd < 0 && errno == EINTR);
	return fd;
}

static int vm_create_kvm_vm(struct vm *vm)
{
	int ret;

	vm->vm_fd = vm_ready_fd;
	vm->kvm_ready = vm_ready_fd >= 0;
	vm_ready_fd = -1;
	if (vm->vm_fd < 0)
		vm->vm_fd = vm_kvm_create(vm->kvm_fd);
	if (vm->vm_fd < 0) {
		ret = -errno;
		verr("KVM_CREATE_VM failed: %s", strerror(errno));
		return ret;
	}
	ret = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret <= 0) {
		verr("KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(errno));
		return -ENOTSUP;
	}
	vm->run_size = (size_t)ret;
	return 0;
}

static int vm_kvm_setup(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = 0 };
	uint64_t map = LAYOUT_IDENTITY_MAP;
	int ret;

	if (vm->kvm_ready) {
		vm->kvm_ready = false;
		return 0;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_TSS) < 0)
		vdebug("KVM_SET_TSS_ADDR: %s (ignored)", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &map) < 0)
		vdebug("KVM_SET_IDENTITY_MAP_ADDR: %s (ignored)", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		ret = -errno;
		verr("KVM_CREATE_IRQCHIP failed: %s (an in-kernel LAPIC/IOAPIC is required)",
		     strerror(errno));
		return ret;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		ret = -errno;
		verr("KVM_CREATE_PIT2 failed: %s", strerror(errno));
		return ret;
	}
	return 0;
}

void vm_prepare(void)
{
	struct vm v = { .kvm_fd = -1, .vm_fd = -1 };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (kvm < 0)
		return;   /* vm_create says why */
	v.vm_fd = vm_kvm_create(kvm);
	close(kvm);
	if (v.vm_fd < 0)
		return;
	/* Its irqchip and PIT too: made long before the guest RAM's slots,
	 * they leave no grace period for the first slot to wait out
	 * (vm_register_ram). */
	if (vm_kvm_setup(&v)) {
		close(v.vm_fd);   /* vm_create makes its own and meets the failure */
		return;
	}
	vm_ready_fd = v.vm_fd;
}

static int vm_get_cpuid(struct vm *vm)
{
	int ret;

	vm->supported_cpuid = calloc(1, sizeof(struct kvm_cpuid2) +
				     CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
	if (!vm->supported_cpuid)
		return -ENOMEM;
	vm->supported_cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->supported_cpuid) < 0) {
		ret = -errno;
		verr("KVM_GET_SUPPORTED_CPUID failed: %s", strerror(errno));
		return ret;
	}
	return 0;
}

/* Register guest RAM with KVM, before anything else is created in the VM.
 * Each memory-slot change waits for an SRCU grace period of the VM inside
 * the host kernel. Creating the irqchip or the PIT first (they register I/O
 * bus devices) leaves a grace period running whose end the first slot then
 * has to wait for: measured on a PVM host, 7-11 ms for the slot after the
 * irqchip against 0.2-0.4 ms for the slot before it, on every run. */
static int vm_register_ram(struct vm *vm)
{
	char b[32];

	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i, .guest_phys_addr = vm->mem.region[i].gpa,
			.memory_size = vm->mem.region[i].size,
			.userspace_addr = (uintptr_t)vm->mem.region[i].hva,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
			int ret = -errno;

			verr("--memory %s: KVM refused the guest RAM: %s",
			     vsize_format(vm->opts->memory, b, sizeof(b)), strerror(errno));
			return ret;
		}
	}
	return 0;
}

static void vm_phase(const struct vm *vm, const char *what);

static int vm_setup_memory(struct vm *vm)
{
	char b[32];
	int ret = memory_layout(&vm->mem, vm->opts->memory);

	if (!ret)
		ret = memory_map(&vm->mem, vm->opts->mem_merge, vm->opts->mem_hugepages,
				 &vm->mem_map.reservation, &vm->mem_map.reservation_len);
	if (ret) {
		verr("--memory %s: cannot reserve guest RAM: %s",
		     vsize_format(vm->opts->memory, b, sizeof(b)), strerror(-ret));
		return ret;
	}
	vm_phase(vm, "guest RAM reserved");
	/* --restore: the saved RAM, mapped before KVM sees the addresses. */
	if (vmm_opts_restoring(vm->opts)) {
		if ((ret = snapshot_map_memory(&vm->mem, vm->opts)))
			return ret;
		vm_phase(vm, "saved RAM in place");
	}
	return vm_register_ram(vm);
}

static double vm_ms_since_start(const struct vm *vm)
{
	return (double)(vtime_ns() - vm->start_ns) / 1e6;
}

void vm_start_phase(uint64_t start_ns, const char *what)
{
	if (vlog_get_level() >= VLOG_DEBUG)
		vdebug("start-up: %s done at %.3f ms", what,
		       (double)(vtime_ns() - start_ns) / 1e6);
}

static void vm_phase(const struct vm *vm, const char *what)
{
	vm_start_phase(vm->start_ns, what);
}

/* The narrow views of the VM that devices and vCPUs get. */
static void vm_fill_envs(struct vm *vm)
{
	vm->env = (struct dev_env){
		.mem = &vm->mem, .loop = vm->loop, .pio = &vm->pio, .mmio = &vm->mmio,
		.irq = &vm->irq,
	};
	vm->vcpu_env = (struct vcpu_env){
		.vm_fd = vm->vm_fd, .run_size = vm->run_size, .pio = &vm->pio,
		.mmio = &vm->mmio, .mem = &vm->mem, .rs = &vm->rs, .start_ns = vm->start_ns,
		.exit_begin = console_exit_begin, .exit_end = console_exit_end,
		.exit_opaque = &vm->console,
	};
}

static int vm_create_devices(struct vm *vm)
{
	struct console_env ce = {
		.pio = &vm->pio, .irq = &vm->irq, .loop = vm->loop, .rs = &vm->rs,
	};
	int ret = irq_ctl_init(&vm->irq, vm->vm_fd);

	if (ret) {
		verr("cannot install the interrupt routes: %s", strerror(-ret));
		return ret;
	}
	vm_fill_envs(vm);
	ret = console_init(&vm->console, &ce);
	if (!ret)
		ret = devices_create(&vm->dev, vm->opts, &vm->env, &vm->rs, &vm->console,
				     vm->start_ns);
	if (ret)
		verr("cannot set up devices: %s", strerror(-ret));
	return ret;
}

static int vm_create_vcpus(struct vm *vm)
{
	int ret;

	vm->vcpus = calloc(vm->ncpus, sizeof(*vm->vcpus));
	vm->apic_ids = calloc(vm->ncpus, sizeof(*vm->apic_ids));
	if (!vm->vcpus || !vm->apic_ids)
		return -ENOMEM;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		vm->apic_ids[i] = i;
		ret = vcpu_create(&vm->vcpu_env, i, &vm->vcpus[i]);
		if (ret)
			return ret;
	}
	ret = ioctl(vm->vcpus[0]->fd, KVM_GET_TSC_KHZ, 0);
	vm->cpu = (struct cpu_cfg){
		.supported = vm->supported_cpuid, .ncpus = vm->ncpus,
		.tsc_khz = ret > 0 ? (uint32_t)ret : 0,
		.tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION,
				      KVM_CAP_TSC_DEADLINE_TIMER) > 0,
	};
	for (unsigned i = 0; i < vm->ncpus; i++) {
		ret = cpu_init(&vm->cpu, vm->vcpus[i]->fd, i);
		if (ret)
			return ret;
	}
	return 0;
}

int vm_create(struct vm *vm, const struct vmm_opts *opts, uint64_t start_ns)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->opts = opts;
	vm->kvm_fd = vm->vm_fd = vm->rs.efd = vm->call_fd = -1;
	pthread_mutex_init(&vm->call_lock, NULL);
	pthread_cond_init(&vm->call_cond, NULL);
	vm->start_ns = start_ns;
	vm->ncpus = opts->cpus;
	if ((ret = bus_init(&vm->pio, "pio")) || (ret = bus_init(&vm->mmio, "mmio")))
		return ret;
	if ((ret = runstate_init(&vm->rs)))
		return ret;
	vm->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->call_fd < 0)
		return -errno;
	vm->loop = evloop_new();
	if (!vm->loop)
		return -ENOMEM;
	if ((ret = vm_open_kvm(vm)) || (ret = vm_check_limits(vm, opts)) ||
	    (ret = vm_create_kvm_vm(vm)))
		return ret;
	vm_phase(vm, "KVM VM");
	if ((ret = vm_setup_memory(vm)))
		return ret;
	vm_phase(vm, "guest RAM's slots");
	if ((ret = vm_kvm_setup(vm)))
		return ret;
	vm_phase(vm, "irqchip and PIT");
	if ((ret = vm_get_cpuid(vm)) || (ret = vm_create_devices(vm)))
		return ret;
	vm_phase(vm, "devices");
	if ((ret = vm_create_vcpus(vm)))
		return ret;
	vm_phase(vm, "vCPUs");
	return 0;
}

static int vm_build_acpi(struct vm *vm)
{
	struct acpi_cfg cfg = {
		.ncpus = vm->ncpus, .apic_ids = vm->apic_ids,
		.lapic_addr = LAYOUT_LAPIC, .ioapic_addr = LAYOUT_IOAPIC,
		.ioapic_id = (uint8_t)VIREO_MIN(vm->ncpus, 254u), .ioapic_gsi_base = 0,
		.pm_io_base = LAYOUT_PM_IO_BASE, .sci_irq = LAYOUT_SCI_IRQ,
		.has_i8042 = false,
		.ecam_base = LAYOUT_ECAM_BASE, .ecam_size = LAYOUT_ECAM_SIZE,
		.pci_bus_start = 0, .pci_bus_end = 0,
		.pci_mmio32_base = LAYOUT_MMIO32_BASE,
		.pci_mmio32_size = LAYOUT_MMIO32_SIZE,
		.pci_io_base = LAYOUT_PIO_PCI_BASE, .pci_io_size = LAYOUT_PIO_PCI_SIZE,
		.pci_intx_gsi = { 20, 21, 22, 23 },
		.com1 = true, .oem_id = "VIREO ",
	};
	long n = acpi_build(&cfg, gmem_ptr(&vm->mem, LAYOUT_ACPI, LAYOUT_ACPI_LEN),
			    LAYOUT_ACPI_LEN, LAYOUT_ACPI, &vm->rsdp_gpa);

	if (n < 0) {
		verr("cannot build the ACPI tables: %s", strerror((int)-n));
		return (int)n;
	}
	vm_phase(vm, "ACPI tables");
	return 0;
}

int vm_load(struct vm *vm)
{
	struct boot_request req = {
		.kernel = vm->opts->kernel, .initrd = vm->opts->initrd,
		.cmdline = vm->opts->cmdline,
		.unpack = vm->opts->unpack_guest ? BOOT_UNPACK_GUEST : BOOT_UNPACK_HOST,
	};
	struct boot_entry entry;
	int ret;

	if (vmm_opts_restoring(vm->opts)) {
		ret = snapshot_load(vm);   /* the ACPI tables are in the saved RAM */
		if (!ret)
			vm_phase(vm, "saved state");
		return ret;
	}
	ret = vm_build_acpi(vm);
	if (ret)
		return ret;
	req.rsdp_gpa = vm->rsdp_gpa;
	ret = boot_load(&vm->mem, &req, &entry);
	if (ret)
		return ret;
	if (entry.unpack.on_host)
		vdebug("kernel: %s payload unpacked in %.1f ms (%u threads) at 0x%llx, "
		       "KASLR virtual offset 0x%llx, %ld relocations", entry.unpack.format,
		       entry.unpack.ms, entry.unpack.threads,
		       (unsigned long long)entry.unpack.phys,
		       (unsigned long long)entry.unpack.virt_offset, entry.unpack.relocs);
	vm_phase(vm, "kernel and initrd loaded");
	cpu_write_boot_tables(&vm->mem);
	ret = cpu_set_entry(vm->vcpus[0]->fd, &entry);
	if (ret) {
		verr("cannot set the boot registers: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

/* ---- run ---------------------------------------------------------------------- */

#ifdef VIREO_TEST_HOOKS
/* Test builds: VIREO_TEST_HANG_ON_STOP=1 makes the event loop hang when a
 * stop is asked for, as if a device lock never came free. */
static void vm_test_hang(void)
{
	if (getenv("VIREO_TEST_HANG_ON_STOP"))
		for (;;)
			sleep(1000);
}
#else
static void vm_test_hang(void)
{
}
#endif

static void vm_on_stop(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;

	if (read(vm->rs.efd, &v, sizeof(v)) < 0) {
		/* spurious wake-up */
	}
	vm_test_hang();
}

/* SIGQUIT: print the platform's interrupt state and have every vCPU print
 * its registers (for a guest that seems stuck); the guest runs on. */
static void vm_dump_state(struct vm *vm)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };

	vinfo("state dump (SIGQUIT), %.3f ms after start", vm_ms_since_start(vm));
	console_dump(&vm->console);
	if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) == 0) {
		const struct kvm_ioapic_state *io = &chip.chip.ioapic;

		vinfo("IOAPIC: irr=%08x", io->irr);
		for (unsigned i = 0; i < KVM_IOAPIC_NUM_PINS; i++) {
			uint64_t e = io->redirtbl[i].bits;

			if (!(e & (1ull << 16)) || (io->irr & (1u << i)))
				vinfo("IOAPIC pin %2u: vector %3u %s %s%s%s", i, (unsigned)(e & 0xff),
				      (e & (1ull << 15)) ? "level" : "edge",
				      (e & (1ull << 16)) ? "masked" : "unmasked",
				      (e & (1ull << 14)) ? " remote-irr" : "",
				      (io->irr & (1u << i)) ? " pending" : "");
		}
	}
	atomic_fetch_add(&vm->rs.dump_gen, 1);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(vm->vcpus[i]);
}

/* SIGUSR2 and SIGQUIT, passed on by the watchdog thread. */
static void vm_on_signal(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint8_t sig[16];
	ssize_t n = read(watchdog_forward_fd(&vm->wd), sig, sizeof(sig));

	for (ssize_t i = 0; i < n; i++) {
		if (sig[i] == SIGUSR2)
			devices_power_button(&vm->dev);
		else if (sig[i] == SIGQUIT)
			vm_dump_state(vm);
	}
}

struct vm_call {
	int (*fn)(struct vm *vm, void *arg);
	void *arg;
	int result;
	bool done;
};

static void vm_call_finish(struct vm *vm, struct vm_call *c, int result)
{
	pthread_mutex_lock(&vm->call_lock);
	c->result = result;
	c->done = true;
	pthread_cond_broadcast(&vm->call_cond);
	pthread_mutex_unlock(&vm->call_lock);
}

/* The event loop: run the waiting vm_call(). */
static void vm_on_call(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	struct vm_call *c;
	uint64_t v;

	if (read(vm->call_fd, &v, sizeof(v)) < 0) {
		/* spurious wake-up */
	}
	pthread_mutex_lock(&vm->call_lock);
	c = vm->call;
	vm->call = NULL;
	pthread_mutex_unlock(&vm->call_lock);
	if (c) {
		int r;

		vm->call_running = c;
		r = c->fn(vm, c->arg);
		if (vm->call_running)
			vm_call_finish(vm, c, r);
		vm->call_running = NULL;
	}
}

void vm_call_answer(struct vm *vm, int result)
{
	struct vm_call *c = vm->call_running;

	vm->call_running = NULL;
	if (c)
		vm_call_finish(vm, c, result);
}

/* The loop has ended: a waiting call fails, later ones too. */
static void vm_call_close(struct vm *vm)
{
	struct vm_call *c;

	pthread_mutex_lock(&vm->call_lock);
	vm->call_closed = true;
	c = vm->call;
	vm->call = NULL;
	pthread_mutex_unlock(&vm->call_lock);
	if (c)
		vm_call_finish(vm, c, -ESHUTDOWN);
}

int vm_call(struct vm *vm, int (*fn)(struct vm *vm, void *arg), void *arg)
{
	struct vm_call c = { fn, arg, 0, false };
	uint64_t one = 1;

	pthread_mutex_lock(&vm->call_lock);
	if (vm->call_closed || vm->call) {
		pthread_mutex_unlock(&vm->call_lock);
		return vm->call_closed ? -ESHUTDOWN : -EBUSY;
	}
	vm->call = &c;
	pthread_mutex_unlock(&vm->call_lock);
	if (write(vm->call_fd, &one, sizeof(one)) < 0) {
		/* the counter is far from full */
	}
	pthread_mutex_lock(&vm->call_lock);
	while (!c.done)
		pthread_cond_wait(&vm->call_cond, &vm->call_lock);
	pthread_mutex_unlock(&vm->call_lock);
	return c.result;
}

/* The watchdog gave up on a stuck teardown: the terminal comes back. */
static void vm_emergency(void *opaque)
{
	struct vm *vm = opaque;

	console_restore(&vm->console);
}


/* KVM's ring of coalesced writes: a page of vCPU 0's run area, where
 * this KVM offers coalesced port I/O (NULL otherwise). */
static struct kvm_coalesced_mmio_ring *vm_coalesce_ring(struct vm *vm, uint32_t *entries)
{
	long page = sysconf(_SC_PAGESIZE);
	int off = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);

	if (off <= 0 || page <= 0 ||
	    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO) <= 0 ||
	    (size_t)(off + 1) * (size_t)page > vm->run_size)
		return NULL;
	*entries = coalesce_ring_entries((size_t)page);
	return (struct kvm_coalesced_mmio_ring *)((uint8_t *)vm->vcpus[0]->run +
						  (size_t)off * (size_t)page);
}

int vm_run(struct vm *vm)
{
	struct kvm_coalesced_mmio_ring *ring;
	uint32_t entries = 0;
	int ret = watchdog_start(&vm->wd, &vm->rs, WATCHDOG_GRACE_MS, vm_emergency, vm);

	if (ret || evloop_add(vm->loop, watchdog_forward_fd(&vm->wd), EPOLLIN, vm_on_signal, vm) ||
	    evloop_add(vm->loop, vm->rs.efd, EPOLLIN, vm_on_stop, vm) ||
	    evloop_add(vm->loop, vm->call_fd, EPOLLIN, vm_on_call, vm)) {
		verr("cannot set up the event loop: %s", strerror(errno));
		runstate_request_stop(&vm->rs, VM_STOP_ERROR, 1);
	}
	/* Every vCPU starts, even when another one has already stopped the
	 * VM: each then reports its state (a crash asks all for a dump). */
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vcpu_start(vm->vcpus[i]))
			runstate_request_stop(&vm->rs, VM_STOP_ERROR, 1);
	ring = vm_coalesce_ring(vm, &entries);
	if (!runstate_stopping(&vm->rs))
		console_start(&vm->console, vm->opts->serial_coalesce, vm->vm_fd, ring, entries);
	/* The vCPU threads run (under their own filter): from here this
	 * thread only runs the loop. */
	if (!runstate_stopping(&vm->rs) && filters_enter(VMM_ROLE_LOOP))
		runstate_request_stop(&vm->rs, VM_STOP_ERROR, 1);
	while (!runstate_stopping(&vm->rs)) {
		ret = evloop_run_once(vm->loop, -1);
		if (ret) {
			verr("event loop failed: %s", strerror(-ret));
			runstate_request_stop(&vm->rs, VM_STOP_ERROR, 1);
		}
	}
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(vm->vcpus[i]);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_join(vm->vcpus[i]);
	console_stop(&vm->console);
	evloop_del(vm->loop, vm->rs.efd);
	evloop_del(vm->loop, vm->call_fd);
	vm_call_close(vm);
	if (vm->wd.started)
		evloop_del(vm->loop, watchdog_forward_fd(&vm->wd));
	return runstate_why(&vm->rs);
}

/* ---- pause (the control API) ----------------------------------------------------- */

int vm_pause(struct vm *vm, unsigned timeout_ms)
{
	bool was = false;
	int r;

	if (runstate_stopping(&vm->rs))
		return -ESHUTDOWN;
	if (!atomic_compare_exchange_strong(&vm->rs.paused, &was, true))
		return -EALREADY;
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(vm->vcpus[i]);
	r = runstate_wait_parked(&vm->rs, vm->ncpus, timeout_ms);
	if (r == -ETIMEDOUT) {
		/* Not all stopped in time: back to running. */
		atomic_store(&vm->rs.paused, false);
		runstate_wake_parked(&vm->rs);
	}
	return r;
}

int vm_resume(struct vm *vm)
{
	bool was = true;

	if (runstate_stopping(&vm->rs))
		return -ESHUTDOWN;
	if (!atomic_compare_exchange_strong(&vm->rs.paused, &was, false))
		return -EALREADY;
	runstate_wake_parked(&vm->rs);
	return 0;
}

void vm_destroy(struct vm *vm)
{
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->ncpus; i++)
			vcpu_destroy(vm->vcpus[i]);
		free(vm->vcpus);
	}
	devices_destroy(&vm->dev);
	console_destroy(&vm->console);
	irq_ctl_destroy(&vm->irq);
	free(vm->apic_ids);
	free(vm->supported_cpuid);
	evloop_free(vm->loop);
	runstate_destroy(&vm->rs);
	if (vm->call_fd >= 0)
		close(vm->call_fd);
	pthread_cond_destroy(&vm->call_cond);
	pthread_mutex_destroy(&vm->call_lock);
	memory_unmap(vm->mem_map.reservation, vm->mem_map.reservation_len);
	memory_dirty_free(&vm->mem);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	if (vm->wd.rs)
		watchdog_stop(&vm->wd);   /* last: a stuck teardown above still ends */
}
