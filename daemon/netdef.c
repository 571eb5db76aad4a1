/*
 * Virtual network definitions (netdef.h).  Everything comes from a user's
 * file or an API client: types, ranges, lengths and characters are
 * checked, and an unknown field is an error.
 */
#include "netdef.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <vireo/util.h>

VIREO_PRINTF(3, 4)
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A user's text for a message: at most 40 printable ASCII bytes. */
static const char *shown(const char *s, char buf[48])
{
	size_t i;

	for (i = 0; s[i] && i < 40; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	if (s[i])
		snprintf(buf + i, 8, "...");
	return buf;
}

static bool word_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

bool netdef_name_ok(const char *name)
{
	return word_ok(name, NETDEF_NAME_MAX);
}

bool netdef_ifname_ok(const char *name)
{
	return word_ok(name, NETDEF_BRIDGE_MAX);
}

const char *netdef_mode_name(enum netdef_mode m)
{
	return m == NETDEF_ISOLATED ? "isolated" : "nat";
}

uint32_t netdef_mask(unsigned prefix)
{
	return prefix == 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);
}

const char *netdef_ip_str(uint32_t a, char buf[16])
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
	return buf;
}

int netdef_ip_parse(const char *s, uint32_t *out)
{
	uint32_t a = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		int digits = 0;
		if (part && *s++ != '.')
			return -1;
		if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
			return -1;      /* no leading zeros (octal in some parsers) */
		while (*s >= '0' && *s <= '9' && digits < 3) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || v > 255)
			return -1;
		a = a << 8 | v;
	}
	if (*s)
		return -1;
	*out = a;
	return 0;
}

static int get_str(json_object *v, const char *field, size_t max, char *out, char *err, size_t errlen)
{
	if (!json_object_is_type(v, json_type_string))
		return fail(err, errlen, "%s: must be a string", field);
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (n == 0)
		return fail(err, errlen, "%s: must not be empty", field);
	if (n > max)
		return fail(err, errlen, "%s: longer than %zu bytes", field, max);
	if (strlen(s) != n)
		return fail(err, errlen, "%s: contains a NUL byte", field);
	memcpy(out, s, n + 1);
	return 0;
}

static bool domain_ok(const char *d)
{
	size_t label = 0;

	for (const char *p = d; ; p++) {
		if (*p == '.' || !*p) {
			if (label == 0 || label > 63 || p[-1] == '-')
				return false;
			if (!*p)
				return true;
			label = 0;
			continue;
		}
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			  (*p == '-' && label > 0);
		if (!ok)
			return false;
		label++;
	}
}

static int get_ip(json_object *v, const char *field, uint32_t *out, char *err, size_t errlen)
{
	char s[16], sb[48];

	if (!json_object_is_type(v, json_type_string))
		return fail(err, errlen, "%s: must be a string (an IPv4 address)", field);
	const char *t = json_object_get_string(v);
	if (json_object_get_string_len(v) > 15 || get_str(v, field, 15, s, err, errlen) ||
	    netdef_ip_parse(s, out))
		return fail(err, errlen, "%s: '%s' is not an IPv4 address", field, shown(t, sb));
	return 0;
}

static int parse_address(json_object *v, struct netdef *def, char *err, size_t errlen)
{
	char s[24], sb[48], *slash;

	if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > 18 ||
	    get_str(v, "address", 18, s, err, errlen) || !(slash = strchr(s, '/')))
		return fail(err, errlen, "address: must be the bridge's IPv4 address and prefix, "
			    "such as \"192.168.122.1/24\"");
	*slash = '\0';
	const char *p = slash + 1;
	unsigned prefix = 0;
	int digits = 0;
	while (*p >= '0' && *p <= '9' && digits < 2) {
		prefix = prefix * 10 + (unsigned)(*p++ - '0');
		digits++;
	}
	if (netdef_ip_parse(s, &def->addr))
		return fail(err, errlen, "address: '%s' is not an IPv4 address", shown(s, sb));
	if (!digits || *p || prefix < 8 || prefix > 30)
		return fail(err, errlen, "address: the prefix must be from 8 to 30");
	def->prefix = prefix;
	uint32_t m = netdef_mask(prefix), a = def->addr;
	unsigned first = a >> 24;
	if (first == 0 || first == 127 || first >= 224)
		return fail(err, errlen, "address: not a unicast address for a bridge "
			    "(0/8, 127/8, multicast and reserved are not)");
	if ((a & ~m) == 0 || (a & ~m) == ~m)
		return fail(err, errlen, "address: is the subnet's network or broadcast address");
	return 0;
}

