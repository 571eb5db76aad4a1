/*
 * Raw file (or block device) backend: synchronous operations, plus
 * asynchronous submission through io_uring or, where io_uring is not
 * available, a few worker threads.  Completions are collected on the
 * caller's thread by complete(), signalled by an eventfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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
	int efd;                    /* completions ready */
	enum raw_engine engine;
	bool is_blockdev;
	bool no_nowait;             /* RWF_NOWAIT refused by the file */
	/* Finished requests waiting for complete() (all engines). */
	pthread_mutex_t lock;
	struct blk_io *done_head, *done_tail;
#ifdef VIREO_HAVE_URING
	struct io_uring ring;
	unsigned inflight;
	struct blk_io *pend_head, *pend_tail;  /* waiting for ring room */
#endif
	/* Thread engine. */
	pthread_t threads[RAW_THREADS];
	int nr_threads;
	pthread_cond_t cond;
	struct blk_io *work_head, *work_tail;
	bool stop;
};

static struct blk_raw *to_raw(struct blk_backend *b)
{
	return (struct blk_raw *)b;
}

static void io_list_add(struct blk_io **head, struct blk_io **tail,
			struct blk_io *io)
{
	io->next = NULL;
	if (*tail)
		(*tail)->next = io;
	else
		*head = io;
	*tail = io;
}

static struct blk_io *io_list_pop(struct blk_io **head, struct blk_io **tail)
{
	struct blk_io *io = *head;

	if (io) {
		*head = io->next;
		if (!*head)
			*tail = NULL;
		io->next = NULL;
	}
	return io;
}

/* ---- synchronous operations ---- */

/* Copy of iov without its first @skip bytes (malloc'd); sets *cnt. */
static struct iovec *iov_tail(const struct iovec *iov, int iovcnt,
			      uint64_t skip, int *cnt)
{
	struct iovec *v;
	int i = 0, n = 0;

	while (i < iovcnt && skip >= iov[i].iov_len) {
		skip -= iov[i].iov_len;
		i++;
	}
	v = calloc((size_t)(iovcnt - i) + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (; i < iovcnt; i++) {
		v[n].iov_base = (char *)iov[i].iov_base + skip;
		v[n].iov_len = iov[i].iov_len - skip;
		skip = 0;
		n++;
	}
	*cnt = n;
	return v;
}

static uint64_t iov_total(const struct iovec *iov, int iovcnt)
{
	uint64_t t = 0;

	for (int i = 0; i < iovcnt; i++)
		t += iov[i].iov_len;
	return t;
}

/* Finish a vectored transfer of which @done bytes already happened. */
static int raw_rw_rest(struct blk_raw *r, bool write, const struct iovec *iov,
		       int iovcnt, uint64_t off, uint64_t done)
{
	uint64_t total = iov_total(iov, iovcnt);
	struct iovec *v = NULL;
	int cnt = iovcnt, ret = 0;
	const struct iovec *cur = iov;

	while (done < total) {
		ssize_t n;

		if (done) {
			free(v);
			v = iov_tail(iov, iovcnt, done, &cnt);
			if (!v)
				return -ENOMEM;
			cur = v;
		}
		if (cnt > IOV_MAX)
			cnt = IOV_MAX;
		n = write ? pwritev(r->fd, cur, cnt, (off_t)(off + done))
			  : preadv(r->fd, cur, cnt, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n == 0) {
			ret = -EIO;   /* the file shrank under us */
			break;
		}
		done += (uint64_t)n;
	}
	free(v);
	return ret;
}

static int raw_preadv(struct blk_backend *b, const struct iovec *iov,
		      int iovcnt, uint64_t off)
{
	return raw_rw_rest(to_raw(b), false, iov, iovcnt, off, 0);
}

static int raw_pwritev(struct blk_backend *b, const struct iovec *iov,
		       int iovcnt, uint64_t off)
{
	if (b->read_only)
		return -EROFS;
	return raw_rw_rest(to_raw(b), true, iov, iovcnt, off, 0);
}

static int raw_flush(struct blk_backend *b)
{
	if (b->read_only)
		return 0;
	return fdatasync(to_raw(b)->fd) < 0 ? -errno : 0;
}

static int raw_write_zero_bytes(struct blk_raw *r, uint64_t off, uint64_t len)
{
	size_t chunk = 1u << 20;
	char *z = calloc(1, chunk);
	int ret = 0;

	if (!z)
		return -ENOMEM;
	while (len && ret == 0) {
		size_t n = (size_t)VIREO_MIN(len, (uint64_t)chunk);
		ret = vio_pwrite_full(r->fd, z, n, (off_t)off);
		off += n;
		len -= n;
	}
	free(z);
	return ret;
}

static int raw_discard(struct blk_backend *b, uint64_t off, uint64_t len)
{
	struct blk_raw *r = to_raw(b);

	if (b->read_only)
		return -EROFS;
	if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0) {
		/* Discard is a hint: a file system that cannot punch holes
		 * simply keeps the data. */
		if (errno == EOPNOTSUPP || errno == ENOSYS)
			return 0;
		return -errno;
	}
	return 0;
}

