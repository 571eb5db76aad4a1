/*
 * crash_writer: writes random patterns into an image through the Vireo image
 * library until it is killed, logging what it did so that a checker can tell
 * afterwards which data must have survived.
 *
 *   crash_writer IMAGE LOG SEED
 *
 * Before each request it appends "W <sector> <count> <byte>" to LOG (byte 0
 * is a write-zeroes request); after each vimg_flush() that succeeded it
 * appends "F"; each run starts with "S".  Every write logged before an "F" must read back after a
 * crash; writes after the last "F" may or may not have landed.  Requests are
 * whole 512-byte sectors.  Used by tests/img/030-crash-kill.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vireo/img.h>

#define CW_MAX_SECTORS 512      /* 256 KiB per request at most */

static uint64_t cw_state;

static uint64_t cw_rand(void)
{
	/* xorshift64*: deterministic per seed, no global libc state */
	cw_state ^= cw_state >> 12;
	cw_state ^= cw_state << 25;
	cw_state ^= cw_state >> 27;
	return cw_state * 0x2545F4914F6CDD1DULL;
}

static void cw_log(int fd, const char *line)
{
	size_t n = strlen(line);

	if (write(fd, line, n) != (ssize_t)n) {
		perror("crash_writer: log");
		exit(3);
	}
}

int main(int argc, char **argv)
{
	struct vimg_open_opts oo = { .format = "qcow2" };
	struct vimg *img;
	char err[512], line[96];
	uint8_t *buf;
	uint64_t sectors;
	int logfd, r;
	unsigned n = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: crash_writer IMAGE LOG SEED\n");
		return 2;
	}
	cw_state = strtoull(argv[3], NULL, 0) * 2654435761u + 1;
	logfd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (logfd < 0) {
		perror("crash_writer: open log");
		return 2;
	}
	r = vimg_open(argv[1], &oo, &img, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "crash_writer: %s\n", err);
		return 1;
	}
	/* A new run: writes of a killed previous run that were not flushed
	 * stay uncertain, this run's flushes do not cover them. */
	cw_log(logfd, "S\n");
	sectors = vimg_size(img) / 512;
	buf = malloc(CW_MAX_SECTORS * 512);
	if (!buf || sectors < CW_MAX_SECTORS)
		return 2;
	for (;;) {
		uint64_t cnt = 1 + cw_rand() % CW_MAX_SECTORS;
		uint64_t sec = cw_rand() % (sectors - cnt + 1);
		unsigned pat = (unsigned)(cw_rand() % 256);

		/* Small requests are common in real use: bias towards them. */
		if (cw_rand() % 2)
			cnt = 1 + cnt % 16;
		snprintf(line, sizeof(line), "W %llu %llu %u\n",
			 (unsigned long long)sec, (unsigned long long)cnt, pat);
		cw_log(logfd, line);
		if (pat == 0) {
			r = vimg_pwrite_zeroes(img, sec * 512, cnt * 512);
		} else {
			memset(buf, (int)pat, cnt * 512);
			r = vimg_pwrite(img, buf, cnt * 512, sec * 512);
		}
		if (r < 0) {
			fprintf(stderr, "crash_writer: write at sector %llu: %s\n",
				(unsigned long long)sec, vimg_errmsg(img));
			return 1;
		}
		if (++n % 8 == 0) {
			r = vimg_flush(img);
			if (r < 0) {
				fprintf(stderr, "crash_writer: flush: %s\n", vimg_errmsg(img));
				return 1;
			}
			cw_log(logfd, "F\n");
		}
	}
}
