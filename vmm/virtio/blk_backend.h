/*
 * Block backends for virtio-blk: where the bytes of a disk live.
 *
 * A backend is a struct blk_backend with an ops table.  Every backend has
 * synchronous operations (preadv/pwritev/flush/discard/write_zeroes); a
 * backend that can overlap requests also has submit(), which queues one
 * struct blk_io and returns at once; its completion callback later runs on
 * the thread that calls complete() (the VMM's event loop, woken through
 * the file descriptor returned by event_fd()).  Without submit() the
 * device runs each request synchronously.
 *
 * The raw file backend (blk_raw.c) uses io_uring, or worker threads when
 * io_uring is unavailable.  The qcow2 image library plugs in by providing
 * the same ops.
 */
#ifndef VIREO_VMM_BLK_BACKEND_H
#define VIREO_VMM_BLK_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

enum blk_op {
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,
	BLK_OP_DISCARD,
	BLK_OP_WRITE_ZEROES,
};

struct blk_io;
typedef void (*blk_io_done_fn)(struct blk_io *io, int result);

/* One asynchronous request.  The caller owns it (and iov) until done()
 * runs; result is 0 or -errno. */
struct blk_io {
	enum blk_op op;
	const struct iovec *iov;   /* READ/WRITE */
	int iovcnt;
	uint64_t offset;           /* bytes */
	uint64_t len;              /* bytes, READ/WRITE total or range length */
	bool unmap;                /* WRITE_ZEROES: may deallocate */
	blk_io_done_fn done;
	void *opaque;
	/* backend's private bookkeeping */
	uint64_t done_bytes;
	struct blk_io *next;
};

struct blk_backend;

struct blk_backend_ops {
	const char *format;        /* "raw", "qcow2" */
	/* Synchronous; return 0 or -errno; transfers are complete or fail. */
	int (*preadv)(struct blk_backend *b, const struct iovec *iov, int iovcnt,
		      uint64_t off);
	int (*pwritev)(struct blk_backend *b, const struct iovec *iov,
		       int iovcnt, uint64_t off);
	int (*flush)(struct blk_backend *b);
	int (*discard)(struct blk_backend *b, uint64_t off, uint64_t len);
	int (*write_zeroes)(struct blk_backend *b, uint64_t off, uint64_t len,
			    bool unmap);
	/* Asynchronous (optional): queue io; 0 or -errno (then done() is not
	 * called).  done() may run before submit() returns (a request the
	 * page cache served at once), on the submitting thread. */
	int (*submit)(struct blk_backend *b, struct blk_io *io);
	/* Readable when completions wait; -1 if none. */
	int (*event_fd)(struct blk_backend *b);
	/* Run done() for every finished request; returns how many. */
	int (*complete)(struct blk_backend *b);
	void (*close)(struct blk_backend *b);
};

struct blk_backend {
	const struct blk_backend_ops *ops;
	const char *path;          /* for messages */
	uint64_t size;             /* bytes (virtual disk size) */
	bool read_only;
	bool can_discard;
	bool can_write_zeroes;
};

/* Raw file backend. */
#define BLK_RAW_READONLY  1u   /* open O_RDONLY, shared lock */
#define BLK_RAW_NO_URING  2u   /* use worker threads even if io_uring works */
#define BLK_RAW_SYNC      4u   /* no submit(): requests run synchronously */

/*
 * Open @path as a raw disk.  The file is locked with an OFD lock
 * (exclusive when writable, shared when read-only) so two VMMs cannot
 * use one writable image; a conflict fails with -EBUSY after printing
 * which file is in use.  Returns 0 and *out, or -errno (message printed).
 */
int blk_raw_open(const char *path, unsigned flags, struct blk_backend **out);

/* Which async engine a raw backend uses: "io_uring", "threads", "sync". */
const char *blk_raw_engine(const struct blk_backend *b);

static inline void blk_backend_close(struct blk_backend *b)
{
	if (b)
		b->ops->close(b);
}

#endif
