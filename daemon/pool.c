/* Storage pools (pool.h).  One lock serialises the pool operations. */
#include "pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include <vireo/img.h>
#include <vireo/util.h>

#define POOL_MAX_BODY   4096
#define POOL_MAX_VOLS   4096
#define POOL_MAX_JOBS   32
#define XFER_CHUNK      (1024 * 1024)

static struct store *store;
static pool_in_use_fn in_use;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

void pools_init(struct store *st, pool_in_use_fn fn)
{
	store = st;
	in_use = fn;
}

/* The long operations under way (pool_lock). */
static struct job {
	bool used;
	char path[PATH_MAX * 2];
	const char *op;
	uint64_t done, total;
} jobs[POOL_MAX_JOBS];

/* The operation under way on @path, or NULL (pool_lock held). */
static const char *job_busy(const char *path)
{
	for (int i = 0; i < POOL_MAX_JOBS; i++)
		if (jobs[i].used && !strcmp(jobs[i].path, path))
			return jobs[i].op;
	return NULL;
}

/* A slot for @op on @path, or NULL when all are taken (pool_lock held). */
static struct job *job_add(const char *path, const char *op, uint64_t total)
{
	for (int i = 0; i < POOL_MAX_JOBS; i++) {
		if (jobs[i].used)
			continue;
		jobs[i] = (struct job){ .used = true, .op = op, .total = total };
		snprintf(jobs[i].path, sizeof(jobs[i].path), "%s", path);
		return &jobs[i];
	}
	return NULL;
}

static void job_set(struct job *j, uint64_t done)
{
	pthread_mutex_lock(&pool_lock);
	j->done = done;
	pthread_mutex_unlock(&pool_lock);
}

static void job_end(struct job *j)
{
	if (!j)
		return;
	pthread_mutex_lock(&pool_lock);
	j->used = false;
	pthread_mutex_unlock(&pool_lock);
}

VIREO_PRINTF(4, 5)
static int fail(int status, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return status;
}

static bool name_chars_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

bool pool_name_ok(const char *name)
{
	return name_chars_ok(name, POOL_NAME_MAX);
}

bool vol_name_ok(const char *name)
{
	return name_chars_ok(name, VOL_NAME_MAX);
}

static char *json_out(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *r = s ? strdup(s) : NULL;
	json_object_put(o);
	return r;
}

/* A JSON object body (at most POOL_MAX_BODY bytes); NULL and 400 in err. */
static json_object *parse_body(const char *body, size_t len, char *err, size_t errlen)
{
	if (len > POOL_MAX_BODY) {
		fail(400, err, errlen, "the body is larger than %d bytes", POOL_MAX_BODY);
		return NULL;
	}
	if (memchr(body, '\0', len)) {
		fail(400, err, errlen, "the body contains a NUL byte");
		return NULL;
	}
	struct json_tokener *tok = json_tokener_new_ex(8);
	if (!tok) {
		fail(500, err, errlen, "out of memory");
		return NULL;
	}
	json_object *o = json_tokener_parse_ex(tok, body, (int)len);
	bool ok = o && json_tokener_get_error(tok) == json_tokener_success &&
		  json_object_is_type(o, json_type_object);
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(o);
		fail(400, err, errlen, "the body must be a JSON object");
		return NULL;
	}
	return o;
}

