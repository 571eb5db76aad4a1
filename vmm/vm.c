#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/sysinfo.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <vireo/util.h>

#include "dev/legacy.h"
#include "dev/ns16550.h"
#include "dev/pci.h"
#include "virtio/console.h"
#include "virtio/vmm.h"
#include "layout.h"
#include "loop.h"
#include "memory.h"
#include "vcpu.h"
#include "vm.h"
#include "x86/boot.h"
#include "x86/cpu.h"
#include "x86/cpuid.h"
#ifdef VIREO_HAVE_ACPI
#include "x86/acpi.h"
#endif

void vm_request_stop(struct vm *vm, enum vm_stop why, int status)
{
	int expected = VM_RUNNING;
	uint64_t one = 1;

	if (atomic_compare_exchange_strong(&vm->stop, &expected, (int)why)) {
		vm->stop_status = status;
		if (write(vm->stop_efd, &one, sizeof(one)) < 0) {
			/* eventfd counter cannot overflow here */
		}
	}
}

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)level };

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

/* ---- device glue ------------------------------------------------------------ */

static void vm_uart_tx(void *opaque, uint8_t byte)
{
	struct vm *vm = opaque;

	console_put(&vm->console, byte);
}

static void vm_uart_irq(void *opaque, int level)
{
	vm_irq_line(opaque, NS16550_COM1_IRQ, level);
}

static void vm_uart_rx_space(void *opaque)
{
	struct vm *vm = opaque;
	uint64_t one = 1;

	if (write(vm->console_wake_efd, &one, sizeof(one)) < 0) {
		/* counter saturation is harmless */
	}
}

static const struct ns16550_ops vm_uart_ops = {
	.tx = vm_uart_tx, .irq = vm_uart_irq, .rx_space = vm_uart_rx_space,
};

/* ---- coalesced COM1 transmit writes ------------------------------------------ */

/* The replay timer ticks fast while the guest uses COM1 (its last
 * characters come out within VM_COAL_FAST_NS of being written) and slowly
 * otherwise, for a guest that writes without ever reading the UART. */
#define VM_COAL_FAST_NS 1000000ull        /* 1 ms */
#define VM_COAL_SLOW_NS 1000000000ull     /* 1 s */

static void vm_coal_arm(struct vm *vm, uint64_t ns)
{
	struct itimerspec its = {
		.it_interval = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) },
		.it_value = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) },
	};

	if (vm->coal_tfd >= 0 && timerfd_settime(vm->coal_tfd, 0, &its, NULL) < 0)
		vdebug("coalesced writes: timerfd_settime: %s", strerror(errno));
}

/* COM1 is in use: make sure the timer ticks fast (any thread). */
static void vm_coal_busy(struct vm *vm)
{
	if (vm->coal_tfd < 0)
		return;
	atomic_store(&vm->coal_busy, true);
	if (!atomic_exchange(&vm->coal_fast, true))
		vm_coal_arm(vm, VM_COAL_FAST_NS);
}

static void vm_coal_write(void *opaque, bool pio, uint64_t addr, const uint8_t *data,
			  unsigned len)
{
	struct vm *vm = opaque;
	uint8_t buf[8];

	memcpy(buf, data, len);
	bus_access(pio ? &vm->pio : &vm->mmio, addr, buf, len, true);
}

void vm_coal_drain(struct vm *vm)
{
	if (coalesce_drain(&vm->coal))
		vm_coal_busy(vm);
	console_flush(&vm->console);
}

static void vm_coal_tick(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t ticks;
	unsigned n;

	if (read(vm->coal_tfd, &ticks, sizeof(ticks)) < 0) {
		/* not expired yet */
	}
	n = coalesce_drain(&vm->coal);
	console_flush(&vm->console);
	if (n || atomic_exchange(&vm->coal_busy, false)) {
		if (!atomic_exchange(&vm->coal_fast, true))
			vm_coal_arm(vm, VM_COAL_FAST_NS);
		return;
	}
	if (!atomic_load(&vm->coal_fast))
		return;
	/* Quiet for a whole tick: slow down, unless COM1 was used meanwhile
	 * (a vCPU saw coal_fast still set and did not re-arm). */
	vm_coal_arm(vm, VM_COAL_SLOW_NS);
	atomic_store(&vm->coal_fast, false);
	if (atomic_load(&vm->coal_busy) && !atomic_exchange(&vm->coal_fast, true))
		vm_coal_arm(vm, VM_COAL_FAST_NS);
}

