/*
 * vireo's volume verbs that move data (vireo(1)): vol-clone, vol-resize,
 * vol-upload and vol-download, and the progress line that long
 * operations show when stdout is a terminal (clone, save, vol-clone,
 * vol-upload, vol-download).
 *
 * vol-upload and vol-download stream: the file's bytes go over the
 * connection as they are read (PUT .../data with "Expect: 100-continue",
 * so that vireod refuses a bad size before any is sent), and the
 * volume's come back into the file as they arrive.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <vireo/util.h>

#include "httpc.h"
#include "vireo.h"

#define XFER_CHUNK   (256 * 1024)
#define HEAD_MAX     16384
#define ERR_BODY_MAX (64 * 1024)
#define LONG_CALL_MS (24 * 60 * 60 * 1000)

/* ---- the progress line ------------------------------------------------------- */

void progress_show(const char *label, uint64_t done, uint64_t total)
{
	int pct = total ? (int)(done >= total ? 100 : done * 100 / total) : 0;
	char bar[31];

	for (int i = 0; i < 30; i++)
		bar[i] = i < pct * 30 / 100 ? '#' : ' ';
	bar[30] = '\0';
	printf("\r%s [%s] %3d%% (%" PRIu64 "/%" PRIu64 " MiB)   ", label, bar, pct, done >> 20,
	       total >> 20);
	fflush(stdout);
}

void progress_clear(void)
{
	printf("\r%78s\r", "");
	fflush(stdout);
}

struct long_call {
	const char *method, *path, *body;
	char *resp;
	int rc;
	volatile bool done;
};

static void *long_thread(void *arg)
{
	struct long_call *c = arg;

	c->rc = call_timeout(c->method, c->path, c->body, LONG_CALL_MS, &c->resp);
	c->done = true;
	return NULL;
}

/* One poll of @poll_path ({"done": N, "total": N}); quietly nothing when
 * it has no operation (yet, or any more). */
static void progress_poll(const char *poll_path, const char *label)
{
	char err[256], *r = NULL;
	int status = 0;

	if (vconn_request(&vireod_at, "GET", poll_path, NULL, 2000, &status, &r, err, sizeof(err)) ||
	    status != 200) {
		free(r);
		return;
	}
	json_object *o = json_tokener_parse(r), *d, *t;
	if (o && json_object_object_get_ex(o, "done", &d) && json_object_object_get_ex(o, "total", &t)) {
		int64_t done = json_object_get_int64(d), total = json_object_get_int64(t);
		if (done >= 0 && total > 0)
			progress_show(label, (uint64_t)done, (uint64_t)total);
	}
	json_object_put(o);
	free(r);
}

int call_progress(const char *method, const char *path, const char *body, char **resp,
		  const char *poll_path, const char *label)
{
	struct long_call c = { .method = method, .path = path, .body = body };
	pthread_t t;

	if (poll_path && isatty(STDOUT_FILENO) && pthread_create(&t, NULL, long_thread, &c) == 0) {
		bool shown = false;
		while (!c.done) {
			struct timespec ts = { 0, 200 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			if (!c.done) {
				progress_poll(poll_path, label);
				shown = true;
			}
		}
		pthread_join(t, NULL);
		if (shown)
			progress_clear();
	} else {
		long_thread(&c);
	}
	if (resp)
		*resp = c.resp;
	else
		free(c.resp);
	return c.rc;
}

/* ---- streaming over a raw connection ------------------------------------------- */

/* Read an answer's head (through the blank line) into @buf; the bytes
 * after it stay in buf[*head..*have).  0, or -1 when the connection ends
 * or the head is too long. */
static int read_head(struct vconn *c, char *buf, size_t *have, size_t *head)
{
	for (;;) {
		buf[*have] = '\0';
		char *e = strstr(buf, "\r\n\r\n");
		if (e) {
			*head = (size_t)(e - buf) + 4;
			return 0;
		}
		if (*have >= HEAD_MAX)
			return -1;
		ssize_t n = vconn_read(c, buf + *have, HEAD_MAX - *have);
		if (n <= 0)
			return -1;
		*have += (size_t)n;
	}
}

static int head_status(const char *buf)
{
	int st = 0;

	if (strncmp(buf, "HTTP/1.", 7) || sscanf(buf + 8, " %3d", &st) != 1 || st < 100 || st > 599)
		return -1;
	return st;
}

/* Content-Length of a head, or -1. */
static int64_t head_length(const char *buf, size_t head)
{
	for (const char *p = buf; p && p < buf + head; p = strstr(p, "\r\n")) {
		p += p == buf ? 0 : 2;
		if (!strncasecmp(p, "Content-Length:", 15)) {
			uint64_t v;
			char num[24];
			const char *s = p + 15;
			while (*s == ' ' || *s == '\t')
				s++;
			size_t n = strcspn(s, "\r\n \t");
			if (n == 0 || n >= sizeof(num))
				return -1;
			memcpy(num, s, n);
			num[n] = '\0';
			return vparse_u64(num, 0, INT64_MAX, &v) ? -1 : (int64_t)v;
		}
	}
	return -1;
}

/* The rest of an answer whose head is in buf[0..have): read to its end
 * (bounded), parsed, vireod's error printed.  EXIT_OK for a 2xx. */
static int finish_answer(struct vconn *c, char *buf, size_t have, const char *verb)
{
	char *all = malloc(HEAD_MAX + ERR_BODY_MAX + 1), *body = NULL, err[256];
	int status = 0;
	ssize_t n;

	if (!all) {
		fprintf(stderr, "vireo: %s: out of memory\n", verb);
		return EXIT_REFUSED;
	}
	memcpy(all, buf, have);
	while (have < HEAD_MAX + ERR_BODY_MAX &&
	       (n = vconn_read(c, all + have, HEAD_MAX + ERR_BODY_MAX - have)) > 0)
		have += (size_t)n;
	all[have] = '\0';
	if (httpc_parse_response(all, have, &status, &body, err, sizeof(err))) {
		fprintf(stderr, "vireo: %s: malformed answer from vireod: %s\n", verb, err);
		free(all);
		return EXIT_REFUSED;
	}
	free(all);
	if (status >= 200 && status < 300) {
		free(body);
		return EXIT_OK;
	}
	json_object *o = json_tokener_parse(body), *m;
	fprintf(stderr, "vireo: %s: %s\n", verb, o && json_object_object_get_ex(o, "error", &m) ?
		json_object_get_string(m) : "request failed");
	json_object_put(o);
	free(body);
	return EXIT_REFUSED;
}

static struct vconn *open_request(const char *verb, const char *method, const char *path,
				  const char *extra)
{
	char err[512], req[1024];
	struct vconn *c = vconn_open(&vireod_at, 10000, err, sizeof(err));

	if (!c) {
		fprintf(stderr, "vireo: cannot reach vireod: %s\n", err);
		return NULL;
	}
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: vireod\r\n%s%s"
			 "Connection: close\r\n\r\n", method, path, vconn_auth_header(&vireod_at), extra);
	if (n < 0 || (size_t)n >= sizeof(req) || vconn_write_all(c, req, (size_t)n)) {
		fprintf(stderr, "vireo: %s: cannot send to %s\n", verb, vconn_name(&vireod_at));
		vconn_close(c);
		return NULL;
	}
	return c;
}

