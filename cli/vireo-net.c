/*
 * vireo's net-* verbs: net-define, net-undefine, net-start, net-destroy,
 * net-list, net-info, net-dumpdef, net-autostart (vireo(1)); each one
 * request to vireod under /networks (docs/vireod-api.yaml).
 */
#include "vireo-net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "connect.h"
#include "netdef.h"

#define TIMEOUT_MS 120000

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

static const struct vconn_target *vireod_at;

static int call(const char *method, const char *path, const char *body, char **resp)
{
	char err[512];
	char *r = NULL;
	int status = 0;

	if (vconn_request(vireod_at, method, path, body, TIMEOUT_MS, &status, &r, err, sizeof(err))) {
		fprintf(stderr, "vireo: cannot reach vireod: %s\n", err);
		return EXIT_CONNECT;
	}
	if (status >= 300) {
		json_object *o = json_tokener_parse(r), *m;
		const char *msg = o && json_object_object_get_ex(o, "error", &m) ?
			json_object_get_string(m) : r;
		fprintf(stderr, "vireo: %s\n", msg && *msg ? msg : "request failed");
		json_object_put(o);
		free(r);
		return EXIT_REFUSED;
	}
	if (resp)
		*resp = r;
	else
		free(r);
	return EXIT_OK;
}

static const char *field(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

static bool flag(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static int define(const char *file)
{
	char buf[NETDEF_MAX_JSON + 1];
	size_t len = 0;
	int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : 0;

	if (fd < 0) {
		fprintf(stderr, "vireo: net-define: cannot open %s: %s\n", file, strerror(errno));
		return EXIT_USAGE;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "vireo: net-define: cannot read %s: %s\n", file, strerror(errno));
			goto bad;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > NETDEF_MAX_JSON) {
			fprintf(stderr, "vireo: net-define: %s is larger than %d bytes\n", file, NETDEF_MAX_JSON);
			goto bad;
		}
	}
	if (fd > 0)
		close(fd);
	buf[len] = '\0';
	if (strlen(buf) != len) {
		fprintf(stderr, "vireo: net-define: %s contains a NUL byte\n", file);
		return EXIT_USAGE;
	}
	char *r = NULL;
	int rc = call("POST", "/networks", buf, &r);
	if (rc)
		return rc;
	json_object *o = json_tokener_parse(r);
	printf("Network %s defined from %s (bridge %s)\n", field(o, "name") ? field(o, "name") : "?",
	       file, field(o, "bridge") ? field(o, "bridge") : "?");
	json_object_put(o);
	free(r);
	return EXIT_OK;
bad:
	if (fd > 0)
		close(fd);
	return EXIT_USAGE;
}

static int list(bool all, bool json)
{
	char *r = NULL;
	int rc = call("GET", "/networks", NULL, &r);

	if (rc)
		return rc;
	json_object *a = json_tokener_parse(r), *sel = json_object_new_array();
	free(r);
	if (!json_object_is_type(a, json_type_array)) {
		fprintf(stderr, "vireo: net-list: malformed answer from vireod\n");
		json_object_put(a);
		json_object_put(sel);
		return EXIT_REFUSED;
	}
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *n = json_object_array_get_idx(a, i);
		if (all || flag(n, "active"))
			json_object_array_add(sel, json_object_get(n));
	}
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(sel, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		printf(" %-20s %-8s %-9s %-15s %-18s %s\n", "Name", "State", "Mode", "Bridge", "Address",
		       "Autostart");
		printf("--------------------------------------------------------------------------------\n");
		for (size_t i = 0; i < json_object_array_length(sel); i++) {
			json_object *n = json_object_array_get_idx(sel, i);
			printf(" %-20s %-8s %-9s %-15s %-18s %s\n", field(n, "name"),
			       flag(n, "active") ? "active" : "inactive", field(n, "mode"),
			       field(n, "bridge"), field(n, "address"), flag(n, "autostart") ? "yes" : "no");
		}
	}
	json_object_put(a);
	json_object_put(sel);
	return EXIT_OK;
}

