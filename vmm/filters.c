/*
 * seccomp-bpf filters per thread role.
 *
 * The lists below are what each role was seen to call (strace -f and
 * --seccomp=log over the test suite and the lab scenarios), plus the few
 * calls glibc and the sanitizer runtimes make on a thread's way out.
 * filters_init() compiles every role's list once, with libseccomp, into a
 * BPF program kept in memory; a thread entering its role then only needs
 * prctl(PR_SET_NO_NEW_PRIVS) and seccomp(2), so no allocation or library
 * state is shared between threads installing filters at the same time.
 *
 * Filters stack: a thread keeps every filter it inherited.  So the VM
 * builder (main thread), which starts the event-loop thread and, through
 * it, the vCPU threads, allows the union of their lists plus its own
 * set-up calls; the event loop installs its narrower filter once the vCPU
 * threads run, each vCPU thread its own before its first KVM_RUN.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/sockios.h>
#include <linux/vhost.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <vireo/util.h>

#include "filters.h"

/* ---- the lists ---------------------------------------------------------------- */

#define END NULL

/* Every role: memory, locks, signals' return path, time, stderr, exit. */
static const char *const sys_base[] = {
	"read", "write", "writev", "close", "futex", "mmap", "munmap", "mprotect",
	"madvise", "brk", "mremap", "rt_sigreturn", "rt_sigprocmask", "sigaltstack",
	"exit", "exit_group", "getpid", "gettid", "tgkill", "clock_gettime",
	"clock_nanosleep", "nanosleep", "gettimeofday", "sched_yield",
	"restart_syscall", "getrandom", "fstat", "newfstatat", "lseek", "time",
	END,
};

/* Device work, on the event loop and on vCPU exits alike: kicks and
 * completions, block I/O (synchronous, io_uring submission), timers, new
 * eventfds when a driver activates a device. */
static const char *const sys_device[] = {
	"pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2", "readv",
	"fsync", "fdatasync", "fallocate", "io_uring_enter", "eventfd2", "epoll_ctl",
	"timerfd_settime", "timerfd_gettime", "fcntl", "ftruncate", END,
};

static const char *const sys_loop[] = {
	"epoll_wait", "epoll_pwait", "epoll_pwait2", END,
};

/* Disk workers; the set*id calls are glibc's: setuid(2) in a threaded
 * process makes every thread switch (a signal to each), and the workers
 * exist when the sandbox switches users.  Without capabilities afterwards
 * they can only set the ids already held. */
static const char *const sys_io[] = {
	"pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2", "fsync",
	"fdatasync", "fallocate", "ftruncate", "setresuid", "setresgid", "setgroups", END,
};

/* Building and destroying VMs, starting threads (the new thread runs its
 * first calls, rseq and set_robust_list, under this filter), the terminal,
 * and installing the narrower filters. */
static const char *const sys_builder[] = {
	"clone", "clone3", "set_robust_list", "rseq", "sched_getaffinity", "sysinfo",
	"epoll_create1", "signalfd4", "timerfd_create", "dup", "dup3", "ftruncate",
	"seccomp", "io_uring_setup", "io_uring_register", "wait4", "pipe2",
	/* what the watchdog thread it starts uses (below) */
	"poll", "ppoll", "sync",
	/* glibc: the first pthread_create installs its internal handlers */
	"rt_sigaction", END,
};

/* The monitor: wait for its child, forward signals, exit like it. */
static const char *const sys_monitor[] = {
	"read", "write", "close", "rt_sigprocmask", "rt_sigaction", "rt_sigreturn",
	"wait4", "kill", "tgkill", "getpid", "gettid", "exit", "exit_group", "ppoll",
	"poll", "restart_syscall", "futex", "munmap", "madvise", "sigaltstack", END,
};

/* The watchdog: wait for signals, forward them, and when a teardown is
 * stuck, give the terminal back, sync and exit. */
