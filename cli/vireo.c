/*
 * vireo: the command line of vireod, with virsh's verbs (see vireo(1)).
 * Every verb is one request on vireod's Unix socket (docs/vireod-api.yaml).
 *
 * Exit status: 0 done, 1 vireod refused or failed (its message on stderr),
 * 2 bad command line or unreadable file, 3 vireod cannot be reached.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include <vireo/util.h>

#include "connect.h"
#include "httpc.h"
#include "vireo-net.h"
#include "vireo.h"
#include "vmdef.h"

#define DEFAULT_SOCKET "/run/vireo/vireod.sock"
#define TIMEOUT_MS     120000

struct vconn_target vireod_at;   /* where vireod is (--connect) */
bool json_out;

static void usage(FILE *f)
{
	fputs(
"Usage: vireo [-c|--connect [unix:]PATH|tls:HOST:PORT] [--ca FILE]\n"
"             [--token-file FILE] COMMAND [ARGS]\n"
"Manage Vireo VMs through vireod.\n"
"\n"
"  list [--all] [--json|--name] running VMs (--all: every defined VM;\n"
"                               --name: their names only, one a line)\n"
"  define FILE                  define a VM from its JSON file ('-': stdin)\n"
"  undefine NAME [--force]      forget a VM (--force: destroy it first)\n"
"  start NAME                   start a VM\n"
"  shutdown NAME [--timeout S]  press its ACPI power button (--timeout: then\n"
"                               end it if it still runs after S seconds)\n"
"  destroy NAME                 end a VM now (SIGTERM to its vireo-vmm)\n"
"  suspend NAME                 pause every vCPU\n"
"  resume NAME                  let them run again\n"
"  dominfo NAME [--json]        a VM's state and definition in short\n"
"  dumpdef NAME                 a VM's definition (JSON)\n"
"  edit NAME                    edit its definition in $VISUAL or $EDITOR and\n"
"                               redefine it (validated again)\n"
"  autostart NAME [--disable]   start it when vireod starts (or not)\n"
"  console NAME [--readonly]    attach to its serial console (Ctrl-] detaches;\n"
"                               one writer, any number of --readonly readers)\n"
"  console NAME --log           the end of its console log (64 KiB at most)\n"
"  reboot NAME                  reset it: a new vireo-vmm boots it again\n"
"  save NAME DIR                save it into DIR (the VM then stops)\n"
"  restore DIR                  run a saved VM on from DIR\n"
"  clone SRC NEW [--linked|--full]\n"
"                               a new VM with SRC's definition (default\n"
"                               --linked: qcow2 overlays on SRC's disks)\n"
"  snapshot-create-as NAME SNAP internal snapshot of its disks and memory\n"
"  snapshot-list NAME [--json]  its snapshots\n"
"  snapshot-revert NAME SNAP    run it from a snapshot (disks and memory)\n"
"  snapshot-delete NAME SNAP    delete a snapshot (the VM shut off)\n"
"  migrate --live NAME URI      move it, running, to the vireod at URI\n"
"                               (unix:PATH or tls:HOST:PORT; [--listen ADDR]\n"
"                               [--downtime MS] [--bandwidth MBPS]\n"
"                               [--target-ca FILE] [--target-token-file FILE])\n"
"  events [--all]               follow vireod's events (JSON lines)\n"
"  pool-define-as POOL dir PATH define a directory pool (PATH made if missing)\n"
"  pool-list [--json]           the pools\n"
"  pool-undefine POOL           forget a pool (its files stay)\n"
"  vol-create-as POOL VOL SIZE [--format qcow2|raw] [--backing-vol VOL2]\n"
"                               create a volume (default qcow2; --backing-vol:\n"
"                               a linked clone of VOL2, SIZE may be 0)\n"
"  vol-list POOL [--json]       a pool's volumes\n"
"  vol-delete --pool POOL VOL   delete a volume (not one a VM uses)\n"
"  vol-clone POOL VOL NEWVOL    a full copy of VOL (same format)\n"
"  vol-resize POOL VOL SIZE [--shrink]\n"
"                               a new capacity (smaller only with --shrink;\n"
"                               not while a running VM uses it)\n"
"  vol-upload POOL VOL FILE     FILE's bytes into VOL from its start\n"
"  vol-download POOL VOL FILE   VOL's guest-visible bytes into FILE\n"
"  net-define FILE              define a virtual network from its JSON file\n"
"  net-undefine NET [--force]   forget a network (--force: destroy it first)\n"
"  net-start NET                start it: bridge, nftables table, dnsmasq\n"
"  net-destroy NET [--force]    stop it (--force: even with VMs running on it)\n"
"  net-list [--all] [--json]    started networks (--all: every defined one)\n"
"  net-info NET [--json]        a network's state and definition in short\n"
"  net-dumpdef NET              a network's definition (JSON)\n"
"  net-autostart NET [--disable] start it when vireod starts (or not)\n"
"  version                      vireod's version\n"
"\n"
"vireod: --connect, else $VIREO_CONNECT, else $VIREO_SOCKET, else\n"
DEFAULT_SOCKET ".\n"
"Over tls:HOST:PORT the server's certificate must chain to --ca FILE (else\n"
"$VIREO_CA, else the system's CAs) and name HOST; the bearer token is\n"
"$VIREO_TOKEN, else the first line of --token-file FILE (else\n"
"$VIREO_TOKEN_FILE).\n"
"Exit status: 0 done, 1 vireod refused or failed, 2 bad command line or\n"
"file, 3 vireod cannot be reached.\n", f);
}