static int info(const char *name, bool json, bool dump)
{
	char path[128], *r = NULL;
	int rc;

	snprintf(path, sizeof(path), "/networks/%s", name);
	if ((rc = call("GET", path, NULL, &r)))
		return rc;
	json_object *o = json_tokener_parse(r), *d = NULL;
	if (!o) {
		fprintf(stderr, "vireo: malformed answer from vireod\n");
		free(r);
		return EXIT_REFUSED;
	}
	json_object_object_get_ex(o, "definition", &d);
	if (dump) {
		printf("%s\n", json_object_to_json_string_ext(d, JSON_C_TO_STRING_PRETTY |
							    JSON_C_TO_STRING_SPACED |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (json) {
		printf("%s\n", r);
	} else {
		json_object *dh = NULL;
		printf("%-12s %s\n", "Name:", field(o, "name"));
		printf("%-12s %s\n", "Active:", flag(o, "active") ? "yes" : "no");
		printf("%-12s %s\n", "Mode:", field(o, "mode"));
		printf("%-12s %s\n", "Bridge:", field(o, "bridge"));
		printf("%-12s %s\n", "Address:", field(o, "address"));
		if (d && json_object_object_get_ex(d, "dhcp", &dh))
			printf("%-12s %s - %s\n", "DHCP:", field(dh, "start"), field(dh, "end"));
		else
			printf("%-12s %s\n", "DHCP:", "none");
		if (field(d, "domain"))
			printf("%-12s %s\n", "Domain:", field(d, "domain"));
		printf("%-12s %s\n", "Autostart:", flag(o, "autostart") ? "yes" : "no");
		if (field(o, "dnsmasq_pid"))
			printf("%-12s %s\n", "dnsmasq:", field(o, "dnsmasq_pid"));
	}
	json_object_put(o);
	free(r);
	return EXIT_OK;
}

bool vireo_net_verb(const char *verb)
{
	static const char *const verbs[] = { "net-define", "net-undefine", "net-start", "net-destroy",
					     "net-list", "net-info", "net-dumpdef", "net-autostart" };

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(verb, verbs[i]))
			return true;
	return false;
}

int vireo_net_main(const struct vconn_target *at, const char *verb, int argc, char **argv)
{
	bool all = false, json = false, force = false, disable = false;
	const char *args[2] = { NULL, NULL };
	int nargs = 0;
	/* the options each verb takes */
	const char *takes = !strcmp(verb, "net-list") ? "--all --json" :
			    !strcmp(verb, "net-info") ? "--json" :
			    !strcmp(verb, "net-undefine") || !strcmp(verb, "net-destroy") ? "--force" :
			    !strcmp(verb, "net-autostart") ? "--disable" : "";

	vireod_at = at;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1] == '-') {
			const char *hit = strstr(takes, a);
			size_t n = strlen(a);
			if (!hit || (hit[n] != ' ' && hit[n] != '\0')) {
				fprintf(stderr, "vireo: %s: unknown option '%s'%s%s\n", verb, a,
					*takes ? " (takes " : "", *takes ? takes : "");
				if (*takes)
					fputs(")\n", stderr);
				return EXIT_USAGE;
			}
			all |= !strcmp(a, "--all");
			json |= !strcmp(a, "--json");
			force |= !strcmp(a, "--force");
			disable |= !strcmp(a, "--disable");
			continue;
		}
		if (nargs == 1) {
			fprintf(stderr, "vireo: %s: unexpected argument '%s'\n", verb, a);
			return EXIT_USAGE;
		}
		args[nargs++] = a;
	}
	if (!strcmp(verb, "net-list")) {
		if (nargs) {
			fprintf(stderr, "vireo: net-list: unexpected argument '%s'\n", args[0]);
			return EXIT_USAGE;
		}
		return list(all, json);
	}
	if (!strcmp(verb, "net-define")) {
		if (nargs != 1) {
			fprintf(stderr, "vireo: net-define: give one file (vireo net-define FILE)\n");
			return EXIT_USAGE;
		}
		return define(args[0]);
	}
	if (nargs != 1) {
		fprintf(stderr, "vireo: %s: which network? (vireo %s NETWORK)\n", verb, verb);
		return EXIT_USAGE;
	}
	const char *name = args[0];
	if (!netdef_name_ok(name)) {
		fprintf(stderr, "vireo: %s: '%s' is not a valid network name\n", verb, name);
		return EXIT_USAGE;
	}
	if (!strcmp(verb, "net-info") || !strcmp(verb, "net-dumpdef"))
		return info(name, json, !strcmp(verb, "net-dumpdef"));
	char path[160];
	int rc;
	if (!strcmp(verb, "net-autostart")) {
		snprintf(path, sizeof(path), "/networks/%s/autostart", name);
		if ((rc = call("PUT", path, disable ? "{\"autostart\":false}" : "{\"autostart\":true}", NULL)))
			return rc;
		printf("Network %s %s\n", name, disable ? "unmarked as autostarted" : "marked as autostarted");
		return EXIT_OK;
	}
	bool undef = !strcmp(verb, "net-undefine");
	snprintf(path, sizeof(path), "/networks/%s%s%s", name,
		 undef ? "" : !strcmp(verb, "net-start") ? "/start" : "/destroy",
		 force ? "?force=true" : "");
	if ((rc = call(undef ? "DELETE" : "POST", path, NULL, NULL)))
		return rc;
	printf("Network %s %s\n", name, undef ? "undefined" : !strcmp(verb, "net-start") ? "started" :
	       "destroyed");
	return EXIT_OK;
}
