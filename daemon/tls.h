/*
 * vireod's optional TCP listener: HTTPS only, every request with
 * "Authorization: Bearer TOKEN" (tls.c).  The Unix socket (server.c) is
 * not affected: its file permissions are its access control.
 */
#ifndef VIREO_DAEMON_TLS_H
#define VIREO_DAEMON_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* The command line's TLS options hang together: --listen needs all three
 * of @cert, @key, @token_file, and they need --listen.  0 or -1 (@err). */
int tls_check_options(const char *listen, const char *cert, const char *key,
		      const char *token_file, char *err, size_t errlen);
/* Listen on @listen (ADDR:PORT, [IPV6]:PORT, :PORT) with HTTPS from the
 * PEM files @cert and @key, the token from @token_file (the key and the
 * token file must not be readable by others).  0 or -1 (@err). */
int tls_start(const char *listen, const char *cert, const char *key, const char *token_file,
	      char *err, size_t errlen);
void tls_stop(void);

/* A token file's text: one line of 16 to 512 visible ASCII characters
 * (trailing white space dropped), copied to @out.  Its length, or -1. */
int tls_token_parse(const char *text, char *out, size_t outlen, char *err, size_t errlen);
/* Whether the Authorization header @header is "Bearer " and the token
 * (compared in constant time). */
bool tls_bearer_ok(const char *header, const char *token, size_t token_len);

#endif