static int parse_dhcp(json_object *o, struct netdef *def, bool *have_start, bool *have_end,
		      char *err, size_t errlen)
{
	if (!json_object_is_type(o, json_type_object))
		return fail(err, errlen, "dhcp: must be an object {\"start\": IP, \"end\": IP}");
	json_object_object_foreach(o, key, v) {
		if (!strcmp(key, "start")) {
			if (get_ip(v, "dhcp.start", &def->dhcp_start, err, errlen))
				return -1;
			*have_start = true;
		} else if (!strcmp(key, "end")) {
			if (get_ip(v, "dhcp.end", &def->dhcp_end, err, errlen))
				return -1;
			*have_end = true;
		} else {
			char kb[48];
			return fail(err, errlen, "dhcp.%s: unknown field (start, end)", shown(key, kb));
		}
	}
	if (!*have_start || !*have_end)
		return fail(err, errlen, "dhcp.%s: missing", *have_start ? "end" : "start");
	def->dhcp = true;
	return 0;
}

static int check_dhcp(const struct netdef *def, char *err, size_t errlen)
{
	uint32_t m = netdef_mask(def->prefix), net = def->addr & m;
	char nb[16];
	const char *fields[2] = { "dhcp.start", "dhcp.end" };
	uint32_t ends[2] = { def->dhcp_start, def->dhcp_end };

	for (int i = 0; i < 2; i++) {
		if ((ends[i] & m) != net)
			return fail(err, errlen, "%s: not in the subnet %s/%u", fields[i],
				    netdef_ip_str(net, nb), def->prefix);
		if ((ends[i] & ~m) == 0 || (ends[i] & ~m) == ~m)
			return fail(err, errlen, "%s: is the subnet's network or broadcast address",
				    fields[i]);
	}
	if (def->dhcp_start > def->dhcp_end)
		return fail(err, errlen, "dhcp.end: before dhcp.start");
	if (def->addr >= def->dhcp_start && def->addr <= def->dhcp_end)
		return fail(err, errlen, "dhcp: the range holds the bridge's own address");
	return 0;
}

