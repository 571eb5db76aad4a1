/*
 * Block backends for virtio-blk: where the bytes of a disk live.
 *
 * A backend is a struct blk_backend with an ops table.  Every backend can
 * run() a struct blk_io synchronously; a backend that can overlap requests
 * also has submit(), which queues one and returns at once; its completion
 * callback later runs on the thread that calls complete() (the VMM's event
 * loop, woken through the file descriptor returned by event_fd()).  Without
 * submit() the device runs each request synchronously.
 *
 * Two backends: raw files and block devices (blk_raw.c: io_uring, worker
 * threads or synchronous; the file operations are lib/util/vio.c's, which
 * lib/img's raw driver uses too), and images through lib/img (blk_img.c:
 * qcow2, or raw through the library).  Both use blk_backend.c's completion
 * queue and OFD locking.
 */
#ifndef VIREO_VMM_BLK_BACKEND_H
#define VIREO_VMM_BLK_BACKEND_H

#include <pthread.h>
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

/* Internal snapshots of an image (PUT /vm/snapshot, --restore). */
enum blk_snap_op {
	BLK_SNAP_FIND,     /* 1 and *size (the snapshot's disk size), or 0 */
	BLK_SNAP_CREATE,   /* flush, then take it */
	BLK_SNAP_APPLY,    /* revert the image to it (b->size follows) */
	BLK_SNAP_DELETE,
};

struct blk_backend_ops {
	/* Synchronous: do io now and return 0 or -errno (done() is not
	 * called); transfers are complete or fail. */
	int (*run)(struct blk_backend *b, struct blk_io *io);
	/* Asynchronous (optional): queue io; 0 or -errno (then done() is not
	 * called).  done() may run before submit() returns (a request the
	 * page cache served at once), on the submitting thread. */
	int (*submit)(struct blk_backend *b, struct blk_io *io);
	/* Readable when completions wait; -1 if none. */
	int (*event_fd)(struct blk_backend *b);
	/* Run done() for every finished request; returns how many. */
	int (*complete)(struct blk_backend *b);
	void (*close)(struct blk_backend *b);
	/* Internal snapshots (optional: qcow2 images), with no request in
	 * flight: @op on the snapshot named @name.  0 (FIND: 0 or 1) or
	 * -errno with the reason in @err; -ENOTSUP for an image format
	 * without them. */
	int (*snapshot)(struct blk_backend *b, enum blk_snap_op op, const char *name,
			uint64_t *size, char *err, size_t errlen);
	/* Live migration's hand-over of a writable disk, with no request
	 * in flight: @on false flushes the file and releases its lock, @on
	 * true takes the lock again (-EBUSY while another process holds it).
	 * A read-only backend keeps its shared lock (0).  Messages in @err. */
	int (*lock)(struct blk_backend *b, bool on, char *err, size_t errlen);
};

struct blk_backend {
	const struct blk_backend_ops *ops;
	const char *format;        /* "raw", "qcow2" */
	const char *path;          /* for messages */
	uint64_t size;             /* bytes (virtual disk size) */
	bool read_only;
	bool can_discard;
	bool can_write_zeroes;
};

/* A FIFO of requests (through blk_io.next). */
struct blk_io_list {
	struct blk_io *head, *tail;
};
void blk_io_list_add(struct blk_io_list *l, struct blk_io *io);
struct blk_io *blk_io_list_pop(struct blk_io_list *l);

/*
 * Finished requests waiting for complete(): any thread pushes one with its
 * result and the eventfd is signalled; the event loop's complete() runs
 * their done() callbacks.  @lock may also guard a backend's own queues.
 */
struct blk_done_queue {
	pthread_mutex_t lock;
	struct blk_io_list done;
	int efd;                   /* -1 without async completions */
};
void blk_done_init(struct blk_done_queue *q);
/* Create the eventfd; 0 or -errno. */
int blk_done_open_fd(struct blk_done_queue *q);
void blk_done_destroy(struct blk_done_queue *q);
void blk_done_push(struct blk_done_queue *q, struct blk_io *io, int result);
/* Run done() for every queued request; returns how many. */
int blk_done_run(struct blk_done_queue *q);

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

/*
 * Image-library backend (blk_img.c): a qcow2 (or raw) disk through lib/img,
 * with its backing chain.  @format is "qcow2" or "raw" (never probed); it
 * becomes b->format, the ops are the same.
 * Locks like blk_raw_open (the image exclusive when writable, shared when
 * read-only; every backing file shared).  Returns 0 and *out, or -errno
 * after printing one line naming the file and the problem.
 *
 * Backing files: an image names its own, so a guest's image could name any
 * host file.  Every backing file must have a backing format (never probed)
 * and resolve, after symlinks, inside the image's directory or one of
 * @backing_dirs (NULL-terminated, may be NULL); BLK_IMG_NO_BACKING refuses
 * any backing file.
 */
#define BLK_IMG_READONLY    1u
#define BLK_IMG_NO_BACKING  2u
int blk_img_open(const char *path, const char *format, unsigned flags,
		 struct blk_backend **out);
int blk_img_open_dirs(const char *path, const char *format, unsigned flags,
		      const char *const *backing_dirs, struct blk_backend **out);
/* The library image behind an image backend, or NULL for another backend. */
struct vimg;
struct vimg *blk_img_image(struct blk_backend *b);

static inline void blk_backend_close(struct blk_backend *b)
{
	if (b)
		b->ops->close(b);
}

/*
 * Lock the file behind @fd as a reader (@shared) or a writer, with the
 * lock bytes QEMU uses (vlock_image, lib/util/imglock.c).  On a conflict prints
 * one line naming @path (and, for a backing file, the image @backing_of that
 * needs it) and returns -EBUSY; other failures return -errno.
 */
int blk_lock_file(int fd, bool shared, const char *path, const char *backing_of);
/* blk_backend_ops.lock for a file behind @fd (fdatasync before the
 * release): 0 or -errno with @err set, nothing printed. */
int blk_hand_over_file(int fd, bool read_only, bool on, const char *path, char *err,
		       size_t errlen);

#endif
