/* virtio-balloon: see balloon.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vireo/util.h>

#include "balloon.h"

#define PAGE VIRTIO_BALLOON_PAGE
#define STATS_MAX_ENTRIES 64u
#define STATS_ENTRY 10u
#define PFN_BATCH 256u

enum bq_role { BQ_NONE, BQ_INFLATE, BQ_DEFLATE, BQ_STATS, BQ_REPORT };

struct virtio_balloon {
	struct virtio_dev vdev;
	struct virtio_balloon_range range[VIRTIO_BALLOON_MAX_RANGES];
	unsigned nr_ranges;
	uint8_t config[VIRTIO_BALLOON_CONFIG_SIZE];
	enum bq_role role[4];
	/* statistics: the buffer the driver left with us */
	bool stats_held;
	uint16_t stats_head;
	bool stats_log;
	struct virtio_balloon_stats stats;
	struct virtio_balloon_counters cnt;
	int (*discard)(void *opaque, void *hva, size_t len);
	void *discard_opaque;
	/* balloon_madvise: guest RAM takes MADV_REMOVE (1: shared, a
	 * migrated VM's), refuses it (-1: private), or not known yet (0) */
	int ram_remove;
	bool warned_pfn, warned_range;
	struct virtq_chain chain;
};

static struct virtio_balloon *to_balloon(struct virtio_dev *d)
{
	return (struct virtio_balloon *)d;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void set32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- pure helpers ---- */

static bool in_ranges(const struct virtio_balloon_range *r, unsigned nr,
		      uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < nr; i++)
		if (gpa >= r[i].gpa && gpa - r[i].gpa < r[i].size &&
		    len <= r[i].size - (gpa - r[i].gpa))
			return true;
	return false;
}

uint8_t *virtio_balloon_pfn_hva(const struct gmem *m,
				const struct virtio_balloon_range *r, unsigned nr,
				uint64_t pfn, uint64_t npages)
{
	uint64_t gpa, len;

	/* 2^52 frames of 4 KiB is the whole 64-bit space: anything above
	 * overflows the address. */
	if (npages == 0 || pfn >= (1ULL << 52) || npages > (1ULL << 52) - pfn)
		return NULL;
	gpa = pfn * PAGE;
	len = npages * PAGE;
	if (!in_ranges(r, nr, gpa, len))
		return NULL;
	return gmem_ptr(m, gpa, len);
}

int virtio_balloon_host_range(const struct gmem *m,
			      const struct virtio_balloon_range *r, unsigned nr,
			      const void *hva, size_t len, uint8_t **start,
			      uint64_t *pages)
{
	uintptr_t h = (uintptr_t)hva;

	if (len == 0)
		return -EINVAL;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct gmem_region *g = &m->region[i];
		uintptr_t base = (uintptr_t)g->hva;
		uint64_t gpa, first, last;

		if (h < base || h - base >= g->size || len > g->size - (h - base))
			continue;
		gpa = g->gpa + (h - base);
		if (!in_ranges(r, nr, gpa, len))
			return -EINVAL;
		first = VIREO_ALIGN_UP(gpa, (uint64_t)PAGE);
		last = (gpa + len) & ~(uint64_t)(PAGE - 1);
		*start = g->hva + (first - g->gpa);
		*pages = last > first ? (last - first) / PAGE : 0;
		return 0;
	}
	return -EINVAL;
}

unsigned virtio_balloon_parse_stats(const uint8_t *buf, size_t len,
				    struct virtio_balloon_stats *st)
{
	unsigned n = 0;

	for (size_t off = 0; len - off >= STATS_ENTRY && off < len; off += STATS_ENTRY) {
		uint16_t tag = (uint16_t)(buf[off] | buf[off + 1] << 8);
		uint64_t v = 0;

		for (unsigned i = 0; i < 8; i++)
			v |= (uint64_t)buf[off + 2 + i] << (8 * i);
		n++;
		if (tag >= VIRTIO_BALLOON_S_NR)
			continue;
		st->val[tag] = v;
		st->valid |= 1u << tag;
	}
	return n;
}

/* ---- discarding ---- */

