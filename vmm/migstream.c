#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migstream.h"

static int mig_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int mig_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *mig_rec_name(uint32_t type)
{
	switch (type) {
	case MIG_REC_END: return "end";
	case MIG_REC_CONFIG: return "config";
	case MIG_REC_PAGES: return "pages";
	case MIG_REC_ZERO: return "zero";
	case MIG_REC_STATE: return "state";
	case MIG_REC_STOP: return "stop";
	case MIG_REC_SYNC: return "sync";
	default: return "unknown";
	}
}

void mig_rx_init(struct mig_rx *rx, const struct mig_rx_ops *ops, void *opaque)
{
	memset(rx, 0, sizeof(*rx));
	rx->ops = ops;
	rx->opaque = opaque;
	rx->phase = MIG_RX_HEADER;
}

void mig_rx_free(struct mig_rx *rx)
{
	free(rx->written);
	rx->written = NULL;
	free(rx->state);
	rx->state = NULL;
	rx->state_len = 0;
	memset(&rx->st, 0, sizeof(rx->st));
}

int mig_rx_header(struct mig_rx *rx, const void *hdr, char *err, size_t errlen)
{
	struct mig_hdr h;

	memcpy(&h, hdr, sizeof(h));
	if (rx->phase != MIG_RX_HEADER)
		return mig_err(err, errlen, "a second stream header");
	if (memcmp(h.magic, MIG_MAGIC, sizeof(h.magic)))
		return mig_err(err, errlen, "not a vireo migration stream (wrong magic)");
	if (h.version != MIG_VERSION)
		return mig_err(err, errlen, "stream version %u, this vireo-vmm reads version %u",
			       h.version, MIG_VERSION);
	if (h.reserved)
		return mig_err(err, errlen, "stream header: reserved field 0x%x", h.reserved);
	rx->phase = MIG_RX_CONFIG;
	return 0;
}

int mig_check_config(const struct vstate_config *c, char *err, size_t errlen)
{
	char e[200];

	if (vstate_check_config(c, e, sizeof(e)))
		return mig_err(err, errlen, "%s", e);
	if (c->memory_file_size > MIG_MAX_MEMORY)
		return mig_err(err, errlen, "config: %llu bytes of guest RAM (at most %llu)",
			       (unsigned long long)c->memory_file_size,
			       (unsigned long long)MIG_MAX_MEMORY);
	return 0;
}

int64_t mig_rx_record_len(struct mig_rx *rx, const struct mig_rec_hdr *h, char *err,
			  size_t errlen)
{
	const char *n = mig_rec_name(h->type);
	bool ok;

	if (h->reserved)
		return mig_err(err, errlen, "record %llu (%s): reserved field 0x%x",
			       (unsigned long long)rx->records, n, h->reserved);
	switch (h->type) {
	case MIG_REC_CONFIG:
		if (rx->phase != MIG_RX_CONFIG)
			return mig_err(err, errlen, "record %llu: config %s",
				       (unsigned long long)rx->records,
				       rx->phase == MIG_RX_HEADER ? "before the header" : "repeated");
		ok = h->len == sizeof(struct vstate_config);
		break;
	case MIG_REC_PAGES:
	case MIG_REC_ZERO:
	case MIG_REC_STATE:
	case MIG_REC_SYNC:
		if (rx->phase != MIG_RX_MEMORY)
			return mig_err(err, errlen, "record %llu: %s %s", (unsigned long long)rx->records,
				       n, rx->phase < MIG_RX_MEMORY ? "before the config"
								    : "after the state");
		if (h->type == MIG_REC_STATE)
			ok = h->len >= sizeof(struct vstate_file_hdr) && h->len <= MIG_MAX_RECORD;
		else if (h->type == MIG_REC_ZERO)
			ok = h->len == sizeof(struct mig_pages_hdr);
		else if (h->type == MIG_REC_SYNC)
			ok = h->len == 0;
		else
			ok = h->len > sizeof(struct mig_pages_hdr) &&
			     h->len <= sizeof(struct mig_pages_hdr) + MIG_MAX_PAGES * MIG_PAGE;
		break;
	case MIG_REC_END:
		if (rx->phase != MIG_RX_END)
			return mig_err(err, errlen, "record %llu: end before the state",
				       (unsigned long long)rx->records);
		ok = h->len == 0;
		break;
	case MIG_REC_STOP:
		if (rx->phase != MIG_RX_END || rx->stop_ns)
			return mig_err(err, errlen, "record %llu: stop time %s",
				       (unsigned long long)rx->records,
				       rx->phase != MIG_RX_END ? "before the state" : "repeated");
		ok = h->len == sizeof(uint64_t);
		break;
	default:
		return mig_err(err, errlen, "record %llu: unknown type %u",
			       (unsigned long long)rx->records, h->type);
	}
	if (!ok)
		return mig_err(err, errlen, "record %llu (%s): wrong length %u",
			       (unsigned long long)rx->records, n, h->len);
	return h->len;
}

