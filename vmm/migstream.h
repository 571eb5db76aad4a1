/*
 * The live migration stream (PUT /migrate to vireo-vmm --incoming): the
 * format, its writer's framing and the target's parser.  Pure: no KVM,
 * no sockets; unit tests and fuzz/fuzz_migrate.c call it on buffers, and
 * migrate.c on what it reads from the connection.
 *
 * Layout (little-endian, x86-64 hosts only):
 *   header   "VIREOMIG" magic, u32 version (MIG_VERSION), u32 0
 *   records  one after another, each a struct mig_rec_hdr (type, payload
 *            length, crc32 of the payload: of a PAGES record's its page
 *            header only) and its payload
 * Records:
 *   CONFIG  first and once: state.h's struct vstate_config (the machine,
 *           the layout of guest RAM as the save's memory file has it)
 *   PAGES   u64 guest-physical address (page aligned), u32 count
 *           (1..MIG_MAX_PAGES), u32 0, then count pages of data (not
 *           checksummed, as the save's memory file is not: the source
 *           sends it straight from guest RAM, the target reads it straight
 *           into guest RAM; TCP's own checksum covers it on the way)
 *   ZERO    the same header without data: pages of zeros
 *   SYNC    empty, among the pages: the target answers MIG_SYNCED once it
 *           has taken in everything before it (the source waits for that
 *           after each round, so that what it measures and what it leaves
 *           for the stop-and-copy are not hidden in the sockets' buffers)
 *   STATE   once, after the memory: a whole state file (state.h), whose
 *           CONFIG must equal the CONFIG record
 *   STOP    optional, once, after the STATE: u64 CLOCK_REALTIME nanoseconds
 *           at which the source paused the vCPUs (the target's downtime
 *           figure; both on one host or with synchronised clocks)
 *   END     last, empty; nothing may follow
 * Pages may come again (a later round's copy replaces the earlier one).
 * Back from the target: MIG_READY once it has built the VM (before it
 * runs), then the source answers MIG_GO and stops; only then does the
 * target run the guest.  As its vCPUs start, the target sends MIG_DONE
 * and a u64 (little-endian): the downtime in ms it measured from STOP, so
 * that both report the same figure (an older target sends nothing).
 */
#ifndef VIREO_VMM_MIGSTREAM_H
#define VIREO_VMM_MIGSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

#define MIG_MAGIC     "VIREOMIG"
#define MIG_VERSION   4u      /* 2: state.h version 2's larger CONFIG;
				 * 3: a PAGES record's crc covers its page
				 * header, not the data; 4: SYNC */
#define MIG_PAGE      4096u
#define MIG_MAX_PAGES 256u                 /* one PAGES record: 1 MiB */
/* The largest guest RAM a stream may announce (the target maps it). */
#define MIG_MAX_MEMORY (1ull << 40)
/* The 8-byte handshake messages, target to source and back. */
#define MIG_READY     "VIREORDY"
#define MIG_GO        "VIREOGO!"
#define MIG_DONE      "VIREODWN"
#define MIG_SYNCED    "VIREOSYN"

enum mig_rec {
	MIG_REC_END = 0,
	MIG_REC_CONFIG = 1,
	MIG_REC_PAGES = 2,
	MIG_REC_ZERO = 3,
	MIG_REC_STATE = 4,
	MIG_REC_STOP = 5,
	MIG_REC_SYNC = 6,
};

struct mig_hdr {
	char magic[8];
	uint32_t version;
	uint32_t reserved;
};

struct mig_rec_hdr {
	uint32_t type;
	uint32_t len;       /* payload bytes */
	uint32_t crc;       /* mig_rec_crc() of the payload */
	uint32_t reserved;  /* 0 */
};

struct mig_pages_hdr {
	uint64_t gpa;
	uint32_t count;
	uint32_t reserved;
};

/* The largest payload: a STATE record (a state file). */
#define MIG_MAX_RECORD VSTATE_MAX_FILE

