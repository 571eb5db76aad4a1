/* A minimal HTTP/1.1 client over a Unix socket (httpc.h). */
#include "httpc.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for @events on @fd until @deadline; 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* Decode a chunked body in place; returns its length or -1. */
static long dechunk(char *b, size_t len)
{
	size_t in = 0, out = 0;

	for (;;) {
		char *end;
		unsigned long sz;

		if (in >= len)
			return -1;
		errno = 0;
		sz = strtoul(b + in, &end, 16);
		if (end == b + in || errno || sz > len)
			return -1;
		char *crlf = memmem(end, len - (size_t)(end - b), "\r\n", 2);
		if (!crlf)
			return -1;
		in = (size_t)(crlf - b) + 2;
		if (sz == 0)
			return (long)out;
		if (in + sz + 2 > len)
			return -1;
		memmove(b + out, b + in, sz);
		out += sz;
		in += sz + 2;
	}
}

int httpc_parse_response(char *buf, size_t have, int *status, char **resp, char *err,
			 size_t errlen)
{
	*resp = NULL;
	char *hend = memmem(buf, have, "\r\n\r\n", 4);
	int code;
	if (!hend || memchr(buf, '\0', (size_t)(hend - buf)) ||
	    sscanf(buf, "HTTP/1.%*d %3d", &code) != 1 || code < 100 || code > 599) {
		snprintf(err, errlen, "malformed answer");
		return -EIO;
	}
	*hend = '\0';
	char *bstart = hend + 4;
	size_t bl = have - (size_t)(bstart - buf);
	bool chunked = false;
	long clen = -1;
	for (char *line = strstr(buf, "\r\n"); line; line = strstr(line, "\r\n")) {
		line += 2;
		if (!strncasecmp(line, "Content-Length:", 15))
			clen = strtol(line + 15, NULL, 10);
		else if (!strncasecmp(line, "Transfer-Encoding:", 18) && strcasestr(line, "chunked"))
			chunked = true;
	}
	if (chunked) {
		long d = dechunk(bstart, bl);
		if (d < 0) {
			snprintf(err, errlen, "malformed chunked answer");
			return -EIO;
		}
		bl = (size_t)d;
	} else if (clen >= 0 && (size_t)clen < bl) {
		bl = (size_t)clen;
	} else if (clen >= 0 && (size_t)clen > bl) {
		snprintf(err, errlen, "truncated answer");
		return -EIO;
	}
	*resp = malloc(bl + 1);
	if (!*resp) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(*resp, bstart, bl);
	(*resp)[bl] = '\0';
	*status = code;
	return 0;
}

int httpc_request(const char *sock_path, const char *method, const char *path,
		  const char *body, int timeout_ms, int *status, char **resp,
		  char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + timeout_ms;
	char *req = NULL, *buf = NULL;
	size_t blen = body ? strlen(body) : 0, have = 0, cap = 0;
	int fd = -1, r, ret = -EIO;

	*resp = NULL;
	if (strlen(sock_path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", sock_path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return ret;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		ret = -errno;
		snprintf(err, errlen, "cannot connect to %s: %s", sock_path, strerror(errno));
		goto out;
	}
	int rl = asprintf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			  "%sContent-Length: %zu\r\n\r\n%s", method, path,
			  body ? "Content-Type: application/json\r\n" : "", blen, body ? body : "");
	if (rl < 0) {
		req = NULL;
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t off = 0; off < (size_t)rl;) {
		ssize_t n = send(fd, req + off, (size_t)rl - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == ENOTCONN)) {
			if ((r = wait_fd(fd, POLLOUT, deadline))) {
				ret = r;
				snprintf(err, errlen, "%s: %s", sock_path, strerror(-r));
				goto out;
			}
			continue;
		}
		ret = n < 0 ? -errno : -EIO;
		snprintf(err, errlen, "cannot send to %s: %s", sock_path, strerror(-ret));
		goto out;
	}
	for (;;) {
		if (cap - have < 4096) {
			size_t ncap = cap ? cap * 2 : 8192;
			if (ncap > HTTPC_MAX_RESPONSE + 1) {
				ret = -EFBIG;
				snprintf(err, errlen, "answer larger than %u bytes", HTTPC_MAX_RESPONSE);
				goto out;
			}
			char *nb = realloc(buf, ncap);
			if (!nb) {
				ret = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t n = recv(fd, buf + have, cap - have - 1, 0);
		if (n > 0) {
			have += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			if ((r = wait_fd(fd, POLLIN, deadline))) {
				ret = r;
				snprintf(err, errlen, "no answer from %s within %d ms", sock_path, timeout_ms);
				goto out;
			}
			continue;
		}
		ret = -errno;
		snprintf(err, errlen, "cannot read from %s: %s", sock_path, strerror(errno));
		goto out;
	}
	if (!buf) {
		snprintf(err, errlen, "%s closed the connection without an answer", sock_path);
		goto out;
	}
	buf[have] = '\0';
	ret = httpc_parse_response(buf, have, status, resp, err, errlen);
	if (ret == -EIO)
		snprintf(err + strlen(err), errlen - strlen(err), " from %s", sock_path);
out:
	free(req);
	free(buf);
	close(fd);
	return ret;
}
