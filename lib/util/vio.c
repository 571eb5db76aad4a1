/* Careful I/O (vio_*): whole transfers that retry on EINTR and short
 * counts, and the monotonic clock. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
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

uint64_t vtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