static const char *str_of(json_object *v)
{
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* The pool's directory (from the store) into @dir; HTTP status. */
static int pool_dir(const char *pool, char *dir, size_t len, char *err, size_t errlen)
{
	char *def = NULL;
	int r;

	if (!pool_name_ok(pool))
		return fail(404, err, errlen, "no pool named '%.64s' (not a valid pool name)", pool);
	r = store_pool_get(store, pool, &def);
	if (r == -ENOENT)
		return fail(404, err, errlen, "no pool named '%s'", pool);
	if (r)
		return fail(500, err, errlen, "the store could not read pool '%s'", pool);
	json_object *o = json_tokener_parse(def), *p;
	free(def);
	const char *path = o && json_object_object_get_ex(o, "path", &p) ? str_of(p) : NULL;
	if (!path || strlen(path) >= len) {
		json_object_put(o);
		return fail(500, err, errlen, "pool '%s' has no valid path in the store", pool);
	}
	snprintf(dir, len, "%s", path);
	json_object_put(o);
	return 200;
}

int pool_define(const char *body, size_t len, char **resp, char *err, size_t errlen)
{
	const char *name = NULL, *type = "dir", *path = NULL;
	char real[PATH_MAX];
	struct stat sb;
	int status;

	json_object *o = parse_body(body, len, err, errlen);
	if (!o)
		return 400;
	json_object_object_foreach(o, key, v) {
		if (!strcmp(key, "name")) {
			name = str_of(v);
			if (!name || !pool_name_ok(name)) {
				status = fail(400, err, errlen, "name: 1 to 63 letters, digits, '.', '_' and '-', "
					      "starting with a letter or digit");
				goto out;
			}
		} else if (!strcmp(key, "type")) {
			type = str_of(v);
			if (!type || strcmp(type, "dir")) {
				status = fail(400, err, errlen, "type: only \"dir\"");
				goto out;
			}
		} else if (!strcmp(key, "path")) {
			path = str_of(v);
			if (!path || path[0] != '/' || strlen(path) >= PATH_MAX - VOL_NAME_MAX - 2) {
				status = fail(400, err, errlen, "path: must be an absolute path");
				goto out;
			}
		} else {
			status = fail(400, err, errlen, "unknown field (name, type, path)");
			goto out;
		}
	}
	if (!name || !path) {
		status = fail(400, err, errlen, "%s: missing", name ? "path" : "name");
		goto out;
	}
	pthread_mutex_lock(&pool_lock);
	/* The directory is made if missing (not its parents). */
	if (mkdir(path, 0711) && errno != EEXIST) {
		status = fail(400, err, errlen, "path: cannot make %s: %s", path, strerror(errno));
		goto unlock;
	}
	if (!realpath(path, real) || stat(real, &sb) || !S_ISDIR(sb.st_mode)) {
		status = fail(400, err, errlen, "path: %s is not a directory", path);
		goto unlock;
	}
	json_object *d = json_object_new_object();
	json_object_object_add(d, "name", json_object_new_string(name));
	json_object_object_add(d, "type", json_object_new_string("dir"));
	json_object_object_add(d, "path", json_object_new_string(real));
	char *def = json_out(d);
	int r = def ? store_pool_add(store, name, real, def) : -ENOMEM;
	if (r == -EEXIST)
		status = fail(409, err, errlen, "name: a pool named '%s' is already defined", name);
	else if (r == -ENOTUNIQ)
		status = fail(409, err, errlen, "path: %s is already the directory of another pool", real);
	else if (r)
		status = fail(500, err, errlen, "the store could not save the pool");
	else {
		*resp = def;
		def = NULL;
		status = 201;
	}
	free(def);
unlock:
	pthread_mutex_unlock(&pool_lock);
out:
	json_object_put(o);
	return status;
}

int pool_undefine(const char *name, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	int status;

	pthread_mutex_lock(&pool_lock);
	status = pool_dir(name, dir, sizeof(dir), err, errlen);
	if (status == 200) {
		/* The files stay: only the pool is forgotten. */
		status = store_pool_delete(store, name) ? fail(500, err, errlen, "the store could "
							       "not delete the pool") : 204;
	}
	pthread_mutex_unlock(&pool_lock);
	return status;
}

static int add_pool(void *opaque, const char *name, const char *def)
{
	json_object *a = opaque, *o = json_tokener_parse(def);

	(void)name;
	if (o)
		json_object_array_add(a, o);
	return 0;
}

int pools_list(char **resp, char *err, size_t errlen)
{
	json_object *a = json_object_new_array();

	if (store_pool_list(store, add_pool, a)) {
		json_object_put(a);
		return fail(500, err, errlen, "the store could not list the pools");
	}
	*resp = json_out(a);
	return *resp ? 200 : fail(500, err, errlen, "out of memory");
}

/* A volume's information; false if it cannot be opened. */
static bool vol_info(const char *path, struct vimg_info *info)
{
	struct vimg_open_opts oo = { .readonly = true, .no_backing = true, .force_share = true };
	struct vimg *img;
	char e[256];

	if (vimg_open(path, &oo, &img, e, sizeof(e)))
		return false;
	int r = vimg_get_info(img, info);
	vimg_close(img);
	return r == 0;
}

/* Whether @backing (as an image names it, relative to @dir) is @path. */
static bool same_file(const char *dir, const char *backing, const char *path)
{
	char full[PATH_MAX * 2], a[PATH_MAX], b[PATH_MAX];

	if (!backing[0])
		return false;
	if (backing[0] == '/')
		snprintf(full, sizeof(full), "%s", backing);
	else
		snprintf(full, sizeof(full), "%s/%s", dir, backing);
	return realpath(full, a) && realpath(path, b) && !strcmp(a, b);
}

/* Call @fn for each volume of @dir (regular files with a volume name). */
static int each_vol(const char *dir, int (*fn)(void *, const char *name, const char *path),
		    void *opaque)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int r = 0, n = 0;

	if (!d)
		return -errno;
	char **names = calloc(POOL_MAX_VOLS, sizeof(*names));
	if (!names) {
		closedir(d);
		return -ENOMEM;
	}
	while ((e = readdir(d)) && n < POOL_MAX_VOLS)
		if (vol_name_ok(e->d_name) && (e->d_type == DT_REG || e->d_type == DT_UNKNOWN))
			names[n++] = strdup(e->d_name);
	closedir(d);
	/* By name. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && names[j] && names[j - 1] && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX * 2];
		struct stat sb;
		if (!names[i])
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (!r && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode))
			r = fn(opaque, names[i], path);
		free(names[i]);
	}
	free(names);
	return r;
}

static int list_one(void *opaque, const char *name, const char *path)
{
	json_object *a = opaque, *o = json_object_new_object();
	struct vimg_info info;

	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "path", json_object_new_string(path));
	if (vol_info(path, &info)) {
		json_object_object_add(o, "format", json_object_new_string(
			info.format == VIMG_FMT_QCOW2 ? "qcow2" : "raw"));
		json_object_object_add(o, "capacity", json_object_new_int64((int64_t)info.size));
		json_object_object_add(o, "allocation", json_object_new_int64((int64_t)info.actual_size));
		json_object_object_add(o, "backing", info.backing[0] ?
				       json_object_new_string(info.backing) : NULL);
	} else {
		json_object_object_add(o, "format", NULL);
	}
	json_object_array_add(a, o);
	return 0;
}

int pool_volumes(const char *pool, char **resp, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	int status;

	pthread_mutex_lock(&pool_lock);
	status = pool_dir(pool, dir, sizeof(dir), err, errlen);
	if (status == 200) {
		json_object *a = json_object_new_array();
		int r = each_vol(dir, list_one, a);
		if (r) {
			json_object_put(a);
			status = fail(500, err, errlen, "cannot read %s: %s", dir, strerror(-r));
		} else {
			*resp = json_out(a);
		}
	}
	pthread_mutex_unlock(&pool_lock);
	return status;
}

int pool_vol_create(const char *pool, const char *body, size_t len, char **resp,
		    char *err, size_t errlen)
{
	const char *name = NULL, *format = "qcow2", *backing = NULL;
	char dir[PATH_MAX], path[PATH_MAX * 2], bpath[PATH_MAX * 2], e[256];
	uint64_t size = 0;
	struct stat sb;
	int status;

	json_object *o = parse_body(body, len, err, errlen);
	if (!o)
		return 400;
	json_object_object_foreach(o, key, v) {
		if (!strcmp(key, "name")) {
			name = str_of(v);
			if (!name || !vol_name_ok(name)) {
				status = fail(400, err, errlen, "name: 1 to 127 letters, digits, '.', '_' and "
					      "'-', starting with a letter or digit");
				goto out;
			}
		} else if (!strcmp(key, "format")) {
			format = str_of(v);
			if (!format || (strcmp(format, "qcow2") && strcmp(format, "raw"))) {
				status = fail(400, err, errlen, "format: must be \"raw\" or \"qcow2\"");
				goto out;
			}
		} else if (!strcmp(key, "capacity")) {
			const char *s = str_of(v);
			int r;
			if (json_object_is_type(v, json_type_int)) {
				errno = 0;
				int64_t x = json_object_get_int64(v);
				r = errno || x < 0 ? -ERANGE : 0;
				size = (uint64_t)x;
			} else {
				r = s && strlen(s) <= 32 ? vsize_parse(s, 1, &size) : -EINVAL;
			}
			if (r || size < VOL_MIN_SIZE || size > VOL_MAX_SIZE || size % 512) {
				status = fail(400, err, errlen, "capacity: a size from 1M to 64T, a multiple "
					      "of 512 bytes (e.g. \"10G\")");
				goto out;
			}
		} else if (!strcmp(key, "backing")) {
			backing = str_of(v);
			if (!backing || !vol_name_ok(backing)) {
				status = fail(400, err, errlen, "backing: the name of a volume of the pool");
				goto out;
			}
		} else {
			status = fail(400, err, errlen, "unknown field (name, format, capacity, backing)");
			goto out;
		}
	}
	if (!name) {
		status = fail(400, err, errlen, "name: missing");
		goto out;
	}
	if (!size && !backing) {
		status = fail(400, err, errlen, "capacity: missing (needed without a backing volume)");
		goto out;
	}
	if (backing && strcmp(format, "qcow2")) {
		status = fail(400, err, errlen, "backing: only a qcow2 volume has a backing file");
		goto out;
	}
	pthread_mutex_lock(&pool_lock);
	status = pool_dir(pool, dir, sizeof(dir), err, errlen);
	if (status != 200)
		goto unlock;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (lstat(path, &sb) == 0) {
		status = fail(409, err, errlen, "name: pool '%s' already has a volume '%s'", pool, name);
		goto unlock;
	}
	struct vimg_create_opts co = {
		.format = strcmp(format, "qcow2") ? VIMG_FMT_RAW : VIMG_FMT_QCOW2,
		.size = size,
	};
	struct vimg_info binfo;
	if (backing) {
		snprintf(bpath, sizeof(bpath), "%s/%s", dir, backing);
		if (lstat(bpath, &sb) || !S_ISREG(sb.st_mode) || !vol_info(bpath, &binfo)) {
			status = fail(400, err, errlen, "backing: pool '%s' has no volume '%s'", pool, backing);
			goto unlock;
		}
		/* Named relative to the pool's directory, as qemu-img would. */
		co.backing = backing;
		co.backing_fmt = binfo.format == VIMG_FMT_QCOW2 ? "qcow2" : "raw";
	}
	if (vimg_create(path, &co, e, sizeof(e))) {
		unlink(path);
		status = fail(500, err, errlen, "cannot create %s: %s", path, e);
		goto unlock;
	}
	json_object *r = json_object_new_object();
	json_object_object_add(r, "name", json_object_new_string(name));
	json_object_object_add(r, "path", json_object_new_string(path));
	*resp = json_out(r);
	status = 201;
