/* qcow2 driver internals shared by lib/img/qcow2*.c (not a public header). */
#ifndef VIREO_QCOW2_H
#define VIREO_QCOW2_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>

#include "img-priv.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21

#define QCOW2_INCOMPAT_DIRTY    (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT  (1ull << 1)
#define QCOW2_INCOMPAT_DATAFILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESS (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2    (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN    0x1full
#define QCOW2_COMPAT_LAZY       (1ull << 0)

#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       1ull
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull
#define QCOW2_L1_RESERVED      0x7f000000000001ffull
#define QCOW2_L2_RESERVED      0x3f000000000001feull  /* standard clusters */
#define QCOW2_RT_OFFSET_MASK   0xfffffffffffffe00ull

#define QCOW2_EXT_END          0x00000000u
#define QCOW2_EXT_BACKING_FMT  0xe2792acau
#define QCOW2_EXT_FEATURES     0x6803f857u

/* Maximum number of snapshots and L1 entries we accept (absurd-size guard). */
/*
 * The header's fields, as QEMU's docs/interop/qcow2.txt lays them out:
 * byte offsets into cluster 0 (big-endian on disk).
 */
enum qcow2_header_off {
	QH_MAGIC = 0, QH_VERSION = 4, QH_BACKING_OFFSET = 8, QH_BACKING_SIZE = 16,
	QH_CLUSTER_BITS = 20, QH_SIZE = 24, QH_CRYPT_METHOD = 32, QH_L1_SIZE = 36,
	QH_L1_OFFSET = 40, QH_RT_OFFSET = 48, QH_RT_CLUSTERS = 56,
	QH_NB_SNAPSHOTS = 60, QH_SNAPSHOTS_OFFSET = 64,
	QH_V2_LENGTH = 72,             /* a version 2 header ends here */
	/* version 3 */
	QH_INCOMPAT = 72, QH_COMPAT = 80, QH_AUTOCLEAR = 88,
	QH_REFCOUNT_ORDER = 96, QH_HEADER_LENGTH = 100,
	QH_V3_MIN_LENGTH = 104,        /* the shortest version 3 header */
	QH_COMPRESSION_TYPE = 104,     /* 1 byte, with INCOMPAT_COMPRESS */
	QH_V3_LENGTH = 112,            /* what we write, padded to 8 */
};

/* The header decoded (every field widened to 64 bits). */
struct qcow2_header {
	uint64_t magic, version, backing_offset, backing_size, cluster_bits;
	uint64_t size, crypt_method, l1_size, l1_offset, rt_offset, rt_clusters;
	uint64_t nb_snapshots, snapshots_offset;
	uint64_t incompat, compat, autoclear, refcount_order, header_length;
	uint64_t compression_type;
};

#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_L1_BYTES  (32u << 20)
#define QCOW2_MAX_RT_BYTES  (8u << 20)

/* A cache of cluster-sized metadata tables (L2 tables or refcount blocks),
 * indexed by a small key (L1 index or refcount table index). */
struct qcow2_cache_entry {
	uint64_t off;     /* host offset, 0 = free slot */
	uint64_t key;
	uint64_t lru;
	bool dirty;
};

struct qcow2_cache {
	uint32_t tsize;
	int n;
	uint8_t *mem;
	struct qcow2_cache_entry *e;
	uint64_t tick;
	int32_t *map;     /* key -> slot + 1 (0: not cached) */
	uint64_t map_len;
};

struct qcow2_snap {
	uint64_t l1_offset;
	uint32_t l1_size;
	char *id, *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size;
	uint32_t extra_size;
	uint8_t *extra;   /* raw extra data (kept for rewriting) */
};

struct qcow2_ext {
	uint32_t type, len;
	uint8_t *data;
};

struct qcow2 {
	struct vimg *img;
	int fd;
	int version;
	uint32_t cluster_bits, cluster_size;
	uint32_t l2_bits, l2_entries, l2_entry_size;
	bool extl2;
	uint32_t subcluster_size;
	uint32_t header_length;
	uint64_t incompat, compat, autoclear;
	int compression;              /* 0 zlib, 1 zstd */

	uint64_t l1_offset;
	uint32_t l1_size;
	uint64_t *l1;                 /* host order */
	uint32_t l1_dirty_lo, l1_dirty_hi; /* [lo, hi) of entries to write */

	uint64_t rt_offset;
	uint32_t rt_clusters;
	uint64_t rt_size;             /* entries */
	uint64_t *rt;                 /* host order */
	bool rt_dirty;

