/*
 * vireod's REST API: the route table and the dispatcher from method, path,
 * query and body to a status and a JSON answer (docs/vireod-api.yaml).
 * server.c carries it over HTTP on the Unix socket.
 */
#ifndef VIREO_DAEMON_API_H
#define VIREO_DAEMON_API_H

#include <stdbool.h>
#include <stddef.h>

#define API_MAX_BODY VMDEF_MAX_JSON

struct api_route {
	const char *method;
	const char *pattern;    /* "{name}" stands for a VM's name, "{pool}" and
	                         * "{volume}" for a pool's and a volume's,
	                         * "{snapshot}" for a snapshot's */
};

/* Every route the daemon serves (docs/vireod-api.yaml has each). */
extern const struct api_route api_routes[];
extern const size_t api_nroutes;

struct api_req {
	const char *method;
	const char *path;
	const char *force;      /* ?force= (DELETE /vms/{name}), or NULL */
	const char *body;
	size_t body_len;
};

/* The interactive console: POST with "Upgrade: vireo-console" (server.c
 * hands the connection to console.c; ?readonly=true for a reader). */
#define API_CONSOLE_PATH "/vms/{name}/console"
#define API_CONSOLE_PROTOCOL "vireo-console"

/* A volume's bytes: PUT uploads (Content-Length bytes, at most the
 * volume's capacity), GET downloads; server.c streams both through pool.h. */
#define API_VOL_DATA_PATH "/pools/{pool}/volumes/{volume}/data"
/* The longest path segment a route's "{...}" takes, plus its NUL. */
#define API_CAP_MAX 160
/* Whether @path is API_VOL_DATA_PATH, with its pool and volume. */
bool api_vol_data_path(const char *path, char pool[API_CAP_MAX], char vol[API_CAP_MAX]);

/* The path of the event stream (server.c serves it itself). */
#define API_EVENTS_PATH "/events"

/* {"error": MSG} as malloc'd JSON (json-c quotes MSG), NULL without memory. */
char *api_error_json(const char *msg);

/*
 * Handle one request: returns the HTTP status, with a malloc'd JSON answer
 * in *resp (NULL for 204), and sets *allow for a 405 (the methods the path
 * takes).  Errors answer {"error": "..."}.
 */
int api_dispatch(const struct api_req *req, char **resp, const char **allow);

#endif