unlock:
	pthread_mutex_unlock(&pool_lock);
out:
	json_object_put(o);
	return status;
}

struct backing_of {
	const char *dir, *path, *self;
	char user[VOL_NAME_MAX + 1];
};

static int find_backing_user(void *opaque, const char *name, const char *path)
{
	struct backing_of *b = opaque;
	struct vimg_info info;

	if (!strcmp(name, b->self) || !vol_info(path, &info))
		return 0;
	if (same_file(b->dir, info.backing, b->path)) {
		snprintf(b->user, sizeof(b->user), "%s", name);
		return 1;
	}
	return 0;
}

int pool_vol_delete(const char *pool, const char *vol, char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX * 2], who[128];
	struct stat sb;
	int status;

	if (!vol_name_ok(vol))
		return fail(404, err, errlen, "no volume named '%.64s' (not a valid volume name)", vol);
	pthread_mutex_lock(&pool_lock);
	status = pool_dir(pool, dir, sizeof(dir), err, errlen);
	if (status != 200)
		goto unlock;
	snprintf(path, sizeof(path), "%s/%s", dir, vol);
	if (lstat(path, &sb) || !S_ISREG(sb.st_mode)) {
		status = fail(404, err, errlen, "pool '%s' has no volume '%s'", pool, vol);
		goto unlock;
	}
	if (job_busy(path)) {
		status = fail(409, err, errlen, "volume '%s' is busy (%s under way)", vol, job_busy(path));
		goto unlock;
	}
	bool running;
	if (in_use && in_use(path, who, sizeof(who), &running)) {
		status = fail(409, err, errlen, "volume '%s' is a disk of VM '%s'", vol, who);
		goto unlock;
	}
	struct backing_of b = { .dir = dir, .path = path, .self = vol };
	if (each_vol(dir, find_backing_user, &b) == 1) {
		status = fail(409, err, errlen, "volume '%s' is the backing file of volume '%s'", vol, b.user);
		goto unlock;
	}
	if (unlink(path)) {
		status = fail(500, err, errlen, "cannot delete %s: %s", path, strerror(errno));
		goto unlock;
	}
	status = 204;
