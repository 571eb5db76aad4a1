/* Split virtqueue, device side: see virtq.h for the rules it enforces. */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <vireo/util.h>

#include "virtio.h"
#include "virtq.h"

/* Ring layouts (virtio 1.2, 2.7.5 - 2.7.8), all little-endian. */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];   /* then uint16_t used_event */
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[];   /* then uint16_t avail_event */
};

/* The guest writes these concurrently: every read is a single load. */
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define virtq_mb()  __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define virtq_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define virtq_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

static struct vring_avail *q_avail(const struct virtq *q) { return q->avail; }
static struct vring_used *q_used(const struct virtq *q) { return q->used; }

static uint16_t *q_used_event(const struct virtq *q)
{
	return &q_avail(q)->ring[q->size];
}

static uint16_t *q_avail_event(const struct virtq *q)
{
	return (uint16_t *)&q_used(q)->ring[q->size];
}

/* Read one descriptor from a table with a single load per field. */
static void desc_load(const struct vring_desc *t, unsigned i,
		      struct vring_desc *d)
{
	d->addr = le64toh(LOAD(&t[i].addr));
	d->len = le32toh(LOAD(&t[i].len));
	d->flags = le16toh(LOAD(&t[i].flags));
	d->next = le16toh(LOAD(&t[i].next));
}

/* The VMM's writes into guest RAM while a migration logs them
 * (gmem.h): a store into the used ring's structure. */
static void q_mark(const struct virtq *q, const void *p, uint64_t len)
{
	gmem_mark_dirty_hva(q->mem, p, len);
}

/*
 * virtq_push() on a chain: the device wrote (some of) its writable
 * buffers; mark them all.  The chain is walked again from the descriptor
 * table with the same bounds as virtq_pop() (at most the queue size of
 * ring descriptors, one indirect table of at most the queue size); a
 * driver that changed descriptors it had handed over only loses its own
 * data, never makes this walk leave guest RAM or loop.
 */
static void q_mark_chain(const struct virtq *q, uint16_t head)
{
	const struct vring_desc *t = q->desc;
	unsigned i = head, budget = q->size, count = q->size;
	bool in_indirect = false;

	if (head >= q->size)
		return;
	while (budget--) {
		struct vring_desc d;

		desc_load(t, i, &d);
		if ((d.flags & VIRTQ_DESC_F_INDIRECT) && !in_indirect) {
			if (!d.len || d.len % 16 || d.len / 16 > q->size || (d.addr & 15))
				return;
			t = gmem_ptr(q->mem, d.addr, d.len);
			if (!t)
				return;
			count = d.len / 16;
			budget = count;
			in_indirect = true;
			i = 0;
			continue;
		}
		/* as virtq_pop took it: inside one region of guest RAM */
		if ((d.flags & VIRTQ_DESC_F_WRITE) && d.len && gmem_ptr(q->mem, d.addr, d.len))
			gmem_mark_dirty(q->mem, d.addr, d.len);
		if (!(d.flags & VIRTQ_DESC_F_NEXT) || d.next >= count)
			return;
		i = d.next;
	}
}

VIREO_PRINTF(2, 3)
static void virtq_fail(struct virtq *q, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	q->broken = true;
	if (q->dev)
		virtio_dev_fail(q->dev, "queue %u: %s", q->index, msg);
}

void virtq_reset(struct virtq *q)
{
	struct virtio_dev *dev = q->dev;
	unsigned index = q->index;

	memset(q, 0, sizeof(*q));
	q->dev = dev;
	q->index = index;
	q->msix_vector = 0xffff;
}

int virtq_enable(struct virtq *q, const struct gmem *mem)
{
	uint64_t n = q->size;

	q->mem = mem;
	q->ready = false;
	if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1))) {
		virtq_fail(q, "queue size %" PRIu64 " is not a power of two up to %u",
			   n, VIRTQ_MAX_SIZE);
		return -EINVAL;
	}
	if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3)) {
		virtq_fail(q, "misaligned ring (desc 0x%" PRIx64 ", avail 0x%" PRIx64
			   ", used 0x%" PRIx64 ")", q->desc_gpa, q->avail_gpa,
			   q->used_gpa);
		return -EINVAL;
	}
	q->desc = gmem_ptr(mem, q->desc_gpa, 16 * n);
	q->avail = gmem_ptr(mem, q->avail_gpa, 6 + 2 * n);
	q->used = gmem_ptr(mem, q->used_gpa, 6 + 8 * n);
	if (!q->desc || !q->avail || !q->used) {
		virtq_fail(q, "ring outside guest RAM (desc 0x%" PRIx64 ", avail 0x%"
			   PRIx64 ", used 0x%" PRIx64 ", size %" PRIu64 ")",
			   q->desc_gpa, q->avail_gpa, q->used_gpa, n);
		q->desc = q->avail = q->used = NULL;
		return -EINVAL;
	}
	/* Both indexes start at 0 (2.7.13.1 and the reset rules); the
	 * driver zeroed the rings it handed us. */
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled_used = 0;
	q->signalled_valid = false;
	q->broken = false;
	q->ready = true;
	return 0;
}