/* A PAGES or ZERO record's page header: the run's place in the memory
 * file (@*off) and length (@*len), within one region of guest RAM. */
static int mig_rx_run(struct mig_rx *rx, const struct mig_rec_hdr *h, const void *p,
		      uint64_t *off, uint64_t *len, char *err, size_t errlen)
{
	struct mig_pages_hdr ph;

	memcpy(&ph, p, sizeof(ph));
	if (ph.reserved || ph.count < 1 || ph.count > MIG_MAX_PAGES || ph.gpa % MIG_PAGE)
		return mig_err(err, errlen, "record %llu (%s): bad page run (address 0x%llx, "
			       "%u pages)", (unsigned long long)rx->records, mig_rec_name(h->type),
			       (unsigned long long)ph.gpa, ph.count);
	*len = (uint64_t)ph.count * MIG_PAGE;
	if (h->type == MIG_REC_PAGES && h->len != sizeof(ph) + *len)
		return mig_err(err, errlen, "record %llu (pages): %u pages in %u bytes",
			       (unsigned long long)rx->records, ph.count, h->len);
	for (unsigned i = 0; i < rx->config.nr_regions; i++) {
		const struct vstate_region *r = &rx->config.region[i];

		if (ph.gpa < r->gpa || ph.gpa - r->gpa >= r->size ||
		    *len > r->size - (ph.gpa - r->gpa))
			continue;
		*off = r->file_offset + (ph.gpa - r->gpa);
		return 0;
	}
	return mig_err(err, errlen, "record %llu (%s): pages 0x%llx+%u outside guest RAM",
		       (unsigned long long)rx->records, mig_rec_name(h->type),
		       (unsigned long long)ph.gpa, ph.count);
}

#define MIG_BIT(p) (1ull << ((p) % 64))

/* A ZERO record: the pages a PAGES record wrote are cleared; the others
 * are zero already and are not touched (nor allocated). */
static void mig_rx_zero(struct mig_rx *rx, uint64_t off, uint64_t len)
{
	for (uint64_t p = off / MIG_PAGE; p < (off + len) / MIG_PAGE; p++) {
		uint64_t *w = &rx->written[p / 64];

		if (!*w) {
			p |= 63;    /* none of this word's pages */
			continue;
		}
		if (*w & MIG_BIT(p)) {
			memset(rx->mem + p * MIG_PAGE, 0, MIG_PAGE);
			*w &= ~MIG_BIT(p);
		}
	}
	rx->zero_pages += len / MIG_PAGE;
}

static void mig_rx_mark(struct mig_rx *rx, uint64_t off, uint64_t len)
{
	for (uint64_t p = off / MIG_PAGE; p < (off + len) / MIG_PAGE; p++)
		rx->written[p / 64] |= MIG_BIT(p);
	rx->pages += len / MIG_PAGE;
}

int mig_rx_pages_dst(struct mig_rx *rx, const struct mig_rec_hdr *h, const void *ph,
		     uint8_t **dst, size_t *len, char *err, size_t errlen)
{
	uint64_t off, l;
	int r;

	if (h->type != MIG_REC_PAGES || rx->phase != MIG_RX_MEMORY ||
	    h->len <= sizeof(struct mig_pages_hdr))
		return mig_err(err, errlen, "record %llu: not a page record here",
			       (unsigned long long)rx->records);
	if (mig_rec_crc(h->type, ph, h->len) != h->crc)
		return mig_err(err, errlen, "record %llu (pages): checksum mismatch",
			       (unsigned long long)rx->records);
	r = mig_rx_run(rx, h, ph, &off, &l, err, errlen);
	if (r)
		return r;
	mig_rx_mark(rx, off, l);
	*dst = rx->mem + off;
	*len = (size_t)l;
	rx->records++;
	return 0;
}

static int mig_rx_state(struct mig_rx *rx, const struct mig_rec_hdr *h, const void *p,
			char *err, size_t errlen)
{
	char e[200];

	rx->state = aligned_alloc(8, ((size_t)h->len + 7) & ~(size_t)7);
	if (!rx->state)
		return mig_err(err, errlen, "out of memory for the state (%u bytes)", h->len);
	memcpy(rx->state, p, h->len);
	rx->state_len = h->len;
	if (vstate_parse(rx->state, rx->state_len, &rx->st, e, sizeof(e)))
		return mig_err(err, errlen, "state: %s", e);
	/* A snapshot's section would have the target revert its disks to an
	 * internal snapshot; the source never sends one. */
	if (rx->st.snapshot)
		return mig_err(err, errlen, "state: a snapshot section (a migration has none)");
	if (memcmp(rx->st.config, &rx->config, sizeof(rx->config)))
		return mig_err(err, errlen, "state: its configuration differs from the stream's");
	return 0;
}

