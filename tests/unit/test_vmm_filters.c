/* vmm/filters.c: each role's filter, installed in a child process, lets
 * through what the role needs and kills the process (SIGSYS) otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "filters.h"

enum probe { P_KVM_RUN, P_KVM_CREATE_VM, P_SOCKET, P_PREAD, P_EPOLL_WAIT, P_OPEN, P_SETUID,
	     P_ACCEPT, P_UNLINK };

/* Run @p under @role's filter in a child: its exit status (0: the call
 * returned, 2: it returned an unexpected result) or 128 + the signal. */
static unsigned probe_extras;

static int probe(enum vmm_seccomp mode, enum vmm_role role, enum probe p)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct epoll_event ev;
		long r = 0;
		char b;

		if (filters_init(mode, probe_extras) || filters_enter(role))
			_exit(3);
		switch (p) {
		case P_KVM_RUN: r = ioctl(-1, KVM_RUN, 0) < 0 && errno == EBADF; break;
		case P_KVM_CREATE_VM: r = ioctl(-1, KVM_CREATE_VM, 0) < 0 && errno == EBADF; break;
		case P_SOCKET: r = socket(AF_UNIX, SOCK_STREAM, 0) >= 0; break;
		case P_PREAD: r = pread(-1, &b, 1, 0) < 0 && errno == EBADF; break;
		case P_EPOLL_WAIT: r = epoll_wait(-1, &ev, 1, 0) < 0 && errno == EBADF; break;
		case P_OPEN: r = open("/", O_RDONLY) < 0 && errno == EACCES; break;
		case P_SETUID: r = setresuid((uid_t)-1, (uid_t)-1, (uid_t)-1) == 0; break;
		case P_ACCEPT: r = accept4(-1, NULL, NULL, SOCK_CLOEXEC) < 0 && errno == EBADF; break;
		case P_UNLINK: r = unlink("") < 0 && errno == ENOENT; break;
		}
		_exit(r ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

#define SIGSYS_EXIT (128 + SIGSYS)

static void test_vcpu(void **state)
{
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_VCPU, P_KVM_RUN), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_VCPU, P_PREAD), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_VCPU, P_KVM_CREATE_VM), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_VCPU, P_SOCKET), SIGSYS_EXIT);
	/* open fails (glibc falls back when /sys cannot be read). */
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_VCPU, P_OPEN), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_IO, P_OPEN), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_VCPU, P_EPOLL_WAIT), SIGSYS_EXIT);
}

static void test_loop(void **state)
{
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_LOOP, P_EPOLL_WAIT), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_LOOP, P_PREAD), 0);
	/* KVM_RUN is the vCPU threads' alone. */
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_LOOP, P_KVM_RUN), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_LOOP, P_KVM_CREATE_VM), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_LOOP, P_SOCKET), SIGSYS_EXIT);
}

static void test_io(void **state)
{
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_IO, P_PREAD), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_IO, P_SETUID), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_IO, P_KVM_RUN), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_IO, P_EPOLL_WAIT), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_IO, P_SOCKET), SIGSYS_EXIT);
}

static void test_builder_monitor_api(void **state)
{
	/* The builder holds its children's calls and the set-up ioctls. */
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_BUILDER, P_KVM_CREATE_VM), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_BUILDER, P_KVM_RUN), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_BUILDER, P_OPEN), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_BUILDER, P_SOCKET), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_MONITOR, P_PREAD), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_MONITOR, P_KVM_RUN), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_API, P_KVM_RUN), SIGSYS_EXIT);
}

/* The control API's thread: its socket's calls, not a new socket, not
 * the VM's ioctls; the builder allows what it starts only with
 * --api-socket, and unlink only without the sandbox. */
static void test_api(void **state)
{
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_API, P_ACCEPT), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_API, P_EPOLL_WAIT), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_API, P_SOCKET), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_API, P_PREAD), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_API, P_UNLINK), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_BUILDER, P_ACCEPT), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_LOOP, P_ACCEPT), SIGSYS_EXIT);
	probe_extras = FILTERS_API;
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_BUILDER, P_ACCEPT), 0);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_BUILDER, P_UNLINK), SIGSYS_EXIT);
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_LOOP, P_ACCEPT), SIGSYS_EXIT);
	probe_extras = FILTERS_API | FILTERS_API_UNLINK;
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_BUILDER, P_UNLINK), 0);
	probe_extras = 0;
}

static void test_log_off(void **state)
{
	/* log: the call goes through (the kernel logs it). */
	assert_int_equal(probe(VMM_SECCOMP_LOG, VMM_ROLE_VCPU, P_SOCKET), 0);
	assert_int_equal(probe(VMM_SECCOMP_OFF, VMM_ROLE_IO, P_SOCKET), 0);
}

static void test_counts(void **state)
{
	unsigned io;

	assert_int_equal(filters_init(VMM_SECCOMP_ON, 0), 0);
	for (unsigned r = 0; r < VMM_ROLE_COUNT; r++) {
		unsigned n = filters_count((enum vmm_role)r, &io);
		print_message("filter %-10s %3u system calls, %2u ioctl requests\n",
			      filters_role_name((enum vmm_role)r), n, io);
		assert_true(n > 10);
	}
	filters_count(VMM_ROLE_VCPU, &io);
	assert_true(io >= 5);
	filters_count(VMM_ROLE_IO, &io);
	assert_int_equal(io, 0);
	filters_init(VMM_SECCOMP_OFF, 0);
}

/* Compiled again when the extras change (a migration target compiles for
 * its command line, then for the stream's devices), not when they do not. */
static void test_recompile(void **state)
{
	unsigned plain, tap, n, io0, io1;

	assert_int_equal(filters_init(VMM_SECCOMP_ON, 0), 0);
	plain = filters_count(VMM_ROLE_LOOP, &io0);
	assert_int_equal(filters_init(VMM_SECCOMP_ON, FILTERS_TAP | FILTERS_VHOST), 0);
	tap = filters_count(VMM_ROLE_LOOP, &io1);
	assert_true(io1 > io0);             /* the tap's and vhost's ioctls */
	assert_int_equal(tap, plain);
	assert_int_equal(filters_init(VMM_SECCOMP_ON, FILTERS_TAP | FILTERS_VHOST), 0);
	n = filters_count(VMM_ROLE_LOOP, &io0);
	assert_int_equal(n, tap);
	assert_int_equal(io0, io1);
	assert_int_equal(filters_init(VMM_SECCOMP_ON, 0), 0);
	filters_count(VMM_ROLE_LOOP, &io1);
	assert_true(io1 < io0);
	/* what is installed is what was asked for last: compiled with the
	 * sockets here, the probe's child asks for none */
	assert_int_equal(filters_init(VMM_SECCOMP_ON, FILTERS_SOCKETS), 0);
	probe_extras = 0;
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_LOOP, P_SOCKET), SIGSYS_EXIT);
	probe_extras = FILTERS_SOCKETS;
	assert_int_equal(probe(VMM_SECCOMP_ON, VMM_ROLE_LOOP, P_SOCKET), 0);
	probe_extras = 0;
	filters_init(VMM_SECCOMP_OFF, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vcpu),
		cmocka_unit_test(test_loop),
		cmocka_unit_test(test_io),
		cmocka_unit_test(test_builder_monitor_api),
		cmocka_unit_test(test_api),
		cmocka_unit_test(test_log_off),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_recompile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
