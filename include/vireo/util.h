/* Small shared helpers: logging, size parsing, careful I/O. */
#ifndef VIREO_UTIL_H
#define VIREO_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/uio.h>

#define VIREO_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define VIREO_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VIREO_MAX(a, b) ((a) > (b) ? (a) : (b))
#define VIREO_ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define VIREO_ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define VIREO_PRINTF(f, a) __attribute__((format(printf, f, a)))

enum vlog_level { VLOG_ERROR = 0, VLOG_WARN, VLOG_INFO, VLOG_DEBUG };

/* Program name printed before every message (default "vireo"). */
void vlog_set_prog(const char *prog);
void vlog_set_level(enum vlog_level lvl);
enum vlog_level vlog_get_level(void);
/* Where messages go: stderr by default (and after vlog_set_file(NULL)). */
void vlog_set_file(FILE *f);
FILE *vlog_file(void);
void vlog(enum vlog_level lvl, const char *fmt, ...) VIREO_PRINTF(2, 3);
void vlogv(enum vlog_level lvl, const char *fmt, va_list ap) VIREO_PRINTF(2, 0);

#define verr(...)   vlog(VLOG_ERROR, __VA_ARGS__)
#define vwarn(...)  vlog(VLOG_WARN, __VA_ARGS__)
#define vinfo(...)  vlog(VLOG_INFO, __VA_ARGS__)
#define vdebug(...) vlog(VLOG_DEBUG, __VA_ARGS__)

/*
 * Parse a size such as "512", "512K", "2G", "1.5G", "64KiB".  A bare number
 * is taken in units of @default_unit (1 for bytes, 1<<20 for MiB...).
 * Returns 0 and stores the byte count, or -EINVAL / -ERANGE.
 */
int vsize_parse(const char *s, uint64_t default_unit, uint64_t *out);

/* Format a byte count as "1.5 GiB" into buf. Returns buf. */
char *vsize_format(uint64_t bytes, char *buf, size_t len);

/* Parse an unsigned integer in [min, max]. Returns 0, -EINVAL or -ERANGE. */
int vparse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Full read/write helpers (lib/util/vio.c) that retry on EINTR and short
 * transfers.  Return 0 on success, -errno on failure, -EIO on unexpected
 * EOF (vio_pread_zfill instead fills what lies past the end with zeros). */
int vio_pread_full(int fd, void *buf, size_t len, off_t off);
int vio_pread_zfill(int fd, void *buf, size_t len, off_t off);
int vio_pwrite_full(int fd, const void *buf, size_t len, off_t off);
int vio_write_full(int fd, const void *buf, size_t len);

/*
 * Raw disk files (regular files or block devices), shared by lib/img's raw
 * driver and the VMM's raw virtio-blk backend.
 */
uint64_t vio_iov_total(const struct iovec *iov, int iovcnt);
/* Finish a vectored read or write of which @done bytes already happened
 * (preadv/pwritev, at most IOV_MAX segments a call); -EIO at end of file. */
int vio_rwv_full(int fd, bool write, const struct iovec *iov, int iovcnt,
		 uint64_t off, uint64_t done);
/* Size of a block device or a regular file: 0; of another kind of file
 * (its st_size): 1; -errno on failure. */
int vio_file_size(int fd, uint64_t *size);
/* Deallocate a range (reads back as zeros); 0 or -errno. */
int vio_punch_hole(int fd, uint64_t off, uint64_t len);
/* Make a range read as zeros: a hole when @unmap and the file system can
 * punch one, else FALLOC_FL_ZERO_RANGE, else zeros written. */
int vio_zero_range(int fd, uint64_t off, uint64_t len, bool unmap);

/*
 * Image locks (lib/util/imglock.c): QEMU's lock bytes, so that vireo and
 * QEMU see each other's users of an image.  vlock_image takes a reader's
 * or a writer's locks on the file behind @fd: 0, -EBUSY when another open
 * of the file conflicts (nothing is then held), or -errno.
 * vlock_image_drop releases them (and any other lock of @fd's).
 */
int vlock_image(int fd, bool writer);
int vlock_image_drop(int fd);

/* Monotonic time in nanoseconds. */
uint64_t vtime_ns(void);

#endif