/* One request; prints vireod's error and returns the exit status, or
 * EXIT_OK with the body in *resp (may be NULL when not wanted). */
int call(const char *method, const char *path, const char *body, char **resp)
{
	return call_timeout(method, path, body, TIMEOUT_MS, resp);
}

int call_timeout(const char *method, const char *path, const char *body, int timeout_ms,
		 char **resp)
{
	char err[512];
	char *r = NULL;
	int status = 0;

	if (vconn_request(&vireod_at, method, path, body, timeout_ms, &status, &r, err, sizeof(err))) {
		fprintf(stderr, "vireo: cannot reach vireod: %s\n", err);
		return EXIT_CONNECT;
	}
	if (status >= 300) {
		json_object *o = json_tokener_parse(r);
		json_object *m;
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

bool name_arg(const char *verb, int argc, char **argv, const char **name)
{
	if (argc < 1) {
		fprintf(stderr, "vireo: %s: which VM? (vireo %s NAME)\n", verb, verb);
		return false;
	}
	if (!vmdef_name_ok(argv[0])) {
		fprintf(stderr, "vireo: %s: '%s' is not a valid VM name\n", verb, argv[0]);
		return false;
	}
	*name = argv[0];
	return true;
}

/* Whether @word is one of the space-separated words of @list. */
static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

static int parse_vopts(const char *verb, int *argc, char **argv, struct vopts *o,
		       const char *allowed)
{
	int out = 0;

	o->timeout = -1;
	for (int i = 0; i < *argc; i++) {
		const char *a = argv[i];
		const char *key = a[0] == '-' && a[1] == '-' ? a + 2 : NULL;
		if (!key) {
			argv[out++] = argv[i];
			continue;
		}
		if (!*key || !word_in(allowed, key)) {
			fprintf(stderr, "vireo: %s: unknown option '%s'\n", verb, a);
			return EXIT_USAGE;
		}
		if (!strcmp(key, "all")) {
			o->all = true;
		} else if (!strcmp(key, "json")) {
			json_out = true;
		} else if (!strcmp(key, "force")) {
			o->force = true;
		} else if (!strcmp(key, "log")) {
			o->log = true;
		} else if (!strcmp(key, "disable")) {
			o->disable = true;
		} else if (!strcmp(key, "readonly")) {
			o->readonly = true;
		} else if (!strcmp(key, "linked")) {
			o->linked = true;
		} else if (!strcmp(key, "full")) {
			o->full = true;
		} else if (!strcmp(key, "name")) {
			o->names = true;
		} else if (!strcmp(key, "shrink")) {
			o->shrink = true;
		} else if (!strcmp(key, "format") || !strcmp(key, "backing-vol") || !strcmp(key, "pool") ||
			   !strcmp(key, "target")) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "vireo: %s: %s needs a value\n", verb, a);
				return EXIT_USAGE;
			}
			const char **dst = !strcmp(key, "format") ? &o->format : !strcmp(key, "pool") ?
				&o->pool : !strcmp(key, "target") ? &o->target : &o->backing;
			*dst = argv[++i];
		} else if (!strcmp(key, "timeout")) {
			char *end;
			if (i + 1 >= *argc) {
				fprintf(stderr, "vireo: %s: --timeout needs a number of seconds\n", verb);
				return EXIT_USAGE;
			}
			errno = 0;
			o->timeout = strtol(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || o->timeout < 0 || o->timeout > 3600) {
				fprintf(stderr, "vireo: %s: --timeout '%s': use 0 to 3600 seconds\n", verb, argv[i]);
				return EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "vireo: %s: unknown option '%s'\n", verb, a);
			return EXIT_USAGE;
		}
	}
	*argc = out;
	return EXIT_OK;
}

