/*
 * The image-library virtio-blk backend (blk_img.c) against a temporary
 * qcow2 overlay whose backing file is a raw image with a known pattern:
 * writes land in the overlay, reads fall through to the backing file,
 * flush, discard and write-zeroes, many requests in flight, read-only
 * refusal, locking and format errors; and the virtio-blk device over it
 * (requests in flight, discard, read-only device).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <vireo/img.h>
#include <vireo/util.h>

#include "blk.h"
#include "blk_backend.h"
#include "virtio_test_ring.h"

#define DISK_SIZE (1u << 20)
#define CLUSTER (64u << 10)

struct fx {
	char dir[64];
	char base[96];
	char top[96];
};

/* Byte at offset o of the backing file. */
static uint8_t base_byte(uint64_t o)
{
	return (uint8_t)(o / 512 + 1);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2 };
	char err[256];
	uint8_t *buf = malloc(DISK_SIZE);
	int fd;

	snprintf(f->dir, sizeof(f->dir), "/tmp/vireo-blkimg-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->base, sizeof(f->base), "%s/base.raw", f->dir);
	snprintf(f->top, sizeof(f->top), "%s/top.qcow2", f->dir);
	for (unsigned i = 0; i < DISK_SIZE; i++)
		buf[i] = base_byte(i);
	fd = open(f->base, O_CREAT | O_RDWR | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(vio_pwrite_full(fd, buf, DISK_SIZE, 0), 0);
	close(fd);
	free(buf);
	co.backing = "base.raw";   /* relative to the overlay's directory */
	co.backing_fmt = "raw";
	assert_int_equal(vimg_create(f->top, &co, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

/* Copy file @from to @to. */
static int link_or_copy(const char *from, const char *to)
{
	uint8_t *buf = malloc(DISK_SIZE);
	int in = open(from, O_RDONLY), out = open(to, O_CREAT | O_RDWR | O_TRUNC, 0644);
	int r = in < 0 || out < 0 ? -1 :
		(vio_pread_zfill(in, buf, DISK_SIZE, 0) || vio_pwrite_full(out, buf, DISK_SIZE, 0));

	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	free(buf);
	return r;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	unlink(f->top);
	unlink(f->base);
	rmdir(f->dir);
	free(f);
	return 0;
}

struct done {
	int calls;
	int result;
};

static void io_done(struct blk_io *io, int result)
{
	struct done *d = io->opaque;

	d->calls++;
	d->result = result;
}

/* Run complete() until @n requests have finished. */
static void wait_done(struct blk_backend *b, int *finished, int n)
{
	int spins = 0;

	while (*finished < n) {
		struct pollfd p = { .fd = b->ops->event_fd(b), .events = POLLIN };
		assert_true(poll(&p, 1, 1000) >= 0);
		b->ops->complete(b);
		assert_true(++spins < 30000);
	}
}

/* Submit one request and wait for it; returns its result. */
static int do_io(struct blk_backend *b, enum blk_op op, const struct iovec *iov,
		 int iovcnt, uint64_t off, uint64_t len)
{
	struct done d = { 0 };
	struct blk_io io = {
		.op = op, .iov = iov, .iovcnt = iovcnt, .offset = off, .len = len,
		.done = io_done, .opaque = &d,
	};
	int r = b->ops->submit(b, &io);

	if (r < 0)
		return r;
	wait_done(b, &d.calls, 1);
	assert_int_equal(d.calls, 1);
	return d.result;
}

/* Run one request synchronously (the backend's run()). */
static int run_io(struct blk_backend *b, enum blk_op op, const struct iovec *iov,
		  int iovcnt, uint64_t off)
{
	struct blk_io io = { .op = op, .iov = iov, .iovcnt = iovcnt, .offset = off };

	return b->ops->run(b, &io);
}

static int rw(struct blk_backend *b, bool write, void *buf, size_t len,
	      uint64_t off)
{
	/* split in three segments to exercise the per-segment path */
	size_t a = len / 3 & ~(size_t)511, c = len / 3 & ~(size_t)511;
	struct iovec iov[3] = {
		{ buf, a }, { (uint8_t *)buf + a, len - a - c },
		{ (uint8_t *)buf + len - c, c },
	};

	return do_io(b, write ? BLK_OP_WRITE : BLK_OP_READ, iov, 3, off, len);
}

static void check_base_untouched(const struct fx *f)
{
	uint8_t *buf = malloc(DISK_SIZE);
	int fd = open(f->base, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(vio_pread_full(fd, buf, DISK_SIZE, 0), 0);
	close(fd);
	for (unsigned i = 0; i < DISK_SIZE; i++)
		if (buf[i] != base_byte(i))
			fail_msg("backing file changed at byte %u", i);
	free(buf);
}

/* Where offset @off of the overlay reads from: 0 overlay, 1 backing. */
static int depth_of(const struct fx *f, uint64_t off, unsigned *flags)
{
	struct vimg_open_opts o = { .format = "qcow2", .readonly = true };
	struct vimg_extent e;
	struct vimg *img;
	char err[256];

	assert_int_equal(vimg_open(f->top, &o, &img, err, sizeof(err)), 0);
	assert_int_equal(vimg_block_status(img, off, 512, true, &e), 0);
	vimg_close(img);
	*flags = e.flags;
	return e.depth;
}

static void check_clean(const struct fx *f)
{
	struct vimg_open_opts o = { .format = "qcow2", .readonly = true };
	struct vimg_check res;
	struct vimg *img;
	char err[256];

	assert_int_equal(vimg_open(f->top, &o, &img, err, sizeof(err)), 0);
	assert_int_equal(vimg_check(img, 0, &res, NULL), 0);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(res.leaks, 0);
	assert_int_equal(res.check_errors, 0);
	vimg_close(img);
}

static void test_write_overlay_read_backing(void **state)
{
	struct fx *f = *state;
	struct blk_backend *b;
	uint8_t *buf = malloc(3 * CLUSTER);
	unsigned fl;

	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b), 0);
	assert_string_equal(b->format, "qcow2");
	assert_int_equal(b->size, DISK_SIZE);
	assert_false(b->read_only);
	assert_true(b->can_discard && b->can_write_zeroes);
	assert_ptr_not_equal(blk_img_image(b), NULL);

	/* untouched overlay reads the backing pattern */
	assert_int_equal(rw(b, false, buf, 3 * CLUSTER, 0), 0);
	for (unsigned i = 0; i < 3 * CLUSTER; i++)
		if (buf[i] != base_byte(i))
			fail_msg("byte %u reads %u, backing has %u", i, buf[i], base_byte(i));

	/* a write in the middle of cluster 1 (COW from the backing file) */
	memset(buf, 0xab, 4096);
	assert_int_equal(rw(b, true, buf, 4096, CLUSTER + 8192), 0);
	assert_int_equal(do_io(b, BLK_OP_FLUSH, NULL, 0, 0, 0), 0);
	assert_int_equal(rw(b, false, buf, 3 * CLUSTER, 0), 0);
	for (unsigned i = 0; i < 3 * CLUSTER; i++) {
		uint8_t want = i >= CLUSTER + 8192 && i < CLUSTER + 8192 + 4096 ?
			       0xab : base_byte(i);
		if (buf[i] != want)
			fail_msg("byte %u reads %u, want %u", i, buf[i], want);
	}
	blk_backend_close(b);

	/* the write landed in the overlay, the rest still comes from below */
	assert_int_equal(depth_of(f, CLUSTER + 8192, &fl), 0);
	assert_true(fl & VIMG_BS_DATA);
	assert_int_equal(depth_of(f, 0, &fl), 1);
	assert_int_equal(depth_of(f, 5 * CLUSTER, &fl), 1);
	check_base_untouched(f);
	check_clean(f);
	free(buf);
}

static void test_sync_ops(void **state)
{
	struct fx *f = *state;
	struct blk_backend *b;
	uint8_t w[1024], r[1024];
	struct iovec wi[2] = { { w, 512 }, { w + 512, 512 } };
	struct iovec ri[1] = { { r, 1024 } };

	memset(w, 0x5c, sizeof(w));
	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b), 0);
	assert_int_equal(run_io(b, BLK_OP_WRITE, wi, 2, 7 * CLUSTER - 512), 0);
	assert_int_equal(run_io(b, BLK_OP_FLUSH, NULL, 0, 0), 0);
	assert_int_equal(run_io(b, BLK_OP_READ, ri, 1, 7 * CLUSTER - 512), 0);
	assert_memory_equal(r, w, sizeof(w));
	blk_backend_close(b);
	check_base_untouched(f);
	check_clean(f);
}

static void test_discard_write_zeroes(void **state)
{
	struct fx *f = *state;
	struct blk_backend *b;
	uint8_t *buf = malloc(2 * CLUSTER);

	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b), 0);
	memset(buf, 0x77, 2 * CLUSTER);
	assert_int_equal(rw(b, true, buf, 2 * CLUSTER, 4 * CLUSTER), 0);
	/* write-zeroes over a backed, unwritten cluster hides the backing data */
	assert_int_equal(do_io(b, BLK_OP_WRITE_ZEROES, NULL, 0, 2 * CLUSTER, CLUSTER), 0);
	assert_int_equal(rw(b, false, buf, CLUSTER, 2 * CLUSTER), 0);
	for (unsigned i = 0; i < CLUSTER; i++)
		if (buf[i])
			fail_msg("write-zeroes: byte %u reads %u", i, buf[i]);
	/* discard a written cluster: its data is gone (qcow2 v3: zeros) */
	assert_int_equal(do_io(b, BLK_OP_DISCARD, NULL, 0, 4 * CLUSTER, CLUSTER), 0);
	assert_int_equal(rw(b, false, buf, 2 * CLUSTER, 4 * CLUSTER), 0);
	for (unsigned i = 0; i < CLUSTER; i++)
		if (buf[i] == 0x77)
			fail_msg("discard: byte %u still reads the written data", i);
	for (unsigned i = CLUSTER; i < 2 * CLUSTER; i++)
		if (buf[i] != 0x77)
			fail_msg("discard went past its range at byte %u", i);
	assert_int_equal(do_io(b, BLK_OP_FLUSH, NULL, 0, 0, 0), 0);
	blk_backend_close(b);
	check_base_untouched(f);
	check_clean(f);
	free(buf);
}

