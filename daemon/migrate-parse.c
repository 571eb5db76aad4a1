/* The pure parts of vireod's live migration (migrate.h): its request
 * bodies, untrusted (fuzz/fuzz_vireod_migrate.c). */
#include "json-whole.h"
#include "migrate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include <vireo/util.h>

VIREO_PRINTF(4, 5)
static int perr(int status, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return status;
}

/* A JSON object (NULL with a message in @err if not). */
static json_object *body_object(const char *body, size_t len, int *status, char *err,
				size_t errlen)
{
	if (!body || !len || len > INT32_MAX || memchr(body, '\0', len)) {
		*status = perr(400, err, errlen, "the body must be a JSON object");
		return NULL;
	}
	struct json_tokener *tok = json_tokener_new_ex(16);
	if (!tok) {
		*status = perr(500, err, errlen, "out of memory");
		return NULL;
	}
	json_object *o = json_tokener_parse_ex(tok, body, (int)len);
	bool ok = o && json_tokener_get_error(tok) == json_tokener_success &&
		  json_rest_blank(tok, body, len) && json_object_is_type(o, json_type_object);
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(o);
		*status = perr(400, err, errlen, "the body must be a JSON object");
		return NULL;
	}
	return o;
}

int migrate_parse_incoming(const char *body, size_t len, struct vmdef *def,
			   char listen[MIGRATE_LISTEN_MAX + 1], char *err, size_t errlen)
{
	json_object *o, *d = NULL;
	struct in_addr addr;
	int status = 0;
	char e[512];

	snprintf(listen, MIGRATE_LISTEN_MAX + 1, "127.0.0.1");
	if (!(o = body_object(body, len, &status, err, errlen)))
		return status;
	json_object_object_foreach(o, key, v) {
		if (!strcmp(key, "definition") && json_object_is_type(v, json_type_object)) {
			d = v;
		} else if (!strcmp(key, "listen") && json_object_is_type(v, json_type_string) &&
			   json_object_get_string_len(v) <= MIGRATE_LISTEN_MAX) {
			snprintf(listen, MIGRATE_LISTEN_MAX + 1, "%s", json_object_get_string(v));
		} else {
			status = perr(400, err, errlen, "%.60s: unknown field or wrong type (definition: "
				      "an object, listen: an IPv4 address)", key);
			json_object_put(o);
			return status;
		}
	}
	if (!d) {
		json_object_put(o);
		return perr(400, err, errlen, "definition: required (the VM's definition, with its uuid)");
	}
	const char *ds = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN);
	int r = ds ? vmdef_parse(ds, strlen(ds), def, e, sizeof(e)) : -1;
	json_object_put(o);
	if (!ds)
		return perr(500, err, errlen, "out of memory");
	if (r)
		return perr(400, err, errlen, "definition: %s", e);
	if (!def->uuid[0])
		return perr(400, err, errlen, "definition: uuid: required (the VM keeps its uuid)");
	if (inet_pton(AF_INET, listen, &addr) != 1)
		return perr(400, err, errlen, "listen: '%.60s' is not a numeric IPv4 address", listen);
	return 0;
}

static bool uri_ok(const char *u)
{
	size_t n = strlen(u);

	if (n == 0 || n > MIGRATE_URI_MAX || (strncmp(u, "tcp:", 4) && strncmp(u, "unix:", 5)))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f)
			return false;
	return true;
}

int migrate_parse_out(const char *body, size_t len, char uri[MIGRATE_URI_MAX + 1],
		      int64_t *downtime_ms, int64_t *bandwidth_mbps, char *err, size_t errlen)
{
	json_object *o;
	int status = 0;

	uri[0] = '\0';
	*downtime_ms = *bandwidth_mbps = 0;
	if (!(o = body_object(body, len, &status, err, errlen)))
		return status;
	json_object_object_foreach(o, key, v) {
		int64_t n = 0;
		errno = 0;
		if (json_object_is_type(v, json_type_int))
			n = json_object_get_int64(v);
		bool num = json_object_is_type(v, json_type_int) && !errno;
		if (!strcmp(key, "uri") && json_object_is_type(v, json_type_string) &&
		    json_object_get_string_len(v) <= MIGRATE_URI_MAX) {
			snprintf(uri, MIGRATE_URI_MAX + 1, "%s", json_object_get_string(v));
		} else if (!strcmp(key, "downtime_ms") && num && n >= 1 && n <= 60000) {
			*downtime_ms = n;
		} else if (!strcmp(key, "bandwidth_mbps") && num && n >= 1 && n <= 1000000) {
			*bandwidth_mbps = n;
		} else {
			status = perr(400, err, errlen, "%.60s: unknown field or bad value (uri: "
				      "tcp:ADDR:PORT or unix:PATH; downtime_ms: 1 to 60000; "
				      "bandwidth_mbps: 1 to 1000000)", key);
			json_object_put(o);
			return status;
		}
	}
	json_object_put(o);
	if (!uri_ok(uri))
		return perr(400, err, errlen, "uri: tcp:ADDR:PORT or unix:PATH, at most %d bytes",
			    MIGRATE_URI_MAX);
	return 0;
}
