/* vireo-vmm: one process per VM.  See docs/vireo-vmm.1. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <vireo/util.h>

#include "api.h"
#include "filters.h"
#include "hold.h"
#include "migrate.h"
#include "options.h"
#include "sandbox.h"
#include "snapshot.h"
#include "vm.h"
#include "watchdog.h"

static void main_kick_handler(int sig)
{
	(void)sig;   /* only interrupts KVM_RUN */
}

static int main_status(const struct vm *vm, int stop)
{
	switch (stop) {
	case VM_STOP_POWEROFF: return VMM_EXIT_POWEROFF;
	case VM_STOP_REBOOT: return VMM_EXIT_REBOOT;
	case VM_STOP_SIGNAL: return 128 + vm->rs.status;
	case VM_STOP_DEBUG_EXIT: return vm->rs.status;
	case VM_STOP_SAVED: return 0;
	case VM_STOP_API_POWEROFF: return 0;
	default: return VMM_EXIT_ERROR;
	}
}

/* The event loop runs on a thread of its own, so that it can narrow its
 * system call filter to the loop's while this (main) thread keeps the
 * builder's, which a VM built again after a guest reboot needs. */
struct main_run {
	struct vm *vm;
	int stop;
};

static void *main_run_thread(void *arg)
{
	struct main_run *mr = arg;

	pthread_setname_np(pthread_self(), "loop");
	mr->stop = vm_run(mr->vm);
	return NULL;
}

static int main_run(struct vm *vm)
{
	struct main_run mr = { vm, VM_STOP_ERROR };
	pthread_t t;
	int e = pthread_create(&t, NULL, main_run_thread, &mr);

	if (e) {
		verr("cannot start the event loop's thread: %s", strerror(e));
		return VM_STOP_ERROR;
	}
	pthread_join(t, NULL);
	return mr.stop;
}

/* Test builds: VIREO_TEST_SANDBOX=report says what the sandboxed process
 * may do, before the filters (tests/guest/sandbox.sh). */
static void main_test_hook(void)
{
#ifdef VIREO_TEST_HOOKS
	const char *t = getenv("VIREO_TEST_SANDBOX");
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int fd;

	if (!t || strcmp(t, "report"))
		return;
	fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
	vinfo("test hook: open /etc/shadow: %s", fd >= 0 ? "opened" : strerror(errno));
	if (fd >= 0)
		close(fd);
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	vinfo("test hook: open /dev/kvm: %s", fd >= 0 ? "opened" : strerror(errno));
	if (fd >= 0)
		close(fd);
	if (getresuid(&ru, &eu, &su) == 0 && getresgid(&rg, &eg, &sg) == 0)
		vinfo("test hook: uid %u %u %u gid %u %u %u pid %d", (unsigned)ru, (unsigned)eu,
		      (unsigned)su, (unsigned)rg, (unsigned)eg, (unsigned)sg, (int)getpid());
#endif
}

/* --incoming, a VM built while the stream came in: the rest of it. */
static int main_received(struct vm *vm, struct vmm_opts *o)
{
	int r = migrate_incoming_received(o);

	if (!r && o->incoming)
		vm_start_phase(vm->start_ns, "the rest of the migration stream");
	return r;
}

/* The filters' extras (filters.h) that the VM's devices need. */
static unsigned main_filter_extras(const struct vmm_opts *o)
{
	unsigned x = o->virtio.vsock ? FILTERS_VHOST : 0;

	if (vmm_opts_restoring(o))
		x |= FILTERS_RESTORE;
	if (o->api_socket)
		x |= FILTERS_API | (sandbox_wanted(o) ? 0 : FILTERS_API_UNLINK);
	for (unsigned i = 0; i < o->virtio.nr_nets; i++) {
		const struct virtio_net_opt *n = &o->virtio.net[i];

		if (n->user)
			x |= FILTERS_SOCKETS;
		else
			x |= FILTERS_TAP | (n->vhost != VIRTIO_NET_VHOST_OFF ? FILTERS_VHOST : 0);
	}
	return x;
}

/*
 * --incoming: the target readies what does not depend on the stream
 * before it takes the connection, so that the guest does not wait for it
 * after the source has stopped: the system call filters, the taps, the
 * sandbox (its namespaces and its monitor process) and the KVM VM, all
 * from this command line, which is the source's plus --incoming (QEMU's
 * way; vireod starts its targets so).  The listening socket is made
 * first, in the host's network namespace.  The stream then gives the VM
 * (snapshot.c checks its nets against the --net options given); the
 * filters are compiled again only if its devices need others, and a
 * sandboxed target whose command line had other nets than the stream
 * refuses it (its network namespace and taps are already made).
 */
