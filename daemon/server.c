/*
 * vireod's HTTP/1.1 server (server.h): libmicrohttpd with a thread per
 * connection, so that a slow request (a start waiting for vireo-vmm, a
 * destroy waiting for its end) holds up only its own client; requests on
 * one VM are serialised by the VM's operation lock (vm.c).  Bodies are
 * capped at API_MAX_BODY (413), headers and URL by the connection memory
 * limit, connections by count.
 */
#include "vmdef.h"
#include "server.h"

#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include <vireo/util.h>

#include "api.h"
#include "console.h"
#include "pool.h"
#include "vm.h"

#define MAX_CONNECTIONS 128
#define HEARTBEAT_MS    15000

static struct MHD_Daemon *mhd;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static volatile bool quiescing;

struct conn {
	char *body;
	size_t len;
	bool too_big;
	/* PUT API_VOL_DATA_PATH: the upload, streamed to pool.c */
	bool upload;
	struct pool_xfer *xfer;
	int xfer_failed;
	char xfer_err[512];
};

struct evstream {
	unsigned long long after;
	char *pending;
	size_t off, len;
};

static enum MHD_Result respond(struct MHD_Connection *c, int status, char *json, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (json) {
		r = MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
	} else {
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	if (!r) {
		free(json);
		return MHD_NO;
	}
	if (json)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result respond_error(struct MHD_Connection *c, int status, const char *msg)
{
	char *j = NULL;

	if (asprintf(&j, "{\"error\":\"%s\"}", msg) < 0)
		j = NULL;
	return respond(c, status, j, NULL);
}

/* {"error": MSG} (api_error_json: the message may hold quotes). */
static enum MHD_Result respond_msg(struct MHD_Connection *c, int status, const char *msg)
{
	return respond(c, status, api_error_json(msg), NULL);
}

/* ---- a volume's data (pool.h), streamed both ways ---- */

/* The first call of PUT API_VOL_DATA_PATH: the size is checked and the
 * volume opened before any byte is taken (a client that sent "Expect:
 * 100-continue" sends none when refused). */
static enum MHD_Result upload_begin(struct MHD_Connection *c, struct conn *cs, const char *pool,
				    const char *vol)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	char err[512];
	uint64_t n;

	cs->upload = true;
	if (!cl)
		return respond_msg(c, 411, "an upload needs a Content-Length (checked against the "
				   "volume's capacity)");
	if (vparse_u64(cl, 0, UINT64_MAX, &n))
		return respond_msg(c, 400, "Content-Length: not a byte count");
	int s = pool_upload_begin(pool, vol, n, &cs->xfer, err, sizeof(err));
	if (s != 200)
		return respond_msg(c, s, err);
	return MHD_YES;
}

static enum MHD_Result upload_data(struct MHD_Connection *c, struct conn *cs, const char *data,
				   size_t *size)
{
	if (*size) {
		if (!cs->xfer_failed && cs->xfer)
			cs->xfer_failed = pool_upload_write(cs->xfer, data, *size, cs->xfer_err,
							    sizeof(cs->xfer_err));
		*size = 0;
		return MHD_YES;
	}
	if (!cs->xfer)
		return respond_msg(c, 500, "the upload was not started");
	struct pool_xfer *x = cs->xfer;
	cs->xfer = NULL;
	if (cs->xfer_failed) {
		pool_xfer_free(x);
		return respond_msg(c, cs->xfer_failed, cs->xfer_err);
	}
	int s = pool_upload_end(x, cs->xfer_err, sizeof(cs->xfer_err));
	return s == 204 ? respond(c, 204, NULL, NULL) : respond_msg(c, s, cs->xfer_err);
}

static ssize_t dl_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	ssize_t n = pool_download_read(cls, pos, buf, max);

	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n ? n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void dl_free(void *cls)
{
	pool_xfer_free(cls);
}

/*
 * A 200 whose body READ produces (SIZE bytes, or MHD_SIZE_UNKNOWN) in
 * blocks of BLOCK, of TYPE; FREE(cls) when it is done, or at once when
 * the response cannot be made.
 */
static enum MHD_Result respond_stream(struct MHD_Connection *c, uint64_t size, size_t block,
				      MHD_ContentReaderCallback read, void *cls,
				      MHD_ContentReaderFreeCallback free_cls, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_callback(size, block, read, cls, free_cls);
	if (!r) {
		free_cls(cls);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result serve_download(struct MHD_Connection *c, const char *pool, const char *vol)
{
	struct pool_xfer *x = NULL;
	char err[512];
	uint64_t size = 0;

	int s = pool_download_begin(pool, vol, &x, &size, err, sizeof(err));
	if (s != 200)
		return respond_msg(c, s, err);
	return respond_stream(c, size, 256 * 1024, dl_read, x, dl_free, "application/octet-stream");
}

static ssize_t ev_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct evstream *e = cls;

	(void)pos;
	while (e->off == e->len) {
		free(e->pending);
		e->pending = NULL;
		e->off = e->len = 0;
		if (quiescing)
			return MHD_CONTENT_READER_END_OF_STREAM;
		e->pending = vms_events_wait(e->after, HEARTBEAT_MS, &e->after);
		if (quiescing)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (!e->pending)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		e->len = strlen(e->pending);
		if (e->len == 0 && max > 0) {
			buf[0] = '\n';   /* heartbeat: an empty line */
			return 1;
		}
	}
	size_t n = VIREO_MIN(max, e->len - e->off);
	memcpy(buf, e->pending + e->off, n);
	e->off += n;
	return (ssize_t)n;
}

static void ev_free(void *cls)
{
	struct evstream *e = cls;

	free(e->pending);
	free(e);
}

static enum MHD_Result serve_events(struct MHD_Connection *c)
{
	const char *after = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
	struct evstream *e = calloc(1, sizeof(*e));
	uint64_t a;

	if (!e)
		return MHD_NO;
	if (after) {
		if (vparse_u64(after, 0, UINT64_MAX, &a)) {
			free(e);
			return respond_error(c, 400, "after: must be an event sequence number");
		}
		e->after = a;
	} else {
		e->after = vms_events_last();
	}
	return respond_stream(c, MHD_SIZE_UNKNOWN, 4096, ev_read, e, ev_free, "application/x-ndjson");
}

/* ---- the interactive console (console.h): an upgraded connection ---- */

struct console_req {
	char name[VMDEF_NAME_MAX + 1];
	bool write;
};

static void console_closer(void *handle)
{
	MHD_upgrade_action(handle, MHD_UPGRADE_ACTION_CLOSE);
}

static void on_upgrade(void *cls, struct MHD_Connection *c, void *req_cls, const char *extra,
		       size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct console_req *cr = cls;

	(void)req_cls;
	/* Over TLS (tls.c) @sock is one end of libmicrohttpd's socket pair,
	 * which stays open when the client goes: its own socket is watched
	 * too (console.h). */
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	int peer = ci && ci->connect_fd != sock ? ci->connect_fd : -1;
	if (console_attach(cr->name, sock, urh, peer, cr->write, extra, extra_len))
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
	free(cr);
}

/* POST /vms/NAME/console with "Upgrade: vireo-console": 101, then the
 * connection carries the console's bytes both ways. */
static bool console_path(const char *url, char name[VMDEF_NAME_MAX + 1])
{
	if (strncmp(url, "/vms/", 5))
		return false;
	const char *n = url + 5, *slash = strchr(n, '/');
	if (!slash || strcmp(slash, "/console") || (size_t)(slash - n) > VMDEF_NAME_MAX)
		return false;
	memcpy(name, n, (size_t)(slash - n));
	name[slash - n] = '\0';
	return vmdef_name_ok(name);
}

static enum MHD_Result serve_console(struct MHD_Connection *c, const char *name)
{
	const char *ro = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "readonly");
	char err[256];
	bool want_write = true;

	if (ro && (!strcmp(ro, "true") || !strcmp(ro, "1")))
		want_write = false;
	else if (ro && strcmp(ro, "false") && strcmp(ro, "0"))
		return respond_error(c, 400, "readonly: use true or false");
	int st = 0;
	char *info = vm_info_json(name, &st);
	free(info);
	if (st == 404) {
		snprintf(err, sizeof(err), "no VM named '%s'", name);
		return respond_error(c, 404, err);
	}
	int s = console_check(name, want_write, err, sizeof(err));
	if (s)
		return respond_error(c, s, err);
	struct console_req *cr = calloc(1, sizeof(*cr));
	if (!cr)
		return MHD_NO;
	snprintf(cr->name, sizeof(cr->name), "%s", name);
	cr->write = want_write;
	struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgrade, cr);
	if (!r) {
		free(cr);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, API_CONSOLE_PROTOCOL);
	MHD_add_response_header(r, "Vireo-Console-Mode", want_write ? "read-write" : "read-only");
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct conn *cs = *con_cls;

	(void)cls;
	(void)version;
	if (!cs) {
		cs = calloc(1, sizeof(*cs));
		if (!cs)
			return MHD_NO;
		*con_cls = cs;
		char pool[API_CAP_MAX], vol[API_CAP_MAX];
		if (!strcmp(method, "PUT") && api_vol_data_path(url, pool, vol))
			return upload_begin(c, cs, pool, vol);
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		uint64_t n;
		if (cl && (vparse_u64(cl, 0, UINT64_MAX, &n) || n > API_MAX_BODY)) {
			cs->too_big = true;
			return respond_error(c, 413, "the body is larger than 64 KiB");
		}
		return MHD_YES;
	}
	if (cs->upload)
		return upload_data(c, cs, upload, upload_size);
	if (*upload_size) {
		if (!cs->too_big && cs->len + *upload_size <= API_MAX_BODY) {
			char *nb = realloc(cs->body, cs->len + *upload_size + 1);
			if (!nb)
				return MHD_NO;
			cs->body = nb;
			memcpy(cs->body + cs->len, upload, *upload_size);
			cs->len += *upload_size;
			cs->body[cs->len] = '\0';
		} else if (!cs->too_big) {
			cs->too_big = true;
			free(cs->body);
			cs->body = NULL;
			cs->len = 0;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (cs->too_big)
		return respond_error(c, 413, "the body is larger than 64 KiB");
	if (!strcmp(url, API_EVENTS_PATH) && !strcmp(method, "GET"))
		return serve_events(c);
	char dpool[API_CAP_MAX], dvol[API_CAP_MAX];
	if (!strcmp(method, "GET") && api_vol_data_path(url, dpool, dvol)) {
		if (cs->len)
			return respond_msg(c, 400, "GET of a volume's data takes no body");
		return serve_download(c, dpool, dvol);
	}
	const char *up = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);
	char cname[VMDEF_NAME_MAX + 1];
	if (up && !strcasecmp(up, API_CONSOLE_PROTOCOL) && !strcmp(method, "POST") &&
	    console_path(url, cname) && cs->len == 0)
		return serve_console(c, cname);
	struct api_req req = {
		.method = method,
		.path = url,
		.force = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "force"),
		.body = cs->body ? cs->body : "",
		.body_len = cs->len,
	};
	char *resp = NULL;
	const char *allow = NULL;
	int status = api_dispatch(&req, &resp, &allow);
	return respond(c, status, resp, allow);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn *cs = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (cs) {
		pool_xfer_free(cs->xfer);
		free(cs->body);
		free(cs);
		*con_cls = NULL;
	}
}

