/*
 * Careful I/O (vio_*): whole transfers that retry on EINTR and short
 * counts, the raw-file operations every raw disk uses (lib/img's raw
 * driver and the VMM's raw virtio-blk backend), and the monotonic clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <vireo/util.h>

enum vio_kind { VIO_PREAD, VIO_PWRITE, VIO_WRITE };

/* The one transfer loop.  At end of file a read fails with -EIO, or fills
 * the rest with zeros when @zfill. */
static int vio_loop(enum vio_kind kind, int fd, void *buf, size_t len,
		    off_t off, bool zfill)
{
	char *p = buf;

	while (len) {
		ssize_t n;

		switch (kind) {
		case VIO_PREAD:  n = pread(fd, p, len, off); break;
		case VIO_PWRITE: n = pwrite(fd, p, len, off); break;
		default:         n = write(fd, p, len); break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0 && kind == VIO_PREAD) {
			if (!zfill)
				return -EIO;
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int vio_pread_full(int fd, void *buf, size_t len, off_t off)
{
	return vio_loop(VIO_PREAD, fd, buf, len, off, false);
}

int vio_pread_zfill(int fd, void *buf, size_t len, off_t off)
{
	return vio_loop(VIO_PREAD, fd, buf, len, off, true);
}

int vio_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	return vio_loop(VIO_PWRITE, fd, (void *)buf, len, off, false);
}

int vio_write_full(int fd, const void *buf, size_t len)
{
	return vio_loop(VIO_WRITE, fd, (void *)buf, len, 0, false);
}

uint64_t vio_iov_total(const struct iovec *iov, int iovcnt)
{
	uint64_t t = 0;

	for (int i = 0; i < iovcnt; i++)
		t += iov[i].iov_len;
	return t;
}

/* Copy of iov without its first @skip bytes (malloc'd); sets *cnt. */
static struct iovec *iov_tail(const struct iovec *iov, int iovcnt,
			      uint64_t skip, int *cnt)
{
	struct iovec *v;
	int i = 0, n = 0;

	while (i < iovcnt && skip >= iov[i].iov_len) {
		skip -= iov[i].iov_len;
		i++;
	}
	v = calloc((size_t)(iovcnt - i) + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (; i < iovcnt; i++) {
		v[n].iov_base = (char *)iov[i].iov_base + skip;
		v[n].iov_len = iov[i].iov_len - skip;
		skip = 0;
		n++;
	}
	*cnt = n;
	return v;
}

int vio_rwv_full(int fd, bool write, const struct iovec *iov, int iovcnt,
		 uint64_t off, uint64_t done)
{
	uint64_t total = vio_iov_total(iov, iovcnt);
	struct iovec *v = NULL;
	int cnt = iovcnt, ret = 0;
	const struct iovec *cur = iov;

	while (done < total) {
		ssize_t n;

		if (done) {
			free(v);
			v = iov_tail(iov, iovcnt, done, &cnt);
			if (!v)
				return -ENOMEM;
			cur = v;
		}
		if (cnt > IOV_MAX)
			cnt = IOV_MAX;
		n = write ? pwritev(fd, cur, cnt, (off_t)(off + done))
			  : preadv(fd, cur, cnt, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n == 0) {
			ret = -EIO;   /* the file shrank under us */
			break;
		}
		done += (uint64_t)n;
	}
	free(v);
	return ret;
}

int vio_file_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	return S_ISREG(st.st_mode) ? 0 : 1;
}

int vio_punch_hole(int fd, uint64_t off, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}

int vio_zero_range(int fd, uint64_t off, uint64_t len, bool unmap)
{
	static const char zero[65536];

	if (unmap && vio_punch_hole(fd, off, len) == 0)
		return 0;
	if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
		return -errno;
	/* The file system cannot: write the zeros. */
	while (len) {
		size_t n = (size_t)VIREO_MIN(len, (uint64_t)sizeof(zero));
		int r = vio_pwrite_full(fd, zero, n, (off_t)off);

		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

uint64_t vtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