int virtio_balloon_release(void *hva, size_t len)
{
	/* Shared memory (a migrated VM's RAM is the memfd it was received
	 * into): MADV_DONTNEED would only unmap it, MADV_REMOVE frees it.
	 * Private memory refuses MADV_REMOVE (EINVAL, or EACCES for a
	 * restored VM's private file mapping). */
	if (madvise(hva, len, MADV_REMOVE) == 0)
		return 0;
	return madvise(hva, len, MADV_DONTNEED) ? -errno : 0;
}

/* virtio_balloon_release, without trying MADV_REMOVE again on each
 * discard once private RAM has refused it. */
static int balloon_madvise(void *opaque, void *hva, size_t len)
{
	struct virtio_balloon *b = opaque;

	if (b->ram_remove >= 0) {
		if (madvise(hva, len, MADV_REMOVE) == 0) {
			b->ram_remove = 1;
			return 0;
		}
		if (b->ram_remove == 0 && (errno == EINVAL || errno == EACCES))
			b->ram_remove = -1;
	}
	return madvise(hva, len, MADV_DONTNEED) ? -errno : 0;
}

static void balloon_discard(struct virtio_balloon *b, uint8_t *hva, uint64_t pages)
{
	int r;

	if (!pages)
		return;
	r = b->discard(b->discard_opaque, hva, (size_t)(pages * PAGE));
	if (r < 0)
		vwarn("%s: cannot give %llu KiB back to the host: %s", b->vdev.name,
		      (unsigned long long)(pages * PAGE / 1024), strerror(-r));
	else
		b->cnt.discarded_bytes += pages * PAGE;
}

static void balloon_bad_pfn(struct virtio_balloon *b, uint64_t pfn)
{
	b->cnt.bad_pfns++;
	if (!b->warned_pfn) {
		vwarn("%s: guest gave page frame 0x%llx, not balloonable RAM; refused "
		      "(further ones are only counted)", b->vdev.name,
		      (unsigned long long)pfn);
		b->warned_pfn = true;
	}
}

/* ---- inflate / deflate ---- */

/* One buffer of PFNs: coalesce contiguous frames, discard each run. */
static void balloon_pfns(struct virtio_balloon *b, bool inflate)
{
	const struct virtq_chain *c = &b->chain;
	uint8_t raw[PFN_BATCH * 4];
	uint8_t *run = NULL;
	uint64_t run_pages = 0, prev = 0;
	uint64_t total = c->out_len;

	if (c->nr_in || total % 4)
		b->cnt.bad_buffers++;
	total &= ~3ULL;
	for (uint64_t off = 0; off < total; ) {
		size_t want = (size_t)VIREO_MIN(total - off, (uint64_t)sizeof(raw));
		size_t got = virtq_chain_read(c, off, raw, want);

		if (got < 4)
			break;
		for (size_t i = 0; i + 4 <= got; i += 4) {
			uint64_t pfn = get32(raw + i);
			uint8_t *h = virtio_balloon_pfn_hva(b->vdev.env->mem, b->range,
							    b->nr_ranges, pfn, 1);

			if (!h) {
				balloon_bad_pfn(b, pfn);
				continue;
			}
			if (inflate)
				b->cnt.inflated_pages++;
			else
				b->cnt.deflated_pages++;
			if (!inflate)
				continue;
			if (run && pfn == prev + 1 && h == run + run_pages * PAGE) {
				run_pages++;
			} else {
				if (run)
					balloon_discard(b, run, run_pages);
				run = h;
				run_pages = 1;
			}
			prev = pfn;
		}
		off += got & ~(size_t)3;
	}
	if (run)
		balloon_discard(b, run, run_pages);
}

/* ---- free page reporting ---- */

static void balloon_report(struct virtio_balloon *b)
{
	const struct virtq_chain *c = &b->chain;

	for (unsigned i = 0; i < c->nr_out + c->nr_in; i++) {
		uint8_t *start;
		uint64_t pages;

		if (virtio_balloon_host_range(b->vdev.env->mem, b->range, b->nr_ranges,
					      c->iov[i].iov_base, c->iov[i].iov_len,
					      &start, &pages)) {
			b->cnt.bad_ranges++;
			if (!b->warned_range) {
				vwarn("%s: guest reported a free range of %zu bytes outside "
				      "balloonable RAM; refused (further ones are only "
				      "counted)", b->vdev.name, c->iov[i].iov_len);
				b->warned_range = true;
			}
			continue;
		}
		balloon_discard(b, start, pages);
		b->cnt.reported_bytes += pages * PAGE;
	}
}

