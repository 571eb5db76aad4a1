/*
 * vireo's connection to vireod (connect.h).
 *
 * TLS with OpenSSL rather than GnuTLS: libssl is already on every host
 * that has openssl(1), which the documentation uses to make the
 * certificates, and its host name and IP address checks
 * (SSL_set1_host, X509_VERIFY_PARAM_set1_ip_asc) are one call each.
 * Verification is always on: a server whose certificate does not chain to
 * --ca (or to the system's CAs without --ca), or does not name the host,
 * is refused before anything is sent.
 *
 * libssl is loaded (dlopen) only when a tls: target is used: most runs of
 * vireo talk to the Unix socket, and mapping and relocating libssl and
 * libcrypto at every start cost more than the request itself (1-1.5 ms
 * a run, docs/notes/measurements.md).  The library is the soname of the
 * OpenSSL vireo was built against (VIREO_LIBSSL, from cli/meson.build);
 * its headers still type every call.
 */
#include "connect.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "httpc.h"

#ifndef VIREO_LIBSSL
#error "VIREO_LIBSSL (libssl's soname) comes from cli/meson.build"
#endif

/* Every OpenSSL function vireo calls, found in libssl (and, through it,
 * libcrypto) by tls_load().  Macros such as SSL_set_tlsext_host_name are
 * written out as the SSL_ctrl calls they stand for. */
#define TLS_FUNCS(X) \
	X(TLS_client_method) X(SSL_CTX_new) X(SSL_CTX_ctrl) X(SSL_CTX_set_verify) \
	X(SSL_CTX_set_options) X(SSL_CTX_load_verify_locations) \
	X(SSL_CTX_set_default_verify_paths) X(SSL_CTX_free) X(SSL_new) X(SSL_set_fd) \
	X(SSL_get0_param) X(SSL_ctrl) X(SSL_set1_host) X(SSL_connect) X(SSL_write_ex) \
	X(SSL_read_ex) X(SSL_pending) X(SSL_get_error) X(SSL_get_verify_result) X(SSL_shutdown) X(SSL_free) \
	X(X509_VERIFY_PARAM_set1_ip_asc) X(X509_verify_cert_error_string) \
	X(ERR_get_error) X(ERR_reason_error_string) X(ERR_clear_error)

static struct {
#define TLS_FN_PTR(f) __typeof__(f) *f;
	TLS_FUNCS(TLS_FN_PTR)
#undef TLS_FN_PTR
} T;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static char tls_load_err[300];

