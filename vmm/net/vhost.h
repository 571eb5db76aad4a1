/*
 * vhost-net (Linux's in-kernel virtio-net data path; see the kernel's
 * drivers/vhost documentation): one /dev/vhost-net instance per queue pair,
 * its virtqueue 0 the pair's receive queue and 1 its transmit queue.
 *
 * The guest's rings are handed over by their addresses in this process
 * (vhost works in our address space), the guest's RAM by a memory table,
 * the doorbell by the eventfd KVM signals on a kick (ioeventfd) and the
 * interrupt by the eventfd that injects the queue's MSI (irqfd).  The tap
 * keeps its 12-byte vnet header, so vhost passes the header through
 * (VHOST_NET_F_VIRTIO_NET_HDR is not acked) and the tap does the offloads.
 */
#ifndef VIREO_VMM_NET_VHOST_H
#define VIREO_VMM_NET_VHOST_H

#include <stdint.h>

#include "../gmem.h"

struct net_vhost_ring {
	unsigned num;           /* queue size */
	uint16_t base;          /* next available index to use */
	void *desc, *avail, *used;   /* host addresses */
	int kick, call;         /* eventfds */
};

/* Open /dev/vhost-net and become its owner: fd, or -errno (no message). */
int net_vhost_open(void);
/* The features vhost-net offers (VHOST_GET_FEATURES) or 0. */
uint64_t net_vhost_features(int fd);
/* Program features, memory, both rings and the backend (tap_fd), and
 * start.  0 or -errno (a message is printed). */
int net_vhost_start(int fd, const char *name, uint64_t features,
		    const struct gmem *mem, const struct net_vhost_ring r[2],
		    int tap_fd);
/* Detach the backend (the rings stop) and read back each ring's next
 * available index into base[] (may be NULL). */
void net_vhost_stop(int fd, uint16_t base[2]);

#endif
