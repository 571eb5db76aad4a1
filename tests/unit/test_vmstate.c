/* The pure parts of vireod's VM-state operations (daemon/vmstate-parse.c):
 * vireo-vmm's command line for the console and a restore, request bodies,
 * a save's tag file, paths and snapshot names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmdef.h"
#include "vmstate.h"

static const char def_json[] =
	"{\"name\": \"web1\", \"cpus\": 2, \"memory\": \"256M\", \"kernel\": \"/k\",\n"
	" \"initrd\": \"/i\", \"cmdline\": \"console=ttyS0\", \"rng\": true,\n"
	" \"disks\": [{\"path\": \"/a.qcow2\", \"format\": \"qcow2\"}],\n"
	" \"nics\": [{\"type\": \"user\"}]}\n";

/* The argv joined with '|'. */
static char *joined(char **argv)
{
	static char buf[4096];

	buf[0] = '\0';
	for (size_t i = 0; argv[i]; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? "|" : "", argv[i]);
	return buf;
}

static char **def_argv(void)
{
	struct vmdef d;
	char err[256];

	assert_int_equal(vmdef_parse(def_json, strlen(def_json), &d, err, sizeof(err)), 0);
	char **argv = vmdef_vmm_argv(&d, "/usr/bin/vireo-vmm", "/run/vireo/vms/web1");
	assert_non_null(argv);
	return argv;
}

static void test_argv_console(void **state)
{
	(void)state;
	char **argv = def_argv();
	assert_non_null(strstr(joined(argv), "--console|file:/run/vireo/vms/web1/console.log"));
	assert_int_equal(vm_argv_console_restore(argv, NULL), 0);
	const char *j = joined(argv);
	assert_non_null(strstr(j, "|--console|stdio|"));
	/* the rest stays */
	assert_non_null(strstr(j, "|--kernel|/k|"));
	assert_non_null(strstr(j, "|--disk|path=/a.qcow2,format=qcow2"));
	assert_non_null(strstr(j, "|--rng"));
	vmdef_argv_free(argv);
}

static void test_argv_restore(void **state)
{
	(void)state;
	char **argv = def_argv();
	assert_int_equal(vm_argv_console_restore(argv, "/var/lib/saves/web1"), 0);
	assert_string_equal(joined(argv),
			    "/usr/bin/vireo-vmm|--name|web1|--console|stdio|--api-socket|"
			    "/run/vireo/vms/web1/api.sock|--restore|/var/lib/saves/web1");
	vmdef_argv_free(argv);
}

static void test_body(void **state)
{
	static const char *const keys[] = { "name", "mode", NULL };
	char vals[2][VMSTATE_FIELD_MAX + 1], err[256];
	(void)state;

#define BODY(s) vmstate_body_fields(s, strlen(s), keys, vals, err, sizeof(err))
	assert_int_equal(BODY("{\"name\": \"web2\", \"mode\": \"full\"}"), 0);
	assert_string_equal(vals[0], "web2");
	assert_string_equal(vals[1], "full");
	assert_int_equal(BODY("{\"name\": \"web2\"}"), 0);
	assert_string_equal(vals[1], "");
	assert_int_equal(BODY("{\"name\": 2}"), -1);
	assert_string_equal(err, "name: must be a string");
	assert_int_equal(BODY("{\"nme\": \"x\"}"), -1);
	assert_string_equal(err, "nme: unknown field");
	assert_int_equal(BODY("{\"name\": \"\"}"), -1);
	assert_int_equal(BODY("{\"name\": \"a\\u0000b\"}"), -1);
	assert_int_equal(BODY("[]"), -1);
	assert_string_equal(err, "the body must be a JSON object");
	/* text after the object: refused, trailing whitespace is not */
	assert_int_equal(BODY("{\"name\": \"web2\"}x"), -1);
	assert_string_equal(err, "the body must be a JSON object");
	assert_int_equal(BODY("{\"name\": \"web2\"}{}"), -1);
	assert_int_equal(BODY("{\"name\": \"web2\"} \r\n"), 0);
	assert_int_equal(BODY("{\"name\": {\"a\": {\"b\": {\"c\": {}}}}}"), -1);
	assert_int_equal(vmstate_body_fields("{}\0x", 4, keys, vals, err, sizeof(err)), -1);
	assert_string_equal(err, "the body contains a NUL byte");
#undef BODY
}

static void test_tag(void **state)
{
	char name[VMDEF_NAME_MAX + 1], uuid[37];
	(void)state;

#define TAG(s) vmstate_parse_tag(s, strlen(s), name, uuid)
	assert_int_equal(TAG("{\"vm\":\"web1\",\"uuid\":\"0123abcd-0000-4000-8000-0123456789ab\"}\n"), 0);
	assert_string_equal(name, "web1");
	assert_string_equal(uuid, "0123abcd-0000-4000-8000-0123456789ab");
	assert_int_equal(TAG("{\"vm\":\"../etc\",\"uuid\":\"0123abcd-0000-4000-8000-0123456789ab\"}"), -1);
	assert_int_equal(TAG("{\"vm\":\"web1\",\"uuid\":\"nope\"}"), -1);
	assert_int_equal(TAG("{\"vm\":\"web1\"}"), -1);
	assert_int_equal(TAG("not json"), -1);
	assert_int_equal(TAG(""), -1);
#undef TAG
}

static void test_paths_and_names(void **state)
{
	(void)state;
	assert_true(vmstate_clean_abs_path("/var/lib/saves/web1"));
	assert_true(vmstate_clean_abs_path("/var/lib/..saves/.web1"));
	assert_false(vmstate_clean_abs_path("saves/web1"));
	assert_false(vmstate_clean_abs_path("/var/../etc"));
	assert_false(vmstate_clean_abs_path("/var/lib/."));
	assert_false(vmstate_clean_abs_path("/var/lib/.."));
	assert_false(vmstate_clean_abs_path("/var/\nx"));
	assert_true(vmstate_snap_name_ok("before-upgrade.1"));
	assert_true(vmstate_snap_name_ok("a"));
	assert_false(vmstate_snap_name_ok("1st"));
	assert_false(vmstate_snap_name_ok(""));
	assert_false(vmstate_snap_name_ok("a/b"));
	char long_name[66];
	memset(long_name, 'a', 65);
	long_name[65] = '\0';
	assert_false(vmstate_snap_name_ok(long_name));
	long_name[64] = '\0';
	assert_true(vmstate_snap_name_ok(long_name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_argv_console),
		cmocka_unit_test(test_argv_restore),
		cmocka_unit_test(test_body),
		cmocka_unit_test(test_tag),
		cmocka_unit_test(test_paths_and_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