/* ---- statistics ---- */

static void balloon_stats_in(struct virtio_balloon *b, struct virtq *q)
{
	uint8_t buf[STATS_MAX_ENTRIES * STATS_ENTRY];
	struct virtio_balloon_stats st = { 0 };
	size_t len;

	if (b->stats_held) {
		/* A second buffer while we hold one: not what the spec's
		 * driver does; give the old one back. */
		virtq_push(q, b->stats_head, 0);
		b->cnt.bad_buffers++;
	}
	len = virtq_chain_read(&b->chain, 0, buf,
			       (size_t)VIREO_MIN(b->chain.out_len, (uint64_t)sizeof(buf)));
	if (b->chain.nr_in || b->chain.out_len % STATS_ENTRY)
		b->cnt.bad_buffers++;
	virtio_balloon_parse_stats(buf, len, &st);
	st.updates = b->stats.updates + 1;
	st.when_ns = vtime_ns();
	b->stats = st;
	b->stats_held = true;
	b->stats_head = b->chain.head;
	if (b->stats_log) {
		b->stats_log = false;
		vinfo("%s: guest memory: total %llu KiB, free %llu KiB, available %llu "
		      "KiB; balloon %u pages (target %u)", b->vdev.name,
		      (unsigned long long)(st.val[VIRTIO_BALLOON_S_MEMTOT] / 1024),
		      (unsigned long long)(st.val[VIRTIO_BALLOON_S_MEMFREE] / 1024),
		      (unsigned long long)(st.val[VIRTIO_BALLOON_S_AVAIL] / 1024),
		      b->cnt.actual_pages, b->cnt.target_pages);
	}
}

/* ---- queues ---- */

