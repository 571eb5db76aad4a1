/* Raw images: the file is the disk.  The file operations themselves are
 * lib/util/vio.c's, shared with the VMM's raw virtio-blk backend. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img-priv.h"

static int raw_open(struct vimg *img)
{
	int r = vio_file_size(img->fd, &img->size);

	if (r < 0)
		return vimg_fail(img, r, "cannot get the size: %s", strerror(-r));
	return 0;
}

static void raw_close(struct vimg *img)
{
	(void)img;
}

static int raw_pread(struct vimg *img, void *buf, size_t len, uint64_t off)
{
	int r = vio_pread_zfill(img->fd, buf, len, (off_t)off);

	if (r < 0)
		return vimg_fail(img, r, "read at %llu: %s",
				 (unsigned long long)off, strerror(-r));
	return 0;
}

static int raw_pwrite(struct vimg *img, const void *buf, size_t len, uint64_t off)
{
	int r = vio_pwrite_full(img->fd, buf, len, (off_t)off);

	if (r < 0)
		return vimg_fail(img, r, "write at %llu: %s",
				 (unsigned long long)off, strerror(-r));
	return 0;
}

/* Zeroing and discard both leave a hole where the file system can punch
 * one; a discarded range reads back as zeros in the library. */
static int raw_pwrite_zeroes(struct vimg *img, uint64_t off, uint64_t len)
{
	int r = vio_zero_range(img->fd, off, len, true);

	if (r < 0)
		return vimg_fail(img, r, "zeroing at %llu: %s",
				 (unsigned long long)off, strerror(-r));
	return 0;
}

static int raw_flush(struct vimg *img)
{
	if (img->opts.unsafe)
		return 0;
	if (fdatasync(img->fd) < 0)
		return vimg_fail(img, -errno, "flush: %s", strerror(errno));
	return 0;
}

static int raw_block_status(struct vimg *img, uint64_t off, uint64_t len,
			    struct vimg_extent *ext)
{
	off_t data, hole;

	ext->off = off;
	ext->len = len;
	ext->flags = VIMG_BS_DATA | VIMG_BS_OFFSET_VALID;
	ext->host_off = off;
	data = lseek(img->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO) {   /* all hole up to EOF */
			ext->flags = VIMG_BS_ZERO | VIMG_BS_OFFSET_VALID;
			return 0;
		}
		return 0;
	}
	if ((uint64_t)data > off) {
		ext->flags = VIMG_BS_ZERO | VIMG_BS_OFFSET_VALID;
		ext->len = VIREO_MIN(len, (uint64_t)data - off);
		return 0;
	}
	hole = lseek(img->fd, (off_t)off, SEEK_HOLE);
	if (hole > (off_t)off)
		ext->len = VIREO_MIN(len, (uint64_t)hole - off);
	return 0;
}

static int raw_create(const char *path, const struct vimg_create_opts *o,
		      char *err, size_t errlen)
{
	int fd;

	if (o->backing) {
		snprintf(err, errlen, "raw images cannot have a backing file");
		return -EINVAL;
	}
	fd = vimg_create_file(path, err, errlen);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)o->size) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot set size of '%s' to %llu: %s", path,
			 (unsigned long long)o->size, strerror(e));
		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

static int raw_resize(struct vimg *img, uint64_t new_size)
{
	if (ftruncate(img->fd, (off_t)new_size) < 0)
		return vimg_fail(img, -errno, "cannot resize: %s", strerror(errno));
	img->size = new_size;
	return 0;
}

static int raw_map(struct vimg *img, uint64_t off, uint64_t len, bool for_write,
		   uint64_t *host_off, uint64_t *run)
{
	*host_off = off;
	*run = len;
	return 0;
}

/* Grouped by role; the optional entries raw has are create and resize. */
const struct vimg_driver raw_driver = {
	.name = "raw", .fmt = VIMG_FMT_RAW,
	.open = raw_open, .close = raw_close,
	.create = raw_create, .resize = raw_resize,
	.pread = raw_pread, .pwrite = raw_pwrite, .flush = raw_flush,
	.pwrite_zeroes = raw_pwrite_zeroes, .discard = raw_pwrite_zeroes,
	.block_status = raw_block_status, .map = raw_map,
};