static const char *const sys_watchdog[] = { "poll", "ppoll", "sync", END };
static const unsigned long ioctl_terminal[] = { TCGETS, TCSETS, TCSETSW, TCSETSF, 0 };

/*
 * What only some VMs need (filters_init's @extras), in the builder, the
 * event loop and the vCPU threads (device work runs on the last two):
 * - FILTERS_TAP: a tap's set-up, offloads and queues (--net tap/fd);
 * - FILTERS_VHOST: handing queues to vhost-net and vhost-vsock;
 * - FILTERS_SOCKETS: libslirp (--net user) makes and uses sockets to the
 *   host's network for the guest's connections, and reads
 *   /etc/resolv.conf for the guest's DNS (the sandbox's root holds a copy
 *   of it and nothing else), so read-only opens are allowed.
 */
static const unsigned long ioctl_tap[] = {
	TUNSETVNETHDRSZ, TUNSETOFFLOAD, TUNSETQUEUE, TUNGETIFF, 0,
};
static const unsigned long ioctl_vhost[] = {
	VHOST_SET_OWNER, VHOST_GET_FEATURES, VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE,
	VHOST_SET_VRING_NUM, VHOST_SET_VRING_BASE, VHOST_GET_VRING_BASE,
	VHOST_SET_VRING_ADDR, VHOST_SET_VRING_KICK, VHOST_SET_VRING_CALL,
	VHOST_NET_SET_BACKEND, VHOST_VSOCK_SET_GUEST_CID, VHOST_VSOCK_SET_RUNNING, 0,
};
static const char *const sys_sockets[] = {
	"socket", "connect", "bind", "listen", "accept", "accept4", "sendto", "recvfrom",
	"sendmsg", "recvmsg", "setsockopt", "getsockopt", "getsockname", "getpeername",
	"shutdown", "poll", "ppoll",
	/* GLib's random seed (libslirp's g_rand_new) without /dev/urandom */
	"getppid", END,
};
static const unsigned long ioctl_sockets[] = { FIONREAD, FIONBIO, SIOCOUTQ, 0 };

/* The control API's thread: libmicrohttpd on its listening Unix socket
 * (accept, receive, send, close), driven by poll on its epoll descriptor
 * (api_server.c); seen with strace -f over tests/guest/api.sh. */
static const char *const sys_api[] = {
	"accept4", "recvfrom", "sendto", "sendmsg", "shutdown", "poll", "epoll_wait",
	"epoll_ctl", END,
};
/* The migration thread (PUT /migrate, migrate.c): its connection to the
 * target; the builder has them too (the thread starts under its filter). */
static const char *const sys_migrate[] = {
	"socket", "connect", "setsockopt", "sendto", "sendmsg", "recvfrom", "shutdown",
	"poll", "ppoll",
	"recvmsg",   /* in the sandbox, the connection from the connector */
	END,
};
/* The sandbox's connector (sandbox.c): outside the namespaces, as the
 * sandbox's user, it opens the migration's connections for the VM's
 * process and passes them over. */
static const char *const sys_connector[] = {
	"read", "write", "close", "exit", "exit_group", "rt_sigreturn", "restart_syscall",
	"socket", "connect", "setsockopt", "recvfrom", "recvmsg", "sendmsg", "sendto",
	"getpid", "gettid", "tgkill", "futex", "brk", "mmap", "munmap", "madvise",
	"sigaltstack", "rt_sigprocmask", END,
};
/* Dirty logging for the migration, on the event loop (vm_call). */
static const unsigned long ioctl_migrate[] = {
	KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG,
	KVM_CHECK_EXTENSION, KVM_ENABLE_CAP, 0,
};
/* Without the sandbox the builder (main thread) removes the socket at
 * the end; with it, the monitor does. */
static const char *const sys_builder_api[] = { "unlink", END };
/* The monitor removes the socket once the VM's process has ended. */
static const char *const sys_monitor_api[] = { "unlinkat", END };