static const char *state_text(const char *s)
{
	return !strcmp(s, "shutoff") ? "shut off" : s;
}

const char *str_field(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

static int cmd_list(bool all, bool names)
{
	char *r = NULL;
	int rc = call("GET", "/vms", NULL, &r);

	if (rc)
		return rc;
	json_object *a = json_tokener_parse(r);
	if (!json_object_is_type(a, json_type_array)) {
		fprintf(stderr, "vireo: list: malformed answer from vireod\n");
		json_object_put(a);
		free(r);
		return EXIT_REFUSED;
	}
	if (names) {
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *vm = json_object_array_get_idx(a, i);
			const char *st = str_field(vm, "state"), *n = str_field(vm, "name");
			if (n && (all || (st && (!strcmp(st, "running") || !strcmp(st, "paused") ||
						 !strcmp(st, "starting")))))
				printf("%s\n", n);
		}
	} else if (json_out) {
		json_object *sel = json_object_new_array();
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *vm = json_object_array_get_idx(a, i);
			const char *st = str_field(vm, "state");
			if (all || (st && (!strcmp(st, "running") || !strcmp(st, "paused") || !strcmp(st, "starting"))))
				json_object_array_add(sel, json_object_get(vm));
		}
		printf("%s\n", json_object_to_json_string_ext(sel, JSON_C_TO_STRING_PLAIN));
		json_object_put(sel);
	} else {
		printf(" %-8s %-24s %s\n", "PID", "Name", "State");
		printf("------------------------------------------------\n");
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *vm = json_object_array_get_idx(a, i);
			const char *st = str_field(vm, "state"), *pid = str_field(vm, "pid");
			bool running = st && (!strcmp(st, "running") || !strcmp(st, "paused") ||
					      !strcmp(st, "starting"));
			if (!all && !running)
				continue;
			printf(" %-8s %-24s %s\n", pid ? pid : "-", str_field(vm, "name"),
			       st ? state_text(st) : "?");
		}
	}
	json_object_put(a);
	free(r);
	return EXIT_OK;
}

static int cmd_define(const char *file)
{
	char *buf = malloc(VMDEF_MAX_JSON + 1);
	size_t len = 0;
	int fd;

	if (!buf) {
		fprintf(stderr, "vireo: out of memory\n");
		return EXIT_REFUSED;
	}
	fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0) {
		fprintf(stderr, "vireo: define: cannot open %s: %s\n", file, strerror(errno));
		free(buf);
		return EXIT_USAGE;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, VMDEF_MAX_JSON + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "vireo: define: cannot read %s: %s\n", file, strerror(errno));
			goto bad;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > VMDEF_MAX_JSON) {
			fprintf(stderr, "vireo: define: %s is larger than %d bytes\n", file, VMDEF_MAX_JSON);
			goto bad;
		}
	}
	if (fd > 0)
		close(fd);
	buf[len] = '\0';
	if (strlen(buf) != len) {
		fprintf(stderr, "vireo: define: %s contains a NUL byte\n", file);
		free(buf);
		return EXIT_USAGE;
	}
	char *r = NULL;
	int rc = call("POST", "/vms", buf, &r);
	free(buf);
	if (rc)
		return rc;
	json_object *o = json_tokener_parse(r);
	printf("VM %s defined from %s (uuid %s)\n", o ? str_field(o, "name") : "?", file,
	       o ? str_field(o, "uuid") : "?");
	json_object_put(o);
	free(r);
	return EXIT_OK;
bad:
	if (fd > 0)
		close(fd);
	free(buf);
	return EXIT_USAGE;
}

