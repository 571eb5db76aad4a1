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

static void test_help(void **state)
{
	struct vmm_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "--help", NULL), 0);
	assert_true(o.help);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_help),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
