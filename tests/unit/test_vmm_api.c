/* vmm/api.c: the control API's dispatcher, with fake VM operations. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api.h"

struct fake {
	int ret;                 /* what every operation returns */
	enum api_state state;
	unsigned pauses, resumes, shutdowns, sets, gets, saves, poweroffs, metrics;
	bool balloon;            /* the metrics have a balloon */
	unsigned snapshots;
	char snap_name[80];
	uint64_t target;
	char save_dir[64];
	bool save_exit;
	const char *save_msg;    /* what a failing save says */
	unsigned mstarts, mcancels;
	struct migrate_params mp;
	struct migrate_status ms;
};

static int f_info(void *o, struct api_vm_info *out)
{
	struct fake *f = o;

	out->state = f->state;
	out->vcpus = 2;
	out->memory_mib = 512;
	out->uptime_ms = 1234;
	out->name = "web\"1";
	return f->ret;
}

static int f_pause(void *o)
{
	struct fake *f = o;

	f->pauses++;
	return f->ret;
}

static int f_resume(void *o)
{
	struct fake *f = o;

	f->resumes++;
	return f->ret;
}

static int f_shutdown(void *o)
{
	struct fake *f = o;

	f->shutdowns++;
	return f->ret;
}

static int f_bset(void *o, uint64_t mib)
{
	struct fake *f = o;

	f->sets++;
	f->target = mib;
	return f->ret;
}

static int f_bget(void *o, struct api_balloon_info *out)
{
	struct fake *f = o;

	f->gets++;
	out->target_mib = 128;
	out->actual_mib = 64;
	out->stats.valid = (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_MEMTOT);
	out->stats.val[VIRTIO_BALLOON_S_MEMFREE] = 1000;
	out->stats.val[VIRTIO_BALLOON_S_MEMTOT] = 5000;
	out->stats.updates = 3;
	out->stats.when_ns = 1000000000;
	out->now_ns = 3000000000;
	return f->ret;
}

static int f_save(void *o, const char *dir, bool exit_after, char *msg, size_t msglen)
{
	struct fake *f = o;

	f->saves++;
	snprintf(f->save_dir, sizeof(f->save_dir), "%s", dir);
	f->save_exit = exit_after;
	if (f->ret && f->save_msg)
		snprintf(msg, msglen, "%s", f->save_msg);
	return f->ret;
}

static int f_mstart(void *o, const struct migrate_params *p, char *msg, size_t msglen)
{
	struct fake *f = o;

	f->mstarts++;
	f->mp = *p;
	if (f->ret == -ENOTSUP)
		snprintf(msg, msglen, "virtio-net cannot be migrated");
	return f->ret;
}

static int f_mget(void *o, struct migrate_status *out)
{
	struct fake *f = o;

	*out = f->ms;
	return 0;
}

static int f_mcancel(void *o)
{
	struct fake *f = o;

	f->mcancels++;
	return f->ret;
}

static int f_snapshot(void *o, const char *name, const char *dir, char *msg, size_t msglen)
{
	struct fake *f = o;

	f->snapshots++;
	snprintf(f->snap_name, sizeof(f->snap_name), "%s", name);
	snprintf(f->save_dir, sizeof(f->save_dir), "%s", dir ? dir : "(default)");
	if (f->ret && f->save_msg)
		snprintf(msg, msglen, "%s", f->save_msg);
	return f->ret;
}

static int f_poweroff(void *o)
{
	struct fake *f = o;

	f->poweroffs++;
	return f->ret;
}

static int f_metrics(void *o, struct api_metrics *m)
{
	struct fake *f = o;

	f->metrics++;
	if (f->ret)
		return f->ret;
	m->nr_vcpus = 2;
	m->vcpu = calloc(2, sizeof(*m->vcpu));
	if (!m->vcpu)
		return -ENOMEM;
	m->vcpu[0].exits[API_EXIT_IO] = 7;
	m->vcpu[1].exits[API_EXIT_MMIO] = 9;
	m->vcpu[1].run_ns = 1500000000ull;
	m->nr_disks = 2;
	snprintf(m->disk[0].id, sizeof(m->disk[0].id), "disk0");
	m->disk[0].read_bytes = 4096;
	m->disk[0].read_ops = 1;
	snprintf(m->disk[1].id, sizeof(m->disk[1].id), "a\"b\\c\n");
	m->disk[1].write_bytes = 512;
	m->disk[1].write_ops = 1;
	m->nr_nets = 1;
	snprintf(m->net[0].id, sizeof(m->net[0].id), "net0");
	m->net[0].rx_packets = 3;
	m->net[0].tx_bytes = 1500;
	m->balloon = f->balloon;
	m->balloon_target_bytes = 1u << 20;
	m->balloon_actual_bytes = 1u << 19;
	return 0;
}

