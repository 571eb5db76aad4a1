/*
 * Raw file (or block device) backend: the file operations are
 * lib/util/vio.c's (the same code lib/img's raw driver runs); this file
 * adds how requests overlap.  Three engines: io_uring, a few worker
 * threads where io_uring is not available, or none (BLK_RAW_SYNC: submit()
 * runs the request at once and calls done() before returning).  Async
 * completions are collected on the caller's thread by complete(),
 * signalled by an eventfd (blk_backend.c's done queue).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef VIREO_HAVE_URING
#include <liburing.h>
#endif

#include <vireo/util.h>

#include "blk_backend.h"

#define RAW_URING_DEPTH 128u
#define RAW_THREADS 4

enum raw_engine { RAW_ENGINE_SYNC, RAW_ENGINE_URING, RAW_ENGINE_THREADS };

struct blk_raw {
	struct blk_backend b;
	char *path;
	int fd;
	enum raw_engine engine;
	bool no_nowait;             /* RWF_NOWAIT refused by the file */
	/* Finished requests waiting for complete(); its lock also guards
	 * the thread engine's work list. */
	struct blk_done_queue dq;
#ifdef VIREO_HAVE_URING
	struct io_uring ring;
	unsigned inflight;
	struct blk_io_list pend;    /* waiting for ring room */
#endif
	/* Thread engine. */
	pthread_t threads[RAW_THREADS];
	int nr_threads;
	pthread_cond_t cond;
	struct blk_io_list work;
	bool stop;
};

static struct blk_raw *to_raw(struct blk_backend *b)
{
	return (struct blk_raw *)b;
}

/* ---- synchronous operations ---- */

static int raw_run(struct blk_backend *b, struct blk_io *io)
{
	int fd = to_raw(b)->fd;

	if (b->read_only && io->op != BLK_OP_READ && io->op != BLK_OP_FLUSH)
		return -EROFS;
	switch (io->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		return vio_rwv_full(fd, io->op == BLK_OP_WRITE, io->iov, io->iovcnt,
				    io->offset, 0);
	case BLK_OP_FLUSH:
		if (b->read_only)
			return 0;
		return fdatasync(fd) < 0 ? -errno : 0;
	case BLK_OP_DISCARD: {
		/* Discard is a hint: a file system that cannot punch holes
		 * simply keeps the data. */
		int r = vio_punch_hole(fd, io->offset, io->len);
		return r == -EOPNOTSUPP || r == -ENOSYS ? 0 : r;
	}
	case BLK_OP_WRITE_ZEROES:
		return vio_zero_range(fd, io->offset, io->len, io->unmap);
	}
	return -EINVAL;
}

/* ---- worker threads ---- */

/* The VMM's I/O-worker filter (vmm/filters.c); absent in other programs. */
extern void vireo_io_thread_start(void) __attribute__((weak));

static void *raw_worker(void *arg)
{
	struct blk_raw *r = arg;

	if (vireo_io_thread_start)
		vireo_io_thread_start();

	for (;;) {
		struct blk_io *io;

		pthread_mutex_lock(&r->dq.lock);
		while (!r->work.head && !r->stop)
			pthread_cond_wait(&r->cond, &r->dq.lock);
		io = blk_io_list_pop(&r->work);
		pthread_mutex_unlock(&r->dq.lock);
		if (!io)
			return NULL;   /* stopping and nothing left */
		blk_done_push(&r->dq, io, raw_run(&r->b, io));
	}
}

static int raw_threads_start(struct blk_raw *r)
{
	if (pthread_cond_init(&r->cond, NULL))
		return -ENOMEM;
	for (int i = 0; i < RAW_THREADS; i++) {
		int e = pthread_create(&r->threads[i], NULL, raw_worker, r);
		if (e) {
			if (i == 0)
				return -e;
			break;
		}
		r->nr_threads++;
	}
	return 0;
}

/* ---- io_uring ---- */

#ifdef VIREO_HAVE_URING
static bool raw_uring_prep(struct blk_raw *r, struct blk_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

	if (!sqe)
		return false;
	switch (io->op) {
	case BLK_OP_READ:
		io_uring_prep_readv(sqe, r->fd, io->iov,
				    (unsigned)VIREO_MIN(io->iovcnt, IOV_MAX),
				    io->offset);
		break;
	case BLK_OP_WRITE:
		io_uring_prep_writev(sqe, r->fd, io->iov,
				     (unsigned)VIREO_MIN(io->iovcnt, IOV_MAX),
				     io->offset);
		break;
	default:   /* FLUSH */
		io_uring_prep_fsync(sqe, r->fd, IORING_FSYNC_DATASYNC);
		break;
	}
	io_uring_sqe_set_data(sqe, io);
	r->inflight++;
	return true;
}