static void test_many_in_flight(void **state)
{
	struct fx *f = *state;
	enum { NR = 24 };
	struct blk_backend *b;
	static uint8_t data[NR][4096];
	struct iovec iov[NR];
	struct blk_io io[NR];
	struct done d = { 0 };

	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b), 0);
	for (int i = 0; i < NR; i++) {
		memset(data[i], 0x10 + i, sizeof(data[i]));
		iov[i] = (struct iovec){ data[i], sizeof(data[i]) };
		/* two requests per cluster: allocations race within a cluster */
		io[i] = (struct blk_io){ .op = BLK_OP_WRITE, .iov = &iov[i],
			.iovcnt = 1, .offset = (uint64_t)i * 32768, .len = 4096,
			.done = io_done, .opaque = &d };
	}
	for (int i = 0; i < NR; i++)
		assert_int_equal(b->ops->submit(b, &io[i]), 0);
	wait_done(b, &d.calls, NR);
	assert_int_equal(d.calls, NR);
	assert_int_equal(d.result, 0);
	for (int i = 0; i < NR; i++) {
		uint8_t r[4096 + 512];
		assert_int_equal(rw(b, false, r, sizeof(r), (uint64_t)i * 32768), 0);
		for (unsigned k = 0; k < 4096; k++)
			if (r[k] != 0x10 + i)
				fail_msg("request %d byte %u reads %u", i, k, r[k]);
		for (unsigned k = 4096; k < sizeof(r); k++)
			if (r[k] != base_byte((uint64_t)i * 32768 + k))
				fail_msg("request %d: byte %u after it changed", i, k);
	}
	blk_backend_close(b);
	check_base_untouched(f);
	check_clean(f);
}

