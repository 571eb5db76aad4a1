/*
 * libFuzzer target for the qcow2 write paths: allocating writes and
 * copy-on-write, discard, write-zeroes, internal snapshots (create, apply,
 * delete), flush, the repair of a dirty image on a read-write open, and
 * check -r all; then the result is reopened read-only, read and checked.
 *
 * Input: an image file, then a program, then one byte giving the
 * program's length (at most 64 bytes, 4 per operation):
 *   op % 8, offset (2 bytes, in 512-byte units, wrapped to the disk),
 *   length ((byte + 1) * 512)
 * The image lives in a memfd and is opened without its backing file (a
 * fuzzed name must not open host files).  Seeds: fuzz/corpus/qcow2_rw/
 * (the qcow2 seeds with a program appended).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vireo/img.h>
#include <vireo/util.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LEN (128u * 1024)

static uint8_t buf[MAX_LEN];

/* Clamp [off, off+len) to the disk; 0 if nothing is left. */
static size_t clamp(struct vimg *img, uint64_t *off, size_t len)
{
	uint64_t vsize = vimg_size(img);

	if (!vsize)
		return 0;
	*off %= vsize;
	if (len > vsize - *off)
		len = (size_t)(vsize - *off);
	return len;
}

static void run_op(struct vimg *img, const uint8_t *p)
{
	uint64_t off = ((uint64_t)p[1] | (uint64_t)p[2] << 8) * 512;
	size_t len = ((size_t)p[3] + 1) * 512;
	struct vimg_snapshot *snaps = NULL;
	int n = 0;

	len = clamp(img, &off, len);
	switch (p[0] % 8) {
	case 0:
		if (len) {
			memset(buf, p[0], len);
			(void)vimg_pwrite(img, buf, len, off);
		}
		break;
	case 1:
		if (len)
			(void)vimg_discard(img, off, len);
		break;
	case 2:
		if (len)
			(void)vimg_pwrite_zeroes(img, off, len);
		break;
	case 3:
		if (len)
			(void)vimg_pread(img, buf, len, off);
		break;
	case 4:
		(void)vimg_snapshot_create(img, p[1] & 1 ? "a" : "b");
		break;
	case 5:
	case 7:
		if (vimg_snapshot_list(img, &snaps, &n) == 0 && n > 0) {
			const char *id = snaps[p[1] % n].id;
			if (p[0] % 8 == 5)
				(void)vimg_snapshot_apply(img, id);
			else
				(void)vimg_snapshot_delete(img, id);
		}
		free(snaps);
		break;
	case 6:
		(void)vimg_flush(img);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vimg_open_opts rw = { .format = "qcow2", .no_backing = true,
				     .cache_size = 64 * 1024 };
	struct vimg_open_opts ro = { .format = "qcow2", .readonly = true,
				     .no_backing = true, .no_repair = true };
	struct vimg_check res;
	struct vimg *img;
	char path[64], err[256];
	size_t plen;
	int fd;

	if (size < 1)
		return 0;
	plen = data[size - 1] % 65;
	if (plen > size - 1)
		plen = size - 1;
	plen -= plen % 4;
	fd = memfd_create("fuzz-qcow2-rw", 0);
	if (fd < 0)
		return 0;
	if (vio_write_full(fd, data, size - 1 - plen) < 0) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	/* A dirty image is repaired here. */
	if (vimg_open(path, &rw, &img, err, sizeof(err)) == 0) {
		const uint8_t *prog = data + size - 1 - plen;
		for (size_t i = 0; i + 4 <= plen; i += 4)
			run_op(img, prog + i);
		(void)vimg_check(img, VIMG_FIX_LEAKS | VIMG_FIX_ERRORS, &res, NULL);
		vimg_close(img);
		/* What was written must open and read back. */
		if (vimg_open(path, &ro, &img, err, sizeof(err)) == 0) {
			uint64_t off = 0;
			size_t len = clamp(img, &off, MAX_LEN);
			if (len)
				(void)vimg_pread(img, buf, len, off);
			(void)vimg_check(img, 0, &res, NULL);
			vimg_close(img);
		}
	}
	close(fd);
	return 0;
}