static void raw_uring_kick(struct blk_raw *r)
{
	while (r->pend.head && r->inflight < RAW_URING_DEPTH) {
		if (!raw_uring_prep(r, r->pend.head))
			break;
		blk_io_list_pop(&r->pend);
	}
	io_uring_submit(&r->ring);
}

static void raw_uring_reap(struct blk_raw *r)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
		struct blk_io *io = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&r->ring, cqe);
		r->inflight--;
		if (res == -EAGAIN || res == -EINTR)
			res = raw_run(&r->b, io);
		else if (res >= 0 && (io->op == BLK_OP_READ || io->op == BLK_OP_WRITE))
			/* A short transfer (or more than IOV_MAX segments):
			 * finish the rest synchronously. */
			res = vio_rwv_full(r->fd, io->op == BLK_OP_WRITE, io->iov,
					   io->iovcnt, io->offset, (uint64_t)res);
		else if (res > 0)
			res = 0;
		blk_done_push(&r->dq, io, res);
	}
}
#endif

/* ---- async interface ---- */

/* Try a read or write that the page cache can serve without blocking
 * (RWF_NOWAIT): when it completes in full, queueing it would only add a
 * round trip through the ring or a thread.  Returns true when done. */
static bool raw_try_nowait(struct blk_raw *r, struct blk_io *io)
{
	ssize_t n;

	if (io->op != BLK_OP_READ && io->op != BLK_OP_WRITE)
		return false;
	if (io->iovcnt > IOV_MAX || r->no_nowait)
		return false;
	n = io->op == BLK_OP_READ
		? preadv2(r->fd, io->iov, io->iovcnt, (off_t)io->offset, RWF_NOWAIT)
		: pwritev2(r->fd, io->iov, io->iovcnt, (off_t)io->offset, RWF_NOWAIT);
	if (n < 0) {
		if (errno == EOPNOTSUPP || errno == EINVAL)
			r->no_nowait = true;   /* not on this file: stop trying */
		return false;
	}
	/* In full, or a short transfer finished the ordinary way; done()
	 * here is allowed: see submit() in blk_backend.h. */
	io->done(io, vio_rwv_full(r->fd, io->op == BLK_OP_WRITE, io->iov,
				  io->iovcnt, io->offset, (uint64_t)n));
	return true;
}

static int raw_submit(struct blk_backend *b, struct blk_io *io)
{
	struct blk_raw *r = to_raw(b);

	if (b->read_only && io->op != BLK_OP_READ && io->op != BLK_OP_FLUSH)
		return -EROFS;
	switch (r->engine) {
	case RAW_ENGINE_SYNC:
		io->done(io, raw_run(b, io));
		return 0;
	case RAW_ENGINE_THREADS:
		if (raw_try_nowait(r, io))
			return 0;
		pthread_mutex_lock(&r->dq.lock);
		blk_io_list_add(&r->work, io);
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->dq.lock);
		return 0;
#ifdef VIREO_HAVE_URING
	case RAW_ENGINE_URING:
		if (raw_try_nowait(r, io))
			return 0;
		if (io->op == BLK_OP_DISCARD || io->op == BLK_OP_WRITE_ZEROES) {
			/* Rare and usually quick: done in place, completed
			 * through the same path as everything else. */
			blk_done_push(&r->dq, io, raw_run(b, io));
			return 0;
		}
		blk_io_list_add(&r->pend, io);
		raw_uring_kick(r);
		return 0;
#endif
	}
	return -EINVAL;
}

static int raw_event_fd(struct blk_backend *b)
{
	return to_raw(b)->dq.efd;
}

static int raw_complete(struct blk_backend *b)
{
#ifdef VIREO_HAVE_URING
	struct blk_raw *r = to_raw(b);

	if (r->engine == RAW_ENGINE_URING) {
		raw_uring_reap(r);
		if (r->pend.head)
			raw_uring_kick(r);
	}
#endif
	return blk_done_run(&to_raw(b)->dq);
}

static void raw_close(struct blk_backend *b)
{
	struct blk_raw *r = to_raw(b);

	if (r->engine == RAW_ENGINE_THREADS) {
		pthread_mutex_lock(&r->dq.lock);
		r->stop = true;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->dq.lock);
		for (int i = 0; i < r->nr_threads; i++)
			pthread_join(r->threads[i], NULL);
		pthread_cond_destroy(&r->cond);
	}
