/* vireod's live migration between vireods (migrate.h). */
#include "migrate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <vireo/util.h>

#include "vm-priv.h"
#include "vmdef.h"

#define MIGRATE_TIMEOUT_MS (15 * 60 * 1000)
#define POLL_MS            200
#define URI_MAX            MIGRATE_URI_MAX
#define LISTEN_WAIT_MS     10000

static char *json_str(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *r = s ? strdup(s) : NULL;
	json_object_put(o);
	return r;
}

VIREO_PRINTF(3, 4)
static int fail(int status, char **resp, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(msg));
	*resp = json_str(o);
	return status;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* ---- target ------------------------------------------------------------------ */

struct incoming {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned refs;
	bool forked, done;
	int status;
	char name[VMDEF_NAME_MAX + 1];
	char uri[URI_MAX + 1];
	char err[1024];
};

static void incoming_put(struct incoming *in)
{
	pthread_mutex_lock(&in->lock);
	bool last = --in->refs == 0;
	pthread_mutex_unlock(&in->lock);
	if (last) {
		pthread_mutex_destroy(&in->lock);
		pthread_cond_destroy(&in->cond);
		free(in);
	}
}

static void incoming_forked(void *opaque, pid_t pid)
{
	struct incoming *in = opaque;

	(void)pid;
	pthread_mutex_lock(&in->lock);
	in->forked = true;
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
}

/* Start vireo-vmm --incoming and wait (the op lock held) until the guest
 * runs here, or the process ends: then the definition goes. */
static void *incoming_main(void *arg)
{
	struct incoming *in = arg;
	char err[1024] = "";
	int s;

	struct vm *vm = op_begin(in->name, err, sizeof(err));
	if (!vm) {
		s = 404;
	} else {
		s = spawn_full(vm, false, NULL, in->uri, incoming_forked, in, err, sizeof(err));
		op_end(vm);
	}
	if (s != 204) {
		char e2[256];
		vwarn("%s: incoming migration failed: %s", in->name, err);
		emit(in->name, "migrate-failed", "%.300s", err);
		vms_undefine(in->name, true, e2, sizeof(e2));
	}
	pthread_mutex_lock(&in->lock);
	in->done = true;
	in->status = s;
	snprintf(in->err, sizeof(in->err), "%s", err);
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
	incoming_put(in);
	return NULL;
}

/* A free TCP port on @addr (the kernel picks it). */
static int free_port(const struct in_addr *addr)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = *addr };
	socklen_t l = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &l) == 0)
		port = ntohs(sa.sin_port);
	else
		port = -errno;
	close(fd);
	return port;
}

/* Whether a socket listens on TCP port @port (in /proc/net/tcp). */
static bool port_listens(int port)
{
	char line[512], want[16];
	FILE *f = fopen("/proc/net/tcp", "re");
	bool found = false;

	if (!f)
		return false;
	snprintf(want, sizeof(want), ":%04X", port);
	while (!found && fgets(line, sizeof(line), f)) {
		char local[64], remote[64], st[8];
		if (sscanf(line, " %*[0-9]: %63s %63s %7s", local, remote, st) != 3)
			continue;
		const char *c = strrchr(local, ':');
		found = c && !strcmp(c, want) && !strcmp(st, "0A");
	}
	fclose(f);
	return found;
}

