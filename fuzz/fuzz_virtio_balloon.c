/*
 * libFuzzer target: the virtio-balloon queues (inflate, deflate,
 * statistics, free page reporting) on top of the virtqueue.  Pages are
 * "discarded" into a checker that aborts if the device ever asks to
 * discard anything outside the balloonable range or not page-aligned
 * there.
 *
 * Input: [0] bit0 offer reporting, bit1 deflate-on-oom, bit2 refuse
 * EVENT_IDX, bit3 refuse STATS_VQ, bit4 reset and run again, bit5 the
 * save/restore hooks (restore from the RAM image's first bytes); [1] log2
 * queue size (& 7); then the guest RAM image (64 KiB at GPA 0x10000): queue
 * q's descriptor table at q * 0x2000, its available ring at +0x800 and its
 * used ring at +0x1000; the balloonable range is the upper 32 KiB
 * (GPA 0x18000-0x1ffff, page frames 0x18 to 0x1f).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "balloon.h"

#define RAM_GPA  0x10000ULL
#define RAM_SIZE 0x10000u
#define BAL_OFF  0x8000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *fuzz_ram;

static int check_discard(void *opaque, void *hva, size_t len)
{
	uint8_t *p = hva;

	(void)opaque;
	if (p < fuzz_ram + BAL_OFF || len == 0 || len % VIRTIO_BALLOON_PAGE ||
	    len > RAM_SIZE - BAL_OFF || p - fuzz_ram > (ptrdiff_t)(RAM_SIZE - len) ||
	    (p - fuzz_ram) % VIRTIO_BALLOON_PAGE)
		abort();
	memset(p, 0, len);
	return 0;
}

/* The model's save/restore hooks: its own state is taken back as it is,
 * and state from the input (@x, @n bytes) is either refused or taken
 * exactly (a save gives the same bytes). */
static void fz_model(struct virtio_dev *d, const uint8_t *x, size_t n)
{
	uint8_t a[1024], b[1024];
	size_t len = d->ops->save(d, NULL, 0);

	if (len == 0 || len > sizeof(a) || d->ops->save(d, a, len) != len)
		abort();
	if (virtio_dev_running(d)) {
		if (d->ops->restore(d, a, len))
			abort();
		d->ops->save(d, b, len);
		if (memcmp(a, b, len))
			abort();
	}
	if (d->ops->restore(d, x, n < len ? n : len + 1) == 0)
		abort();   /* a length other than its own */
	if (n >= len && d->ops->restore(d, x, len) == 0) {
		d->ops->save(d, b, len);
		if (memcmp(b, x, len))
			abort();
	}
}

static void run(struct virtio_dev *d, const uint8_t *flags)
{
	uint32_t f0 = virtio_dev_host_features(d, 0), f1 = virtio_dev_host_features(d, 1);
	uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	if (flags[0] & 4)
		f0 &= ~(1u << VIRTIO_F_EVENT_IDX);
	if (flags[0] & 8)
		f0 &= ~(1u << VIRTIO_BALLOON_F_STATS_VQ);
	virtio_dev_set_status(d, st);
	virtio_dev_set_guest_features(d, 0, f0);
	virtio_dev_set_guest_features(d, 1, f1);
	st |= VIRTIO_STATUS_FEATURES_OK;
	virtio_dev_set_status(d, st);
	for (unsigned q = 0; q < 4; q++) {
		d->vq[q].size = (uint16_t)(1u << (flags[1] & 7));
		d->vq[q].desc_gpa = RAM_GPA + q * 0x2000;
		d->vq[q].avail_gpa = RAM_GPA + q * 0x2000 + 0x800;
		d->vq[q].used_gpa = RAM_GPA + q * 0x2000 + 0x1000;
		virtio_dev_queue_enable(d, q);
	}
	virtio_dev_set_status(d, st | VIRTIO_STATUS_DRIVER_OK);
	for (unsigned round = 0; round < 2; round++)
		for (unsigned q = 0; q < 4; q++)
			virtio_dev_queue_notify(d, q);
	if (flags[0] & 32)   /* the model's state from the RAM image's start */
		fz_model(d, fuzz_ram, RAM_SIZE);
	virtio_dev_unlock(d);
	virtio_balloon_request_stats(d, false);
	virtio_balloon_set_target(d, 0x4000);
	virtio_dev_lock(d);
	virtio_dev_queue_notify(d, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gmem mem = { 0 };
	struct virtio_env env = { 0 };
	struct virtio_balloon_range range = { RAM_GPA + BAL_OFF, RAM_SIZE - BAL_OFF };
	struct virtio_balloon_config cfg = { .ranges = &range, .nr_ranges = 1 };
	struct virtio_balloon_counters c;
	struct virtio_dev *d;

	if (size < 2)
		return 0;
	fuzz_ram = calloc(1, RAM_SIZE);
	memcpy(fuzz_ram, data + 2, size - 2 < RAM_SIZE ? size - 2 : RAM_SIZE);
	mem.region[0] = (struct gmem_region){ RAM_GPA, RAM_SIZE, fuzz_ram };
	mem.nr_regions = 1;
	mem.ram_size = RAM_SIZE;
	env.mem = &mem;
	cfg.reporting = data[0] & 1;
	cfg.deflate_on_oom = data[0] & 2;
	if (virtio_balloon_create(&env, &cfg, &d) < 0) {
		free(fuzz_ram);
		return 0;
	}
	virtio_balloon_set_discard(d, check_discard, NULL);
	virtio_dev_lock(d);
	run(d, data);
	if (data[0] & 16) {
		virtio_dev_set_status(d, 0);
		run(d, data);
	}
	virtio_dev_unlock(d);
	virtio_balloon_get_counters(d, &c);
	/* (restored counters are the input's) */
	if (!(data[0] & 32) && c.discarded_bytes > (c.inflated_pages * VIRTIO_BALLOON_PAGE) + c.reported_bytes)
		abort();
	virtio_dev_destroy(d);
	free(fuzz_ram);
	return 0;
}