static bool q_usable(const struct virtq *q)
{
	return q->ready && !q->broken;
}

bool virtq_has_work(struct virtq *q)
{
	uint16_t avail;

	if (!q_usable(q))
		return false;
	avail = le16toh(LOAD(&q_avail(q)->idx));
	return avail != q->last_avail;
}

static int chain_add(struct virtq *q, struct virtq_chain *c,
		     const struct vring_desc *d)
{
	unsigned n = c->nr_out + c->nr_in;
	void *p;

	if (d->len == 0)
		return 0;
	if (d->flags & VIRTQ_DESC_F_WRITE) {
		c->nr_in++;
		c->in_len += d->len;
	} else {
		if (c->nr_in) {
			virtq_fail(q, "chain %u: readable buffer after a writable one",
				   c->head);
			return -EIO;
		}
		c->nr_out++;
		c->out_len += d->len;
	}
	if (n >= VIRTQ_CHAIN_MAX) {
		virtq_fail(q, "chain %u: more than %u buffers", c->head,
			   VIRTQ_CHAIN_MAX);
		return -EIO;
	}
	p = gmem_ptr(q->mem, d->addr, d->len);
	if (!p) {
		virtq_fail(q, "chain %u: buffer 0x%" PRIx64 "+%u outside guest RAM",
			   c->head, d->addr, d->len);
		return -EIO;
	}
	c->iov[n].iov_base = p;
	c->iov[n].iov_len = d->len;
	return 0;
}

/*
 * Walk an indirect table (virtio 1.2, 2.7.5.3).  The table may hold up to
 * queue-size entries of its own: Linux's virtio-blk fills one with seg_max
 * data segments plus header and status (seg_max + 2 == queue size), on top
 * of the ring descriptor that points at it.  The chain's total is still
 * capped by VIRTQ_CHAIN_MAX in chain_add().
 */
static int chain_indirect(struct virtq *q, struct virtq_chain *c,
			  const struct vring_desc *ind)
{
	const struct vring_desc *t;
	struct vring_desc d;
	unsigned count, i, seen;

	if (!q->indirect) {
		virtq_fail(q, "chain %u: indirect descriptor without INDIRECT_DESC",
			   c->head);
		return -EIO;
	}
	if (ind->flags & VIRTQ_DESC_F_NEXT) {
		virtq_fail(q, "chain %u: indirect descriptor with NEXT", c->head);
		return -EIO;
	}
	if (ind->len == 0 || ind->len % 16) {
		virtq_fail(q, "chain %u: indirect table length %u is not a non-zero "
			   "multiple of 16", c->head, ind->len);
		return -EIO;
	}
	count = ind->len / 16;
	if (count > q->size) {
		virtq_fail(q, "chain %u: indirect table of %u entries exceeds the "
			   "queue size %u", c->head, count, q->size);
		return -EIO;
	}
	if (ind->addr & 15) {
		virtq_fail(q, "chain %u: misaligned indirect table 0x%" PRIx64,
			   c->head, ind->addr);
		return -EIO;
	}
	t = gmem_ptr(q->mem, ind->addr, ind->len);
	if (!t) {
		virtq_fail(q, "chain %u: indirect table 0x%" PRIx64 "+%u outside "
			   "guest RAM", c->head, ind->addr, ind->len);
		return -EIO;
	}
	i = 0;
	for (seen = 0;; seen++) {
		if (seen >= count) {
			virtq_fail(q, "chain %u: indirect chain loops", c->head);
			return -EIO;
		}
		desc_load(t, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			virtq_fail(q, "chain %u: indirect table inside an indirect "
				   "table", c->head);
			return -EIO;
		}
		if (chain_add(q, c, &d) < 0)
			return -EIO;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= count) {
			virtq_fail(q, "chain %u: indirect next %u beyond the table of %u",
				   c->head, d.next, count);
			return -EIO;
		}
		i = d.next;
	}
	return 0;
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	const struct vring_desc *table;
	struct vring_desc d;
	uint16_t avail_idx, head;
	unsigned i, budget;

	if (!q_usable(q))
		return q->broken ? -EIO : 0;
	avail_idx = le16toh(LOAD(&q_avail(q)->idx));
	if (avail_idx == q->last_avail) {
		if (!q->event_idx)
			return 0;
		/* With EVENT_IDX the driver kicks only when it passes
		 * avail_event: ask for a kick for the next entry, then look
		 * again in case it was added before the driver saw that. */
		STORE(q_avail_event(q), htole16(q->last_avail));
		q_mark(q, q_avail_event(q), 2);
		virtq_mb();
		avail_idx = le16toh(LOAD(&q_avail(q)->idx));
		if (avail_idx == q->last_avail)
			return 0;
	}
	if ((uint16_t)(avail_idx - q->last_avail) > q->size) {
		virtq_fail(q, "available index jumped from %u to %u (queue size %u)",
			   q->last_avail, avail_idx, q->size);
		return -EIO;
	}
	/* The ring entry must be read after the index that published it. */
	virtq_rmb();
	head = le16toh(LOAD(&q_avail(q)->ring[q->last_avail & (q->size - 1)]));
	if (head >= q->size) {
		virtq_fail(q, "head index %u beyond the queue size %u", head, q->size);
		return -EIO;
	}
	c->head = head;
	c->nr_out = c->nr_in = 0;
	c->out_len = c->in_len = 0;

	table = q->desc;
	budget = q->size;
	i = head;
	for (;;) {
		if (budget == 0) {
			virtq_fail(q, "chain %u is longer than the queue size %u "
				   "(a loop?)", head, q->size);
			return -EIO;
		}
		budget--;
		desc_load(table, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (chain_indirect(q, c, &d) < 0)
				return -EIO;
			break;
		}
		if (chain_add(q, c, &d) < 0)
			return -EIO;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= q->size) {
			virtq_fail(q, "chain %u: next index %u beyond the queue size %u",
				   head, d.next, q->size);
			return -EIO;
		}
		i = d.next;
	}
	q->last_avail++;
	return 1;
}