	int refcount_order;
	uint32_t refcount_bits;
	uint64_t refcount_max;
	uint32_t rb_bits, rb_entries;

	char *backing_file, *backing_fmt;
	uint64_t backing_offset;
	uint32_t backing_size;
	struct qcow2_ext *exts;       /* header extensions we keep verbatim */
	int n_exts;

	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t snapshots_size;      /* bytes of the table on disk */
	struct qcow2_snap *snaps;

	struct qcow2_cache l2c, rbc;

	uint64_t free_hint;           /* cluster index to start free search */
	uint64_t file_end;            /* everything at/after this reads zero */
	uint64_t file_size;           /* current length of the file */
	uint64_t *pending_free;       /* cluster offsets to decref after flush */
	size_t n_pending, cap_pending;
	bool dirty_written;           /* header dirty bit is on disk */
	bool lazy;
	bool closing;                 /* lazy refcounts: write them out now */
	bool meta_changed;            /* something to write at flush */
	uint64_t comp_cursor;         /* next free byte for compressed data */
	uint8_t *cbuf, *cbuf2;        /* cluster-size scratch buffers */
	uint8_t *zbuf;                /* a cluster of zeros */
	struct qcow2_cpool *cpool;    /* compression threads (convert -c) */
	/* Deferred data write of an allocating request: when defer_ok, the
	 * last data write is left to the caller (outside the lock). */
	bool defer_ok;
	const uint8_t *defer_src;
	uint64_t defer_host, defer_len;
	/* Read-write opens: one bit per cluster holding metadata (header,
	 * L1/L2 tables of every tree, refcount table and blocks, snapshot
	 * table), so a data cluster aliasing one is refused. */
	uint8_t *meta_map;
	uint64_t meta_clusters;       /* clusters the map covers */
};

static inline struct qcow2 *qcow2_of(struct vimg *img)
{
	return img->priv;
}

/* Does [off, off+len) lie within [0, end)?  (Without computing off+len,
 * which wraps for offsets read from a hostile image.) */
static inline bool qcow2_within(uint64_t off, uint64_t len, uint64_t end)
{
	return off <= end && len <= end - off;
}

static inline uint64_t qcow2_align(const struct qcow2 *q, uint64_t x)
{
	return (x + q->cluster_size - 1) & ~(uint64_t)(q->cluster_size - 1);
}

/* qcow2-cache.c */
int qcow2_cache_init(struct qcow2_cache *c, uint32_t tsize, int n);
void qcow2_cache_free(struct qcow2_cache *c);
/* Find a cached table; returns its buffer or NULL. */
uint8_t *qcow2_cache_find(struct qcow2_cache *c, uint64_t key, uint64_t off);
/* Pick a slot for (key, off), evicting the least recently used one; *victim
 * receives the slot index, whose entry the caller writes back if dirty. */
int qcow2_cache_victim(struct qcow2_cache *c);
uint8_t *qcow2_cache_install(struct qcow2_cache *c, int slot, uint64_t key,
			     uint64_t off);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, const uint8_t *table);
void qcow2_cache_drop(struct qcow2_cache *c, uint64_t key);
void qcow2_cache_clear(struct qcow2_cache *c);

/* qcow2-refcount.c */
int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *rc);
int qcow2_refcount_update(struct qcow2 *q, uint64_t cluster, int64_t delta);
/* Allocate n contiguous clusters; returns the host offset in *off. */
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *off);
/* Queue a reference drop that is applied once metadata is on disk. */
int qcow2_free_later(struct qcow2 *q, uint64_t host_off, uint64_t nclusters);
int qcow2_refcount_write_dirty(struct qcow2 *q);
/* Write the dirty refcount blocks and table, then sync. */
int qcow2_refcount_sync(struct qcow2 *q);
int qcow2_apply_pending_frees(struct qcow2 *q);
int qcow2_rebuild_refcounts(struct qcow2 *q, const uint64_t *counts,
			    uint64_t nclusters);
uint64_t qcow2_rb_get(const uint8_t *rb, uint32_t order, uint64_t idx);
void qcow2_rb_set(uint8_t *rb, uint32_t order, uint64_t idx, uint64_t v);

/* qcow2-cluster.c */
/* The metadata map (read-write opens): build it from the tables, mark or
 * unmark a host range, and refuse a data cluster that is metadata. */