static void test_read_only(void **state)
{
	struct fx *f = *state;
	struct blk_backend *b, *b2;
	uint8_t buf[512];
	struct iovec iov = { buf, sizeof(buf) };
	struct stat st1, st2;

	assert_int_equal(stat(f->top, &st1), 0);
	assert_int_equal(blk_img_open(f->top, "qcow2", BLK_IMG_READONLY, &b), 0);
	assert_true(b->read_only);
	assert_false(b->can_discard || b->can_write_zeroes);
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(run_io(b, BLK_OP_WRITE, &iov, 1, 0), -EROFS);
	assert_int_equal(do_io(b, BLK_OP_WRITE, &iov, 1, 0, 512), -EROFS);
	assert_int_equal(do_io(b, BLK_OP_DISCARD, NULL, 0, 0, CLUSTER), -EROFS);
	assert_int_equal(do_io(b, BLK_OP_WRITE_ZEROES, NULL, 0, 0, CLUSTER), -EROFS);
	assert_int_equal(do_io(b, BLK_OP_FLUSH, NULL, 0, 0, 0), 0);
	assert_int_equal(do_io(b, BLK_OP_READ, &iov, 1, 512, 512), 0);
	assert_int_equal(buf[0], base_byte(512));
	/* readers share the lock; a writer is refused */
	assert_int_equal(blk_img_open(f->top, "qcow2", BLK_IMG_READONLY, &b2), 0);
	blk_backend_close(b2);
	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b2), -EBUSY);
	blk_backend_close(b);
	assert_int_equal(stat(f->top, &st2), 0);
	assert_int_equal(st1.st_size, st2.st_size);
	assert_int_equal(st1.st_mtim.tv_sec, st2.st_mtim.tv_sec);
	assert_int_equal(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
	check_base_untouched(f);
}