static void balloon_queue_notify(struct virtio_dev *d, unsigned qi)
{
	struct virtio_balloon *b = to_balloon(d);
	struct virtq *q = &d->vq[qi];
	enum bq_role role = qi < 4 ? b->role[qi] : BQ_NONE;
	unsigned n = 0;
	bool pushed = false;

	if (role == BQ_NONE || !q->ready)
		return;
	for (;;) {
		if (n == VIRTIO_BALLOON_WAKE_CHAINS) {
			if (virtq_has_work(q))
				virtio_dev_yield(d, qi);
			break;
		}
		if (virtq_pop(q, &b->chain) <= 0)
			break;
		n++;
		switch (role) {
		case BQ_INFLATE: balloon_pfns(b, true); break;
		case BQ_DEFLATE: balloon_pfns(b, false); break;
		case BQ_REPORT: balloon_report(b); break;
		case BQ_STATS:
			balloon_stats_in(b, q);
			continue;   /* kept until we want new statistics */
		default: break;
		}
		virtq_push(q, b->chain.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_dev_queue_interrupt(d, qi);
}

static int balloon_activate(struct virtio_dev *d)
{
	struct virtio_balloon *b = to_balloon(d);
	unsigned qi = 2;

	b->role[0] = BQ_INFLATE;
	b->role[1] = BQ_DEFLATE;
	b->role[2] = b->role[3] = BQ_NONE;
	if (virtio_dev_has(d, VIRTIO_BALLOON_F_STATS_VQ))
		b->role[qi++] = BQ_STATS;
	if (virtio_dev_has(d, VIRTIO_BALLOON_F_FREE_PAGE_HINT))
		qi++;   /* never offered; keeps the numbering right */
	if (virtio_dev_has(d, VIRTIO_BALLOON_F_PAGE_REPORTING) && qi < 4)
		b->role[qi] = BQ_REPORT;
	/* Buffers added before DRIVER_OK (Linux's statistics buffer) were
	 * kicked while the device was not running. */
	for (unsigned i = 0; i < 4; i++)
		if (d->vq[i].ready)
			balloon_queue_notify(d, i);
	return 0;
}

static void balloon_reset(struct virtio_dev *d)
{
	struct virtio_balloon *b = to_balloon(d);

	b->stats_held = false;
	b->stats_log = false;
	memset(b->role, 0, sizeof(b->role));
	set32(b->config + 4, 0);
	b->cnt.actual_pages = 0;
}

static void balloon_config_read(struct virtio_dev *d, uint32_t off, void *buf,
				uint32_t len)
{
	memcpy(buf, to_balloon(d)->config + off, len);
}

static void balloon_config_write(struct virtio_dev *d, uint32_t off,
				 const void *buf, uint32_t len)
{
	struct virtio_balloon *b = to_balloon(d);

	/* actual (4..7) and poison_val (12..15) are the driver's. */
	for (uint32_t i = 0; i < len; i++) {
		uint32_t o = off + i;

		if ((o >= 4 && o < 8) || o >= 12)
			b->config[o] = ((const uint8_t *)buf)[i];
	}
	if (off < 8 && off + len > 4) {
		uint32_t actual = get32(b->config + 4);

		if (actual != b->cnt.actual_pages)
			vdebug("%s: guest holds %u pages in the balloon (target %u)",
			       d->name, actual, b->cnt.target_pages);
		b->cnt.actual_pages = actual;
	}
}

/* ---- save and restore ---- */

#define BALLOON_STATE_VERSION 1u

/* The model's state in the save file (little-endian x86-64 only, as the
 * state file). */
struct balloon_state {
	uint8_t version;         /* BALLOON_STATE_VERSION */
	uint8_t stats_held;      /* the device keeps a statistics buffer */
	uint16_t stats_head;     /* its descriptor */
	uint32_t target_pages;   /* num_pages */
	uint32_t actual_pages;   /* what the driver said it holds */
	uint32_t stats_valid;
	uint8_t config[VIRTIO_BALLOON_CONFIG_SIZE];
	uint64_t stats_val[VIRTIO_BALLOON_S_NR];
	uint64_t stats_updates;
	uint64_t inflated_pages, deflated_pages, reported_bytes, discarded_bytes;
};
_Static_assert(sizeof(struct balloon_state) == 152, "balloon state layout");

static size_t balloon_save(struct virtio_dev *d, void *buf, size_t len)
{
	const struct virtio_balloon *b = to_balloon(d);
	struct balloon_state st = {
		.version = BALLOON_STATE_VERSION, .stats_held = b->stats_held,
		.stats_head = b->stats_head, .target_pages = b->cnt.target_pages,
		.actual_pages = b->cnt.actual_pages, .stats_valid = b->stats.valid,
		.stats_updates = b->stats.updates, .inflated_pages = b->cnt.inflated_pages,
		.deflated_pages = b->cnt.deflated_pages, .reported_bytes = b->cnt.reported_bytes,
		.discarded_bytes = b->cnt.discarded_bytes,
	};

	memcpy(st.config, b->config, sizeof(st.config));
	memcpy(st.stats_val, b->stats.val, sizeof(st.stats_val));
	if (buf && len >= sizeof(st))
		memcpy(buf, &st, sizeof(st));
	return sizeof(st);
}

static int balloon_restore(struct virtio_dev *d, const void *buf, size_t len)
{
	struct virtio_balloon *b = to_balloon(d);
	struct balloon_state st;
	unsigned qi;

	if (len != sizeof(st))
		return -EINVAL;
	memcpy(&st, buf, sizeof(st));
	for (qi = 0; qi < 4 && b->role[qi] != BQ_STATS; qi++)
		;
	if (st.version != BALLOON_STATE_VERSION || st.stats_held > 1 ||
	    st.target_pages > d->env->mem->ram_size / PAGE ||
	    get32(st.config) != st.target_pages || get32(st.config + 4) != st.actual_pages ||
	    st.stats_valid >> VIRTIO_BALLOON_S_NR)
		return -EINVAL;
	/* A held statistics buffer: only on a running device's statistics
	 * queue, a descriptor of that ring. */
	if (st.stats_held && (qi == 4 || !virtio_dev_running(d) || !d->vq[qi].ready ||
			      st.stats_head >= d->vq[qi].size))
		return -EINVAL;
	memcpy(b->config, st.config, sizeof(b->config));
	b->cnt.target_pages = st.target_pages;
	b->cnt.actual_pages = st.actual_pages;
	b->cnt.inflated_pages = st.inflated_pages;
	b->cnt.deflated_pages = st.deflated_pages;
	b->cnt.reported_bytes = st.reported_bytes;
	b->cnt.discarded_bytes = st.discarded_bytes;
	b->stats_held = st.stats_held;
	b->stats_head = st.stats_head;
	b->stats_log = false;
	memset(&b->stats, 0, sizeof(b->stats));
	memcpy(b->stats.val, st.stats_val, sizeof(b->stats.val));
	b->stats.valid = st.stats_valid;
	b->stats.updates = st.stats_updates;
	/* when_ns is this process's clock: "received at restore". */
	b->stats.when_ns = st.stats_updates ? vtime_ns() : 0;
	return 0;
}

static void balloon_destroy(struct virtio_dev *d)
{
	virtio_dev_fini(d);
	free(to_balloon(d));
}

static const struct virtio_dev_ops balloon_ops = {
	.device_id = VIRTIO_ID_BALLOON,
	.config_size = VIRTIO_BALLOON_CONFIG_SIZE,
	.nr_queues = 4,
	.max_queue_size = VIRTIO_BALLOON_QUEUE_SIZE,
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.queue_notify = balloon_queue_notify,
	.activate = balloon_activate,
	.reset = balloon_reset,
	.save = balloon_save,
	.restore = balloon_restore,
	.destroy = balloon_destroy,
};

static uint32_t balloon_pages(uint64_t bytes)
{
	return (uint32_t)VIREO_MIN(bytes / PAGE, (uint64_t)UINT32_MAX);
}

int virtio_balloon_create(const struct virtio_env *env,
			  const struct virtio_balloon_config *cfg,
			  struct virtio_dev **out)
{
	struct virtio_balloon *b;
	uint64_t features = VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ);

	if (cfg->nr_ranges > VIRTIO_BALLOON_MAX_RANGES || cfg->target > env->mem->ram_size)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (cfg->reporting)
		features |= VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING);
	if (cfg->deflate_on_oom)
		features |= VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
	virtio_dev_init(&b->vdev, &balloon_ops, env, "virtio-balloon", features);
	memcpy(b->range, cfg->ranges, cfg->nr_ranges * sizeof(*cfg->ranges));
	b->nr_ranges = cfg->nr_ranges;
	b->cnt.target_pages = balloon_pages(cfg->target);
	set32(b->config, b->cnt.target_pages);
	b->discard = balloon_madvise;
	b->discard_opaque = b;
	*out = &b->vdev;
	return 0;
}

