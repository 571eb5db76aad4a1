/*
 * virtio-vsock set-up errors that need no vhost-vsock: reserved CIDs, a
 * missing device node, a node that is not vhost.  (The data path runs in
 * the host kernel: the lab's vsock scenario checks it.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vsock.h"
#include "virtio_test_ring.h"

static void test_create_errors(void **state)
{
	struct tmem m;
	struct virtio_env env = { 0 };
	struct virtio_dev *d = NULL;

	(void)state;
	tmem_init(&m);
	env.mem = &m.mem;
	for (uint64_t cid = 0; cid <= 2; cid++)
		assert_int_equal(virtio_vsock_create(&env, "/dev/null", cid, &d), -EINVAL);
	assert_int_equal(virtio_vsock_create(&env, "/dev/null", 1ULL << 32, &d), -EINVAL);
	assert_int_equal(virtio_vsock_create(&env, "/dev/null", 0xffffffffULL, &d), -EINVAL);
	assert_int_equal(virtio_vsock_create(&env, "/nonexistent/vhost-vsock", 3, &d), -ENOENT);
	/* not a vhost device: VHOST_SET_OWNER fails */
	assert_int_equal(virtio_vsock_create(&env, "/dev/null", 3, &d), -ENOTTY);
	assert_null(d);
	tmem_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
