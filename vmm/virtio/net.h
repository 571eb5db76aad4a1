/*
 * virtio-net (virtio 1.2, 5.1) on a struct net_backend (vmm/net/backend.h).
 *
 * Queues: receive 2i and transmit 2i + 1 for pair i (pairs up to
 * VIRTIO_NET_MAX_PAIRS), then the control queue.  Features: CSUM,
 * GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN, HOST_TSO4/6, HOST_ECN, MRG_RXBUF,
 * STATUS (link always up), MAC, CTRL_VQ, CTRL_RX, CTRL_MAC_ADDR, and MQ
 * when there is more than one pair; EVENT_IDX and INDIRECT_DESC from the
 * core.
 *
 * Data path: either vireo-vmm's own, on the event loop (frames go between
 * the guest's buffers and the backend with one readv/writev each, no
 * allocation; per wake-up budgets, see VIRTIO_NET_TX_BUDGET), or vhost-net
 * in the host kernel when the device was given a vhost fd per pair and its
 * transport hands out kick and call eventfds (struct virtio_transport's
 * queue_kick_fd/queue_call_fd): then only the control queue runs here.
 * The control queue, the MAC filter (own data path only, as with QEMU's
 * vhost) and link status are always ours.
 */
#ifndef VIREO_VMM_VIRTIO_NET_H
#define VIREO_VMM_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "../net/backend.h"
#include "virtio.h"
#include "virtio_opts.h"

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM          0
#define VIRTIO_NET_F_GUEST_CSUM    1
#define VIRTIO_NET_F_MTU           3
#define VIRTIO_NET_F_MAC           5
#define VIRTIO_NET_F_GUEST_TSO4    7
#define VIRTIO_NET_F_GUEST_TSO6    8
#define VIRTIO_NET_F_GUEST_ECN     9
#define VIRTIO_NET_F_GUEST_UFO     10
#define VIRTIO_NET_F_HOST_TSO4     11
#define VIRTIO_NET_F_HOST_TSO6     12
#define VIRTIO_NET_F_HOST_ECN      13
#define VIRTIO_NET_F_HOST_UFO      14
#define VIRTIO_NET_F_MRG_RXBUF     15
#define VIRTIO_NET_F_STATUS        16
#define VIRTIO_NET_F_CTRL_VQ       17
#define VIRTIO_NET_F_CTRL_RX       18
#define VIRTIO_NET_F_CTRL_VLAN     19
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_MQ            22
#define VIRTIO_NET_F_CTRL_MAC_ADDR 23

#define VIRTIO_NET_S_LINK_UP 1u

/* Control queue (5.1.6.5). */
#define VIRTIO_NET_OK  0u
#define VIRTIO_NET_ERR 1u
#define VIRTIO_NET_CTRL_RX 0u
#define  VIRTIO_NET_CTRL_RX_PROMISC  0u
#define  VIRTIO_NET_CTRL_RX_ALLMULTI 1u
#define  VIRTIO_NET_CTRL_RX_ALLUNI   2u
#define  VIRTIO_NET_CTRL_RX_NOMULTI  3u
#define  VIRTIO_NET_CTRL_RX_NOUNI    4u
#define  VIRTIO_NET_CTRL_RX_NOBCAST  5u
#define VIRTIO_NET_CTRL_MAC 1u
#define  VIRTIO_NET_CTRL_MAC_TABLE_SET 0u
#define  VIRTIO_NET_CTRL_MAC_ADDR_SET  1u
#define VIRTIO_NET_CTRL_MQ 4u
#define  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0u

#define VIRTIO_NET_QUEUE_SIZE 256u
#define VIRTIO_NET_MAC_TABLE  64u   /* entries per table; more: accept all */
/* Budgets per wake-up of the event loop (virtio.h): transmit frames and
 * bytes, receive frames (the tap fd stays readable: the loop comes back). */
#define VIRTIO_NET_TX_FRAMES 256u
#define VIRTIO_NET_TX_BUDGET (1u << 20)
#define VIRTIO_NET_RX_FRAMES 256u

/* Counters (the guest's mistakes and our drops). */
struct virtio_net_stats {
	uint64_t tx_frames, tx_bytes, rx_frames, rx_bytes;
	uint64_t tx_bad;        /* refused: bad header, too long, writable buffers */
	uint64_t tx_dropped;    /* backend refused */
	uint64_t rx_dropped;    /* did not fit the guest's buffers */
	uint64_t rx_filtered;   /* not for our MAC filter */
	uint64_t rx_bad;        /* rx chains with readable buffers */
	uint64_t ctrl_bad;      /* malformed or refused control commands */
	uint64_t starved;       /* times the guest had no receive buffers */
	uint64_t rx_spilled;    /* frames copied through the spill buffer */
};

/*
 * A device on @be (which it owns from now on, closed on destroy and on
 * failure) with @mac, named "virtio-net ID".  vhost: one attached
 * /dev/vhost-net (vmm/vhost.h) per backend pair, or NULL for the own
 * data path; the device owns them.  0 or -errno.
 */
struct vhost;
int virtio_net_create(const struct virtio_env *env, struct net_backend *be,
		      const uint8_t mac[6], const char *id, struct vhost *vhost,
		      struct virtio_dev **out);

/* The device's backend (snapshot.c saves a user-mode one's state). */
struct net_backend *virtio_net_backend(struct virtio_dev *d);

/* Whether the data path runs in vhost-net now (after activation). */
bool virtio_net_vhost_active(struct virtio_dev *d);
void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *s);

/* The tap offloads (NET_OFF_*) for the guest's features. */
unsigned virtio_net_offloads(uint64_t guest_features);

/*
 * Check a transmit header against the negotiated features and the frame
 * length (without the header).  0 when the backend may take it, -EINVAL.
 */
int virtio_net_tx_hdr_check(const struct virtio_net_hdr *h, uint64_t features,
			    uint64_t frame_len);

/* The own data path's rx side for pair p, when the backend has no fd
 * (fuzz targets, tests): try to receive now.  Takes the lock. */
void virtio_net_rx_poll(struct virtio_dev *d, unsigned pair);

#endif
