/*
 * lab-marker-time: run a command, pass its output through, and time how long
 * it takes until a marker line appears.
 *
 *   lab-marker-time [-t SECONDS] [-m MARKER] [-k] [-T] -- COMMAND [ARG...]
 *
 * COMMAND runs in its own process group with stdin from /dev/null and its
 * stdout and stderr copied to ours. The clock starts just before COMMAND is
 * started. When a line containing MARKER (default VIREO-BOOT-OK) first comes,
 * "MARKER-MS <milliseconds>" is printed on its own line; with -k the command
 * is then killed. After SECONDS (default 120) the command's process group is
 * killed and "MARKER-TIMEOUT <seconds>" printed. At the end
 * "MARKER-EXIT <status>" gives the command's exit status (128+signal if it
 * was killed).
 *
 * With -T every line of the command's output is prefixed with "[+MS] ", the
 * milliseconds since the start when its first byte arrived (for profiling
 * where a boot spends its time).
 *
 * Exit status: 0 when the marker was seen, 1 when not (a command that
 * cannot be started exits 127), 2 on bad usage.
 *
 * The lab's scenarios and benchmarks use it to measure boot-to-marker wall
 * time of a VMM the same way for every VMM.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MT_LINE_MAX 4096

struct mt_state {
	const char *marker;
	bool kill_at_marker;
	bool stamp; /* -T */
	bool seen;
	struct timespec start;
	char line[MT_LINE_MAX];
	size_t len;
	bool at_line_start; /* the last byte we wrote was a newline */
};

static int64_t mt_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 +
	       (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void mt_write_all(struct mt_state *st, const char *buf, size_t len)
{
	if (len)
		st->at_line_start = buf[len - 1] == '\n';
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* our reader went away; keep timing anyway */
		buf += n;
		len -= (size_t)n;
	}
}

/* Print one of our own lines, starting a new line if needed. */
static void mt_say(struct mt_state *st, const char *label, long long v)
{
	char msg[80];
	int n;

	n = snprintf(msg, sizeof(msg), "%s%s %lld\n", st->at_line_start ? "" : "\n", label, v);
	mt_write_all(st, msg, (size_t)n);
}

/* Check one complete (or overlong) line for the marker. */
static void mt_check_line(struct mt_state *st)
{
	st->line[st->len] = '\0';
	if (!st->seen && strstr(st->line, st->marker)) {
		st->seen = true;
		mt_say(st, "MARKER-MS", (long long)mt_ms_since(&st->start));
	}
	st->len = 0;
}

/* With -T, start a line of the command's output with its arrival time. */
static void mt_stamp(struct mt_state *st)
{
	char msg[32];
	int n;

	if (!st->stamp || !st->at_line_start)
		return;
	n = snprintf(msg, sizeof(msg), "[+%lld] ", (long long)mt_ms_since(&st->start));
	mt_write_all(st, msg, (size_t)n);
	st->at_line_start = false;
}

/* Pass output through line by line, so MARKER-MS follows its line. */
static void mt_feed(struct mt_state *st, const char *buf, size_t len)
{
	size_t i, from = 0;

	for (i = 0; i < len; i++) {
		if (i == from)
			mt_stamp(st);
		if (buf[i] == '\r')
			continue; /* serial consoles end lines with \r\n */
		if (buf[i] == '\n') {
			mt_write_all(st, buf + from, i + 1 - from);
			from = i + 1;
			mt_check_line(st);
			continue;
		}
		st->line[st->len++] = buf[i] ? buf[i] : ' ';
		if (st->len == MT_LINE_MAX - 1) {
			mt_write_all(st, buf + from, i + 1 - from);
			from = i + 1;
			mt_check_line(st);
		}
	}
	mt_write_all(st, buf + from, len - from);
}

static int mt_usage(void)
{
	fprintf(stderr, "usage: lab-marker-time [-t SECONDS] [-m MARKER] [-k] [-T] -- COMMAND [ARG...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct mt_state st = { .marker = "VIREO-BOOT-OK", .at_line_start = true };
	long timeout_s = 120;
	int fds[2], opt, status = 0, devnull;
	bool timed_out = false, killed = false, eof = false;
	pid_t pid;
	char *end;

	while ((opt = getopt(argc, argv, "+t:m:kT")) != -1) {
		switch (opt) {
		case 't':
			errno = 0;
			timeout_s = strtol(optarg, &end, 10);
			if (errno || *end || timeout_s <= 0 || timeout_s > 86400) {
				fprintf(stderr, "lab-marker-time: bad timeout '%s': give whole seconds, 1 to 86400\n", optarg);
				return 2;
			}
			break;
		case 'm':
			if (!*optarg || strlen(optarg) >= MT_LINE_MAX / 2) {
				fprintf(stderr, "lab-marker-time: bad marker '%s': give 1 to %d characters\n",
					optarg, MT_LINE_MAX / 2 - 1);
				return 2;
			}
			st.marker = optarg;
			break;
		case 'k':
			st.kill_at_marker = true;
			break;
		case 'T':
			st.stamp = true;
			break;
		default:
			return mt_usage();
		}
	}
	if (optind >= argc)
		return mt_usage();

	if (pipe2(fds, O_CLOEXEC) < 0) {
		perror("lab-marker-time: pipe");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &st.start);
	pid = fork();
	if (pid < 0) {
		perror("lab-marker-time: fork");
		return 2;
	}
	if (pid == 0) {
		setpgid(0, 0);
		devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		execvp(argv[optind], &argv[optind]);
		fprintf(stderr, "lab-marker-time: cannot run %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(fds[1]);

	/* Copy output until EOF, the deadline, or (with -k) the marker. */
	while (!eof) {
		int64_t left = timeout_s * 1000 - mt_ms_since(&st.start);
		struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
		char buf[4096];
		ssize_t n;
		int r;

		if (left <= 0) {
			timed_out = true;
			break;
		}
		r = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR) {
			perror("lab-marker-time: poll");
			break;
		}
		if (r <= 0)
			continue;
		n = read(fds[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			eof = true;
			break;
		}
		mt_feed(&st, buf, (size_t)n);
		if (st.seen && st.kill_at_marker) {
			killed = true;
			break;
		}
	}
	if (st.len)
		mt_check_line(&st);

	/* Reap the command; after EOF give it what is left of the deadline. */
	if (timed_out || killed) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0) {
			if (errno == EINTR)
				continue;
			perror("lab-marker-time: waitpid");
			break;
		}
		if (!timed_out && !killed && mt_ms_since(&st.start) >= timeout_s * 1000) {
			timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		}
		usleep(20000);
	}
	/* Whatever else the command left in its group goes too. */
	kill(-pid, SIGKILL);
	close(fds[0]);

	if (timed_out)
		mt_say(&st, "MARKER-TIMEOUT", timeout_s);
	mt_say(&st, "MARKER-EXIT", WIFEXITED(status) ? WEXITSTATUS(status) :
				    WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255);
	if (!st.seen)
		fprintf(stderr, "lab-marker-time: '%s' never appeared in the output of %s\n",
			st.marker, argv[optind]);
	return st.seen ? 0 : 1;
}