/*
 * The target's parser.  The caller reads the header and each record
 * (header, then as many bytes as mig_rx_record_len() allows) and hands
 * them in; the parser checks everything and writes pages into guest RAM
 * laid out as the save's memory file (rx->mem, rx->mem_len), which
 * ops->config provides once the CONFIG record is checked.
 */
struct mig_rx_ops {
	/* Guest RAM for @cfg (cfg->memory_file_size bytes, zeroed: a ZERO
	 * record leaves the pages no PAGES record wrote as they are, so
	 * that they stay unallocated), or NULL with one line in @err. */
	void *(*config)(void *opaque, const struct vstate_config *cfg, char *err,
			size_t errlen);
};

enum mig_rx_phase { MIG_RX_HEADER, MIG_RX_CONFIG, MIG_RX_MEMORY, MIG_RX_END, MIG_RX_DONE };

struct mig_rx {
	const struct mig_rx_ops *ops;
	void *opaque;
	enum mig_rx_phase phase;
	struct vstate_config config;
	uint8_t *mem;
	uint64_t mem_len;
	uint64_t *written;    /* a bit per page of mem: a PAGES record wrote it */
	void *state;          /* the STATE record's copy, 8-byte aligned (malloc'd) */
	size_t state_len;
	struct vstate st;     /* parsed, pointing into state */
	uint64_t pages, zero_pages, records, syncs;
	uint64_t stop_ns;     /* the STOP record's time, 0 without one */
};

void mig_rx_init(struct mig_rx *rx, const struct mig_rx_ops *ops, void *opaque);
/* Free the state copy and the page bitmap. */
void mig_rx_free(struct mig_rx *rx);
/* The stream's header (sizeof(struct mig_hdr) bytes).  0 or -EINVAL with
 * one line in @err. */
int mig_rx_header(struct mig_rx *rx, const void *hdr, char *err, size_t errlen);
/* A record's header: its payload length once checked (type known, length
 * within its type's bounds, the record allowed here), or -EINVAL. */
int64_t mig_rx_record_len(struct mig_rx *rx, const struct mig_rec_hdr *h, char *err,
			  size_t errlen);
/* The record's payload (the length mig_rx_record_len returned): 0 or
 * -EINVAL with one line in @err. */
int mig_rx_record(struct mig_rx *rx, const struct mig_rec_hdr *h, const void *payload,
		  char *err, size_t errlen);
/*
 * A PAGES record whose data the caller reads straight into guest RAM: its
 * header and page header (@ph, the payload's first sizeof(struct
 * mig_pages_hdr) bytes), checked as mig_rx_record checks them.  0 with
 * @*dst and @*len where the rest of the payload goes, or -EINVAL with one
 * line in @err.
 */
int mig_rx_pages_dst(struct mig_rx *rx, const struct mig_rec_hdr *h, const void *ph,
		     uint8_t **dst, size_t *len, char *err, size_t errlen);
static inline bool mig_rx_done(const struct mig_rx *rx)
{
	return rx->phase == MIG_RX_DONE;
}

/*
 * A whole stream in a buffer (the fuzz target, unit tests): 0 once END
 * was parsed and nothing follows, or -EINVAL with one line in @err.
 */
int mig_parse_buffer(struct mig_rx *rx, const void *buf, size_t len, char *err,
		     size_t errlen);

/* A record's checksum: zlib's crc32 of @payload, of a PAGES record's page
 * header only. */
uint32_t mig_rec_crc(uint32_t type, const void *payload, uint32_t len);
/* The source's framing: a record's header for @payload of @len bytes (of
 * a PAGES record only the page header is read). */
void mig_rec_hdr_make(struct mig_rec_hdr *h, enum mig_rec type, const void *payload,
		      uint32_t len);
/* The CONFIG record's checks (the layout of guest RAM): 0 or -EINVAL. */
int mig_check_config(const struct vstate_config *c, char *err, size_t errlen);

#endif
