/*
 * vireod's bearer tokens (bearer.c): the token file's text and the check
 * of a request's Authorization header.  Pure, for fuzz/fuzz_bearer.c.
 */
#ifndef VIREO_DAEMON_BEARER_H
#define VIREO_DAEMON_BEARER_H

#include <stdbool.h>
#include <stddef.h>

#define BEARER_TOKEN_MIN 16
#define BEARER_TOKEN_MAX 512

/* A token file's text (NUL-terminated): one line of BEARER_TOKEN_MIN to
 * BEARER_TOKEN_MAX visible ASCII characters, trailing white space
 * dropped, copied to @out.  Its length, or -1 with @err. */
int bearer_token_parse(const char *text, char *out, size_t outlen, char *err, size_t errlen);
/* Whether the Authorization header @header (NULL: none) is "Bearer " and
 * @token; the token's bytes are compared in constant time. */
bool bearer_ok(const char *header, const char *token, size_t token_len);

#endif
