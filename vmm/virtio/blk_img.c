/*
 * Image-library backend for virtio-blk: qcow2 disks (and raw, though the
 * VMM keeps the io_uring backend for raw) through lib/img.
 *
 * Requests go to the library's async pool (vimg_aio_*): a read or write is
 * split into one pool request per iovec segment (no bounce buffer), and the
 * blk_io completes when its last segment does.  Callbacks run on pool
 * threads; they push the blk_io on blk_backend.c's done queue, and
 * complete() (the VMM's event loop) runs the done() callbacks, as the raw
 * backend does.  One ops table serves both formats; b->format says which.
 *
 * Locking: the library locks every file of the chain with an OFD lock on
 * the descriptor it then uses (the image exclusive when writable, shared
 * when read-only; backing files shared), so nothing is written to an
 * image another VMM or vireo-img uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vireo/img.h>
#include <vireo/util.h>

#include "blk_backend.h"

#define IMG_THREADS 4

struct blk_img {
	struct blk_backend b;
	struct vimg *img;
	struct vimg_aio *aio;
	char *path;
	/* Finished requests; its lock also guards every img_req. */
	struct blk_done_queue dq;
};

/* One blk_io split into pool requests: completes when pending reaches 0. */
struct img_req {
	struct blk_img *bi;
	struct blk_io *io;
	int pending;          /* outstanding pool requests + 1 while submitting */
	int err;              /* first error */
};

static struct blk_img *to_img(struct blk_backend *b)
{
	return (struct blk_img *)b;
}

/* ---- synchronous operations ---- */

static int img_run(struct blk_backend *b, struct blk_io *io)
{
	struct vimg *img = to_img(b)->img;
	uint64_t off = io->offset;

	if (b->read_only && io->op != BLK_OP_READ && io->op != BLK_OP_FLUSH)
		return -EROFS;
	switch (io->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		for (int i = 0; i < io->iovcnt; i++) {
			const struct iovec *v = &io->iov[i];
			int r = io->op == BLK_OP_READ ?
				vimg_pread(img, v->iov_base, v->iov_len, off) :
				vimg_pwrite(img, v->iov_base, v->iov_len, off);
			if (r < 0)
				return r;
			off += v->iov_len;
		}
		return 0;
	case BLK_OP_FLUSH:
		return b->read_only ? 0 : vimg_flush(img);
	case BLK_OP_DISCARD:
		return vimg_discard(img, io->offset, io->len);
	case BLK_OP_WRITE_ZEROES:
		/* unmap: the library decides (zero clusters on qcow2 v3) */
		return vimg_pwrite_zeroes(img, io->offset, io->len);
	}
	return -EINVAL;
}

/* ---- asynchronous operations ---- */

/* Drop one reference of req; the last one finishes the blk_io. */
static void img_req_put(struct img_req *req, int ret)
{
	struct blk_img *bi = req->bi;
	int left;

	pthread_mutex_lock(&bi->dq.lock);
	if (ret < 0 && req->err == 0)
		req->err = ret;
	left = --req->pending;
	pthread_mutex_unlock(&bi->dq.lock);
	if (left == 0) {
		blk_done_push(&bi->dq, req->io, req->err);
		free(req);
	}
}

static void img_aio_cb(void *opaque, int ret)
{
	img_req_put(opaque, ret);
}

static int img_queue(struct img_req *req, enum vimg_aio_op op, void *buf,
		     size_t len, uint64_t off)
{
	struct blk_img *bi = req->bi;
	int r;

	pthread_mutex_lock(&bi->dq.lock);
	req->pending++;
	pthread_mutex_unlock(&bi->dq.lock);
	r = vimg_aio_submit(bi->aio, op, buf, len, off, img_aio_cb, req);
	if (r < 0) {
		/* Not queued: undo the reference taken for it.  The submitter's
		 * own reference keeps req alive, so this never frees it. */
		pthread_mutex_lock(&bi->dq.lock);
		if (req->err == 0)
			req->err = r;
		req->pending--;
		pthread_mutex_unlock(&bi->dq.lock);
	}
	return r;
}

