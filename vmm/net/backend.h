/*
 * Network backends: where a virtio-net device's frames go.
 *
 * A backend moves whole Ethernet frames, each preceded by a virtio-net
 * header in its virtio 1.x layout (struct virtio_net_hdr below, 12 bytes,
 * little endian): the same layout Linux's tap uses with IFF_VNET_HDR and
 * TUNSETVNETHDRSZ 12, so a tap backend passes it through unchanged; a
 * backend that has no offloads (libslirp, later) computes a checksum the
 * header asks for and segments a GSO frame itself, and hands received
 * frames over with an all-zero header.
 *
 * Queues: a backend has nr_queues queue pairs (a multi-queue tap has one fd
 * per pair); the device uses pair i for its receive queue 2i and transmit
 * queue 2i + 1.
 *
 * Threads: the event loop only.  Calls never block: send and recv return
 * -EAGAIN when they would.
 */
#ifndef VIREO_VMM_NET_BACKEND_H
#define VIREO_VMM_NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* virtio 1.2, 5.1.6: the header in front of every frame. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
#define VIRTIO_NET_HDR_LEN 12u

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1u
#define VIRTIO_NET_HDR_F_DATA_VALID 2u
#define VIRTIO_NET_HDR_F_RSC_INFO   4u
#define VIRTIO_NET_HDR_GSO_NONE  0u
#define VIRTIO_NET_HDR_GSO_TCPV4 1u
#define VIRTIO_NET_HDR_GSO_UDP   3u
#define VIRTIO_NET_HDR_GSO_TCPV6 4u
#define VIRTIO_NET_HDR_GSO_ECN   0x80u

/* The largest frame a backend hands over or takes: a 64 KiB GSO frame plus
 * an Ethernet and VLAN header, after the virtio-net header. */
#define NET_FRAME_MAX (65535u + 14u + 4u)

/* Offloads a backend may be asked to deliver (what the guest can take). */
#define NET_OFF_CSUM 1u     /* partial checksums (NEEDS_CSUM) */
#define NET_OFF_TSO4 2u
#define NET_OFF_TSO6 4u
#define NET_OFF_ECN  8u

struct net_backend;

struct net_backend_ops {
	/* Send one frame (header first, then the frame; any split across
	 * iov).  Returns the bytes taken, -EAGAIN when the backend is full
	 * (wait for tx_fd to be writable), another -errno when the frame was
	 * dropped. */
	ssize_t (*send)(struct net_backend *be, unsigned pair,
			const struct iovec *iov, int iovcnt);
	/* Receive one frame into iov (header first).  Returns its length
	 * with the header, which is more than the room in iov when the frame
	 * did not fit (it is then lost); -EAGAIN when none waits. */
	ssize_t (*recv)(struct net_backend *be, unsigned pair,
			const struct iovec *iov, int iovcnt);
	/* fd that polls readable when a frame waits on pair, writable when
	 * send may take more; -1 when the backend has none. */
	int (*fd)(struct net_backend *be, unsigned pair);
	/* The guest's offloads (NET_OFF_*) changed: deliver only those. */
	int (*set_offloads)(struct net_backend *be, unsigned off);
	/* Use only the first n pairs (the driver's MQ choice). */
	int (*set_pairs)(struct net_backend *be, unsigned n);
	/* A tap's fd for pair, for vhost-net; -1 when the backend is not one. */
	int (*tap_fd)(struct net_backend *be, unsigned pair);
	void (*close)(struct net_backend *be);
};

struct net_backend {
	const struct net_backend_ops *ops;
	unsigned nr_pairs;
	/* What send() takes from the guest: NET_OFF_CSUM (partial checksums),
	 * NET_OFF_TSO4/TSO6/ECN (GSO frames).  The device offers the guest
	 * only the matching host features. */
	unsigned tx_offloads;
	char name[32];        /* "tap0": for messages */
};

static inline void net_backend_close(struct net_backend *be)
{
	if (be)
		be->ops->close(be);
}

#endif
