/* The store (daemon/store.c): definitions added, read, listed, updated and
 * deleted; the keys' uniqueness; persistence across a reopen; WAL; the
 * synchronous level of each --state-sync mode; and crash consistency in
 * the default mode (synchronous=NORMAL): a writer killed with SIGKILL at
 * random moments loses no change it was told was committed, and leaves no
 * partial row. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vireo-store-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#define COLLECT_MAX 8192

struct collected {
	char names[COLLECT_MAX][16];
	char defs[COLLECT_MAX][128];
	int n;
};

static int collect(void *opaque, const char *name, const char *def)
{
	struct collected *c = opaque;

	if (c->n >= COLLECT_MAX)
		return -E2BIG;
	snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name);
	snprintf(c->defs[c->n], sizeof(c->defs[0]), "%s", def);
	c->n++;
	return 0;
}

static void test_basic(void **state)
{
	struct store *st;
	char err[256], *def = NULL;
	struct stat sb;
	static struct collected c;

	(void)state;
	assert_int_equal(store_open(dir, STORE_SYNC_NORMAL, &st, err, sizeof(err)), 0);
	assert_int_equal(store_vm_add(st, "web2", "u2", "{\"name\":\"web2\"}"), 0);
	assert_int_equal(store_vm_add(st, "web1", "u1", "{\"name\":\"web1\"}"), 0);
	assert_int_equal(store_vm_add(st, "web1", "u3", "{}"), -EEXIST);
	assert_int_equal(store_vm_add(st, "web3", "u1", "{}"), -ENOTUNIQ);
	assert_int_equal(store_vm_get(st, "web1", &def), 0);
	assert_string_equal(def, "{\"name\":\"web1\"}");
	free(def);
	assert_int_equal(store_vm_get(st, "web3", &def), -ENOENT);
	assert_int_equal(store_vm_update(st, "web2", "{\"v\":2}"), 0);
	assert_int_equal(store_vm_update(st, "nope", "{}"), -ENOENT);
	/* WAL: the log file is there while the store is open. */
	char p[128];
	snprintf(p, sizeof(p), "%s/vireod.db-wal", dir);
	assert_int_equal(stat(p, &sb), 0);
	/* The default: the WAL written at each commit, synced at checkpoints. */
	assert_int_equal(store_sync_level(st), 1);
	store_close(st);
	/* --state-sync full: every commit synced. */
	assert_int_equal(store_open(dir, STORE_SYNC_FULL, &st, err, sizeof(err)), 0);
	assert_int_equal(store_sync_level(st), 2);
	assert_int_equal(store_vm_update(st, "web2", "{\"v\":2}"), 0);
	store_close(st);

	/* Everything is still there after a reopen, in name order. */
	assert_int_equal(store_open(dir, STORE_SYNC_NORMAL, &st, err, sizeof(err)), 0);
	c.n = 0;
	assert_int_equal(store_vm_list(st, collect, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.names[0], "web1");
	assert_string_equal(c.names[1], "web2");
	assert_string_equal(c.defs[1], "{\"v\":2}");
	assert_int_equal(store_vm_delete(st, "web1"), 0);
	assert_int_equal(store_vm_delete(st, "web1"), -ENOENT);
	/* A name freed by a delete can be used again (and its uuid). */
	assert_int_equal(store_vm_add(st, "web1", "u1", "{}"), 0);
	c.n = 0;
	assert_int_equal(store_vm_list(st, collect, &c), 0);
	assert_int_equal(c.n, 2);
	store_close(st);
	/* The state directory is private. */
	assert_int_equal(stat(dir, &sb), 0);
}