static int img_submit(struct blk_backend *b, struct blk_io *io)
{
	struct blk_img *bi = to_img(b);
	struct img_req *req;
	uint64_t off = io->offset;

	if (b->read_only && io->op != BLK_OP_READ && io->op != BLK_OP_FLUSH)
		return -EROFS;
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->bi = bi;
	req->io = io;
	req->pending = 1;   /* held until every part is queued */
	switch (io->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		for (int i = 0; i < io->iovcnt; i++) {
			if (io->iov[i].iov_len == 0)
				continue;
			if (img_queue(req, io->op == BLK_OP_READ ? VIMG_AIO_READ :
				      VIMG_AIO_WRITE, io->iov[i].iov_base,
				      io->iov[i].iov_len, off) < 0)
				break;   /* the error finishes the request */
			off += io->iov[i].iov_len;
		}
		break;
	case BLK_OP_FLUSH:
		if (!b->read_only)
			img_queue(req, VIMG_AIO_FLUSH, NULL, 0, 0);
		break;
	case BLK_OP_DISCARD:
		img_queue(req, VIMG_AIO_DISCARD, NULL, io->len, io->offset);
		break;
	case BLK_OP_WRITE_ZEROES:
		img_queue(req, VIMG_AIO_WRITE_ZEROES, NULL, io->len, io->offset);
		break;
	default:
		img_req_put(req, -EINVAL);
		return 0;
	}
	img_req_put(req, 0);
	return 0;
}

static int img_event_fd(struct blk_backend *b)
{
	return to_img(b)->dq.efd;
}

static int img_complete(struct blk_backend *b)
{
	return blk_done_run(&to_img(b)->dq);
}

static void img_close(struct blk_backend *b)
{
	struct blk_img *bi = to_img(b);

	if (bi->aio)
		vimg_aio_stop(bi->aio);   /* finishes what is queued */
	if (bi->img) {
		int r = vimg_close(bi->img);
		if (r < 0)
			verr("disk image %s: final flush failed: %s", bi->path,
			     strerror(-r));
	}
	blk_done_destroy(&bi->dq);
	free(bi->path);
	free(bi);
}

/* Say why the library refused to open a disk, in the VMM's words. */
static void img_open_error(const char *path, const char *format, bool ro, int ret,
			   const char *err)
{
	if (ret == -EBUSY && !strstr(err, "backing file"))
		verr("disk image %s is in use by another process (it holds a "
		     "conflicting lock); stop the other VM or open the disk with "
		     "readonly=on in both", path);
	else if (ret == -EBUSY)
		verr("disk image %s: a backing file is being written by another "
		     "process; stop that VM first (%s)", path, err);
	else if (!strcmp(format, "qcow2") && strstr(err, "not a qcow2 image"))
		verr("disk image %s was given as format=qcow2 but is not a qcow2 "
		     "image (no qcow2 header); say format=raw if it is a raw "
		     "image", path);
	else if (!strncmp(err, "cannot open '", 13) && !strstr(err, "backing file"))
		verr("cannot open disk image %s: %s%s", path, strerror(-ret),
		     !ro && (ret == -EACCES || ret == -EROFS) ? " (try readonly=on)" : "");
	else if (strstr(err, path))   /* the library's message names the file */
		verr("%s (disk given as format=%s)", err, format);
	else
		verr("disk image %s (format=%s): %s", path, format, err);
}