/* Whether this process runs on QEMU's TCG emulator (hypervisor CPUID leaf
 * signature "TCGTCGTCGTCG"), as in the lab's outer VM.  There, with the
 * COM1 zone registered, 2 of 19 boots (--unpack guest, the kernel's whole
 * log on the console) crashed: a guest RIP gone wrong right after a COM1
 * write, or a triple fault.  None in 30 such boots with the zone off, none
 * in 30 with --unpack host, none on PVM hosts: something in the emulated
 * nested SVM that KVM completing a port write in the kernel runs into. */
static bool host_is_tcg(void)
{
	unsigned a, b, c, d;
	char sig[13];

	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 31)))
		return false;
	__cpuid(0x40000000, a, b, c, d);
	memcpy(sig, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	sig[12] = 0;
	return !strcmp(sig, "TCGTCGTCGTCG");
}

/* Have KVM queue writes to COM1's transmit register (port 0x3f8, one
 * byte: with DLAB set the same port is the divisor latch, which the replay
 * handles in order too).  Called on the event loop thread once the vCPUs
 * run: registering an I/O range waits for the VM's SRCU grace period, so
 * it is kept off the path to the first KVM_RUN. */
static void vm_coal_setup(struct vm *vm)
{
	long page = sysconf(_SC_PAGESIZE);
	int off = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);
	int ret;

	if (vm->opts->serial_coalesce == VMM_COALESCE_OFF) {
		vdebug("coalesced port writes: off (--serial-coalesce off)");
		return;
	}
	if (vm->opts->serial_coalesce == VMM_COALESCE_AUTO && host_is_tcg()) {
		vdebug("coalesced port writes: off (--serial-coalesce auto): this host is QEMU's "
		       "TCG emulator, where guests crashed now and then with KVM completing "
		       "COM1 writes itself");
		return;
	}
	if (off <= 0 || page <= 0 ||
	    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO) <= 0 ||
	    (size_t)(off + 1) * (size_t)page > vm->run_size) {
		vdebug("coalesced port writes: not offered by this KVM; COM1 exits for every write");
		return;
	}
	vm->coal_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (vm->coal_tfd < 0 ||
	    evloop_add(vm->loop, vm->coal_tfd, EPOLLIN, vm_coal_tick, vm) < 0) {
		vdebug("coalesced port writes: no timer (%s); COM1 exits for every write",
		       strerror(errno));
		if (vm->coal_tfd >= 0)
			close(vm->coal_tfd);
		vm->coal_tfd = -1;
		return;
	}
	coalesce_start(&vm->coal,
		       (struct kvm_coalesced_mmio_ring *)((uint8_t *)vm->vcpus[0]->run +
							  (size_t)off * (size_t)page),
		       coalesce_ring_entries((size_t)page));
	ret = coalesce_add_zone(&vm->coal, vm->vm_fd, NS16550_COM1_BASE, 1, true);
	if (ret) {
		vdebug("coalesced port writes: KVM refused the zone (%s)", strerror(-ret));
		coalesce_stop(&vm->coal);
	}
	vm_coal_arm(vm, VM_COAL_SLOW_NS);
	vdebug("coalesced port writes: COM1 transmit queued (%u-entry ring), set up %.3f ms "
	       "after start", vm->coal.max, vm_ms_since_start(vm));
}

static void vm_com1_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		       bool is_write)
{
	struct vm *vm = opaque;

	ns16550_bus_io(vm->uart, offset, data, len, is_write);
	vm_coal_busy(vm);
}

static void vm_reset_request(void *opaque)
{
	vm_request_stop(opaque, VM_STOP_REBOOT, 0);
}

static void vm_debug_exit_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
			     bool is_write)
{
	if (is_write)
		vm_request_stop(opaque, VM_STOP_DEBUG_EXIT, data[0]);
	else
		memset(data, 0xff, len);
}

#ifdef VIREO_HAVE_ACPI
static void vm_set_sci(void *opaque, int level)
{
	vm_irq_line(opaque, LAYOUT_SCI_IRQ, level);
}

