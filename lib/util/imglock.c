/*
 * Image locks that QEMU understands.  QEMU's file driver does not lock a
 * whole image: it takes shared OFD locks on single bytes, one byte per
 * block permission it holds (100 + bit) and one per permission it will
 * not share (200 + bit), and before it opens an image it tests the bytes
 * that would conflict.  A whole-file lock covers all of those bytes and
 * reads to QEMU as "holds every permission, shares none": qemu-img could
 * not even read an overlay whose base a running vireo-vmm used.  So
 * vireo takes the same bytes, with the permissions its users need:
 *   reader (a read-only disk, a backing file, vireo-img reading):
 *           holds consistent-read; does not share write or resize;
 *   writer: holds consistent-read, write and resize; does not share
 *           write or resize (what QEMU's writers take).
 * Readers share with readers (QEMU's backing files and read-only opens
 * included), a writer excludes every writer and every reader that does not
 * share writes (QEMU's qemu-img without -U); both still let a force-share
 * reader (qemu-img -U) in, as QEMU's running VMs do.  (QEMU itself does
 * not forbid writes to the backing files it reads; vireo does.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <vireo/util.h>

#define LOCK_HOLD_BASE   100
#define LOCK_UNSHARE_BASE 200

/* QEMU's permission bits. */
enum {
	PERM_CONSISTENT_READ = 1u << 0,
	PERM_WRITE = 1u << 1,
	PERM_RESIZE = 1u << 3,
	PERM_BITS = 4,
};

static int lock_byte(int fd, short type, off_t byte)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* Does another open file description hold a lock on @byte?  1, 0 or -errno. */
static int byte_taken(int fd, off_t byte)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

int vlock_image(int fd, bool writer)
{
	unsigned hold = PERM_CONSISTENT_READ |
			(writer ? PERM_WRITE | PERM_RESIZE : 0);
	unsigned unshare = PERM_WRITE | PERM_RESIZE;
	int r = 0;

	/* Ours first, then the others' (as QEMU does): of two openers racing,
	 * at least one sees the other. */
	for (unsigned b = 0; b < PERM_BITS && !r; b++) {
		if (hold & (1u << b))
			r = lock_byte(fd, F_RDLCK, LOCK_HOLD_BASE + b);
		if (!r && (unshare & (1u << b)))
			r = lock_byte(fd, F_RDLCK, LOCK_UNSHARE_BASE + b);
	}
	for (unsigned b = 0; b < PERM_BITS && !r; b++) {
		if (hold & (1u << b))
			r = byte_taken(fd, LOCK_UNSHARE_BASE + b);   /* someone forbids it */
		if (!r && (unshare & (1u << b)))
			r = byte_taken(fd, LOCK_HOLD_BASE + b);      /* someone holds it */
	}
	if (r == 1 || r == -EAGAIN || r == -EACCES)
		r = -EBUSY;
	if (r)
		vlock_image_drop(fd);
	return r;
}

int vlock_image_drop(int fd)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}
