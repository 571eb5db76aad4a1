/*
 * A minimal HTTP/1.1 client over a Unix socket: one request per
 * connection ("Connection: close"), a JSON body or none, the answer's
 * status and body.  Used by vireod (to reach each vireo-vmm's control
 * API) and by vireo (to reach vireod).
 */
#ifndef VIREO_DAEMON_HTTPC_H
#define VIREO_DAEMON_HTTPC_H

#include <stddef.h>

#define HTTPC_MAX_RESPONSE (16u << 20)

/*
 * Send @method @path (with @body, or none when NULL) to the socket at
 * @sock_path and wait at most @timeout_ms for the whole answer.  Returns 0
 * with the status in *status and a malloc'd, NUL-terminated body in *resp
 * (may be empty), or -errno with a one-line message in @err.
 */
int httpc_request(const char *sock_path, const char *method, const char *path,
		  const char *body, int timeout_ms, int *status, char **resp,
		  char *err, size_t errlen);

/*
 * Parse a whole HTTP/1.x answer of @have bytes in @buf (NUL-terminated at
 * buf[have]; modified): 0 with the status and a malloc'd, NUL-terminated
 * body (chunked decoded, cut at Content-Length), -EIO (malformed) or
 * -ENOMEM with a message in @err.  The answer is untrusted
 * (fuzz/fuzz_httpc.c).
 */
int httpc_parse_response(char *buf, size_t have, int *status, char **resp, char *err,
			 size_t errlen);

#endif
