/* VM definitions (daemon/vmdef.c): the minimal file, every field,
 * the errors (field and reason), the canonical JSON and vireo-vmm's
 * command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmdef.h"

static const char minimal[] =
	"{\"name\": \"web1\", \"cpus\": 1, \"memory\": \"256M\", \"kernel\": \"/path/vmlinuz\",\n"
	" \"initrd\": \"/path/initrd.gz\", \"cmdline\": \"console=ttyS0\",\n"
	" \"disks\": [{\"path\": \"/path/a.qcow2\", \"format\": \"qcow2\"}],\n"
	" \"nics\": [{\"type\": \"user\", \"hostfwd\": [\"tcp:127.0.0.1:2222-:22\"]}]}\n";

static int parse(const char *s, struct vmdef *d, char *err, size_t errlen)
{
	return vmdef_parse(s, strlen(s), d, err, errlen);
}

static void test_minimal(void **state)
{
	struct vmdef d;
	char err[256] = "";

	(void)state;
	assert_int_equal(parse(minimal, &d, err, sizeof(err)), 0);
	assert_string_equal(d.name, "web1");
	assert_int_equal(d.cpus, 1);
	assert_int_equal(d.memory_mib, 256);
	assert_string_equal(d.kernel, "/path/vmlinuz");
	assert_string_equal(d.initrd, "/path/initrd.gz");
	assert_string_equal(d.cmdline, "console=ttyS0");
	assert_int_equal(d.nr_disks, 1);
	assert_string_equal(d.disks[0].path, "/path/a.qcow2");
	assert_true(d.disks[0].qcow2);
	assert_false(d.disks[0].readonly);
	assert_int_equal(d.nr_nics, 1);
	assert_int_equal(d.nics[0].type, VMDEF_NIC_USER);
	assert_int_equal(d.nics[0].nr_hostfwd, 1);
	assert_string_equal(d.nics[0].hostfwd[0], "tcp:127.0.0.1:2222-:22");
	assert_string_equal(d.uuid, "");
	assert_int_equal(d.restart, VMDEF_RESTART_NEVER);
	assert_false(d.autostart);
}

static void test_defaults_and_all_fields(void **state)
{
	struct vmdef d;
	char err[256] = "";

	(void)state;
	assert_int_equal(parse("{\"name\":\"a\",\"kernel\":\"/k\"}", &d, err, sizeof(err)), 0);
	assert_int_equal(d.cpus, 1);
	assert_int_equal(d.memory_mib, 512);
	assert_false(d.has_cmdline);
	assert_int_equal(parse("{\"name\":\"b-2.x_y\",\"kernel\":\"/k\",\"memory\":1024,"
			       "\"uuid\":\"0123abcd-0000-4000-8000-0123456789ab\",\"cpus\":256,"
			       "\"disks\":[{\"path\":\"/d.raw\",\"readonly\":true},"
			       "{\"path\":\"/e\",\"format\":\"raw\"}],"
			       "\"nics\":[{\"type\":\"tap\",\"tap\":\"vtap0\"},{\"type\":\"user\"}],"
			       "\"rng\":true,\"balloon\":true,\"autostart\":true,\"restart\":\"on-failure\","
			       "\"cmdline\":\"\"}", &d, err, sizeof(err)), 0);
	assert_int_equal(d.memory_mib, 1024);
	assert_int_equal(d.cpus, 256);
	assert_string_equal(d.uuid, "0123abcd-0000-4000-8000-0123456789ab");
	assert_true(d.disks[0].readonly);
	assert_false(d.disks[0].qcow2);
	assert_int_equal(d.nics[0].type, VMDEF_NIC_TAP);
	assert_string_equal(d.nics[0].tap, "vtap0");
	assert_int_equal(d.nics[1].nr_hostfwd, 0);
	assert_true(d.rng && d.balloon && d.autostart && d.has_cmdline);
	assert_int_equal(d.restart, VMDEF_RESTART_ON_FAILURE);
	assert_int_equal(parse("{\"name\":\"a\",\"kernel\":\"/k\",\"memory\":\"1.5G\",\"restart\":\"always\"}",
			       &d, err, sizeof(err)), 0);
	assert_int_equal(d.memory_mib, 1536);
	assert_int_equal(d.restart, VMDEF_RESTART_ALWAYS);
}

/* Each bad definition and the start of its message. */
static const struct { const char *json, *err; } bad[] = {
	{ "{\"cpus\":1,\"kernel\":\"/k\"}", "name: missing" },
	{ "{\"name\":\"a\"}", "kernel: missing" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"cpus\":\"2\"}", "cpus: must be a whole number" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"cpus\":1.5}", "cpus: must be a whole number" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"cpus\":0}", "cpus: must be from 1 to 256" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"cpus\":-3}", "cpus: must be from 1 to 256" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"cpus\":99999999999999999999}", "cpus: must be from 1 to 256" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"memory\":\"lots\"}", "memory: 'lots' is not a size" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"memory\":\"1000K\"}", "memory: must be a whole number of MiB" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"memory\":\"8M\"}", "memory: must be from 16M" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"memory\":\"2T\"}", "memory: must be from 16M" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"memory\":\"99999999999999999999G\"}", "memory: too large" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"memory\":true}", "memory: must be a size" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"memory\":4}", "memory: must be from 16" },
	{ "{\"name\":\"a\",\"kernel\":\"vmlinuz\"}", "kernel: must be an absolute path" },
	{ "{\"name\":\"a\",\"kernel\":\"\"}", "kernel: must not be empty" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"initrd\":7}", "initrd: must be a string" },
	{ "{\"name\":\"bad name\",\"kernel\":\"/k\"}", "name: letters, digits" },
	{ "{\"name\":\"-x\",\"kernel\":\"/k\"}", "name: letters, digits" },
	{ "{\"name\":\"../x\",\"kernel\":\"/k\"}", "name: letters, digits" },
	{ "{\"name\":\"a234567890123456789012345678901234567890123456789012345678901234\",\"kernel\":\"/k\"}",
	  "name: longer than 63 bytes" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"cmdline\":\"a\\nb\"}", "cmdline: control character at offset 1" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"uuid\":\"nope\"}", "uuid: must be lower-case" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"restart\":\"sometimes\"}", "restart: must be \"never\"" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"autostart\":\"yes\"}", "autostart: must be true or false" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"disks\":{}}", "disks: must be an array" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"disks\":[7]}", "disks[0]: must be an object" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"disks\":[{\"path\":\"/a\"},{\"format\":\"raw\"}]}",
	  "disks[1].path: missing" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"disks\":[{\"path\":\"/a\",\"format\":\"vmdk\"}]}",
	  "disks[0].format: must be \"raw\" or \"qcow2\"" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"disks\":[{\"path\":\"/a,b\"}]}", "disks[0].path: must not contain ','" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"disks\":[{\"path\":\"/a\",\"size\":1}]}", "disks[0].size: unknown field" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"bridge\"}]}", "nics[0].type: must be \"user\", \"tap\" or \"network\"" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"network\"}]}", "nics[0].network: missing" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"network\",\"network\":\"a/b\"}]}",
	  "nics[0].network: a network name" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"network\",\"network\":\"n\",\"mac\":\"01:00:5e:00:00:01\"}]}",
	  "nics[0].mac: must be six hex pairs" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"network\",\"network\":\"n\",\"mac\":\"52:54:00:12:34\"}]}",
	  "nics[0].mac: must be six hex pairs" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"network\",\"network\":\"n\",\"ip\":\"10.0.0.256\"}]}",
	  "nics[0].ip: must be an IPv4 address" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"network\",\"network\":\"n\",\"tap\":\"t0\"}]}",
	  "nics[0].tap: unknown field for type network" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"network\",\"network\":\"a23456789012345678901234567890123\"}]}",
	  "nics[0].network: longer than 32 bytes" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{}]}", "nics[0].type: missing" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"tap\"}]}", "nics[0].tap: missing" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"tap\",\"tap\":\"a b\"}]}", "nics[0].tap: only letters" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"user\",\"tap\":\"t0\"}]}", "nics[0].tap: unknown field for type user" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"user\",\"hostfwd\":[\"tcp:1.2.3.4:99999-:22\"]}]}",
	  "nics[0].hostfwd[0]: must be tcp|udp" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"user\",\"hostfwd\":[\"tcp::22-:22,x\"]}]}",
	  "nics[0].hostfwd[0]: must be tcp|udp" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":[{\"type\":\"user\",\"hostfwd\":\"tcp::1-:2\"}]}",
	  "nics[0].hostfwd: must be an array" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\",\"cpu\":2}", "cpu: unknown field" },
	{ "[1]", "the definition must be a JSON object" },
	{ "{\"name\":", "invalid JSON: unexpected end" },
	{ "{\"name\":\"a\",\"kernel\":\"/k\"} x", "invalid JSON: text after the object" },
	{ "", "the definition is empty" },
	{ "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "invalid JSON at offset" },
};

