/* vireo-vmm command-line parsing. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "options.h"

static int parse(struct vmm_opts *o, char *err, const char *a0, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)"vireo-vmm";
	va_start(ap, a0);
	for (const char *a = a0; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return vmm_opts_parse(o, argc, argv, err, 256);
}

static void test_defaults(void **state)
{
	struct vmm_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "--kernel", "k", NULL), 0);
	assert_string_equal(o.kernel, "k");
	assert_int_equal(o.cpus, 1);
	assert_int_equal(o.memory, 512ULL << 20);
	assert_int_equal(o.console, VMM_CONSOLE_STDIO);
	assert_false(o.boot_timer);
	assert_false(o.reboot_restart);
	assert_false(o.unpack_guest);
}

static void test_all_options(void **state)
{
	struct vmm_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "--kernel", "bz", "--initrd", "ird", "--cmdline",
			       "console=ttyS0 quiet", "--cpus", "4", "--memory", "2G",
			       "--console", "file:/tmp/c.log", "--boot-timer", "--name", "web1",
			       "--on-reboot", "restart", "--mem-merge", "--mem-hugepages", NULL), 0);
	assert_string_equal(o.initrd, "ird");
	assert_string_equal(o.cmdline, "console=ttyS0 quiet");
	assert_int_equal(o.cpus, 4);
	assert_int_equal(o.memory, 2ULL << 30);
	assert_int_equal(o.console, VMM_CONSOLE_FILE);
	assert_string_equal(o.console_path, "/tmp/c.log");
	assert_true(o.boot_timer);
	assert_string_equal(o.name, "web1");
	assert_true(o.reboot_restart);
	assert_true(o.mem_merge);
	assert_true(o.mem_hugepages);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--unpack", "guest", NULL), 0);
	assert_true(o.unpack_guest);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--unpack", "guest", "--unpack", "host",
			       NULL), 0);
	assert_false(o.unpack_guest);
	/* A bare memory number is MiB. */
	assert_int_equal(parse(&o, err, "--kernel", "k", "--memory", "300", NULL), 0);
	assert_int_equal(o.memory, 300ULL << 20);
}