/* PUT /vm/save (--api-socket), on the event loop (snapshot.c): the
 * directory and its files, the VM's state.  The builder has them too: the
 * loop thread starts under its filter. */
static const char *const sys_save[] = {
	"openat", "mkdir", "mkdirat", "rename", "renameat", "renameat2",
	"poll", "ppoll",   /* waiting for the disks' requests under way */
	"sendto", "recvmsg",   /* in the sandbox, asking the monitor for the files */
	END,
};
/* In the sandbox the monitor makes the save's files (sandbox.c). */
static const char *const sys_monitor_save[] = {
	"recvfrom", "sendmsg", "openat", "mkdir", "mkdirat", "rename", "renameat",
	"renameat2", END,
};
static const unsigned long ioctl_save[] = {
	KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_DEBUGREGS, KVM_GET_XSAVE, KVM_GET_XCRS,
	KVM_GET_LAPIC, KVM_GET_VCPU_EVENTS, KVM_GET_MP_STATE, KVM_GET_MSRS, KVM_GET_CLOCK,
	KVM_GET_IRQCHIP, KVM_GET_PIT2, 0,
};
/* --restore: the builder sets the saved state (snapshot.c). */
static const unsigned long ioctl_restore[] = {
	KVM_SET_XSAVE, KVM_SET_XCRS, KVM_SET_DEBUGREGS, KVM_SET_VCPU_EVENTS,
	KVM_SET_MP_STATE, KVM_SET_IRQCHIP, KVM_SET_PIT2, KVM_SET_CLOCK,
	/* the TSC moved on with the clock (snap_set_tsc) */
	KVM_GET_CLOCK, KVM_HAS_DEVICE_ATTR, KVM_SET_DEVICE_ATTR, 0,
};

/* KVM ioctls of a running VM: interrupts and doorbells (device exits on
 * vCPU threads, completions and the power button on the event loop). */
static const unsigned long ioctl_runtime[] = {
	KVM_IRQ_LINE, KVM_SIGNAL_MSI, KVM_IRQFD, KVM_IOEVENTFD, KVM_SET_GSI_ROUTING, 0,
};
/* A vCPU: run, and its own registers for the state dumps. */
static const unsigned long ioctl_vcpu[] = {
	KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_LAPIC, 0,
};
/* The event loop's SIGQUIT dump. */
static const unsigned long ioctl_loop[] = { KVM_GET_IRQCHIP, 0 };
/* Building the VM; the terminal (raw mode, restored at the end). */
static const unsigned long ioctl_builder[] = {
	KVM_GET_API_VERSION, KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_GET_VCPU_MMAP_SIZE,
	KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2,
	KVM_GET_SUPPORTED_CPUID, KVM_SET_USER_MEMORY_REGION, KVM_CREATE_VCPU,
	KVM_GET_TSC_KHZ, KVM_SET_CPUID2, KVM_SET_MSRS, KVM_SET_SREGS, KVM_SET_REGS,
	KVM_SET_FPU, KVM_SET_LAPIC, KVM_REGISTER_COALESCED_MMIO,
	KVM_UNREGISTER_COALESCED_MMIO, TCGETS, TCSETS, TCSETSW, TCSETSF, 0,
};

struct role_def {
	const char *name;
	const char *const *sys[5];
	const unsigned long *ioctls[4];
	bool prctl_ok;     /* prctl(PR_SET_NAME / PR_SET_NO_NEW_PRIVS) */
};