static int img_snapshot(struct blk_backend *b, enum blk_snap_op op, const char *name,
			uint64_t *size, char *err, size_t errlen)
{
	struct vimg *img = to_img(b)->img;
	struct vimg_snapshot *list = NULL;
	int n = 0, r = 0;

	if (strcmp(b->format, "qcow2")) {
		snprintf(err, errlen, "a %s image has no internal snapshots", b->format);
		return -ENOTSUP;
	}
	switch (op) {
	case BLK_SNAP_FIND:
		r = vimg_snapshot_list(img, &list, &n);
		if (r < 0)
			break;
		r = 0;
		for (int i = 0; i < n && !r; i++)
			if (!strcmp(list[i].name, name)) {
				*size = list[i].disk_size;
				r = 1;
			}
		free(list);
		return r;
	case BLK_SNAP_CREATE:
		if (b->read_only) {
			snprintf(err, errlen, "the image is read-only");
			return -EROFS;
		}
		r = vimg_flush(img);
		if (r >= 0)
			r = vimg_snapshot_create(img, name);
		if (r >= 0)
			r = vimg_flush(img);
		break;
	case BLK_SNAP_APPLY:
		r = vimg_snapshot_apply(img, name);
		if (r >= 0)
			r = vimg_flush(img);
		b->size = vimg_size(img);
		break;
	case BLK_SNAP_DELETE:
		r = vimg_snapshot_delete(img, name);
		if (r >= 0)
			r = vimg_flush(img);
		break;
	}
	if (r < 0) {
		const char *m = vimg_errmsg(img);

		snprintf(err, errlen, "%s", m && *m ? m : strerror(-r));
		return r;
	}
	return 0;
}

static int img_lock(struct blk_backend *b, bool on, char *err, size_t errlen)
{
	return vimg_lock(to_img(b)->img, on, err, errlen);
}

static const struct blk_backend_ops img_ops = {
	.run = img_run, .submit = img_submit, .event_fd = img_event_fd,
	.complete = img_complete, .close = img_close, .snapshot = img_snapshot,
	.lock = img_lock,
};

int blk_img_open(const char *path, const char *format, unsigned flags,
		 struct blk_backend **out)
{
	return blk_img_open_dirs(path, format, flags, NULL, out);
}

int blk_img_open_dirs(const char *path, const char *format, unsigned flags,
		      const char *const *backing_dirs, struct blk_backend **out)
{
	struct vimg_open_opts o = { 0 };
	struct blk_img *bi;
	char err[512];
	int ret;

	if (!format || (strcmp(format, "qcow2") && strcmp(format, "raw"))) {
		verr("disk image %s: unknown format '%s'; use raw or qcow2", path,
		     format ? format : "(none)");
		return -EINVAL;
	}
	bi = calloc(1, sizeof(*bi));
	if (!bi)
		return -ENOMEM;
	blk_done_init(&bi->dq);
	bi->path = strdup(path);
	bi->b.ops = &img_ops;
	bi->b.format = strcmp(format, "qcow2") ? "raw" : "qcow2";
	bi->b.path = bi->path;
	bi->b.read_only = (flags & BLK_IMG_READONLY) != 0;
	if (!bi->path) {
		ret = -ENOMEM;
		goto fail;
	}
	o.format = format;
	o.readonly = bi->b.read_only;
	o.forbid_backing = (flags & BLK_IMG_NO_BACKING) != 0;
	o.require_backing_fmt = true;
	o.confine_backing = true;
	o.backing_dirs = backing_dirs;
	/* The library locks the files (before a dirty qcow2 opened read-write
	 * is repaired, a write). */
	ret = vimg_open(path, &o, &bi->img, err, sizeof(err));
	if (ret < 0) {
		img_open_error(path, format, bi->b.read_only, ret, err);
		goto fail;
	}
	bi->b.size = vimg_size(bi->img);
	bi->b.can_discard = !bi->b.read_only;
	bi->b.can_write_zeroes = !bi->b.read_only;
	ret = blk_done_open_fd(&bi->dq);
	if (ret < 0) {
		verr("disk image %s: cannot create an eventfd: %s", path,
		     strerror(-ret));
		goto fail;
	}
	ret = vimg_aio_start(bi->img, IMG_THREADS, &bi->aio);
	if (ret < 0) {
		verr("disk image %s: cannot start I/O threads: %s", path,
		     strerror(-ret));
		goto fail;
	}
	*out = &bi->b;
	return 0;
fail:
	img_close(&bi->b);
	return ret;
}

struct vimg *blk_img_image(struct blk_backend *b)
{
	if (b->ops != &img_ops)
		return NULL;
	return to_img(b)->img;
}