static int raw_write_zeroes(struct blk_backend *b, uint64_t off, uint64_t len,
			    bool unmap)
{
	struct blk_raw *r = to_raw(b);
	int mode = unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
			 : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

	if (b->read_only)
		return -EROFS;
	if (fallocate(r->fd, mode, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
		return -errno;
	return raw_write_zero_bytes(r, off, len);
}

static int raw_sync_io(struct blk_backend *b, struct blk_io *io)
{
	switch (io->op) {
	case BLK_OP_READ:
		return raw_preadv(b, io->iov, io->iovcnt, io->offset);
	case BLK_OP_WRITE:
		return raw_pwritev(b, io->iov, io->iovcnt, io->offset);
	case BLK_OP_FLUSH:
		return raw_flush(b);
	case BLK_OP_DISCARD:
		return raw_discard(b, io->offset, io->len);
	case BLK_OP_WRITE_ZEROES:
		return raw_write_zeroes(b, io->offset, io->len, io->unmap);
	}
	return -EINVAL;
}

/* Queue a finished request for complete(); any thread. */
static void raw_finished(struct blk_raw *r, struct blk_io *io, int result)
{
	uint64_t one = 1;

	io->done_bytes = (uint64_t)(int64_t)result;  /* carries the result */
	pthread_mutex_lock(&r->lock);
	io_list_add(&r->done_head, &r->done_tail, io);
	pthread_mutex_unlock(&r->lock);
	if (write(r->efd, &one, sizeof(one)) < 0) {
		/* counter saturation cannot happen; nothing to do */
	}
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

		pthread_mutex_lock(&r->lock);
		while (!r->work_head && !r->stop)
			pthread_cond_wait(&r->cond, &r->lock);
		io = io_list_pop(&r->work_head, &r->work_tail);
		pthread_mutex_unlock(&r->lock);
		if (!io)
			return NULL;   /* stopping and nothing left */
		raw_finished(r, io, raw_sync_io(&r->b, io));
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
	struct blk_io *io;

	while (r->pend_head && r->inflight < RAW_URING_DEPTH) {
		io = r->pend_head;
		if (!raw_uring_prep(r, io))
			break;
		io_list_pop(&r->pend_head, &r->pend_tail);
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
			res = raw_sync_io(&r->b, io);
		else if (res >= 0 && (io->op == BLK_OP_READ || io->op == BLK_OP_WRITE))
			/* A short transfer (or more than IOV_MAX segments):
			 * finish the rest synchronously. */
			res = raw_rw_rest(r, io->op == BLK_OP_WRITE, io->iov,
					  io->iovcnt, io->offset, (uint64_t)res);
		else if (res > 0)
			res = 0;
		raw_finished(r, io, res);
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
	if ((uint64_t)n == iov_total(io->iov, io->iovcnt)) {
		io->done(io, 0);   /* allowed: see submit() in blk_backend.h */
		return true;
	}
	/* A short transfer: finish the rest the ordinary way. */
	io->done(io, raw_rw_rest(r, io->op == BLK_OP_WRITE, io->iov, io->iovcnt,
				 io->offset, (uint64_t)n));
	return true;
}

static int raw_submit(struct blk_backend *b, struct blk_io *io)
{
	struct blk_raw *r = to_raw(b);

	if (b->read_only && io->op != BLK_OP_READ && io->op != BLK_OP_FLUSH)
		return -EROFS;
	if (r->engine != RAW_ENGINE_SYNC && raw_try_nowait(r, io))
		return 0;
	switch (r->engine) {
	case RAW_ENGINE_THREADS:
		pthread_mutex_lock(&r->lock);
		io_list_add(&r->work_head, &r->work_tail, io);
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->lock);
		return 0;
#ifdef VIREO_HAVE_URING
	case RAW_ENGINE_URING:
		if (io->op == BLK_OP_DISCARD || io->op == BLK_OP_WRITE_ZEROES) {
			/* Rare and usually quick: done in place, completed
			 * through the same path as everything else. */
			raw_finished(r, io, raw_sync_io(b, io));
			return 0;
		}
		io_list_add(&r->pend_head, &r->pend_tail, io);
		raw_uring_kick(r);
		return 0;
#endif
	default:
		raw_finished(r, io, raw_sync_io(b, io));
		return 0;
	}
}

static int raw_event_fd(struct blk_backend *b)
{
	return to_raw(b)->efd;
}

static int raw_complete(struct blk_backend *b)
{
	struct blk_raw *r = to_raw(b);
	struct blk_io *list, *io;
	uint64_t cnt;
	int n = 0;

	if (read(r->efd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: nothing signalled, still look */
	}
#ifdef VIREO_HAVE_URING
	if (r->engine == RAW_ENGINE_URING) {
		raw_uring_reap(r);
		if (r->pend_head)
			raw_uring_kick(r);
	}
#endif
	pthread_mutex_lock(&r->lock);
	list = r->done_head;
	r->done_head = r->done_tail = NULL;
	pthread_mutex_unlock(&r->lock);
	while ((io = list)) {
		list = io->next;
		io->next = NULL;
		io->done(io, (int)(int64_t)io->done_bytes);
		n++;
	}
	return n;
}

static void raw_close(struct blk_backend *b)
{
	struct blk_raw *r = to_raw(b);

	if (r->engine == RAW_ENGINE_THREADS) {
		pthread_mutex_lock(&r->lock);
		r->stop = true;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
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
	pthread_mutex_destroy(&r->lock);
	if (r->efd >= 0)
		close(r->efd);
	if (r->fd >= 0)
		close(r->fd);
	free(r->path);
	free(r);
}

static const struct blk_backend_ops raw_ops = {
	.format = "raw",
	.preadv = raw_preadv,
	.pwritev = raw_pwritev,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.submit = raw_submit,
	.event_fd = raw_event_fd,
	.complete = raw_complete,
	.close = raw_close,
};

static const struct blk_backend_ops raw_sync_ops = {
	.format = "raw",
	.preadv = raw_preadv,
	.pwritev = raw_pwritev,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.close = raw_close,
};

int blk_lock_file(int fd, bool shared, const char *path, const char *backing_of)
{
	struct flock fl = {
		.l_type = shared ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
	};
	int e;

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	e = errno;
	if (e == EAGAIN || e == EACCES) {
		if (backing_of)
			verr("backing file %s of disk image %s is being written by "
			     "another process; stop that VM first", path, backing_of);
		else
			verr("disk image %s is in use by another process (it holds a "
			     "conflicting lock); stop the other VM or open the disk with "
			     "readonly=on in both", path);
		return -EBUSY;
	}
	verr("cannot lock disk image %s: %s", path, strerror(e));
	return -e;
}

static int raw_lock(struct blk_raw *r)
{
	return blk_lock_file(r->fd, r->b.read_only, r->path, NULL);
}

int blk_raw_open(const char *path, unsigned flags, struct blk_backend **out)
{
	struct blk_raw *r;
	struct stat st;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->efd = -1;
	r->path = strdup(path);
	pthread_mutex_init(&r->lock, NULL);
	r->b.ops = (flags & BLK_RAW_SYNC) ? &raw_sync_ops : &raw_ops;
	r->b.path = r->path;
	r->b.read_only = (flags & BLK_RAW_READONLY) != 0;
	r->engine = RAW_ENGINE_SYNC;
	r->fd = open(path, (r->b.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (r->fd < 0 || !r->path) {
		ret = r->path ? -errno : -ENOMEM;
		verr("cannot open disk image %s: %s%s", path, strerror(-ret),
		     ret == -EACCES || ret == -EROFS ? " (try readonly=on)" : "");
		goto fail;
	}
	if (fstat(r->fd, &st) < 0) {
		ret = -errno;
		goto fail;
	}
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz;
		if (ioctl(r->fd, BLKGETSIZE64, &sz) < 0) {
			ret = -errno;
			verr("cannot get the size of block device %s: %s", path,
			     strerror(-ret));
			goto fail;
		}
		r->b.size = sz;
		r->is_blockdev = true;
	} else if (S_ISREG(st.st_mode)) {
		r->b.size = (uint64_t)st.st_size;
	} else {
		verr("disk image %s is neither a regular file nor a block device",
		     path);
		ret = -EINVAL;
		goto fail;
	}
	ret = raw_lock(r);
	if (ret < 0)
		goto fail;
	r->b.can_discard = !r->b.read_only;
	r->b.can_write_zeroes = !r->b.read_only;
	if (flags & BLK_RAW_SYNC) {
		*out = &r->b;
		return 0;
	}
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		ret = -errno;
		goto fail;
	}
#ifdef VIREO_HAVE_URING
	if (!(flags & BLK_RAW_NO_URING)) {
		int e = io_uring_queue_init(RAW_URING_DEPTH, &r->ring, 0);
		if (e == 0 && (e = io_uring_register_eventfd(&r->ring, r->efd)) < 0)
			io_uring_queue_exit(&r->ring);
		if (e == 0) {
			r->engine = RAW_ENGINE_URING;
		} else {
			vinfo("io_uring unavailable (%s); disk %s uses worker threads",
			      strerror(-e), path);
		}
	}
#endif
	if (r->engine == RAW_ENGINE_SYNC) {
		ret = raw_threads_start(r);
		if (ret < 0)
			goto fail;
		r->engine = RAW_ENGINE_THREADS;
	}
	*out = &r->b;
	return 0;
fail:
	raw_close(&r->b);
	return ret;
}

const char *blk_raw_engine(const struct blk_backend *b)
{
	const struct blk_raw *r = (const struct blk_raw *)b;

	if (b->ops != &raw_ops && b->ops != &raw_sync_ops)
		return "other";
	switch (r->engine) {
	case RAW_ENGINE_URING:   return "io_uring";
	case RAW_ENGINE_THREADS: return "threads";
	default:                 return "sync";
	}
}