unlock:
	pthread_mutex_unlock(&pool_lock);
	return status;
}

/* ---- the long operations ---------------------------------------------------- */

/* @vol's path in @pool (pool_lock held): 200, or 404 with @err. */
static int vol_path(const char *pool, const char *vol, char *dir, size_t dirlen, char *path,
		    size_t len, char *err, size_t errlen)
{
	struct stat sb;

	if (!vol_name_ok(vol))
		return fail(404, err, errlen, "no volume named '%.64s' (not a valid volume name)", vol);
	int status = pool_dir(pool, dir, dirlen, err, errlen);
	if (status != 200)
		return status;
	if ((size_t)snprintf(path, len, "%s/%s", dir, vol) >= len)
		return fail(400, err, errlen, "the volume's path is too long");
	if (lstat(path, &sb) || !S_ISREG(sb.st_mode))
		return fail(404, err, errlen, "pool '%s' has no volume '%s'", pool, vol);
	return 200;
}

/* 409 when @path is under another operation or (with @running_only, when
 * its VM runs) a VM's disk; else 0 (pool_lock held). */
static int vol_free(const char *path, const char *vol, bool running_only, char *err, size_t errlen)
{
	char who[128];
	bool running = false;
	const char *op = job_busy(path);

	if (op)
		return fail(409, err, errlen, "volume '%s' is busy (%s under way)", vol, op);
	if (in_use && in_use(path, who, sizeof(who), &running) && (running || !running_only))
		return fail(409, err, errlen, "volume '%s' is a disk of %s VM '%s'", vol,
			    running ? "running" : "defined", who);
	return 0;
}

