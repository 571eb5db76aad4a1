/* The event loop: as many watches as devices need (more than one chunk),
 * dispatch, and a watch deleted by an earlier callback of the same batch
 * is not called. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>
#include <errno.h>
#include <sys/epoll.h>

#include "loop.h"

#define N 100

static int calls[N];
static int fds[N];
static struct evloop *loop;

static void on_ready(void *opaque, uint32_t events)
{
	int i = (int)(intptr_t)opaque;
	uint64_t v;

	(void)events;
	calls[i]++;
	if (read(fds[i], &v, sizeof(v)) < 0) {
		/* counted anyway */
	}
}

/* Deletes every other watch, so their events in this batch are dropped. */
static void on_ready_delete_all(void *opaque, uint32_t events)
{
	on_ready(opaque, events);
	for (int i = 0; i < N; i++)
		if (i != (int)(intptr_t)opaque)
			evloop_del(loop, fds[i]);
}

static void test_many_watches(void **state)
{
	uint64_t one = 1;

	(void)state;
	loop = evloop_new();
	assert_non_null(loop);
	for (int i = 0; i < N; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(fds[i] >= 0);
		assert_int_equal(evloop_add(loop, fds[i], EPOLLIN, on_ready,
					    (void *)(intptr_t)i), 0);
	}
	for (int i = 0; i < N; i += 7)
		assert_int_equal(write(fds[i], &one, sizeof(one)), 8);
	for (int k = 0; k < 10; k++)
		assert_int_equal(evloop_run_once(loop, 0), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(calls[i], i % 7 == 0);
	/* Re-add after delete reuses a slot. */
	assert_int_equal(evloop_del(loop, fds[3]), 0);
	assert_int_equal(evloop_del(loop, fds[3]), -ENOENT);
	assert_int_equal(evloop_add(loop, fds[3], EPOLLIN, on_ready_delete_all,
				    (void *)(intptr_t)3), 0);
	for (int i = 0; i < N; i++)
		calls[i] = 0;
	/* fd 3 becomes ready first, fd 5 next: both are in one batch, and
	 * fd 3's callback deletes fd 5's watch before its turn comes. */
	assert_int_equal(write(fds[3], &one, sizeof(one)), 8);
	assert_int_equal(write(fds[5], &one, sizeof(one)), 8);
	assert_int_equal(evloop_run_once(loop, 0), 0);
	assert_int_equal(calls[3], 1);
	assert_int_equal(calls[5], 0);
	evloop_free(loop);
	for (int i = 0; i < N; i++)
		close(fds[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_watches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
