/*
 * lab-marker-time: run a command, pass its output through, and time how long
 * it takes until a marker line appears.
 *
 *   lab-marker-time [-t SECONDS] [-m MARKER] [-k] [-T] [-Q] -- COMMAND [ARG...]
 *
 * COMMAND runs in its own process group with stdin from /dev/null; its
 * stdout and stderr are copied to our stdout a whole line at a time, so a
 * line of one is never cut by a line of the other (a VMM's log line on
 * stderr cannot split the guest's console line on stdout). The clock starts just before COMMAND is
 * started. When a line containing MARKER (default VIREO-BOOT-OK) first comes,
 * "MARKER-MS <milliseconds>" is printed on its own line; with -k the command
 * is then killed. After SECONDS (default 120) the command's process group is
 * killed and "MARKER-TIMEOUT <seconds>" printed. At the end
 * "MARKER-EXIT <status>" gives the command's exit status (128+signal if it
 * was killed).
 *
 * With -Q, at the deadline COMMAND itself is first sent SIGQUIT and its
 * output copied for 2 s more before the kill: vireo-vmm then prints every
 * vCPU's registers and page walks, which shows where a hung guest is.
 *
 * With -T every line of the command's output is prefixed with "[+MS] ", the
 * milliseconds since the start when its first byte arrived (for profiling
 * where a boot spends its time).
 *
 * A command still not reaped 15 s after its SIGKILL (stuck in the kernel)
 * is left behind: its /proc wchan, stack and status go to stderr and
 * MARKER-EXIT is 255.
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
/* How long a SIGKILLed command may take to be reaped before we give up. */
#define REAP_LIMIT_MS 15000

/* One output stream of the command (its stdout or its stderr), cut into
 * lines so that the two never mix inside a line. */
struct mt_stream {
	int fd;
	bool eof;
	char line[MT_LINE_MAX];
	size_t len;
	int64_t first_ms; /* when the pending line's first byte came (-T) */
};

struct mt_state {
	const char *marker;
	bool kill_at_marker;
	bool stamp; /* -T */
	bool seen;
	struct timespec start;
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

/* Write out a stream's pending line (complete, overlong, or the last one
 * without a newline) and check it for the marker. */
static void mt_emit(struct mt_state *st, struct mt_stream *in)
{
	char stamp[32];
	char text[MT_LINE_MAX];
	size_t i, n = 0;

	if (!in->len)
		return;
	if (st->stamp) {
		int k = snprintf(stamp, sizeof(stamp), "[+%lld] ", (long long)in->first_ms);

		mt_write_all(st, stamp, (size_t)k);
	}
	mt_write_all(st, in->line, in->len);
	if (in->line[in->len - 1] != '\n')
		mt_write_all(st, "\n", 1);
	/* The marker check ignores \r (serial consoles end lines with \r\n). */
	for (i = 0; i < in->len && n < sizeof(text) - 1; i++) {
		if (in->line[i] == '\r' || in->line[i] == '\n')
			continue;
		text[n++] = in->line[i] ? in->line[i] : ' ';
	}
	text[n] = '\0';
	in->len = 0;
	if (!st->seen && strstr(text, st->marker)) {
		st->seen = true;
		mt_say(st, "MARKER-MS", (long long)mt_ms_since(&st->start));
	}
}

/* Take bytes of one stream; whole lines go out as they complete. */
static void mt_feed(struct mt_state *st, struct mt_stream *in, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (!in->len)
			in->first_ms = mt_ms_since(&st->start);
		in->line[in->len++] = buf[i];
		if (buf[i] == '\n' || in->len == MT_LINE_MAX)
			mt_emit(st, in);
	}
}

/* Print where a process that survives SIGKILL is stuck in the kernel. */
static void mt_stuck_report(pid_t pid)
{
	static const char *const files[] = { "wchan", "stack", "status" };
	char path[64], buf[4096];

	fprintf(stderr, "lab-marker-time: pid %d not reaped %d s after SIGKILL; left behind\n",
		(int)pid, REAP_LIMIT_MS / 1000);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		ssize_t n;
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, files[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		fprintf(stderr, "lab-marker-time: %s:\n%s%s", path, buf,
			buf[n - 1] == '\n' ? "" : "\n");
	}
}

