/* Internal contract between the image dispatcher and the format drivers. */
#ifndef VIREO_IMG_PRIV_H
#define VIREO_IMG_PRIV_H

#include <pthread.h>
#include <vireo/img.h>
#include <vireo/util.h>

/* What vimg_snapshot_create/apply/delete/load ask of a driver. */
enum vimg_snap_op { VIMG_SNAP_CREATE, VIMG_SNAP_APPLY, VIMG_SNAP_DELETE, VIMG_SNAP_LOAD };

/*
 * A format driver.  The entries up to map are required; the rest are
 * optional: where one is NULL the public call fails with "... is not
 * supported by the <name> format" (or, for info, cluster_size,
 * snapshot_list and pwrite_defer, falls back to the plain behaviour).
 * img.c checks ranges and read-only-ness and takes img->lock (draining
 * direct I/O where data may move) before calling any entry but create.
 */
struct vimg_driver {
	const char *name;
	enum vimg_format fmt;
	int (*open)(struct vimg *img);
	void (*close)(struct vimg *img);
	int (*pread)(struct vimg *img, void *buf, size_t len, uint64_t off);
	int (*pwrite)(struct vimg *img, const void *buf, size_t len, uint64_t off);
	int (*pwrite_zeroes)(struct vimg *img, uint64_t off, uint64_t len);
	int (*discard)(struct vimg *img, uint64_t off, uint64_t len);
	int (*flush)(struct vimg *img);
	int (*block_status)(struct vimg *img, uint64_t off, uint64_t len,
			    struct vimg_extent *ext);
	int (*map)(struct vimg *img, uint64_t off, uint64_t len, bool for_write,
		   uint64_t *host_off, uint64_t *run);

	/* Optional. */
	int (*create)(const char *path, const struct vimg_create_opts *o,
		      char *err, size_t errlen);
	int (*info)(struct vimg *img, struct vimg_info *info);
	int (*check)(struct vimg *img, int fix, struct vimg_check *res, FILE *log);
	int (*resize)(struct vimg *img, uint64_t size);
	int (*set_backing)(struct vimg *img, const char *backing, const char *fmt);
	int (*make_empty)(struct vimg *img);
	uint32_t (*cluster_size)(struct vimg *img);
	int (*pwrite_compressed)(struct vimg *img, const void *buf, size_t len,
				 uint64_t off);
	/* Like pwrite, but may leave the final data write (returns 1 and fills
	 * host/dlen/src) for the caller to do after dropping the lock. */
	int (*pwrite_defer)(struct vimg *img, const void *buf, size_t len,
			    uint64_t off, uint64_t *host, uint64_t *dlen,
			    const void **src);
	int (*snapshot_list)(struct vimg *img, struct vimg_snapshot **out, int *n);
	/* @id is used by VIMG_SNAP_LOAD only. */
	int (*snapshot)(struct vimg *img, enum vimg_snap_op op, const char *id,
			const char *name);
};

struct vimg {
	const struct vimg_driver *drv;
	char *filename;
	int fd;
	bool readonly;
	bool handed_over;        /* vimg_lock(false): read-only until taken back */
	uint64_t size;
	struct vimg *backing;
	struct vimg *parent;     /* the image this is the backing of (while opening) */
	int chain_depth;
	struct vimg_open_opts opts;
	pthread_mutex_t lock;
	pthread_cond_t idle;      /* signalled when inflight drops to 0 */
	int inflight;             /* direct data I/Os running outside the lock */
	void *priv;
	char err[512];
};

extern const struct vimg_driver raw_driver;
extern const struct vimg_driver qcow2_driver;

/* Record an error message on img and return err (a negative errno). */
int vimg_fail(struct vimg *img, int err, const char *fmt, ...) VIREO_PRINTF(3, 4);

/* With img->lock held: wait until no direct data I/O is running. */
void vimg_drain(struct vimg *img);

/* Open the backing file named in an image (path relative to the image). */
int vimg_open_backing(struct vimg *img, const char *name, const char *fmt);
/* Read from the backing chain (zeros where none / past its end). */
int vimg_read_backing(struct vimg *img, void *buf, size_t len, uint64_t off);

/* Create (or truncate) @path for a new image: a descriptor, or -errno
 * with @err set. */
int vimg_create_file(const char *path, char *err, size_t errlen);

/* Probe a file's leading bytes. */
enum vimg_format vimg_probe(const void *buf, size_t len);

#endif