bool virtq_ram_used_idx(const struct virtq *q, uint16_t *out)
{
	if (!q->ready || !q->used)
		return false;
	*out = le16toh(LOAD(&q_used(q)->idx));
	return true;
}

void virtq_unpop(struct virtq *q)
{
	q->last_avail--;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	struct vring_used *u;
	struct vring_used_elem *e;

	if (!q_usable(q))
		return;
	u = q_used(q);
	e = &u->ring[q->used_idx & (q->size - 1)];
	STORE(&e->id, htole32(head));
	STORE(&e->len, htole32(written));
	q->used_idx++;
	/* The element must be visible before the index that publishes it. */
	virtq_wmb();
	STORE(&u->idx, htole16(q->used_idx));
	if (__atomic_load_n(&q->mem->dirty, __ATOMIC_ACQUIRE)) {
		q_mark_chain(q, head);
		q_mark(q, e, sizeof(*e));
		q_mark(q, &u->idx, sizeof(u->idx));
	}
}

bool virtq_should_notify(struct virtq *q)
{
	uint16_t old, event;
	bool valid;

	if (!q_usable(q))
		return false;
	/* Our used->idx store must be visible before we read the guest's
	 * suppression state, or both sides may wait for each other. */
	virtq_mb();
	if (!q->event_idx)
		return !(le16toh(LOAD(&q_avail(q)->flags)) &
			 VIRTQ_AVAIL_F_NO_INTERRUPT);
	old = q->signalled_used;
	valid = q->signalled_valid;
	event = le16toh(LOAD(q_used_event(q)));
	q->signalled_used = q->used_idx;
	q->signalled_valid = true;
	return !valid || virtq_need_event(event, q->used_idx, old);
}

void virtq_notify_off(struct virtq *q)
{
	if (!q_usable(q) || q->event_idx)
		return; /* with EVENT_IDX, not moving avail_event is enough */
	STORE(&q_used(q)->flags, htole16(VIRTQ_USED_F_NO_NOTIFY));
	q_mark(q, &q_used(q)->flags, 2);
}

bool virtq_notify_on(struct virtq *q)
{
	if (!q_usable(q))
		return false;
	if (q->event_idx) {
		STORE(q_avail_event(q), htole16(q->last_avail));
		q_mark(q, q_avail_event(q), 2);
	} else {
		STORE(&q_used(q)->flags, 0);
		q_mark(q, &q_used(q)->flags, 2);
	}
	/* Publish the request before looking at avail->idx again. */
	virtq_mb();
	return virtq_has_work(q);
}

bool virtq_notify_on_more(struct virtq *q)
{
	uint16_t seen;

	if (!q_usable(q))
		return false;
	seen = le16toh(LOAD(&q_avail(q)->idx));
	if (q->event_idx) {
		STORE(q_avail_event(q), htole16(seen));
		q_mark(q, q_avail_event(q), 2);
	} else {
		STORE(&q_used(q)->flags, 0);
		q_mark(q, &q_used(q)->flags, 2);
	}
	virtq_mb();
	return le16toh(LOAD(&q_avail(q)->idx)) != seen;
}

size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off,
			void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < c->nr_out && done < len; i++) {
		const struct iovec *v = &c->iov[i];
		size_t n;

		if (off >= v->iov_len) {
			off -= v->iov_len;
			continue;
		}
		n = VIREO_MIN(v->iov_len - off, len - done);
		memcpy((char *)buf + done, (char *)v->iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off,
			 const void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = c->nr_out; i < c->nr_out + c->nr_in && done < len; i++) {
		const struct iovec *v = &c->iov[i];
		size_t n;

		if (off >= v->iov_len) {
			off -= v->iov_len;
			continue;
		}
		n = VIREO_MIN(v->iov_len - off, len - done);
		memcpy((char *)v->iov_base + off, (const char *)buf + done, n);
		done += n;
		off = 0;
	}
	return done;
}
