/*
 * What every virtio-blk backend shares: request lists, the queue of
 * finished requests that complete() drains on the event loop, and the OFD
 * lock on disk files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vireo/util.h>

#include "blk_backend.h"

void blk_io_list_add(struct blk_io_list *l, struct blk_io *io)
{
	io->next = NULL;
	if (l->tail)
		l->tail->next = io;
	else
		l->head = io;
	l->tail = io;
}

struct blk_io *blk_io_list_pop(struct blk_io_list *l)
{
	struct blk_io *io = l->head;

	if (io) {
		l->head = io->next;
		if (!l->head)
			l->tail = NULL;
		io->next = NULL;
	}
	return io;
}

void blk_done_init(struct blk_done_queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	q->done.head = q->done.tail = NULL;
	q->efd = -1;
}

int blk_done_open_fd(struct blk_done_queue *q)
{
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return q->efd < 0 ? -errno : 0;
}

void blk_done_destroy(struct blk_done_queue *q)
{
	pthread_mutex_destroy(&q->lock);
	if (q->efd >= 0)
		close(q->efd);
	q->efd = -1;
}

void blk_done_push(struct blk_done_queue *q, struct blk_io *io, int result)
{
	uint64_t one = 1;

	io->done_bytes = (uint64_t)(int64_t)result;  /* carries the result */
	pthread_mutex_lock(&q->lock);
	blk_io_list_add(&q->done, io);
	pthread_mutex_unlock(&q->lock);
	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* counter saturation cannot happen; nothing to do */
	}
}

int blk_done_run(struct blk_done_queue *q)
{
	struct blk_io *list, *io;
	uint64_t cnt;
	int n = 0;

	if (q->efd >= 0 && read(q->efd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: nothing signalled, still look */
	}
	pthread_mutex_lock(&q->lock);
	list = q->done.head;
	q->done.head = q->done.tail = NULL;
	pthread_mutex_unlock(&q->lock);
	while ((io = list)) {
		list = io->next;
		io->next = NULL;
		io->done(io, (int)(int64_t)io->done_bytes);
		n++;
	}
	return n;
}

int blk_hand_over_file(int fd, bool read_only, bool on, const char *path, char *err,
		       size_t errlen)
{
	int r;

	if (read_only)
		return 0;
	if (!on && fdatasync(fd) < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot flush disk image %s: %s", path, strerror(e));
		return -e;
	}
	r = on ? vlock_image(fd, true) : vlock_image_drop(fd);
	if (r == -EBUSY)
		snprintf(err, errlen, "disk image %s is in use by another process", path);
	else if (r)
		snprintf(err, errlen, "cannot %s disk image %s: %s", on ? "lock" : "unlock",
			 path, strerror(-r));
	return r;
}

int blk_lock_file(int fd, bool shared, const char *path, const char *backing_of)
{
	int e = -vlock_image(fd, !shared);

	if (!e)
		return 0;
	if (e == EBUSY) {
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