static void test_errors(void **state)
{
	struct vmdef d;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		int r = parse(bad[i].json, &d, err, sizeof(err));
		if (r != -1 || strncmp(err, bad[i].err, strlen(bad[i].err)))
			fail_msg("%s: got %d '%s', expected '%s...'", bad[i].json, r, err, bad[i].err);
	}
}

static void test_limits(void **state)
{
	struct vmdef d;
	char err[256], *big;

	(void)state;
	/* A NUL inside the text. */
	assert_int_equal(vmdef_parse("{\"name\":\"a\"}\0x", 14, &d, err, sizeof(err)), -1);
	assert_string_equal(err, "the definition contains a NUL byte");
	/* Over the size cap, even if valid JSON. */
	big = malloc(VMDEF_MAX_JSON + 2);
	assert_non_null(big);
	memset(big, ' ', VMDEF_MAX_JSON + 1);
	big[0] = '{';
	big[VMDEF_MAX_JSON] = '}';
	assert_int_equal(vmdef_parse(big, VMDEF_MAX_JSON + 1, &d, err, sizeof(err)), -1);
	assert_string_equal(err, "the definition is larger than 65536 bytes");
	free(big);
	/* A field name with a newline: the message stays one line. */
	assert_int_equal(parse("{\"name\":\"a\",\"kernel\":\"/k\",\"cmd\nline\\u001b\":1}", &d, err, sizeof(err)), -1);
	assert_string_equal(err, "cmd?line?: unknown field");
	assert_int_equal(parse("{\"name\":\"a\",\"kernel\":\"/k\",\"memory\":\"1\\u001b[2J\"}", &d, err, sizeof(err)), -1);
	assert_string_equal(err, "memory: '1?[2J' is not a size (use e.g. 256M or 2G)");
	/* 17 disks: one too many. */
	char buf[2048];
	size_t off = (size_t)snprintf(buf, sizeof(buf), "{\"name\":\"a\",\"kernel\":\"/k\",\"disks\":[");
	for (int i = 0; i < VMDEF_MAX_DISKS + 1; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s{\"path\":\"/d%d\"}", i ? "," : "", i);
	snprintf(buf + off, sizeof(buf) - off, "]}");
	assert_int_equal(parse(buf, &d, err, sizeof(err)), -1);
	assert_string_equal(err, "disks: at most 16");
	/* A path of 1025 bytes. */
	char path[VMDEF_PATH_MAX + 2];
	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	char *j = NULL;
	assert_true(asprintf(&j, "{\"name\":\"a\",\"kernel\":\"%s\"}", path) > 0);
	assert_int_equal(parse(j, &d, err, sizeof(err)), -1);
	assert_string_equal(err, "kernel: longer than 1024 bytes");
	free(j);
}

static void test_roundtrip(void **state)
{
	struct vmdef a, b;
	char err[256];

	(void)state;
	assert_int_equal(parse(minimal, &a, err, sizeof(err)), 0);
	snprintf(a.uuid, sizeof(a.uuid), "0123abcd-0000-4000-8000-0123456789ab");
	char *j = vmdef_to_json(&a);
	assert_non_null(j);
	assert_int_equal(parse(j, &b, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	free(j);
}

static void test_argv(void **state)
{
	struct vmdef d;
	char err[256], line[2048] = "";

	(void)state;
	assert_int_equal(parse(minimal, &d, err, sizeof(err)), 0);
	d.rng = true;
	char **argv = vmdef_vmm_argv(&d, "/usr/bin/vireo-vmm", "/run/vireo/vms/web1");
	assert_non_null(argv);
	for (char **p = argv; *p; p++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s", p == argv ? "" : "|", *p);
	assert_string_equal(line,
		"/usr/bin/vireo-vmm|--name|web1|--kernel|/path/vmlinuz|--initrd|/path/initrd.gz|"
		"--cmdline|console=ttyS0|--cpus|1|--memory|256M|"
		"--console|file:/run/vireo/vms/web1/console.log|"
		"--api-socket|/run/vireo/vms/web1/api.sock|"
		"--disk|path=/path/a.qcow2,format=qcow2|"
		"--net|user,hostfwd=tcp:127.0.0.1:2222-:22|--rng");
	vmdef_argv_free(argv);
}

/* NICs on a virtual network: the MAC normalised, the taps as fds 3, 4. */
static void test_network_nics(void **state)
{
	struct vmdef d, b;
	char err[256], line[2048] = "";

	(void)state;
	assert_int_equal(parse("{\"name\":\"a\",\"kernel\":\"/k\",\"nics\":["
			       "{\"type\":\"network\",\"network\":\"default\",\"mac\":\"52-54-00-AB-cd-01\","
			       "\"ip\":\"192.168.122.5\"},{\"type\":\"user\"},"
			       "{\"type\":\"network\",\"network\":\"lab\"}]}", &d, err, sizeof(err)), 0);
	assert_int_equal(d.nics[0].type, VMDEF_NIC_NETWORK);
	assert_string_equal(d.nics[0].network, "default");
	assert_string_equal(d.nics[0].mac, "52:54:00:ab:cd:01");
	assert_string_equal(d.nics[0].ip, "192.168.122.5");
	assert_string_equal(d.nics[2].mac, "");
	char *j = vmdef_to_json(&d);
	assert_non_null(j);
	assert_int_equal(parse(j, &b, err, sizeof(err)), 0);
	assert_memory_equal(&d, &b, sizeof(d));
	free(j);
	char **argv = vmdef_vmm_argv(&d, "/v", "/r");
	assert_non_null(argv);
	for (char **p = argv; *p; p++)
		if (!strcmp(*p, "--net"))
			snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s;", p[1]);
	assert_string_equal(line, "fd=3,mac=52:54:00:ab:cd:01;user;fd=4;");
	vmdef_argv_free(argv);
	assert_true(vmdef_mac_ok("02:00:00:00:00:00"));
	assert_false(vmdef_mac_ok("03:00:00:00:00:00"));
	assert_false(vmdef_mac_ok("02:00:00:00:00:0G"));
	assert_false(vmdef_mac_ok("02:00:00:00:00"));
}

static void test_names(void **state)
{
	(void)state;
	assert_true(vmdef_name_ok("a"));
	assert_true(vmdef_name_ok("web-1.example_x"));
	assert_false(vmdef_name_ok(""));
	assert_false(vmdef_name_ok("."));
	assert_false(vmdef_name_ok(".."));
	assert_false(vmdef_name_ok("a/b"));
	assert_false(vmdef_name_ok("a b"));
	assert_true(vmdef_uuid_ok("0123abcd-0000-4000-8000-0123456789ab"));
	assert_false(vmdef_uuid_ok("0123ABCD-0000-4000-8000-0123456789ab"));
	assert_false(vmdef_uuid_ok("0123abcd00000-4000-8000-0123456789ab"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_defaults_and_all_fields),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_network_nics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