static void vm_pm_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
		     bool is_write)
{
	struct vm *vm = opaque;
	enum acpi_pm_action a;

	pthread_mutex_lock(&vm->pm_lock);
	a = acpi_pm_io(vm->pm, (uint16_t)off, is_write, data, len);
	pthread_mutex_unlock(&vm->pm_lock);
	if (a == ACPI_PM_POWEROFF)
		vm_request_stop(vm, VM_STOP_POWEROFF, 0);
	else if (a == ACPI_PM_RESET)
		vm_request_stop(vm, VM_STOP_REBOOT, 0);
}
#endif

void vm_power_button(struct vm *vm)
{
#ifdef VIREO_HAVE_ACPI
	if (vm->pm) {
		pthread_mutex_lock(&vm->pm_lock);
		acpi_pm_power_button(vm->pm);
		pthread_mutex_unlock(&vm->pm_lock);
		return;
	}
#endif
	vwarn("power button: this build has no ACPI; stopping the VM");
	vm_request_stop(vm, VM_STOP_POWEROFF, 0);
}

static time_t vm_rtc_now(void)
{
	return time(NULL);
}

static int vm_create_devices(struct vm *vm)
{
	int ret;

	vm->uart = calloc(1, sizeof(*vm->uart));
	vm->i8042 = calloc(1, sizeof(*vm->i8042));
	vm->rtc = calloc(1, sizeof(*vm->rtc));
	vm->boot_timer = calloc(1, sizeof(*vm->boot_timer));
	vm->pci = pci_host_new(vm);
	if (!vm->uart || !vm->i8042 || !vm->rtc || !vm->boot_timer || !vm->pci)
		return -ENOMEM;
	ns16550_init(vm->uart, &vm_uart_ops, vm);
	i8042_init(vm->i8042, vm_reset_request, vm);
	mc146818_init(vm->rtc, vm_rtc_now);
	vm->boot_timer->start_ns = vm->start_ns;

	ret = bus_add(&vm->pio, NS16550_COM1_BASE, NS16550_NREGS, vm_com1_io, vm,
		      "com1");
	if (!ret)
		ret = bus_add(&vm->pio, 0x60, 5, i8042_bus_io, vm->i8042, "i8042");
	if (!ret)
		ret = bus_add(&vm->pio, 0x70, 2, mc146818_bus_io, vm->rtc, "rtc");
	if (!ret && vm->opts->boot_timer)
		ret = bus_add(&vm->mmio, LAYOUT_BOOT_TIMER, 0x1000, boot_timer_bus_io,
			      vm->boot_timer, "boot-timer");
	if (!ret && vm->opts->debug_exit)
		ret = bus_add(&vm->pio, LAYOUT_DEBUG_EXIT, 1, vm_debug_exit_io, vm,
			      "debug-exit");
#ifdef VIREO_HAVE_ACPI
	if (!ret) {
		vm->pm = acpi_pm_new(vm_set_sci, vm);
		if (!vm->pm)
			return -ENOMEM;
		ret = bus_add(&vm->pio, LAYOUT_PM_IO_BASE, ACPI_PM_IO_LEN, vm_pm_io, vm,
			      "acpi-pm");
	}
#endif
	if (!ret)
		ret = virtio_vmm_create(vm);
	return ret;
}

/* ---- creation ------------------------------------------------------------------ */

