/*
 * virtio-blk: decode requests from the guest, check them, hand them to a
 * block backend, report the status byte.
 *
 * A request is a chain: a 16-byte header (type, reserved, sector) in the
 * readable part, then data (readable for OUT and the discard/write-zeroes
 * ranges, writable for IN and GET_ID), then one writable status byte at the
 * very end.  Framing is not assumed: header and status are located by
 * byte offset, whatever descriptors they sit in.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "blk.h"

struct virtio_blk {
	struct virtio_dev vdev;          /* first: container_of by cast */
	struct blk_backend *be;
	uint64_t sectors;
	char serial[VIRTIO_BLK_ID_BYTES];
	unsigned inflight;
	unsigned generation;             /* bumped by reset */
	bool throttled;                  /* stopped popping: too many in flight */
	bool watching;
	struct virtq_chain chain;        /* scratch for popping */
	struct virtio_blk_stats st;      /* under the device lock */
};

struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct blk_req {
	struct blk_io io;
	struct virtio_blk *blk;
	unsigned generation;
	uint16_t head;
	uint8_t *status;
	uint32_t written;                /* used length on success */
	uint8_t counted;                 /* 1 read, 2 write: for the counters */
	/* discard / write-zeroes: ranges done one after another */
	unsigned nr_ranges, cur_range;
	struct blk_range ranges[VIRTIO_BLK_MAX_SEGS];
	int iovcnt;
	struct iovec iov[];
};

struct blk_hdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

static struct virtio_blk *to_blk(struct virtio_dev *d)
{
	return (struct virtio_blk *)d;
}

static void blk_process(struct virtio_blk *b);

static void req_finish(struct blk_req *r, uint8_t status, uint32_t written)
{
	struct virtio_blk *b = r->blk;

	if (r->generation == b->generation) {
		if (status == VIRTIO_BLK_S_OK && r->counted == 1) {
			b->st.read_ops++;
			b->st.read_bytes += r->io.len;
		} else if (status == VIRTIO_BLK_S_OK && r->counted == 2) {
			b->st.write_ops++;
			b->st.write_bytes += r->io.len;
		}
		*r->status = status;
		virtq_push(&b->vdev.vq[0], r->head, written);
	}
	b->inflight--;
	free(r);
}

static int req_submit_range(struct blk_req *r);