static void test_locks(void **state)
{
	struct fx *f = *state;
	struct blk_backend *b, *b2;

	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b), 0);
	/* a second writer, or a reader, of the overlay is refused */
	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b2), -EBUSY);
	assert_int_equal(blk_img_open(f->top, "qcow2", BLK_IMG_READONLY, &b2), -EBUSY);
	/* the backing file is shared: readers welcome, writers refused */
	assert_int_equal(blk_raw_open(f->base, BLK_RAW_READONLY | BLK_RAW_SYNC, &b2), 0);
	blk_backend_close(b2);
	assert_int_equal(blk_raw_open(f->base, BLK_RAW_SYNC, &b2), -EBUSY);
	blk_backend_close(b);
	assert_int_equal(blk_raw_open(f->base, BLK_RAW_SYNC, &b2), 0);
	/* and the overlay cannot start while its backing file is written */
	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b), -EBUSY);
	blk_backend_close(b2);
	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b), 0);
	blk_backend_close(b);
}

static void test_format_errors(void **state)
{
	struct fx *f = *state;
	struct blk_backend *b;

	/* a raw file given as qcow2 */
	assert_int_equal(blk_img_open(f->base, "qcow2", BLK_IMG_READONLY, &b), -EINVAL);
	assert_int_equal(blk_img_open(f->base, "qcow2", 0, &b), -EINVAL);
	assert_int_equal(blk_img_open(f->top, "vmdk", 0, &b), -EINVAL);
	assert_int_equal(blk_img_open(f->top, NULL, 0, &b), -EINVAL);
	assert_int_equal(blk_img_open("/nonexistent/x.qcow2", "qcow2", 0, &b), -ENOENT);
	/* nothing was written to the raw file by the failed opens */
	check_base_untouched(f);
	/* raw through the library works too */
	assert_int_equal(blk_img_open(f->base, "raw", BLK_IMG_READONLY, &b), 0);
	assert_string_equal(b->format, "raw");
	assert_int_equal(b->size, DISK_SIZE);
	blk_backend_close(b);
}

/* An overlay at @path whose backing file is @backing (format @fmt or none). */
static void make_overlay(const char *path, const char *backing, const char *fmt)
{
	struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .size = DISK_SIZE,
				       .backing = backing, .backing_fmt = fmt };
	char err[256];

	assert_int_equal(vimg_create(path, &co, err, sizeof(err)), 0);
}

/* Run a shell command (QEMU's tools): its exit status, -1 if it did not
 * exit. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* vireo and QEMU see each other's users of an image (QEMU's lock bytes):
 * with vireo writing the overlay, qemu-img may not open it but with -U,
 * and may read another overlay of the same base, not write the base; with
 * qemu-io writing the overlay, vireo may not open it, and may read the
 * base. */