static int vm_open_kvm(struct vm *vm)
{
	int v;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
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

static int vm_create_kvm_vm(struct vm *vm)
{
	int ret;

	do {
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	} while (vm->vm_fd < 0 && errno == EINTR);
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
	return vm_register_ram(vm);
}

double vm_ms_since_start(const struct vm *vm)
{
	return (double)(vtime_ns() - vm->start_ns) / 1e6;
}

/* --verbose: how long each start-up step took (ms since start). */
static void vm_phase(const struct vm *vm, const char *what)
{
	if (vlog_get_level() >= VLOG_DEBUG)
		vdebug("start-up: %s done at %.3f ms", what, vm_ms_since_start(vm));
}

int vm_create(struct vm *vm, const struct vmm_opts *opts, uint64_t start_ns)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->opts = opts;
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = vm->console_wake_efd = vm->coal_tfd = -1;
	coalesce_init(&vm->coal, vm_coal_write, vm);
	vm->console.in_fd = vm->console.out_fd = -1;
	vm->start_ns = start_ns;
	vm->ncpus = opts->cpus;
	pthread_mutex_init(&vm->pm_lock, NULL);
	if ((ret = bus_init(&vm->pio, "pio")) || (ret = bus_init(&vm->mmio, "mmio")))
		return ret;
	ret = vm_open_kvm(vm);
	if (ret)
		return ret;
	ret = vm_check_limits(vm, opts);
	if (ret)
		return ret;
	ret = vm_create_kvm_vm(vm);
	if (ret)
		return ret;
	ret = vm_setup_memory(vm);
	if (ret)
		return ret;
	vm_phase(vm, "KVM VM and guest RAM");
	ret = vm_kvm_setup(vm);
	if (ret)
		return ret;
	vm_phase(vm, "irqchip and PIT");
	ret = vm_get_cpuid(vm);
	if (ret)
		return ret;
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->console_wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->loop = evloop_new();
	vm->vcpus = calloc(vm->ncpus, sizeof(*vm->vcpus));
	vm->apic_ids = calloc(vm->ncpus, sizeof(*vm->apic_ids));
	if (vm->stop_efd < 0 || vm->console_wake_efd < 0 || !vm->loop || !vm->vcpus ||
	    !vm->apic_ids)
		return -ENOMEM;
	ret = vm_create_devices(vm);
	if (ret) {
		verr("cannot set up devices: %s", strerror(-ret));
		return ret;
	}
	vm_phase(vm, "devices");
	for (unsigned i = 0; i < vm->ncpus; i++) {
		vm->apic_ids[i] = i;
		ret = vcpu_create(vm, i, &vm->vcpus[i]);
		if (ret)
			return ret;
	}
	ret = ioctl(vm->vcpus[0]->fd, KVM_GET_TSC_KHZ, 0);
	vm->tsc_khz = ret > 0 ? (uint64_t)ret : 0;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		ret = cpu_init(vm, vm->vcpus[i]->fd, i);
		if (ret)
			return ret;
	}
	vm_phase(vm, "vCPUs");
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

#ifdef VIREO_HAVE_ACPI
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
		req.rsdp_gpa = vm->rsdp_gpa;
	}
	vm_phase(vm, "ACPI tables");
#endif
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

static void vm_on_stop(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;

	if (read(vm->stop_efd, &v, sizeof(v)) < 0) {
		/* spurious wake-up */
	}
}

static void vm_console_input(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	struct console *c = &vm->console;
	uint8_t buf[NS16550_RX_FIFO];
	struct virtio_dev *vcon = virtio_vmm_console(vm);
	size_t space = vcon ? virtio_console_input_room(vcon) : ns16550_rx_space(vm->uart);
	ssize_t n;

	if (space == 0) {
		evloop_mod(vm->loop, c->in_fd, 0);
		c->in_paused = true;
		return;
	}
	n = read(c->in_fd, buf, VIREO_MIN(space, sizeof(buf)));
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			evloop_del(vm->loop, c->in_fd);   /* EOF: no more input */
		return;
	}
	if (c->raw) {
		/* Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A. */
		size_t o = 0;
		for (ssize_t i = 0; i < n; i++) {
			if (c->escape) {
				c->escape = false;
				if (buf[i] == 'x') {
					vm_request_stop(vm, VM_STOP_SIGNAL, SIGINT);
					return;
				}
				if (buf[i] != 1)
					continue;
			} else if (buf[i] == 1) {
				c->escape = true;
				continue;
			}
			buf[o++] = buf[i];
		}
		n = (ssize_t)o;
	}
	if (vcon)
		virtio_console_input(vcon, buf, (size_t)n);
	else
		ns16550_rx_push(vm->uart, buf, (size_t)n);
}

static void vm_console_wake(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;

	if (read(vm->console_wake_efd, &v, sizeof(v)) < 0) {
		/* nothing */
	}
	if (vm->console.in_paused) {
		vm->console.in_paused = false;
		evloop_mod(vm->loop, vm->console.in_fd, EPOLLIN);
	}
}

struct vm_sig {
	struct vm *vm;
	int fd;
};

/* SIGQUIT: print the platform's interrupt state and have every vCPU print
 * its registers (for a guest that seems stuck); the guest runs on. */