static void tls_load_once(void)
{
	void *h = dlopen(VIREO_LIBSSL, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		const char *e = dlerror();
		snprintf(tls_load_err, sizeof(tls_load_err), "TLS needs OpenSSL's %s: %s",
			 VIREO_LIBSSL, e ? e : "cannot load it");
		return;
	}
#define TLS_FN_LOAD(f) \
	if (!tls_load_err[0] && !(*(void **)&T.f = dlsym(h, #f))) \
		snprintf(tls_load_err, sizeof(tls_load_err), "TLS: %s has no %s", VIREO_LIBSSL, #f);
	TLS_FUNCS(TLS_FN_LOAD)
#undef TLS_FN_LOAD
	/* On a failure h stays loaded (and unused): vireo exits soon. */
}

/* libssl's functions in T, once per process; 0, or -1 with @err. */
static int tls_load(char *err, size_t errlen)
{
	pthread_once(&tls_once, tls_load_once);
	if (tls_load_err[0]) {
		snprintf(err, errlen, "%s", tls_load_err);
		return -1;
	}
	return 0;
}

struct vconn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

int vconn_parse(const char *spec, struct vconn_target *t, char *err, size_t errlen)
{
	const char *ca = t->ca;
	char token[sizeof(t->token)];

	memcpy(token, t->token, sizeof(token));
	memset(t, 0, sizeof(*t));
	t->ca = ca;
	memcpy(t->token, token, sizeof(token));
	if (!strncmp(spec, "tls:", 4)) {
		const char *hp = spec + 4, *colon = strrchr(hp, ':');
		size_t hl = colon ? (size_t)(colon - hp) : 0;
		if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') {
			hp++;
			hl -= 2;
		}
		size_t pl = colon ? strlen(colon + 1) : 0;
		bool digits = pl > 0 && pl < sizeof(t->port) && strspn(colon + 1, "0123456789") == pl;
		if (!colon || !hl || hl >= sizeof(t->host) || !digits || atoi(colon + 1) < 1 ||
		    atoi(colon + 1) > 65535) {
			snprintf(err, errlen, "'%s': use tls:HOST:PORT", spec);
			return -1;
		}
		memcpy(t->host, hp, hl);
		t->host[hl] = '\0';
		memcpy(t->port, colon + 1, pl + 1);
		t->tls = true;
		return 0;
	}
	if (!strncmp(spec, "unix:", 5))
		spec += 5;
	if (!*spec || strlen(spec) >= sizeof(t->path)) {
		snprintf(err, errlen, "'%s': not a socket path (at most %zu bytes)", spec,
			 sizeof(t->path) - 1);
		return -1;
	}
	snprintf(t->path, sizeof(t->path), "%s", spec);
	return 0;
}

int vconn_token_file(const char *file, struct vconn_target *t, char *err, size_t errlen)
{
	FILE *f = fopen(file, "re");
	char line[sizeof(t->token) + 2];

	if (!f) {
		snprintf(err, errlen, "token file %s: %s", file, strerror(errno));
		return -1;
	}
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		snprintf(err, errlen, "token file %s: empty", file);
		return -1;
	}
	fclose(f);
	size_t n = strlen(line);
	while (n && strchr("\r\n \t", line[n - 1]))
		n--;
	line[n] = '\0';
	if (!n || n >= sizeof(t->token)) {
		snprintf(err, errlen, "token file %s: the first line must be the token (1 to %zu "
			 "characters)", file, sizeof(t->token) - 1);
		return -1;
	}
	memcpy(t->token, line, n + 1);
	return 0;
}

const char *vconn_name(const struct vconn_target *t)
{
	static char buf[300];

	if (t->tls)
		snprintf(buf, sizeof(buf), "tls:%s%s%s:%s", strchr(t->host, ':') ? "[" : "", t->host,
			 strchr(t->host, ':') ? "]" : "", t->port);
	else
		snprintf(buf, sizeof(buf), "unix:%s", t->path);
	return buf;
}

const char *vconn_auth_header(const struct vconn_target *t)
{
	static char buf[sizeof(t->token) + 40];

	if (!t->tls || !t->token[0])
		return "";
	snprintf(buf, sizeof(buf), "Authorization: Bearer %s\r\n", t->token);
	return buf;
}

static void ssl_reason(char *err, size_t errlen, const char *what, SSL *ssl)
{
	unsigned long e = T.ERR_get_error();
	long v = ssl ? T.SSL_get_verify_result(ssl) : X509_V_OK;

	if (v != X509_V_OK)
		snprintf(err, errlen, "%s: the server's certificate is not trusted: %s (see --ca)", what,
			 T.X509_verify_cert_error_string(v));
	else if (e)
		snprintf(err, errlen, "%s: %s", what, T.ERR_reason_error_string(e) ?
			 T.ERR_reason_error_string(e) : "TLS error");
	else
		snprintf(err, errlen, "%s: the connection was closed", what);
	T.ERR_clear_error();
}

/* A TCP connection within @timeout_ms, then blocking with the same
 * timeout on each read and write (0: none after the handshake). */
static int tcp_connect(const struct vconn_target *t, int timeout_ms, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV }, *res = NULL;
	int r = getaddrinfo(t->host, t->port, &hints, &res), fd = -1, e = 0;

	if (r) {
		snprintf(err, errlen, "%s: %s", vconn_name(t), gai_strerror(r));
		return -1;
	}
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) && errno != EINPROGRESS) {
			e = errno;
		} else {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int so = 0;
			socklen_t sl = sizeof(so);
			int pr;
			while ((pr = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
				;
			if (pr == 0)
				e = ETIMEDOUT;
			else if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl))
				e = errno;
			else
				e = so;
			if (!e) {
				fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
				struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
				setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
				setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
				break;
			}
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to %s: %s", vconn_name(t), strerror(e));
	return fd;
}

struct vconn *vconn_open(const struct vconn_target *t, int timeout_ms, char *err, size_t errlen)
{
	struct vconn *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fd = -1;
	if (!t->tls) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->path);
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
			snprintf(err, errlen, "cannot connect to %s: %s", t->path, strerror(errno));
			goto fail;
		}
		return c;
	}
	if (tls_load(err, errlen))
		goto fail;
	c->fd = tcp_connect(t, timeout_ms, err, errlen);
	if (c->fd < 0)
		goto fail;
	c->ctx = T.SSL_CTX_new(T.TLS_client_method());
	if (!c->ctx || !T.SSL_CTX_ctrl(c->ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL)) {
		ssl_reason(err, errlen, "TLS", NULL);
		goto fail;
	}
	T.SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	/* vireod (libmicrohttpd) may close without a close_notify after
	 * "Connection: close": the answer's length is checked instead. */
	T.SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (t->ca ? T.SSL_CTX_load_verify_locations(c->ctx, t->ca, NULL) != 1 :
		    T.SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
		ssl_reason(err, errlen, t->ca ? t->ca : "the system's CAs", NULL);
		goto fail;
	}
	c->ssl = T.SSL_new(c->ctx);
	if (!c->ssl || T.SSL_set_fd(c->ssl, c->fd) != 1) {
		ssl_reason(err, errlen, "TLS", NULL);
		goto fail;
	}
	unsigned char addr[16];
	bool is_ip = inet_pton(AF_INET, t->host, addr) == 1 || inet_pton(AF_INET6, t->host, addr) == 1;
	if (is_ip ? T.X509_VERIFY_PARAM_set1_ip_asc(T.SSL_get0_param(c->ssl), t->host) != 1 :
		    (T.SSL_ctrl(c->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
				(void *)t->host) != 1 || T.SSL_set1_host(c->ssl, t->host) != 1)) {
		ssl_reason(err, errlen, "TLS", NULL);
		goto fail;
	}
	if (T.SSL_connect(c->ssl) != 1) {
		char what[320];
		snprintf(what, sizeof(what), "TLS with %s", vconn_name(t));
		ssl_reason(err, errlen, what, c->ssl);
		goto fail;
	}
	return c;
