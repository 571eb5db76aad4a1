/* vireod's REST API dispatcher (api.h). */
#include "json-whole.h"
#include "vmdef.h"
#include "api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <vireo/util.h>

#include "migrate.h"
#include "network.h"
#include "pool.h"
#include "vm.h"
#include "vmstate.h"

enum op { OP_VERSION, OP_LIST, OP_DEFINE, OP_GET, OP_UNDEFINE, OP_START, OP_SHUTDOWN,
	  OP_DESTROY, OP_SUSPEND, OP_RESUME, OP_EVENTS, OP_POOLS, OP_POOL_DEFINE, OP_POOL_UNDEFINE,
	  OP_VOLS, OP_VOL_CREATE, OP_VOL_DELETE, OP_CONSOLE_LOG, OP_REDEFINE,
	  OP_NETS, OP_NET_DEFINE, OP_NET_GET, OP_NET_UNDEFINE, OP_NET_START, OP_NET_DESTROY,
	  OP_NET_AUTOSTART,
	  /* console.c and vmstate.c */
	  OP_CONSOLE, OP_REBOOT, OP_SAVE, OP_RESTORE, OP_CLONE, OP_SNAP_LIST, OP_SNAP_CREATE,
	  OP_SNAP_REVERT, OP_SNAP_DELETE, OP_PROGRESS,
	  /* migrate.c */
	  OP_MIGRATE, OP_INCOMING, OP_INCOMING_ABORT, OP_MIGRATE_STATUS,
	  /* pool.c's long operations (server.c streams the data routes) */
	  OP_VOL_CLONE, OP_VOL_RESIZE, OP_VOL_PROGRESS, OP_VOL_UPLOAD, OP_VOL_DOWNLOAD };