/* 409 when another volume of @dir has @path as its backing file (its data
 * are theirs too: it is not to be @what); else 0. */
static int backing_free(const char *dir, const char *path, const char *vol, const char *what,
			char *err, size_t errlen)
{
	struct backing_of b = { .dir = dir, .path = path, .self = vol };

	if (each_vol(dir, find_backing_user, &b) == 1)
		return fail(409, err, errlen, "volume '%s' is the backing file of volume '%s': it "
			    "cannot be %s", vol, b.user, what);
	return 0;
}

/* Open a volume of @dir: backing files only inside the pool's directory,
 * raw unless it has the qcow2 magic (vol_info probed it the same way). */
static int vol_open(const char *path, bool readonly, struct vimg **img, char *e, size_t elen)
{
	struct vimg_open_opts oo = { .readonly = readonly, .confine_backing = true,
				     .require_backing_fmt = false };

	return vimg_open(path, &oo, img, e, elen);
}

static bool all_zero(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* Copy the guest-visible data of @in into @out (same size): only extents
 * that hold data, and of those only chunks that are not all zeros. */
static int copy_data(struct vimg *in, struct vimg *out, struct job *j, char *e, size_t elen)
{
	uint64_t size = vimg_size(in), off = 0;
	unsigned char *buf = malloc(XFER_CHUNK);
	int r = 0;

	if (!buf) {
		snprintf(e, elen, "out of memory");
		return -ENOMEM;
	}
	while (off < size) {
		struct vimg_extent ext;
		uint64_t len = VIREO_MIN((uint64_t)XFER_CHUNK, size - off);
		r = vimg_block_status(in, off, len, true, &ext);
		if (r) {
			snprintf(e, elen, "block status at %llu: %s", (unsigned long long)off, strerror(-r));
			break;
		}
		uint64_t n = ext.len ? VIREO_MIN(ext.len, len) : len;
		bool data = !(ext.flags & VIMG_BS_ZERO) && ext.depth >= 0;
		if (data) {
			if ((r = vimg_pread(in, buf, (size_t)n, off))) {
				snprintf(e, elen, "read at %llu: %s", (unsigned long long)off, strerror(-r));
				break;
			}
			if (!all_zero(buf, (size_t)n) && (r = vimg_pwrite(out, buf, (size_t)n, off))) {
				snprintf(e, elen, "write at %llu: %s", (unsigned long long)off, strerror(-r));
				break;
			}
		}
		off += n;
		job_set(j, off);
	}
	free(buf);
	return r;
}

int pool_vol_clone(const char *pool, const char *src, const char *name, char **resp,
		   char *err, size_t errlen)
{
	char dir[PATH_MAX], spath[PATH_MAX * 2], dpath[PATH_MAX * 2], e[256];
	struct vimg *in = NULL, *out = NULL;
	struct job *js = NULL, *jd = NULL;
	struct stat sb;
	int status, r;

	if (!vol_name_ok(name))
		return fail(400, err, errlen, "name: 1 to 127 letters, digits, '.', '_' and '-', "
			    "starting with a letter or digit");
	pthread_mutex_lock(&pool_lock);
	status = vol_path(pool, src, dir, sizeof(dir), spath, sizeof(spath), err, errlen);
	if (status != 200)
		goto unlock;
	snprintf(dpath, sizeof(dpath), "%s/%s", dir, name);
	if (lstat(dpath, &sb) == 0 || job_busy(dpath)) {
		status = fail(409, err, errlen, "name: pool '%s' already has a volume '%s'", pool, name);
		goto unlock;
	}
	if ((status = vol_free(spath, src, true, err, errlen)))
		goto unlock;
	if ((r = vol_open(spath, true, &in, e, sizeof(e)))) {
		status = fail(r == -EBUSY ? 409 : 500, err, errlen, "cannot open volume '%s': %s", src, e);
		goto unlock;
	}
	struct vimg_create_opts co = { .format = vimg_get_format(in), .size = vimg_size(in) };
	if ((r = vimg_create(dpath, &co, e, sizeof(e)))) {
		unlink(dpath);
		status = fail(500, err, errlen, "cannot create %s: %s", dpath, e);
		goto unlock;
	}
	js = job_add(spath, "clone", co.size);
	jd = js ? job_add(dpath, "clone", co.size) : NULL;
	if (!jd) {
		unlink(dpath);
		status = fail(503, err, errlen, "too many volume operations under way");
		goto unlock;
	}
	pthread_mutex_unlock(&pool_lock);
	/* The copy runs unlocked: both volumes are busy meanwhile. */
	struct vimg_open_opts oo = { .format = vimg_format_name(co.format), .forbid_backing = true };
	r = vimg_open(dpath, &oo, &out, e, sizeof(e));
	if (!r)
		r = copy_data(in, out, jd, e, sizeof(e));
	if (out) {
		int rc = vimg_close(out);
		if (!r && rc) {
			r = rc;
			snprintf(e, sizeof(e), "%s", strerror(-rc));
		}
	}
	vimg_close(in);
	in = NULL;
	pthread_mutex_lock(&pool_lock);
	js->used = jd->used = false;
	js = jd = NULL;
	if (r) {
		unlink(dpath);
		status = fail(500, err, errlen, "cannot copy '%s' into '%s': %s", src, name, e);
		goto unlock;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "path", json_object_new_string(dpath));
	*resp = json_out(o);
	status = 201;
unlock:
	if (js)
		js->used = false;
	if (jd)
		jd->used = false;
	pthread_mutex_unlock(&pool_lock);
	if (in)
		vimg_close(in);
	return status;
}

int pool_vol_resize(const char *pool, const char *vol, uint64_t size, bool shrink,
		    char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX * 2], e[256];
	struct vimg *img;
	int status, r;

	if (size < VOL_MIN_SIZE || size > VOL_MAX_SIZE || size % 512)
		return fail(400, err, errlen, "capacity: a size from 1M to 64T, a multiple of 512 bytes");
	pthread_mutex_lock(&pool_lock);
	status = vol_path(pool, vol, dir, sizeof(dir), path, sizeof(path), err, errlen);
	if (status != 200)
		goto unlock;
	if ((status = vol_free(path, vol, true, err, errlen)))
		goto unlock;
	if ((r = vol_open(path, false, &img, e, sizeof(e)))) {
		status = fail(r == -EBUSY ? 409 : 500, err, errlen, "cannot open volume '%s': %s", vol, e);
		goto unlock;
	}
	uint64_t old = vimg_size(img);
	if (size < old && !shrink) {
		vimg_close(img);
		status = fail(409, err, errlen, "volume '%s' has %llu bytes: shrinking it to %llu loses "
			      "data (shrink must be asked for)", vol, (unsigned long long)old,
			      (unsigned long long)size);
		goto unlock;
	}
	if (size < old && (status = backing_free(dir, path, vol, "shrunk", err, errlen))) {
		vimg_close(img);
		goto unlock;
	}
	r = size == old ? 0 : vimg_resize(img, size);
	const char *msg = r ? vimg_errmsg(img) : NULL;
	if (r)
		status = fail(r == -ENOTSUP || r == -EBUSY ? 409 : 500, err, errlen,
			      "cannot resize volume '%s' to %llu bytes: %s", vol,
			      (unsigned long long)size, msg && msg[0] ? msg : strerror(-r));
	int rc = vimg_close(img);
	if (!r && rc)
		status = fail(500, err, errlen, "volume '%s': %s", vol, strerror(-rc));
	else if (!r)
		status = 204;
unlock:
	pthread_mutex_unlock(&pool_lock);
	return status;
}