static const struct role_def roles[VMM_ROLE_COUNT] = {
	[VMM_ROLE_BUILDER] = { .name = "builder",
		.sys = { sys_base, sys_device, sys_loop, sys_builder },
		.ioctls = { ioctl_runtime, ioctl_vcpu, ioctl_loop, ioctl_builder },
		.prctl_ok = true },
	[VMM_ROLE_LOOP] = { .name = "event loop",
		.sys = { sys_base, sys_device, sys_loop },
		.ioctls = { ioctl_runtime, ioctl_loop } },
	[VMM_ROLE_VCPU] = { .name = "vcpu",
		.sys = { sys_base, sys_device },
		.ioctls = { ioctl_runtime, ioctl_vcpu } },
	[VMM_ROLE_IO] = { .name = "io", .sys = { sys_base, sys_io } },
	[VMM_ROLE_API] = { .name = "api", .sys = { sys_base, sys_api } },
	[VMM_ROLE_MIGRATE] = { .name = "migrate", .sys = { sys_base, sys_migrate } },
	[VMM_ROLE_MONITOR] = { .name = "monitor", .sys = { sys_monitor } },
	[VMM_ROLE_WATCHDOG] = { .name = "watchdog", .sys = { sys_base, sys_watchdog },
		.ioctls = { ioctl_terminal } },
	[VMM_ROLE_CONNECTOR] = { .name = "connector", .sys = { sys_connector } },
};

/* ---- compiling ------------------------------------------------------------------ */

static enum vmm_seccomp filters_mode_v = VMM_SECCOMP_OFF;
static unsigned filters_extras_v;
static atomic_int filters_installed;
static struct sock_fprog filters_prog[VMM_ROLE_COUNT];
static unsigned filters_nsys[VMM_ROLE_COUNT], filters_nioctl[VMM_ROLE_COUNT];

const char *filters_role_name(enum vmm_role role)
{
	return role < VMM_ROLE_COUNT ? roles[role].name : "?";
}

static int filters_add(scmp_filter_ctx ctx, const char *name, unsigned *n)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0;   /* not on this architecture */
	int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	if (r == 0)
		(*n)++;
	return r == -EEXIST ? 0 : r;
}

static int filters_add_ioctl(scmp_filter_ctx ctx, unsigned long req, unsigned *n)
{
	/* The kernel takes the request as 32 bits. */
	int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				 SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, req));

	if (r == 0)
		(*n)++;
	return r == -EEXIST ? 0 : r;
}