static void test_bad_dir(void **state)
{
	struct store *st;
	char err[256], p[128];

	(void)state;
	snprintf(p, sizeof(p), "%s/file", dir);
	int fd = open(p, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(p, sizeof(p), "%s/file/sub", dir);
	assert_int_not_equal(store_open(p, STORE_SYNC_NORMAL, &st, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "file/sub"));
}

/*
 * The writer: adds vm00000, vm00001, ... and rewrites the definition of
 * the previous one ("v2"), reporting each committed change on @ack as one
 * line ("a N" or "u N").  It runs until killed.
 */
static void writer(int ack)
{
	struct store *st;
	char err[256], name[16], uuid[16], def[128], line[32];

	if (store_open(dir, STORE_SYNC_NORMAL, &st, err, sizeof(err)))
		_exit(3);
	for (int i = 0;; i++) {
		if (i == COLLECT_MAX - 100)
			for (;;)
				pause();   /* more than the check collects: wait for the kill */
		snprintf(name, sizeof(name), "vm%05d", i);
		snprintf(uuid, sizeof(uuid), "u%05d", i);
		snprintf(def, sizeof(def), "{\"name\":\"%s\",\"v\":1,\"pad\":\"%040d\"}", name, i);
		if (store_vm_add(st, name, uuid, def))
			_exit(4);
		int n = snprintf(line, sizeof(line), "a %d\n", i);
		if (write(ack, line, (size_t)n) != n)
			_exit(5);
		if (i > 0) {
			snprintf(name, sizeof(name), "vm%05d", i - 1);
			snprintf(def, sizeof(def), "{\"name\":\"%s\",\"v\":2}", name);
			if (store_vm_update(st, name, def))
				_exit(6);
			n = snprintf(line, sizeof(line), "u %d\n", i - 1);
			if (write(ack, line, (size_t)n) != n)
				_exit(7);
		}
	}
}

static void test_crash_consistency(void **state)
{
	static struct collected c;
	char err[256];

	(void)state;
	srand((unsigned)time(NULL));
	for (int round = 0; round < 6; round++) {
		int pfd[2];
		assert_int_equal(pipe(pfd), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			writer(pfd[1]);
		}
		close(pfd[1]);
		/* Let it write for a while (at least one change), reading its
		 * acknowledgements as they come (a full pipe would stop it
		 * between commits), then SIGKILL it in the middle of whatever
		 * it does. */
		static char acks[1 << 20];
		size_t len = 0;
		ssize_t n = read(pfd[0], acks, 1);
		assert_int_equal(n, 1);
		len = 1;
		struct timespec t0, now;
		long wait_ms = 5 + rand() % 100;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			long left = wait_ms - ((now.tv_sec - t0.tv_sec) * 1000 +
					       (now.tv_nsec - t0.tv_nsec) / 1000000);
			if (left <= 0)
				break;
			struct pollfd p = { .fd = pfd[0], .events = POLLIN };
			if (poll(&p, 1, (int)left) > 0) {
				n = read(pfd[0], acks + len, sizeof(acks) - 1 - len);
				assert_true(n > 0);
				len += (size_t)n;
			}
		}
		kill(pid, SIGKILL);
		int ws;
		assert_int_equal(waitpid(pid, &ws, 0), pid);
		assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
		/* Every acknowledgement it managed to send. */
		while ((n = read(pfd[0], acks + len, sizeof(acks) - 1 - len)) > 0)
			len += (size_t)n;
		close(pfd[0]);
		acks[len] = '\0';
		int last_add = -1, last_upd = -1;
		for (char *l = acks; *l; ) {
			char *nl = strchr(l, '\n');
			if (!nl)
				break;   /* a line cut by the kill: not acknowledged */
			int v;
			if (sscanf(l, "a %d", &v) == 1)
				last_add = v;
			else if (sscanf(l, "u %d", &v) == 1)
				last_upd = v;
			l = nl + 1;
		}
		assert_true(last_add >= 0);

		struct store *st;
		assert_int_equal(store_open(dir, STORE_SYNC_NORMAL, &st, err, sizeof(err)), 0);
		c.n = 0;
		assert_int_equal(store_vm_list(st, collect, &c), 0);
		/* Every acknowledged add is there; at most one more (committed
		 * but killed before its acknowledgement). */
		assert_true(c.n == last_add + 1 || c.n == last_add + 2);
		for (int i = 0; i < c.n; i++) {
			char name[16], v1[128], v2[128];
			snprintf(name, sizeof(name), "vm%05d", i);
			assert_string_equal(c.names[i], name);
			snprintf(v1, sizeof(v1), "{\"name\":\"%s\",\"v\":1,\"pad\":\"%040d\"}", name, i);
			snprintf(v2, sizeof(v2), "{\"name\":\"%s\",\"v\":2}", name);
			/* Whole, old or new: never a mix; acknowledged updates kept. */
			if (i <= last_upd)
				assert_string_equal(c.defs[i], v2);
			else if (strcmp(c.defs[i], v1) && strcmp(c.defs[i], v2))
				fail_msg("%s: torn definition '%s'", name, c.defs[i]);
		}
		/* Start the next round from an empty store. */
		for (int i = 0; i < c.n; i++)
			assert_int_equal(store_vm_delete(st, c.names[i]), 0);
		store_close(st);
		printf("round %d: %d committed and acknowledged, %d found\n", round, last_add + 1, c.n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_consistency, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