int pool_vol_progress(const char *pool, const char *vol, char **resp, char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	int status;

	pthread_mutex_lock(&pool_lock);
	status = vol_path(pool, vol, dir, sizeof(dir), path, sizeof(path), err, errlen);
	struct job *j = NULL;
	for (int i = 0; status == 200 && i < POOL_MAX_JOBS && !j; i++)
		if (jobs[i].used && !strcmp(jobs[i].path, path))
			j = &jobs[i];
	if (status == 200 && !j)
		status = fail(404, err, errlen, "volume '%s' has no operation under way", vol);
	if (status == 200) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "operation", json_object_new_string(j->op));
		json_object_object_add(o, "done", json_object_new_int64((int64_t)j->done));
		json_object_object_add(o, "total", json_object_new_int64((int64_t)j->total));
		*resp = json_out(o);
	}
	pthread_mutex_unlock(&pool_lock);
	return status;
}

struct pool_xfer {
	struct vimg *img;
	struct job *job;
	bool upload;
	uint64_t len, off;          /* upload: announced, written so far */
	size_t fill;                /* upload: bytes in buf */
	unsigned char *buf;
	int failed;                 /* upload: status of an earlier failure */
	char ferr[256];
};

/* Begin an upload or download (pool_lock taken here). */
static int xfer_begin(const char *pool, const char *vol, bool upload, uint64_t len,
		      struct pool_xfer **xp, uint64_t *size, char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX * 2], e[256];
	struct pool_xfer *x = calloc(1, sizeof(*x));
	int status, r;

	if (!x)
		return fail(500, err, errlen, "out of memory");
	x->upload = upload;
	x->len = len;
	pthread_mutex_lock(&pool_lock);
	status = vol_path(pool, vol, dir, sizeof(dir), path, sizeof(path), err, errlen);
	if (status != 200)
		goto out;
	if ((status = vol_free(path, vol, true, err, errlen)))
		goto out;
	if (upload && (status = backing_free(dir, path, vol, "written", err, errlen)))
		goto out;
	if ((r = vol_open(path, !upload, &x->img, e, sizeof(e)))) {
		status = fail(r == -EBUSY ? 409 : 500, err, errlen, "cannot open volume '%s': %s", vol, e);
		goto out;
	}
	uint64_t cap = vimg_size(x->img);
	if (upload && len > cap) {
		status = fail(400, err, errlen, "the data (%llu bytes) is larger than volume '%s' "
			      "(%llu bytes): resize it first", (unsigned long long)len, vol,
			      (unsigned long long)cap);
		goto out;
	}
	if (upload && !(x->buf = malloc(XFER_CHUNK))) {
		status = fail(500, err, errlen, "out of memory");
		goto out;
	}
	x->job = job_add(path, upload ? "upload" : "download", upload ? len : cap);
	if (!x->job) {
		status = fail(503, err, errlen, "too many volume operations under way");
		goto out;
	}
	if (size)
		*size = cap;
	*xp = x;
	pthread_mutex_unlock(&pool_lock);
	return 200;
