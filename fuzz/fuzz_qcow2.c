/*
 * libFuzzer target for the qcow2 open and read path: the fuzzer's bytes are
 * an image file (in a memfd), opened read-only through the image library
 * without its backing file (a fuzzed name must not open host files), then
 * read at a few places, walked with block status, its snapshots listed and
 * the whole image checked.  Seeds: fuzz/corpus/qcow2/ (small qemu-img-made
 * images).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vireo/img.h>
#include <vireo/util.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fq_read(struct vimg *img, uint8_t *buf, uint64_t off, size_t len)
{
	uint64_t vsize = vimg_size(img);

	if (off >= vsize)
		return;
	if (len > vsize - off)
		len = (size_t)(vsize - off);
	(void)vimg_pread(img, buf, len, off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vimg_open_opts oo = { .format = "qcow2", .readonly = true,
				     .no_backing = true, .no_repair = true };
	static uint8_t buf[128 * 1024];
	struct vimg_snapshot *snaps = NULL;
	struct vimg_check res;
	struct vimg_extent ext;
	struct vimg *img;
	char path[64], err[256];
	uint64_t vsize, off;
	int fd, n = 0, i;

	fd = memfd_create("fuzz-qcow2", 0);
	if (fd < 0)
		return 0;
	if (vio_write_full(fd, data, size) < 0) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (vimg_open(path, &oo, &img, err, sizeof(err)) < 0) {
		close(fd);
		return 0;
	}
	vsize = vimg_size(img);
	fq_read(img, buf, 0, 65536);
	fq_read(img, buf, vsize / 2 - (vsize / 2) % 512 + 100, 70000);
	fq_read(img, buf, vsize > 4096 ? vsize - 4096 : 0, 4096);
	/* Walk the first few extents of the mapping. */
	for (off = 0, i = 0; off < vsize && i < 64; i++) {
		if (vimg_block_status(img, off, vsize - off, true, &ext) < 0 || !ext.len)
			break;
		off += ext.len;
	}
	if (vimg_snapshot_list(img, &snaps, &n) == 0)
		free(snaps);
	(void)vimg_check(img, 0, &res, NULL);
	vimg_close(img);
	close(fd);
	return 0;
}
