/* Image dispatcher: open with probing, backing chains, locking, create. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img-priv.h"

#define VIMG_MAX_CHAIN 256

int vimg_fail(struct vimg *img, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(img->err, sizeof(img->err), fmt, ap);
	va_end(ap);
	return err;
}

const char *vimg_errmsg(const struct vimg *img)
{
	return img->err[0] ? img->err : "no error";
}

enum vimg_format vimg_probe(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	if (len >= 4 && p[0] == 'Q' && p[1] == 'F' && p[2] == 'I' && p[3] == 0xfb)
		return VIMG_FMT_QCOW2;
	return VIMG_FMT_RAW;
}

const char *vimg_format_name(enum vimg_format f)
{
	switch (f) {
	case VIMG_FMT_RAW: return "raw";
	case VIMG_FMT_QCOW2: return "qcow2";
	default: return "none";
	}
}

static const struct vimg_driver *const drivers[] = { &raw_driver, &qcow2_driver };

static const struct vimg_driver *driver_by_fmt(enum vimg_format fmt)
{
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(drivers); i++)
		if (drivers[i]->fmt == fmt)
			return drivers[i];
	return NULL;
}

static const struct vimg_driver *driver_by_name(const char *name)
{
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(drivers); i++)
		if (!strcmp(drivers[i]->name, name))
			return drivers[i];
	return NULL;
}

/* Is @fd the file of @img? */
static bool same_file(int fd, const struct vimg *img)
{
	struct stat a, b;

	return img && img->fd >= 0 && fstat(fd, &a) == 0 && fstat(img->fd, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Lock the file behind @fd as a reader or a writer (see vimg_open_opts). */
static int lock_file(int fd, const char *path, const struct vimg_open_opts *opts,
		     char *err, size_t errlen)
{
	int r;

	if (opts->force_share || same_file(fd, opts->lock_holder))
		return 0;
	r = vlock_image(fd, !opts->readonly);
	if (r == -EBUSY)
		snprintf(err, errlen, "'%s' is in use by another process (it holds a "
			 "conflicting lock)", path);
	else if (r)
		snprintf(err, errlen, "cannot lock '%s': %s", path, strerror(-r));
	return r;
}

int vimg_lock(struct vimg *img, bool on, char *err, size_t errlen)
{
	int r;

	if (on && img->handed_over) {
		r = lock_file(img->fd, img->filename, &img->opts, err, errlen);
		if (!r) {
			img->handed_over = false;
			img->readonly = false;
		}
		return r;
	}
	if (on || img->readonly || img->opts.force_share ||
	    same_file(img->fd, img->opts.lock_holder))
		return 0;
	r = vimg_flush(img);
	if (r < 0) {
		snprintf(err, errlen, "cannot flush '%s': %s", img->filename, strerror(-r));
		return r;
	}
	r = vlock_image_drop(img->fd);
	if (r) {
		snprintf(err, errlen, "cannot unlock '%s': %s", img->filename, strerror(-r));
		return r;
	}
	/* Another process may now write it: this one must not, not even
	 * the close's metadata (the dirty bit, the trim). */
	pthread_mutex_lock(&img->lock);
	img->readonly = true;
	img->handed_over = true;
	pthread_mutex_unlock(&img->lock);
	return 0;
}

static int open_one(const char *path, const struct vimg_open_opts *opts,
		    struct vimg *parent, int depth, struct vimg **out,
		    char *err, size_t errlen)
{
	struct vimg *img;
	const struct vimg_driver *drv = NULL;
	unsigned char magic[4] = { 0 };
	int r;

	img = calloc(1, sizeof(*img));
	if (!img)
		return -ENOMEM;
	img->fd = -1;
	img->opts = *opts;
	img->readonly = opts->readonly;
	img->chain_depth = depth;
	img->filename = strdup(path);
	pthread_mutex_init(&img->lock, NULL);
	pthread_cond_init(&img->idle, NULL);
	if (opts->force_share && !opts->readonly) {
		r = -EINVAL;
		snprintf(err, errlen, "'%s': force-share is for read-only opens only", path);
		goto fail;
	}
	img->fd = open(path, (img->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (img->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		goto fail;
	}
	r = lock_file(img->fd, path, opts, err, errlen);
	if (r < 0)
		goto fail;
	if (opts->format && opts->format[0]) {
		drv = driver_by_name(opts->format);
		if (!drv) {
			r = -EINVAL;
			snprintf(err, errlen, "unknown image format '%s' (use raw or qcow2)",
				 opts->format);
			goto fail;
		}
	} else {
		ssize_t n = pread(img->fd, magic, sizeof(magic), 0);
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
			goto fail;
		}
		drv = driver_by_fmt(vimg_probe(magic, (size_t)n));
	}
	img->drv = drv;
	img->parent = parent;
	r = drv->open(img);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, img->err);
		goto fail;
	}
	*out = img;
	return 0;
fail:
	if (img->fd >= 0)
		close(img->fd);
	free(img->filename);
	pthread_mutex_destroy(&img->lock);
	pthread_cond_destroy(&img->idle);
	free(img);
	return r;
}

int vimg_open(const char *path, const struct vimg_open_opts *opts,
	      struct vimg **out, char *err, size_t errlen)
{
	struct vimg_open_opts def = { 0 };
	char dummy[8];
	int r;

	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	r = open_one(path, opts ? opts : &def, NULL, 0, out, err, errlen);
	/* backing_dirs belongs to the caller and is read during the open only. */
	for (struct vimg *a = r == 0 ? *out : NULL; a; a = a->backing) {
		a->opts.backing_dirs = NULL;
		a->opts.lock_holder = NULL;
	}
	return r;
}

/* Resolve a backing name relative to the directory of the image. */
static char *backing_path(const char *img_path, const char *name)
{
	const char *slash;
	char *p;

	if (name[0] == '/')
		return strdup(name);
	slash = strrchr(img_path, '/');
	if (!slash)
		return strdup(name);
	if (asprintf(&p, "%.*s/%s", (int)(slash - img_path), img_path, name) < 0)
		return NULL;
	return p;
}

/* Is real path @rp inside directory @dir (itself resolved here)? */
static bool path_inside(const char *rp, const char *dir)
{
	char *rd = realpath(dir, NULL);
	size_t n;
	bool in;

	if (!rd)
		return false;
	n = strlen(rd);
	while (n > 1 && rd[n - 1] == '/')
		n--;
	in = !strncmp(rp, rd, n) && (rp[n] == '/' || (n == 1 && rd[0] == '/'));
	free(rd);
	return in;
}

/*
 * confine_backing: @path (the backing file @name of @img) must resolve,
 * after symlinks, inside the directory of the top image of the chain or a
 * directory of opts.backing_dirs.  Stores the resolved path in *out.
 */
static int backing_confined(struct vimg *img, const char *name, const char *path,
			    char **out)
{
	struct vimg *top = img;
	char *rp, *topdir, *slash;
	bool ok;

	while (top->parent)
		top = top->parent;
	rp = realpath(path, NULL);
	if (!rp)
		return vimg_fail(img, -errno, "backing file '%s' of '%s': %s",
				 name, img->filename, strerror(errno));
	topdir = realpath(top->filename, NULL);
	slash = topdir ? strrchr(topdir, '/') : NULL;
	if (slash)
		*(slash == topdir ? slash + 1 : slash) = 0;
	ok = topdir && path_inside(rp, topdir);
	for (const char *const *d = img->opts.backing_dirs; !ok && d && *d; d++)
		ok = path_inside(rp, *d);
	free(topdir);
	if (!ok) {
		vimg_fail(img, -EPERM,
			"backing file '%s' of '%s' resolves to '%s', outside the image's "
			"directory and the allowed backing directories", name,
			img->filename, rp);
		free(rp);
		return -EPERM;
	}
	*out = rp;
	return 0;
}

int vimg_open_backing(struct vimg *img, const char *name, const char *fmt)
{
	struct vimg_open_opts o = { 0 };
	char *path, err[700];
	struct stat st_new;
	int r;

	if (img->chain_depth + 1 >= VIMG_MAX_CHAIN)
		return vimg_fail(img, -ELOOP,
			"backing chain deeper than %d images (a loop?) at '%s'",
			VIMG_MAX_CHAIN, name);
	if (img->opts.forbid_backing)
		return vimg_fail(img, -EPERM,
			"image '%s' has a backing file '%s' and backing files are not allowed",
			img->filename, name);
	if (img->opts.require_backing_fmt && (!fmt || !fmt[0]))
		return vimg_fail(img, -EPERM,
			"image '%s' names backing file '%s' without a backing format; "
			"refusing to probe it (set one with 'vireo-img rebase -u -b NAME -F FMT')",
			img->filename, name);
	path = backing_path(img->filename, name);
	if (!path)
		return -ENOMEM;
	if (img->opts.confine_backing) {
		char *rp = NULL;
		r = backing_confined(img, name, path, &rp);
		free(path);
		if (r < 0)
			return r;
		path = rp;
	}
	if (stat(path, &st_new) == 0) {
		/* Loop detection: the new file must not be this image or any
		 * image above it in the chain being opened. */
		for (struct vimg *a = img; a; a = a->parent) {
			struct stat st_a;
			if (fstat(a->fd, &st_a) == 0 && st_a.st_dev == st_new.st_dev &&
			    st_a.st_ino == st_new.st_ino) {
				free(path);
				return vimg_fail(img, -ELOOP,
					"backing file '%s' of '%s' is already in the chain (a loop)",
					name, img->filename);
			}
		}
	}
	o.format = fmt && fmt[0] ? fmt : NULL;
	o.readonly = true;
	o.cache_size = img->opts.cache_size;
	o.forbid_backing = img->opts.forbid_backing;
	o.require_backing_fmt = img->opts.require_backing_fmt;
	o.confine_backing = img->opts.confine_backing;
	o.backing_dirs = img->opts.backing_dirs;
	o.force_share = img->opts.force_share;
	o.lock_holder = img->opts.lock_holder;
	r = open_one(path, &o, img, img->chain_depth + 1, &img->backing, err,
		     sizeof(err));
	if (r < 0) {
		free(path);
		return vimg_fail(img, r, "cannot open backing file: %s", err);
	}
	if (img->opts.confine_backing) {
		/* What was opened, not what the name said a moment before. */
		char link[64], *rp = NULL;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", img->backing->fd);
		r = backing_confined(img, name, link, &rp);
		free(rp);
		if (r < 0) {
			vimg_close(img->backing);
			img->backing = NULL;
			free(path);
			return r;
		}
	}
	/* Loop detection over the whole chain below: no file may repeat. */
	for (struct vimg *a = img->backing; a; a = a->backing) {
		struct stat sa;
		if (fstat(a->fd, &sa) < 0)
			continue;
		for (struct vimg *b = a->backing; b; b = b->backing) {
			struct stat sb;
			if (fstat(b->fd, &sb) == 0 && sa.st_dev == sb.st_dev &&
			    sa.st_ino == sb.st_ino) {
				vimg_close(img->backing);
				img->backing = NULL;
				free(path);
				return vimg_fail(img, -ELOOP,
					"backing chain of '%s' has a loop", img->filename);
			}
		}
	}
	free(path);
	return 0;
}

int vimg_read_backing(struct vimg *img, void *buf, size_t len, uint64_t off)
{
	struct vimg *b = img->backing;
	size_t n = 0;
	int r;

	if (b && off < b->size) {
		n = (size_t)VIREO_MIN((uint64_t)len, b->size - off);
		r = vimg_pread(b, buf, n, off);
		if (r < 0)
			return vimg_fail(img, r, "backing file: %s", b->err);
	}
	if (n < len)
		memset((char *)buf + n, 0, len - n);
	return 0;
}

int vimg_close(struct vimg *img)
{
	int r = 0;

	if (!img)
		return 0;
	if (img->drv && img->drv->close) {
		if (!img->readonly)
			r = vimg_flush(img);
		img->drv->close(img);
	}
	if (img->backing)
		vimg_close(img->backing);
	if (img->fd >= 0)
		close(img->fd);
	pthread_mutex_destroy(&img->lock);
	pthread_cond_destroy(&img->idle);
	free(img->filename);
	free(img);
	return r;
}

enum vimg_format vimg_get_format(const struct vimg *img) { return img->drv->fmt; }
uint64_t vimg_size(const struct vimg *img) { return img->size; }
const char *vimg_filename(const struct vimg *img) { return img->filename; }
struct vimg *vimg_backing(const struct vimg *img) { return img->backing; }

static int check_range(struct vimg *img, uint64_t off, uint64_t len)
{
	if (off > img->size || len > img->size - off)
		return vimg_fail(img, -EINVAL,
			"request at offset %llu length %llu is past the end of the image (%llu bytes)",
			(unsigned long long)off, (unsigned long long)len,
			(unsigned long long)img->size);
	return 0;
}

static int check_write(struct vimg *img, uint64_t off, uint64_t len)
{
	if (img->readonly)
		return vimg_fail(img, -EROFS, "image '%s' is open read-only", img->filename);
	return check_range(img, off, len);
}

void vimg_drain(struct vimg *img)
{
	while (img->inflight)
		pthread_cond_wait(&img->idle, &img->lock);
}

static void direct_done(struct vimg *img)
{
	pthread_mutex_lock(&img->lock);
	if (--img->inflight == 0)
		pthread_cond_broadcast(&img->idle);
	pthread_mutex_unlock(&img->lock);
}

/* The error of a driver lacking an optional entry. */
static int unsupported(struct vimg *img, const char *what)
{
	return vimg_fail(img, -ENOTSUP, "%s is not supported by the %s format",
			 what, img->drv->name);
}

static int read_only(struct vimg *img)
{
	return vimg_fail(img, -EROFS, "image is open read-only");
}

/* Call under the lock, with no direct I/O running. */
#define LOCKED(img, call) \
	({ int _r; pthread_mutex_lock(&(img)->lock); vimg_drain(img); _r = (call); \
	   pthread_mutex_unlock(&(img)->lock); _r; })

/*
 * Fast path: when the whole request maps to plain data in the host file,
 * do the data I/O outside the lock so requests from several threads run in
 * parallel.  Operations that could move or share clusters (flush, which
 * applies frees, discard, snapshots...) drain these first.
 */
static int try_direct(struct vimg *img, void *rbuf, const void *wbuf,
		      size_t len, uint64_t off)
{
	uint64_t h, run;
	int r;

	r = img->drv->map(img, off, len, wbuf != NULL, &h, &run);
	if (r < 0 || run < len)
		return 1;
	img->inflight++;
	pthread_mutex_unlock(&img->lock);
	r = wbuf ? vio_pwrite_full(img->fd, wbuf, len, (off_t)h) :
		   vio_pread_zfill(img->fd, rbuf, len, (off_t)h);
	if (r < 0) {
		pthread_mutex_lock(&img->lock);
		vimg_fail(img, r, "%s at %llu: %s", wbuf ? "write" : "read",
			  (unsigned long long)off, strerror(-r));
		pthread_mutex_unlock(&img->lock);
	}
	direct_done(img);
	return r;
}

int vimg_pread(struct vimg *img, void *buf, size_t len, uint64_t off)
{
	int r = check_range(img, off, len);

	if (r < 0 || !len)
		return r;
	pthread_mutex_lock(&img->lock);
	r = try_direct(img, buf, NULL, len, off);
	if (r <= 0)
		return r;
	r = img->drv->pread(img, buf, len, off);
	pthread_mutex_unlock(&img->lock);
	return r;
}

int vimg_pwrite(struct vimg *img, const void *buf, size_t len, uint64_t off)
{
	int r = check_write(img, off, len);

	if (r < 0 || !len)
		return r;
	pthread_mutex_lock(&img->lock);
	r = img->opts.writethrough ? 1 : try_direct(img, NULL, buf, len, off);
	if (r <= 0)
		return r;
	if (img->drv->pwrite_defer && !img->opts.writethrough) {
		/* Allocating write: metadata under the lock, data outside. */
		uint64_t h, dlen;
		const void *src;
		r = img->drv->pwrite_defer(img, buf, len, off, &h, &dlen, &src);
		if (r == 1) {
			img->inflight++;
			pthread_mutex_unlock(&img->lock);
			r = vio_pwrite_full(img->fd, src, dlen, (off_t)h);
			if (r < 0) {
				pthread_mutex_lock(&img->lock);
				vimg_fail(img, r, "write at %llu: %s",
					  (unsigned long long)off, strerror(-r));
				pthread_mutex_unlock(&img->lock);
			}
			direct_done(img);
			return r;
		}
		pthread_mutex_unlock(&img->lock);
		return r;
	}
	r = img->drv->pwrite(img, buf, len, off);
	if (r >= 0 && img->opts.writethrough) {
		vimg_drain(img);
		r = img->drv->flush(img);
	}
	pthread_mutex_unlock(&img->lock);
	return r;
}

/* Zeroing and discarding: checked, then run with direct I/O drained. */
static int zero_range(struct vimg *img, uint64_t off, uint64_t len, bool discard)
{
	int r = check_write(img, off, len);

	if (r < 0 || !len)
		return r;
	return LOCKED(img, discard ? img->drv->discard(img, off, len) :
				     img->drv->pwrite_zeroes(img, off, len));
}

int vimg_pwrite_zeroes(struct vimg *img, uint64_t off, uint64_t len) { return zero_range(img, off, len, false); }
int vimg_discard(struct vimg *img, uint64_t off, uint64_t len) { return zero_range(img, off, len, true); }

int vimg_flush(struct vimg *img)
{
	int r;

	if (img->readonly)
		return 0;
	pthread_mutex_lock(&img->lock);
	vimg_drain(img);
	r = img->drv->flush(img);
	pthread_mutex_unlock(&img->lock);
	return r;
}

int vimg_pwrite_compressed(struct vimg *img, const void *buf, size_t len,
			   uint64_t off)
{
	int r = check_write(img, off, len);

	if (r < 0 || !len)
		return r;
	if (!img->drv->pwrite_compressed)
		return unsupported(img, "a compressed write");
	return LOCKED(img, img->drv->pwrite_compressed(img, buf, len, off));
}

uint32_t vimg_cluster_size(const struct vimg *img)
{
	if (img->drv->cluster_size)
		return img->drv->cluster_size((struct vimg *)img);
	return 65536;
}

int vimg_block_status(struct vimg *img, uint64_t off, uint64_t len,
		      bool whole_chain, struct vimg_extent *ext)
{
	int r = check_range(img, off, len);
	struct vimg *cur = img;
	int depth = 0;

	if (r < 0)
		return r;
	if (!len)
		return vimg_fail(img, -EINVAL, "block status of an empty range");
	for (;;) {
		pthread_mutex_lock(&cur->lock);
		r = cur->drv->block_status(cur, off, len, ext);
		pthread_mutex_unlock(&cur->lock);
		if (r < 0) {
			if (cur != img)
				vimg_fail(img, r, "%s", cur->err);
			return r;
		}
		ext->depth = depth;
		if ((ext->flags & ~VIMG_BS_OFFSET_VALID) || !whole_chain)
			break;
		/* Unallocated here: look below, within what the backing has. */
		if (!cur->backing) {
			ext->flags = VIMG_BS_ZERO | (ext->flags & VIMG_BS_OFFSET_VALID);
			ext->depth = -1;
			break;
		}
		len = ext->len;
		if (off >= cur->backing->size) {
			ext->flags = VIMG_BS_ZERO;
			ext->depth = -1;
			break;
		}
		len = VIREO_MIN(len, cur->backing->size - off);
		cur = cur->backing;
		depth++;
	}
	if (!(ext->flags & (VIMG_BS_DATA | VIMG_BS_ZERO)) && !whole_chain)
		ext->depth = -1;
	return 0;
}

int vimg_map(struct vimg *img, uint64_t off, uint64_t len, bool for_write,
	     int *fd, uint64_t *host_off, uint64_t *run)
{
	int r = check_range(img, off, len);

	if (r < 0)
		return r;
	if (for_write && img->readonly)
		return -EROFS;
	pthread_mutex_lock(&img->lock);
	r = img->drv->map(img, off, len, for_write, host_off, run);
	pthread_mutex_unlock(&img->lock);
	*fd = img->fd;
	return r;
}

int vimg_create_file(const char *path, char *err, size_t errlen)
{
	struct vimg_open_opts o = { 0 };
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644), r;

	if (fd < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", path, strerror(errno));
		return -errno;
	}
	/* Truncate only once nobody else has it open: not an image in use. */
	r = lock_file(fd, path, &o, err, errlen);
	if (r == 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ftruncate(fd, 0) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot truncate '%s': %s", path, strerror(errno));
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int vimg_create(const char *path, const struct vimg_create_opts *o,
		char *err, size_t errlen)
{
	const struct vimg_driver *drv = driver_by_fmt(o->format);

	if (!drv || !drv->create) {
		snprintf(err, errlen, "unknown format to create");
		return -EINVAL;
	}
	return drv->create(path, o, err, errlen);
}

int vimg_get_info(struct vimg *img, struct vimg_info *info)
{
	struct stat st;
	int r = 0;

	memset(info, 0, sizeof(*info));
	info->format = img->drv->fmt;
	info->size = img->size;
	if (fstat(img->fd, &st) == 0) {
		info->file_length = (uint64_t)st.st_size;
		info->actual_size = (uint64_t)st.st_blocks * 512;
	}
	if (img->drv->info) {
		pthread_mutex_lock(&img->lock);
		r = img->drv->info(img, info);
		pthread_mutex_unlock(&img->lock);
	}
	return r;
}

int vimg_check(struct vimg *img, int fix, struct vimg_check *res, FILE *log)
{
	memset(res, 0, sizeof(*res));
	if (!img->drv->check)
		return unsupported(img, "checking");
	if (fix && img->readonly)
		return vimg_fail(img, -EROFS, "cannot repair a read-only image");
	return LOCKED(img, img->drv->check(img, fix, res, log));
}

/*
 * Run an optional driver entry that changes metadata: it must exist and
 * the image be writable; it runs under the lock with direct I/O drained.
 */
#define WRITE_META(img, entry, what, ...) \
	({ int _m = !(img)->drv->entry ? unsupported(img, what) : \
		    (img)->readonly ? read_only(img) : \
		    LOCKED(img, (img)->drv->entry(img, ##__VA_ARGS__)); _m; })

int vimg_snapshot_list(struct vimg *img, struct vimg_snapshot **out, int *n)
{
	*out = NULL;
	*n = 0;
	if (!img->drv->snapshot_list)
		return 0;
	return LOCKED(img, img->drv->snapshot_list(img, out, n));
}

/* Snapshots are metadata changes, but loading one (a read-only view)
 * needs the image read-only instead. */
static int snapshot_op(struct vimg *img, enum vimg_snap_op op, const char *id,
		       const char *name)
{
	if (op != VIMG_SNAP_LOAD)
		return WRITE_META(img, snapshot, "an internal snapshot", op, id, name);
	if (!img->drv->snapshot)
		return unsupported(img, "an internal snapshot");
	if (!img->readonly)
		return vimg_fail(img, -EINVAL, "a snapshot can only be loaded into a read-only image");
	return LOCKED(img, img->drv->snapshot(img, op, id, name));
}

int vimg_snapshot_create(struct vimg *img, const char *n) { return snapshot_op(img, VIMG_SNAP_CREATE, NULL, n); }
int vimg_snapshot_apply(struct vimg *img, const char *n) { return snapshot_op(img, VIMG_SNAP_APPLY, NULL, n); }
int vimg_snapshot_delete(struct vimg *img, const char *n) { return snapshot_op(img, VIMG_SNAP_DELETE, NULL, n); }
int vimg_snapshot_load(struct vimg *img, const char *id, const char *n) { return snapshot_op(img, VIMG_SNAP_LOAD, id, n); }

int vimg_resize(struct vimg *img, uint64_t new_size)
{
	return WRITE_META(img, resize, "resizing", new_size);
}

int vimg_set_backing(struct vimg *img, const char *backing, const char *fmt)
{
	return WRITE_META(img, set_backing, "a backing file", backing, fmt);
}

int vimg_make_empty(struct vimg *img)
{
	return WRITE_META(img, make_empty, "emptying an image");
}
