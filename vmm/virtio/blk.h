/* virtio-blk device model (virtio 1.2, 5.2). */
#ifndef VIREO_VMM_VIRTIO_BLK_H
#define VIREO_VMM_VIRTIO_BLK_H

#include "blk_backend.h"
#include "virtio.h"

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN           0u
#define VIRTIO_BLK_T_OUT          1u
#define VIRTIO_BLK_T_FLUSH        4u
#define VIRTIO_BLK_T_GET_ID       8u
#define VIRTIO_BLK_T_DISCARD      11u
#define VIRTIO_BLK_T_WRITE_ZEROES 13u
#define VIRTIO_BLK_S_OK     0u
#define VIRTIO_BLK_S_IOERR  1u
#define VIRTIO_BLK_S_UNSUPP 2u
#define VIRTIO_BLK_ID_BYTES 20u
#define VIRTIO_BLK_WZ_F_UNMAP 1u

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Config space offsets (5.2.4). */
#define VIRTIO_BLK_CFG_CAPACITY          0
#define VIRTIO_BLK_CFG_SEG_MAX           12
#define VIRTIO_BLK_CFG_BLK_SIZE          20
#define VIRTIO_BLK_CFG_NUM_QUEUES        34
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECT  36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG   40
#define VIRTIO_BLK_CFG_DISCARD_ALIGN     44
#define VIRTIO_BLK_CFG_MAX_WZ_SECT       48
#define VIRTIO_BLK_CFG_MAX_WZ_SEG        52
#define VIRTIO_BLK_CFG_WZ_MAY_UNMAP      56
#define VIRTIO_BLK_CFG_SIZE              60

#define VIRTIO_BLK_QUEUE_SIZE   256u
#define VIRTIO_BLK_MAX_SEGS     32u      /* discard / write-zeroes ranges */
#define VIRTIO_BLK_MAX_RANGE    0x3fffffu /* sectors per range */

/*
 * Create a virtio-blk device over @be (the device owns it from now on,
 * even on failure).  @id names the disk in messages and gives the default
 * serial ("vireo-<id>", cut to 20 bytes) unless @serial is set.  If
 * env->watch_fd is set, the backend's completion fd is registered with it;
 * otherwise call virtio_blk_complete() yourself.
 */
int virtio_blk_create(const struct virtio_env *env, struct blk_backend *be,
		      const char *id, const char *serial,
		      struct virtio_dev **out);

/* Collect finished backend requests and interrupt the guest (the
 * callback the event loop runs when the backend fd is readable).  Takes
 * the device lock, as does virtio_blk_drain(): call both without it. */
void virtio_blk_complete(struct virtio_dev *d);

/* Wait until no request is in flight (tests, shutdown, snapshots). */
void virtio_blk_drain(struct virtio_dev *d);

/* Requests completed successfully (GET /metrics): reads and writes of
 * data, not flushes, discards or write-zeroes. */
struct virtio_blk_stats {
	uint64_t read_ops, read_bytes, write_ops, write_bytes;
};
void virtio_blk_get_stats(struct virtio_dev *d, struct virtio_blk_stats *s);

/* The device's back end (snapshots: with no request in flight). */
struct blk_backend *virtio_blk_backend(struct virtio_dev *d);

/* Requests in flight right now. */
unsigned virtio_blk_inflight(const struct virtio_dev *d);

#endif
