/* Storage pools (daemon/pool.c) on a temporary store and directory:
 * define (and refusals), volumes made with lib/img (qcow2, raw, a linked
 * clone), their listing, names that could leave the directory, and
 * deletes refused for a volume in use or backing another. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <vireo/img.h>

#include "pool.h"
#include "store.h"

static char dir[64];
static struct store *st;
static char used_path[512];
static bool used_running;

static bool fake_in_use(const char *path, char *who, size_t wholen, bool *running)
{
	if (strcmp(path, used_path))
		return false;
	snprintf(who, wholen, "vm1");
	*running = used_running;
	return true;
}

static int setup(void **state)
{
	char err[256];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vireo-pool-XXXXXX");
	if (!mkdtemp(dir) || store_open(dir, STORE_SYNC_NORMAL, &st, err, sizeof(err)))
		return -1;
	pools_init(st, fake_in_use);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int call_define(const char *body, char **resp, char *err)
{
	*resp = NULL;
	return pool_define(body, strlen(body), resp, err, 256);
}

static int vol_create(const char *pool, const char *body, char *err)
{
	char *resp = NULL;
	int s = pool_vol_create(pool, body, strlen(body), &resp, err, 256);

	free(resp);
	return s;
}

static void test_pools(void **state)
{
	char err[256], body[512], *resp = NULL;

	(void)state;
	snprintf(body, sizeof(body), "{\"name\":\"p1\",\"type\":\"dir\",\"path\":\"%s/images\"}", dir);
	assert_int_equal(call_define(body, &resp, err), 201);
	assert_non_null(strstr(resp, "\"path\":\"/tmp/vireo-pool-"));
	free(resp);
	/* The directory was made. */
	char p[256];
	struct stat sb;
	snprintf(p, sizeof(p), "%s/images", dir);
	assert_int_equal(stat(p, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(call_define(body, &resp, err), 409);
	assert_string_equal(err, "name: a pool named 'p1' is already defined");
	snprintf(body, sizeof(body), "{\"name\":\"p2\",\"path\":\"%s/images/\"}", dir);
	assert_int_equal(call_define(body, &resp, err), 409);
	assert_non_null(strstr(err, "is already the directory of another pool"));
	assert_int_equal(call_define("{\"name\":\"p3\",\"path\":\"rel\"}", &resp, err), 400);
	assert_string_equal(err, "path: must be an absolute path");
	assert_int_equal(call_define("{\"name\":\"p3\",\"type\":\"lvm\",\"path\":\"/x\"}", &resp, err), 400);
	assert_string_equal(err, "type: only \"dir\"");
	assert_int_equal(call_define("{\"name\":\"../p\",\"path\":\"/x\"}", &resp, err), 400);
	assert_int_equal(call_define("{\"name\":\"p3\"}", &resp, err), 400);
	assert_string_equal(err, "path: missing");
	assert_int_equal(call_define("[]", &resp, err), 400);
	assert_int_equal(pools_list(&resp, err, sizeof(err)), 200);
	assert_non_null(strstr(resp, "\"name\":\"p1\""));
	free(resp);
	assert_int_equal(pool_undefine("p1", err, sizeof(err)), 204);
	assert_int_equal(pool_undefine("p1", err, sizeof(err)), 404);
}

static void test_volumes(void **state)
{
	char err[256], body[512], *resp = NULL, p[256];
	struct vimg_open_opts oo = { .readonly = true, .no_backing = true };
	struct vimg_info info;
	struct vimg *img;

	(void)state;
	snprintf(body, sizeof(body), "{\"name\":\"p1\",\"path\":\"%s/images\"}", dir);
	assert_int_equal(call_define(body, &resp, err), 201);
	free(resp);
	assert_int_equal(vol_create("p1", "{\"name\":\"base.qcow2\",\"capacity\":\"16M\"}", err), 201);
	assert_int_equal(vol_create("p1", "{\"name\":\"data.raw\",\"capacity\":2097152,\"format\":\"raw\"}", err), 201);
	assert_int_equal(vol_create("p1", "{\"name\":\"clone.qcow2\",\"backing\":\"base.qcow2\"}", err), 201);
	/* The clone is a qcow2 over base.qcow2, as lib/img reads it. */
	snprintf(p, sizeof(p), "%s/images/clone.qcow2", dir);
	assert_int_equal(vimg_open(p, &oo, &img, err, sizeof(err)), 0);
	assert_int_equal(vimg_get_info(img, &info), 0);
	vimg_close(img);
	assert_int_equal(info.format, VIMG_FMT_QCOW2);
	assert_int_equal(info.size, 16 << 20);
	assert_string_equal(info.backing, "base.qcow2");
	assert_string_equal(info.backing_fmt, "qcow2");
	/* Refusals. */
	assert_int_equal(vol_create("p1", "{\"name\":\"base.qcow2\",\"capacity\":\"1M\"}", err), 409);
	assert_int_equal(vol_create("p1", "{\"name\":\"../escape\",\"capacity\":\"1M\"}", err), 400);
	assert_int_equal(vol_create("p1", "{\"name\":\".hidden\",\"capacity\":\"1M\"}", err), 400);
	assert_int_equal(vol_create("p1", "{\"name\":\"x\",\"capacity\":\"100\"}", err), 400);
	assert_int_equal(vol_create("p1", "{\"name\":\"x\",\"capacity\":\"1000T\"}", err), 400);
	assert_int_equal(vol_create("p1", "{\"name\":\"x\",\"capacity\":-1}", err), 400);
	assert_int_equal(vol_create("p1", "{\"name\":\"x\"}", err), 400);
	assert_int_equal(vol_create("p1", "{\"name\":\"x\",\"capacity\":\"1M\",\"format\":\"vmdk\"}", err), 400);
	assert_int_equal(vol_create("p1", "{\"name\":\"x\",\"backing\":\"nope\"}", err), 400);
	assert_int_equal(vol_create("p1", "{\"name\":\"x\",\"backing\":\"base.qcow2\",\"format\":\"raw\"}", err), 400);
	assert_int_equal(vol_create("p1", "{\"name\":\"x\",\"capacity\":\"1M\",\"size\":1}", err), 400);
	assert_int_equal(vol_create("nopool", "{\"name\":\"x\",\"capacity\":\"1M\"}", err), 404);
	snprintf(p, sizeof(p), "%s/images/x", dir);
	assert_int_equal(access(p, F_OK), -1);
	/* The listing, by name. */
	assert_int_equal(pool_volumes("p1", &resp, err, sizeof(err)), 200);
	char *b = strstr(resp, "\"name\":\"base.qcow2\""), *c = strstr(resp, "\"name\":\"clone.qcow2\"");
	char *d = strstr(resp, "\"name\":\"data.raw\"");
	assert_true(b && c && d && b < c && c < d);
	assert_non_null(strstr(d, "\"format\":\"raw\",\"capacity\":2097152"));
	free(resp);
	/* Deletes: not a volume in use, nor a backing file. */
	snprintf(used_path, sizeof(used_path), "%s/images/data.raw", dir);
	assert_int_equal(pool_vol_delete("p1", "data.raw", err, sizeof(err)), 409);
	assert_string_equal(err, "volume 'data.raw' is a disk of VM 'vm1'");
	used_path[0] = '\0';
	assert_int_equal(pool_vol_delete("p1", "data.raw", err, sizeof(err)), 204);
	assert_int_equal(pool_vol_delete("p1", "base.qcow2", err, sizeof(err)), 409);
	assert_string_equal(err, "volume 'base.qcow2' is the backing file of volume 'clone.qcow2'");
	assert_int_equal(pool_vol_delete("p1", "clone.qcow2", err, sizeof(err)), 204);
	assert_int_equal(pool_vol_delete("p1", "base.qcow2", err, sizeof(err)), 204);
	assert_int_equal(pool_vol_delete("p1", "base.qcow2", err, sizeof(err)), 404);
	assert_int_equal(pool_vol_delete("p1", "..", err, sizeof(err)), 404);
	assert_int_equal(pool_volumes("p1", &resp, err, sizeof(err)), 200);
	assert_string_equal(resp, "[]");
	free(resp);
}

/* Write @n bytes of @data into pool p1's @vol by the upload calls, in
 * pieces of @piece bytes. */
static int upload(const char *vol, const unsigned char *data, size_t n, uint64_t announce,
		  size_t piece, char *err)
{
	struct pool_xfer *x = NULL;
	int s = pool_upload_begin("p1", vol, announce, &x, err, 256);

	if (s != 200)
		return s;
	for (size_t off = 0; off < n; off += piece) {
		size_t k = n - off < piece ? n - off : piece;
		if ((s = pool_upload_write(x, data + off, k, err, 256))) {
			pool_xfer_free(x);
			return s;
		}
	}
	return pool_upload_end(x, err, 256);
}

/* The whole guest-visible content of pool p1's @vol by the download calls. */
static unsigned char *download(const char *vol, uint64_t *size)
{
	struct pool_xfer *x = NULL;
	char err[256];

	if (pool_download_begin("p1", vol, &x, size, err, sizeof(err)) != 200)
		return NULL;
	unsigned char *buf = malloc(*size);
	uint64_t off = 0;
	ssize_t n;
	while (buf && (n = pool_download_read(x, off, buf + off, 100000)) > 0)
		off += (uint64_t)n;
	pool_xfer_free(x);
	if (off != *size) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void test_long_ops(void **state)
{
	char err[256], body[512], *resp = NULL, p[256];
	size_t n = (3 << 20) + 12345;
	unsigned char *data = malloc(n), *back;
	uint64_t size;

	(void)state;
	snprintf(body, sizeof(body), "{\"name\":\"p1\",\"path\":\"%s/images\"}", dir);
	assert_int_equal(call_define(body, &resp, err), 201);
	free(resp);
	assert_int_equal(vol_create("p1", "{\"name\":\"q\",\"capacity\":\"8M\"}", err), 201);
	assert_int_equal(vol_create("p1", "{\"name\":\"r\",\"capacity\":\"4M\",\"format\":\"raw\"}", err), 201);
	/* Random bytes with a hole of zeros. */
	srand(7);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)rand();
	memset(data + (1 << 20), 0, 1 << 20);
	assert_int_equal(upload("q", data, n, n, 65536 + 3, err), 204);
	back = download("q", &size);
	assert_non_null(back);
	assert_int_equal(size, 8 << 20);
	assert_memory_equal(back, data, n);
	for (size_t i = n; i < size; i++)
		assert_int_equal(back[i], 0);
	free(back);
	/* Too large, short, or more than announced. */
	assert_int_equal(upload("r", data, n, (4 << 20) + 1, 4096, err), 400);
	assert_non_null(strstr(err, "is larger than volume 'r'"));
	assert_int_equal(upload("r", data, 1000, 2000, 4096, err), 400);
	assert_string_equal(err, "1000 bytes came of the 2000 announced");
	assert_int_equal(upload("r", data, 3000, 2000, 1500, err), 400);
	assert_int_equal(upload("nope", data, 10, 10, 10, err), 404);
	assert_int_equal(upload("../q", data, 10, 10, 10, err), 404);
	/* A clone: same format, same bytes, only the data clusters. */
	assert_int_equal(pool_vol_clone("p1", "q", "q2", &resp, err, sizeof(err)), 201);
	free(resp);
	back = download("q2", &size);
	assert_non_null(back);
	assert_int_equal(size, 8 << 20);
	assert_memory_equal(back, data, n);
	free(back);
	assert_int_equal(pool_volumes("p1", &resp, err, sizeof(err)), 200);
	char *q2 = strstr(resp, "\"name\":\"q2\"");
	assert_non_null(q2);
	assert_non_null(strstr(q2, "\"format\":\"qcow2\""));
	free(resp);
	struct vimg_open_opts oo = { .readonly = true };
	struct vimg_info info;
	struct vimg *img;
	snprintf(p, sizeof(p), "%s/images/q2", dir);
	assert_int_equal(vimg_open(p, &oo, &img, err, sizeof(err)), 0);
	assert_int_equal(vimg_get_info(img, &info), 0);
	vimg_close(img);
	assert_true(info.actual_size < (4 << 20));   /* not the whole 8 MiB */
	assert_int_equal(pool_vol_clone("p1", "q", "q2", &resp, err, sizeof(err)), 409);
	assert_int_equal(pool_vol_clone("p1", "nope", "q3", &resp, err, sizeof(err)), 404);
	assert_int_equal(pool_vol_clone("p1", "q", "../q3", &resp, err, sizeof(err)), 400);
	assert_int_equal(pool_vol_clone("p1", "q", ".q3", &resp, err, sizeof(err)), 400);
	/* Resizes. */
	assert_int_equal(pool_vol_resize("p1", "q2", 16 << 20, false, err, sizeof(err)), 204);
	assert_int_equal(pool_vol_resize("p1", "q2", 2 << 20, false, err, sizeof(err)), 409);
	assert_non_null(strstr(err, "shrink must be asked for"));
	assert_int_equal(pool_vol_resize("p1", "r", 2 << 20, false, err, sizeof(err)), 409);
	assert_int_equal(pool_vol_resize("p1", "r", 2 << 20, true, err, sizeof(err)), 204);
	assert_int_equal(pool_vol_resize("p1", "r", 1000, true, err, sizeof(err)), 400);
	assert_int_equal(pool_vol_resize("p1", "r", (2 << 20) + 1, true, err, sizeof(err)), 400);
	assert_int_equal(pool_vol_resize("p1", "nope", 2 << 20, false, err, sizeof(err)), 404);
	back = download("q2", &size);
	assert_int_equal(size, 16 << 20);
	free(back);
	back = download("r", &size);
	assert_int_equal(size, 2 << 20);
	free(back);
	/* A running VM's disk: no resize, upload or download; a stopped
	 * one's: yes. */
	snprintf(used_path, sizeof(used_path), "%s/images/r", dir);
	used_running = true;
	assert_int_equal(pool_vol_resize("p1", "r", 3 << 20, false, err, sizeof(err)), 409);
	assert_string_equal(err, "volume 'r' is a disk of running VM 'vm1'");
	assert_int_equal(upload("r", data, 10, 10, 10, err), 409);
	assert_null(download("r", &size));
	used_running = false;
	assert_int_equal(pool_vol_resize("p1", "r", 3 << 20, false, err, sizeof(err)), 204);
	used_path[0] = '\0';
	/* Busy while a transfer runs; its progress shows. */
	struct pool_xfer *x = NULL;
	assert_int_equal(pool_upload_begin("p1", "r", 2 << 20, &x, err, sizeof(err)), 200);
	assert_int_equal(pool_upload_write(x, data, 1 << 20, err, sizeof(err)), 0);
	assert_int_equal(pool_vol_progress("p1", "r", &resp, err, sizeof(err)), 200);
	assert_string_equal(resp, "{\"operation\":\"upload\",\"done\":1048576,\"total\":2097152}");
	free(resp);
	assert_int_equal(pool_vol_delete("p1", "r", err, sizeof(err)), 409);
	assert_string_equal(err, "volume 'r' is busy (upload under way)");
	assert_int_equal(pool_vol_clone("p1", "r", "r2", &resp, err, sizeof(err)), 409);
	pool_xfer_free(x);
	assert_int_equal(pool_vol_progress("p1", "r", &resp, err, sizeof(err)), 404);
	assert_int_equal(pool_vol_delete("p1", "r", err, sizeof(err)), 204);
	/* A backing file is not written nor shrunk under its overlays. */
	assert_int_equal(vol_create("p1", "{\"name\":\"top\",\"backing\":\"q\"}", err), 201);
	assert_int_equal(upload("q", data, 10, 10, 10, err), 409);
	assert_string_equal(err, "volume 'q' is the backing file of volume 'top': it cannot be written");
	assert_int_equal(pool_vol_resize("p1", "q", 4 << 20, true, err, sizeof(err)), 409);
	assert_int_equal(pool_vol_resize("p1", "q", 32 << 20, false, err, sizeof(err)), 204);
	/* A clone of the overlay reads through to q's data, and stands alone. */
	assert_int_equal(pool_vol_clone("p1", "top", "flat", &resp, err, sizeof(err)), 201);
	free(resp);
	back = download("flat", &size);
	assert_non_null(back);
	assert_int_equal(size, 8 << 20);
	assert_memory_equal(back, data, n);
	free(back);
	snprintf(p, sizeof(p), "%s/images/flat", dir);
	assert_int_equal(vimg_open(p, &oo, &img, err, sizeof(err)), 0);
	assert_int_equal(vimg_get_info(img, &info), 0);
	vimg_close(img);
	assert_string_equal(info.backing, "");
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pools, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_ops, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