const struct api_route api_routes[] = {
	[OP_VERSION]  = { "GET",    "/version" },
	[OP_LIST]     = { "GET",    "/vms" },
	[OP_DEFINE]   = { "POST",   "/vms" },
	[OP_GET]      = { "GET",    "/vms/{name}" },
	[OP_UNDEFINE] = { "DELETE", "/vms/{name}" },
	[OP_START]    = { "POST",   "/vms/{name}/start" },
	[OP_SHUTDOWN] = { "POST",   "/vms/{name}/shutdown" },
	[OP_DESTROY]  = { "POST",   "/vms/{name}/destroy" },
	[OP_SUSPEND]  = { "POST",   "/vms/{name}/suspend" },
	[OP_RESUME]   = { "POST",   "/vms/{name}/resume" },
	[OP_EVENTS]   = { "GET",    API_EVENTS_PATH },
	[OP_POOLS]         = { "GET",    "/pools" },
	[OP_POOL_DEFINE]   = { "POST",   "/pools" },
	[OP_POOL_UNDEFINE] = { "DELETE", "/pools/{pool}" },
	[OP_VOLS]          = { "GET",    "/pools/{pool}/volumes" },
	[OP_VOL_CREATE]    = { "POST",   "/pools/{pool}/volumes" },
	[OP_VOL_DELETE]    = { "DELETE", "/pools/{pool}/volumes/{volume}" },
	[OP_CONSOLE_LOG]   = { "GET",    "/vms/{name}/console-log" },
	[OP_REDEFINE]      = { "PUT",    "/vms/{name}" },
	[OP_NETS]          = { "GET",    "/networks" },
	[OP_NET_DEFINE]    = { "POST",   "/networks" },
	[OP_NET_GET]       = { "GET",    "/networks/{network}" },
	[OP_NET_UNDEFINE]  = { "DELETE", "/networks/{network}" },
	[OP_NET_START]     = { "POST",   "/networks/{network}/start" },
	[OP_NET_DESTROY]   = { "POST",   "/networks/{network}/destroy" },
	[OP_NET_AUTOSTART] = { "PUT",    "/networks/{network}/autostart" },
	[OP_CONSOLE]       = { "POST",   API_CONSOLE_PATH },
	[OP_REBOOT]        = { "POST",   "/vms/{name}/reboot" },
	[OP_SAVE]          = { "POST",   "/vms/{name}/save" },
	[OP_RESTORE]       = { "POST",   "/restore" },
	[OP_CLONE]         = { "POST",   "/vms/{name}/clone" },
	[OP_SNAP_LIST]     = { "GET",    "/vms/{name}/snapshots" },
	[OP_SNAP_CREATE]   = { "POST",   "/vms/{name}/snapshots" },
	[OP_SNAP_REVERT]   = { "POST",   "/vms/{name}/snapshots/{snapshot}/revert" },
	[OP_SNAP_DELETE]   = { "DELETE", "/vms/{name}/snapshots/{snapshot}" },
	[OP_PROGRESS]      = { "GET",    "/vms/{name}/progress" },
	[OP_MIGRATE]       = { "POST",   "/vms/{name}/migrate" },
	[OP_INCOMING]      = { "POST",   "/migrations/incoming" },
	[OP_INCOMING_ABORT] = { "DELETE", "/vms/{name}/incoming" },
	[OP_MIGRATE_STATUS] = { "GET",    "/vms/{name}/migrate" },
	[OP_VOL_CLONE]     = { "POST",   "/pools/{pool}/volumes/{volume}/clone" },
	[OP_VOL_RESIZE]    = { "POST",   "/pools/{pool}/volumes/{volume}/resize" },
	[OP_VOL_PROGRESS]  = { "GET",    "/pools/{pool}/volumes/{volume}/progress" },
	[OP_VOL_UPLOAD]    = { "PUT",    API_VOL_DATA_PATH },
	[OP_VOL_DOWNLOAD]  = { "GET",    API_VOL_DATA_PATH },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

char *api_error_json(const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = s ? strdup(s) : NULL;
	json_object_put(o);
	return out;
}

VIREO_PRINTF(3, 4)
static int fail(int status, char **resp, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*resp = api_error_json(msg);
	return status;
}

/*
 * Match @path against @pattern; each "{...}" segment of the pattern takes
 * one segment of the path, copied in order to @caps (at most 2, each less
 * than API_CAP_MAX bytes, else no match).
 */
static bool match(const char *pattern, const char *path, char caps[2][API_CAP_MAX])
{
	int ncap = 0;

	while (*pattern && *path) {
		if (*pattern == '{') {
			const char *pend = strchr(pattern, '}');
			const char *end = strchr(path, '/');
			size_t n = end ? (size_t)(end - path) : strlen(path);
			if (!pend || ncap == 2 || n == 0 || n >= API_CAP_MAX)
				return false;
			memcpy(caps[ncap], path, n);
			caps[ncap++][n] = '\0';
			path += n;
			pattern = pend + 1;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	return !*pattern && !*path;
}

/* A body that must be empty or an empty object. */
static bool empty_body(const struct api_req *req)
{
	size_t i = 0, n = req->body_len;
	const char *b = req->body;

	while (i < n && strchr(" \t\r\n", b[i]))
		i++;
	if (i == n)
		return true;
	if (b[i] != '{')
		return false;
	for (i++; i < n && strchr(" \t\r\n", b[i]); i++)
		;
	if (i == n || b[i] != '}')
		return false;
	for (i++; i < n && strchr(" \t\r\n", b[i]); i++)
		;
	return i == n;
}

/*
 * The request's body parsed as one JSON object (nesting at most 4 deep):
 * 0 with *o (the caller's to put), or an error status with *resp.
 */
static int body_object(const struct api_req *req, json_object **o, char **resp)
{
	*o = NULL;
	if (memchr(req->body, '\0', req->body_len))
		return fail(400, resp, "the body contains a NUL byte");
	struct json_tokener *tok = json_tokener_new_ex(4);
	if (!tok)
		return fail(500, resp, "out of memory");
	*o = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
	bool ok = *o && json_tokener_get_error(tok) == json_tokener_success &&
		  json_rest_blank(tok, req->body, req->body_len) &&
		  json_object_is_type(*o, json_type_object);
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(*o);
		*o = NULL;
		return fail(400, resp, "the body must be a JSON object");
	}
	return 0;
}

/* POST /vms/{name}/shutdown: none, {} or {"timeout_s": 0..3600}. */
static int shutdown_body(const struct api_req *req, unsigned *timeout, char **resp)
{
	*timeout = 0;
	if (empty_body(req))
		return 0;
	json_object *o;
	int status = body_object(req, &o, resp);
	if (status)
		return status;
	json_object_object_foreach(o, key, v) {
		if (strcmp(key, "timeout_s")) {
			status = fail(400, resp, "%.60s: unknown field (only timeout_s)", key);
			break;
		}
		errno = 0;
		int64_t t = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || errno || t < 0 || t > 3600) {
			status = fail(400, resp, "timeout_s: must be a whole number of seconds from 0 to 3600");
			break;
		}
		*timeout = (unsigned)t;
	}
	json_object_put(o);
	return status;
}

bool api_vol_data_path(const char *path, char pool[API_CAP_MAX], char vol[API_CAP_MAX])
{
	char caps[2][API_CAP_MAX];

	if (!match(API_VOL_DATA_PATH, path, caps))
		return false;
	memcpy(pool, caps[0], API_CAP_MAX);
	memcpy(vol, caps[1], API_CAP_MAX);
	return true;
}

/*
 * The body of a volume's clone ({"name": NEW}) or resize ({"capacity":
 * "10G" or a byte count, "shrink": BOOL}): 0, or an error status with
 * *resp.
 */
static int vol_body(const struct api_req *req, bool resize, char name[API_CAP_MAX],
		    uint64_t *size, bool *shrink, char **resp)
{
	bool have = false;

	name[0] = '\0';
	*size = 0;
	*shrink = false;
	json_object *o;
	int status = body_object(req, &o, resp);
	if (status)
		return status;
	json_object_object_foreach(o, key, v) {
		if (!resize && !strcmp(key, "name")) {
			const char *n = json_object_is_type(v, json_type_string) ?
				json_object_get_string(v) : NULL;
			if (!n || strlen(n) >= API_CAP_MAX || !n[0]) {
				status = fail(400, resp, "name: the new volume's name");
				break;
			}
			snprintf(name, API_CAP_MAX, "%s", n);
			have = true;
		} else if (resize && !strcmp(key, "capacity")) {
			int r;
			if (json_object_is_type(v, json_type_int)) {
				errno = 0;
				int64_t x = json_object_get_int64(v);
				r = errno || x < 0 ? -ERANGE : 0;
				*size = (uint64_t)x;
			} else if (json_object_is_type(v, json_type_string) &&
				   json_object_get_string_len(v) <= 32) {
				r = vsize_parse(json_object_get_string(v), 1, size);
			} else {
				r = -EINVAL;
			}
			if (r) {
				status = fail(400, resp, "capacity: a byte count or a size such as \"10G\"");
				break;
			}
			have = true;
		} else if (resize && !strcmp(key, "shrink")) {
			if (!json_object_is_type(v, json_type_boolean)) {
				status = fail(400, resp, "shrink: true or false");
				break;
			}
			*shrink = json_object_get_boolean(v);
		} else {
			status = fail(400, resp, "%.60s: unknown field (%s)", key,
				      resize ? "capacity, shrink" : "name");
			break;
		}
	}
	json_object_put(o);
	if (!status && !have)
		status = fail(400, resp, "%s: missing", resize ? "capacity" : "name");
	return status;
}

static int action(int status, const char *err, char **resp)
{
	if (status == 204 || status == 200 || status == 201)
		return status;
	*resp = api_error_json(err);
	return status;
}

int api_dispatch(const struct api_req *req, char **resp, const char **allow)
{
	char caps[2][API_CAP_MAX], err[1024];
	const char *name = caps[0];
	size_t i;
	bool path_known = false;
	static __thread char allowed[64];

	*resp = NULL;
	*allow = NULL;
	err[0] = '\0';
	for (i = 0; i < api_nroutes; i++) {
		if (!match(api_routes[i].pattern, req->path, caps))
			continue;
		path_known = true;
		if (!strcmp(api_routes[i].method, req->method))
			break;
	}
	if (i == api_nroutes) {
		if (!path_known)
			return fail(404, resp, "no such endpoint: %.200s", req->path);
		/* The methods this path takes (for the Allow header). */
		allowed[0] = '\0';
		for (size_t k = 0; k < api_nroutes; k++)
			if (match(api_routes[k].pattern, req->path, caps))
				snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed),
					 "%s%s", allowed[0] ? ", " : "", api_routes[k].method);
		*allow = allowed;
		return fail(405, resp, "use %s", *allow);
	}
	if (strstr(api_routes[i].pattern, "{name}") && !vmdef_name_ok(name))
		return fail(404, resp, "no VM named '%.64s' (not a valid VM name)", name);
	if (i != OP_DEFINE && i != OP_REDEFINE && i != OP_SHUTDOWN && i != OP_POOL_DEFINE &&
	    i != OP_VOL_CREATE && i != OP_NET_DEFINE && i != OP_NET_AUTOSTART && i != OP_SAVE &&
	    i != OP_RESTORE && i != OP_CLONE && i != OP_SNAP_CREATE && i != OP_MIGRATE &&
	    i != OP_INCOMING && i != OP_VOL_CLONE && i != OP_VOL_RESIZE && i != OP_VOL_UPLOAD &&
	    !empty_body(req))
		return fail(400, resp, "%s %s takes no body", api_routes[i].method, api_routes[i].pattern);
	switch ((enum op)i) {
	case OP_VERSION: {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string("vireod"));
		json_object_object_add(o, "version", json_object_new_string(VIREO_VERSION));
		*resp = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		return 200;
	}
	case OP_LIST:
		*resp = vms_list_json();
		return *resp ? 200 : fail(500, resp, "out of memory");
	case OP_DEFINE: {
		struct vmdef def;
		if (vmdef_parse(req->body, req->body_len, &def, err, sizeof(err)))
			return fail(400, resp, "%s", err);
		int s = vms_define(&def, err, sizeof(err));
		if (s != 201)
			return fail(s, resp, "%s", err);
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(def.name));
		json_object_object_add(o, "uuid", json_object_new_string(err));
		*resp = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		return 201;
	}
	case OP_GET: {
		int s;
		*resp = vm_info_json(name, &s);
		if (s == 404)
			return fail(404, resp, "no VM named '%s'", name);
		return *resp ? s : fail(500, resp, "out of memory");
	}
	case OP_UNDEFINE: {
		bool force = false;
		if (req->force) {
			if (!strcmp(req->force, "true") || !strcmp(req->force, "1"))
				force = true;
			else if (strcmp(req->force, "false") && strcmp(req->force, "0"))
				return fail(400, resp, "force: use true or false");
		}
		return action(vms_undefine(name, force, err, sizeof(err)), err, resp);
	}
	case OP_NETS:
		return action(nets_list(resp, err, sizeof(err)), err, resp);
	case OP_NET_DEFINE:
		return action(net_define(req->body, req->body_len, resp, err, sizeof(err)), err, resp);
	case OP_NET_GET:
		return action(net_info(caps[0], resp, err, sizeof(err)), err, resp);
	case OP_NET_START:
		return action(net_start(caps[0], err, sizeof(err)), err, resp);
	case OP_NET_AUTOSTART:
		return action(net_set_autostart(caps[0], req->body, req->body_len, err, sizeof(err)),
			      err, resp);
	case OP_NET_UNDEFINE:
	case OP_NET_DESTROY: {
		bool force = false;
		if (req->force) {
			if (!strcmp(req->force, "true") || !strcmp(req->force, "1"))
				force = true;
			else if (strcmp(req->force, "false") && strcmp(req->force, "0"))
				return fail(400, resp, "force: use true or false");
		}
		int s = i == OP_NET_UNDEFINE ? net_undefine(caps[0], force, err, sizeof(err)) :
			net_destroy(caps[0], force, err, sizeof(err));
		return action(s, err, resp);
	}
	case OP_START:
		return action(vm_start(name, err, sizeof(err)), err, resp);
	case OP_SHUTDOWN: {
		unsigned t;
		int s = shutdown_body(req, &t, resp);
		if (s)
			return s;
		return action(vm_shutdown(name, t, err, sizeof(err)), err, resp);
	}
	case OP_DESTROY:
		return action(vm_destroy(name, err, sizeof(err)), err, resp);
	case OP_SUSPEND:
		return action(vm_suspend(name, err, sizeof(err)), err, resp);
	case OP_RESUME:
		return action(vm_resume(name, err, sizeof(err)), err, resp);
	case OP_REDEFINE: {
		struct vmdef def;
		if (vmdef_parse(req->body, req->body_len, &def, err, sizeof(err)))
			return fail(400, resp, "%s", err);
		if (strcmp(def.name, name))
			return fail(400, resp, "name: must be '%s' (a VM cannot be renamed)", name);
		return action(vms_redefine(&def, err, sizeof(err)), err, resp);
	}
	case OP_CONSOLE_LOG: {
		int s;
		*resp = vm_console_log_json(name, &s);
		if (s == 404)
			return fail(404, resp, "no VM named '%s'", name);
		return *resp ? s : fail(500, resp, "out of memory");
	}
	case OP_POOLS:
		return action(pools_list(resp, err, sizeof(err)), err, resp);
	case OP_POOL_DEFINE:
		return action(pool_define(req->body, req->body_len, resp, err, sizeof(err)), err, resp);
	case OP_POOL_UNDEFINE:
		return action(pool_undefine(caps[0], err, sizeof(err)), err, resp);
	case OP_VOLS:
		return action(pool_volumes(caps[0], resp, err, sizeof(err)), err, resp);
	case OP_VOL_CREATE:
		return action(pool_vol_create(caps[0], req->body, req->body_len, resp, err, sizeof(err)),
			      err, resp);
	case OP_VOL_DELETE:
		return action(pool_vol_delete(caps[0], caps[1], err, sizeof(err)), err, resp);
	case OP_CONSOLE:
		/* server.c upgrades it when asked to. */
		return fail(400, resp, "the console needs \"Connection: Upgrade\" and \"Upgrade: %s\"",
			    API_CONSOLE_PROTOCOL);
	case OP_REBOOT:
		return vmstate_api(VMSTATE_REBOOT, name, NULL, req->body, req->body_len, resp);
	case OP_SAVE:
		return vmstate_api(VMSTATE_SAVE, name, NULL, req->body, req->body_len, resp);
	case OP_RESTORE:
		return vmstate_api(VMSTATE_RESTORE, NULL, NULL, req->body, req->body_len, resp);
	case OP_CLONE:
		return vmstate_api(VMSTATE_CLONE, name, NULL, req->body, req->body_len, resp);
	case OP_SNAP_LIST:
		return vmstate_api(VMSTATE_SNAP_LIST, name, NULL, req->body, req->body_len, resp);
	case OP_SNAP_CREATE:
		return vmstate_api(VMSTATE_SNAP_CREATE, name, NULL, req->body, req->body_len, resp);
	case OP_SNAP_REVERT:
		return vmstate_api(VMSTATE_SNAP_REVERT, name, caps[1], req->body, req->body_len, resp);
	case OP_SNAP_DELETE:
		return vmstate_api(VMSTATE_SNAP_DELETE, name, caps[1], req->body, req->body_len, resp);
	case OP_PROGRESS:
		return vmstate_api(VMSTATE_PROGRESS, name, NULL, req->body, req->body_len, resp);
	case OP_MIGRATE:
		return migrate_out_api(name, req->body, req->body_len, resp);
	case OP_INCOMING:
		return migrate_incoming_api(req->body, req->body_len, resp);
	case OP_INCOMING_ABORT:
		return migrate_incoming_abort_api(name, resp);
	case OP_MIGRATE_STATUS:
		return migrate_status_api(name, resp);
	case OP_VOL_CLONE:
	case OP_VOL_RESIZE: {
		char nm[API_CAP_MAX];
		uint64_t size;
		bool shrink;
		int s = vol_body(req, i == OP_VOL_RESIZE, nm, &size, &shrink, resp);
		if (s)
			return s;
		if (i == OP_VOL_CLONE)
			return action(pool_vol_clone(caps[0], caps[1], nm, resp, err, sizeof(err)), err, resp);
		return action(pool_vol_resize(caps[0], caps[1], size, shrink, err, sizeof(err)), err, resp);
	}
	case OP_VOL_PROGRESS:
		return action(pool_vol_progress(caps[0], caps[1], resp, err, sizeof(err)), err, resp);
	case OP_VOL_UPLOAD:
	case OP_VOL_DOWNLOAD:
		/* server.c streams them. */
		return fail(500, resp, "a volume's data is streamed by the server");
	case OP_EVENTS:
		/* server.c streams it; reaching here is a bug. */
		return fail(500, resp, "the event stream is served by the server");
	}
	return fail(500, resp, "unhandled route");
}