static void req_done(struct blk_io *io, int result)
{
	struct blk_req *r = io->opaque;

	if (result < 0) {
		if (r->generation == r->blk->generation)
			vdebug("%s: %s at byte %llu failed: %s", r->blk->vdev.name,
			       io->op == BLK_OP_READ ? "read" : "write",
			       (unsigned long long)io->offset, strerror(-result));
		req_finish(r, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	if (r->nr_ranges && ++r->cur_range < r->nr_ranges) {
		if (req_submit_range(r) == 0)
			return;
		req_finish(r, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	req_finish(r, VIRTIO_BLK_S_OK, r->written);
}

/* Submit r->io, synchronously when the backend has no submit(). */
static int req_submit(struct blk_req *r)
{
	struct blk_backend *be = r->blk->be;
	struct blk_io *io = &r->io;
	int ret;

	io->done = req_done;
	io->opaque = r;
	if (be->ops->submit)
		return be->ops->submit(be, io);
	ret = be->ops->run(be, io);
	req_done(io, ret);
	return 0;
}

static int req_submit_range(struct blk_req *r)
{
	const struct blk_range *rg = &r->ranges[r->cur_range];

	r->io.offset = rg->sector * 512;
	r->io.len = (uint64_t)rg->num_sectors * 512;
	r->io.unmap = (rg->flags & VIRTIO_BLK_WZ_F_UNMAP) != 0;
	return req_submit(r);
}

/* Is [sector, sector + bytes/512) inside the disk? */
static bool blk_in_range(const struct virtio_blk *b, uint64_t sector,
			 uint64_t bytes)
{
	return sector <= b->sectors && bytes / 512 <= b->sectors - sector;
}

/* Build the data iovecs of a request: the readable bytes after the header
 * (out) or the writable bytes before the status byte (in). */
static int req_data_iov(const struct virtq_chain *c, bool in,
			struct iovec *iov, uint64_t *total)
{
	unsigned first = in ? c->nr_out : 0;
	unsigned end = in ? c->nr_out + c->nr_in : c->nr_out;
	uint64_t skip = in ? 0 : sizeof(struct blk_hdr);
	uint64_t left = in ? c->in_len - 1 : c->out_len - sizeof(struct blk_hdr);
	int n = 0;

	*total = left;
	for (unsigned i = first; i < end && left; i++) {
		size_t len = c->iov[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		iov[n].iov_base = (char *)c->iov[i].iov_base + skip;
		iov[n].iov_len = (size_t)VIREO_MIN((uint64_t)(len - skip), left);
		left -= iov[n].iov_len;
		skip = 0;
		n++;
	}
	return n;
}

/* Parse the ranges of a discard / write-zeroes request.  Returns a
 * virtio status (OK when r->ranges is ready). */
static uint8_t req_ranges(struct virtio_blk *b, const struct virtq_chain *c,
			  struct blk_req *r, uint32_t type)
{
	uint64_t len = c->out_len - sizeof(struct blk_hdr);
	uint32_t allowed = type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WZ_F_UNMAP : 0;

	if (len == 0 || len % 16 || len / 16 > VIRTIO_BLK_MAX_SEGS)
		return VIRTIO_BLK_S_IOERR;
	r->nr_ranges = (unsigned)(len / 16);
	for (unsigned i = 0; i < r->nr_ranges; i++) {
		uint8_t raw[16];
		uint64_t sector;
		uint32_t num, flags;

		virtq_chain_read(c, sizeof(struct blk_hdr) + 16 * i, raw, 16);
		memcpy(&sector, raw, 8);
		memcpy(&num, raw + 8, 4);
		memcpy(&flags, raw + 12, 4);
		sector = le64toh(sector);
		num = le32toh(num);
		flags = le32toh(flags);
		if (flags & ~allowed)
			return VIRTIO_BLK_S_UNSUPP;
		if (num > VIRTIO_BLK_MAX_RANGE || !blk_in_range(b, sector, (uint64_t)num * 512))
			return VIRTIO_BLK_S_IOERR;
		r->ranges[i].sector = sector;
		r->ranges[i].num_sectors = num;
		r->ranges[i].flags = flags;
	}
	return VIRTIO_BLK_S_OK;
}

/* Handle one chain.  Returns 0, or -EIO when the device broke. */
static int blk_handle(struct virtio_blk *b, const struct virtq_chain *c)
{
	struct virtio_dev *d = &b->vdev;
	const struct iovec *last;
	struct blk_hdr hdr;
	struct blk_req *r;
	uint64_t data_len;
	uint8_t *status;
	uint8_t st;
	bool in;
	int niov;

	if (c->in_len == 0) {
		virtio_dev_fail(d, "request %u has no status byte", c->head);
		return -EIO;
	}
	last = &c->iov[c->nr_out + c->nr_in - 1];
	status = (uint8_t *)last->iov_base + last->iov_len - 1;
	if (c->out_len < sizeof(hdr)) {
		*status = VIRTIO_BLK_S_IOERR;
		virtq_push(&d->vq[0], c->head, 1);
		return 0;
	}
	virtq_chain_read(c, 0, &hdr, sizeof(hdr));
	hdr.type = le32toh(hdr.type);
	hdr.sector = le64toh(hdr.sector);

	in = hdr.type == VIRTIO_BLK_T_IN || hdr.type == VIRTIO_BLK_T_GET_ID;
	r = calloc(1, sizeof(*r) + sizeof(struct iovec) *
		   (size_t)(in ? c->nr_in : c->nr_out));
	if (!r) {
		*status = VIRTIO_BLK_S_IOERR;
		virtq_push(&d->vq[0], c->head, 1);
		return 0;
	}
	r->blk = b;
	r->generation = b->generation;
	r->head = c->head;
	r->status = status;
	r->written = 1;
	niov = req_data_iov(c, in, r->iov, &data_len);
	r->iovcnt = niov;
	r->io.iov = r->iov;
	r->io.iovcnt = niov;
	b->inflight++;

	st = VIRTIO_BLK_S_OK;
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (hdr.type == VIRTIO_BLK_T_OUT && b->be->read_only) {
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (data_len % 512 || !blk_in_range(b, hdr.sector, data_len)) {
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		r->io.op = in ? BLK_OP_READ : BLK_OP_WRITE;
		r->io.offset = hdr.sector * 512;
		r->io.len = data_len;
		r->counted = in ? 1 : 2;
		if (in)
			r->written = (uint32_t)data_len + 1;
		if (data_len == 0) {
			req_finish(r, VIRTIO_BLK_S_OK, r->written);
			return 0;
		}
		if (req_submit(r) < 0)
			st = VIRTIO_BLK_S_IOERR;
		else
			return 0;
		break;
	case VIRTIO_BLK_T_FLUSH:
		r->io.op = BLK_OP_FLUSH;
		if (req_submit(r) == 0)
			return 0;
		st = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = (size_t)VIREO_MIN(data_len, (uint64_t)VIRTIO_BLK_ID_BYTES);
		virtq_chain_write(c, 0, b->serial, n);
		r->written = (uint32_t)n + 1;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		bool wz = hdr.type == VIRTIO_BLK_T_WRITE_ZEROES;
		if (!virtio_dev_has(d, wz ? VIRTIO_BLK_F_WRITE_ZEROES
					  : VIRTIO_BLK_F_DISCARD)) {
			st = VIRTIO_BLK_S_UNSUPP;
			break;
		}
		if (b->be->read_only) {
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		st = req_ranges(b, c, r, hdr.type);
		if (st != VIRTIO_BLK_S_OK)
			break;
		r->io.op = wz ? BLK_OP_WRITE_ZEROES : BLK_OP_DISCARD;
		r->io.iov = NULL;
		r->io.iovcnt = 0;
		if (req_submit_range(r) == 0)
			return 0;
		st = VIRTIO_BLK_S_IOERR;
		break;
	}
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	req_finish(r, st, st == VIRTIO_BLK_S_OK ? r->written : 1);
	return 0;
}

static void blk_process(struct virtio_blk *b)
{
	struct virtq *q = &b->vdev.vq[0];
	int r = 0;

	if (!virtio_dev_running(&b->vdev) || !q->ready)
		return;
	b->throttled = false;
	for (;;) {
		virtq_notify_off(q);
		while (b->inflight < q->size && (r = virtq_pop(q, &b->chain)) == 1) {
			if (blk_handle(b, &b->chain) < 0)
				return;
		}
		if (b->inflight >= q->size) {
			/* Resumed by the next completion. */
			b->throttled = true;
			break;
		}
		if (r < 0 || !virtq_notify_on(q))
			break;
	}
	virtio_dev_queue_interrupt(&b->vdev, 0);
}

static void blk_queue_notify(struct virtio_dev *d, unsigned q)
{
	if (q == 0)
		blk_process(to_blk(d));
}

struct blk_backend *virtio_blk_backend(struct virtio_dev *d)
{
	return to_blk(d)->be;
}

void virtio_blk_get_stats(struct virtio_dev *d, struct virtio_blk_stats *s)
{
	virtio_dev_lock(d);
	*s = to_blk(d)->st;
	virtio_dev_unlock(d);
}

void virtio_blk_complete(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);

	if (!b->be->ops->complete)
		return;
	virtio_dev_lock(d);
	if (b->be->ops->complete(b->be) > 0 && virtio_dev_running(d))
		virtio_dev_queue_interrupt(d, 0);
	if (b->throttled)
		blk_process(b);
	virtio_dev_unlock(d);
}

static void blk_fd_ready(void *opaque)
{
	virtio_blk_complete(opaque);
}

void virtio_blk_drain(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);

	/* Unlocked read: only this thread submits (it holds no lock here),
	 * and completions run below under the lock. */
	while (__atomic_load_n(&b->inflight, __ATOMIC_RELAXED) &&
	       b->be->ops->event_fd) {
		struct pollfd p = { .fd = b->be->ops->event_fd(b->be),
				    .events = POLLIN };
		if (poll(&p, 1, 1000) < 0)
			break;
		virtio_blk_complete(d);
	}
}

unsigned virtio_blk_inflight(const struct virtio_dev *d)
{
	return ((const struct virtio_blk *)d)->inflight;
}

static void put_le(uint8_t *cfg, unsigned off, uint64_t v, unsigned size)
{
	for (unsigned i = 0; i < size; i++)
		cfg[off + i] = (uint8_t)(v >> (8 * i));
}

static void blk_config_read(struct virtio_dev *d, uint32_t off, void *buf,
			    uint32_t len)
{
	struct virtio_blk *b = to_blk(d);
	uint8_t cfg[VIRTIO_BLK_CFG_SIZE] = { 0 };

	put_le(cfg, VIRTIO_BLK_CFG_CAPACITY, b->sectors, 8);
	put_le(cfg, VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_QUEUE_SIZE - 2, 4);
	put_le(cfg, VIRTIO_BLK_CFG_BLK_SIZE, 512, 4);
	put_le(cfg, VIRTIO_BLK_CFG_NUM_QUEUES, 1, 2);
	put_le(cfg, VIRTIO_BLK_CFG_MAX_DISCARD_SECT, VIRTIO_BLK_MAX_RANGE, 4);
	put_le(cfg, VIRTIO_BLK_CFG_MAX_DISCARD_SEG, VIRTIO_BLK_MAX_SEGS, 4);
	put_le(cfg, VIRTIO_BLK_CFG_DISCARD_ALIGN, 1, 4);
	put_le(cfg, VIRTIO_BLK_CFG_MAX_WZ_SECT, VIRTIO_BLK_MAX_RANGE, 4);
	put_le(cfg, VIRTIO_BLK_CFG_MAX_WZ_SEG, VIRTIO_BLK_MAX_SEGS, 4);
	put_le(cfg, VIRTIO_BLK_CFG_WZ_MAY_UNMAP, 1, 1);
	memcpy(buf, cfg + off, len);
}

static void blk_reset(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);

	/* Requests still in flight finish into the void. */
	b->generation++;
	b->throttled = false;
}

static void blk_destroy(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);

	b->generation++;
	virtio_blk_drain(d);
	if (b->watching && d->env->unwatch_fd)
		d->env->unwatch_fd(d->env->loop, b->be->ops->event_fd(b->be));
	blk_backend_close(b->be);
	virtio_dev_fini(d);
	free(b);
}

static const struct virtio_dev_ops blk_ops = {
	.device_id = VIRTIO_ID_BLOCK,
	.config_size = VIRTIO_BLK_CFG_SIZE,
	.nr_queues = 1,
	.max_queue_size = VIRTIO_BLK_QUEUE_SIZE,
	.config_read = blk_config_read,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.destroy = blk_destroy,
};

int virtio_blk_create(const struct virtio_env *env, struct blk_backend *be,
		      const char *id, const char *serial,
		      struct virtio_dev **out)
{
	struct virtio_blk *b;
	uint64_t features;
	char name[64];

	b = calloc(1, sizeof(*b));
	if (!b) {
		blk_backend_close(be);
		return -ENOMEM;
	}
	features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
		   VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
		   VIRTIO_BIT(VIRTIO_BLK_F_FLUSH);
	if (be->read_only)
		features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	else
		features |= VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
			    VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	snprintf(name, sizeof(name), "virtio-blk %s", id);
	virtio_dev_init(&b->vdev, &blk_ops, env, name, features);
	b->be = be;
	b->sectors = be->size / 512;
	if (serial)
		memcpy(b->serial, serial, strnlen(serial, sizeof(b->serial)));
	else {
		char tmp[VIRTIO_BLK_ID_BYTES + 1];
		snprintf(tmp, sizeof(tmp), "vireo-%.14s", id);
		memcpy(b->serial, tmp, strlen(tmp));
	}
	if (env->watch_fd && be->ops->event_fd && be->ops->event_fd(be) >= 0) {
		int r = env->watch_fd(env->loop, be->ops->event_fd(be),
				      blk_fd_ready, &b->vdev);
		if (r < 0) {
			blk_backend_close(be);
			virtio_dev_fini(&b->vdev);
			free(b);
			return r;
		}
		b->watching = true;
	}
	*out = &b->vdev;
	return 0;
}
