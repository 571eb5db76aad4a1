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
#define VOL_MIN_SIZE    (1ULL << 20)
#define VOL_MAX_SIZE    (64ULL << 40)    /* 64 TiB */
#define POOL_MAX_VOLS   4096

static struct store *store;
static pool_in_use_fn in_use;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

void pools_init(struct store *st, pool_in_use_fn fn)
{
	store = st;
	in_use = fn;
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
	if (in_use && in_use(path, who, sizeof(who))) {
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
