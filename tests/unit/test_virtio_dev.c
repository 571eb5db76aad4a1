/* Device core (status/feature state machine), virtio-console, virtio-rng. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "console.h"
#include "rng.h"
#include "virtio.h"
#include "virtio_test_ring.h"

/* Counts interrupts the transport would raise. */
struct irqs {
	int queue[VIRTIO_MAX_QUEUES];
	int config;
};
static struct irqs irq_count;

static void t_irq_queue(struct virtio_dev *d, unsigned q)
{
	(void)d;
	irq_count.queue[q]++;
}

static void t_irq_config(struct virtio_dev *d)
{
	(void)d;
	irq_count.config++;
}

static const struct virtio_transport t_transport = {
	.irq_queue = t_irq_queue,
	.irq_config = t_irq_config,
};

struct fx {
	struct tmem m;
	struct virtio_env env;
	struct tring r[2];
	struct virtio_dev *d;
};

static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	memset(&irq_count, 0, sizeof(irq_count));
	tmem_init(&f->m);
	f->env.mem = &f->m.mem;
}

/* What a Linux driver does: ACK, DRIVER, features, FEATURES_OK, queues,
 * DRIVER_OK. */
static void fx_start(struct fx *f, unsigned nq, uint16_t qsize)
{
	struct virtio_dev *d = f->d;

	d->transport = &t_transport;
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_guest_features(d, 0, virtio_dev_host_features(d, 0));
	virtio_dev_set_guest_features(d, 1, virtio_dev_host_features(d, 1));
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK);
	assert_true(virtio_dev_status(d) & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned i = 0; i < nq; i++) {
		assert_true(virtio_dev_queue_configurable(d, i));
		tring_init(&f->r[i], &f->m, TMEM_GPA + 0x10000ULL * i, qsize);
		tring_attach(&f->r[i], &d->vq[i]);
		assert_int_equal(virtio_dev_queue_enable(d, i), 0);
	}
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_dev_running(d));
}

static void fx_fini(struct fx *f)
{
	virtio_dev_destroy(f->d);
	tmem_free(&f->m);
}

static void test_features_need_version_1(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f);
	assert_int_equal(virtio_rng_create(&f.env, 0, &f.d), 0);
	assert_int_equal(virtio_dev_host_features(f.d, 1) & 1, 1);  /* VERSION_1 */
	virtio_dev_set_status(f.d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_guest_features(f.d, 0, 0);
	virtio_dev_set_guest_features(f.d, 1, 0);   /* a legacy driver */
	virtio_dev_set_status(f.d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK);
	assert_false(virtio_dev_status(f.d) & VIRTIO_STATUS_FEATURES_OK);
	/* queues cannot be set up and DRIVER_OK does not start anything */
	assert_false(virtio_dev_queue_configurable(f.d, 0));
	virtio_dev_set_status(f.d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_DRIVER_OK);
	assert_false(virtio_dev_running(f.d));
	fx_fini(&f);
}

static void test_features_not_offered(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f);
	assert_int_equal(virtio_rng_create(&f.env, 0, &f.d), 0);
	virtio_dev_set_status(f.d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_guest_features(f.d, 0, 1u << 3);   /* not offered */
	virtio_dev_set_guest_features(f.d, 1, 1);
	virtio_dev_set_status(f.d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK);
	assert_false(virtio_dev_status(f.d) & VIRTIO_STATUS_FEATURES_OK);
	/* A corrected attempt works. */
	virtio_dev_set_guest_features(f.d, 0, 0);
	virtio_dev_set_status(f.d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK);
	assert_true(virtio_dev_status(f.d) & VIRTIO_STATUS_FEATURES_OK);
	/* Features are frozen after FEATURES_OK. */
	virtio_dev_set_guest_features(f.d, 0, 1u << 28);
	assert_false(virtio_dev_has(f.d, VIRTIO_F_INDIRECT_DESC));
	fx_fini(&f);
}

