/*
 * vsock-echo: the lab's AF_VSOCK test helper (tests/lab/scenarios/vsock.sh),
 * statically linked so that the same binary runs in the outer VM and in
 * the inner guest.
 *
 *   vsock-echo listen PORT         accept one connection, send back every
 *                                  byte until the peer shuts down, exit 0
 *   vsock-echo connect CID PORT MSG
 *                                  send MSG, shut down writing, read the
 *                                  reply; print "vsock-echo: got MSG" and
 *                                  exit 0 when it is MSG again
 * Connecting retries for up to 30 s of wall time (the listener may not be
 * up yet); a connection then waits at most 30 s for each read, so that a
 * peer that never answers is a failure, not a hang.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

static int die(const char *what)
{
	fprintf(stderr, "vsock-echo: %s: %s\n", what, strerror(errno));
	return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int do_listen(unsigned port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				 .svm_port = port };
	int s = socket(AF_VSOCK, SOCK_STREAM, 0), c;
	char buf[4096];
	ssize_t n = 0;
	size_t total = 0;

	if (s < 0)
		return die("socket");
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		return die("bind");
	if (listen(s, 1) < 0)
		return die("listen");
	printf("vsock-echo: listening on port %u\n", port);
	fflush(stdout);
	c = accept(s, NULL, NULL);
	if (c < 0)
		return die("accept");
	while ((n = read(c, buf, sizeof(buf))) > 0) {
		if (write_all(c, buf, (size_t)n) < 0)
			return die("write");
		total += (size_t)n;
	}
	printf("vsock-echo: echoed %zu bytes\n", total);
	close(c);
	close(s);
	return 0;
}

static int do_connect(unsigned cid, unsigned port, const char *msg)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	char buf[4096];
	size_t got = 0;
	ssize_t n = 0;
	int s = -1;

	struct timespec t0, now;
	struct timeval rcv = { 30, 0 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		s = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (s < 0)
			return die("socket");
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		int e = errno;
		close(s);
		s = -1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= 30) {
			errno = e;
			return die("connect (30 s of tries)");
		}
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
	}
	if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv)) < 0)
		return die("SO_RCVTIMEO");
	if (write_all(s, msg, strlen(msg)) < 0)
		return die("write");
	shutdown(s, SHUT_WR);
	while (got < sizeof(buf) - 1 && (n = read(s, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	if (n < 0)
		return die("read (the echo)");
	buf[got] = 0;
	close(s);
	if (strcmp(buf, msg)) {
		fprintf(stderr, "vsock-echo: sent '%s', got back '%s'\n", msg, buf);
		return 1;
	}
	printf("vsock-echo: got %s\n", buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "listen"))
		return do_listen((unsigned)strtoul(argv[2], NULL, 10));
	if (argc == 5 && !strcmp(argv[1], "connect"))
		return do_connect((unsigned)strtoul(argv[2], NULL, 10),
				  (unsigned)strtoul(argv[3], NULL, 10), argv[4]);
	fprintf(stderr, "usage: vsock-echo listen PORT | connect CID PORT MESSAGE\n");
	return 2;
}
