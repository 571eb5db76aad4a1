/*
 * libFuzzer target for the virtio-blk disk back ends with their worker
 * pools: the raw backend (blk_raw.c, worker threads) and the image-library
 * backend (blk_img.c, a qcow2 overlay through vimg_aio) get a program of
 * requests with hostile offsets, lengths and iovec layouts, submitted
 * asynchronously several at a time and completed through event_fd() and
 * complete(), as the VMM's event loop does.  A request must complete
 * exactly once, with 0 or -errno; a read of what a request wrote in range
 * must return it.  Disks live in memfds.  Seeds: fuzz/corpus/blk_backend/.
 *
 * Input: byte 0 picks the backend (bit 0: image); then 8-byte requests:
 *   op % 5, iovec count (1..4), offset (3 bytes, in bytes, may run past
 *   the 1 MiB disk), length (2 bytes, 0..64 KiB), fill byte.
 * The last write that no other request overlaps is read back.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vireo/img.h>
#include <vireo/util.h>

#include "blk_backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DISK (1u << 20)
#define MAX_INFLIGHT 8
#define MAX_REQ 32

struct req {
	struct blk_io io;
	struct iovec iov[4];
	uint8_t *buf;
	int done;
	int result;
};

static int nr_done;

static void req_done(struct blk_io *io, int result)
{
	struct req *r = io->opaque;

	if (r->done++)
		abort();   /* completed twice */
	if (result > 0)
		abort();
	r->result = result;
	nr_done++;
}

static int mem_file(const char *name, char *path, size_t len)
{
	int fd = memfd_create(name, 0);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, DISK) < 0) {
		close(fd);
		return -1;
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

/* Wait for completions until @want requests are done. */
static void reap(struct blk_backend *b, int want)
{
	while (nr_done < want) {
		int efd = b->ops->event_fd ? b->ops->event_fd(b) : -1;
		if (efd >= 0) {
			struct pollfd p = { .fd = efd, .events = POLLIN };
			/* No deadline of our own: a request that never
			 * completes hangs here, and libFuzzer's -timeout (10 s
			 * in CI) reports it.  That timeout is a periodic
			 * SIGALRM, which interrupts poll: EINTR is no error. */
			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				abort();
		}
		b->ops->complete(b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct req reqs[MAX_REQ];
	struct blk_backend *b = NULL;
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = DISK };
	char path[64], err[256];
	int fd, r, n = 0, submitted = 0;
	bool image;

	if (size < 1)
		return 0;
	image = data[0] & 1;
	fd = mem_file("fuzz-blk", path, sizeof(path));
	if (fd < 0)
		return 0;
	if (image && vimg_create(path, &co, err, sizeof(err)) < 0)
		goto out;
	r = image ? blk_img_open(path, "qcow2", 0, &b) :
		    blk_raw_open(path, BLK_RAW_NO_URING, &b);
	if (r < 0)
		goto out;
	nr_done = 0;
	for (size_t p = 1; p + 8 <= size && n < MAX_REQ; p += 8, n++) {
		const uint8_t *c = data + p;
		struct req *q = &reqs[n];
		uint64_t off = (uint64_t)c[2] | (uint64_t)c[3] << 8 | (uint64_t)c[4] << 16;
		uint64_t len = (uint64_t)c[5] | (uint64_t)c[6] << 8;
		int niov = c[1] % 4 + 1;

		memset(q, 0, sizeof(*q));
		q->io.op = (enum blk_op)(c[0] % 5);
		q->io.offset = off;
		q->io.len = len;
		q->io.unmap = c[0] & 8;
		q->io.done = req_done;
		q->io.opaque = q;
		if (q->io.op == BLK_OP_READ || q->io.op == BLK_OP_WRITE) {
			uint64_t at = 0;
			q->buf = malloc(len + 1);
			if (!q->buf)
				break;
			memset(q->buf, c[7], len);
			/* split len over niov segments, the first ones short */
			for (int i = 0; i < niov; i++) {
				uint64_t part = i == niov - 1 ? len - at : (len - at) / 2;
				q->iov[i].iov_base = q->buf + at;
				q->iov[i].iov_len = part;
				at += part;
			}
			q->io.iov = q->iov;
			q->io.iovcnt = niov;
		}
		/* The device only sends requests inside the disk; the backends
		 * must still fail (not misbehave) past it, synchronously. */
		if (off + len > DISK || !b->ops->submit) {
			(void)b->ops->run(b, &q->io);
			q->done = 1;
			nr_done++;
			submitted++;
			continue;
		}
		if (b->ops->submit(b, &q->io) < 0) {
			q->done = 1;
			nr_done++;
		}
		submitted++;
		if (submitted - nr_done >= MAX_INFLIGHT)
			reap(b, submitted - MAX_INFLIGHT / 2);
	}
	reap(b, submitted);
	/* Read back the last in-range write (run synchronously). */
	for (int i = n - 1; i >= 0; i--) {
		struct req *q = &reqs[i];
		if (q->io.op != BLK_OP_WRITE || q->result || !q->io.len ||
		    q->io.offset + q->io.len > DISK)
			continue;
		struct iovec v = { .iov_base = malloc(q->io.len), .iov_len = q->io.len };
		struct blk_io rd = { .op = BLK_OP_READ, .iov = &v, .iovcnt = 1,
				     .offset = q->io.offset, .len = q->io.len };
		bool later = false;
		/* Overlapped by another request (requests in flight together
		 * complete in any order)? */
		for (int j = 0; j < n; j++)
			later |= j != i && reqs[j].io.offset < q->io.offset + q->io.len &&
				 q->io.offset < reqs[j].io.offset + reqs[j].io.len &&
				 reqs[j].io.op != BLK_OP_READ && reqs[j].io.op != BLK_OP_FLUSH;
		if (v.iov_base && !later && b->ops->run(b, &rd) == 0 &&
		    memcmp(v.iov_base, q->buf, q->io.len))
			abort();   /* a completed write did not land */
		free(v.iov_base);
		break;
	}
	for (int i = 0; i < n; i++)
		free(reqs[i].buf);
out:
	blk_backend_close(b);
	close(fd);
	return 0;
}