static void test_errors(void **state)
{
	struct vmm_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "--kernel", "k", "--cpus", "0", NULL), -EINVAL);
	assert_non_null(strstr(err, "--cpus '0'"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--cpus", "two", NULL), -EINVAL);
	assert_non_null(strstr(err, "'two'"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--memory", "0", NULL), -EINVAL);
	assert_non_null(strstr(err, "--memory '0'"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--memory", "1K", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--memory", "100E", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--console", "tty", NULL), -EINVAL);
	assert_non_null(strstr(err, "'tty'"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--console", "file:", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--on-reboot", "maybe", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--unpack", "firmware", NULL), -EINVAL);
	assert_non_null(strstr(err, "--unpack 'firmware'"));
	assert_int_equal(parse(&o, err, "--cpus", "1", NULL), -EINVAL);
	assert_non_null(strstr(err, "no kernel"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--bogus", NULL), -EINVAL);
	assert_non_null(strstr(err, "--bogus"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "extra", NULL), -EINVAL);
	assert_non_null(strstr(err, "'extra'"));
	assert_int_equal(parse(&o, err, "--kernel", NULL), -EINVAL);
	assert_non_null(strstr(err, "needs a value"));
}

static void test_sandbox(void **state)
{
	struct vmm_opts o;
	char err[256];

	/* Defaults: sandbox decided by who runs it, filters on, nobody. */
	assert_int_equal(parse(&o, err, "--kernel", "k", NULL), 0);
	assert_int_equal(o.sandbox, VMM_SANDBOX_AUTO);
	assert_int_equal(o.seccomp, VMM_SECCOMP_ON);
	assert_false(o.user_given);
	assert_null(o.user_name);
	assert_int_equal(o.uid, 65534);
	assert_int_equal(o.gid, 65534);
	assert_null(o.cgroup);
	assert_false(o.cpu_max_given);
	assert_false(o.memory_max_given);

	assert_int_equal(parse(&o, err, "--kernel", "k", "--sandbox", NULL), 0);
	assert_int_equal(o.sandbox, VMM_SANDBOX_ON);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--sandbox=off", NULL), 0);
	assert_int_equal(o.sandbox, VMM_SANDBOX_OFF);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--sandbox=off", "--sandbox=on", NULL), 0);
	assert_int_equal(o.sandbox, VMM_SANDBOX_ON);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--sandbox=auto", NULL), 0);
	assert_int_equal(o.sandbox, VMM_SANDBOX_AUTO);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--seccomp=log", NULL), 0);
	assert_int_equal(o.seccomp, VMM_SECCOMP_LOG);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--seccomp", "off", NULL), 0);
	assert_int_equal(o.seccomp, VMM_SECCOMP_OFF);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--seccomp", "on", NULL), 0);
	assert_int_equal(o.seccomp, VMM_SECCOMP_ON);

	/* --user: UID alone (group = same number), UID:GID, or a name. */
	assert_int_equal(parse(&o, err, "--kernel", "k", "--user", "1000", NULL), 0);
	assert_true(o.user_given);
	assert_null(o.user_name);
	assert_int_equal(o.uid, 1000);
	assert_int_equal(o.gid, 1000);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--user", "1000:100", NULL), 0);
	assert_int_equal(o.uid, 1000);
	assert_int_equal(o.gid, 100);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--user", "nobody", NULL), 0);
	assert_string_equal(o.user_name, "nobody");

	/* --cgroup with limits. */
	assert_int_equal(parse(&o, err, "--kernel", "k", "--cgroup", "/sys/fs/cgroup/vm1",
			       "--cpu-max", "50000", "--memory-max", "768M", NULL), 0);
	assert_string_equal(o.cgroup, "/sys/fs/cgroup/vm1");
	assert_true(o.cpu_max_given);
	assert_int_equal(o.cpu_quota_us, 50000);
	assert_int_equal(o.cpu_period_us, 100000);
	assert_true(o.memory_max_given);
	assert_int_equal(o.memory_max, 768ULL << 20);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--cgroup", "/c",
			       "--cpu-max", "20000:50000", "--memory-max", "max", NULL), 0);
	assert_int_equal(o.cpu_quota_us, 20000);
	assert_int_equal(o.cpu_period_us, 50000);
	assert_int_equal(o.memory_max, 0);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--cgroup", "/c",
			       "--cpu-max", "max", NULL), 0);
	assert_true(o.cpu_max_given);
	assert_int_equal(o.cpu_quota_us, 0);
}

static void test_sandbox_errors(void **state)
{
	struct vmm_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "--kernel", "k", "--sandbox=maybe", NULL), -EINVAL);
	assert_non_null(strstr(err, "--sandbox 'maybe'"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--seccomp=kill", NULL), -EINVAL);
	assert_non_null(strstr(err, "--seccomp 'kill'"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--seccomp", NULL), -EINVAL);
	assert_non_null(strstr(err, "needs a value"));
	/* uid 0 would be no drop at all. */
	assert_int_equal(parse(&o, err, "--kernel", "k", "--user", "0", NULL), -EINVAL);
	assert_non_null(strstr(err, "--user '0'"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--user", "1000:0", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--user", "1000:", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--user", "12x", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--user", "4294967295", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--user", "", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--user", "bob:staff", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--user", "1000", "--sandbox=off",
			       NULL), -EINVAL);
	assert_non_null(strstr(err, "--sandbox=off"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--cgroup", "rel/path", NULL), -EINVAL);
	assert_non_null(strstr(err, "--cgroup 'rel/path'"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--cpu-max", "50000", NULL), -EINVAL);
	assert_non_null(strstr(err, "--cpu-max needs --cgroup"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--memory-max", "1G", NULL), -EINVAL);
	assert_non_null(strstr(err, "--memory-max needs --cgroup"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--cgroup", "/c", "--cpu-max", "10",
			       NULL), -EINVAL);
	assert_non_null(strstr(err, "--cpu-max '10'"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--cgroup", "/c", "--cpu-max",
			       "50000:10", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--kernel", "k", "--cgroup", "/c", "--memory-max",
			       "100K", NULL), -EINVAL);
	assert_non_null(strstr(err, "--memory-max '100K'"));
	assert_int_equal(parse(&o, err, "--kernel", "k", "--cgroup", "/c", "--memory-max",
			       "lots", NULL), -EINVAL);
}

static void test_help(void **state)
{
	struct vmm_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "--help", NULL), 0);
	assert_true(o.help);
}

static void test_restore(void **state)
{
	struct vmm_opts o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, "--restore", "/s", NULL), 0);
	assert_string_equal(o.restore_dir, "/s");
	assert_false(o.restore_prefault);
	assert_null(o.kernel);
	assert_int_equal(parse(&o, err, "--restore", "/s", "--restore-prefault", "--name", "w",
			       "--api-socket", "/a", "--console", "none", NULL), 0);
	assert_true(o.restore_prefault);
	assert_string_equal(o.name, "w");
	assert_int_equal(parse(&o, err, "--restore-prefault", "--kernel", "k", NULL), -EINVAL);
	assert_non_null(strstr(err, "--restore-prefault needs --restore"));
	assert_int_equal(parse(&o, err, "--restore", "/s", "--kernel", "k", NULL), -EINVAL);
	assert_non_null(strstr(err, "not with --kernel"));
	assert_int_equal(parse(&o, err, "--restore", "/s", "--initrd", "i", NULL), -EINVAL);
	assert_non_null(strstr(err, "not with --initrd"));
	assert_int_equal(parse(&o, err, "--restore", "", NULL), -EINVAL);
	assert_non_null(strstr(err, "--restore ''"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_sandbox),
		cmocka_unit_test(test_sandbox_errors),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_restore),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
