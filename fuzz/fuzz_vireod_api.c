/*
 * libFuzzer target: vireod's REST dispatcher (daemon/api.c): route
 * matching with path parameters, the 404/405 answers, body checks, the
 * shutdown body and the definition parser behind POST /vms, with the VM
 * and pool operations replaced by fakes (the VM-state ones run the real
 * body parser of daemon/vmstate-parse.c).
 *
 * Input: one byte choosing the fakes' status, then METHOD '\n' PATH '\n'
 * FORCE '\n' BODY (the body is the rest, NULs and all; an empty FORCE is
 * no ?force=).  Seeds: fuzz/corpus/vireod_api/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "network.h"
#include "pool.h"
#include "vm.h"
#include "vmstate.h"
#include "migrate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_status;

static int fake(const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "fake %s", what);
	return fz_status;
}

static char *fake_json(int *status)
{
	*status = fz_status == 404 ? 404 : 200;
	return *status == 200 ? strdup("{}") : NULL;
}

/* vm.h */
int vms_define(const struct vmdef *def, char *err, size_t errlen)
{
	if (!vmdef_name_ok(def->name) || def->kernel[0] != '/')
		abort();   /* the dispatcher hands on only valid definitions */
	int s = fake("define", err, errlen);
	if (s == 204)
		s = 201;
	if (s == 201)
		snprintf(err, errlen, "0123abcd-0000-4000-8000-0123456789ab");
	return s;
}
int vms_redefine(const struct vmdef *def, char *err, size_t errlen)
{
	if (!vmdef_name_ok(def->name) || def->kernel[0] != '/')
		abort();
	return fake("redefine", err, errlen);
}
int vms_undefine(const char *name, bool force, char *err, size_t errlen)
{
	(void)force;
	if (!vmdef_name_ok(name))
		abort();
	return fake("undefine", err, errlen);
}
#define FAKE_OP(fn) \
	int fn(const char *name, char *err, size_t errlen) \
	{ \
		if (!vmdef_name_ok(name)) \
			abort(); \
		return fake(#fn, err, errlen); \
	}
FAKE_OP(vm_start)
FAKE_OP(vm_destroy)
FAKE_OP(vm_suspend)
FAKE_OP(vm_resume)
int vm_shutdown(const char *name, unsigned timeout_s, char *err, size_t errlen)
{
	if (!vmdef_name_ok(name) || timeout_s > 3600)
		abort();
	return fake("shutdown", err, errlen);
}
char *vms_list_json(void) { return strdup("[]"); }
char *vm_info_json(const char *name, int *status) { (void)name; return fake_json(status); }
char *vm_console_log_json(const char *name, int *status) { (void)name; return fake_json(status); }

/* vmstate.h: the real body parser, the operations faked */
int vmstate_api(enum vmstate_op op, const char *name, const char *arg, const char *body,
		size_t body_len, char **resp)
{
	static const char *const keys[] = { "name", "mode", "dir", NULL };
	static char vals[3][VMSTATE_FIELD_MAX + 1];
	char err[256];

	if ((op == VMSTATE_RESTORE) != (name == NULL) || (name && !vmdef_name_ok(name)))
		abort();   /* a restore has no VM in its path, the others a valid one */
	if ((op == VMSTATE_SNAP_REVERT || op == VMSTATE_SNAP_DELETE) != (arg != NULL) ||
	    (arg && (!*arg || strchr(arg, '/'))))
		abort();   /* the snapshot: one non-empty path segment */
	if (op == VMSTATE_SAVE || op == VMSTATE_RESTORE || op == VMSTATE_CLONE ||
	    op == VMSTATE_SNAP_CREATE) {
		if (vmstate_body_fields(body, body_len, keys, vals, err, sizeof(err))) {
			*resp = strdup("{\"error\":\"bad body\"}");
			return 400;
		}
	}
	int s = fz_status;
	/* as the real one: an error answers {"error": ...}, a 204 nothing */
	*resp = s == 204 ? NULL : strdup(s >= 400 ? "{\"error\":\"fake\"}" : "{}");
	return s;
}

/* migrate.h: the real body parsers, the operations faked */
int migrate_incoming_api(const char *body, size_t len, char **resp)
{
	struct vmdef def;
	char listen[MIGRATE_LISTEN_MAX + 1], err[256];
	int s = migrate_parse_incoming(body, len, &def, listen, err, sizeof(err));

	if (s) {
		*resp = strdup("{\"error\":\"bad body\"}");
		return s;
	}
	*resp = fz_status == 204 ? NULL : strdup("{}");
	return fz_status;
}

int migrate_incoming_abort_api(const char *name, char **resp)
{
	if (!vmdef_name_ok(name))
		abort();   /* the dispatcher passes only valid names */
	*resp = fz_status == 204 ? NULL : strdup("{}");
	return fz_status;
}

int migrate_out_api(const char *name, const char *body, size_t len, char **resp)
{
	char uri[MIGRATE_URI_MAX + 1], err[256];
	int64_t down, bw;
	int s;

	if (!vmdef_name_ok(name))
		abort();
	s = migrate_parse_out(body, len, uri, &down, &bw, err, sizeof(err));
	if (s) {
		*resp = strdup("{\"error\":\"bad body\"}");
		return s;
	}
	*resp = fz_status == 204 ? NULL : strdup("{}");
	return fz_status;
}

int migrate_status_api(const char *name, char **resp)
{
	if (!vmdef_name_ok(name))
		abort();
	*resp = fz_status == 200 ? strdup("{}") : NULL;
	return fz_status == 200 ? 200 : 404;
}

/* pool.h */
int pool_define(const char *body, size_t len, char **resp, char *err, size_t errlen)
{
	(void)body;
	(void)len;
	(void)resp;
	return fake("pool_define", err, errlen);
}
int pool_undefine(const char *name, char *err, size_t errlen) { (void)name; return fake("pool_undefine", err, errlen); }
int pools_list(char **resp, char *err, size_t errlen) { (void)resp; return fake("pools_list", err, errlen); }
int pool_volumes(const char *pool, char **resp, char *err, size_t errlen)
{
	(void)pool;
	(void)resp;
	return fake("pool_volumes", err, errlen);
}
int pool_vol_create(const char *pool, const char *body, size_t len, char **resp, char *err, size_t errlen)
{
	(void)pool;
	(void)body;
	(void)len;
	(void)resp;
	return fake("pool_vol_create", err, errlen);
}
int pool_vol_delete(const char *pool, const char *vol, char *err, size_t errlen)
{
	if (strchr(pool, '/') || strchr(vol, '/'))
		abort();   /* a path parameter is one segment */
	return fake("pool_vol_delete", err, errlen);
}

static void one_segment(const char *a, const char *b)
{
	if (strchr(a, '/') || strchr(b, '/') || !*a || !*b)
		abort();   /* a path parameter is one non-empty segment */
}
int pool_vol_clone(const char *pool, const char *src, const char *name, char **resp,
		   char *err, size_t errlen)
{
	one_segment(pool, src);
	if (!*name || strlen(name) >= API_CAP_MAX)
		abort();
	(void)resp;
	return fake("pool_vol_clone", err, errlen);
}
int pool_vol_resize(const char *pool, const char *vol, uint64_t size, bool shrink,
		    char *err, size_t errlen)
{
	one_segment(pool, vol);
	(void)size; (void)shrink;
	return fake("pool_vol_resize", err, errlen);
}
int pool_vol_progress(const char *pool, const char *vol, char **resp, char *err, size_t errlen)
{
	one_segment(pool, vol);
	(void)resp;
	return fake("pool_vol_progress", err, errlen);
}

/* The network operations (daemon/network.c), faked the same way. */
int net_define(const char *body, size_t len, char **resp, char *err, size_t errlen)
{
	(void)body; (void)len; (void)resp;
	return fake("net_define", err, errlen);
}
int net_undefine(const char *name, bool force, char *err, size_t errlen)
{
	(void)name; (void)force;
	return fake("net_undefine", err, errlen);
}
int net_start(const char *name, char *err, size_t errlen) { (void)name; return fake("net_start", err, errlen); }
int net_destroy(const char *name, bool force, char *err, size_t errlen)
{
	(void)name; (void)force;
	return fake("net_destroy", err, errlen);
}
int nets_list(char **resp, char *err, size_t errlen) { (void)resp; return fake("nets_list", err, errlen); }
int net_info(const char *name, char **resp, char *err, size_t errlen)
{
	(void)name; (void)resp;
	return fake("net_info", err, errlen);
}
int net_set_autostart(const char *name, const char *body, size_t len, char *err, size_t errlen)
{
	(void)name; (void)body; (void)len;
	return fake("net_set_autostart", err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int statuses[] = { 200, 201, 204, 400, 404, 409, 500, 502 };
	char *buf, *method, *path, *force, *nl;
	const char *allow = NULL;
	char *resp = NULL;

	if (size < 1 || size > 70000)
		return 0;
	fz_status = statuses[data[0] % 8];
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	method = buf;
	if (!(nl = memchr(method, '\n', size - 1)))
		goto out;
	*nl = '\0';
	path = nl + 1;
	if (!(nl = strchr(path, '\n')))
		goto out;
	*nl = '\0';
	force = nl + 1;
	if (!(nl = strchr(force, '\n')))
		goto out;
	*nl = '\0';
	const char *body = nl + 1;
	size_t body_len = size - 1 - (size_t)(body - buf);
	struct api_req req = { .method = method, .path = path, .force = *force ? force : NULL,
			       .body = body, .body_len = body_len };
	char dpool[API_CAP_MAX], dvol[API_CAP_MAX];
	if (api_vol_data_path(path, dpool, dvol))
		one_segment(dpool, dvol);   /* server.c streams these */
	int status = api_dispatch(&req, &resp, &allow);
	if (status < 200 || status > 599)
		abort();
	/* Every error answer is JSON with an "error"; 204 has no body. */
	if (status >= 400 && (!resp || strncmp(resp, "{\"error\":", 9)))
		abort();
	if (status == 405 && (!allow || !*allow))
		abort();
	if (status == 204 && resp)
		abort();
	free(resp);
out:
	free(buf);
	return 0;
}
