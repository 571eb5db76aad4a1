/*
 * libFuzzer target: the split virtqueue parser.
 *
 * Input: [0] log2 queue size (& 7), [1] bit0 INDIRECT_DESC, bit1 EVENT_IDX,
 * [2..7] le16 offsets of the descriptor table, available and used rings
 * from the start of guest RAM, then the guest RAM image (64 KiB at GPA
 * 0x10000, as two separately allocated 32 KiB regions so a buffer that
 * straddles them would be caught by ASan if virtq let it through).
 * Every segment handed out is read and written in full.  The VMM's dirty
 * log (gmem.h) is on, so virtq_push() walks each chain again to mark its
 * writable buffers: that walk must stay inside guest RAM and the bitmap
 * too (the device's writes may have changed the descriptors meanwhile).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtq.h"

#define RAM_GPA 0x10000ULL
#define HALF    0x8000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t le16_at(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtq_chain chain;
	static uint64_t bits0[1], bits1[1];   /* 8 pages per region */
	static struct gmem_dirty dirty = { .on = true, .bits = { bits0, bits1 } };
	struct gmem mem = { .dirty = &dirty };
	struct virtq q = { 0 };
	uint8_t *lo, *hi;
	size_t img;

	if (size < 8)
		return 0;
	lo = calloc(1, HALF);
	hi = calloc(1, HALF);
	img = size - 8;
	memcpy(lo, data + 8, img < HALF ? img : HALF);
	if (img > HALF)
		memcpy(hi, data + 8 + HALF, img - HALF < HALF ? img - HALF : HALF);
	mem.region[0] = (struct gmem_region){ RAM_GPA, HALF, lo };
	mem.region[1] = (struct gmem_region){ RAM_GPA + HALF, HALF, hi };
	mem.nr_regions = 2;
	mem.ram_size = 2 * HALF;
	bits0[0] = bits1[0] = 0;

	virtq_reset(&q);
	q.size = (uint16_t)(1u << (data[0] & 7));
	q.indirect = data[1] & 1;
	q.event_idx = (data[1] >> 1) & 1;
	q.desc_gpa = RAM_GPA + le16_at(data + 2);
	q.avail_gpa = RAM_GPA + le16_at(data + 4);
	q.used_gpa = RAM_GPA + le16_at(data + 6);
	if (virtq_enable(&q, &mem) == 0) {
		for (int n = 0; n < 64; n++) {
			unsigned sum = 0;
			int r = virtq_pop(&q, &chain);

			if (r <= 0)
				break;
			if (chain.nr_out + chain.nr_in > VIRTQ_CHAIN_MAX ||
			    chain.nr_out + chain.nr_in > q.size)
				abort();
			for (unsigned i = 0; i < chain.nr_out + chain.nr_in; i++) {
				uint8_t *p = chain.iov[i].iov_base;
				for (size_t k = 0; k < chain.iov[i].iov_len; k++)
					sum += p[k];
				if (virtq_seg_writable(&chain, i))
					memset(p, 0x5a, chain.iov[i].iov_len);
			}
			virtq_push(&q, chain.head, (uint32_t)chain.in_len + (sum & 1));
			(void)virtq_should_notify(&q);
			if (n & 1)
				virtq_notify_off(&q);
			else
				(void)virtq_notify_on(&q);
		}
	}
	/* Only the regions' 8 pages can be marked. */
	if ((bits0[0] | bits1[0]) >> (HALF / GMEM_DIRTY_PAGE))
		abort();
	free(lo);
	free(hi);
	return 0;
}
