/* vireo-vmm's --disk / --rng option parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "virtio_opts.h"

static int disk(struct virtio_opts *o, const char *arg, char *err)
{
	static char copies[8][128];
	static unsigned n;
	char *a = copies[n++ % 8];

	strcpy(a, arg);   /* the parser keeps pointers into its argument */
	return virtio_opts_disk(o, a, err, 200);
}

static void test_disk_full(void **state)
{
	struct virtio_opts o = { 0 };
	char err[200] = "";

	(void)state;
	assert_int_equal(disk(&o, "path=/img/a.raw,format=raw,readonly=on,id=root,serial=S1", err), 0);
	assert_int_equal(o.nr_disks, 1);
	assert_string_equal(o.disk[0].path, "/img/a.raw");
	assert_int_equal(o.disk[0].format, VIRTIO_DISK_RAW);
	assert_true(o.disk[0].readonly);
	assert_string_equal(o.disk[0].id, "root");
	assert_string_equal(o.disk[0].serial, "S1");
	/* a bare path, defaults, generated id */
	assert_int_equal(disk(&o, "/img/b.qcow2,format=qcow2", err), 0);
	assert_string_equal(o.disk[1].path, "/img/b.qcow2");
	assert_int_equal(o.disk[1].format, VIRTIO_DISK_QCOW2);
	assert_false(o.disk[1].readonly);
	assert_string_equal(o.disk[1].id, "disk1");
	assert_string_equal(o.disk[1].serial, "");
}

static void test_disk_bad(void **state)
{
	struct virtio_opts o = { 0 };
	char err[200];

	(void)state;
	assert_int_equal(disk(&o, "format=raw", err), -EINVAL);
	assert_non_null(strstr(err, "no image given"));
	assert_int_equal(disk(&o, "path=a,format=vmdk", err), -EINVAL);
	assert_non_null(strstr(err, "'vmdk'"));
	assert_int_equal(disk(&o, "path=a,readonly=maybe", err), -EINVAL);
	assert_non_null(strstr(err, "'maybe'"));
	assert_int_equal(disk(&o, "path=a,size=1G", err), -EINVAL);
	assert_non_null(strstr(err, "unknown key 'size'"));
	assert_int_equal(disk(&o, "path=a,id=has space", err), -EINVAL);
	assert_int_equal(disk(&o, "path=a,serial=123456789012345678901", err), -EINVAL);
	assert_int_equal(disk(&o, "path=a,b", err), -EINVAL);
	assert_int_equal(o.nr_disks, 0);
	assert_int_equal(disk(&o, "path=a,id=x", err), 0);
	assert_int_equal(disk(&o, "path=b,id=x", err), -EINVAL);
	assert_non_null(strstr(err, "used twice"));
	assert_int_equal(o.nr_disks, 1);
	for (unsigned i = 1; i < VIRTIO_OPTS_MAX_DISKS; i++)
		assert_int_equal(disk(&o, "path=c", err), 0);
	assert_int_equal(disk(&o, "path=c", err), -EINVAL);
	assert_non_null(strstr(err, "at most"));
}

