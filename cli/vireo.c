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
#include <unistd.h>

#include <json-c/json.h>

#include "httpc.h"
#include "vmdef.h"

#define DEFAULT_SOCKET "/run/vireo/vireod.sock"
#define TIMEOUT_MS     120000

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

static const char *sock_path;
static bool json_out;

static void usage(FILE *f)
{
	fputs(
"Usage: vireo [-c|--connect [unix:]PATH] COMMAND [ARGS]\n"
"Manage Vireo VMs through vireod.\n"
"\n"
"  list [--all] [--json]        running VMs (--all: every defined VM)\n"
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
"  events [--all]               follow vireod's events (JSON lines)\n"
"  version                      vireod's version\n"
"\n"
"The socket: --connect, else $VIREO_SOCKET, else " DEFAULT_SOCKET ".\n"
"Exit status: 0 done, 1 vireod refused or failed, 2 bad command line or\n"
"file, 3 vireod cannot be reached.\n", f);
}

/* One request; prints vireod's error and returns the exit status, or
 * EXIT_OK with the body in *resp (may be NULL when not wanted). */
static int call(const char *method, const char *path, const char *body, char **resp)
{
	char err[512];
	char *r = NULL;
	int status = 0;

	if (httpc_request(sock_path, method, path, body, TIMEOUT_MS, &status, &r, err, sizeof(err))) {
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

static bool name_arg(const char *verb, int argc, char **argv, const char **name)
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

/* Options after the verb: --all, --json, --force, --timeout S. */
struct vopts {
	bool all, force;
	long timeout;
};

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
		if (!strstr(allowed, key) || !*key) {
			fprintf(stderr, "vireo: %s: unknown option '%s'\n", verb, a);
			return EXIT_USAGE;
		}
		if (!strcmp(key, "all")) {
			o->all = true;
		} else if (!strcmp(key, "json")) {
			json_out = true;
		} else if (!strcmp(key, "force")) {
			o->force = true;
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

static const char *str_field(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

static int cmd_list(bool all)
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
	if (json_out) {
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
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[128], buf[4096];
	bool in_body = false;
	char prev = '\n';
	size_t hlen = 0;
	char head[8192];
	int fd;

	if (strlen(sock_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vireo: cannot reach vireod: socket path too long\n");
		return EXIT_CONNECT;
	}
	strcpy(sa.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "vireo: cannot reach vireod: cannot connect to %s: %s\n", sock_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_CONNECT;
	}
	int n = snprintf(req, sizeof(req), "GET /events%s HTTP/1.0\r\nHost: localhost\r\n\r\n",
			 all ? "?after=0" : "");
	if (write(fd, req, (size_t)n) != n) {
		fprintf(stderr, "vireo: cannot reach vireod: %s\n", strerror(errno));
		close(fd);
		return EXIT_CONNECT;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
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
				fprintf(stderr, "vireo: events: vireod refused the stream\n");
				close(fd);
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
	close(fd);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	sock_path = getenv("VIREO_SOCKET");
	if (!sock_path || !*sock_path)
		sock_path = DEFAULT_SOCKET;
	opterr = 0;
	/* Options before the verb only ("+"): the verb's own come after it. */
	while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			sock_path = strncmp(optarg, "unix:", 5) ? optarg : optarg + 5;
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
	const char *verb = argv[optind];
	int vargc = argc - optind - 1;
	char **vargv = argv + optind + 1;
	struct vopts vo = { 0 };
	const char *name;
	char path[128];
	int rc;

	if (!strcmp(verb, "list")) {
		if ((rc = parse_vopts(verb, &vargc, vargv, &vo, "all json")))
			return rc;
		if (vargc) {
			fprintf(stderr, "vireo: list: unexpected argument '%s'\n", vargv[0]);
			return EXIT_USAGE;
		}
		return cmd_list(vo.all);
	}
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
		if ((rc = parse_vopts(verb, &vargc, vargv, &vo, "all")))
			return rc;
		return cmd_events(vo.all);
	}
	if (!strcmp(verb, "define")) {
		if (vargc != 1) {
			fprintf(stderr, "vireo: define: give one file (vireo define FILE)\n");
			return EXIT_USAGE;
		}
		return cmd_define(vargv[0]);
	}
	static const struct { const char *verb, *method, *suffix, *opts; } simple[] = {
		{ "start", "POST", "/start", "" },
		{ "shutdown", "POST", "/shutdown", "timeout" },
		{ "destroy", "POST", "/destroy", "" },
		{ "suspend", "POST", "/suspend", "" },
		{ "resume", "POST", "/resume", "" },
		{ "undefine", "DELETE", "", "force" },
		{ "dominfo", "GET", "", "json" },
		{ "dumpdef", "GET", "", "" },
	};
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (strcmp(verb, simple[i].verb))
			continue;
		if ((rc = parse_vopts(verb, &vargc, vargv, &vo, simple[i].opts)))
			return rc;
		if (!name_arg(verb, vargc, vargv, &name))
			return EXIT_USAGE;
		if (vargc > 1) {
			fprintf(stderr, "vireo: %s: unexpected argument '%s'\n", verb, vargv[1]);
			return EXIT_USAGE;
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
		};
		for (size_t k = 0; k < sizeof(done) / sizeof(done[0]); k++)
			if (!strcmp(done[k][0], verb))
				printf("VM %s %s\n", name, done[k][1]);
		return EXIT_OK;
	}
	fprintf(stderr, "vireo: unknown command '%s' (see vireo --help)\n", verb);
	return EXIT_USAGE;
}
