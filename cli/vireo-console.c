/*
 * `vireo console NAME`: POST /vms/NAME/console upgraded to the
 * vireo-console protocol (raw bytes both ways) on vireod's socket.  The
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
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <vireo/util.h>

#include "vireo.h"

#define ESCAPE_CHAR 0x1d   /* Ctrl-] */

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

static int connect_sock(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (vireod_at.tls) {
		/* vireod's TLS listener does not upgrade connections (yet). */
		fprintf(stderr, "vireo: console: only through vireod's Unix socket, not %s\n",
			vconn_name(&vireod_at));
		return -2;
	}
	if (strlen(vireod_at.path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vireo: cannot reach vireod: socket path too long\n");
		return -1;
	}
	strcpy(sa.sun_path, vireod_at.path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "vireo: cannot reach vireod: cannot connect to %s: %s\n",
			vireod_at.path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
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
static void print_refusal(int fd, const char *head, const char *rest, size_t rest_len)
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
			ssize_t r = read(fd, body + have, want - have);
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
	char req[256], head[8192];
	size_t hlen = 0;
	int fd = connect_sock();

	if (fd < 0)
		return fd == -2 ? EXIT_USAGE : EXIT_CONNECT;
	int n = snprintf(req, sizeof(req),
			 "POST /vms/%s/console%s HTTP/1.1\r\nHost: localhost\r\n"
			 "Connection: Upgrade\r\nUpgrade: vireo-console\r\nContent-Length: 0\r\n\r\n",
			 name, readonly ? "?readonly=true" : "");
	if (vio_write_full(fd, req, (size_t)n)) {
		fprintf(stderr, "vireo: cannot reach vireod: %s\n", strerror(errno));
		close(fd);
		return EXIT_CONNECT;
	}
	char *end = NULL;
	while (!end) {
		if (hlen == sizeof(head) - 1) {
			fprintf(stderr, "vireo: console: malformed answer from vireod\n");
			close(fd);
			return EXIT_REFUSED;
		}
		ssize_t r = read(fd, head + hlen, sizeof(head) - 1 - hlen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "vireo: console: vireod closed the connection\n");
			close(fd);
			return EXIT_CONNECT;
		}
		hlen += (size_t)r;
		head[hlen] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	size_t body_at = (size_t)(end + 4 - head);
	if (strncmp(head, "HTTP/1.1 101", 12)) {
		end[2] = '\0';
		print_refusal(fd, head, head + body_at, hlen - body_at);
		close(fd);
		return EXIT_REFUSED;
	}
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
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN } };
		int r = poll(p, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (p[0].revents) {
			ssize_t k = read(fd, buf, sizeof(buf));
			if (k < 0 && errno == EINTR)
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
			if (!readonly && send_n && vio_write_full(fd, buf, send_n))
				break;
			if (esc) {
				detached = true;
				break;
			}
		}
	}
out:
	tio_restore();
	close(fd);
	fprintf(stderr, "\n%s\n", detached ? "Detached" : got_signal ? "Interrupted" :
		"Console closed by vireod (the VM's process ended)");
	return EXIT_OK;
}