int mig_rx_record(struct mig_rx *rx, const struct mig_rec_hdr *h, const void *payload,
		  char *err, size_t errlen)
{
	char e[200];
	int r = 0;

	if (mig_rec_crc(h->type, payload, h->len) != h->crc)
		return mig_err(err, errlen, "record %llu (%s): checksum mismatch",
			       (unsigned long long)rx->records, mig_rec_name(h->type));
	switch (h->type) {
	case MIG_REC_CONFIG:
		memcpy(&rx->config, payload, sizeof(rx->config));
		if (mig_check_config(&rx->config, e, sizeof(e)))
			return mig_err(err, errlen, "record %llu: %s", (unsigned long long)rx->records, e);
		rx->written = calloc((rx->config.memory_file_size / MIG_PAGE + 63) / 64, 8);
		if (!rx->written)
			return mig_err(err, errlen, "out of memory for the page bitmap");
		rx->mem = rx->ops->config(rx->opaque, &rx->config, e, sizeof(e));
		if (!rx->mem)
			return mig_err(err, errlen, "%s", e);
		rx->mem_len = rx->config.memory_file_size;
		rx->phase = MIG_RX_MEMORY;
		break;
	case MIG_REC_PAGES: {
		uint64_t off, len;

		r = mig_rx_run(rx, h, payload, &off, &len, err, errlen);
		if (!r) {
			memcpy(rx->mem + off, (const uint8_t *)payload + sizeof(struct mig_pages_hdr),
			       len);
			mig_rx_mark(rx, off, len);
		}
		break;
	}
	case MIG_REC_ZERO: {
		uint64_t off, len;

		r = mig_rx_run(rx, h, payload, &off, &len, err, errlen);
		if (!r)
			mig_rx_zero(rx, off, len);
		break;
	}
	case MIG_REC_STATE:
		r = mig_rx_state(rx, h, payload, err, errlen);
		if (!r)
			rx->phase = MIG_RX_END;
		break;
	case MIG_REC_END:
		rx->phase = MIG_RX_DONE;
		break;
	case MIG_REC_SYNC:
		rx->syncs++;   /* the caller answers it */
		break;
	case MIG_REC_STOP:
		memcpy(&rx->stop_ns, payload, sizeof(rx->stop_ns));
		if (!rx->stop_ns)
			return mig_err(err, errlen, "record %llu: stop time 0",
				       (unsigned long long)rx->records);
		break;
	default:
		return mig_err(err, errlen, "record %llu: unknown type %u",
			       (unsigned long long)rx->records, h->type);
	}
	if (!r)
		rx->records++;
	return r;
}

int mig_parse_buffer(struct mig_rx *rx, const void *buf, size_t len, char *err,
		     size_t errlen)
{
	const uint8_t *p = buf;
	size_t off = sizeof(struct mig_hdr);
	int r;

	if (len < sizeof(struct mig_hdr))
		return mig_err(err, errlen, "truncated: %zu bytes, no stream header", len);
	r = mig_rx_header(rx, p, err, errlen);
	while (!r && !mig_rx_done(rx)) {
		struct mig_rec_hdr h;
		int64_t n;

		if (len - off < sizeof(h))
			return mig_err(err, errlen, "truncated after %llu records",
				       (unsigned long long)rx->records);
		memcpy(&h, p + off, sizeof(h));
		off += sizeof(h);
		n = mig_rx_record_len(rx, &h, err, errlen);
		if (n < 0)
			return (int)n;
		if (len - off < (uint64_t)n)
			return mig_err(err, errlen, "truncated in record %llu",
				       (unsigned long long)rx->records);
		r = mig_rx_record(rx, &h, p + off, err, errlen);
		off += (size_t)n;
	}
	if (!r && off != len)
		return mig_err(err, errlen, "%zu bytes after the end", len - off);
	return r;
}

uint32_t mig_rec_crc(uint32_t type, const void *payload, uint32_t len)
{
	if (type == MIG_REC_PAGES && len > sizeof(struct mig_pages_hdr))
		len = sizeof(struct mig_pages_hdr);
	return vstate_crc(payload, len);
}

void mig_rec_hdr_make(struct mig_rec_hdr *h, enum mig_rec type, const void *payload,
		      uint32_t len)
{
	*h = (struct mig_rec_hdr){ .type = (uint32_t)type, .len = len,
				   .crc = mig_rec_crc((uint32_t)type, payload, len) };
}
