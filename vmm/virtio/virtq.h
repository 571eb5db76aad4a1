/*
 * Split virtqueues (virtio 1.2, section 2.7), device side.
 *
 * The descriptor table, the available ring and the used ring live in guest
 * memory and are reached only through gmem_ptr().  Everything the guest
 * wrote is read once into a local copy, then checked: ring addresses and
 * alignment, the available index (never more than the queue size ahead),
 * head and next indexes, descriptor buffers (whole range inside one guest
 * RAM region), chain length (at most the queue size and VIRTQ_CHAIN_MAX
 * segments, which also breaks loops), indirect tables (feature negotiated,
 * length a multiple of 16, not nested, not combined with NEXT) and the order
 * of readable before writable buffers.  Any violation marks the queue broken
 * and, when the queue belongs to a device, puts the device in NEEDS_RESET;
 * after that the queue hands out nothing until it is reset.
 *
 * Threading: one thread (the VMM's event loop) owns a queue.  The guest
 * runs concurrently; the barriers in virtq.c order our reads of its
 * writes and its reads of ours.
 */
#ifndef VIREO_VMM_VIRTQ_H
#define VIREO_VMM_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../gmem.h"

#define VIRTQ_MAX_SIZE 32768u
/* Most segments one chain may map; a longer chain is an error.  Linux
 * never builds chains near this (blk uses seg_max + 2). */
#define VIRTQ_CHAIN_MAX 1024u

#define VIRTQ_DESC_F_NEXT     1u
#define VIRTQ_DESC_F_WRITE    2u
#define VIRTQ_DESC_F_INDIRECT 4u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_USED_F_NO_NOTIFY     1u

struct virtio_dev;

/*
 * A popped descriptor chain, as host iovecs.  The device-readable
 * segments come first (iov[0 .. nr_out)), the device-writable ones after
 * them (iov[nr_out .. nr_out + nr_in)); the virtio spec requires that order
 * and virtq_pop() enforces it, so the write flag of segment i is
 * (i >= nr_out).  Zero-length descriptors are dropped.
 */
struct virtq_chain {
	uint16_t head;       /* what to give back to virtq_push() */
	unsigned nr_out;     /* readable segments */
	unsigned nr_in;      /* writable segments */
	uint64_t out_len;    /* total readable bytes */
	uint64_t in_len;     /* total writable bytes */
	struct iovec iov[VIRTQ_CHAIN_MAX];
};

static inline bool virtq_seg_writable(const struct virtq_chain *c, unsigned i)
{
	return i >= c->nr_out;
}

struct virtq {
	/* Set up by the transport before the queue is enabled. */
	uint16_t size;          /* power of two, 1 .. VIRTQ_MAX_SIZE */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t msix_vector;   /* transport's business */
	/* Negotiated features that change ring behaviour. */
	bool event_idx, indirect;

	/* State (virtq_enable() fills it). */
	bool ready;
	bool broken;
	const struct gmem *mem;
	struct virtio_dev *dev; /* owner, for NEEDS_RESET; may be NULL */
	unsigned index;         /* queue number, for messages */
	void *desc;             /* host views of the rings */
	void *avail;
	void *used;
	uint16_t last_avail;    /* next available entry to take */
	uint16_t used_idx;      /* our copy of used->idx */
	uint16_t signalled_used;/* used_idx at the last interrupt */
	bool signalled_valid;
};

/* Forget everything (queue reset / device reset); keeps dev and index. */
void virtq_reset(struct virtq *q);

/*
 * Map the rings (size and addresses already set) and start the queue.
 * Returns 0, or -EINVAL for a bad size, a misaligned ring or a ring not
 * inside guest RAM (the queue is then broken and the device marked).
 */
int virtq_enable(struct virtq *q, const struct gmem *mem);

/*
 * Take the next available chain.  Returns 1 with *c filled, 0 when the
 * ring is empty, -EIO when the guest broke the rules (queue now broken).
 */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/* Give a chain back with @written bytes written into its writable part. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/*
 * The used index guest RAM holds (used->idx), into *@out; false when the
 * queue is not mapped.  For a restored queue it is the saved used_idx
 * unless RAM and device state were taken at different moments (or the
 * guest wrote the device's field).
 */
bool virtq_ram_used_idx(const struct virtq *q, uint16_t *out);

/* Put the last popped chain back, as if it had not been taken. */
void virtq_unpop(struct virtq *q);

/*
 * After one or more virtq_push(): does the guest want an interrupt?
 * Honours VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX.
 */
bool virtq_should_notify(struct virtq *q);

/*
 * Ask the guest not to kick us (while we drain the queue anyway), or to
 * kick again.  virtq_notify_on() returns true when buffers are already
 * waiting, which the caller must then process (the guest may have added
 * them before it saw the request).
 */
void virtq_notify_off(struct virtq *q);
bool virtq_notify_on(struct virtq *q);
/*
 * For a device that needs more buffers than are waiting (virtio-net's
 * receive side with a frame larger than the buffers it has): ask to be
 * kicked when the guest adds the next one, not the next unused one.
 * virtq_notify_on() would name the first waiting buffer, which the guest
 * has already passed, so with EVENT_IDX it would never kick again.
 * Returns true when buffers came in meanwhile (look again).
 */
bool virtq_notify_on_more(struct virtq *q);

/* True when buffers are waiting (false for a broken or disabled queue). */
bool virtq_has_work(struct virtq *q);

/* Copy helpers over a chain's readable / writable part.  They return the
 * number of bytes copied (short when the part is shorter). */
size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off,
			void *buf, size_t len);
size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off,
			 const void *buf, size_t len);

/* The rule of virtio 1.2, 2.7.10: notify when new_idx passed event_idx. */
static inline bool virtq_need_event(uint16_t event_idx, uint16_t new_idx,
				    uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) <
	       (uint16_t)(new_idx - old_idx);
}

#endif
