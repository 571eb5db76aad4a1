/*
 * The control API's dispatcher: method, path and body in, status and JSON
 * out (api.h).  No socket and no VM here: the VM is reached through
 * struct api_ops, so unit tests and the fuzz target drive it directly.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* The largest balloon target accepted (64 TiB, the most --memory allows). */
#define API_BALLOON_MAX_MIB (1ull << 26)

struct api_reply {
	unsigned status;
	char *text;
};

static char *api_dup_json(struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *r = s ? strdup(s) : NULL;

	json_object_put(o);
	return r;
}

static void api_error(struct api_reply *r, unsigned status, const char *msg)
{
	struct json_object *o = json_object_new_object();

	r->status = status;
	free(r->text);
	r->text = NULL;
	if (!o)
		return;
	json_object_object_add(o, "error", json_object_new_string(msg));
	r->text = api_dup_json(o);
}

static void api_ok(struct api_reply *r, unsigned status, struct json_object *o)
{
	r->status = status;
	r->text = o ? api_dup_json(o) : NULL;
	if (o && !r->text)
		api_error(r, 500, "out of memory");
}

/* An operation's -errno as a status and message. */
static void api_op_error(struct api_reply *r, int err, const char *what)
{
	char msg[160];

	switch (err) {
	case -EALREADY:
		snprintf(msg, sizeof(msg), "%s: the VM is already in that state", what);
		api_error(r, 409, msg);
		break;
	case -ESHUTDOWN:
		snprintf(msg, sizeof(msg), "%s: the VM is shutting down", what);
		api_error(r, 409, msg);
		break;
	case -EBUSY:
		snprintf(msg, sizeof(msg), "%s: not while the VM is paused", what);
		api_error(r, 409, msg);
		break;
	case -EINPROGRESS:
		snprintf(msg, sizeof(msg), "%s: not while a migration is active", what);
		api_error(r, 409, msg);
		break;
	case -ENODEV:
		snprintf(msg, sizeof(msg), "%s: the VM has no balloon (--balloon)", what);
		api_error(r, 404, msg);
		break;
	case -ERANGE:
		snprintf(msg, sizeof(msg), "%s: more than the guest's RAM", what);
		api_error(r, 400, msg);
		break;
	default:
		snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err < 0 ? -err : err));
		api_error(r, 500, msg);
		break;
	}
}

static bool api_blank(const char *body, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r\n", body[i]) || !body[i])
			return false;
	return true;
}

/* json-c takes 'single-quoted' strings even when strict: refuse a quote
 * outside a string. */
static bool api_single_quote(const char *body, size_t len)
{
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		if (in_str && body[i] == '\\')
			i++;
		else if (body[i] == '"')
			in_str = !in_str;
		else if (!in_str && body[i] == '\'')
			return true;
	}
	return false;
}