static void test_reset(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f);
	assert_int_equal(virtio_rng_create(&f.env, 0, &f.d), 0);
	fx_start(&f, 1, 8);
	assert_true(f.d->vq[0].ready);
	assert_true(virtio_dev_has(f.d, VIRTIO_F_EVENT_IDX));
	assert_true(f.d->vq[0].event_idx);
	virtio_dev_set_status(f.d, 0);
	assert_int_equal(virtio_dev_status(f.d), 0);
	assert_false(f.d->vq[0].ready);
	assert_int_equal(f.d->guest_features, 0);
	assert_int_equal(f.d->vq[0].size, VIRTIO_RNG_QUEUE_SIZE);
	/* and it can be brought up again */
	fx_start(&f, 1, 8);
	fx_fini(&f);
}

static void test_status_bits_not_cleared(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f);
	assert_int_equal(virtio_rng_create(&f.env, 0, &f.d), 0);
	fx_start(&f, 1, 8);
	virtio_dev_set_status(f.d, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_true(virtio_dev_running(f.d));
	fx_fini(&f);
}

static void test_needs_reset(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f);
	assert_int_equal(virtio_rng_create(&f.env, 0, &f.d), 0);
	fx_start(&f, 1, 8);
	/* A buffer outside RAM: the device must stop and say so. */
	tring_desc(&f.r[0], 0, TMEM_GPA + TMEM_SIZE, 16, VIRTQ_DESC_F_WRITE, 0);
	tring_publish(&f.r[0], 0);
	virtio_dev_queue_notify(f.d, 0);
	assert_true(virtio_dev_status(f.d) & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(virtio_dev_running(f.d));
	assert_int_equal(irq_count.config, 1);
	assert_int_equal(tring_used_idx(&f.r[0]), 0);
	/* The driver cannot clear NEEDS_RESET except by resetting. */
	virtio_dev_set_status(f.d, (uint8_t)(virtio_dev_status(f.d) &
				  ~VIRTIO_STATUS_NEEDS_RESET));
	assert_true(virtio_dev_status(f.d) & VIRTIO_STATUS_NEEDS_RESET);
	virtio_dev_queue_notify(f.d, 0);
	assert_int_equal(irq_count.config, 1);
	virtio_dev_set_status(f.d, 0);
	assert_false(virtio_dev_status(f.d) & VIRTIO_STATUS_NEEDS_RESET);
	fx_fini(&f);
}

static void test_notify_before_driver_ok(void **state)
{
	struct fx f;
	struct virtio_dev *d;

	(void)state;
	fx_init(&f);
	assert_int_equal(virtio_rng_create(&f.env, 0, &f.d), 0);
	d = f.d;
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_guest_features(d, 1, 1);
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK);
	tring_init(&f.r[0], &f.m, TMEM_GPA, 8);
	tring_attach(&f.r[0], &d->vq[0]);
	assert_int_equal(virtio_dev_queue_enable(d, 0), 0);
	tring_desc(&f.r[0], 0, tmem_alloc(&f.m, 16, 0), 16, VIRTQ_DESC_F_WRITE, 0);
	tring_publish(&f.r[0], 0);
	virtio_dev_queue_notify(d, 0);
	assert_int_equal(tring_used_idx(&f.r[0]), 0);
	/* Out-of-range queue numbers are ignored. */
	virtio_dev_queue_notify(d, 7);
	virtio_dev_queue_notify(d, 1000);
	fx_fini(&f);
}

static void test_queue_size_above_max(void **state)
{
	struct fx f;
	struct virtio_dev *d;

	(void)state;
	fx_init(&f);
	assert_int_equal(virtio_rng_create(&f.env, 0, &f.d), 0);
	d = f.d;
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_guest_features(d, 1, 1);
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK);
	tring_init(&f.r[0], &f.m, TMEM_GPA, 8);
	tring_attach(&f.r[0], &d->vq[0]);
	d->vq[0].size = 2 * VIRTIO_RNG_QUEUE_SIZE;
	assert_int_equal(virtio_dev_queue_enable(d, 0), -EINVAL);
	assert_true(virtio_dev_status(d) & VIRTIO_STATUS_NEEDS_RESET);
	fx_fini(&f);
}

