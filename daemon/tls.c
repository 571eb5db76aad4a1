/*
 * vireod's optional TCP listener (tls.h): the same API as the Unix socket,
 * over HTTPS only (libmicrohttpd's TLS, GnuTLS in Debian's build), and
 * every request must carry "Authorization: Bearer TOKEN".  A request
 * without it, or with another token, is answered 401 before its body is
 * read or anything is dispatched.  The token is compared in constant time
 * (for its length: the length of the given one is not secret).  The
 * console's upgrade (POST /vms/NAME/console) works here as on the socket:
 * after the 101 the console's bytes go through the TLS session.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include <vireo/util.h>

#include "bearer.h"
#include "server.h"

#define TLS_MAX_PEM      (256 * 1024)
#define TLS_CONNECTIONS  64

static struct MHD_Daemon *tls_mhd;
static char *tls_cert, *tls_key;
static char tls_token[BEARER_TOKEN_MAX + 1];
static size_t tls_token_len;

/* A whole small file, NUL-terminated (malloc'd), or NULL with @err. */
static char *read_small(const char *what, const char *path, size_t max, struct stat *stp,
			char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char *buf = NULL;
	size_t len = 0;

	if (fd < 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0 || (size_t)st.st_size > max) {
		snprintf(err, errlen, "%s %s: not a regular file of 1 to %zu bytes", what, path, max);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s %s: cannot read it: %s", what, path,
				 n < 0 ? strerror(errno) : "it shrank");
			goto fail;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		snprintf(err, errlen, "%s %s: contains a NUL byte", what, path);
		goto fail;
	}
	close(fd);
	if (stp)
		*stp = st;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

static enum MHD_Result unauthorized(struct MHD_Connection *c)
{
	static const char body[] = "{\"error\":\"unauthorized: this listener needs "
				   "'Authorization: Bearer TOKEN'\"}";
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
								 MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"vireod\"");
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_UNAUTHORIZED, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_tls_request(void *cls, struct MHD_Connection *c, const char *url,
				      const char *method, const char *version, const char *upload,
				      size_t *upload_size, void **con_cls)
{
	/* The first call of a request (no state yet): the headers are in. */
	if (!*con_cls) {
		const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							       MHD_HTTP_HEADER_AUTHORIZATION);
		if (!bearer_ok(auth, tls_token, tls_token_len)) {
			const union MHD_ConnectionInfo *ci =
				MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
			char host[64] = "?";
			if (ci && ci->client_addr)
				getnameinfo(ci->client_addr, sizeof(struct sockaddr_storage), host,
					    sizeof(host), NULL, 0, NI_NUMERICHOST);
			vinfo("TCP: %s %.100s from %s refused: %s", method, url, host,
			      auth ? "wrong token" : "no bearer token");
			return unauthorized(c);
		}
	}
	return server_handle_request(cls, c, url, method, version, upload, upload_size, con_cls);
}

/* Bind ADDR:PORT ("[v6]:PORT" too; an empty ADDR is every address). */
static int tls_bind(const char *spec, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(spec, ':'), *port;
	size_t hl;

	if (!colon || !colon[1]) {
		snprintf(err, errlen, "--listen '%s': use ADDR:PORT", spec);
		return -1;
	}
	port = colon + 1;
	hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
		spec++;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		snprintf(err, errlen, "--listen: the address is too long");
		return -1;
	}
	memcpy(host, spec, hl);
	host[hl] = '\0';
	uint64_t pn;
	if (vparse_u64(port, 1, 65535, &pn)) {
		snprintf(err, errlen, "--listen: port '%s': use 1 to 65535", port);
		return -1;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *res = NULL;
	int r = getaddrinfo(hl ? host : NULL, port, &hints, &res);
	if (r) {
		snprintf(err, errlen, "--listen %s: %s", host, gai_strerror(r));
		return -1;
	}
	int fd = -1, e = 0;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, a->ai_addr, a->ai_addrlen) && !listen(fd, 64))
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(e ? e : EADDRNOTAVAIL));
	return fd;
}