static int cmd_dominfo(const char *name, bool def_only)
{
	char path[128], *r = NULL;

	snprintf(path, sizeof(path), "/vms/%s", name);
	int rc = call("GET", path, NULL, &r);
	if (rc)
		return rc;
	json_object *o = json_tokener_parse(r), *d = NULL;
	if (!o) {
		fprintf(stderr, "vireo: malformed answer from vireod\n");
		free(r);
		return EXIT_REFUSED;
	}
	if (def_only) {
		json_object_object_get_ex(o, "definition", &d);
		printf("%s\n", json_object_to_json_string_ext(d, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_SPACED |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (json_out) {
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		const char *pid = str_field(o, "pid"), *ex = str_field(o, "last_exit_status");
		json_object *b;
		bool autostart = json_object_object_get_ex(o, "autostart", &b) && json_object_get_boolean(b);
		printf("%-16s%s\n", "Name:", str_field(o, "name"));
		printf("%-16s%s\n", "UUID:", str_field(o, "uuid"));
		printf("%-16s%s\n", "State:", state_text(str_field(o, "state")));
		printf("%-16s%s\n", "PID:", pid ? pid : "-");
		printf("%-16s%s\n", "CPU(s):", str_field(o, "cpus"));
		printf("%-16s%s MiB\n", "Memory:", str_field(o, "memory_mib"));
		printf("%-16s%s\n", "Autostart:", autostart ? "enable" : "disable");
		printf("%-16s%s\n", "Restart:", str_field(o, "restart"));
		printf("%-16s%s\n", "Restarts:", str_field(o, "restarts"));
		if (ex)
			printf("%-16s%s\n", "Last exit:", ex);
		printf("%-16s%s\n", "Run dir:", str_field(o, "run_dir"));
	}
	json_object_put(o);
	free(r);
	return EXIT_OK;
}

/* GET /events as HTTP/1.0 (no chunking), printed as it comes. */
static int cmd_events(bool all)
{
	char req[700], buf[4096];
	bool in_body = false;
	char prev = '\n';
	size_t hlen = 0;
	char head[8192];
	char err[512];
	struct vconn *fd = vconn_open(&vireod_at, TIMEOUT_MS, err, sizeof(err));

	if (!fd) {
		fprintf(stderr, "vireo: cannot reach vireod: %s\n", err);
		return EXIT_CONNECT;
	}
	int n = snprintf(req, sizeof(req), "GET /events%s HTTP/1.0\r\nHost: localhost\r\n%s\r\n",
			 all ? "?after=0" : "", vconn_auth_header(&vireod_at));
	if (n < 0 || (size_t)n >= sizeof(req) || vconn_write_all(fd, req, (size_t)n)) {
		fprintf(stderr, "vireo: cannot reach vireod: cannot send to %s\n", vconn_name(&vireod_at));
		vconn_close(fd);
		return EXIT_CONNECT;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		ssize_t r = vconn_read(fd, buf, sizeof(buf));
		if (r <= 0)
			break;
		size_t off = 0;
		if (!in_body) {
			size_t take = (size_t)r < sizeof(head) - 1 - hlen ? (size_t)r : sizeof(head) - 1 - hlen;
			memcpy(head + hlen, buf, take);
			hlen += take;
			head[hlen] = '\0';
			char *e = strstr(head, "\r\n\r\n");
			if (!e) {
				if (hlen == sizeof(head) - 1)
					break;
				continue;
			}
			if (strncmp(head, "HTTP/1.", 7) || strncmp(head + 8, " 200", 4)) {
				fprintf(stderr, "vireo: events: vireod refused the stream%s\n",
					!strncmp(head + 8, " 401", 4) ? " (401: a bearer token?)" : "");
				vconn_close(fd);
				return EXIT_REFUSED;
			}
			in_body = true;
			size_t body_at = (size_t)(e + 4 - head);
			/* What of this read lies past the header. */
			off = body_at - (hlen - take);
		}
		/* Empty lines are vireod's heartbeats. */
		for (size_t i = off; i < (size_t)r; i++) {
			if (buf[i] != '\n' || prev != '\n')
				putchar(buf[i]);
			prev = buf[i];
		}
	}
	vconn_close(fd);
	return EXIT_OK;
}

char *json_body(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *r = s ? strdup(s) : NULL;
	json_object_put(o);
	return r;
}

/* A pool's or volume's name as vireod takes it (pool.h): 1 to 127 of
 * [A-Za-z0-9._-], starting with a letter or digit (vireod checks pools
 * against 63). */
bool pool_arg_ok(const char *verb, const char *what, const char *v)
{
	size_t n = strlen(v);
	bool ok = n > 0 && n <= 127;

	for (size_t i = 0; ok && i < n; i++) {
		char c = v[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		ok = alnum || (i > 0 && (c == '.' || c == '_' || c == '-'));
	}
	if (!ok)
		fprintf(stderr, "vireo: %s: '%s' is not a valid %s name\n", verb, v, what);
	return ok;
}

static int cmd_pool(const char *verb, int argc, char **argv, const struct vopts *vo)
{
	char path[512], *body = NULL, *r = NULL;
	int rc;

	if (!strcmp(verb, "pool-list")) {
		if (argc) {
			fprintf(stderr, "vireo: pool-list: unexpected argument '%s'\n", argv[0]);
			return EXIT_USAGE;
		}
		if ((rc = call("GET", "/pools", NULL, &r)))
			return rc;
		json_object *a = json_tokener_parse(r);
		if (json_out) {
			printf("%s\n", r);
		} else {
			printf(" %-20s %-6s %s\n", "Name", "Type", "Path");
			printf("------------------------------------------------\n");
			for (size_t i = 0; a && i < json_object_array_length(a); i++) {
				json_object *p = json_object_array_get_idx(a, i);
				printf(" %-20s %-6s %s\n", str_field(p, "name"), str_field(p, "type"),
				       str_field(p, "path"));
			}
		}
		json_object_put(a);
		free(r);
		return EXIT_OK;
	}
	if (!strcmp(verb, "pool-define-as")) {
		const char *target = vo->target;
		if (argc < 2 || argc > 3 || (argc == 3 && target) || (argc == 2 && !target)) {
			fprintf(stderr, "vireo: pool-define-as: use pool-define-as POOL dir PATH\n");
			return EXIT_USAGE;
		}
		if (argc == 3)
			target = argv[2];
		if (strcmp(argv[1], "dir")) {
			fprintf(stderr, "vireo: pool-define-as: type '%s': only dir\n", argv[1]);
			return EXIT_USAGE;
		}
		if (!pool_arg_ok(verb, "pool", argv[0]))
			return EXIT_USAGE;
		char real[4096];
		if (target[0] != '/' && getcwd(real, sizeof(real)) &&
		    strlen(real) + strlen(target) + 2 < sizeof(real)) {
			strcat(real, "/");
			strcat(real, target);
			target = real;
		}
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(argv[0]));
		json_object_object_add(o, "type", json_object_new_string("dir"));
		json_object_object_add(o, "path", json_object_new_string(target));
		body = json_body(o);
		rc = call("POST", "/pools", body, NULL);
		free(body);
		if (!rc)
			printf("Pool %s defined\n", argv[0]);
		return rc;
	}
	if (!strcmp(verb, "pool-undefine")) {
		if (argc != 1 || !pool_arg_ok(verb, "pool", argv[0])) {
			if (argc != 1)
				fprintf(stderr, "vireo: pool-undefine: which pool? (vireo pool-undefine POOL)\n");
			return EXIT_USAGE;
		}
		snprintf(path, sizeof(path), "/pools/%s", argv[0]);
		if ((rc = call("DELETE", path, NULL, NULL)))
			return rc;
		printf("Pool %s undefined\n", argv[0]);
		return EXIT_OK;
	}
	if (!strcmp(verb, "vol-create-as")) {
		if (argc != 3) {
			fprintf(stderr, "vireo: vol-create-as: use vol-create-as POOL VOL SIZE\n");
			return EXIT_USAGE;
		}
		if (!pool_arg_ok(verb, "pool", argv[0]) || !pool_arg_ok(verb, "volume", argv[1]))
			return EXIT_USAGE;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(argv[1]));
		if (strcmp(argv[2], "0"))
			json_object_object_add(o, "capacity", json_object_new_string(argv[2]));
		if (vo->format)
			json_object_object_add(o, "format", json_object_new_string(vo->format));
		if (vo->backing)
			json_object_object_add(o, "backing", json_object_new_string(vo->backing));
		body = json_body(o);
		snprintf(path, sizeof(path), "/pools/%s/volumes", argv[0]);
		rc = call("POST", path, body, &r);
		free(body);
		if (rc)
			return rc;
		json_object *a = json_tokener_parse(r);
		printf("Vol %s created: %s\n", argv[1], a ? str_field(a, "path") : "?");
		json_object_put(a);
		free(r);
		return EXIT_OK;
	}
	if (!strcmp(verb, "vol-list")) {
		if (argc != 1 || !pool_arg_ok(verb, "pool", argv[0])) {
			if (argc != 1)
				fprintf(stderr, "vireo: vol-list: which pool? (vireo vol-list POOL)\n");
			return EXIT_USAGE;
		}
		snprintf(path, sizeof(path), "/pools/%s/volumes", argv[0]);
		if ((rc = call("GET", path, NULL, &r)))
			return rc;
		json_object *a = json_tokener_parse(r);
		if (json_out) {
			printf("%s\n", r);
		} else {
			printf(" %-24s %-6s %-14s %s\n", "Name", "Format", "Capacity", "Path");
			printf("--------------------------------------------------------------------\n");
			for (size_t i = 0; a && i < json_object_array_length(a); i++) {
				json_object *v = json_object_array_get_idx(a, i), *c;
				char cap[32] = "-";
				if (json_object_object_get_ex(v, "capacity", &c) && c)
					vsize_format((uint64_t)json_object_get_int64(c), cap, sizeof(cap));
				const char *f = str_field(v, "format");
				printf(" %-24s %-6s %-14s %s\n", str_field(v, "name"), f ? f : "?", cap,
				       str_field(v, "path"));
			}
		}
		json_object_put(a);
		free(r);
		return EXIT_OK;
	}
	/* vol-delete */
	if (argc != 1 || !vo->pool) {
		fprintf(stderr, "vireo: vol-delete: use vol-delete --pool POOL VOL\n");
		return EXIT_USAGE;
	}
	if (!pool_arg_ok(verb, "pool", vo->pool) || !pool_arg_ok(verb, "volume", argv[0]))
		return EXIT_USAGE;
	snprintf(path, sizeof(path), "/pools/%s/volumes/%s", vo->pool, argv[0]);
	if ((rc = call("DELETE", path, NULL, NULL)))
		return rc;
	printf("Vol %s deleted\n", argv[0]);
	return EXIT_OK;
}

/* The definition of @name as a JSON object (NULL and the exit status in
 * *rc on failure). */
static json_object *get_def(const char *name, int *rc)
{
	char path[128], *r = NULL;
	json_object *o, *d = NULL;

	snprintf(path, sizeof(path), "/vms/%s", name);
	if ((*rc = call("GET", path, NULL, &r)))
		return NULL;
	o = json_tokener_parse(r);
	free(r);
	if (!o || !json_object_object_get_ex(o, "definition", &d) || !d) {
		fprintf(stderr, "vireo: malformed answer from vireod\n");
		json_object_put(o);
		*rc = EXIT_REFUSED;
		return NULL;
	}
	json_object_get(d);
	json_object_put(o);
	return d;
}

static int put_def(const char *name, const char *body)
{
	char path[128];

	snprintf(path, sizeof(path), "/vms/%s", name);
	return call("PUT", path, body, NULL);
}

static int cmd_autostart(const char *name, bool disable)
{
	int rc;
	json_object *d = get_def(name, &rc);

	if (!d)
		return rc;
	json_object_object_add(d, "autostart", json_object_new_boolean(!disable));
	char *body = json_body(d);
	rc = body ? put_def(name, body) : EXIT_REFUSED;
	free(body);
	if (!rc)
		printf("VM %s %s\n", name, disable ? "unmarked as autostarted" : "marked as autostarted");
	return rc;
}

/* Read a file of at most VMDEF_MAX_JSON bytes (malloc'd, NUL-terminated). */
static char *slurp(const char *file)
{
	char *buf = malloc(VMDEF_MAX_JSON + 2);
	size_t len = 0;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, VMDEF_MAX_JSON + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > VMDEF_MAX_JSON)
			break;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

static int cmd_edit(const char *name)
{
	const char *editor = getenv("VISUAL");
	char file[] = "/tmp/vireo-edit-XXXXXX.json";
	int rc;

	if (!editor || !*editor)
		editor = getenv("EDITOR");
	if (!editor || !*editor)
		editor = "vi";
	json_object *d = get_def(name, &rc);
	if (!d)
		return rc;
	/* What the user edits: the definition without its uuid (it cannot change). */
	json_object_object_del(d, "uuid");
	const char *text = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_SPACED |
							  JSON_C_TO_STRING_NOSLASHESCAPE);
	char *before = strdup(text ? text : "");
	json_object_put(d);
	int fd = mkstemps(file, 5);
	if (!before || fd < 0 || vio_write_full(fd, before, strlen(before)) ||
	    vio_write_full(fd, "\n", 1)) {
		fprintf(stderr, "vireo: edit: cannot write a temporary file: %s\n", strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(file);
		}
		free(before);
		return EXIT_REFUSED;
	}
	close(fd);
	/* $EDITOR may carry arguments ("emacs -nw"): through the shell. */
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", editor, file, (char *)NULL);
		_exit(127);
	}
	int ws = 0;
	while (pid > 0 && waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (pid < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		fprintf(stderr, "vireo: edit: the editor '%s' failed; the definition is unchanged\n", editor);
		unlink(file);
		free(before);
		return EXIT_REFUSED;
	}
	char *after = slurp(file);
	if (!after) {
		fprintf(stderr, "vireo: edit: cannot read %s back\n", file);
		free(before);
		return EXIT_REFUSED;
	}
	size_t al = strlen(after);
	if (al && after[al - 1] == '\n' && !strncmp(before, after, al - 1) && strlen(before) == al - 1) {
		printf("Definition of VM %s unchanged\n", name);
		unlink(file);
		free(before);
		free(after);
		return EXIT_OK;
	}
	rc = put_def(name, after);
	if (rc)
		fprintf(stderr, "vireo: edit: nothing changed; your edit is in %s\n", file);
	else {
		unlink(file);
		printf("VM %s redefined\n", name);
	}
	free(before);
	free(after);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "ca", required_argument, NULL, 'A' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;
	const char *connect_to = NULL, *token_file = NULL;
	char cerr[512];

	opterr = 0;
	/* Options before the verb only ("+"): the verb's own come after it. */
	while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			connect_to = optarg;
			break;
		case 'A':
			vireod_at.ca = optarg;
			break;
		case 'T':
			token_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("vireo %s\n", VIREO_VERSION);
			return EXIT_OK;
		default:
			fprintf(stderr, "vireo: unknown option or missing value: '%s' (see --help)\n",
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* The bash completion's questions (vireo-complete.c). */
	bool complete = !strcmp(argv[optind], "__complete");
	if (complete) {
		int crc = vireo_complete_static(argc - optind - 1, argv + optind + 1);
		if (crc >= 0)
			return crc;
	}
	if (!connect_to && getenv("VIREO_CONNECT") && *getenv("VIREO_CONNECT"))
		connect_to = getenv("VIREO_CONNECT");
	else if (!connect_to && getenv("VIREO_SOCKET") && *getenv("VIREO_SOCKET"))
		connect_to = getenv("VIREO_SOCKET");
	if (!vireod_at.ca && getenv("VIREO_CA") && *getenv("VIREO_CA"))
		vireod_at.ca = getenv("VIREO_CA");
	const char *tok = getenv("VIREO_TOKEN");
	if (tok && *tok) {
		if (strlen(tok) >= sizeof(vireod_at.token) || strpbrk(tok, "\r\n")) {
			fprintf(stderr, "vireo: VIREO_TOKEN: one line of at most %zu characters\n",
				sizeof(vireod_at.token) - 1);
			return EXIT_USAGE;
		}
		snprintf(vireod_at.token, sizeof(vireod_at.token), "%s", tok);
	} else if ((token_file || (getenv("VIREO_TOKEN_FILE") && *getenv("VIREO_TOKEN_FILE"))) &&
		   vconn_token_file(token_file ? token_file : getenv("VIREO_TOKEN_FILE"), &vireod_at,
				    cerr, sizeof(cerr))) {
		fprintf(stderr, "vireo: %s\n", cerr);
		return EXIT_USAGE;
	}
	if (vconn_parse(connect_to ? connect_to : DEFAULT_SOCKET, &vireod_at, cerr, sizeof(cerr))) {
		fprintf(stderr, "vireo: --connect %s\n", cerr);
		return EXIT_USAGE;
	}
	if (vireod_at.tls && !vireod_at.token[0]) {
		fprintf(stderr, "vireo: %s needs a token: set VIREO_TOKEN or give --token-file FILE\n",
			vconn_name(&vireod_at));
		return EXIT_USAGE;
	}
	const char *verb = argv[optind];
	int vargc = argc - optind - 1;
	char **vargv = argv + optind + 1;
	struct vopts vo = { 0 };
	const char *name;
	char path[128];
	int rc;

	if (complete)
		return vireo_complete_names(vargc, vargv);
	if (!strcmp(verb, "list")) {
		if ((rc = parse_vopts(verb, &vargc, vargv, &vo, vireo_verb_opts(verb))))
			return rc;
		if (vargc) {
			fprintf(stderr, "vireo: list: unexpected argument '%s'\n", vargv[0]);
			return EXIT_USAGE;
		}
		if (vo.names && json_out) {
			fprintf(stderr, "vireo: list: --name or --json, not both\n");
			return EXIT_USAGE;
		}
		return cmd_list(vo.all, vo.names);
	}
	if (vireo_net_verb(verb))
		return vireo_net_main(&vireod_at, verb, vargc, vargv);
	if (!strcmp(verb, "version")) {
		char *r = NULL;
		if ((rc = call("GET", "/version", NULL, &r)))
			return rc;
		json_object *o = json_tokener_parse(r);
		printf("vireo %s, vireod %s\n", VIREO_VERSION, o ? str_field(o, "version") : "?");
		json_object_put(o);
		free(r);
		return EXIT_OK;
	}
	if (!strcmp(verb, "events")) {
		if ((rc = parse_vopts(verb, &vargc, vargv, &vo, vireo_verb_opts(verb))))
			return rc;
		return cmd_events(vo.all);
	}
	/* Verbs whose handler takes the verb, its arguments and its options
	 * (those of vireo-complete.c's table). */
	static const struct {
		const char *verb;
		int (*run)(const char *verb, int argc, char **argv, const struct vopts *vo);
	} handled[] = {
		{ "pool-define-as", cmd_pool }, { "pool-list", cmd_pool }, { "pool-undefine", cmd_pool },
		{ "vol-create-as", cmd_pool }, { "vol-list", cmd_pool }, { "vol-delete", cmd_pool },
		{ "vol-clone", cmd_vol }, { "vol-resize", cmd_vol }, { "vol-upload", cmd_vol },
		{ "vol-download", cmd_vol },
		{ "save", cmd_state }, { "restore", cmd_state }, { "clone", cmd_state },
		{ "snapshot-create-as", cmd_state }, { "snapshot-list", cmd_state },
		{ "snapshot-revert", cmd_state }, { "snapshot-delete", cmd_state },
	};
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++) {
		if (strcmp(verb, handled[i].verb))
			continue;
		if ((rc = parse_vopts(verb, &vargc, vargv, &vo, vireo_verb_opts(verb))))
			return rc;
		return handled[i].run(verb, vargc, vargv, &vo);
	}
	if (!strcmp(verb, "migrate"))
		return cmd_migrate(vargc, vargv);
	if (!strcmp(verb, "define")) {
		if (vargc != 1) {
			fprintf(stderr, "vireo: define: give one file (vireo define FILE)\n");
			return EXIT_USAGE;
		}
		return cmd_define(vargv[0]);
	}
	static const struct { const char *verb, *method, *suffix; } simple[] = {
		{ "start", "POST", "/start" },
		{ "shutdown", "POST", "/shutdown" },
		{ "destroy", "POST", "/destroy" },
		{ "suspend", "POST", "/suspend" },
		{ "resume", "POST", "/resume" },
		{ "undefine", "DELETE", "" },
		{ "dominfo", "GET", "" },
		{ "dumpdef", "GET", "" },
		{ "console", "GET", "/console-log" },
		{ "reboot", "POST", "/reboot" },
		{ "edit", "PUT", "" },
		{ "autostart", "PUT", "" },
	};
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (strcmp(verb, simple[i].verb))
			continue;
		if ((rc = parse_vopts(verb, &vargc, vargv, &vo, vireo_verb_opts(verb))))
			return rc;
		if (!name_arg(verb, vargc, vargv, &name))
			return EXIT_USAGE;
		if (vargc > 1) {
			fprintf(stderr, "vireo: %s: unexpected argument '%s'\n", verb, vargv[1]);
			return EXIT_USAGE;
		}
		if (!strcmp(verb, "edit"))
			return cmd_edit(name);
		if (!strcmp(verb, "autostart"))
			return cmd_autostart(name, vo.disable);
		if (!strcmp(verb, "console")) {
			if (!vo.log)
				return cmd_console(name, vo.readonly);
			snprintf(path, sizeof(path), "/vms/%s/console-log", name);
			char *r = NULL;
			if ((rc = call("GET", path, NULL, &r)))
				return rc;
			json_object *o = json_tokener_parse(r), *l;
			if (o && json_object_object_get_ex(o, "log", &l))
				fwrite(json_object_get_string(l), 1, (size_t)json_object_get_string_len(l), stdout);
			json_object_put(o);
			free(r);
			return EXIT_OK;
		}
		if (!strcmp(verb, "dominfo") || !strcmp(verb, "dumpdef"))
			return cmd_dominfo(name, !strcmp(verb, "dumpdef"));
		snprintf(path, sizeof(path), "/vms/%s%s%s", name, simple[i].suffix,
			 vo.force ? "?force=true" : "");
		char body[64], *b = NULL;
		if (vo.timeout >= 0) {
			snprintf(body, sizeof(body), "{\"timeout_s\":%ld}", vo.timeout);
			b = body;
		}
		if ((rc = call(simple[i].method, path, b, NULL)))
			return rc;
		static const char *const done[][2] = {
			{ "start", "started" }, { "shutdown", "is being shut down" },
			{ "destroy", "destroyed" }, { "suspend", "suspended" },
			{ "resume", "resumed" }, { "undefine", "undefined" },
			{ "reboot", "rebooted" },
		};
		for (size_t k = 0; k < sizeof(done) / sizeof(done[0]); k++)
			if (!strcmp(done[k][0], verb))
				printf("VM %s %s\n", name, done[k][1]);
		return EXIT_OK;
	}
	fprintf(stderr, "vireo: unknown command '%s' (see vireo --help)\n", verb);
	return EXIT_USAGE;
}