static void test_qemu_locks(void **state)
{
	struct fx *f = *state;
	struct blk_backend *b, *b2;
	char top2[128];
	pid_t pid;
	int fd, r;

	if (sh("command -v qemu-img >/dev/null && command -v qemu-io >/dev/null"))
		fail_msg("qemu-img and qemu-io are needed (package qemu-utils: scripts/setup.sh)");
	snprintf(top2, sizeof(top2), "%s/top2.qcow2", f->dir);
	make_overlay(top2, f->base, "raw");
	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b), 0);
	assert_int_not_equal(sh("qemu-img info '%s' >/dev/null 2>&1", f->top), 0);
	assert_int_equal(sh("qemu-img info -U '%s' >/dev/null", f->top), 0);
	assert_int_equal(sh("qemu-img check -q '%s'", top2), 0);
	assert_int_equal(sh("qemu-img info --backing-chain '%s' >/dev/null", top2), 0);
	/* the base is read by vireo: QEMU may not write it */
	assert_int_not_equal(sh("qemu-io -f raw -c 'write 0 512' '%s' >/dev/null 2>&1", f->base), 0);
	blk_backend_close(b);

	/* qemu-io holds the overlay for writing: seen, without taking a lock,
	 * once its byte for the write permission is locked. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execlp("qemu-io", "qemu-io", "-f", "qcow2", "-c", "sleep 30000", f->top,
		       (char *)NULL);
		_exit(127);
	}
	fd = open(f->top, O_RDONLY);
	assert_true(fd >= 0);
	for (int i = 0; i < 500; i++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
				    .l_start = 101, .l_len = 1 };

		assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
		if (fl.l_type != F_UNLCK)
			break;
		assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);   /* qemu-io still there */
		usleep(20000);
	}
	close(fd);
	r = blk_img_open(f->top, "qcow2", 0, &b2);
	if (!r)
		blk_backend_close(b2);
	assert_int_equal(r, -EBUSY);
	assert_int_equal(blk_img_open(f->top, "qcow2", BLK_IMG_READONLY, &b2), -EBUSY);
	/* its backing file: QEMU shares it for reading (and writing) */
	assert_int_equal(blk_raw_open(f->base, BLK_RAW_READONLY | BLK_RAW_SYNC, &b2), 0);
	blk_backend_close(b2);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* and once it is gone, vireo may */
	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b2), 0);
	blk_backend_close(b2);
	unlink(top2);
}

/* Backing files an image names itself: only inside the image's directory
 * (after symlinks) or an allowed one, only with a format, none at all with
 * backing=off. */
static void test_backing_policy(void **state)
{
	struct fx *f = *state;
	struct blk_backend *b;
	char ovl[128], other[64], obase[128], link[128];
	const char *dirs[] = { other, NULL };

	snprintf(ovl, sizeof(ovl), "%s/evil.qcow2", f->dir);
	snprintf(link, sizeof(link), "%s/link.raw", f->dir);
	snprintf(other, sizeof(other), "/tmp/vireo-blkimg-o-XXXXXX");
	assert_non_null(mkdtemp(other));
	snprintf(obase, sizeof(obase), "%s/base.raw", other);

	/* a host file as raw backing: refused before it is opened */
	make_overlay(ovl, "/etc/shadow", "raw");
	assert_int_equal(blk_img_open(ovl, "qcow2", BLK_IMG_READONLY, &b), -EPERM);
	make_overlay(ovl, "../../etc/passwd", "raw");
	assert_int_equal(blk_img_open(ovl, "qcow2", BLK_IMG_READONLY, &b), -EPERM);
	/* a symlink in the image's directory pointing out of it */
	assert_int_equal(symlink("/etc/passwd", link), 0);
	make_overlay(ovl, "link.raw", "raw");
	assert_int_equal(blk_img_open(ovl, "qcow2", BLK_IMG_READONLY, &b), -EPERM);
	unlink(link);

	/* a file in another directory: refused, accepted once allowed */
	assert_int_equal(link_or_copy(f->base, obase), 0);
	make_overlay(ovl, obase, "raw");
	assert_int_equal(blk_img_open(ovl, "qcow2", BLK_IMG_READONLY, &b), -EPERM);
	assert_int_equal(blk_img_open_dirs(ovl, "qcow2", BLK_IMG_READONLY, dirs, &b), 0);
	blk_backend_close(b);
	/* ... and a symlink into the allowed directory too */
	assert_int_equal(symlink(obase, link), 0);
	make_overlay(ovl, "link.raw", "raw");
	assert_int_equal(blk_img_open(ovl, "qcow2", BLK_IMG_READONLY, &b), -EPERM);
	assert_int_equal(blk_img_open_dirs(ovl, "qcow2", 0, dirs, &b), 0);
	blk_backend_close(b);
	unlink(link);

	/* no backing format: never probed */
	make_overlay(ovl, "base.raw", NULL);
	assert_int_equal(blk_img_open(ovl, "qcow2", BLK_IMG_READONLY, &b), -EPERM);
	assert_int_equal(blk_img_open(ovl, "qcow2", 0, &b), -EPERM);

	/* backing=off: even a well-placed backing file is refused */
	assert_int_equal(blk_img_open(f->top, "qcow2", BLK_IMG_NO_BACKING, &b), -EPERM);
	assert_int_equal(blk_img_open(f->top, "qcow2", 0, &b), 0);
	blk_backend_close(b);
	make_overlay(ovl, NULL, NULL);
	assert_int_equal(blk_img_open(ovl, "qcow2", BLK_IMG_NO_BACKING, &b), 0);
	blk_backend_close(b);

	unlink(ovl);
	unlink(obase);
	rmdir(other);
	check_base_untouched(f);
}