static const struct api_ops fops = {
	f_info, f_pause, f_resume, f_shutdown, f_bset, f_bget, f_save, f_snapshot, f_poweroff,
	f_metrics, f_mstart, f_mget, f_mcancel,
};

static struct fake F;
static struct api_ctx C = { &fops, &F };
static char *resp;

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	resp = NULL;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(resp);
	resp = NULL;
	return 0;
}

/* Send one request; the status.  resp holds the answer. */
static unsigned req(const char *method, const char *path, const char *body)
{
	unsigned st = 0;

	free(resp);
	resp = NULL;
	api_handle(&C, method, path, body, body ? strlen(body) : 0, &st, &resp);
	return st;
}

static void assert_error(unsigned got, unsigned want)
{
	assert_int_equal(got, want);
	assert_non_null(resp);
	assert_non_null(strstr(resp, "{\"error\":\""));
}

static void test_snapshot(void **state)
{
	(void)state;
	assert_int_equal(req("PUT", "/vm/snapshot", "{\"name\": \"before-upgrade.1\"}"), 204);
	assert_null(resp);
	assert_string_equal(F.snap_name, "before-upgrade.1");
	assert_string_equal(F.save_dir, "(default)");
	assert_int_equal(req("PUT", "/vm/snapshot", "{\"name\": \"s\", \"dir\": \"/tmp/x\"}"),
			 204);
	assert_string_equal(F.save_dir, "/tmp/x");
	assert_int_equal(req("PUT", "/vm/snapshot", "{\"name\": \"s\", \"dir\": null}"), 204);
	assert_string_equal(F.save_dir, "(default)");
	assert_int_equal(F.snapshots, 3);
	/* names: a letter first, then [A-Za-z0-9._-], at most 64 */
	static const char *const bad[] = {
		"{}", "{\"name\": 1}", "{\"name\": \"\"}", "{\"name\": \"1abc\"}",
		"{\"name\": \".x\"}", "{\"name\": \"a/b\"}", "{\"name\": \"a b\"}",
		"{\"name\": \"a\\u0000b\"}", "{\"name\": \"a..\", \"exit\": true}",
		"{\"name\": \"a\", \"dir\": 5}", "{\"name\": \"a\", \"dir\": \"\"}",
		"{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
		"{\"name\": \"\u00e9t\u00e9\"}", "[]",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_error(req("PUT", "/vm/snapshot", bad[i]), 400);
	assert_int_equal(req("PUT", "/vm/snapshot",
			     "{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"),
			 204);
	assert_int_equal(F.snapshots, 4);
	assert_error(req("GET", "/vm/snapshot", NULL), 405);
	F.ret = -EEXIST;
	F.save_msg = "disk disk0 (a.qcow2) already has a snapshot named s";
	assert_error(req("PUT", "/vm/snapshot", "{\"name\": \"s\"}"), 409);
	assert_non_null(strstr(resp, "PUT /vm/snapshot: disk disk0"));
	F.ret = -ENOTSUP;
	assert_error(req("PUT", "/vm/snapshot", "{\"name\": \"s\"}"), 409);
	F.ret = -EACCES;
	assert_error(req("PUT", "/vm/snapshot", "{\"name\": \"s\"}"), 400);
	F.ret = -EIO;
	assert_error(req("PUT", "/vm/snapshot", "{\"name\": \"s\"}"), 500);
	F.save_msg = NULL;
	F.ret = -ESHUTDOWN;
	assert_error(req("PUT", "/vm/snapshot", "{\"name\": \"s\"}"), 409);
}

static void test_poweroff(void **state)
{
	(void)state;
	assert_int_equal(req("PUT", "/vm/poweroff", NULL), 204);
	assert_null(resp);
	assert_int_equal(req("PUT", "/vm/poweroff", " {} "), 204);
	assert_int_equal(F.poweroffs, 2);
	assert_error(req("PUT", "/vm/poweroff", "{\"force\": true}"), 400);
	assert_error(req("GET", "/vm/poweroff", NULL), 405);
	assert_error(req("PUT", "/vm/poweroff", "[]"), 400);
	assert_int_equal(F.poweroffs, 2);
	F.ret = -ESHUTDOWN;
	assert_error(req("PUT", "/vm/poweroff", NULL), 409);
	assert_int_equal(F.poweroffs, 3);
}

static void test_metrics(void **state)
{
	(void)state;
	assert_int_equal(req("GET", "/metrics", NULL), 200);
	assert_non_null(resp);
	assert_string_equal(api_content_type("/metrics", 200),
			    "text/plain; version=0.0.4; charset=utf-8");
	assert_string_equal(api_content_type("/metrics", 409), "application/json");
	assert_string_equal(api_content_type("/vm", 200), "application/json");
	assert_non_null(strstr(resp, "# TYPE vireo_vcpu_exits_total counter\n"));
	assert_non_null(strstr(resp, "vireo_vcpu_exits_total{vcpu=\"0\",reason=\"io\"} 7\n"));
	assert_non_null(strstr(resp, "vireo_vcpu_exits_total{vcpu=\"1\",reason=\"mmio\"} 9\n"));
	assert_non_null(strstr(resp, "vireo_vcpu_exits_total{vcpu=\"1\",reason=\"io\"} 0\n"));
	assert_non_null(strstr(resp, "vireo_vcpu_run_seconds_total{vcpu=\"1\"} 1.500000000\n"));
	assert_non_null(strstr(resp, "vireo_disk_read_bytes_total{disk=\"disk0\"} 4096\n"));
	assert_non_null(strstr(resp, "vireo_disk_read_ops_total{disk=\"disk0\"} 1\n"));
	/* label values escaped: quote and backslash, a newline made '?' */
	assert_non_null(strstr(resp, "vireo_disk_written_bytes_total{disk=\"a\\\"b\\\\c?\"} 512\n"));
	assert_non_null(strstr(resp, "vireo_disk_write_ops_total{disk=\"disk0\"} 0\n"));
	assert_non_null(strstr(resp, "vireo_net_rx_packets_total{nic=\"net0\"} 3\n"));
	assert_non_null(strstr(resp, "vireo_net_tx_bytes_total{nic=\"net0\"} 1500\n"));
	assert_null(strstr(resp, "vireo_balloon"));
	F.balloon = true;
	assert_int_equal(req("GET", "/metrics", NULL), 200);
	assert_non_null(strstr(resp, "# TYPE vireo_balloon_target_bytes gauge\n"));
	assert_non_null(strstr(resp, "vireo_balloon_target_bytes 1048576\n"));
	assert_non_null(strstr(resp, "vireo_balloon_actual_bytes 524288\n"));
	/* every line a comment or NAME{...} VALUE */
	for (char *l = resp; *l; l = strchr(l, '\n') + 1) {
		assert_non_null(strchr(l, '\n'));
		assert_true(l[0] == '#' || !strncmp(l, "vireo_", 6));
	}
	assert_error(req("GET", "/metrics", "{}"), 400);
	assert_error(req("PUT", "/metrics", NULL), 405);
	assert_int_equal(F.metrics, 2);
	F.ret = -ESHUTDOWN;
	assert_error(req("GET", "/metrics", NULL), 409);
}

static void test_get_vm(void **state)
{
	(void)state;
	assert_int_equal(req("GET", "/vm", NULL), 200);
	assert_string_equal(resp, "{\"state\":\"running\",\"vcpus\":2,\"memory_mib\":512,"
			    "\"uptime_ms\":1234,\"name\":\"web\\\"1\"}");
	F.state = API_STATE_PAUSED;
	assert_int_equal(req("GET", "/vm", ""), 200);
	assert_non_null(strstr(resp, "\"state\":\"paused\""));
	F.state = API_STATE_SHUTTING_DOWN;
	assert_int_equal(req("GET", "/vm", " \r\n"), 200);
	assert_non_null(strstr(resp, "\"state\":\"shutting-down\""));
	/* A GET with a body, other methods. */
	assert_error(req("GET", "/vm", "{}"), 400);
	assert_error(req("PUT", "/vm", NULL), 405);
	assert_error(req("POST", "/vm", NULL), 405);
	assert_error(req("DELETE", "/vm", NULL), 405);
	assert_error(req("get", "/vm", NULL), 405);
	assert_error(req(NULL, "/vm", NULL), 405);
	F.ret = -EIO;
	assert_error(req("GET", "/vm", NULL), 500);
}

static void test_pause_resume(void **state)
{
	(void)state;
	assert_int_equal(req("PUT", "/vm/pause", NULL), 204);
	assert_null(resp);
	assert_int_equal(req("PUT", "/vm/pause", "{}"), 204);
	assert_int_equal(req("PUT", "/vm/resume", " { } \n"), 204);
	assert_int_equal(F.pauses, 2);
	assert_int_equal(F.resumes, 1);
	F.ret = -EALREADY;
	assert_error(req("PUT", "/vm/pause", NULL), 409);
	assert_error(req("PUT", "/vm/resume", NULL), 409);
	F.ret = -ESHUTDOWN;
	assert_error(req("PUT", "/vm/pause", NULL), 409);
	F.ret = -ETIMEDOUT;
	assert_error(req("PUT", "/vm/pause", NULL), 500);
	F.ret = 0;
	/* Parameters they do not take; wrong methods. */
	assert_error(req("PUT", "/vm/pause", "{\"now\": true}"), 400);
	assert_error(req("PUT", "/vm/pause", "[]"), 400);
	assert_error(req("PUT", "/vm/pause", "null"), 400);
	assert_error(req("PUT", "/vm/resume", "{"), 400);
	assert_error(req("GET", "/vm/pause", NULL), 405);
	assert_error(req("POST", "/vm/resume", NULL), 405);
	assert_int_equal(F.pauses, 5);
}

static void test_shutdown(void **state)
{
	(void)state;
	assert_int_equal(req("PUT", "/vm/shutdown", NULL), 204);
	assert_int_equal(F.shutdowns, 1);
	F.ret = -EBUSY;
	assert_error(req("PUT", "/vm/shutdown", NULL), 409);
	assert_non_null(strstr(resp, "paused"));
	F.ret = -ESHUTDOWN;
	assert_error(req("PUT", "/vm/shutdown", NULL), 409);
	assert_error(req("GET", "/vm/shutdown", NULL), 405);
	assert_error(req("PUT", "/vm/shutdown", "{\"force\":1}"), 400);
}

static void test_balloon(void **state)
{
	(void)state;
	assert_int_equal(req("PUT", "/vm/balloon", "{\"target_mib\": 256}"), 204);
	assert_int_equal(F.target, 256);
	assert_int_equal(req("PUT", "/vm/balloon", "{\"target_mib\":0}"), 204);
	assert_int_equal(F.target, 0);
	assert_int_equal(req("GET", "/vm/balloon", NULL), 200);
	assert_string_equal(resp, "{\"target_mib\":128,\"actual_mib\":64,\"stats\":"
			    "{\"free_memory\":1000,\"total_memory\":5000},"
			    "\"stats_updates\":3,\"stats_age_ms\":2000}");
	assert_error(req("DELETE", "/vm/balloon", NULL), 405);
	/* No balloon, a target the VM refuses, a stopping VM. */
	F.ret = -ENODEV;
	assert_error(req("GET", "/vm/balloon", NULL), 404);
	assert_error(req("PUT", "/vm/balloon", "{\"target_mib\":1}"), 404);
	F.ret = -ERANGE;
	assert_error(req("PUT", "/vm/balloon", "{\"target_mib\":4096}"), 400);
	F.ret = -ESHUTDOWN;
	assert_error(req("PUT", "/vm/balloon", "{\"target_mib\":1}"), 409);
	assert_int_equal(F.sets, 5);
}

static void test_balloon_bad(void **state)
{
	static const char *const bad[] = {
		"", " ", "{}", "{\"target_mib\": \"256\"}", "{\"target_mib\": 1.5}",
		"{\"target_mib\": 1e3}", "{\"target_mib\": -1}", "{\"target_mib\": true}",
		"{\"target_mib\": null}", "{\"target_mib\": [1]}", "{\"target_mib\": {}}",
		"{\"target_mib\": 67108865}", "{\"target_mib\": 9223372036854775807}",
		"{\"target_mib\": 18446744073709551615}",
		"{\"target_mib\": 99999999999999999999999999999}",
		"{\"target_mib\": -99999999999999999999999999999}",
		"{\"target_mib\": 1, \"extra\": 2}", "{\"Target_mib\": 1}",
		"{\"target_mib\": 1}{}", "{\"target_mib\": 1} x", "{'target_mib': 1}",
		"{\"target_mib\": 1,}", "{\"target_mib\": 01}", "[{\"target_mib\": 1}]",
		"\"target_mib\"", "42", "{\"target_mib\"", "{\"target_mib\": 1",
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned st = req("PUT", "/vm/balloon", bad[i]);

		if (st != 400)
			print_message("body '%s': %u %s\n", bad[i], st, resp ? resp : "");
		assert_error(st, 400);
	}
	assert_int_equal(F.sets, 0);
	/* The largest accepted, a duplicate key (the last wins). */
	assert_int_equal(req("PUT", "/vm/balloon", "{\"target_mib\": 67108864}"), 204);
	assert_int_equal(F.target, 67108864);
	assert_int_equal(req("PUT", "/vm/balloon", "{\"target_mib\": 1, \"target_mib\": 2}"), 204);
	assert_int_equal(F.target, 2);
}

static void test_paths_and_bodies(void **state)
{
	static const char *const paths[] = {
		"/", "", "/vm/", "/VM", "/vm/pause/", "/vm//pause", "/vm/balloon/stats",
		"/vm?x=1", "vm", "/vm/../vm", "/machine",
	};
	char big[64];
	unsigned st = 0;

	(void)state;
	for (unsigned i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		assert_error(req("GET", paths[i], NULL), 404);
	assert_error(req("GET", NULL, NULL), 404);
	free(resp);
	resp = NULL;
	/* Too large: not kept (NULL) or kept but over the cap. */
	api_handle(&C, "PUT", "/vm/balloon", NULL, API_BODY_MAX + 1, &st, &resp);
	assert_error(st, 413);
	free(resp);
	resp = NULL;
	api_handle(&C, "PUT", "/vm/pause", NULL, SIZE_MAX, &st, &resp);
	assert_error(st, 413);
	free(resp);
	resp = NULL;
	/* The cap itself is fine (a body of spaces). */
	{
		char *b = malloc(API_BODY_MAX);

		assert_non_null(b);
		memset(b, ' ', API_BODY_MAX);
		api_handle(&C, "PUT", "/vm/pause", b, API_BODY_MAX, &st, &resp);
		assert_int_equal(st, 204);
		free(b);
	}
	/* A NUL inside the body. */
	memcpy(big, "{\"target_mib\":1}\0 ", 18);
	api_handle(&C, "PUT", "/vm/balloon", big, 18, &st, &resp);
	assert_error(st, 400);
	free(resp);
	resp = NULL;
	/* Deep nesting, invalid UTF-8. */
	{
		char deep[400];

		memset(deep, '[', sizeof(deep) - 1);
		deep[sizeof(deep) - 1] = 0;
		assert_error(req("PUT", "/vm/balloon", deep), 400);
	}
	assert_error(req("PUT", "/vm/balloon", "{\"target_mib\": 1, \"\xff\": 1}"), 400);
	assert_int_equal(F.sets, 0);
}

static void test_save(void **state)
{
	(void)state;
	assert_int_equal(req("PUT", "/vm/save", "{\"dir\": \"/tmp/s1\"}"), 204);
	assert_null(resp);
	assert_int_equal(F.saves, 1);
	assert_string_equal(F.save_dir, "/tmp/s1");
	assert_false(F.save_exit);
	assert_int_equal(req("PUT", "/vm/save", "{\"dir\": \"d\", \"exit\": true}"), 204);
	assert_int_equal(F.saves, 2);
	assert_true(F.save_exit);
	assert_string_equal(F.save_dir, "d");
	assert_int_equal(req("PUT", "/vm/save", "{\"exit\": false, \"dir\": \"e\"}"), 204);
	assert_false(F.save_exit);
	/* The VM's refusals: a device that cannot be saved names itself. */
	F.ret = -ENOTSUP;
	F.save_msg = "virtio-blk disk0 cannot be saved";
	assert_error(req("PUT", "/vm/save", "{\"dir\": \"d\"}"), 409);
	assert_non_null(strstr(resp, "virtio-blk disk0 cannot be saved"));
	F.ret = -ENOENT;
	F.save_msg = "cannot make /x/y: No such file or directory";
	assert_error(req("PUT", "/vm/save", "{\"dir\": \"/x/y\"}"), 400);
	assert_non_null(strstr(resp, "cannot make /x/y"));
	F.ret = -EIO;
	F.save_msg = "cannot write d/memory.new: Input/output error";
	assert_error(req("PUT", "/vm/save", "{\"dir\": \"d\"}"), 500);
	F.ret = -ESHUTDOWN;
	F.save_msg = NULL;
	assert_error(req("PUT", "/vm/save", "{\"dir\": \"d\"}"), 409);
	assert_int_equal(F.saves, 7);
}

static void test_save_bad(void **state)
{
	char big[4100 + 32];

	(void)state;
	assert_error(req("GET", "/vm/save", NULL), 405);
	assert_error(req("PUT", "/vm/save", NULL), 400);
	assert_error(req("PUT", "/vm/save", "{}"), 400);
	assert_non_null(strstr(resp, "dir is required"));
	assert_error(req("PUT", "/vm/save", "{\"dir\": 5}"), 400);
	assert_non_null(strstr(resp, "dir must be a string"));
	assert_error(req("PUT", "/vm/save", "{\"dir\": \"\"}"), 400);
	assert_error(req("PUT", "/vm/save", "{\"dir\": \"a\\u0000b\"}"), 400);
	assert_error(req("PUT", "/vm/save", "{\"dir\": \"d\", \"exit\": 1}"), 400);
	assert_non_null(strstr(resp, "exit must be true or false"));
	assert_error(req("PUT", "/vm/save", "{\"dir\": \"d\", \"name\": \"x\"}"), 400);
	assert_non_null(strstr(resp, "unknown field 'name'"));
	memset(big, 0, sizeof(big));
	strcpy(big, "{\"dir\": \"");
	memset(big + strlen(big), 'a', 4001);
	strcat(big, "\"}");
	assert_error(req("PUT", "/vm/save", big), 400);
	assert_int_equal(F.saves, 0);
}

static void test_migrate(void **state)
{
	(void)state;
	assert_int_equal(req("GET", "/migrate", NULL), 200);
	assert_string_equal(resp, "{\"state\":\"none\"}");
	assert_int_equal(req("PUT", "/migrate", "{\"uri\": \"tcp:127.0.0.1:4444\"}"), 202);
	assert_int_equal(F.mstarts, 1);
	assert_string_equal(F.mp.uri, "tcp:127.0.0.1:4444");
	assert_int_equal(F.mp.downtime_ms, 300);
	assert_int_equal(F.mp.bandwidth_mbps, 0);
	assert_int_equal(req("PUT", "/migrate", "{\"uri\": \"unix:/tmp/m.sock\", "
			     "\"downtime_ms\": 50, \"bandwidth_mbps\": 800}"), 202);
	assert_int_equal(F.mp.downtime_ms, 50);
	assert_int_equal(F.mp.bandwidth_mbps, 800);
	F.ms = (struct migrate_status){ .state = MIGRATE_COMPLETED, .uri = "unix:/x",
					.bytes_sent = 10, .rounds = 3, .downtime_ms = 12,
					.total_ms = 40 };
	assert_int_equal(req("GET", "/migrate", NULL), 200);
	assert_non_null(strstr(resp, "\"state\":\"completed\""));
	assert_non_null(strstr(resp, "\"downtime_ms\":12"));
	assert_non_null(strstr(resp, "\"rounds\":3"));
	assert_non_null(strstr(resp, "\"direction\":\"out\""));
	assert_null(strstr(resp, "\"bytes_received\""));
	assert_null(strstr(resp, "\"error\""));
	/* every progress field, in the documented names */
	for (unsigned i = 0; i < 12; i++) {
		static const char *const k[] = {
			"\"bytes_sent\":10", "\"bytes_remaining\":", "\"pages\":",
			"\"zero_pages\":", "\"dirty_rate_bps\":", "\"bandwidth_bps\":",
			"\"expected_downtime_ms\":", "\"throttle_percent\":", "\"total_ms\":40",
			"\"uri\":\"unix:/x\"", "\"rounds\":", "\"downtime_ms\":",
		};

		if (!strstr(resp, k[i]))
			fail_msg("GET /migrate: no %s in %s", k[i], resp);
	}
	/* the target's view */
	F.ms.incoming = true;
	F.ms.bytes_received = 4096;
	assert_int_equal(req("GET", "/migrate", NULL), 200);
	assert_non_null(strstr(resp, "\"direction\":\"in\""));
	assert_non_null(strstr(resp, "\"bytes_received\":4096"));
	F.ms.incoming = false;
	F.ms.state = MIGRATE_FAILED;
	snprintf(F.ms.error, sizeof(F.ms.error), "the target closed the connection");
	assert_int_equal(req("GET", "/migrate", NULL), 200);
	assert_non_null(strstr(resp, "\"error\":\"the target closed the connection\""));
	assert_non_null(strstr(resp, "\"downtime_ms\":null"));
	assert_int_equal(req("DELETE", "/migrate", NULL), 204);
	assert_int_equal(F.mcancels, 1);
	F.ret = -EALREADY;
	assert_error(req("DELETE", "/migrate", NULL), 409);
	assert_non_null(strstr(resp, "no migration is active"));
	F.ret = -EBUSY;
	assert_error(req("PUT", "/migrate", "{\"uri\": \"tcp:1.2.3.4:5\"}"), 409);
	assert_non_null(strstr(resp, "already active"));
	F.ret = -ENOTSUP;
	assert_error(req("PUT", "/migrate", "{\"uri\": \"tcp:1.2.3.4:5\"}"), 409);
	assert_non_null(strstr(resp, "virtio-net cannot be migrated"));
	F.ret = -EINPROGRESS;
	assert_error(req("PUT", "/vm/pause", NULL), 409);
	assert_non_null(strstr(resp, "migration is active"));
	assert_error(req("PUT", "/vm/save", "{\"dir\": \"/tmp/s\"}"), 409);
	assert_non_null(strstr(resp, "migration is active"));
	assert_error(req("PUT", "/vm/snapshot", "{\"name\": \"s1\"}"), 409);
	assert_non_null(strstr(resp, "migration is active"));
}

static void test_migrate_bad(void **state)
{
	(void)state;
	assert_error(req("POST", "/migrate", NULL), 405);
	assert_error(req("DELETE", "/vm", NULL), 405);
	assert_error(req("PUT", "/migrate", "{}"), 400);
	assert_non_null(strstr(resp, "uri is required"));
	assert_error(req("PUT", "/migrate", "{\"uri\": 5}"), 400);
	assert_error(req("PUT", "/migrate", "{\"uri\": \"ftp:x\"}"), 400);
	assert_error(req("PUT", "/migrate", "{\"uri\": \"tcp:1.2.3.4\"}"), 400);
	assert_error(req("PUT", "/migrate", "{\"uri\": \"tcp:1.2.3.4:0\"}"), 400);
	assert_error(req("PUT", "/migrate", "{\"uri\": \"tcp:1.2.3.4:70000\"}"), 400);
	assert_error(req("PUT", "/migrate", "{\"uri\": \"unix:\"}"), 400);
	assert_error(req("PUT", "/migrate", "{\"uri\": \"tcp:1.2.3.4:5\", \"downtime_ms\": 0}"),
		     400);
	assert_non_null(strstr(resp, "downtime_ms must be an integer"));
	assert_error(req("PUT", "/migrate", "{\"uri\": \"tcp:1.2.3.4:5\", \"downtime_ms\": \"1\"}"),
		     400);
	assert_error(req("PUT", "/migrate",
			 "{\"uri\": \"tcp:1.2.3.4:5\", \"bandwidth_mbps\": -1}"), 400);
	assert_non_null(strstr(resp, "bandwidth_mbps must be"));
	assert_error(req("PUT", "/migrate", "{\"uri\": \"tcp:1.2.3.4:5\", \"speed\": 1}"), 400);
	assert_non_null(strstr(resp, "unknown field 'speed'"));
	assert_error(req("DELETE", "/migrate", "{\"a\": 1}"), 400);
	assert_int_equal(F.mstarts, 0);
	assert_int_equal(F.mcancels, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poweroff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_balloon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_balloon_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths_and_bodies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_bad, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