int virtio_balloon_set_target(struct virtio_dev *d, uint64_t bytes)
{
	struct virtio_balloon *b = to_balloon(d);

	if (bytes > d->env->mem->ram_size)
		return -ERANGE;
	virtio_dev_lock(d);
	b->cnt.target_pages = balloon_pages(bytes);
	set32(b->config, b->cnt.target_pages);
	virtio_dev_config_changed(d);
	virtio_dev_unlock(d);
	vinfo("%s: target %llu MiB (%u pages)", d->name,
	      (unsigned long long)(bytes >> 20), b->cnt.target_pages);
	return 0;
}

void virtio_balloon_get_stats(struct virtio_dev *d, struct virtio_balloon_stats *out)
{
	virtio_dev_lock(d);
	*out = to_balloon(d)->stats;
	virtio_dev_unlock(d);
}

void virtio_balloon_request_stats(struct virtio_dev *d, bool log)
{
	struct virtio_balloon *b = to_balloon(d);
	unsigned qi;

	virtio_dev_lock(d);
	b->stats_log = log;
	for (qi = 0; qi < 4 && b->role[qi] != BQ_STATS; qi++)
		;
	if (qi < 4 && b->stats_held && virtio_dev_running(d) && d->vq[qi].ready &&
	    !d->vq[qi].broken) {
		b->stats_held = false;
		virtq_push(&d->vq[qi], b->stats_head, 0);
		virtio_dev_queue_interrupt(d, qi);
	}
	virtio_dev_unlock(d);
}

void virtio_balloon_get_counters(struct virtio_dev *d,
				 struct virtio_balloon_counters *out)
{
	virtio_dev_lock(d);
	*out = to_balloon(d)->cnt;
	virtio_dev_unlock(d);
}

void virtio_balloon_set_discard(struct virtio_dev *d,
				int (*discard)(void *opaque, void *hva, size_t len),
				void *opaque)
{
	struct virtio_balloon *b = to_balloon(d);

	b->discard = discard ? discard : balloon_madvise;
	b->discard_opaque = discard ? opaque : b;
}