/* Parse @body as one JSON object: the object, or NULL with a 400 set. */
static struct json_object *api_parse_object(struct api_reply *r, const char *body, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;

	if (len == 0 || api_blank(body, len)) {
		api_error(r, 400, "a JSON object is required as the body");
		return NULL;
	}
	if (memchr(body, 0, len)) {
		api_error(r, 400, "invalid JSON: a NUL byte in the body");
		return NULL;
	}
	if (api_single_quote(body, len)) {
		api_error(r, 400, "invalid JSON: a single quote outside a string");
		return NULL;
	}
	tok = json_tokener_new();
	if (!tok) {
		api_error(r, 500, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		char msg[120];
		enum json_tokener_error e = json_tokener_get_error(tok);

		snprintf(msg, sizeof(msg), "invalid JSON: %s",
			 e == json_tokener_continue ? "unexpected end of the body"
						    : json_tokener_error_desc(e));
		json_object_put(o);
		json_tokener_free(tok);
		api_error(r, 400, msg);
		return NULL;
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (end > len || !api_blank(body + end, len - end)) {
		json_object_put(o);
		api_error(r, 400, "invalid JSON: text after the value");
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		api_error(r, 400, "the body must be a JSON object");
		return NULL;
	}
	return o;
}

/* A body for a request without parameters: none, or {}. */
static bool api_no_params(struct api_reply *r, const char *body, size_t len)
{
	struct json_object *o;
	bool ok;

	if (len == 0 || api_blank(body, len))
		return true;
	o = api_parse_object(r, body, len);
	if (!o)
		return false;
	ok = json_object_object_length(o) == 0;
	json_object_put(o);
	if (!ok)
		api_error(r, 400, "unknown field: this request takes no parameters");
	return ok;
}

static const char *api_state_name(enum api_state s)
{
	switch (s) {
	case API_STATE_RUNNING: return "running";
	case API_STATE_PAUSED: return "paused";
	case API_STATE_INCOMING: return "incoming";
	default: return "shutting-down";
	}
}

static void api_get_vm(const struct api_ctx *c, struct api_reply *r)
{
	struct api_vm_info in = { .name = "" };
	struct json_object *o;
	int e = c->ops->info(c->opaque, &in);

	if (e) {
		api_op_error(r, e, "GET /vm");
		return;
	}
	o = json_object_new_object();
	if (!o) {
		api_error(r, 500, "out of memory");
		return;
	}
	json_object_object_add(o, "state", json_object_new_string(api_state_name(in.state)));
	json_object_object_add(o, "vcpus", json_object_new_int64(in.vcpus));
	json_object_object_add(o, "memory_mib", json_object_new_uint64(in.memory_mib));
	json_object_object_add(o, "uptime_ms", json_object_new_uint64(in.uptime_ms));
	json_object_object_add(o, "name", json_object_new_string(in.name ? in.name : ""));
	api_ok(r, 200, o);
}

static void api_action(const struct api_ctx *c, struct api_reply *r, const char *body,
		       size_t len, int (*op)(void *), const char *what)
{
	int e;

	if (!api_no_params(r, body, len))
		return;
	e = op(c->opaque);
	if (e)
		api_op_error(r, e, what);
	else
		api_ok(r, 204, NULL);
}

static void api_put_balloon(const struct api_ctx *c, struct api_reply *r, const char *body,
			    size_t len)
{
	struct json_object *o = api_parse_object(r, body, len), *t = NULL;
	int64_t mib;
	int e;

	if (!o)
		return;
	json_object_object_foreach(o, key, val) {
		(void)val;
		if (strcmp(key, "target_mib")) {
			char msg[128];

			snprintf(msg, sizeof(msg), "unknown field '%.64s' (only target_mib)", key);
			json_object_put(o);
			api_error(r, 400, msg);
			return;
		}
	}
	if (!json_object_object_get_ex(o, "target_mib", &t)) {
		json_object_put(o);
		api_error(r, 400, "target_mib is required");
		return;
	}
	if (!json_object_is_type(t, json_type_int)) {
		json_object_put(o);
		api_error(r, 400, "target_mib must be a whole number of MiB");
		return;
	}
	errno = 0;
	mib = json_object_get_int64(t);
	/* json-c saturates what does not fit (and keeps large ones as
	 * unsigned): both are far above the limit. */
	if (mib < 0 || (uint64_t)mib > API_BALLOON_MAX_MIB ||
	    json_object_get_uint64(t) > API_BALLOON_MAX_MIB) {
		json_object_put(o);
		api_error(r, 400, "target_mib must be from 0 to the guest's RAM in MiB");
		return;
	}
	json_object_put(o);
	e = c->ops->balloon_set(c->opaque, (uint64_t)mib);
	if (e)
		api_op_error(r, e, "PUT /vm/balloon");
	else
		api_ok(r, 204, NULL);
}

static const char *const api_stat_names[VIRTIO_BALLOON_S_NR] = {
	[VIRTIO_BALLOON_S_SWAP_IN] = "swap_in",
	[VIRTIO_BALLOON_S_SWAP_OUT] = "swap_out",
	[VIRTIO_BALLOON_S_MAJFLT] = "major_faults",
	[VIRTIO_BALLOON_S_MINFLT] = "minor_faults",
	[VIRTIO_BALLOON_S_MEMFREE] = "free_memory",
	[VIRTIO_BALLOON_S_MEMTOT] = "total_memory",
	[VIRTIO_BALLOON_S_AVAIL] = "available_memory",
	[VIRTIO_BALLOON_S_CACHES] = "disk_caches",
	[VIRTIO_BALLOON_S_HTLB_PGALLOC] = "hugetlb_allocations",
	[VIRTIO_BALLOON_S_HTLB_PGFAIL] = "hugetlb_failures",
};

static void api_get_balloon(const struct api_ctx *c, struct api_reply *r)
{
	struct api_balloon_info in;
	struct json_object *o, *st;
	int e;

	memset(&in, 0, sizeof(in));
	e = c->ops->balloon_get(c->opaque, &in);
	if (e) {
		api_op_error(r, e, "GET /vm/balloon");
		return;
	}
	o = json_object_new_object();
	st = json_object_new_object();
	if (!o || !st) {
		json_object_put(o);
		json_object_put(st);
		api_error(r, 500, "out of memory");
		return;
	}
	json_object_object_add(o, "target_mib", json_object_new_uint64(in.target_mib));
	json_object_object_add(o, "actual_mib", json_object_new_uint64(in.actual_mib));
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		if (in.stats.valid & (1u << t))
			json_object_object_add(st, api_stat_names[t],
					       json_object_new_uint64(in.stats.val[t]));
	json_object_object_add(o, "stats", st);
	json_object_object_add(o, "stats_updates", json_object_new_uint64(in.stats.updates));
	if (in.stats.when_ns && in.now_ns >= in.stats.when_ns)
		json_object_object_add(o, "stats_age_ms",
				       json_object_new_uint64((in.now_ns - in.stats.when_ns) /
							      1000000u));
	else
		json_object_object_add(o, "stats_age_ms", NULL);
	api_ok(r, 200, o);
}

/* The longest directory PUT /vm/save takes. */
#define API_SAVE_DIR_MAX 4000u

static void api_save_result(struct api_reply *r, int e, const char *msg, const char *what);

static void api_put_save(const struct api_ctx *c, struct api_reply *r, const char *body,
			 size_t len)
{
	struct json_object *o = api_parse_object(r, body, len), *d = NULL, *x = NULL;
	char dir[API_SAVE_DIR_MAX + 1], msg[256] = "", text[320];
	const char *s;
	bool exit_after = false;
	int e, dlen;

	if (!o)
		return;
	json_object_object_foreach(o, key, val) {
		(void)val;
		if (strcmp(key, "dir") && strcmp(key, "exit")) {
			snprintf(text, sizeof(text), "unknown field '%.64s' (only dir and exit)", key);
			json_object_put(o);
			api_error(r, 400, text);
			return;
		}
	}
	if (!json_object_object_get_ex(o, "dir", &d)) {
		json_object_put(o);
		api_error(r, 400, "dir is required");
		return;
	}
	if (!json_object_is_type(d, json_type_string)) {
		json_object_put(o);
		api_error(r, 400, "dir must be a string (a directory path)");
		return;
	}
	s = json_object_get_string(d);
	dlen = json_object_get_string_len(d);
	if (dlen < 1 || (unsigned)dlen > API_SAVE_DIR_MAX || strlen(s) != (size_t)dlen) {
		json_object_put(o);
		api_error(r, 400, "dir must be a path of 1 to 4000 bytes, without NUL");
		return;
	}
	memcpy(dir, s, (size_t)dlen + 1);
	if (json_object_object_get_ex(o, "exit", &x)) {
		if (!json_object_is_type(x, json_type_boolean)) {
			json_object_put(o);
			api_error(r, 400, "exit must be true or false");
			return;
		}
		exit_after = json_object_get_boolean(x);
	}
	json_object_put(o);
	e = c->ops->save(c->opaque, dir, exit_after, msg, sizeof(msg));
	api_save_result(r, e, msg, "PUT /vm/save");
}

/* A snapshot's name: a letter, then letters, digits, '.', '_', '-' (as
 * state.h's vstate_snapshot_name_ok). */
#define API_SNAPSHOT_NAME_MAX 64u
static bool api_snapshot_name_ok(const char *s, size_t n)
{
	if (n < 1 || n > API_SNAPSHOT_NAME_MAX ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static void api_put_snapshot(const struct api_ctx *c, struct api_reply *r, const char *body,
			     size_t len)
{
	struct json_object *o = api_parse_object(r, body, len), *n = NULL, *d = NULL;
	char name[API_SNAPSHOT_NAME_MAX + 1], dir[API_SAVE_DIR_MAX + 1], msg[256] = "",
	     text[320];
	const char *s;
	bool have_dir = false;
	int e, slen;

	if (!o)
		return;
	json_object_object_foreach(o, key, val) {
		(void)val;
		if (strcmp(key, "name") && strcmp(key, "dir")) {
			snprintf(text, sizeof(text), "unknown field '%.64s' (only name and dir)", key);
			json_object_put(o);
			api_error(r, 400, text);
			return;
		}
	}
	if (!json_object_object_get_ex(o, "name", &n)) {
		json_object_put(o);
		api_error(r, 400, "name is required");
		return;
	}
	if (!json_object_is_type(n, json_type_string)) {
		json_object_put(o);
		api_error(r, 400, "name must be a string");
		return;
	}
	s = json_object_get_string(n);
	slen = json_object_get_string_len(n);
	if (slen < 0 || strlen(s) != (size_t)slen || !api_snapshot_name_ok(s, (size_t)slen)) {
		json_object_put(o);
		api_error(r, 400, "name must be a letter, then up to 63 letters, digits, "
			  "'.', '_' or '-'");
		return;
	}
	memcpy(name, s, (size_t)slen + 1);
	if (json_object_object_get_ex(o, "dir", &d) && !json_object_is_type(d, json_type_null)) {
		if (!json_object_is_type(d, json_type_string)) {
			json_object_put(o);
			api_error(r, 400, "dir must be a string (a directory path)");
			return;
		}
		s = json_object_get_string(d);
		slen = json_object_get_string_len(d);
		if (slen < 1 || (unsigned)slen > API_SAVE_DIR_MAX || strlen(s) != (size_t)slen) {
			json_object_put(o);
			api_error(r, 400, "dir must be a path of 1 to 4000 bytes, without NUL");
			return;
		}
		memcpy(dir, s, (size_t)slen + 1);
		have_dir = true;
	}
	json_object_put(o);
	e = c->ops->snapshot(c->opaque, name, have_dir ? dir : NULL, msg, sizeof(msg));
	api_save_result(r, e, msg, "PUT /vm/snapshot");
}

static void api_save_result(struct api_reply *r, int e, const char *msg, const char *what)
{
	char text[320];

	if (!e) {
		api_ok(r, 204, NULL);
		return;
	}
	if (!msg[0]) {
		api_op_error(r, e, what);
		return;
	}
	snprintf(text, sizeof(text), "%s: %s", what, msg);
	switch (e) {
	case -ENOTSUP: case -ESHUTDOWN: case -EBUSY: case -EEXIST:
		api_error(r, 409, text);
		break;
	case -ENOENT: case -EACCES: case -EPERM: case -ENOTDIR: case -EROFS:
	case -ENAMETOOLONG: case -ENOSPC: case -EISDIR: case -EINVAL:
		api_error(r, 400, text);
		break;
	default:
		api_error(r, 500, text);
		break;
	}
}

/* PUT /migrate's limits. */
#define API_MIGRATE_DOWNTIME_MAX 60000u
#define API_MIGRATE_BANDWIDTH_MAX 1000000u   /* Mbit/s */

static bool api_uri_ok(const char *s, size_t len)
{
	if (len >= sizeof(((struct migrate_params *)0)->uri) || strlen(s) != len)
		return false;
	if (!strncmp(s, "unix:", 5))
		return len > 5 && len - 5 <= 107;
	if (!strncmp(s, "tcp:", 4)) {
		const char *c = strrchr(s + 4, ':');
		char *end;
		unsigned long port;

		if (!c || c == s + 4)
			return false;
		port = strtoul(c + 1, &end, 10);
		return c[1] && !*end && port > 0 && port < 65536;
	}
	return false;
}

/* An integer field in [@lo, @hi]: 0, 1 when absent, -1 with a 400 set. */
static int api_int_field(struct api_reply *r, struct json_object *o, const char *name,
			 uint64_t lo, uint64_t hi, uint64_t *out)
{
	struct json_object *v;
	char text[160];
	int64_t x;

	if (!json_object_object_get_ex(o, name, &v))
		return 1;
	if (!json_object_is_type(v, json_type_int) ||
	    (x = json_object_get_int64(v)) < (int64_t)lo || (uint64_t)x > hi) {
		snprintf(text, sizeof(text), "%s must be an integer from %llu to %llu", name,
			 (unsigned long long)lo, (unsigned long long)hi);
		api_error(r, 400, text);
		return -1;
	}
	*out = (uint64_t)x;
	return 0;
}

static void api_put_migrate(const struct api_ctx *c, struct api_reply *r, const char *body,
			    size_t len)
{
	struct json_object *o = api_parse_object(r, body, len), *u = NULL;
	struct migrate_params p = { .downtime_ms = 300 };
	char msg[256] = "", text[320];
	uint64_t v;
	int e;

	if (!o)
		return;
	json_object_object_foreach(o, key, val) {
		(void)val;
		if (strcmp(key, "uri") && strcmp(key, "downtime_ms") &&
		    strcmp(key, "bandwidth_mbps")) {
			snprintf(text, sizeof(text), "unknown field '%.64s' (only uri, downtime_ms "
				 "and bandwidth_mbps)", key);
			json_object_put(o);
			api_error(r, 400, text);
			return;
		}
	}
	if (!json_object_object_get_ex(o, "uri", &u)) {
		json_object_put(o);
		api_error(r, 400, "uri is required");
		return;
	}
	if (!json_object_is_type(u, json_type_string) ||
	    !api_uri_ok(json_object_get_string(u), (size_t)json_object_get_string_len(u))) {
		json_object_put(o);
		api_error(r, 400, "uri must be tcp:ADDR:PORT or unix:PATH (at most 127 bytes)");
		return;
	}
	snprintf(p.uri, sizeof(p.uri), "%s", json_object_get_string(u));
	e = api_int_field(r, o, "downtime_ms", 1, API_MIGRATE_DOWNTIME_MAX, &v);
	if (e == 0)
		p.downtime_ms = (unsigned)v;
	if (e >= 0) {
		e = api_int_field(r, o, "bandwidth_mbps", 1, API_MIGRATE_BANDWIDTH_MAX, &v);
		if (e == 0)
			p.bandwidth_mbps = v;
	}
	json_object_put(o);
	if (e < 0)
		return;
	e = c->ops->migrate_start(c->opaque, &p, msg, sizeof(msg));
	if (!e) {
		api_ok(r, 202, NULL);
		return;
	}
	if (e == -EBUSY) {
		api_error(r, 409, "PUT /migrate: a migration is already active");
	} else if (msg[0]) {
		snprintf(text, sizeof(text), "PUT /migrate: %s", msg);
		api_error(r, e == -ENOTSUP || e == -ESHUTDOWN ? 409 : 500, text);
	} else {
		api_op_error(r, e, "PUT /migrate");
	}
}

static void api_get_migrate(const struct api_ctx *c, struct api_reply *r)
{
	struct migrate_status s;
	struct json_object *o;
	int e = c->ops->migrate_get(c->opaque, &s);

	if (e) {
		api_op_error(r, e, "GET /migrate");
		return;
	}
	o = json_object_new_object();
	if (!o) {
		api_error(r, 500, "out of memory");
		return;
	}
	json_object_object_add(o, "state", json_object_new_string(migrate_state_name(s.state)));
	if (s.state != MIGRATE_NONE) {
		json_object_object_add(o, "uri", json_object_new_string(s.uri));
		json_object_object_add(o, "direction",
				       json_object_new_string(s.incoming ? "in" : "out"));
		if (s.incoming)
			json_object_object_add(o, "bytes_received",
					       json_object_new_uint64(s.bytes_received));
		json_object_object_add(o, "bytes_sent", json_object_new_uint64(s.bytes_sent));
		json_object_object_add(o, "bytes_remaining",
				       json_object_new_uint64(s.bytes_remaining));
		json_object_object_add(o, "rounds", json_object_new_uint64(s.rounds));
		json_object_object_add(o, "pages", json_object_new_uint64(s.pages));
		json_object_object_add(o, "zero_pages", json_object_new_uint64(s.zero_pages));
		json_object_object_add(o, "dirty_rate_bps", json_object_new_uint64(s.dirty_rate));
		json_object_object_add(o, "bandwidth_bps", json_object_new_uint64(s.bandwidth));
		json_object_object_add(o, "expected_downtime_ms",
				       json_object_new_uint64(s.expected_downtime_ms));
		json_object_object_add(o, "throttle_percent",
				       json_object_new_uint64(s.throttle_percent));
		json_object_object_add(o, "downtime_ms", s.state == MIGRATE_COMPLETED
				       ? json_object_new_uint64(s.downtime_ms) : NULL);
		json_object_object_add(o, "total_ms", s.state == MIGRATE_ACTIVE ? NULL
				       : json_object_new_uint64(s.total_ms));
		if (s.state == MIGRATE_FAILED || s.state == MIGRATE_CANCELLED)
			json_object_object_add(o, "error", json_object_new_string(s.error));
	}
	api_ok(r, 200, o);
}

static void api_delete_migrate(const struct api_ctx *c, struct api_reply *r,
			       const char *body, size_t len)
{
	int e;

	if (len && !api_blank(body, len)) {
		api_error(r, 400, "DELETE /migrate takes no body");
		return;
	}
	e = c->ops->migrate_cancel(c->opaque);
	if (!e)
		api_ok(r, 204, NULL);
	else if (e == -EALREADY)
		api_error(r, 409, "DELETE /migrate: no migration is active");
	else
		api_op_error(r, e, "DELETE /migrate");
}

/* ---- GET /metrics ---- */

struct api_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void api_printf(struct api_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void api_printf(struct api_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap : 2048) * 2 + (size_t)n;
		char *q = realloc(b->p, cap);

		if (!q) {
			b->oom = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
}

/* A label value: printable ASCII, with \ and " escaped (Prometheus's
 * text format); anything else becomes '?'. */
static void api_label(struct api_buf *b, const char *s, size_t max)
{
	char out[API_METRICS_ID * 2 + 1];
	size_t o = 0;

	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\' || c == '"')
			out[o++] = '\\';
		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[o] = 0;
	api_printf(b, "%s", out);
}

static const char *const api_exit_names[API_EXIT_NR] = {
	[API_EXIT_IO] = "io", [API_EXIT_MMIO] = "mmio", [API_EXIT_INTR] = "intr",
	[API_EXIT_HLT] = "hlt", [API_EXIT_SHUTDOWN] = "shutdown",
	[API_EXIT_SYSTEM_EVENT] = "system_event", [API_EXIT_OTHER] = "other",
};

static void api_head(struct api_buf *b, const char *name, const char *type, const char *help)
{
	api_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

#define API_DEV_METRIC(b, arr, nr, label, name, help, field)                    \
	do {                                                                    \
		api_head(b, name, "counter", help);                             \
		for (unsigned i_ = 0; i_ < (nr); i_++) {                        \
			api_printf(b, "%s{%s=\"", name, label);                  \
			api_label(b, (arr)[i_].id, sizeof((arr)[i_].id));         \
			api_printf(b, "\"} %llu\n",                              \
				   (unsigned long long)(arr)[i_].field);        \
		}                                                               \
	} while (0)

char *api_metrics_text(const struct api_metrics *m)
{
	struct api_buf b = { NULL, 0, 0, false };
	unsigned nd = m->nr_disks > API_METRICS_DEVS ? API_METRICS_DEVS : m->nr_disks;
	unsigned nn = m->nr_nets > API_METRICS_DEVS ? API_METRICS_DEVS : m->nr_nets;

	api_head(&b, "vireo_vcpu_exits_total", "counter",
		 "Exits from KVM_RUN to vireo-vmm, by vCPU and reason.");
	for (unsigned v = 0; v < m->nr_vcpus && m->vcpu; v++)
		for (unsigned e = 0; e < API_EXIT_NR; e++)
			api_printf(&b, "vireo_vcpu_exits_total{vcpu=\"%u\",reason=\"%s\"} %llu\n", v,
				   api_exit_names[e], (unsigned long long)m->vcpu[v].exits[e]);
	api_head(&b, "vireo_vcpu_run_seconds_total", "counter",
		 "Time each vCPU spent inside KVM_RUN.");
	for (unsigned v = 0; v < m->nr_vcpus && m->vcpu; v++)
		api_printf(&b, "vireo_vcpu_run_seconds_total{vcpu=\"%u\"} %llu.%09llu\n", v,
			   (unsigned long long)(m->vcpu[v].run_ns / 1000000000u),
			   (unsigned long long)(m->vcpu[v].run_ns % 1000000000u));
	API_DEV_METRIC(&b, m->disk, nd, "disk", "vireo_disk_read_bytes_total",
		       "Bytes the guest read from the disk.", read_bytes);
	API_DEV_METRIC(&b, m->disk, nd, "disk", "vireo_disk_read_ops_total",
		       "Read requests completed.", read_ops);
	API_DEV_METRIC(&b, m->disk, nd, "disk", "vireo_disk_written_bytes_total",
		       "Bytes the guest wrote to the disk.", write_bytes);
	API_DEV_METRIC(&b, m->disk, nd, "disk", "vireo_disk_write_ops_total",
		       "Write requests completed.", write_ops);
	API_DEV_METRIC(&b, m->net, nn, "nic", "vireo_net_rx_bytes_total",
		       "Bytes delivered to the guest.", rx_bytes);
	API_DEV_METRIC(&b, m->net, nn, "nic", "vireo_net_rx_packets_total",
		       "Frames delivered to the guest.", rx_packets);
	API_DEV_METRIC(&b, m->net, nn, "nic", "vireo_net_tx_bytes_total",
		       "Bytes the guest sent.", tx_bytes);
	API_DEV_METRIC(&b, m->net, nn, "nic", "vireo_net_tx_packets_total",
		       "Frames the guest sent.", tx_packets);
	if (m->balloon) {
		api_head(&b, "vireo_balloon_target_bytes", "gauge",
			 "Memory the guest is asked to hold in the balloon.");
		api_printf(&b, "vireo_balloon_target_bytes %llu\n",
			   (unsigned long long)m->balloon_target_bytes);
		api_head(&b, "vireo_balloon_actual_bytes", "gauge",
			 "Memory the guest's balloon driver says it holds.");
		api_printf(&b, "vireo_balloon_actual_bytes %llu\n",
			   (unsigned long long)m->balloon_actual_bytes);
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

static void api_get_metrics(const struct api_ctx *c, struct api_reply *r)
{
	struct api_metrics *m = calloc(1, sizeof(*m));
	int e;

	if (!m) {
		api_error(r, 500, "out of memory");
		return;
	}
	e = c->ops->metrics(c->opaque, m);
	if (e) {
		api_op_error(r, e, "GET /metrics");
	} else {
		r->status = 200;
		r->text = api_metrics_text(m);
		if (!r->text)
			api_error(r, 500, "out of memory");
	}
	free(m->vcpu);
	free(m);
}

const char *api_content_type(const char *path, unsigned status)
{
	if (status == 200 && path && !strcmp(path, "/metrics"))
		return "text/plain; version=0.0.4; charset=utf-8";
	return "application/json";
}

/* The endpoints: a path and the methods it takes. */
enum api_ep {
	EP_VM, EP_PAUSE, EP_RESUME, EP_SHUTDOWN, EP_POWEROFF, EP_BALLOON, EP_SAVE,
	EP_SNAPSHOT, EP_METRICS, EP_MIGRATE, EP_NONE
};
static const struct {
	const char *path;
	bool get, put, del;
} api_eps[] = {
	[EP_VM] = { "/vm", true, false, false },
	[EP_PAUSE] = { "/vm/pause", false, true, false },
	[EP_RESUME] = { "/vm/resume", false, true, false },
	[EP_SHUTDOWN] = { "/vm/shutdown", false, true, false },
	[EP_POWEROFF] = { "/vm/poweroff", false, true, false },
	[EP_BALLOON] = { "/vm/balloon", true, true, false },
	[EP_SAVE] = { "/vm/save", false, true, false },
	[EP_SNAPSHOT] = { "/vm/snapshot", false, true, false },
	[EP_METRICS] = { "/metrics", true, false, false },
	[EP_MIGRATE] = { "/migrate", true, true, true },
};

void api_handle(const struct api_ctx *c, const char *method, const char *path,
		const char *body, size_t len, unsigned *status, char **response)
{
	struct api_reply r = { 0, NULL };
	enum api_ep ep = EP_NONE;
	bool get, put, del;

	if (!body)
		len = len > API_BODY_MAX ? len : 0;
	for (unsigned i = 0; i < EP_NONE && path; i++)
		if (!strcmp(path, api_eps[i].path))
			ep = (enum api_ep)i;
	get = method && !strcmp(method, "GET");
	put = method && !strcmp(method, "PUT");
	del = method && !strcmp(method, "DELETE");
	if (ep == EP_NONE) {
		api_error(&r, 404, "no such path");
	} else if (!(get && api_eps[ep].get) && !(put && api_eps[ep].put) &&
		   !(del && api_eps[ep].del)) {
		api_error(&r, 405, api_eps[ep].del ? "use GET, PUT or DELETE"
				   : api_eps[ep].get && api_eps[ep].put ? "use GET or PUT"
				   : api_eps[ep].get ? "use GET" : "use PUT");
	} else if (len > API_BODY_MAX) {
		api_error(&r, 413, "the body is too large (at most 64 KiB)");
	} else if (get && len && !api_blank(body, len)) {
		api_error(&r, 400, "GET takes no body");
	} else {
		switch (ep) {
		case EP_VM: api_get_vm(c, &r); break;
		case EP_PAUSE: api_action(c, &r, body, len, c->ops->pause, "pause"); break;
		case EP_RESUME: api_action(c, &r, body, len, c->ops->resume, "resume"); break;
		case EP_SHUTDOWN:
			api_action(c, &r, body, len, c->ops->shutdown, "shutdown");
			break;
		case EP_BALLOON:
			if (get)
				api_get_balloon(c, &r);
			else
				api_put_balloon(c, &r, body, len);
			break;
		case EP_POWEROFF:
			api_action(c, &r, body, len, c->ops->poweroff, "poweroff");
			break;
		case EP_SAVE: api_put_save(c, &r, body, len); break;
		case EP_SNAPSHOT: api_put_snapshot(c, &r, body, len); break;
		case EP_METRICS: api_get_metrics(c, &r); break;
		case EP_MIGRATE:
			if (get)
				api_get_migrate(c, &r);
			else if (put)
				api_put_migrate(c, &r, body, len);
			else
				api_delete_migrate(c, &r, body, len);
			break;
		default: break;
		}
	}
	if (!r.status)
		api_error(&r, 500, "no answer");
	*status = r.status;
	*response = r.text;
}