int migrate_incoming_api(const char *body, size_t len, char **resp)
{
	char err[1024], listen[MIGRATE_LISTEN_MAX + 1];
	struct in_addr addr;
	struct vmdef def;

	*resp = NULL;
	int ps = migrate_parse_incoming(body, len, &def, listen, err, sizeof(err));
	if (ps)
		return fail(ps, resp, "%s", err);
	if (inet_pton(AF_INET, listen, &addr) != 1)
		return fail(400, resp, "listen: not an IPv4 address");
	int port = free_port(&addr);
	if (port < 0)
		return fail(400, resp, "listen: cannot listen on %s: %s", listen, strerror(-port));

	struct incoming *in = calloc(1, sizeof(*in));
	if (!in)
		return fail(500, resp, "out of memory");
	pthread_mutex_init(&in->lock, NULL);
	pthread_cond_init(&in->cond, NULL);
	in->refs = 2;
	snprintf(in->name, sizeof(in->name), "%s", def.name);
	snprintf(in->uri, sizeof(in->uri), "tcp:%s:%d", listen, port);

	int s = vms_define(&def, err, sizeof(err));
	if (s != 201) {
		in->refs = 1;
		incoming_put(in);
		return fail(s, resp, "%s", err);
	}
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, incoming_main, in)) {
		pthread_attr_destroy(&at);
		vms_undefine(def.name, true, err, sizeof(err));
		in->refs = 1;
		incoming_put(in);
		return fail(500, resp, "cannot start a thread");
	}
	pthread_attr_destroy(&at);
	pthread_mutex_lock(&in->lock);
	while (!in->forked && !in->done)
		pthread_cond_wait(&in->cond, &in->lock);
	/* The answer once vireo-vmm listens (the source connects at once). */
	for (int i = 0; i < LISTEN_WAIT_MS / 10 && !in->done && !port_listens(port); i++) {
		pthread_mutex_unlock(&in->lock);
		sleep_ms(10);
		pthread_mutex_lock(&in->lock);
	}
	bool ok = in->forked && !in->done;
	s = in->status;
	snprintf(err, sizeof(err), "%s", in->err);
	pthread_mutex_unlock(&in->lock);
	if (!ok) {
		incoming_put(in);
		if (s == 204)   /* a migration came in already: not the one asked for */
			return fail(409, resp, "%s: something else migrated in on %s", def.name, listen);
		return fail(s >= 400 ? s : 500, resp, "%s", err);
	}
	json_object *a = json_object_new_object();
	json_object_object_add(a, "name", json_object_new_string(def.name));
	json_object_object_add(a, "uuid", json_object_new_string(def.uuid));
	json_object_object_add(a, "uri", json_object_new_string(in->uri));
	incoming_put(in);
	*resp = json_str(a);
	return *resp ? 202 : fail(500, resp, "out of memory");
}

int migrate_incoming_abort_api(const char *name, char **resp)
{
	char err[512];
	int s = vm_incoming_abort(name, err, sizeof(err));

	*resp = NULL;
	return s == 204 ? 204 : fail(s, resp, "%s", err);
}

/* ---- source: the migrations under way, for GET /vms/{name}/migrate ---------- */

#define MIGRATIONS_MAX 64
static pthread_mutex_t mig_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[VMDEF_NAME_MAX + 1];
	char *status;           /* the last GET /migrate of its vireo-vmm, or NULL */
} migs[MIGRATIONS_MAX];

/* Claim a slot for @name: its index, or -1 (all taken). */
static int mig_claim(const char *name)
{
	int k = -1;

	pthread_mutex_lock(&mig_lock);
	for (int i = 0; i < MIGRATIONS_MAX && k < 0; i++)
		if (!migs[i].name[0])
			k = i;
	if (k >= 0) {
		snprintf(migs[k].name, sizeof(migs[k].name), "%s", name);
		migs[k].status = NULL;
	}
	pthread_mutex_unlock(&mig_lock);
	return k;
}

static void mig_set(int k, char *status)
{
	pthread_mutex_lock(&mig_lock);
	free(migs[k].status);
	migs[k].status = status;
	pthread_mutex_unlock(&mig_lock);
}

static void mig_release(int k)
{
	pthread_mutex_lock(&mig_lock);
	free(migs[k].status);
	migs[k].status = NULL;
	migs[k].name[0] = '\0';
	pthread_mutex_unlock(&mig_lock);
}

int migrate_status_api(const char *name, char **resp)
{
	char *r = NULL;
	bool found = false;

	pthread_mutex_lock(&mig_lock);
	for (int i = 0; i < MIGRATIONS_MAX && !found; i++) {
		if (strcmp(migs[i].name, name))
			continue;
		found = true;
		r = strdup(migs[i].status ? migs[i].status : "{\"state\":\"starting\"}");
	}
	pthread_mutex_unlock(&mig_lock);
	if (!found)
		return fail(404, resp, "%s: no migration under way here", name);
	*resp = r;
	return r ? 200 : fail(500, resp, "out of memory");
}

/* ---- source ------------------------------------------------------------------ */

