/*
 * `vireo console NAME`: POST /vms/NAME/console upgraded to the
 * vireo-console protocol (raw bytes both ways) on vireod's Unix socket or,
 * with -c tls:HOST:PORT, over TLS to its TCP listener (connect.c; the
 * bearer token goes with the request).  The
 * terminal goes to raw mode (restored on every exit path); Ctrl-] in the
 * input detaches.  With input that is not a terminal, its end stops the
 * input only: the output is copied until vireod closes the console (the
 * VM ends) or Ctrl-] comes.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include <vireo/util.h>

#include "vireo.h"

#define ESCAPE_CHAR 0x1d   /* Ctrl-] */
#define CONNECT_TIMEOUT_MS 30000

static struct termios saved_tio;
static bool tio_raw;
static volatile sig_atomic_t got_signal;

static void tio_restore(void)
{
	if (tio_raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
		tio_raw = false;
	}
}

static void on_signal(int sig)
{
	got_signal = sig;
}

/* A header's value in @head (NUL-terminated, lines end in CRLF). */
static bool header(const char *head, const char *name, char *out, size_t len)
{
	size_t n = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
		const char *h = l + 2;
		if (!strncasecmp(h, name, n) && h[n] == ':') {
			h += n + 1;
			while (*h == ' ' || *h == '\t')
				h++;
			size_t k = strcspn(h, "\r\n");
			if (k >= len)
				k = len - 1;
			memcpy(out, h, k);
			out[k] = '\0';
			return true;
		}
	}
	return false;
}

/* vireod's refusal: the JSON body's "error". */
static void print_refusal(struct vconn *c, const char *head, const char *rest, size_t rest_len)
{
	char cl[32], *body = NULL;
	unsigned long want = 0;

	if (header(head, "Content-Length", cl, sizeof(cl)))
		want = strtoul(cl, NULL, 10);
	if (want > 65536)
		want = 65536;
	body = calloc(1, want + 1);
	size_t have = rest_len < want ? rest_len : want;
	if (body) {
		memcpy(body, rest, have);
		while (have < want) {
			ssize_t r = vconn_read(c, body + have, want - have);
			if (r <= 0)
				break;
			have += (size_t)r;
		}
	}
	json_object *o = body ? json_tokener_parse(body) : NULL;
	const char *msg = o ? str_field(o, "error") : NULL;
	fprintf(stderr, "vireo: %s\n", msg ? msg : "vireod refused the console");
	json_object_put(o);
	free(body);
}

int cmd_console(const char *name, bool readonly)
{
	char req[1024], head[8192], err[512];
	size_t hlen = 0;
	/* The Unix socket, or TLS to vireod's TCP listener (the token in the
	 * request's head, as for every other request there). */
	struct vconn *vc = vconn_open(&vireod_at, CONNECT_TIMEOUT_MS, err, sizeof(err));

	if (!vc) {
		fprintf(stderr, "vireo: cannot reach vireod: %s\n", err);
		return EXIT_CONNECT;
	}
	int n = snprintf(req, sizeof(req),
			 "POST /vms/%s/console%s HTTP/1.1\r\nHost: localhost\r\n%s"
			 "Connection: Upgrade\r\nUpgrade: vireo-console\r\nContent-Length: 0\r\n\r\n",
			 name, readonly ? "?readonly=true" : "", vconn_auth_header(&vireod_at));
	int wr = n > 0 && (size_t)n < sizeof(req) ? vconn_write_all(vc, req, (size_t)n) : -1;
	explicit_bzero(req, sizeof(req));
	if (wr) {
		fprintf(stderr, "vireo: cannot reach vireod: cannot send to %s\n", vconn_name(&vireod_at));
		vconn_close(vc);
		return EXIT_CONNECT;
	}
	char *end = NULL;
	while (!end) {
		if (hlen == sizeof(head) - 1) {
			fprintf(stderr, "vireo: console: malformed answer from vireod\n");
			vconn_close(vc);
			return EXIT_REFUSED;
		}
		ssize_t r = vconn_read(vc, head + hlen, sizeof(head) - 1 - hlen);
		if (r <= 0) {
			fprintf(stderr, "vireo: console: vireod closed the connection\n");
			vconn_close(vc);
			return EXIT_CONNECT;
		}
		hlen += (size_t)r;
		head[hlen] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	size_t body_at = (size_t)(end + 4 - head);
	if (strncmp(head, "HTTP/1.1 101", 12)) {
		end[2] = '\0';
		print_refusal(vc, head, head + body_at, hlen - body_at);
		vconn_close(vc);
		return EXIT_REFUSED;
	}
	vconn_interactive(vc);
	char mode[32] = "";
	header(head, "Vireo-Console-Mode", mode, sizeof(mode));
	bool tty = isatty(STDIN_FILENO), detached = false;
	fprintf(stderr, "Connected to %s%s (Ctrl-] detaches)\r\n", name,
		!strcmp(mode, "read-only") ? ", read-only" : "");
	/* The terminal: raw (restored on every way out). */
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (tty && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios t = saved_tio;
		cfmakeraw(&t);
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0) {
			tio_raw = true;
			atexit(tio_restore);
		}
	}
	/* Output that came with the answer's head. */
	if (hlen > body_at && vio_write_full(STDOUT_FILENO, head + body_at, hlen - body_at))
		goto out;
	bool in_open = true;
	char buf[16384];
	while (!got_signal) {
		struct pollfd p[2] = { { .fd = vconn_fd(vc), .events = POLLIN },
				       { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN } };
		/* TLS: bytes decrypted already are not seen by poll(2). */
		bool pending = vconn_pending(vc) > 0;
		int r = poll(p, 2, pending ? 0 : -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (p[0].revents || pending) {
			errno = 0;
			ssize_t k = vconn_read(vc, buf, sizeof(buf));
			if (k < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (k <= 0)
				break;   /* vireod closed the console */
			if (vio_write_full(STDOUT_FILENO, buf, (size_t)k))
				break;
		}
		if (p[1].revents) {
			ssize_t k = read(STDIN_FILENO, buf, sizeof(buf));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				in_open = false;
				continue;
			}
			char *esc = memchr(buf, ESCAPE_CHAR, (size_t)k);
			size_t send_n = esc ? (size_t)(esc - buf) : (size_t)k;
			/* A reader's keys go nowhere (vireod drops them too). */
			if (!readonly && send_n && vconn_write_all(vc, buf, send_n))
				break;
			if (esc) {
				detached = true;
				break;
			}
		}
	}
out:
	tio_restore();
	vconn_close(vc);
	fprintf(stderr, "\n%s\n", detached ? "Detached" : got_signal ? "Interrupted" :
		"Console closed by vireod (the VM's process ended)");
	return EXIT_OK;
}
