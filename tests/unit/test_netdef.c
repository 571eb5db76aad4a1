/* Virtual network definitions (daemon/netdef.c): every field, the
 * defaults, the errors (field and reason), the canonical JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "netdef.h"

static int parse(const char *s, struct netdef *d, char *err, size_t errlen)
{
	return netdef_parse(s, strlen(s), d, err, errlen);
}

static void test_fields(void **state)
{
	struct netdef d, b;
	char err[256] = "";

	(void)state;
	assert_int_equal(parse("{\"name\":\"lab\",\"address\":\"10.0.0.1/8\"}", &d, err, sizeof(err)), 0);
	assert_int_equal(d.mode, NETDEF_NAT);
	assert_string_equal(d.bridge, "");
	assert_int_equal(d.addr, 0x0a000001);
	assert_int_equal(d.prefix, 8);
	assert_false(d.dhcp || d.autostart);
	assert_int_equal(parse("{\"name\":\"default\",\"mode\":\"isolated\",\"bridge\":\"br-x.1\","
			       "\"address\":\"192.168.122.1/24\",\"dhcp\":{\"start\":\"192.168.122.10\","
			       "\"end\":\"192.168.122.200\"},\"domain\":\"vm.test\",\"autostart\":true}",
			       &d, err, sizeof(err)), 0);
	assert_int_equal(d.mode, NETDEF_ISOLATED);
	assert_string_equal(d.bridge, "br-x.1");
	assert_true(d.dhcp);
	assert_int_equal(d.dhcp_start, 0xc0a87a0a);
	assert_int_equal(d.dhcp_end, 0xc0a87ac8);
	assert_string_equal(d.domain, "vm.test");
	assert_true(d.autostart);
	char *j = netdef_to_json(&d);
	assert_non_null(j);
	assert_string_equal(j, "{\"name\":\"default\",\"mode\":\"isolated\",\"bridge\":\"br-x.1\","
			    "\"address\":\"192.168.122.1/24\",\"dhcp\":{\"start\":\"192.168.122.10\","
			    "\"end\":\"192.168.122.200\"},\"domain\":\"vm.test\",\"autostart\":true}");
	assert_int_equal(parse(j, &b, err, sizeof(err)), 0);
	assert_memory_equal(&d, &b, sizeof(d));
	free(j);
}

static const struct { const char *json, *err; } bad[] = {
	{ "{\"address\":\"10.0.0.1/24\"}", "name: missing" },
	{ "{\"name\":\"a\"}", "address: missing" },
	{ "{\"name\":\"a b\",\"address\":\"10.0.0.1/24\"}", "name: 1 to 32" },
	{ "{\"name\":\"a23456789012345678901234567890123\",\"address\":\"10.0.0.1/24\"}", "name: 1 to 32" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"mode\":\"route\"}", "mode: must be \"nat\" or \"isolated\"" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"bridge\":\"a234567890123456\"}", "bridge: an interface name" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"bridge\":\"-x\"}", "bridge: an interface name" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1\"}", "address: must be the bridge's IPv4 address and prefix" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/7\"}", "address: the prefix must be from 8 to 30" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/31\"}", "address: the prefix must be from 8 to 30" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24x\"}", "address: the prefix must be from 8 to 30" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.256/24\"}", "address: '10.0.0.256' is not an IPv4 address" },
	{ "{\"name\":\"a\",\"address\":\"10.0.00.1/24\"}", "address: '10.0.00.1' is not an IPv4 address" },
	{ "{\"name\":\"a\",\"address\":\"127.0.0.1/8\"}", "address: not a unicast address" },
	{ "{\"name\":\"a\",\"address\":\"239.0.0.1/8\"}", "address: not a unicast address" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.255/24\"}", "address: is the subnet's network or broadcast" },
	{ "{\"name\":\"a\",\"address\":7}", "address: must be the bridge's" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"dhcp\":[]}", "dhcp: must be an object" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"dhcp\":{\"start\":\"10.0.0.2\"}}", "dhcp.end: missing" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"dhcp\":{\"start\":\"10.0.0.2\",\"end\":\"x\"}}",
	  "dhcp.end: 'x' is not an IPv4 address" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"dhcp\":{\"start\":\"10.0.0.2\",\"end\":\"10.0.0.255\"}}",
	  "dhcp.end: is the subnet's network or broadcast" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"dhcp\":{\"start\":\"10.0.1.2\",\"end\":\"10.0.0.9\"}}",
	  "dhcp.start: not in the subnet 10.0.0.0/24" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"dhcp\":{\"start\":\"10.0.0.9\",\"end\":\"10.0.0.2\"}}",
	  "dhcp.end: before dhcp.start" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.5/24\",\"dhcp\":{\"start\":\"10.0.0.2\",\"end\":\"10.0.0.9\"}}",
	  "dhcp: the range holds the bridge's own address" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"dhcp\":{\"start\":\"10.0.0.2\",\"end\":\"10.0.0.9\",\"lease\":1}}",
	  "dhcp.lease: unknown field" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"domain\":\"Vm.test\"}", "domain: a DNS name" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"domain\":\"vm..test\"}", "domain: a DNS name" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"domain\":\"vm-.test\"}", "domain: a DNS name" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"autostart\":1}", "autostart: must be true or false" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\",\"ipv6\":true}", "ipv6: unknown field" },
	{ "[]", "the definition must be a JSON object" },
	{ "{\"name\":", "invalid JSON: unexpected end" },
	{ "{\"name\":\"a\",\"address\":\"10.0.0.1/24\"} x", "invalid JSON: text after the object" },
	{ "", "the definition is empty" },
};

static void test_errors(void **state)
{
	struct netdef d;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse(bad[i].json, &d, err, sizeof(err)) != -1 ||
		    strncmp(err, bad[i].err, strlen(bad[i].err)))
			fail_msg("%s: got '%s', expected '%s...'", bad[i].json, err, bad[i].err);
	}
	/* a NUL inside, and more than the limit */
	assert_int_equal(netdef_parse("{\"name\":\"a\0\"}", 13, &d, err, sizeof(err)), -1);
	assert_string_equal(err, "the definition contains a NUL byte");
	char *big = calloc(1, NETDEF_MAX_JSON + 2);
	assert_non_null(big);
	memset(big, ' ', NETDEF_MAX_JSON + 1);
	assert_int_equal(netdef_parse(big, NETDEF_MAX_JSON + 1, &d, err, sizeof(err)), -1);
	assert_string_equal(err, "the definition is larger than 4096 bytes");
	free(big);
}

static void test_helpers(void **state)
{
	uint32_t a;
	char b[16];

	(void)state;
	assert_int_equal(netdef_mask(24), 0xffffff00);
	assert_int_equal(netdef_mask(30), 0xfffffffc);
	assert_int_equal(netdef_ip_parse("1.2.3.4", &a), 0);
	assert_int_equal(a, 0x01020304);
	assert_string_equal(netdef_ip_str(a, b), "1.2.3.4");
	assert_int_equal(netdef_ip_parse("1.2.3", &a), -1);
	assert_int_equal(netdef_ip_parse("1.2.3.4.5", &a), -1);
	assert_int_equal(netdef_ip_parse("01.2.3.4", &a), -1);
	assert_int_equal(netdef_ip_parse("1.2.3.4 ", &a), -1);
	assert_true(netdef_ifname_ok("vireo0"));
	assert_false(netdef_ifname_ok("vireo0123456789x"));
	assert_false(netdef_ifname_ok(""));
	assert_true(netdef_name_ok("default"));
	assert_false(netdef_name_ok(".x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
