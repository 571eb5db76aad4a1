/* vireo-vmm: one process per VM.  See docs/vireo-vmm.1. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "options.h"
#include "vm.h"

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
	default: return VMM_EXIT_ERROR;
	}
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

	/* Signals: SIGTERM/SIGINT/SIGHUP/SIGUSR2 arrive through the event
	 * loop's signalfd, so block them in every thread; SIGUSR1 kicks vCPU
	 * threads out of KVM_RUN (they unblock it). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main_kick_handler;
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	for (;;) {
		struct vm vm;
		int stop;

		if (vm_create(&vm, &opts, start_ns) || vm_load(&vm) ||
		    console_open(&vm.console, &opts)) {
			vm_destroy(&vm);
			return VMM_EXIT_ERROR;
		}
		stop = vm_run(&vm);
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
	return status;
}