/* ---- the virtio-blk device over the image backend ---- */

#define QSIZE 64

struct dev {
	struct tmem m;
	struct virtio_env env;
	struct tring r;
	struct virtio_dev *d;
	uint16_t next;
};

struct dreq {
	uint16_t head;
	uint64_t data, status;
};

static void dev_start(struct dev *v, const char *path, unsigned flags)
{
	struct blk_backend *be;
	struct virtio_dev *d;
	uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	memset(v, 0, sizeof(*v));
	assert_int_equal(blk_img_open(path, "qcow2", flags, &be), 0);
	tmem_init(&v->m);
	v->env.mem = &v->m.mem;
	assert_int_equal(virtio_blk_create(&v->env, be, "disk0", NULL, &v->d), 0);
	d = v->d;
	virtio_dev_set_status(d, st);
	virtio_dev_set_guest_features(d, 0, virtio_dev_host_features(d, 0));
	virtio_dev_set_guest_features(d, 1, virtio_dev_host_features(d, 1));
	virtio_dev_set_status(d, st | VIRTIO_STATUS_FEATURES_OK);
	tring_init(&v->r, &v->m, TMEM_GPA, QSIZE);
	tring_attach(&v->r, &d->vq[0]);
	assert_int_equal(virtio_dev_queue_enable(d, 0), 0);
	virtio_dev_set_status(d, st | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_dev_running(d));
}

static void dev_stop(struct dev *v)
{
	virtio_dev_destroy(v->d);
	tmem_free(&v->m);
}

/* Lay out and publish a request: header, data (len > 0), status. */
static struct dreq dev_req(struct dev *v, uint32_t type, uint64_t sector,
			   const void *out, uint32_t len, bool data_in)
{
	uint8_t hdr[16] = { 0 };
	struct dreq q;
	uint64_t h = tmem_alloc(&v->m, 16, 0);
	uint16_t i = v->next;

	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
	memcpy(tmem_ptr(&v->m, h), hdr, 16);
	q.head = i;
	q.data = len ? tmem_alloc(&v->m, len, 0) : 0;
	if (len && out)
		memcpy(tmem_ptr(&v->m, q.data), out, len);
	q.status = tmem_alloc(&v->m, 1, 0xee);
	tring_desc(&v->r, i, h, 16, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % QSIZE));
	if (len) {
		i = (uint16_t)((i + 1) % QSIZE);
		tring_desc(&v->r, i, q.data, len,
			   (data_in ? VIRTQ_DESC_F_WRITE : 0) | VIRTQ_DESC_F_NEXT,
			   (uint16_t)((i + 1) % QSIZE));
	}
	i = (uint16_t)((i + 1) % QSIZE);
	tring_desc(&v->r, i, q.status, 1, VIRTQ_DESC_F_WRITE, 0);
	v->next = (uint16_t)((i + 1) % QSIZE);
	tring_publish(&v->r, q.head);
	return q;
}

static void dev_run(struct dev *v)
{
	virtio_dev_queue_notify(v->d, 0);
	virtio_blk_drain(v->d);
	assert_int_equal(virtio_blk_inflight(v->d), 0);
}

