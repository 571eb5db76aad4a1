/*
 * Disk images: raw and qcow2 (v2 and v3), read and write.
 *
 * One struct vimg is one open image (with its backing chain).  All calls on
 * one image are thread-safe: an internal lock guards metadata, so a VMM may
 * issue requests from several worker threads at once (see vimg_map() for
 * doing the data I/O itself, e.g. through io_uring, on the host file).
 *
 * Every function returns 0 (or a count) on success and -errno on failure;
 * after a failure vimg_errmsg() tells what went wrong in one line.
 */
#ifndef VIREO_IMG_H
#define VIREO_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum vimg_format { VIMG_FMT_NONE = 0, VIMG_FMT_RAW, VIMG_FMT_QCOW2 };

struct vimg;

struct vimg_open_opts {
	/* "raw", "qcow2" or NULL to probe.  Probing only ever says qcow2 for a
	 * file with the qcow2 magic; a caller that knows a disk is raw must say
	 * so, since a guest can write a qcow2 header into a raw disk. */
	const char *format;
	bool readonly;
	bool no_backing;        /* do not open the backing file */
	bool no_repair;         /* do not rebuild refcounts of a dirty image */
	bool writethrough;      /* flush after every write */
	bool unsafe;            /* never sync to disk (like cache=unsafe);
	                         * writes stay ordered only in the page cache */
	uint64_t cache_size;    /* bytes of L2+refcount cache, 0 for default */
	/*
	 * Backing-file policy, applied to every file of the chain.  An image
	 * names its backing file itself, so whoever hands an image to a guest
	 * must not let it name any host file: a VMM sets these.
	 */
	bool forbid_backing;      /* refuse an image that names a backing file */
	bool require_backing_fmt; /* refuse a backing file without a backing
	                           * format instead of probing it */
	bool confine_backing;     /* backing files must resolve (after symlinks)
	                           * inside the top image's directory or one of
	                           * backing_dirs */
	const char *const *backing_dirs; /* NULL-terminated; read during
	                                  * vimg_open only */
	/*
	 * Locking: every file of the chain is locked with an OFD lock on the
	 * descriptor the library then uses, shared when opened read-only
	 * (backing files always), exclusive when read-write; a conflict with
	 * another open file description (another process, or another open in
	 * this one) fails with -EBUSY.  force_share (read-only opens only)
	 * takes no lock, for inspecting an image in use.  A file of the chain
	 * that is the file of lock_holder (an image this caller has open,
	 * e.g. read-write to commit into it) is not locked again.
	 */
	bool force_share;
	const struct vimg *lock_holder;
};

/* Open; on failure returns -errno and writes a one-line reason into err
 * (-EBUSY: the image or a backing file is locked by another user). */
int vimg_open(const char *path, const struct vimg_open_opts *opts,
	      struct vimg **out, char *err, size_t errlen);
/* Flush and close (clears the qcow2 dirty bit).  Returns the flush result. */
int vimg_close(struct vimg *img);
/*
 * Hand a writable image over to another process (live migration on shared
 * storage): @on false flushes and releases the top image's lock, @on true
 * takes it again as vimg_open did (-EBUSY with @err set while another
 * process holds a conflicting one).  Released, the image is read-only to
 * this process (writes fail, vimg_close writes nothing) until taken back.
 * Backing files keep their shared locks; a read-only or force-shared
 * image is left as it is (0).
 */
int vimg_lock(struct vimg *img, bool on, char *err, size_t errlen);

const char *vimg_errmsg(const struct vimg *img);
enum vimg_format vimg_get_format(const struct vimg *img);
const char *vimg_format_name(enum vimg_format f);
uint64_t vimg_size(const struct vimg *img);
const char *vimg_filename(const struct vimg *img);
struct vimg *vimg_backing(const struct vimg *img);

/* Data I/O at any byte offset and length within the virtual size. */
int vimg_pread(struct vimg *img, void *buf, size_t len, uint64_t off);
int vimg_pwrite(struct vimg *img, const void *buf, size_t len, uint64_t off);
/* Make a range read as zeros (qcow2 v3: zero clusters, no data written). */
int vimg_pwrite_zeroes(struct vimg *img, uint64_t off, uint64_t len);
/* Drop a range: it then reads as zeros (or backing data on qcow2 v2). */
int vimg_discard(struct vimg *img, uint64_t off, uint64_t len);
/* Make everything written so far durable. */
int vimg_flush(struct vimg *img);
/* Compressed write of whole clusters (qcow2 only, off cluster-aligned). */
int vimg_pwrite_compressed(struct vimg *img, const void *buf, size_t len,
			   uint64_t off);
uint32_t vimg_cluster_size(const struct vimg *img);

/* Block status of [off, off+len): fills *pnum with how many bytes share the
 * returned status (> 0).  depth is 0 when data comes from this image, N when
 * from the N-th backing file, -1 when from none. */
