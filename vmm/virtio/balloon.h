/*
 * virtio-balloon (virtio 1.2, 5.5): the guest gives pages back to the host.
 *
 * Queues: 0 inflate and 1 deflate (arrays of le32 page frame numbers of 4
 * KiB), then, in this order and only when negotiated, the statistics queue
 * (VIRTIO_BALLOON_F_STATS_VQ, always offered) and the free page reporting
 * queue (VIRTIO_BALLOON_F_PAGE_REPORTING, --balloon free-page-reporting=on).
 * Linux numbers the queues it uses densely, so the roles of queues 2 and 3
 * are fixed when the driver sets DRIVER_OK.
 *
 * Inflated pages and reported ranges are discarded from the host
 * (virtio_balloon_release: MADV_DONTNEED for private guest RAM, MADV_REMOVE
 * for a migrated VM's, which is shared; freed either way; nothing is done
 * on deflate, the guest's next touch faults them in again).
 * Every page frame number or range is checked against the balloonable guest
 * RAM the VMM gives at creation (its e820 RAM ranges): outside RAM, in the
 * PCI hole, in the BIOS area below 1 MiB, overflowing or straddling two
 * regions is refused and counted, never discarded.  A malformed buffer is
 * counted too; the balloon never puts itself in NEEDS_RESET for them (a
 * guest that gets pages wrong only loses its own memory savings).
 */
#ifndef VIREO_VMM_VIRTIO_BALLOON_H
#define VIREO_VMM_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio.h"

#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON    4
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

#define VIRTIO_BALLOON_PAGE      4096u
#define VIRTIO_BALLOON_QUEUE_SIZE 128u
#define VIRTIO_BALLOON_CONFIG_SIZE 16u
/* Budget per queue and wake-up of the event loop (virtio_dev_yield). */
#define VIRTIO_BALLOON_WAKE_CHAINS 64u

/* Statistics tags (5.5.6.3). */
enum {
	VIRTIO_BALLOON_S_SWAP_IN, VIRTIO_BALLOON_S_SWAP_OUT, VIRTIO_BALLOON_S_MAJFLT,
	VIRTIO_BALLOON_S_MINFLT, VIRTIO_BALLOON_S_MEMFREE, VIRTIO_BALLOON_S_MEMTOT,
	VIRTIO_BALLOON_S_AVAIL, VIRTIO_BALLOON_S_CACHES, VIRTIO_BALLOON_S_HTLB_PGALLOC,
	VIRTIO_BALLOON_S_HTLB_PGFAIL,
	VIRTIO_BALLOON_S_NR
};

struct virtio_balloon_stats {
	uint64_t val[VIRTIO_BALLOON_S_NR];
	uint32_t valid;          /* bit t: val[t] was reported */
	uint64_t updates;        /* statistics buffers received so far */
	uint64_t when_ns;        /* vtime_ns() of the last one, 0 = never */
};

struct virtio_balloon_counters {
	uint32_t target_pages;   /* num_pages in config space */
	uint32_t actual_pages;   /* what the driver says it holds */
	uint64_t inflated_pages, deflated_pages;
	uint64_t reported_bytes; /* free page reporting, discarded */
	uint64_t discarded_bytes;/* inflate + reporting, as madvised */
	uint64_t bad_pfns;       /* refused page frame numbers */
	uint64_t bad_ranges;     /* refused reported ranges */
	uint64_t bad_buffers;    /* malformed buffers (wrong direction, odd size) */
};

/* Guest physical ranges the balloon may discard (the e820 RAM ranges). */
struct virtio_balloon_range {
	uint64_t gpa, size;
};
#define VIRTIO_BALLOON_MAX_RANGES 8

struct virtio_balloon_config {
	bool reporting;          /* offer VIRTIO_BALLOON_F_PAGE_REPORTING */
	bool deflate_on_oom;     /* offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	uint64_t target;         /* bytes the guest should give at start */
	const struct virtio_balloon_range *ranges;
	unsigned nr_ranges;      /* <= VIRTIO_BALLOON_MAX_RANGES */
};

/* Returns 0 or -errno (-EINVAL: a target above guest RAM, bad ranges). */
int virtio_balloon_create(const struct virtio_env *env,
			  const struct virtio_balloon_config *cfg,
			  struct virtio_dev **out);

/* Ask the guest to hold @bytes (rounded down to pages) in the balloon; a
 * config change interrupt tells it.  -ERANGE above guest RAM.  Takes the
 * device lock (for the control API; the lab's hook uses it now). */
int virtio_balloon_set_target(struct virtio_dev *d, uint64_t bytes);

/* The last statistics the guest sent (valid == 0: none yet).  Takes the
 * lock. */
void virtio_balloon_get_stats(struct virtio_dev *d, struct virtio_balloon_stats *out);

/* Give the guest its statistics buffer back so that it sends fresh ones
 * (they land in get_stats a moment later); @log: print them with vinfo()
 * when they come.  Takes the lock. */
void virtio_balloon_request_stats(struct virtio_dev *d, bool log);

void virtio_balloon_get_counters(struct virtio_dev *d,
				 struct virtio_balloon_counters *out);

/* Give the host back the pages of [@hva, @hva + @len) (page-aligned):
 * MADV_REMOVE for shared guest RAM (punched out of its memory file), else
 * MADV_DONTNEED.  0 or -errno.  The balloon's discard unless replaced. */
int virtio_balloon_release(void *hva, size_t len);

/* Replace how pages are discarded (tests and fuzz targets record instead
 * of madvise).  The function gets page-aligned host ranges. */
void virtio_balloon_set_discard(struct virtio_dev *d,
				int (*discard)(void *opaque, void *hva, size_t len),
				void *opaque);

/* ---- the pure parts, for unit tests ---- */

/* Host address of guest pages [pfn, pfn + npages) (4 KiB frames) when they
 * all lie in one balloonable range and one RAM region; NULL otherwise
 * (outside RAM, in a hole, below 1 MiB unless a range says so, overflow). */
uint8_t *virtio_balloon_pfn_hva(const struct gmem *m,
				const struct virtio_balloon_range *r, unsigned nr,
				uint64_t pfn, uint64_t npages);

/* The whole pages of host range [hva, hva + len) that are balloonable
 * guest RAM: 0 with *start and *pages set (pages may be 0 for a range smaller
 * than a page), -EINVAL when the range is not inside one balloonable range. */
int virtio_balloon_host_range(const struct gmem *m,
			      const struct virtio_balloon_range *r, unsigned nr,
			      const void *hva, size_t len, uint8_t **start,
			      uint64_t *pages);

/* Decode a statistics buffer (packed { le16 tag; le64 val; } entries) into
 * *st (unknown tags skipped, a partial entry at the end ignored).  Returns
 * the number of entries decoded. */
unsigned virtio_balloon_parse_stats(const uint8_t *buf, size_t len,
				    struct virtio_balloon_stats *st);

#endif