fail:
	vconn_close(c);
	return NULL;
}

int vconn_write_all(struct vconn *c, const char *buf, size_t len)
{
	while (len) {
		ssize_t n;
		if (c->ssl) {
			size_t w = 0;
			n = T.SSL_write_ex(c->ssl, buf, len, &w) == 1 ? (ssize_t)w : -1;
		} else {
			n = send(c->fd, buf, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t vconn_read(struct vconn *c, char *buf, size_t len)
{
	if (c->ssl) {
		size_t got = 0;
		if (T.SSL_read_ex(c->ssl, buf, len, &got) == 1)
			return (ssize_t)got;
		int e = T.SSL_get_error(c->ssl, 0);
		T.ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			errno = EAGAIN;
		else if (e != SSL_ERROR_SYSCALL)
			errno = EIO;
		return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
	}
	for (;;) {
		ssize_t n = read(c->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		return n;
	}
}

void vconn_interactive(struct vconn *c)
{
	struct timeval none = { 0, 0 };

	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
	if (c->ssl)
		T.SSL_ctrl(c->ssl, SSL_CTRL_CLEAR_MODE, SSL_MODE_AUTO_RETRY, NULL);
}

int vconn_fd(const struct vconn *c)
{
	return c->fd;
}

size_t vconn_pending(const struct vconn *c)
{
	return c->ssl ? (size_t)T.SSL_pending(c->ssl) : 0;
}

void vconn_close(struct vconn *c)
{
	if (!c)
		return;
	if (c->ssl) {
		T.SSL_shutdown(c->ssl);
		T.SSL_free(c->ssl);
	}
	if (c->ctx)
		T.SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

int vconn_request(const struct vconn_target *t, const char *method, const char *path,
		  const char *body, int timeout_ms, int *status, char **resp,
		  char *err, size_t errlen)
{
	if (!t->tls)
		return httpc_request(t->path, method, path, body, timeout_ms, status, resp, err, errlen);

	size_t blen = body ? strlen(body) : 0, have = 0, cap = 0;
	char *req = NULL, *buf = NULL;
	int ret = -EIO;

	*resp = NULL;
	struct vconn *c = vconn_open(t, timeout_ms, err, errlen);
	if (!c)
		return -ECONNREFUSED;
	int rl = asprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s"
			  "%sContent-Length: %zu\r\n\r\n%s", method, path, t->host,
			  vconn_auth_header(t), body ? "Content-Type: application/json\r\n" : "",
			  blen, body ? body : "");
	if (rl < 0) {
		req = NULL;
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	if (vconn_write_all(c, req, (size_t)rl)) {
		snprintf(err, errlen, "cannot send to %s", vconn_name(t));
		goto out;
	}
	for (;;) {
		if (cap - have < 4096) {
			size_t ncap = cap ? cap * 2 : 8192;
			if (ncap > HTTPC_MAX_RESPONSE + 1) {
				snprintf(err, errlen, "answer larger than %u bytes", HTTPC_MAX_RESPONSE);
				ret = -EFBIG;
				goto out;
			}
			char *nb = realloc(buf, ncap);
			if (!nb) {
				snprintf(err, errlen, "out of memory");
				ret = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t n = vconn_read(c, buf + have, cap - have - 1);
		if (n == 0)
			break;
		if (n < 0) {
			snprintf(err, errlen, "no whole answer from %s within %d ms", vconn_name(t),
				 timeout_ms);
			goto out;
		}
		have += (size_t)n;
	}
	if (!have) {
		snprintf(err, errlen, "%s closed the connection without an answer", vconn_name(t));
		goto out;
	}
	buf[have] = '\0';
	ret = httpc_parse_response(buf, have, status, resp, err, errlen);
out:
	if (req)
		explicit_bzero(req, strlen(req));
	free(req);
	free(buf);
	vconn_close(c);
	return ret;
}
