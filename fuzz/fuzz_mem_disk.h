/*
 * The in-memory virtio-blk disk of the fuzz targets: a backend that
 * aborts when the device asks for bytes outside the disk (the device must
 * have checked the range) or writes to a read-only disk.  Include after
 * the virtio-blk header (struct blk_backend).
 */
#ifndef VIREO_FUZZ_MEM_DISK_H
#define VIREO_FUZZ_MEM_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MEM_DISK_SIZE (64u << 10)

struct mem_disk {
	struct blk_backend b;
	uint8_t bytes[MEM_DISK_SIZE];
};

static void md_check(struct blk_backend *b, uint64_t off, uint64_t len)
{
	if (off > b->size || len > b->size - off)
		abort();
}

static int md_rw(struct blk_backend *b, const struct blk_io *io)
{
	struct mem_disk *m = (struct mem_disk *)b;
	uint64_t off = io->offset;

	if (io->op == BLK_OP_WRITE && b->read_only)
		abort();
	for (int i = 0; i < io->iovcnt; i++) {
		const struct iovec *v = &io->iov[i];
		md_check(b, off, v->iov_len);
		if (io->op == BLK_OP_WRITE)
			memcpy(m->bytes + off, v->iov_base, v->iov_len);
		else
			memcpy(v->iov_base, m->bytes + off, v->iov_len);
		off += v->iov_len;
	}
	return 0;
}

static int md_run(struct blk_backend *b, struct blk_io *io)
{
	switch (io->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		return md_rw(b, io);
	case BLK_OP_FLUSH:
		return 0;
	default:   /* DISCARD, WRITE_ZEROES */
		if (b->read_only)
			abort();
		md_check(b, io->offset, io->len);
		memset(((struct mem_disk *)b)->bytes + io->offset, 0, io->len);
		return 0;
	}
}

static void md_close(struct blk_backend *b)
{
	free(b);
}

static const struct blk_backend_ops md_ops = { .run = md_run, .close = md_close };

/* A zeroed disk; the device frees it through close(). */
static struct blk_backend *mem_disk_new(bool read_only)
{
	struct mem_disk *m = calloc(1, sizeof(*m));

	if (!m)
		abort();
	m->b.ops = &md_ops;
	m->b.format = "mem";
	m->b.path = "fuzz";
	m->b.size = MEM_DISK_SIZE;
	m->b.read_only = read_only;
	return &m->b;
}

#endif