static int main_incoming(struct vmm_opts *o, uint64_t start_ns)
{
	unsigned nets = o->virtio.nr_nets;
	bool host_net = sandbox_host_net(o);

	if (filters_init(o->seccomp, main_filter_extras(o)) || migrate_incoming_listen(o) ||
	    hold_open_net(o))
		return -EINVAL;
	vm_start_phase(start_ns, "system call filters");
	if (sandbox_start(o)) {
		hold_close();
		return -EINVAL;
	}
	vm_start_phase(start_ns, "sandbox");
	vm_prepare();
	vm_start_phase(start_ns, "KVM VM");
	if (migrate_incoming(o)) {
		hold_close();
		return -EINVAL;
	}
	vm_start_phase(start_ns, "the migration stream (or its CONFIG, see migrate.h)");
	if (sandbox_active() && (sandbox_host_net(o) != host_net || o->virtio.nr_nets != nets)) {
		verr("--incoming %s: the source's VM has %u network device(s)%s, this "
		     "command line %u%s: give the target the source's --net options (a "
		     "sandboxed target makes its network namespace before the stream)",
		     o->incoming, o->virtio.nr_nets, sandbox_host_net(o) ? " (user-mode)" : "",
		     nets, host_net ? " (user-mode)" : "");
		migrate_incoming_abort();
		hold_close();
		return -EINVAL;
	}
	/* Without the sandbox the taps the stream names open now. */
	if (!nets && !sandbox_active() && hold_open_net(o)) {
		migrate_incoming_abort();
		return -EINVAL;
	}
	if (filters_init(o->seccomp, main_filter_extras(o))) {
		migrate_incoming_abort();
		hold_close();
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t start_ns = vtime_ns();
	struct vmm_opts opts;
	struct sigaction sa;
	sigset_t set;
	char err[256], prog[96];
	int status;

	vlog_set_prog("vireo-vmm");
	if (vmm_opts_parse(&opts, argc, argv, err, sizeof(err))) {
		verr("%s", err);
		return VMM_EXIT_USAGE;
	}
	if (opts.help) {
		vmm_opts_usage(stdout);
		return 0;
	}
	if (opts.version) {
		printf("vireo-vmm 0.1.0\n");
		return 0;
	}
	if (opts.verbose)
		vlog_set_level(VLOG_DEBUG);
	if (opts.name_given) {
		/* Messages name the VM: "vireo-vmm[web1]: error: ..." */
		snprintf(prog, sizeof(prog), "vireo-vmm[%s]", opts.name);
		vlog_set_prog(prog);
	}

	/* Signals: SIGTERM/SIGINT/SIGHUP/SIGUSR2/SIGQUIT arrive through the watchdog
	 * thread's signalfd, so block them in every thread; SIGUSR1 kicks vCPU
	 * threads out of KVM_RUN (they unblock it). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main_kick_handler;
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	watchdog_signals(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	/* glibc's malloc sizes its arenas from the CPU count (read from /sys)
	 * in the first thread that needs one: settle it now, as it would.
	 * Then compile the filters, open the taps (in the host's network
	 * namespace), enter the namespaces (the monitor
	 * process stays in sandbox_start), open everything the VM needs from
	 * the host's file system, leave that file system and the privileges,
	 * then the filters: see vmm/README.md "Sandbox". */
	mallopt(M_ARENA_MAX, 8 * get_nprocs());
	/* --restore: the machine comes from the save (before anything is
	 * sized from the options); --incoming: see main_incoming. */
	if (opts.incoming) {
		if (main_incoming(&opts, start_ns))
			return VMM_EXIT_ERROR;
	} else {
		if (snapshot_prepare(&opts))
			return VMM_EXIT_ERROR;
		if (vmm_opts_restoring(&opts))
			vm_start_phase(start_ns, "the state file");
		if (filters_init(opts.seccomp, main_filter_extras(&opts)) || hold_open_net(&opts))
			return VMM_EXIT_ERROR;
		vm_start_phase(start_ns, "system call filters");
		if (sandbox_start(&opts)) {
			hold_close();
			return VMM_EXIT_ERROR;
		}
		vm_start_phase(start_ns, "sandbox");
	}
	if (hold_open(&opts) || snapshot_check_disks(&opts)) {
		migrate_incoming_abort();
		hold_close();
		return VMM_EXIT_ERROR;
	}
	vm_start_phase(start_ns, "files");
	/* The API's socket: in the host's file system, before the lock. */
	if (api_server_open(&opts) || sandbox_lock(&opts)) {
		migrate_incoming_abort();
		api_server_close();
		hold_close();
		return VMM_EXIT_ERROR;
	}
	vm_start_phase(start_ns, "API socket and the sandbox's root");
	main_test_hook();
	if (filters_enter(VMM_ROLE_BUILDER) || api_server_start() || migrate_incoming_receive()) {
		migrate_incoming_abort();
		api_server_close();
		hold_close();
		return VMM_EXIT_ERROR;
	}
	vm_start_phase(start_ns, "builder's filter and API thread");

	for (;;) {
		struct vm vm;
		int stop;

		/* --incoming: the guest runs only once the source has
		 * handed it over (migrate.h). */
		if (vm_create(&vm, &opts, start_ns) || main_received(&vm, &opts) || vm_load(&vm) ||
		    console_open(&vm.console, &opts) || migrate_incoming_go()) {
			migrate_incoming_abort();
			vm_destroy(&vm);
			api_server_close();
			hold_close();
			return VMM_EXIT_ERROR;
		}
		api_server_bind(&vm);
		stop = main_run(&vm);
		migrate_unbind();
		api_server_unbind();
		console_close(&vm.console);
		status = main_status(&vm, stop);
		vm_destroy(&vm);
		if (stop != VM_STOP_SIGNAL && atomic_load(&vm.wd.stop_sig)) {
			/* A stop signal that came as the guest rebooted or
			 * powered off still ends vireo-vmm with its status. */
			stop = VM_STOP_SIGNAL;
			status = 128 + atomic_load(&vm.wd.stop_sig);
		}
		if (stop == VM_STOP_REBOOT && opts.reboot_restart) {
			vinfo("guest rebooted: starting it again");
			continue;
		}
		if (stop == VM_STOP_REBOOT)
			vinfo("guest asked for a reboot: exiting with status %d", status);
		break;
	}
	api_server_close();
	hold_close();
	snapshot_release();
	return status;
}