static uint8_t dev_status(struct dev *v, const struct dreq *q)
{
	return *(uint8_t *)tmem_ptr(&v->m, q->status);
}

static void test_device(void **state)
{
	struct fx *f = *state;
	enum { NW = 8, NR = 12 };
	struct dev v;
	struct dreq w[NW], r[NR], q;
	uint8_t seg[16], buf[4096];
	uint64_t sector = 1024, nsect = 128;
	uint32_t flags = 0;

	dev_start(&v, f->top, 0);
	assert_true(virtio_dev_has(v.d, VIRTIO_BLK_F_DISCARD));
	/* writes in flight together: 4 KiB each at sectors 256, 272, ... */
	for (int i = 0; i < NW; i++) {
		memset(buf, 0x40 + i, sizeof(buf));
		w[i] = dev_req(&v, VIRTIO_BLK_T_OUT, 256 + 16 * (uint64_t)i, buf, 4096, false);
	}
	dev_run(&v);
	assert_int_equal(tring_used_idx(&v.r), NW);
	for (int i = 0; i < NW; i++)
		assert_int_equal(dev_status(&v, &w[i]), VIRTIO_BLK_S_OK);
	/* reads of written and unwritten places in flight together */
	for (int i = 0; i < NR; i++)
		r[i] = dev_req(&v, VIRTIO_BLK_T_IN, 256 + 16 * (uint64_t)i, NULL, 4096, true);
	q = dev_req(&v, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
	dev_run(&v);
	assert_int_equal(dev_status(&v, &q), VIRTIO_BLK_S_OK);
	for (int i = 0; i < NR; i++) {
		const uint8_t *d = tmem_ptr(&v.m, r[i].data);
		uint64_t base = (256 + 16 * (uint64_t)i) * 512;
		assert_int_equal(dev_status(&v, &r[i]), VIRTIO_BLK_S_OK);
		for (unsigned k = 0; k < 4096; k++) {
			uint8_t want = i < NW ? (uint8_t)(0x40 + i) : base_byte(base + k);
			if (d[k] != want)
				fail_msg("read %d byte %u: %u, want %u", i, k, d[k], want);
		}
	}
	/* discard one whole cluster the guest wrote into: reads as zeros */
	memset(buf, 0x99, sizeof(buf));
	q = dev_req(&v, VIRTIO_BLK_T_OUT, sector, buf, 4096, false);
	dev_run(&v);
	assert_int_equal(dev_status(&v, &q), VIRTIO_BLK_S_OK);
	memcpy(seg, &sector, 8);
	memcpy(seg + 8, &nsect, 4);
	memcpy(seg + 12, &flags, 4);
	q = dev_req(&v, VIRTIO_BLK_T_DISCARD, 0, seg, 16, false);
	dev_run(&v);
	assert_int_equal(dev_status(&v, &q), VIRTIO_BLK_S_OK);
	q = dev_req(&v, VIRTIO_BLK_T_IN, sector, NULL, 4096, true);
	dev_run(&v);
	assert_int_equal(dev_status(&v, &q), VIRTIO_BLK_S_OK);
	for (unsigned k = 0; k < 4096; k++)
		if (((uint8_t *)tmem_ptr(&v.m, q.data))[k])
			fail_msg("discarded byte %u is not zero", k);
	dev_stop(&v);
	check_base_untouched(f);
	check_clean(f);

	/* read-only device: writes and discards fail, reads work */
	dev_start(&v, f->top, BLK_IMG_READONLY);
	q = dev_req(&v, VIRTIO_BLK_T_OUT, 0, buf, 512, false);
	dev_run(&v);
	assert_int_equal(dev_status(&v, &q), VIRTIO_BLK_S_IOERR);
	q = dev_req(&v, VIRTIO_BLK_T_IN, 256, NULL, 512, true);
	dev_run(&v);
	assert_int_equal(dev_status(&v, &q), VIRTIO_BLK_S_OK);
	assert_int_equal(*(uint8_t *)tmem_ptr(&v.m, q.data), 0x40);
	dev_stop(&v);
	check_clean(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_overlay_read_backing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_write_zeroes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qemu_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backing_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device, setup, teardown),
	};

	vlog_set_level(VLOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
