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

#endif