/* ---- rng ---- */

static void test_rng_fills(void **state)
{
	struct fx f;
	uint64_t a, b;
	uint32_t id, len;
	static const uint8_t zero[64];

	(void)state;
	fx_init(&f);
	assert_int_equal(virtio_rng_create(&f.env, 0, &f.d), 0);
	fx_start(&f, 1, 8);
	a = tmem_alloc(&f.m, 64, 0);
	b = tmem_alloc(&f.m, 64, 0);
	tring_desc(&f.r[0], 0, a, 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	tring_desc(&f.r[0], 1, b, 64, VIRTQ_DESC_F_WRITE, 0);
	tring_publish(&f.r[0], 0);
	virtio_dev_queue_notify(f.d, 0);
	assert_int_equal(tring_used_idx(&f.r[0]), 1);
	tring_used_elem(&f.r[0], 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 128);
	/* 64 random bytes are all zero with probability 2^-512 */
	assert_memory_not_equal(tmem_ptr(&f.m, a), zero, 64);
	assert_memory_not_equal(tmem_ptr(&f.m, b), zero, 64);
	assert_int_equal(irq_count.queue[0], 1);
	fx_fini(&f);
}

static uint64_t fake_ns;
static uint64_t fake_clock(void)
{
	return fake_ns;
}

static void test_rng_rate_limit(void **state)
{
	struct fx f;
	uint32_t id, len;

	(void)state;
	fx_init(&f);
	fake_ns = 1000000000ULL;
	/* 100 bytes/s: the bucket starts with 100 bytes. */
	assert_int_equal(virtio_rng_create(&f.env, 100, &f.d), 0);
	virtio_rng_set_clock(f.d, fake_clock);
	fx_start(&f, 1, 8);
	for (uint16_t i = 0; i < 4; i++) {
		tring_desc(&f.r[0], i, tmem_alloc(&f.m, 64, 0), 64,
			   VIRTQ_DESC_F_WRITE, 0);
		tring_publish(&f.r[0], i);
	}
	virtio_dev_queue_notify(f.d, 0);
	/* 64 + 36 bytes went out; the third buffer waits for tokens. */
	assert_int_equal(tring_used_idx(&f.r[0]), 2);
	tring_used_elem(&f.r[0], 0, &id, &len);
	assert_int_equal(len, 64);
	tring_used_elem(&f.r[0], 1, &id, &len);
	assert_int_equal(len, 36);
	assert_int_equal(virtio_rng_bytes(f.d), 100);
	virtio_rng_kick(f.d);
	assert_int_equal(tring_used_idx(&f.r[0]), 2);
	/* Half a second later: 50 more bytes. */
	fake_ns += 500000000ULL;
	virtio_rng_kick(f.d);
	assert_int_equal(tring_used_idx(&f.r[0]), 3);
	tring_used_elem(&f.r[0], 2, &id, &len);
	assert_int_equal(id, 2);
	assert_int_equal(len, 50);
	/* Ten seconds idle: the bucket holds only one second's worth. */
	fake_ns += 10000000000ULL;
	virtio_rng_kick(f.d);
	assert_int_equal(virtio_rng_bytes(f.d), 214);
	fx_fini(&f);
}

/* ---- console ---- */

static char con_out[256];
static size_t con_out_len;

static void con_write(void *opaque, const void *buf, size_t len)
{
	(void)opaque;
	memcpy(con_out + con_out_len, buf, len);
	con_out_len += len;
}

static void test_console_tx(void **state)
{
	struct fx f;
	struct virtio_console_backend be = { .write = con_write };
	uint64_t a, b;
	uint32_t id, len;

	(void)state;
	con_out_len = 0;
	fx_init(&f);
	assert_int_equal(virtio_console_create(&f.env, &be, 80, 25, &f.d), 0);
	fx_start(&f, 2, 8);
	a = tmem_alloc(&f.m, 6, 0);
	b = tmem_alloc(&f.m, 7, 0);
	memcpy(tmem_ptr(&f.m, a), "hello ", 6);
	memcpy(tmem_ptr(&f.m, b), "world\n", 7);
	tring_desc(&f.r[1], 0, a, 6, VIRTQ_DESC_F_NEXT, 1);
	tring_desc(&f.r[1], 1, b, 6, 0, 0);
	tring_publish(&f.r[1], 0);
	virtio_dev_queue_notify(f.d, 1);
	assert_int_equal(con_out_len, 12);
	assert_memory_equal(con_out, "hello world\n", 12);
	assert_int_equal(tring_used_idx(&f.r[1]), 1);
	tring_used_elem(&f.r[1], 0, &id, &len);
	assert_int_equal(len, 0);
	fx_fini(&f);
}

static void test_console_rx(void **state)
{
	struct fx f;
	uint64_t a, b;
	uint32_t id, len;
	uint8_t cfg[12];

	(void)state;
	fx_init(&f);
	assert_int_equal(virtio_console_create(&f.env, NULL, 80, 25, &f.d), 0);
	virtio_dev_config_read(f.d, 0, cfg, sizeof(cfg));
	assert_int_equal(cfg[0] | cfg[1] << 8, 80);
	assert_int_equal(cfg[2] | cfg[3] << 8, 25);
	assert_int_equal(cfg[4], 1);
	/* Input before the driver is there is kept. */
	assert_int_equal(virtio_console_input(f.d, "abcdef", 6), 6);
	fx_start(&f, 2, 8);
	a = tmem_alloc(&f.m, 4, 0);
	tring_desc(&f.r[0], 0, a, 4, VIRTQ_DESC_F_WRITE, 0);
	tring_publish(&f.r[0], 0);
	virtio_dev_queue_notify(f.d, 0);
	assert_int_equal(tring_used_idx(&f.r[0]), 1);
	tring_used_elem(&f.r[0], 0, &id, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(tmem_ptr(&f.m, a), "abcd", 4);
	b = tmem_alloc(&f.m, 16, 0);
	tring_desc(&f.r[0], 1, b, 16, VIRTQ_DESC_F_WRITE, 0);
	tring_publish(&f.r[0], 1);
	virtio_dev_queue_notify(f.d, 0);
	tring_used_elem(&f.r[0], 1, &id, &len);
	assert_int_equal(id, 1);
	assert_int_equal(len, 2);
	assert_memory_equal(tmem_ptr(&f.m, b), "ef", 2);
	/* The buffer is bounded. */
	for (size_t i = 0; i < VIRTIO_CONSOLE_INBUF / 4; i++)
		virtio_console_input(f.d, "xxxx", 4);
	assert_int_equal(virtio_console_input_room(f.d), 0);
	assert_int_equal(virtio_console_input(f.d, "y", 1), 0);
	fx_fini(&f);
}

/* ---- budgets: a hostile guest cannot monopolise the event loop ---- */

/* An event loop of one watched fd: what virtio_dev_yield() wakes. */
struct tloop {
	int fd;
	void (*cb)(void *);
	void *opaque;
	int watches;
};
static struct tloop tloop;

static int t_watch(void *loop, int fd, void (*cb)(void *), void *opaque)
{
	(void)loop;
	tloop = (struct tloop){ fd, cb, opaque, tloop.watches + 1 };
	return 0;
}

static void t_unwatch(void *loop, int fd)
{
	(void)loop;
	if (fd == tloop.fd)
		tloop.watches--;
}

/* A chain of n writable (or readable) descriptors that all cover the same
 * 4 MiB of guest RAM: the length it claims is n * 4 MiB. */
static void chain_overlapping(struct fx *f, unsigned qi, unsigned n, uint16_t flags)
{
	for (unsigned i = 0; i < n; i++)
		tring_desc(&f->r[qi], (uint16_t)i, TMEM_DATA, 4u << 20,
			   (uint16_t)(flags | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
			   (uint16_t)(i + 1));
	tring_publish(&f->r[qi], 0);
}

static void test_rng_chain_budget(void **state)
{
	struct fx f;
	uint32_t id, len;

	(void)state;
	fx_init(&f);
	assert_int_equal(virtio_rng_create(&f.env, 0, &f.d), 0);
	fx_start(&f, 1, 64);
	/* 64 x 4 MiB claimed; the device gives at most one chain's budget. */
	chain_overlapping(&f, 0, 64, VIRTQ_DESC_F_WRITE);
	virtio_dev_queue_notify(f.d, 0);
	assert_int_equal(tring_used_idx(&f.r[0]), 1);
	tring_used_elem(&f.r[0], 0, &id, &len);
	assert_int_equal(len, VIRTIO_RNG_CHAIN_MAX);
	assert_int_equal(virtio_rng_bytes(f.d), VIRTIO_RNG_CHAIN_MAX);
	fx_fini(&f);
}

static void test_rng_wakeup_budget(void **state)
{
	struct fx f;
	unsigned n = 2 * VIRTIO_RNG_WAKE_BUDGET / VIRTIO_RNG_CHAIN_MAX;

	(void)state;
	fx_init(&f);
	memset(&tloop, 0, sizeof(tloop));
	f.env.watch_fd = t_watch;
	f.env.unwatch_fd = t_unwatch;
	assert_int_equal(virtio_rng_create(&f.env, 0, &f.d), 0);
	assert_int_equal(tloop.watches, 1);
	fx_start(&f, 1, 64);
	for (unsigned i = 0; i < n; i++) {
		tring_desc(&f.r[0], (uint16_t)i, TMEM_DATA, VIRTIO_RNG_CHAIN_MAX,
			   VIRTQ_DESC_F_WRITE, 0);
		tring_publish(&f.r[0], (uint16_t)i);
	}
	/* One kick serves one wake-up's budget and asks the loop to come back. */
	virtio_dev_queue_notify(f.d, 0);
	assert_int_equal(virtio_rng_bytes(f.d), VIRTIO_RNG_WAKE_BUDGET);
	assert_int_equal(tring_used_idx(&f.r[0]), n / 2);
	assert_int_equal(f.d->yields, 1);
	/* The loop's next turn carries on without another kick. */
	tloop.cb(tloop.opaque);
	assert_int_equal(tring_used_idx(&f.r[0]), n);
	assert_int_equal(virtio_rng_bytes(f.d), 2ull * VIRTIO_RNG_WAKE_BUDGET);
	fx_fini(&f);
	assert_int_equal(tloop.watches, 0);
}

static void test_console_tx_budget(void **state)
{
	struct fx f;
	struct virtio_console_backend be = { .write = NULL };

	(void)state;
	fx_init(&f);
	assert_int_equal(virtio_console_create(&f.env, &be, 0, 0, &f.d), 0);
	fx_start(&f, 2, 64);
	/* 64 x 4 MiB of output claimed by one request: at most the per-request
	 * budget goes out, the rest is counted as dropped. */
	chain_overlapping(&f, 1, 64, 0);
	virtio_dev_queue_notify(f.d, 1);
	assert_int_equal(tring_used_idx(&f.r[1]), 1);
	assert_int_equal(virtio_console_dropped(f.d),
			 64ull * (4u << 20) - VIRTIO_CONSOLE_CHAIN_MAX);
	fx_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_features_need_version_1),
		cmocka_unit_test(test_features_not_offered),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_status_bits_not_cleared),
		cmocka_unit_test(test_needs_reset),
		cmocka_unit_test(test_notify_before_driver_ok),
		cmocka_unit_test(test_queue_size_above_max),
		cmocka_unit_test(test_rng_fills),
		cmocka_unit_test(test_rng_rate_limit),
		cmocka_unit_test(test_console_tx),
		cmocka_unit_test(test_console_rx),
		cmocka_unit_test(test_rng_chain_budget),
		cmocka_unit_test(test_rng_wakeup_budget),
		cmocka_unit_test(test_console_tx_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