int server_start(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path too long (at most %zu bytes): %s",
			 sizeof(sa.sun_path) - 1, path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(err, errlen, "%s is in use (another vireod?)", path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);   /* stale: no one listens */
	}
	/* The socket's directory (/run/vireo by default). */
	char dir[sizeof(sa.sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST) {
			snprintf(err, errlen, "cannot make %s: %s", dir, strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Root and the group vireo only (before listen: no one connects sooner). */
	struct group *g = getgrnam("vireo");
	if ((g && chown(path, (uid_t)-1, g->gr_gid)) || chmod(path, 0660)) {
		snprintf(err, errlen, "cannot set the owner or mode of %s: %s", path, strerror(errno));
		goto fail;
	}
	if (listen(fd, 64)) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		goto fail;
	}
	snprintf(sock_path, sizeof(sock_path), "%s", path);
	console_set_closer(console_closer);
	mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
			       MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE,
			       0, NULL, NULL, on_request, NULL,
			       MHD_OPTION_LISTEN_SOCKET, fd,
			       MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
			       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
			       MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
			       MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
			       MHD_OPTION_END);
	if (!mhd) {
		snprintf(err, errlen, "cannot start the HTTP server on %s", path);
		unlink(path);
		close(fd);
		return -1;
	}
	return 0;
fail:
	unlink(path);
	close(fd);
	return -1;
}

void server_quiesce(void)
{
	quiescing = true;
}

void server_stop(void)
{
	if (!mhd)
		return;
	quiescing = true;
	/* Stop taking connections, then wait for those under way. */
	MHD_socket fd = MHD_quiesce_daemon(mhd);
	MHD_stop_daemon(mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	mhd = NULL;
	unlink(sock_path);
}

enum MHD_Result server_handle_request(void *cls, struct MHD_Connection *c, const char *url,
				      const char *method, const char *version,
				      const char *upload, size_t *upload_size, void **con_cls)
{
	return on_request(cls, c, url, method, version, upload, upload_size, con_cls);
}

void server_request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	on_completed(cls, c, con_cls, toe);
}