static int upload(const char *pool, const char *vol, const char *file)
{
	char path[512], extra[160], *buf = NULL;
	struct stat sb;
	size_t have = 0, head = 0;
	int rc = EXIT_REFUSED;

	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		fprintf(stderr, "vireo: vol-upload: %s: %s\n", file, fd < 0 ? strerror(errno) :
			"not a regular file");
		if (fd >= 0)
			close(fd);
		return EXIT_USAGE;
	}
	uint64_t len = (uint64_t)sb.st_size;
	snprintf(path, sizeof(path), "/pools/%s/volumes/%s/data", pool, vol);
	snprintf(extra, sizeof(extra), "Content-Type: application/octet-stream\r\nContent-Length: %"
		 PRIu64 "\r\nExpect: 100-continue\r\n", len);
	signal(SIGPIPE, SIG_IGN);
	struct vconn *c = open_request("vol-upload", "PUT", path, extra);
	if (!c) {
		close(fd);
		return EXIT_CONNECT;
	}
	buf = malloc(XFER_CHUNK > HEAD_MAX + 1 ? XFER_CHUNK : HEAD_MAX + 1);
	if (!buf)
		goto out;
	/* "100 Continue", or the refusal. */
	if (read_head(c, buf, &have, &head)) {
		fprintf(stderr, "vireo: vol-upload: no answer from vireod\n");
		goto out;
	}
	if (head_status(buf) != 100) {
		rc = finish_answer(c, buf, have, "vol-upload");
		goto out;
	}
	have = 0;
	bool bar = isatty(STDOUT_FILENO);
	uint64_t sent = 0;
	while (sent < len) {
		ssize_t n = read(fd, buf, (size_t)VIREO_MIN((uint64_t)XFER_CHUNK, len - sent));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "vireo: vol-upload: %s: %s\n", file, n ? strerror(errno) :
				"shorter than it was");
			goto out;
		}
		if (vconn_write_all(c, buf, (size_t)n))
			break;   /* refused: its answer says why */
		sent += (uint64_t)n;
		if (bar)
			progress_show("Uploading", sent, len);
	}
	if (bar)
		progress_clear();
	have = 0;
	if (read_head(c, buf, &have, &head)) {
		fprintf(stderr, "vireo: vol-upload: vireod closed the connection without an answer\n");
		goto out;
	}
	rc = finish_answer(c, buf, have, "vol-upload");
	if (rc == EXIT_OK && sent != len)
		rc = EXIT_REFUSED;
	if (rc == EXIT_OK)
		printf("Vol %s: %" PRIu64 " bytes uploaded from %s\n", vol, len, file);
out:
	free(buf);
	vconn_close(c);
	close(fd);
	return rc;
}