static void test_rng(void **state)
{
	struct virtio_opts o = { 0 };
	char err[200];

	(void)state;
	assert_int_equal(virtio_opts_rng(&o, NULL, err, sizeof(err)), 0);
	assert_true(o.rng);
	assert_int_equal(o.rng_rate, 0);
	assert_int_equal(virtio_opts_rng(&o, "rate=64K", err, sizeof(err)), 0);
	assert_int_equal(o.rng_rate, 65536);
	assert_int_equal(virtio_opts_rng(&o, "rate=0", err, sizeof(err)), -EINVAL);
	assert_int_equal(virtio_opts_rng(&o, "rate=2G", err, sizeof(err)), -EINVAL);
	assert_int_equal(virtio_opts_rng(&o, "speed=1", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'speed=1'"));
}

static void test_vsock(void **state)
{
	struct virtio_opts o = { 0 };
	char err[200];

	(void)state;
	assert_int_equal(virtio_opts_vsock(&o, "cid=3", err, sizeof(err)), 0);
	assert_true(o.vsock);
	assert_int_equal(o.vsock_cid, 3);
	assert_int_equal(virtio_opts_vsock(&o, "cid=4", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "only one"));
	for (unsigned c = 0; c <= 2; c++) {
		struct virtio_opts p = { 0 };
		char a[16];

		snprintf(a, sizeof(a), "cid=%u", c);
		assert_int_equal(virtio_opts_vsock(&p, a, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "reserved"));
		assert_false(p.vsock);
	}
	{
		struct virtio_opts p = { 0 };

		assert_int_equal(virtio_opts_vsock(&p, "cid=4294967294", err, sizeof(err)), 0);
		assert_int_equal(p.vsock_cid, 0xfffffffeULL);
		p.vsock = false;
		assert_int_equal(virtio_opts_vsock(&p, "cid=4294967295", err, sizeof(err)), -EINVAL);
		assert_int_equal(virtio_opts_vsock(&p, "cid=99999999999999999999999", err,
						   sizeof(err)), -EINVAL);
		assert_int_equal(virtio_opts_vsock(&p, "cid=", err, sizeof(err)), -EINVAL);
		assert_int_equal(virtio_opts_vsock(&p, "cid=-3", err, sizeof(err)), -EINVAL);
		assert_int_equal(virtio_opts_vsock(&p, "cid=3x", err, sizeof(err)), -EINVAL);
		assert_int_equal(virtio_opts_vsock(&p, "3", err, sizeof(err)), -EINVAL);
		assert_int_equal(virtio_opts_vsock(&p, "cid=3,x=1", err, sizeof(err)), -EINVAL);
		assert_int_equal(virtio_opts_vsock(&p, NULL, err, sizeof(err)), -EINVAL);
		assert_false(p.vsock);
	}
	assert_false(virtio_opts_vsock_cid_ok(0));
	assert_false(virtio_opts_vsock_cid_ok(2));
	assert_true(virtio_opts_vsock_cid_ok(3));
	assert_false(virtio_opts_vsock_cid_ok(0xffffffffULL));
	assert_false(virtio_opts_vsock_cid_ok(1ULL << 32));
}

static void test_balloon(void **state)
{
	struct virtio_opts o = { 0 };
	char err[200];

	(void)state;
	assert_int_equal(virtio_opts_balloon(&o, NULL, err, sizeof(err)), 0);
	assert_true(o.balloon);
	assert_true(o.balloon_reporting);
	assert_false(o.balloon_deflate_on_oom);
	assert_int_equal(o.balloon_target, 0);
	assert_int_equal(virtio_opts_balloon(&o, "free-page-reporting=off,deflate-on-oom=on,"
					     "target=512M", err, sizeof(err)), 0);
	assert_false(o.balloon_reporting);
	assert_true(o.balloon_deflate_on_oom);
	assert_int_equal(o.balloon_target, 512ULL << 20);
	assert_int_equal(virtio_opts_balloon(&o, "target=5000", err, sizeof(err)), 0);
	assert_int_equal(o.balloon_target, 4096);   /* whole pages */
	assert_int_equal(virtio_opts_balloon(&o, "target=lots", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'lots'"));
	assert_int_equal(virtio_opts_balloon(&o, "deflate-on-oom=maybe", err, sizeof(err)), -EINVAL);
	assert_int_equal(virtio_opts_balloon(&o, "free-page-reporting", err, sizeof(err)), -EINVAL);
	assert_int_equal(virtio_opts_balloon(&o, "stats=on", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown key 'stats'"));
}

static void test_disk_backing(void **state)
{
	struct virtio_opts o = { 0 };
	char err[200] = "";

	(void)state;
	assert_int_equal(disk(&o, "a.qcow2,format=qcow2", err), 0);
	assert_false(o.disk[0].backing_off);
	assert_null(o.disk[0].backing_dirs[0]);
	assert_int_equal(disk(&o, "b.qcow2,format=qcow2,backing=off", err), 0);
	assert_true(o.disk[1].backing_off);
	assert_int_equal(disk(&o, "c.qcow2,format=qcow2,backing-dir=/srv/base,"
			      "backing-dir=/srv/more,backing=on", err), 0);
	assert_false(o.disk[2].backing_off);
	assert_string_equal(o.disk[2].backing_dirs[0], "/srv/base");
	assert_string_equal(o.disk[2].backing_dirs[1], "/srv/more");
	assert_null(o.disk[2].backing_dirs[2]);
	assert_int_equal(disk(&o, "d.qcow2,format=qcow2,backing=maybe", err), -EINVAL);
	assert_non_null(strstr(err, "backing"));
	assert_int_equal(disk(&o, "d.qcow2,format=qcow2,backing-dir=", err), -EINVAL);
	assert_int_equal(disk(&o, "d.qcow2,format=qcow2,backing=off,backing-dir=/x", err),
			 -EINVAL);
	assert_int_equal(disk(&o, "d.raw,format=raw,backing=off", err), -EINVAL);
	assert_non_null(strstr(err, "qcow2"));
	assert_int_equal(o.nr_disks, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_disk_bad),
		cmocka_unit_test(test_disk_backing),
		cmocka_unit_test(test_rng),
		cmocka_unit_test(test_vsock),
		cmocka_unit_test(test_balloon),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
