/*
 * VM definitions (see vmdef.h).  Every value comes from a user's file or an
 * API client: types, ranges, lengths and characters are checked here, and
 * an unknown field is an error (a typo must not be dropped silently).
 */
#include "vmdef.h"

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

/* A user's text for an error message: at most 40 bytes, printable ASCII
 * only (anything else as '?'), so that a message stays one line. */
static const char *shown(const char *s, char buf[48])
{
	size_t i;

	for (i = 0; s[i] && i < 40; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	if (s[i] && i == 40)
		snprintf(buf + i, 8, "...");
	return buf;
}

bool vmdef_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > VMDEF_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

bool vmdef_uuid_ok(const char *uuid)
{
	if (strlen(uuid) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		char c = uuid[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return true;
}

const char *vmdef_restart_name(enum vmdef_restart r)
{
	switch (r) {
	case VMDEF_RESTART_ON_FAILURE: return "on-failure";
	case VMDEF_RESTART_ALWAYS: return "always";
	default: return "never";
	}
}

/* A string field: type, length, and no control characters. */
static int get_str(json_object *v, const char *field, size_t max, char *out,
		   char *err, size_t errlen)
{
	if (!json_object_is_type(v, json_type_string))
		return fail(err, errlen, "%s: must be a string", field);
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (n == 0)
		return fail(err, errlen, "%s: must not be empty", field);
	if (n > max)
		return fail(err, errlen, "%s: longer than %zu bytes", field, max);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return fail(err, errlen, "%s: control character at offset %zu", field, i);
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int get_path(json_object *v, const char *field, char *out, bool no_comma,
		    char *err, size_t errlen)
{
	if (get_str(v, field, VMDEF_PATH_MAX, out, err, errlen))
		return -1;
	if (out[0] != '/')
		return fail(err, errlen, "%s: must be an absolute path", field);
	if (no_comma && strchr(out, ','))
		return fail(err, errlen, "%s: must not contain ','", field);
	return 0;
}

static int get_bool(json_object *v, const char *field, bool *out, char *err, size_t errlen)
{
	if (!json_object_is_type(v, json_type_boolean))
		return fail(err, errlen, "%s: must be true or false", field);
	*out = json_object_get_boolean(v);
	return 0;
}

static int get_uint(json_object *v, const char *field, int64_t min, int64_t max,
		    int64_t *out, char *err, size_t errlen)
{
	if (!json_object_is_type(v, json_type_int))
		return fail(err, errlen, "%s: must be a whole number", field);
	errno = 0;
	int64_t x = json_object_get_int64(v);
	/* json-c saturates numbers past int64 (and sets errno). */
	if (errno || x < min || x > max)
		return fail(err, errlen, "%s: must be from %lld to %lld", field,
			    (long long)min, (long long)max);
	*out = x;
	return 0;
}

/* Memory: "256M", "1G", "1.5G" or a whole number of MiB; whole MiB only. */
static int get_memory(json_object *v, uint64_t *mib, char *err, size_t errlen)
{
	uint64_t bytes;

	if (json_object_is_type(v, json_type_int)) {
		int64_t x;
		if (get_uint(v, "memory", (int64_t)VMDEF_MIN_MEM_MIB, (int64_t)VMDEF_MAX_MEM_MIB,
			     &x, err, errlen))
			return -1;
		*mib = (uint64_t)x;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return fail(err, errlen, "memory: must be a size such as \"256M\" or a number of MiB");
	const char *s = json_object_get_string(v);
	if (json_object_get_string_len(v) > 32 || strlen(s) != (size_t)json_object_get_string_len(v))
		return fail(err, errlen, "memory: not a size");
	int r = vsize_parse(s, 1ULL << 20, &bytes);
	if (r == -ERANGE)
		return fail(err, errlen, "memory: too large");
	if (r) {
		char sb[48];
		return fail(err, errlen, "memory: '%s' is not a size (use e.g. 256M or 2G)", shown(s, sb));
	}
	if (bytes % (1ULL << 20))
		return fail(err, errlen, "memory: must be a whole number of MiB");
	if (bytes >> 20 < VMDEF_MIN_MEM_MIB || bytes >> 20 > VMDEF_MAX_MEM_MIB)
		return fail(err, errlen, "memory: must be from %lluM to %lluM",
			    (unsigned long long)VMDEF_MIN_MEM_MIB, (unsigned long long)VMDEF_MAX_MEM_MIB);
	*mib = bytes >> 20;
	return 0;
}

static bool parse_port(const char **p, char stop)
{
	unsigned long v = 0;
	int digits = 0;

	while (**p >= '0' && **p <= '9' && digits < 6) {
		v = v * 10 + (unsigned long)(**p - '0');
		(*p)++;
		digits++;
	}
	return digits > 0 && v >= 1 && v <= 65535 && **p == stop;
}

static bool parse_ipv4_opt(const char **p)
{
	const char *s = *p;
	int parts = 0;

	if (*s == ':')
		return true;    /* empty: any */
	for (;;) {
		unsigned v = 0;
		int digits = 0;
		while (*s >= '0' && *s <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(*s - '0');
			s++;
			digits++;
		}
		if (!digits || v > 255)
			return false;
		parts++;
		if (parts == 4)
			break;
		if (*s != '.')
			return false;
		s++;
	}
	*p = s;
	return *s == ':';
}

/* tcp|udp:[HADDR]:HPORT-[GADDR]:GPORT, as vireo-vmm's --net user,hostfwd= */
static bool hostfwd_ok(const char *s)
{
	if (strncmp(s, "tcp:", 4) && strncmp(s, "udp:", 4))
		return false;
	s += 4;
	if (!parse_ipv4_opt(&s))
		return false;
	s++;
	if (!parse_port(&s, '-'))
		return false;
	s++;
	if (!parse_ipv4_opt(&s))
		return false;
	s++;
	return parse_port(&s, '\0');
}

static bool tap_ok(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

static int parse_disk(json_object *o, unsigned i, struct vmdef_disk *d, char *err, size_t errlen)
{
	char field[64];
	bool have_path = false;

	if (!json_object_is_type(o, json_type_object))
		return fail(err, errlen, "disks[%u]: must be an object", i);
	json_object_object_foreach(o, key, v) {
		if (!strcmp(key, "path")) {
			snprintf(field, sizeof(field), "disks[%u].path", i);
			if (get_path(v, field, d->path, true, err, errlen))
				return -1;
			have_path = true;
		} else if (!strcmp(key, "format")) {
			const char *f = json_object_is_type(v, json_type_string) ?
				json_object_get_string(v) : NULL;
			if (f && !strcmp(f, "qcow2"))
				d->qcow2 = true;
			else if (f && !strcmp(f, "raw"))
				d->qcow2 = false;
			else
				return fail(err, errlen, "disks[%u].format: must be \"raw\" or \"qcow2\"", i);
		} else if (!strcmp(key, "readonly")) {
			snprintf(field, sizeof(field), "disks[%u].readonly", i);
			if (get_bool(v, field, &d->readonly, err, errlen))
				return -1;
		} else {
			char kb[48];
			return fail(err, errlen, "disks[%u].%s: unknown field (path, format, readonly)",
				    i, shown(key, kb));
		}
	}
	if (!have_path)
		return fail(err, errlen, "disks[%u].path: missing", i);
	return 0;
}

bool vmdef_mac_ok(const char *mac)
{
	if (strlen(mac) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		char c = mac[i];
		if (i % 3 == 2) {
			if (c != ':')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	/* unicast: bit 0 of the first octet clear */
	unsigned first = (unsigned)strtoul(mac, NULL, 16);
	return !(first & 1);
}

/* A dotted quad, no leading zeros, not 0.x.x.x, 127.x or multicast. */
static bool ipv4_ok(const char *s)
{
	unsigned first = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		int digits = 0;
		if (part && *s++ != '.')
			return false;
		if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
			return false;
		while (*s >= '0' && *s <= '9' && digits < 3) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || v > 255)
			return false;
		if (part == 0)
			first = v;
	}
	return !*s && first != 0 && first != 127 && first < 224;
}

static int parse_net_field(const char *key, json_object *v, unsigned i, struct vmdef_nic *n,
			   bool *have_net, char *err, size_t errlen)
{
	char field[64];

	snprintf(field, sizeof(field), "nics[%u].%s", i, key);
	if (!strcmp(key, "network")) {
		if (get_str(v, field, VMDEF_NETWORK_MAX, n->network, err, errlen))
			return -1;
		if (!vmdef_name_ok(n->network))
			return fail(err, errlen, "%s: a network name: letters, digits, '.', '_' and '-', "
				    "starting with a letter or digit", field);
		*have_net = true;
	} else if (!strcmp(key, "mac")) {
		char m[32];
		if (get_str(v, field, 17, m, err, errlen))
			return -1;
		for (char *p = m; *p; p++) {
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
			else if (*p == '-')
				*p = ':';
		}
		if (!vmdef_mac_ok(m))
			return fail(err, errlen, "%s: must be six hex pairs such as 52:54:00:12:34:56, "
				    "unicast", field);
		memcpy(n->mac, m, 18);
	} else if (!strcmp(key, "ip")) {
		if (get_str(v, field, 15, n->ip, err, errlen))
			return -1;
		if (!ipv4_ok(n->ip))
			return fail(err, errlen, "%s: must be an IPv4 address such as 192.168.122.10", field);
	} else {
		char kb[48];
		return fail(err, errlen, "nics[%u].%s: unknown field for type network (network, mac, ip)",
			    i, shown(key, kb));
	}
	return 0;
}

static int parse_nic(json_object *o, unsigned i, struct vmdef_nic *n, char *err, size_t errlen)
{
	char field[64];
	json_object *type, *fwd = NULL;
	bool have_tap = false, have_net = false;

	if (!json_object_is_type(o, json_type_object))
		return fail(err, errlen, "nics[%u]: must be an object", i);
	if (!json_object_object_get_ex(o, "type", &type))
		return fail(err, errlen, "nics[%u].type: missing (\"user\", \"tap\" or \"network\")", i);
	const char *t = json_object_is_type(type, json_type_string) ? json_object_get_string(type) : "";
	if (!strcmp(t, "user"))
		n->type = VMDEF_NIC_USER;
	else if (!strcmp(t, "tap"))
		n->type = VMDEF_NIC_TAP;
	else if (!strcmp(t, "network"))
		n->type = VMDEF_NIC_NETWORK;
	else
		return fail(err, errlen, "nics[%u].type: must be \"user\", \"tap\" or \"network\"", i);
	json_object_object_foreach(o, key, v) {
		if (!strcmp(key, "type")) {
			continue;
		} else if (n->type == VMDEF_NIC_NETWORK) {
			if (parse_net_field(key, v, i, n, &have_net, err, errlen))
				return -1;
		} else if (!strcmp(key, "hostfwd") && n->type == VMDEF_NIC_USER) {
			fwd = v;
		} else if (!strcmp(key, "tap") && n->type == VMDEF_NIC_TAP) {
			snprintf(field, sizeof(field), "nics[%u].tap", i);
			if (get_str(v, field, VMDEF_TAP_MAX, n->tap, err, errlen))
				return -1;
			if (!tap_ok(n->tap))
				return fail(err, errlen, "nics[%u].tap: only letters, digits, '-', '_' and '.'", i);
			have_tap = true;
		} else {
			char kb[48];
			return fail(err, errlen, "nics[%u].%s: unknown field for type %s (%s)", i,
				    shown(key, kb), t, n->type == VMDEF_NIC_USER ? "hostfwd" : "tap");
		}
	}
	if (n->type == VMDEF_NIC_TAP && !have_tap)
		return fail(err, errlen, "nics[%u].tap: missing (the tap device's name)", i);
	if (n->type == VMDEF_NIC_NETWORK && !have_net)
		return fail(err, errlen, "nics[%u].network: missing (the virtual network's name)", i);
	if (!fwd)
		return 0;
	if (!json_object_is_type(fwd, json_type_array))
		return fail(err, errlen, "nics[%u].hostfwd: must be an array of strings", i);
	size_t nf = json_object_array_length(fwd);
	if (nf > VMDEF_MAX_HOSTFWD)
		return fail(err, errlen, "nics[%u].hostfwd: at most %d rules", i, VMDEF_MAX_HOSTFWD);
	for (size_t k = 0; k < nf; k++) {
		snprintf(field, sizeof(field), "nics[%u].hostfwd[%zu]", i, k);
		if (get_str(json_object_array_get_idx(fwd, k), field, VMDEF_HOSTFWD_MAX,
			    n->hostfwd[k], err, errlen))
			return -1;
		if (!hostfwd_ok(n->hostfwd[k]))
			return fail(err, errlen, "%s: must be tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT",
				    field);
	}
	n->nr_hostfwd = (unsigned)nf;
	return 0;
}

static int parse_obj(json_object *root, struct vmdef *def, char *err, size_t errlen)
{
	bool have_name = false, have_kernel = false;
	int64_t x;

	if (!json_object_is_type(root, json_type_object))
		return fail(err, errlen, "the definition must be a JSON object");
	json_object_object_foreach(root, key, v) {
		if (!strcmp(key, "name")) {
			if (get_str(v, "name", VMDEF_NAME_MAX, def->name, err, errlen))
				return -1;
			if (!vmdef_name_ok(def->name))
				return fail(err, errlen, "name: letters, digits, '.', '_' and '-' only, "
					    "starting with a letter or digit");
			have_name = true;
		} else if (!strcmp(key, "uuid")) {
			if (get_str(v, "uuid", 36, def->uuid, err, errlen))
				return -1;
			if (!vmdef_uuid_ok(def->uuid))
				return fail(err, errlen, "uuid: must be lower-case 8-4-4-4-12 hex");
		} else if (!strcmp(key, "cpus")) {
			if (get_uint(v, "cpus", 1, VMDEF_MAX_CPUS, &x, err, errlen))
				return -1;
			def->cpus = (unsigned)x;
		} else if (!strcmp(key, "memory")) {
			if (get_memory(v, &def->memory_mib, err, errlen))
				return -1;
		} else if (!strcmp(key, "kernel")) {
			if (get_path(v, "kernel", def->kernel, false, err, errlen))
				return -1;
			have_kernel = true;
		} else if (!strcmp(key, "initrd")) {
			if (get_path(v, "initrd", def->initrd, false, err, errlen))
				return -1;
		} else if (!strcmp(key, "cmdline")) {
			if (!json_object_is_type(v, json_type_string))
				return fail(err, errlen, "cmdline: must be a string");
			if (json_object_get_string_len(v) == 0) {
				def->cmdline[0] = '\0';
			} else if (get_str(v, "cmdline", VMDEF_CMDLINE_MAX, def->cmdline, err, errlen)) {
				return -1;
			}
			def->has_cmdline = true;
		} else if (!strcmp(key, "disks")) {
			if (!json_object_is_type(v, json_type_array))
				return fail(err, errlen, "disks: must be an array");
			size_t n = json_object_array_length(v);
			if (n > VMDEF_MAX_DISKS)
				return fail(err, errlen, "disks: at most %d", VMDEF_MAX_DISKS);
			for (size_t i = 0; i < n; i++)
				if (parse_disk(json_object_array_get_idx(v, i), (unsigned)i,
					       &def->disks[i], err, errlen))
					return -1;
			def->nr_disks = (unsigned)n;
		} else if (!strcmp(key, "nics")) {
			if (!json_object_is_type(v, json_type_array))
				return fail(err, errlen, "nics: must be an array");
			size_t n = json_object_array_length(v);
			if (n > VMDEF_MAX_NICS)
				return fail(err, errlen, "nics: at most %d", VMDEF_MAX_NICS);
			for (size_t i = 0; i < n; i++)
				if (parse_nic(json_object_array_get_idx(v, i), (unsigned)i,
					      &def->nics[i], err, errlen))
					return -1;
			def->nr_nics = (unsigned)n;
		} else if (!strcmp(key, "rng")) {
			if (get_bool(v, "rng", &def->rng, err, errlen))
				return -1;
		} else if (!strcmp(key, "balloon")) {
			if (get_bool(v, "balloon", &def->balloon, err, errlen))
				return -1;
		} else if (!strcmp(key, "autostart")) {
			if (get_bool(v, "autostart", &def->autostart, err, errlen))
				return -1;
		} else if (!strcmp(key, "restart")) {
			const char *s = json_object_is_type(v, json_type_string) ?
				json_object_get_string(v) : "";
			if (!strcmp(s, "never"))
				def->restart = VMDEF_RESTART_NEVER;
			else if (!strcmp(s, "on-failure"))
				def->restart = VMDEF_RESTART_ON_FAILURE;
			else if (!strcmp(s, "always"))
				def->restart = VMDEF_RESTART_ALWAYS;
			else
				return fail(err, errlen, "restart: must be \"never\", \"on-failure\" or \"always\"");
		} else {
			char kb[48];
			return fail(err, errlen, "%s: unknown field", shown(key, kb));
		}
	}
	if (!have_name)
		return fail(err, errlen, "name: missing");
	if (!have_kernel)
		return fail(err, errlen, "kernel: missing");
	return 0;
}

int vmdef_parse(const char *text, size_t len, struct vmdef *def, char *err, size_t errlen)
{
	struct json_tokener *tok;
	json_object *root;
	int ret;

	memset(def, 0, sizeof(*def));
	def->cpus = 1;
	def->memory_mib = 512;
	if (len > VMDEF_MAX_JSON)
		return fail(err, errlen, "the definition is larger than %d bytes", VMDEF_MAX_JSON);
	if (len == 0)
		return fail(err, errlen, "the definition is empty");
	if (memchr(text, '\0', len))
		return fail(err, errlen, "the definition contains a NUL byte");
	tok = json_tokener_new_ex(16);
	if (!tok)
		return fail(err, errlen, "out of memory");
	root = json_tokener_parse_ex(tok, text, (int)len);
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
		if (text[end] != ' ' && text[end] != '\n' && text[end] != '\t' && text[end] != '\r') {
			json_object_put(root);
			return fail(err, errlen, "invalid JSON: text after the object at offset %zu", end);
		}
	}
	ret = parse_obj(root, def, err, errlen);
	json_object_put(root);
	return ret;
}

char *vmdef_to_json(const struct vmdef *def)
{
	json_object *o = json_object_new_object(), *a;
	char mem[32];
	char *out;

	if (!o)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(def->name));
	if (def->uuid[0])
		json_object_object_add(o, "uuid", json_object_new_string(def->uuid));
	json_object_object_add(o, "cpus", json_object_new_int((int)def->cpus));
	snprintf(mem, sizeof(mem), "%lluM", (unsigned long long)def->memory_mib);
	json_object_object_add(o, "memory", json_object_new_string(mem));
	json_object_object_add(o, "kernel", json_object_new_string(def->kernel));
	if (def->initrd[0])
		json_object_object_add(o, "initrd", json_object_new_string(def->initrd));
	if (def->has_cmdline)
		json_object_object_add(o, "cmdline", json_object_new_string(def->cmdline));
	a = json_object_new_array();
	for (unsigned i = 0; i < def->nr_disks; i++) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "path", json_object_new_string(def->disks[i].path));
		json_object_object_add(d, "format", json_object_new_string(def->disks[i].qcow2 ? "qcow2" : "raw"));
		json_object_object_add(d, "readonly", json_object_new_boolean(def->disks[i].readonly));
		json_object_array_add(a, d);
	}
	json_object_object_add(o, "disks", a);
	a = json_object_new_array();
	for (unsigned i = 0; i < def->nr_nics; i++) {
		const struct vmdef_nic *n = &def->nics[i];
		json_object *j = json_object_new_object();
		if (n->type == VMDEF_NIC_TAP) {
			json_object_object_add(j, "type", json_object_new_string("tap"));
			json_object_object_add(j, "tap", json_object_new_string(n->tap));
		} else if (n->type == VMDEF_NIC_NETWORK) {
			json_object_object_add(j, "type", json_object_new_string("network"));
			json_object_object_add(j, "network", json_object_new_string(n->network));
			if (n->mac[0])
				json_object_object_add(j, "mac", json_object_new_string(n->mac));
			if (n->ip[0])
				json_object_object_add(j, "ip", json_object_new_string(n->ip));
		} else {
			json_object *f = json_object_new_array();
			json_object_object_add(j, "type", json_object_new_string("user"));
			for (unsigned k = 0; k < n->nr_hostfwd; k++)
				json_object_array_add(f, json_object_new_string(n->hostfwd[k]));
			json_object_object_add(j, "hostfwd", f);
		}
		json_object_array_add(a, j);
	}
	json_object_object_add(o, "nics", a);
	json_object_object_add(o, "rng", json_object_new_boolean(def->rng));
	json_object_object_add(o, "balloon", json_object_new_boolean(def->balloon));
	json_object_object_add(o, "autostart", json_object_new_boolean(def->autostart));
	json_object_object_add(o, "restart", json_object_new_string(vmdef_restart_name(def->restart)));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	out = s ? strdup(s) : NULL;
	json_object_put(o);
	return out;
}

struct argv_b {
	char **v;
	size_t n, cap;
	bool oom;
};

VIREO_PRINTF(2, 3)
static void arg(struct argv_b *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (b->oom)
		return;
	if (b->n + 2 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 32;
		char **v = realloc(b->v, cap * sizeof(*v));
		if (!v) {
			b->oom = true;
			return;
		}
		b->v = v;
		b->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		b->oom = true;
		s = NULL;
	}
	va_end(ap);
	if (!s)
		return;
	b->v[b->n++] = s;
	b->v[b->n] = NULL;
}

char **vmdef_vmm_argv(const struct vmdef *def, const char *vmm, const char *rundir)
{
	struct argv_b b = { 0 };
	int tapfd = 3;

	arg(&b, "%s", vmm);
	arg(&b, "--name");
	arg(&b, "%s", def->name);
	arg(&b, "--kernel");
	arg(&b, "%s", def->kernel);
	if (def->initrd[0]) {
		arg(&b, "--initrd");
		arg(&b, "%s", def->initrd);
	}
	if (def->has_cmdline) {
		arg(&b, "--cmdline");
		arg(&b, "%s", def->cmdline);
	}
	arg(&b, "--cpus");
	arg(&b, "%u", def->cpus);
	arg(&b, "--memory");
	arg(&b, "%lluM", (unsigned long long)def->memory_mib);
	arg(&b, "--console");
	arg(&b, "file:%s/console.log", rundir);
	arg(&b, "--api-socket");
	arg(&b, "%s/api.sock", rundir);
	for (unsigned i = 0; i < def->nr_disks; i++) {
		const struct vmdef_disk *d = &def->disks[i];
		arg(&b, "--disk");
		arg(&b, "path=%s,format=%s%s", d->path, d->qcow2 ? "qcow2" : "raw",
		    d->readonly ? ",readonly=on" : "");
	}
	for (unsigned i = 0; i < def->nr_nics; i++) {
		const struct vmdef_nic *n = &def->nics[i];
		arg(&b, "--net");
		if (n->type == VMDEF_NIC_TAP) {
			arg(&b, "tap=%s", n->tap);
		} else if (n->type == VMDEF_NIC_NETWORK) {
			arg(&b, "fd=%d%s%s", tapfd++, n->mac[0] ? ",mac=" : "", n->mac);
		} else {
			char spec[16 + VMDEF_MAX_HOSTFWD * (VMDEF_HOSTFWD_MAX + 9)];
			size_t off = (size_t)snprintf(spec, sizeof(spec), "user");
			for (unsigned k = 0; k < n->nr_hostfwd; k++)
				off += (size_t)snprintf(spec + off, sizeof(spec) - off, ",hostfwd=%s",
							n->hostfwd[k]);
			arg(&b, "%s", spec);
		}
	}
	if (def->rng)
		arg(&b, "--rng");
	if (def->balloon)
		arg(&b, "--balloon");
	if (b.oom) {
		vmdef_argv_free(b.v);
		return NULL;
	}
	return b.v;
}

void vmdef_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}