static int parse_obj(json_object *root, struct netdef *def, char *err, size_t errlen)
{
	bool have_name = false, have_addr = false, have_start = false, have_end = false;
	char kb[48];

	if (!json_object_is_type(root, json_type_object))
		return fail(err, errlen, "the definition must be a JSON object");
	json_object_object_foreach(root, key, v) {
		if (!strcmp(key, "name")) {
			if (!json_object_is_type(v, json_type_string) ||
			    json_object_get_string_len(v) > NETDEF_NAME_MAX ||
			    get_str(v, "name", NETDEF_NAME_MAX, def->name, err, errlen) ||
			    !netdef_name_ok(def->name))
				return fail(err, errlen, "name: 1 to %d letters, digits, '.', '_' and '-', "
					    "starting with a letter or digit", NETDEF_NAME_MAX);
			have_name = true;
		} else if (!strcmp(key, "mode")) {
			const char *m = json_object_is_type(v, json_type_string) ?
				json_object_get_string(v) : "";
			if (!strcmp(m, "nat"))
				def->mode = NETDEF_NAT;
			else if (!strcmp(m, "isolated"))
				def->mode = NETDEF_ISOLATED;
			else
				return fail(err, errlen, "mode: must be \"nat\" or \"isolated\"");
		} else if (!strcmp(key, "bridge")) {
			if (!json_object_is_type(v, json_type_string) ||
			    json_object_get_string_len(v) > NETDEF_BRIDGE_MAX ||
			    get_str(v, "bridge", NETDEF_BRIDGE_MAX, def->bridge, err, errlen) ||
			    !netdef_ifname_ok(def->bridge))
				return fail(err, errlen, "bridge: an interface name: 1 to %d letters, digits, "
					    "'.', '_' and '-', starting with a letter or digit",
					    NETDEF_BRIDGE_MAX);
		} else if (!strcmp(key, "address")) {
			if (parse_address(v, def, err, errlen))
				return -1;
			have_addr = true;
		} else if (!strcmp(key, "dhcp")) {
			if (parse_dhcp(v, def, &have_start, &have_end, err, errlen))
				return -1;
		} else if (!strcmp(key, "domain")) {
			if (!json_object_is_type(v, json_type_string) ||
			    json_object_get_string_len(v) > NETDEF_DOMAIN_MAX ||
			    get_str(v, "domain", NETDEF_DOMAIN_MAX, def->domain, err, errlen) ||
			    !domain_ok(def->domain))
				return fail(err, errlen, "domain: a DNS name of lower-case letters, digits "
					    "and '-' in dot-separated labels, at most %d bytes",
					    NETDEF_DOMAIN_MAX);
		} else if (!strcmp(key, "autostart")) {
			if (!json_object_is_type(v, json_type_boolean))
				return fail(err, errlen, "autostart: must be true or false");
			def->autostart = json_object_get_boolean(v);
		} else {
			return fail(err, errlen, "%s: unknown field (name, mode, bridge, address, dhcp, "
				    "domain, autostart)", shown(key, kb));
		}
	}
	if (!have_name)
		return fail(err, errlen, "name: missing");
	if (!have_addr)
		return fail(err, errlen, "address: missing (the bridge's IPv4 address/prefix)");
	if (def->dhcp && check_dhcp(def, err, errlen))
		return -1;
	return 0;
}

int netdef_parse(const char *text, size_t len, struct netdef *def, char *err, size_t errlen)
{
	memset(def, 0, sizeof(*def));
	if (len > NETDEF_MAX_JSON)
		return fail(err, errlen, "the definition is larger than %d bytes", NETDEF_MAX_JSON);
	if (len == 0)
		return fail(err, errlen, "the definition is empty");
	if (memchr(text, '\0', len))
		return fail(err, errlen, "the definition contains a NUL byte");
	struct json_tokener *tok = json_tokener_new_ex(8);
	if (!tok)
		return fail(err, errlen, "out of memory");
	json_object *root = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	if (!root || jerr != json_tokener_success) {
		if (jerr == json_tokener_continue)
			fail(err, errlen, "invalid JSON: unexpected end of input");
		else
			fail(err, errlen, "invalid JSON at offset %zu: %s", json_tokener_get_parse_end(tok),
			     json_tokener_error_desc(jerr));
		json_object_put(root);
		json_tokener_free(tok);
		return -1;
	}
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (; end < len; end++) {
		if (!strchr(" \n\t\r", text[end])) {
			json_object_put(root);
			return fail(err, errlen, "invalid JSON: text after the object at offset %zu", end);
		}
	}
	int ret = parse_obj(root, def, err, errlen);
	json_object_put(root);
	return ret;
}

char *netdef_to_json(const struct netdef *def)
{
	json_object *o = json_object_new_object();
	char a[16], b[16], addr[24];

	if (!o)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(def->name));
	json_object_object_add(o, "mode", json_object_new_string(netdef_mode_name(def->mode)));
	if (def->bridge[0])
		json_object_object_add(o, "bridge", json_object_new_string(def->bridge));
	snprintf(addr, sizeof(addr), "%s/%u", netdef_ip_str(def->addr, a), def->prefix);
	json_object_object_add(o, "address", json_object_new_string(addr));
	if (def->dhcp) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "start", json_object_new_string(netdef_ip_str(def->dhcp_start, a)));
		json_object_object_add(d, "end", json_object_new_string(netdef_ip_str(def->dhcp_end, b)));
		json_object_object_add(o, "dhcp", d);
	}
	if (def->domain[0])
		json_object_object_add(o, "domain", json_object_new_string(def->domain));
	json_object_object_add(o, "autostart", json_object_new_boolean(def->autostart));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = s ? strdup(s) : NULL;
	json_object_put(o);
	return out;
}
