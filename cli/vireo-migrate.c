/*
 * vireo migrate --live NAME URI: move a running VM to the vireod at URI
 * (unix:PATH or tls:HOST:PORT): the target defines it and starts
 * vireo-vmm --incoming (POST /migrations/incoming), then the source's
 * vireo-vmm sends it over (POST /vms/NAME/migrate).  See vireo(1).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <json-c/json.h>

#include "vireo.h"
#include "vmdef.h"

#define MIGRATE_CALL_MS (16 * 60 * 1000)   /* vireod gives up after 15 min */

/* A request to the target; 0 with its answer, else a message printed. */
static int target_call(const struct vconn_target *t, const char *method, const char *path,
		       const char *body, int timeout_ms, char **resp)
{
	char err[512], *r = NULL;
	int status = 0;

	if (vconn_request(t, method, path, body, timeout_ms, &status, &r, err, sizeof(err))) {
		fprintf(stderr, "vireo: migrate: cannot reach the target vireod %s: %s\n",
			vconn_name(t), err);
		return EXIT_CONNECT;
	}
	if (status >= 300) {
		json_object *o = json_tokener_parse(r), *m;
		fprintf(stderr, "vireo: migrate: the target %s: %s\n", vconn_name(t),
			o && json_object_object_get_ex(o, "error", &m) ? json_object_get_string(m) :
			"request failed");
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

/* The source's POST /vms/NAME/migrate, in a thread of its own while the
 * progress shows. */
struct mig_call {
	const char *path, *body;
	char *resp;
	int status, cr;
	char err[512];
	volatile bool done;
};

static void *mig_thread(void *arg)
{
	struct mig_call *c = arg;

	c->cr = vconn_request(&vireod_at, "POST", c->path, c->body, MIGRATE_CALL_MS, &c->status,
			      &c->resp, c->err, sizeof(c->err));
	c->done = true;
	return NULL;
}

/* One line of progress from the source's GET /vms/NAME/migrate. */
static void progress(const char *name)
{
	char path[128], err[256], *r = NULL;
	int status = 0;

	snprintf(path, sizeof(path), "/vms/%s/migrate", name);
	if (vconn_request(&vireod_at, "GET", path, NULL, 2000, &status, &r, err, sizeof(err)) ||
	    status != 200) {
		free(r);
		return;
	}
	json_object *o = json_tokener_parse(r), *sent, *left, *rounds;
	if (o && json_object_object_get_ex(o, "bytes_sent", &sent) &&
	    json_object_object_get_ex(o, "bytes_remaining", &left)) {
		int64_t rd = json_object_object_get_ex(o, "rounds", &rounds) ?
			json_object_get_int64(rounds) : 0;
		printf("\rMigrating %s: %lld MiB sent, %lld MiB left, round %lld   ", name,
		       (long long)(json_object_get_int64(sent) >> 20),
		       (long long)(json_object_get_int64(left) >> 20), (long long)rd);
		fflush(stdout);
	}
	json_object_put(o);
	free(r);
}

static int usage_err(const char *msg)
{
	fprintf(stderr, "vireo: migrate: %s\n"
		"use migrate --live NAME URI [--listen ADDR] [--downtime MS] [--bandwidth MBPS]\n"
		"            [--target-ca FILE] [--target-token-file FILE]\n", msg);
	return EXIT_USAGE;
}

static bool num_arg(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int cmd_migrate(int argc, char **argv)
{
	const char *pos[2], *listen = NULL, *ca = NULL, *token_file = NULL;
	long downtime = 0, bandwidth = 0;
	bool live = false;
	int npos = 0, rc;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if (!strcmp(a, "--live")) {
			live = true;
		} else if (!strcmp(a, "--listen") && has_val) {
			listen = argv[++i];
		} else if (!strcmp(a, "--target-ca") && has_val) {
			ca = argv[++i];
		} else if (!strcmp(a, "--target-token-file") && has_val) {
			token_file = argv[++i];
		} else if (!strcmp(a, "--downtime") && has_val) {
			if (!num_arg(argv[++i], 1, 60000, &downtime))
				return usage_err("--downtime: 1 to 60000 ms");
		} else if (!strcmp(a, "--bandwidth") && has_val) {
			if (!num_arg(argv[++i], 1, 1000000, &bandwidth))
				return usage_err("--bandwidth: 1 to 1000000 Mbit/s");
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "vireo: migrate: unknown option or missing value '%s'\n", a);
			return usage_err("see vireo(1)");
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			return usage_err("too many arguments");
		}
	}
	if (!live)
		return usage_err("only live migration is done: give --live");
	if (npos != 2)
		return usage_err("give the VM and the target vireod's URI");
	const char *name = pos[0];
	if (!vmdef_name_ok(name)) {
		fprintf(stderr, "vireo: migrate: '%s' is not a valid VM name\n", name);
		return EXIT_USAGE;
	}
	struct vconn_target to = { .ca = ca ? ca : vireod_at.ca };
	char err[512];
	memcpy(to.token, vireod_at.token, sizeof(to.token));
	if (token_file && vconn_token_file(token_file, &to, err, sizeof(err))) {
		fprintf(stderr, "vireo: migrate: %s\n", err);
		return EXIT_USAGE;
	}
	if (vconn_parse(pos[1], &to, err, sizeof(err))) {
		fprintf(stderr, "vireo: migrate: %s\n", err);
		return EXIT_USAGE;
	}
	if (to.tls && !to.token[0]) {
		fprintf(stderr, "vireo: migrate: %s needs a token: give --target-token-file FILE\n",
			vconn_name(&to));
		return EXIT_USAGE;
	}
	/* Where the target listens: the host named in tls:HOST:PORT when it is
	 * a numeric IPv4 address, else the loopback (the same host). */
	struct in_addr ia;
	if (!listen)
		listen = to.tls && inet_pton(AF_INET, to.host, &ia) == 1 ? to.host : "127.0.0.1";
	if (inet_pton(AF_INET, listen, &ia) != 1)
		return usage_err("--listen: a numeric IPv4 address");

	/* 1. the definition, from the source */
	char path[256], *r = NULL;
	snprintf(path, sizeof(path), "/vms/%s", name);
	if ((rc = call("GET", path, NULL, &r)))
		return rc;
	json_object *info = json_tokener_parse(r), *def = NULL;
	free(r);
	if (!info || !json_object_object_get_ex(info, "definition", &def) ||
	    !json_object_is_type(def, json_type_object)) {
		json_object_put(info);
		fprintf(stderr, "vireo: migrate: the source vireod gave no definition of %s\n", name);
		return EXIT_REFUSED;
	}
	const char *st = str_field(info, "state");
	if (!st || (strcmp(st, "running") && strcmp(st, "paused"))) {
		fprintf(stderr, "vireo: migrate: %s is not running (%s)\n", name, st ? st : "?");
		json_object_put(info);
		return EXIT_REFUSED;
	}

	/* 2. the target defines it and waits for it */
	json_object *in = json_object_new_object();
	json_object_object_add(in, "definition", json_object_get(def));
	json_object_object_add(in, "listen", json_object_new_string(listen));
	json_object_put(info);
	char *body = json_body(in);
	r = NULL;
	rc = body ? target_call(&to, "POST", "/migrations/incoming", body, 60000, &r) : EXIT_REFUSED;
	free(body);
	if (rc)
		return rc;
	json_object *ans = json_tokener_parse(r);
	free(r);
	const char *uri = ans ? str_field(ans, "uri") : NULL;
	char uribuf[160] = "";
	if (uri)
		snprintf(uribuf, sizeof(uribuf), "%s", uri);
	json_object_put(ans);
	snprintf(path, sizeof(path), "/vms/%s/incoming", name);
	if (!uribuf[0]) {
		fprintf(stderr, "vireo: migrate: the target gave no URI\n");
		target_call(&to, "DELETE", path, NULL, 30000, NULL);
		return EXIT_REFUSED;
	}

	/* 3. the source sends it */
	json_object *m = json_object_new_object();
	json_object_object_add(m, "uri", json_object_new_string(uribuf));
	if (downtime)
		json_object_object_add(m, "downtime_ms", json_object_new_int64(downtime));
	if (bandwidth)
		json_object_object_add(m, "bandwidth_mbps", json_object_new_int64(bandwidth));
	body = json_body(m);
	char mpath[256];
	snprintf(mpath, sizeof(mpath), "/vms/%s/migrate", name);
	struct mig_call mc = { .path = mpath, .body = body, .cr = -ENOMEM };
	pthread_t th;
	if (body && isatty(STDOUT_FILENO) && pthread_create(&th, NULL, mig_thread, &mc) == 0) {
		bool shown = false;
		while (!mc.done) {
			struct timespec ts = { 0, 250 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			if (!mc.done) {
				progress(name);
				shown = true;
			}
		}
		pthread_join(th, NULL);
		if (shown)
			printf("\r%78s\r", "");
	} else if (body) {
		mig_thread(&mc);
	}
	free(body);
	int status = mc.status, cr = mc.cr;
	r = mc.resp;
	if (cr)
		snprintf(err, sizeof(err), "%s", mc.err);
	if (!cr && status == 204) {
		free(r);
		printf("VM %s migrated to %s\n", name, vconn_name(&to));
		return EXIT_OK;
	}
	if (cr) {
		fprintf(stderr, "vireo: migrate: the source vireod: %s\n", err);
	} else {
		json_object *o = json_tokener_parse(r), *e;
		fprintf(stderr, "vireo: migrate: %s\n",
			o && json_object_object_get_ex(o, "error", &e) ? json_object_get_string(e) :
			"the source vireod refused");
		json_object_put(o);
	}
	free(r);
	/* 4. failed: the target gives its copy up (unless the guest runs there
	 * already: then the source's end was after the hand-over) */
	char *ti = NULL;
	snprintf(path, sizeof(path), "/vms/%s", name);
	if (!target_call(&to, "GET", path, NULL, 30000, &ti)) {
		json_object *o = json_tokener_parse(ti);
		const char *ts = o ? str_field(o, "state") : NULL;
		bool there = ts && !strcmp(ts, "running");
		json_object_put(o);
		free(ti);
		if (there) {
			fprintf(stderr, "vireo: migrate: %s runs on the target %s\n", name, vconn_name(&to));
			return EXIT_REFUSED;
		}
		snprintf(path, sizeof(path), "/vms/%s/incoming", name);
		target_call(&to, "DELETE", path, NULL, 30000, NULL);
	}
	return cr ? EXIT_CONNECT : EXIT_REFUSED;
}