static bool zero_chunk(const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static int download(const char *pool, const char *vol, const char *file)
{
	char path[512], *buf = NULL;
	size_t have = 0, head = 0;
	int rc = EXIT_REFUSED, fd = -1;

	snprintf(path, sizeof(path), "/pools/%s/volumes/%s/data", pool, vol);
	struct vconn *c = open_request("vol-download", "GET", path, "");
	if (!c)
		return EXIT_CONNECT;
	buf = malloc(XFER_CHUNK > HEAD_MAX + 1 ? XFER_CHUNK : HEAD_MAX + 1);
	if (!buf)
		goto out;
	if (read_head(c, buf, &have, &head)) {
		fprintf(stderr, "vireo: vol-download: no answer from vireod\n");
		goto out;
	}
	if (head_status(buf) != 200) {
		rc = finish_answer(c, buf, have, "vol-download");
		goto out;
	}
	int64_t len = head_length(buf, head);
	if (len < 0) {
		fprintf(stderr, "vireo: vol-download: vireod's answer has no Content-Length\n");
		goto out;
	}
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "vireo: vol-download: %s: %s\n", file, strerror(errno));
		rc = EXIT_USAGE;
		goto out;
	}
	bool bar = isatty(STDOUT_FILENO);
	uint64_t got = 0, total = (uint64_t)len;
	have -= head;
	memmove(buf, buf + head, have);
	for (;;) {
		size_t n = (size_t)VIREO_MIN((uint64_t)have, total - got);
		/* Zeros become a hole (the file's size is set at the end). */
		if (n && (zero_chunk(buf, n) ? lseek(fd, (off_t)n, SEEK_CUR) < 0 :
			  vio_write_full(fd, buf, n) != 0)) {
			fprintf(stderr, "vireo: vol-download: %s: %s\n", file, strerror(errno));
			goto out;
		}
		got += n;
		if (bar && n)
			progress_show("Downloading", got, total);
		if (got == total)
			break;
		ssize_t r = vconn_read(c, buf, XFER_CHUNK);
		if (r <= 0)
			break;
		have = (size_t)r;
	}
	if (bar)
		progress_clear();
	if (got != total) {
		fprintf(stderr, "vireo: vol-download: the data stopped after %" PRIu64 " of %" PRIu64
			" bytes\n", got, total);
		goto out;
	}
	if (ftruncate(fd, (off_t)total) || fsync(fd)) {
		fprintf(stderr, "vireo: vol-download: %s: %s\n", file, strerror(errno));
		goto out;
	}
	printf("Vol %s: %" PRIu64 " bytes downloaded to %s\n", vol, total, file);
	rc = EXIT_OK;
out:
	if (fd >= 0 && close(fd) && rc == EXIT_OK) {
		fprintf(stderr, "vireo: vol-download: %s: %s\n", file, strerror(errno));
		rc = EXIT_REFUSED;
	}
	free(buf);
	vconn_close(c);
	return rc;
}

/* ---- the verbs ---------------------------------------------------------------------- */

int cmd_vol(const char *verb, int argc, char **argv, const struct vopts *vo)
{
	char path[512], poll[512], *body, *r = NULL;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "vireo: %s: use %s POOL %s\n", verb, verb,
			!strcmp(verb, "vol-clone") ? "VOL NEWVOL" :
			!strcmp(verb, "vol-resize") ? "VOL SIZE [--shrink]" : "VOL FILE");
		return EXIT_USAGE;
	}
	if (!pool_arg_ok(verb, "pool", argv[0]) || !pool_arg_ok(verb, "volume", argv[1]))
		return EXIT_USAGE;
	if (!strcmp(verb, "vol-upload"))
		return upload(argv[0], argv[1], argv[2]);
	if (!strcmp(verb, "vol-download"))
		return download(argv[0], argv[1], argv[2]);
	json_object *o = json_object_new_object();
	if (!strcmp(verb, "vol-clone")) {
		if (!pool_arg_ok(verb, "volume", argv[2])) {
			json_object_put(o);
			return EXIT_USAGE;
		}
		json_object_object_add(o, "name", json_object_new_string(argv[2]));
		body = json_body(o);
		snprintf(path, sizeof(path), "/pools/%s/volumes/%s/clone", argv[0], argv[1]);
		snprintf(poll, sizeof(poll), "/pools/%s/volumes/%s/progress", argv[0], argv[2]);
		rc = call_progress("POST", path, body, &r, poll, "Cloning");
		free(body);
		if (rc)
			return rc;
		json_object *a = json_tokener_parse(r);
		printf("Vol %s cloned from %s: %s\n", argv[2], argv[1], a ? str_field(a, "path") : "?");
		json_object_put(a);
		free(r);
		return EXIT_OK;
	}
	/* vol-resize */
	json_object_object_add(o, "capacity", json_object_new_string(argv[2]));
	if (vo->shrink)
		json_object_object_add(o, "shrink", json_object_new_boolean(true));
	body = json_body(o);
	snprintf(path, sizeof(path), "/pools/%s/volumes/%s/resize", argv[0], argv[1]);
	rc = call("POST", path, body, NULL);
	free(body);
	if (!rc)
		printf("Size of volume '%s' successfully changed to %s\n", argv[1], argv[2]);
	return rc;
}