out:
	pthread_mutex_unlock(&pool_lock);
	if (x->img)
		vimg_close(x->img);
	free(x->buf);
	free(x);
	return status;
}

int pool_upload_begin(const char *pool, const char *vol, uint64_t len, struct pool_xfer **x,
		      char *err, size_t errlen)
{
	return xfer_begin(pool, vol, true, len, x, NULL, err, errlen);
}

int pool_download_begin(const char *pool, const char *vol, struct pool_xfer **x, uint64_t *size,
			char *err, size_t errlen)
{
	return xfer_begin(pool, vol, false, 0, x, size, err, errlen);
}

/* Write the buffered bytes (all-zero chunks as zeroes: sparse). */
static int xfer_flush(struct pool_xfer *x)
{
	if (!x->fill)
		return 0;
	int r = all_zero(x->buf, x->fill) ? vimg_pwrite_zeroes(x->img, x->off, x->fill) :
		vimg_pwrite(x->img, x->buf, x->fill, x->off);
	if (r) {
		snprintf(x->ferr, sizeof(x->ferr), "write at %llu: %s", (unsigned long long)x->off,
			 strerror(-r));
		return r;
	}
	x->off += x->fill;
	x->fill = 0;
	job_set(x->job, x->off);
	return 0;
}

int pool_upload_write(struct pool_xfer *x, const void *buf, size_t n, char *err, size_t errlen)
{
	const unsigned char *p = buf;

	if (x->failed)
		return fail(x->failed, err, errlen, "%s", x->ferr);
	if (n > x->len - x->off - x->fill) {
		x->failed = 400;
		snprintf(x->ferr, sizeof(x->ferr), "more data than the %llu bytes announced",
			 (unsigned long long)x->len);
		return fail(400, err, errlen, "%s", x->ferr);
	}
	while (n) {
		size_t k = VIREO_MIN(n, (size_t)XFER_CHUNK - x->fill);
		memcpy(x->buf + x->fill, p, k);
		x->fill += k;
		p += k;
		n -= k;
		if (x->fill == XFER_CHUNK && xfer_flush(x)) {
			x->failed = 500;
			return fail(500, err, errlen, "%s", x->ferr);
		}
	}
	return 0;
}