/* Build @role's filter and export it as BPF into filters_prog[role]. */
static int filters_compile(enum vmm_role role, uint32_t deflt)
{
	const struct role_def *d = &roles[role];
	scmp_filter_ctx ctx = seccomp_init(deflt);
	unsigned nsys = 0, nioctl = 0;
	int r = 0, mfd = -1;
	bool open_allowed = false;
	off_t len;

	if (!ctx)
		return -ENOMEM;
	/* We set no_new_privs ourselves (filters_enter). */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	for (unsigned l = 0; l < VIREO_ARRAY_SIZE(d->sys) && d->sys[l] && !r; l++)
		for (unsigned i = 0; d->sys[l][i] && !r; i++)
			r = filters_add(ctx, d->sys[l][i], &nsys);
	for (unsigned l = 0; l < VIREO_ARRAY_SIZE(d->ioctls) && d->ioctls[l] && !r; l++)
		for (unsigned i = 0; d->ioctls[l][i] && !r; i++)
			r = filters_add_ioctl(ctx, d->ioctls[l][i], &nioctl);
	if (role == VMM_ROLE_BUILDER || role == VMM_ROLE_LOOP || role == VMM_ROLE_VCPU) {
		const unsigned long *extra_ioctls[3] = {
			filters_extras_v & FILTERS_TAP ? ioctl_tap : NULL,
			filters_extras_v & FILTERS_VHOST ? ioctl_vhost : NULL,
			filters_extras_v & FILTERS_SOCKETS ? ioctl_sockets : NULL,
		};

		for (unsigned i = 0; (filters_extras_v & FILTERS_SOCKETS) && sys_sockets[i] && !r; i++)
			r = filters_add(ctx, sys_sockets[i], &nsys);
		for (unsigned l = 0; l < 3 && !r; l++)
			for (unsigned i = 0; extra_ioctls[l] && extra_ioctls[l][i] && !r; i++)
				r = filters_add_ioctl(ctx, extra_ioctls[l][i], &nioctl);
		/* Read-only opens (resolv.conf), before the EACCES rule below. */
		if (!r && (filters_extras_v & FILTERS_SOCKETS)) {
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
					     SCMP_A2(SCMP_CMP_MASKED_EQ,
						     O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND |
						     __O_TMPFILE, O_RDONLY));
			open_allowed = true;
		}
	}
	/* --api-socket: the builder starts the API thread (whose first
	 * calls run under the builder's filter, and every later one under
	 * both); the monitor removes the socket. */
	if (filters_extras_v & FILTERS_API) {
		const char *const *l = role == VMM_ROLE_BUILDER ? sys_api
				       : role == VMM_ROLE_MONITOR ? sys_monitor_api : NULL;

		for (unsigned i = 0; l && l[i] && !r; i++)
			r = filters_add(ctx, l[i], &nsys);
		for (unsigned i = 0; role == VMM_ROLE_BUILDER &&
		     (filters_extras_v & FILTERS_API_UNLINK) && sys_builder_api[i] && !r; i++)
			r = filters_add(ctx, sys_builder_api[i], &nsys);
		for (unsigned i = 0; role == VMM_ROLE_MONITOR && sys_monitor_save[i] && !r; i++)
			r = filters_add(ctx, sys_monitor_save[i], &nsys);
		if (role == VMM_ROLE_MONITOR)
			open_allowed = true;
		/* The builder starts the migration thread. */
		for (unsigned i = 0; role == VMM_ROLE_BUILDER && sys_migrate[i] && !r; i++)
			r = filters_add(ctx, sys_migrate[i], &nsys);
		/* The save and the migration's dirty log, on the event loop. */
		if (role == VMM_ROLE_BUILDER || role == VMM_ROLE_LOOP) {
			for (unsigned i = 0; ioctl_migrate[i] && !r; i++)
				r = filters_add_ioctl(ctx, ioctl_migrate[i], &nioctl);
			for (unsigned i = 0; sys_save[i] && !r; i++)
				r = filters_add(ctx, sys_save[i], &nsys);
			for (unsigned i = 0; ioctl_save[i] && !r; i++)
				r = filters_add_ioctl(ctx, ioctl_save[i], &nioctl);
			open_allowed = true;
		}
	}
	if ((filters_extras_v & FILTERS_RESTORE) && role == VMM_ROLE_BUILDER)
		for (unsigned i = 0; ioctl_restore[i] && !r; i++)
			r = filters_add_ioctl(ctx, ioctl_restore[i], &nioctl);
		/* open and openat fail with EACCES in every role, rather than kill:
	 * nothing is opened after the hold, but glibc reads /sys or /proc
	 * behind some calls and falls back when it cannot (sysconf's CPU
	 * count, malloc sizing its arenas in a thread's first allocation;
	 * seen killing a vCPU thread in the lab).  The call never runs. */
	if (!r && !open_allowed)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
	if (!r && d->prctl_ok) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				     SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME, 0));
		if (!r)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
					     SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS, 0));
		nsys++;
	}
	if (!r) {
		mfd = memfd_create("vireo-seccomp", MFD_CLOEXEC);
		if (mfd < 0)
			r = -errno;
	}
	if (!r)
		r = seccomp_export_bpf(ctx, mfd);
	if (!r) {
		len = lseek(mfd, 0, SEEK_END);
		filters_prog[role].filter = len > 0 ? malloc((size_t)len) : NULL;
		if (!filters_prog[role].filter ||
		    vio_pread_full(mfd, filters_prog[role].filter, (size_t)len, 0))
			r = -EIO;
		else
			filters_prog[role].len = (unsigned short)(len / sizeof(struct sock_filter));
	}
	if (mfd >= 0)
		close(mfd);
	seccomp_release(ctx);
	filters_nsys[role] = nsys;
	filters_nioctl[role] = nioctl;
	return r;
}

static int filters_build(void);
static int filters_built;   /* 0 not yet, 1 done, <0 failed */

