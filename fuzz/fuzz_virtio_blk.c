/*
 * libFuzzer target: virtio-blk request handling on top of the virtqueue,
 * with an in-memory disk whose backend aborts if the device ever asks for
 * bytes outside the disk or writes to a read-only disk.
 *
 * Input: [0] bit0 read-only, bit1 refuse EVENT_IDX, bit2 refuse
 * INDIRECT_DESC, bit3 refuse DISCARD/WRITE_ZEROES; [1] log2 queue size
 * (& 7); then the guest RAM image (64 KiB at GPA 0x10000) with the
 * descriptor table at +0, the available ring at +0x800 and the used ring
 * at +0x1000.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "blk.h"

#include "fuzz_mem_disk.h"

#define RAM_GPA  0x10000ULL
#define RAM_SIZE 0x10000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gmem mem = { 0 };
	struct virtio_env env = { 0 };
	struct blk_backend *disk;
	struct virtio_dev *d;
	uint8_t *ram;
	uint32_t f0, f1;
	uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	if (size < 2)
		return 0;
	ram = calloc(1, RAM_SIZE);
	memcpy(ram, data + 2, size - 2 < RAM_SIZE ? size - 2 : RAM_SIZE);
	mem.region[0] = (struct gmem_region){ RAM_GPA, RAM_SIZE, ram };
	mem.nr_regions = 1;
	mem.ram_size = RAM_SIZE;
	env.mem = &mem;

	disk = mem_disk_new(data[0] & 1);
	if (virtio_blk_create(&env, disk, "fuzz", NULL, &d) < 0) {
		free(ram);
		return 0;
	}
	f0 = virtio_dev_host_features(d, 0);
	f1 = virtio_dev_host_features(d, 1);
	if (data[0] & 2)
		f0 &= ~(1u << VIRTIO_F_EVENT_IDX);
	if (data[0] & 4)
		f0 &= ~(1u << VIRTIO_F_INDIRECT_DESC);
	if (data[0] & 8)
		f0 &= ~((1u << VIRTIO_BLK_F_DISCARD) | (1u << VIRTIO_BLK_F_WRITE_ZEROES));
	virtio_dev_set_status(d, st);
	virtio_dev_set_guest_features(d, 0, f0);
	virtio_dev_set_guest_features(d, 1, f1);
	st |= VIRTIO_STATUS_FEATURES_OK;
	virtio_dev_set_status(d, st);
	d->vq[0].size = (uint16_t)(1u << (data[1] & 7));
	d->vq[0].desc_gpa = RAM_GPA;
	d->vq[0].avail_gpa = RAM_GPA + 0x800;
	d->vq[0].used_gpa = RAM_GPA + 0x1000;
	if (virtio_dev_queue_enable(d, 0) == 0) {
		virtio_dev_set_status(d, st | VIRTIO_STATUS_DRIVER_OK);
		virtio_dev_queue_notify(d, 0);
		virtio_dev_queue_notify(d, 0);
		virtio_blk_complete(d);
		if (virtio_blk_inflight(d))
			abort();   /* a synchronous backend leaves nothing behind */
	}
	virtio_dev_destroy(d);
	free(ram);
	return 0;
}