int pool_upload_end(struct pool_xfer *x, char *err, size_t errlen)
{
	int status = 204;

	if (x->failed)
		status = fail(x->failed, err, errlen, "%s", x->ferr);
	else if (xfer_flush(x))
		status = fail(500, err, errlen, "%s", x->ferr);
	else if (x->off != x->len)
		status = fail(400, err, errlen, "%llu bytes came of the %llu announced",
			      (unsigned long long)x->off, (unsigned long long)x->len);
	int rc = vimg_close(x->img);
	x->img = NULL;
	if (status == 204 && rc)
		status = fail(500, err, errlen, "cannot flush the volume: %s", strerror(-rc));
	pool_xfer_free(x);
	return status;
}

ssize_t pool_download_read(struct pool_xfer *x, uint64_t off, void *buf, size_t n)
{
	uint64_t size = vimg_size(x->img);

	if (off >= size)
		return 0;
	n = (size_t)VIREO_MIN((uint64_t)n, size - off);
	if (vimg_pread(x->img, buf, n, off))
		return -1;
	job_set(x->job, off + n);
	return (ssize_t)n;
}

void pool_xfer_free(struct pool_xfer *x)
{
	if (!x)
		return;
	if (x->img)
		vimg_close(x->img);
	job_end(x->job);
	free(x->buf);
	free(x);
}