static void vm_dump_state(struct vm *vm)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };

	vinfo("state dump (SIGQUIT), %.3f ms after start", vm_ms_since_start(vm));
	if (vm->uart) {
		struct ns16550 *u = vm->uart;

		pthread_mutex_lock(&u->lock);
		vinfo("COM1: ier=%02x lcr=%02x mcr=%02x lsr=%02x thr_pending=%d rx=%u irq=%d",
		      u->ier, u->lcr, u->mcr, u->lsr, u->thr_ipending, u->rx_count,
		      u->irq_level);
		pthread_mutex_unlock(&u->lock);
	}
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
	atomic_fetch_add(&vm->dump_gen, 1);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(vm->vcpus[i]);
}

static void vm_on_signal(void *opaque, uint32_t events)
{
	struct vm_sig *s = opaque;
	struct signalfd_siginfo si;

	if (read(s->fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGUSR2)
		vm_power_button(s->vm);
	else if (si.ssi_signo == SIGQUIT)
		vm_dump_state(s->vm);
	else
		vm_request_stop(s->vm, VM_STOP_SIGNAL, (int)si.ssi_signo);
}

int vm_run(struct vm *vm)
{
	struct vm_sig sig = { vm, -1 };
	sigset_t set;
	int ret = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGQUIT);
	sig.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig.fd < 0 || evloop_add(vm->loop, sig.fd, EPOLLIN, vm_on_signal, &sig) ||
	    evloop_add(vm->loop, vm->stop_efd, EPOLLIN, vm_on_stop, vm) ||
	    evloop_add(vm->loop, vm->console_wake_efd, EPOLLIN, vm_console_wake, vm)) {
		verr("cannot set up the event loop: %s", strerror(errno));
		vm_request_stop(vm, VM_STOP_ERROR, 1);
	}
	if (vm->console.in_fd >= 0 &&
	    evloop_add(vm->loop, vm->console.in_fd, EPOLLIN, vm_console_input, vm) < 0)
		vdebug("console input not pollable; input disabled");

	for (unsigned i = 0; i < vm->ncpus && !vm_stopping(vm); i++)
		if (vcpu_start(vm->vcpus[i]))
			vm_request_stop(vm, VM_STOP_ERROR, 1);
	if (!vm_stopping(vm))
		vm_coal_setup(vm);
	while (!vm_stopping(vm)) {
		ret = evloop_run_once(vm->loop, -1);
		if (ret) {
			verr("event loop failed: %s", strerror(-ret));
			vm_request_stop(vm, VM_STOP_ERROR, 1);
		}
	}
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(vm->vcpus[i]);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_join(vm->vcpus[i]);
	vm_coal_drain(vm);      /* what the guest wrote last */
	if (vm->coal.replayed || vm->coal.dropped || vm->coal.broken)
		vdebug("coalesced port writes: %llu replayed, %llu dropped%s",
		       (unsigned long long)vm->coal.replayed,
		       (unsigned long long)vm->coal.dropped,
		       vm->coal.broken ? ", ring indices out of range (ring given up)" : "");
	coalesce_stop(&vm->coal);
	if (vm->coal_tfd >= 0) {
		evloop_del(vm->loop, vm->coal_tfd);
		close(vm->coal_tfd);
		vm->coal_tfd = -1;
	}
	if (vm->console.in_fd >= 0)
		evloop_del(vm->loop, vm->console.in_fd);
	evloop_del(vm->loop, vm->console_wake_efd);
	evloop_del(vm->loop, vm->stop_efd);
	if (sig.fd >= 0) {
		evloop_del(vm->loop, sig.fd);
		close(sig.fd);
	}
	return atomic_load(&vm->stop);
}

void vm_destroy(struct vm *vm)
{
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->ncpus; i++)
			vcpu_destroy(vm->vcpus[i]);
		free(vm->vcpus);
	}
#ifdef VIREO_HAVE_ACPI
	if (vm->pm)
		acpi_pm_free(vm->pm);
#endif
	virtio_vmm_destroy(vm);
	pci_host_free(vm->pci);
	coalesce_destroy(&vm->coal);
	if (vm->uart)
		ns16550_destroy(vm->uart);
	free(vm->uart);
	free(vm->i8042);
	free(vm->rtc);
	free(vm->boot_timer);
	free(vm->apic_ids);
	free(vm->supported_cpuid);
	evloop_free(vm->loop);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	if (vm->console_wake_efd >= 0)
		close(vm->console_wake_efd);
	memory_unmap(vm->mem_map.reservation, vm->mem_map.reservation_len);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	pthread_mutex_destroy(&vm->pm_lock);
}
