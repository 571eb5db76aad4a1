/*
 * vireo's way to vireod (connect.c): its Unix socket (unix:PATH, or a
 * bare PATH) or its TCP listener over TLS (tls:HOST:PORT), with the
 * server's certificate verified against --ca (else the system's CAs) and
 * the bearer token sent with each request.  TLS is OpenSSL's.
 */
#ifndef VIREO_CLI_CONNECT_H
#define VIREO_CLI_CONNECT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct vconn_target {
	bool tls;
	char path[108];         /* unix: the socket */
	char host[256];         /* tls: a name or an address (no brackets) */
	char port[6];
	const char *ca;         /* tls: a PEM file of trusted CAs, or NULL */
	char token[520];        /* tls: the bearer token, "" for none */
};

/* "unix:PATH", "PATH" or "tls:HOST:PORT" ("tls:[V6]:PORT").  0 or -1. */
int vconn_parse(const char *spec, struct vconn_target *t, char *err, size_t errlen);
/* The token from a file: one line, trailing white space dropped.  0 or -1. */
int vconn_token_file(const char *file, struct vconn_target *t, char *err, size_t errlen);
/* A printable name of the target ("unix:/run/vireo/vireod.sock"). */
const char *vconn_name(const struct vconn_target *t);

/* One request, as httpc_request(): 0 with the status and a malloc'd body,
 * or -errno with @err. */
int vconn_request(const struct vconn_target *t, const char *method, const char *path,
		  const char *body, int timeout_ms, int *status, char **resp,
		  char *err, size_t errlen);

/* A raw connection (the event stream): open (with @timeout_ms for the
 * connect and the handshake, none after), write, read (0 at the end,
 * -1 on error), close. */
struct vconn;
struct vconn *vconn_open(const struct vconn_target *t, int timeout_ms, char *err, size_t errlen);
int vconn_write_all(struct vconn *c, const char *buf, size_t len);
ssize_t vconn_read(struct vconn *c, char *buf, size_t len);
void vconn_close(struct vconn *c);
/* For an interactive stream polled by the caller (the console): no read
 * or write timeout any more, and a TLS read that finds no application
 * data (a session ticket, a key update) returns -1 with errno EAGAIN
 * instead of waiting for more.  vconn_fd() is what to poll; bytes
 * vconn_pending() says are decrypted already are not seen by poll(2). */
void vconn_interactive(struct vconn *c);
int vconn_fd(const struct vconn *c);
size_t vconn_pending(const struct vconn *c);
/* "Authorization: Bearer TOKEN\r\n" for a TLS target with a token, else "". */
const char *vconn_auth_header(const struct vconn_target *t);

#endif