int migrate_out_api(const char *name, const char *body, size_t len, char **resp)
{
	char err[1024], uri[URI_MAX + 1] = "", reason[512] = "";
	int64_t downtime = 0, bandwidth = 0;

	*resp = NULL;
	int ps = migrate_parse_out(body, len, uri, &downtime, &bandwidth, err, sizeof(err));
	if (ps)
		return fail(ps, resp, "%s", err);

	struct vm *vm = op_begin(name, err, sizeof(err));
	if (!vm)
		return fail(404, resp, "%s", err);
	pthread_mutex_lock(&reg_lock);
	bool up = running_locked(vm) && (vm->state == VM_RUNNING || vm->state == VM_PAUSED);
	pid_t pid = vm->pid;
	if (up)
		vm->stop_requested = true;   /* its exit after "migrated" is no crash */
	pthread_mutex_unlock(&reg_lock);
	if (!up) {
		op_end(vm);
		return fail(409, resp, "%s is not running", name);
	}
	int slot = mig_claim(name);
	if (slot < 0) {
		pthread_mutex_lock(&reg_lock);
		if (vm->pid == pid)
			vm->stop_requested = false;
		pthread_mutex_unlock(&reg_lock);
		op_end(vm);
		return fail(409, resp, "%d migrations are under way: try again later", MIGRATIONS_MAX);
	}
	json_object *req = json_object_new_object();
	json_object_object_add(req, "uri", json_object_new_string(uri));
	if (downtime)
		json_object_object_add(req, "downtime_ms", json_object_new_int64(downtime));
	if (bandwidth)
		json_object_object_add(req, "bandwidth_mbps", json_object_new_int64(bandwidth));
	char *rb = json_str(req);
	int s = rb ? vmm_call_body(vm, "PUT", "/migrate", rb, 15000, NULL, err, sizeof(err)) : 500;
	free(rb);
	if (s != 202) {
		pthread_mutex_lock(&reg_lock);
		if (vm->pid == pid)
			vm->stop_requested = false;
		pthread_mutex_unlock(&reg_lock);
		op_end(vm);
		mig_release(slot);
		return fail(s >= 400 ? s : 502, resp, "%s", rb ? err : "out of memory");
	}
	emit(name, "migrating", "to %.100s", uri);
	bool gone = false, given_up = false;
	for (int waited = 0; waited < MIGRATE_TIMEOUT_MS; waited += POLL_MS) {
		pthread_mutex_lock(&reg_lock);
		gone = vm->pid != pid;
		pthread_mutex_unlock(&reg_lock);
		if (gone)
			break;
		char *r = NULL;
		if (vmm_call_body(vm, "GET", "/migrate", NULL, 5000, &r, err, sizeof(err)) == 200) {
			json_object *m = json_tokener_parse(r), *st, *rs;
			const char *state = m && json_object_object_get_ex(m, "state", &st) ?
				json_object_get_string(st) : NULL;
			if (state && (!strcmp(state, "failed") || !strcmp(state, "cancelled"))) {
				snprintf(reason, sizeof(reason), "%s",
					 json_object_object_get_ex(m, "reason", &rs) &&
					 json_object_get_string(rs) ? json_object_get_string(rs) : state);
				given_up = true;
			}
			json_object_put(m);
			mig_set(slot, r);
			r = NULL;
		}
		free(r);
		if (given_up)
			break;
		sleep_ms(POLL_MS);
	}
	if (!gone && !given_up) {
		vmm_call_body(vm, "DELETE", "/migrate", NULL, 5000, NULL, err, sizeof(err));
		snprintf(reason, sizeof(reason), "not done within %d s: cancelled",
			 MIGRATE_TIMEOUT_MS / 1000);
	}
	pthread_mutex_lock(&reg_lock);
	if (!gone && vm->pid == pid)
		vm->stop_requested = false;
	/* Wait for the monitor to record the end. */
	for (int i = 0; gone && vm->pid == pid && i < 50; i++) {
		pthread_mutex_unlock(&reg_lock);
		sleep_ms(20);
		pthread_mutex_lock(&reg_lock);
	}
	int ex = vm->last_exit;
	pthread_mutex_unlock(&reg_lock);
	op_end(vm);
	mig_release(slot);
	if (!gone) {
		emit(name, "migrate-failed", "%.300s", reason);
		return fail(502, resp, "%s: the migration failed (the VM runs on here): %s", name, reason);
	}
	if (ex >= 0 && !(WIFEXITED(ex) && WEXITSTATUS(ex) == 0)) {
		emit(name, "migrate-failed", "vireo-vmm ended during the migration");
		return fail(500, resp, "%s: vireo-vmm ended during the migration (see its log)", name);
	}
	emit(name, "migrated", "to %.100s", uri);
	return 204;
}