int tls_check_options(const char *listen, const char *cert, const char *key, const char *token_file,
		      char *err, size_t errlen)
{
	if (!listen) {
		if (cert || key || token_file) {
			snprintf(err, errlen, "--tls-cert, --tls-key and --token-file go with --listen");
			return -1;
		}
		return 0;
	}
	if (!cert || !key || !token_file) {
		snprintf(err, errlen, "--listen %s: a TCP listener needs TLS and a token: give "
			 "--tls-cert FILE, --tls-key FILE and --token-file FILE (plain HTTP over "
			 "TCP is not offered)", listen);
		return -1;
	}
	return 0;
}

int tls_start(const char *listen, const char *cert, const char *key, const char *token_file,
	      char *err, size_t errlen)
{
	struct stat st;
	char *tok;

	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(err, errlen, "--listen: this libmicrohttpd has no TLS support");
		return -1;
	}
	tls_cert = read_small("--tls-cert", cert, TLS_MAX_PEM, NULL, err, errlen);
	if (!tls_cert)
		goto fail;
	tls_key = read_small("--tls-key", key, TLS_MAX_PEM, &st, err, errlen);
	if (!tls_key)
		goto fail;
	if (st.st_mode & 0007) {
		snprintf(err, errlen, "--tls-key %s: readable or writable by others (chmod o= it)", key);
		goto fail;
	}
	tok = read_small("--token-file", token_file, BEARER_TOKEN_MAX + 2, &st, err, errlen);
	if (!tok)
		goto fail;
	if (st.st_mode & 0007) {
		free(tok);
		snprintf(err, errlen, "--token-file %s: readable or writable by others (chmod o= it)",
			 token_file);
		goto fail;
	}
	char terr[200];
	int tl = bearer_token_parse(tok, tls_token, sizeof(tls_token), terr, sizeof(terr));
	explicit_bzero(tok, strlen(tok));
	free(tok);
	if (tl < 0) {
		snprintf(err, errlen, "--token-file %s: %s", token_file, terr);
		goto fail;
	}
	tls_token_len = (size_t)tl;
	int fd = tls_bind(listen, err, errlen);
	if (fd < 0)
		goto fail;
	/* The console's upgraded connections (server.c): libmicrohttpd hands
	 * the console one end of a socket pair and moves the bytes between
	 * its other end and the TLS session in the connection's thread. */
	unsigned upgrade = MHD_is_feature_supported(MHD_FEATURE_UPGRADE) == MHD_YES ?
		MHD_ALLOW_UPGRADE : 0;
	if (!upgrade)
		vinfo("--listen: this libmicrohttpd cannot upgrade connections: no console over TLS");
	tls_mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
				   MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_TLS | upgrade,
				   0, NULL, NULL, on_tls_request, NULL,
				   MHD_OPTION_LISTEN_SOCKET, fd,
				   MHD_OPTION_HTTPS_MEM_CERT, tls_cert,
				   MHD_OPTION_HTTPS_MEM_KEY, tls_key,
				   MHD_OPTION_CONNECTION_LIMIT, (unsigned)TLS_CONNECTIONS,
				   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
				   MHD_OPTION_NOTIFY_COMPLETED, server_request_completed, NULL,
				   MHD_OPTION_END);
	if (!tls_mhd) {
		close(fd);
		snprintf(err, errlen, "cannot start HTTPS on %s (are --tls-cert and --tls-key a "
			 "PEM certificate and its key?)", listen);
		goto fail;
	}
	return 0;
fail:
	tls_stop();
	return -1;
}

void tls_stop(void)
{
	if (tls_mhd) {
		MHD_socket fd = MHD_quiesce_daemon(tls_mhd);
		MHD_stop_daemon(tls_mhd);
		if (fd != MHD_INVALID_SOCKET)
			close(fd);
		tls_mhd = NULL;
	}
	if (tls_key)
		explicit_bzero(tls_key, strlen(tls_key));
	free(tls_cert);
	free(tls_key);
	tls_cert = tls_key = NULL;
	explicit_bzero(tls_token, sizeof(tls_token));
	tls_token_len = 0;
}