static int mt_usage(void)
{
	fprintf(stderr, "usage: lab-marker-time [-t SECONDS] [-m MARKER] [-k] [-T] [-Q] -- COMMAND [ARG...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct mt_state st = { .marker = "VIREO-BOOT-OK", .at_line_start = true };
	long timeout_s = 120;
	int fds[2], efds[2], opt, status = 0, devnull;
	struct mt_stream out = { .fd = -1 }, err = { .fd = -1 };
	struct mt_stream *streams[2] = { &out, &err };
	bool timed_out = false, killed = false, quit_first = false, quit_sent = false;
	int64_t deadline_ms, kill_ms;
	pid_t pid;
	char *end;

	while ((opt = getopt(argc, argv, "+t:m:kTQ")) != -1) {
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
		case 'Q':
			quit_first = true;
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

	if (pipe2(fds, O_CLOEXEC) < 0 || pipe2(efds, O_CLOEXEC) < 0) {
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
		if (quit_first) {
			/* -Q must reach COMMAND: a shell starting us in the
			 * background hands down SIGQUIT ignored. */
			sigset_t q;

			signal(SIGQUIT, SIG_DFL);
			sigemptyset(&q);
			sigaddset(&q, SIGQUIT);
			sigprocmask(SIG_UNBLOCK, &q, NULL);
		}
		devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		dup2(fds[1], STDOUT_FILENO);
		dup2(efds[1], STDERR_FILENO);
		execvp(argv[optind], &argv[optind]);
		fprintf(stderr, "lab-marker-time: cannot run %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(fds[1]);
	close(efds[1]);
	out.fd = fds[0];
	err.fd = efds[0];

	/* Copy output until EOF on both, the deadline, or (with -k) the marker. */
	deadline_ms = timeout_s * 1000;
	while (!out.eof || !err.eof) {
		int64_t left = deadline_ms - mt_ms_since(&st.start);
		struct pollfd pfd[2];
		char buf[4096];
		int r;

		if (left <= 0 && quit_first && !quit_sent) {
			/* -Q: ask for a state dump, read it, then kill. */
			kill(pid, SIGQUIT);
			quit_sent = true;
			deadline_ms += 2000;
			continue;
		}
		if (left <= 0) {
			timed_out = true;
			break;
		}
		for (int k = 0; k < 2; k++) {
			pfd[k].fd = streams[k]->eof ? -1 : streams[k]->fd;
			pfd[k].events = POLLIN;
			pfd[k].revents = 0;
		}
		r = poll(pfd, 2, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR) {
			perror("lab-marker-time: poll");
			break;
		}
		if (r <= 0)
			continue;
		for (int k = 0; k < 2; k++) {
			ssize_t n;

			if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(streams[k]->fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				streams[k]->eof = true;
				mt_emit(&st, streams[k]);
				continue;
			}
			mt_feed(&st, streams[k], buf, (size_t)n);
		}
		if (st.seen && st.kill_at_marker) {
			killed = true;
			break;
		}
	}
	/* A command that ended on -Q's SIGQUIT still ran out of time. */
	if (quit_sent)
		timed_out = true;
	/* Lines cut short by the end (a command killed mid-line). */
	mt_emit(&st, &out);
	mt_emit(&st, &err);

	/* Reap the command; after EOF give it what is left of the deadline. */
	if (timed_out || killed) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	kill_ms = (timed_out || killed) ? mt_ms_since(&st.start) : -1;
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
			kill_ms = mt_ms_since(&st.start);
		}
		/*
		 * A process that SIGKILL does not end is stuck in the kernel
		 * (D state). Say where, and leave it rather than wait forever.
		 */
		if (kill_ms >= 0 && mt_ms_since(&st.start) - kill_ms >= REAP_LIMIT_MS) {
			mt_stuck_report(pid);
			status = 255 << 8;
			break;
		}
		usleep(20000);
	}
	/* Whatever else the command left in its group goes too. */
	kill(-pid, SIGKILL);
	close(fds[0]);
	close(efds[0]);

	if (timed_out)
		mt_say(&st, "MARKER-TIMEOUT", timeout_s);
	mt_say(&st, "MARKER-EXIT", WIFEXITED(status) ? WEXITSTATUS(status) :
				    WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255);
	if (!st.seen)
		fprintf(stderr, "lab-marker-time: '%s' never appeared in the output of %s\n",
			st.marker, argv[optind]);
	return st.seen ? 0 : 1;
}