int qcow2_meta_build(struct qcow2 *q);
void qcow2_meta_mark(struct qcow2 *q, uint64_t off, uint64_t len, bool meta);
int qcow2_check_data(struct qcow2 *q, uint64_t off);
int qcow2_l2_load(struct qcow2 *q, uint32_t l1_idx, uint8_t **table);
/* Make the L2 table of l1_idx writable (allocate or copy-on-write). */
int qcow2_l2_prepare(struct qcow2 *q, uint32_t l1_idx, uint8_t **table);
int qcow2_l2_write_dirty(struct qcow2 *q);
int qcow2_l1_write_dirty(struct qcow2 *q);
uint64_t qcow2_l2_entry(const struct qcow2 *q, const uint8_t *t, uint32_t i);
uint64_t qcow2_l2_bitmap(const struct qcow2 *q, const uint8_t *t, uint32_t i);
void qcow2_l2_set(struct qcow2 *q, uint8_t *t, uint32_t i, uint64_t e);
int qcow2_read(struct qcow2 *q, void *buf, size_t len, uint64_t off);
int qcow2_write(struct qcow2 *q, const void *buf, size_t len, uint64_t off);
#define QCOW2_ZERO_WRITE 0    /* reads as zeros afterwards */
#define QCOW2_ZERO_DISCARD 1  /* drop; zeros where possible */
#define QCOW2_ZERO_UNALLOC 2  /* make unallocated (backing shows through) */
int qcow2_zero(struct qcow2 *q, uint64_t off, uint64_t len, int mode);
int qcow2_status(struct qcow2 *q, uint64_t off, uint64_t len,
		 struct vimg_extent *ext);
int qcow2_flush_all(struct qcow2 *q);
int qcow2_preallocate(struct qcow2 *q);
/* Validate a host offset taken from metadata. */
int qcow2_check_host(struct qcow2 *q, uint64_t off, uint64_t len,
		     const char *what);
int qcow2_l1_grow(struct qcow2 *q, uint32_t new_size);
/* Host clusters [first, last] an L2 entry references; false if none. */
bool qcow2_entry_clusters(const struct qcow2 *q, uint64_t e, uint64_t *first,
			  uint64_t *last);

/* qcow2-compress.c */
int qcow2_decompress(int type, const void *src, size_t slen, void *dst,
		     size_t dlen);
/* Returns the compressed length, or 0 when it would not be smaller. */
long qcow2_compress(int type, const void *src, size_t slen, void *dst,
		    size_t dcap);
int qcow2_read_compressed(struct qcow2 *q, uint64_t entry, uint8_t *out);
void qcow2_cpool_free(struct qcow2 *q);
int qcow2_write_compressed(struct qcow2 *q, const void *buf, uint64_t off);
/* n whole clusters, compressed on several threads, stored in order. */
int qcow2_write_compressed_many(struct qcow2 *q, const uint8_t *buf, size_t n,
				uint64_t off);

/* qcow2.c */
/* Decode the first QH_V3_LENGTH bytes of a header (v3 fields included:
 * the caller looks at them for version 3 only). */
void qcow2_header_decode(const uint8_t *h, struct qcow2_header *hd);
/* Write one field of the on-disk header (the field at offset @off). */
int qcow2_header_put(struct qcow2 *q, enum qcow2_header_off off, uint64_t v);
int qcow2_mark_dirty(struct qcow2 *q);
/* Clear the header dirty bit (refcounts are known to be right). */
int qcow2_clear_dirty(struct qcow2 *q);
int qcow2_write_header(struct qcow2 *q);
int qcow2_build_header_for_create(struct qcow2 *q, uint8_t *h);
int qcow2_sync(struct qcow2 *q);

/* qcow2-snapshot.c */
int qcow2_snapshots_load(struct qcow2 *q);
void qcow2_snapshots_free(struct qcow2 *q);
int qcow2_snapshot_list(struct vimg *img, struct vimg_snapshot **out, int *n);
int qcow2_snapshot(struct vimg *img, enum vimg_snap_op op, const char *id,
		   const char *name);

/* Driver entries defined outside qcow2.c (qcow2_driver). */
int qcow2_create(const char *path, const struct vimg_create_opts *o,
		 char *err, size_t errlen);
int qcow2_check(struct vimg *img, int fix, struct vimg_check *res, FILE *log);

/* Read/write raw metadata. */
int qcow2_pread(struct qcow2 *q, void *buf, size_t len, uint64_t off);
int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off);

#endif
