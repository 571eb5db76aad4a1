/*
 * Raw block backend engines side by side: 4 KiB random reads and writes on
 * a 64 MiB file (page cache: this measures the submission path, not the
 * disk) through blk_raw's io_uring engine and worker-thread engine at queue
 * depth 32, against a plain pread/pwrite loop.  Runs alternate A B C A B C
 * (ROUNDS rounds), each figure is the median, ratios are against the loop.
 * Built and run by bench/blk_engines.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include <vireo/util.h>

#include "blk_backend.h"

#define FILE_SIZE (64u << 20)
#define BS 4096u
#define OPS 20000u
#define QD 32u
#define ROUNDS 7

struct slot {
	struct blk_io io;
	struct iovec iov;
	int busy;
};

static unsigned done_count;

static void io_done(struct blk_io *io, int r)
{
	struct slot *s = io->opaque;

	if (r < 0) {
		fprintf(stderr, "bench: I/O error %s\n", strerror(-r));
		exit(1);
	}
	s->busy = 0;
	done_count++;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static double run_engine(const char *path, unsigned flags, int write, char *bufs)
{
	struct blk_backend *b;
	struct slot slots[QD];
	uint64_t seed = 88172645463325252ULL, t0;
	unsigned issued = 0;

	if (blk_raw_open(path, flags, &b) < 0)
		exit(1);
	memset(slots, 0, sizeof(slots));
	done_count = 0;
	t0 = vtime_ns();
	while (done_count < OPS) {
		for (unsigned i = 0; i < QD && issued < OPS; i++) {
			struct slot *s = &slots[i];
			if (s->busy)
				continue;
			s->iov.iov_base = bufs + i * BS;
			s->iov.iov_len = BS;
			s->io = (struct blk_io){ .op = write ? BLK_OP_WRITE : BLK_OP_READ,
				.iov = &s->iov, .iovcnt = 1,
				.offset = rnd(&seed) % (FILE_SIZE / BS) * BS, .len = BS,
				.done = io_done, .opaque = s };
			s->busy = 1;
			if (b->ops->submit(b, &s->io) < 0)
				exit(1);
			issued++;
		}
		if (done_count < issued) {   /* some did not complete inline */
			struct pollfd p = { .fd = b->ops->event_fd(b), .events = POLLIN };
			poll(&p, 1, 1000);
			b->ops->complete(b);
		}
	}
	t0 = vtime_ns() - t0;
	blk_backend_close(b);
	return (double)OPS / ((double)t0 / 1e9);
}

static double run_loop(const char *path, int write, char *buf)
{
	uint64_t seed = 88172645463325252ULL, t0;
	int fd = open(path, O_RDWR);

	t0 = vtime_ns();
	for (unsigned i = 0; i < OPS; i++) {
		off_t off = (off_t)(rnd(&seed) % (FILE_SIZE / BS) * BS);
		int r = write ? vio_pwrite_full(fd, buf, BS, off) : vio_pread_full(fd, buf, BS, off);
		if (r < 0)
			exit(1);
	}
	t0 = vtime_ns() - t0;
	close(fd);
	return (double)OPS / ((double)t0 / 1e9);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/tmp/vireo-bench.img";
	static const char *names[3] = { "pread/pwrite loop", "io_uring qd32", "threads qd32" };
	char *bufs = aligned_alloc(4096, QD * BS);
	int fd;

	memset(bufs, 0x5a, QD * BS);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	for (unsigned off = 0; off < FILE_SIZE; off += QD * BS)
		vio_pwrite_full(fd, bufs, QD * BS, off);
	fsync(fd);
	close(fd);
	for (int write = 0; write < 2; write++) {
		double r[3][ROUNDS], med[3];

		for (int k = 0; k < ROUNDS; k++) {   /* A B C A B C ... */
			r[0][k] = run_loop(path, write, bufs);
			r[1][k] = run_engine(path, 0, write, bufs);
			r[2][k] = run_engine(path, BLK_RAW_NO_URING, write, bufs);
		}
		printf("4 KiB random %s, %u ops, median of %d alternating rounds:\n",
		       write ? "writes" : "reads", OPS, ROUNDS);
		for (int e = 0; e < 3; e++) {
			qsort(r[e], ROUNDS, sizeof(double), cmp);
			med[e] = r[e][ROUNDS / 2];
			printf("  %-18s %9.0f ops/s  ratio %.2f\n", names[e], med[e], med[e] / med[0]);
		}
	}
	unlink(path);
	free(bufs);
	return 0;
}