#define VIMG_BS_DATA 1u   /* host data (reads from a file) */
#define VIMG_BS_ZERO 2u   /* reads as zeros */
#define VIMG_BS_COMPRESSED 4u
#define VIMG_BS_OFFSET_VALID 8u /* host_off is meaningful (raw holes too) */
struct vimg_extent {
	uint64_t off, len;
	unsigned flags;
	int depth;
	uint64_t host_off;      /* valid with VIMG_BS_OFFSET_VALID */
};
int vimg_block_status(struct vimg *img, uint64_t off, uint64_t len,
		      bool whole_chain, struct vimg_extent *ext);

/*
 * Map for direct data I/O (the caller must not run such I/O across
 * vimg_flush, discard, snapshot or resize calls: those may move clusters):
 * when [off, off+len) is plain allocated data in
 * this image (not compressed, not shared with a snapshot if for_write),
 * store the host fd and offset and the length of the run, return 0.
 * Otherwise returns -ENOENT and the caller uses vimg_pread/vimg_pwrite.
 */
int vimg_map(struct vimg *img, uint64_t off, uint64_t len, bool for_write,
	     int *fd, uint64_t *host_off, uint64_t *run);

/* Creating. */
struct vimg_create_opts {
	enum vimg_format format;
	uint64_t size;          /* virtual size (0: take the backing file's) */
	const char *backing;    /* backing file name, or NULL */
	const char *backing_fmt;
	uint32_t cluster_size;  /* 0: 64 KiB */
	int version;            /* 0: 3; 2 or 3 */
	int refcount_bits;      /* 0: 16 */
	int compression;        /* 0 zlib, 1 zstd */
	bool lazy_refcounts;
	bool extended_l2;
	bool preallocate_metadata;
};
int vimg_create(const char *path, const struct vimg_create_opts *o,
		char *err, size_t errlen);

/* Information for `info`. */
struct vimg_info {
	enum vimg_format format;
	uint64_t size, file_length, actual_size;
	uint32_t cluster_size;
	int version, refcount_bits, compression;
	bool lazy_refcounts, dirty, corrupt, extended_l2;
	char backing[1024];
	char backing_fmt[32];
	int nb_snapshots;
};
int vimg_get_info(struct vimg *img, struct vimg_info *info);

/* Consistency check and repair (qcow2; raw has nothing to check). */
#define VIMG_FIX_LEAKS 1
#define VIMG_FIX_ERRORS 2
struct vimg_check {
	uint64_t corruptions, leaks, check_errors;
	uint64_t corruptions_fixed, leaks_fixed;
	uint64_t image_end_offset;
	uint64_t total_clusters, allocated_clusters, fragmented_clusters,
		 compressed_clusters;
};
/* Messages about each problem go to @log (may be NULL). */
int vimg_check(struct vimg *img, int fix, struct vimg_check *res, FILE *log);

/* Internal snapshots (qcow2). */
struct vimg_snapshot {
	char id[64];
	char name[256];
	uint64_t vm_state_size;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t disk_size;
	uint32_t l1_size;
};
int vimg_snapshot_list(struct vimg *img, struct vimg_snapshot **out, int *n);
int vimg_snapshot_create(struct vimg *img, const char *name);
int vimg_snapshot_apply(struct vimg *img, const char *name_or_id);
int vimg_snapshot_delete(struct vimg *img, const char *name_or_id);
/* Make an image opened read-only read as one of its snapshots (what
 * 'qemu-img convert -l' does).  id and/or name (NULL: any) select it; a
 * bare id that matches no ID is also tried as a name.  -ENOENT if none. */
int vimg_snapshot_load(struct vimg *img, const char *id, const char *name);

/* Change the virtual size (qcow2: growing, or shrinking unused space). */
int vimg_resize(struct vimg *img, uint64_t new_size);
/* Make every cluster unallocated (qcow2; used by commit). */
int vimg_make_empty(struct vimg *img);

/* Change the recorded backing file without touching data (rebase -u). */
int vimg_set_backing(struct vimg *img, const char *backing, const char *fmt);

/*
 * Asynchronous requests.  A pool of nthreads workers (0: 4) runs requests
 * in submission order of pick-up; requests to distinct clusters complete in
 * any order, so the caller orders dependent requests itself (e.g. submits a
 * flush only after the writes it covers have completed).  cb runs on a
 * worker thread with the request's result (0 or -errno).  vimg_aio_stop
 * finishes every queued request, then stops the workers.
 */
enum vimg_aio_op {
	VIMG_AIO_READ, VIMG_AIO_WRITE, VIMG_AIO_FLUSH, VIMG_AIO_DISCARD,
	VIMG_AIO_WRITE_ZEROES,
};
typedef void (*vimg_aio_cb)(void *opaque, int ret);
struct vimg_aio;
int vimg_aio_start(struct vimg *img, int nthreads, struct vimg_aio **out);
int vimg_aio_submit(struct vimg_aio *a, enum vimg_aio_op op, void *buf,
		    size_t len, uint64_t off, vimg_aio_cb cb, void *opaque);
/* Wait until every submitted request has completed. */
void vimg_aio_drain(struct vimg_aio *a);
void vimg_aio_stop(struct vimg_aio *a);

#endif