#ifdef VIREO_HAVE_URING
	if (r->engine == RAW_ENGINE_URING) {
		/* Wait for what the kernel still owns before freeing. */
		while (r->inflight) {
			struct io_uring_cqe *cqe;
			if (io_uring_wait_cqe(&r->ring, &cqe) < 0)
				break;
			io_uring_cqe_seen(&r->ring, cqe);
			r->inflight--;
		}
		io_uring_queue_exit(&r->ring);
	}
#endif
	blk_done_destroy(&r->dq);
	/* What the guest wrote is on disk when vireo-vmm ends (a stop signal,
	 * PUT /vm/poweroff), as a qcow2 image's final flush does. */
	if (r->fd >= 0 && !r->b.read_only && fdatasync(r->fd) < 0 && errno != EINVAL)
		verr("disk image %s: final flush failed: %s", r->path, strerror(errno));
	if (r->fd >= 0)
		close(r->fd);
	free(r->path);
	free(r);
}

/* Open the file, learn its size and lock it. */
static int raw_open_file(struct blk_raw *r, const char *path)
{
	int ret;

	r->fd = open(path, (r->b.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (r->fd < 0) {
		ret = -errno;
		verr("cannot open disk image %s: %s%s", path, strerror(-ret),
		     ret == -EACCES || ret == -EROFS ? " (try readonly=on)" : "");
		return ret;
	}
	ret = vio_file_size(r->fd, &r->b.size);
	if (ret < 0) {
		verr("cannot get the size of disk image %s: %s", path, strerror(-ret));
		return ret;
	}
	if (ret > 0) {
		verr("disk image %s is neither a regular file nor a block device",
		     path);
		return -EINVAL;
	}
	return blk_lock_file(r->fd, r->b.read_only, path, NULL);
}

/* Pick the async engine: io_uring unless refused, else worker threads. */
static int raw_start_engine(struct blk_raw *r, unsigned flags)
{
	int ret = blk_done_open_fd(&r->dq);

	if (ret < 0)
		return ret;
#ifdef VIREO_HAVE_URING
	if (!(flags & BLK_RAW_NO_URING)) {
		int e = io_uring_queue_init(RAW_URING_DEPTH, &r->ring, 0);
		if (e == 0 && (e = io_uring_register_eventfd(&r->ring, r->dq.efd)) < 0)
			io_uring_queue_exit(&r->ring);
		if (e == 0) {
			r->engine = RAW_ENGINE_URING;
			return 0;
		}
		vinfo("io_uring unavailable (%s); disk %s uses worker threads",
		      strerror(-e), r->path);
	}
#else
	(void)flags;
#endif
	ret = raw_threads_start(r);
	if (ret == 0)
		r->engine = RAW_ENGINE_THREADS;
	return ret;
}

static int raw_lock(struct blk_backend *b, bool on, char *err, size_t errlen)
{
	return blk_hand_over_file(to_raw(b)->fd, b->read_only, on, b->path, err, errlen);
}

static const struct blk_backend_ops raw_ops = {
	.run = raw_run, .submit = raw_submit, .event_fd = raw_event_fd,
	.complete = raw_complete, .close = raw_close, .lock = raw_lock,
};

int blk_raw_open(const char *path, unsigned flags, struct blk_backend **out)
{
	struct blk_raw *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	r->path = strdup(path);
	blk_done_init(&r->dq);
	r->b.ops = &raw_ops;
	r->b.format = "raw";
	r->b.path = r->path;
	r->b.read_only = (flags & BLK_RAW_READONLY) != 0;
	r->b.can_discard = !r->b.read_only;
	r->b.can_write_zeroes = !r->b.read_only;
	r->engine = RAW_ENGINE_SYNC;
	ret = r->path ? raw_open_file(r, path) : -ENOMEM;
	if (ret == 0 && !(flags & BLK_RAW_SYNC))
		ret = raw_start_engine(r, flags);
	if (ret < 0) {
		raw_close(&r->b);
		return ret;
	}
	*out = &r->b;
	return 0;
}

const char *blk_raw_engine(const struct blk_backend *b)
{
	const struct blk_raw *r = (const struct blk_raw *)b;

	if (b->ops != &raw_ops)
		return "other";
	switch (r->engine) {
	case RAW_ENGINE_URING:   return "io_uring";
	case RAW_ENGINE_THREADS: return "threads";
	default:                 return "sync";
	}
}