int filters_init(enum vmm_seccomp mode, unsigned extras)
{
	if (filters_built && (mode != filters_mode_v || extras != filters_extras_v)) {
		/* Compiled for other options (a migration target's command
		 * line, before the stream said otherwise): again. */
		for (unsigned r = 0; r < VMM_ROLE_COUNT; r++) {
			free(filters_prog[r].filter);
			filters_prog[r] = (struct sock_fprog){ 0 };
		}
		filters_built = 0;
	}
	filters_mode_v = mode;
	filters_extras_v = extras;
	return mode == VMM_SECCOMP_OFF ? 0 : filters_build();
}

enum vmm_seccomp filters_mode(void)
{
	return filters_mode_v;
}

/* Compile every role once (main thread, before any filter). */
static int filters_build(void)
{
	uint32_t deflt = filters_mode_v == VMM_SECCOMP_LOG ? SCMP_ACT_LOG
							   : SCMP_ACT_KILL_PROCESS;

	if (filters_built)
		return filters_built < 0 ? filters_built : 0;
	for (unsigned r = 0; r < VMM_ROLE_COUNT; r++) {
		int e = filters_compile((enum vmm_role)r, deflt);
		if (e) {
			verr("cannot build the %s system call filter: %s", roles[r].name,
			     strerror(-e));
			filters_built = e;
			return e;
		}
	}
	filters_built = 1;
	return 0;
}

unsigned filters_count(enum vmm_role role, unsigned *ioctls)
{
	if (ioctls)
		*ioctls = role < VMM_ROLE_COUNT ? filters_nioctl[role] : 0;
	return role < VMM_ROLE_COUNT ? filters_nsys[role] : 0;
}

int filters_enter(enum vmm_role role)
{
	int r;

	if (filters_mode_v == VMM_SECCOMP_OFF)
		return 0;
	r = filters_build();
	if (r)
		return r;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		r = -errno;
		verr("cannot set no_new_privs: %s", strerror(errno));
		return r;
	}
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filters_prog[role])) {
		r = -errno;
		verr("cannot install the %s system call filter: %s", roles[role].name,
		     strerror(errno));
		return r;
	}
	atomic_store(&filters_installed, 1);
#ifdef VIREO_TEST_HOOKS
	/* Test builds: VIREO_TEST_SANDBOX=vcpu-syscall makes a vCPU thread,
	 * under its filter, call something no role allows (tests/guest). */
	if (role == VMM_ROLE_VCPU) {
		const char *t = getenv("VIREO_TEST_SANDBOX");
		if (t && !strcmp(t, "vcpu-syscall")) {
			long fd = syscall(SYS_socket, 2 /* AF_INET */, 1 /* SOCK_STREAM */, 0);
			vinfo("test hook: socket() from a vCPU thread returned %ld", fd);
		}
	}
#endif
	return 0;
}

/* Worker threads of the block back ends and the image library call this
 * when they start (a weak reference there: other programs link those
 * libraries without the VMM). */
void vireo_io_thread_start(void);
void vireo_io_thread_start(void)
{
	filters_enter_or_die(VMM_ROLE_IO);
}

void filters_no_leak_check(void)
{
	atomic_store(&filters_installed, 1);
}

#if defined(__SANITIZE_ADDRESS__)
#define FILTERS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FILTERS_ASAN 1
#endif
#endif

#ifdef FILTERS_ASAN
/* LeakSanitizer's check at exit stops the threads with ptrace from a
 * helper process and reads /proc: none of that is possible (or allowed)
 * once a filter is in place, and in the sandbox's PID namespace /proc is
 * still the host's (before the new root) or gone (after): it hung there.  So a filtered
 * process skips it; the test suite keeps leak checks on runs with
 * --seccomp=off (tests/guest/meson.build). */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return atomic_load(&filters_installed);
}
#endif

void filters_enter_or_die(enum vmm_role role)
{
	if (filters_enter(role))
		_exit(VMM_EXIT_ERROR);
}
