/*
 * virtio-vsock (virtio 1.2, 5.10) through the host kernel's vhost-vsock:
 * host programs reach the guest with AF_VSOCK at its CID.
 *
 * The receive (0) and transmit (1) queues run in the host kernel: at
 * DRIVER_OK the device gives /dev/vhost-vsock the guest's memory table, the
 * rings, the transport's kick eventfd of each queue and the irqfd of its
 * MSI-X vector (struct virtio_transport's queue_kick_fd/queue_call_fd), so
 * neither a kick nor an interrupt passes through vireo-vmm.  The event
 * queue (2) stays here: it carries the transport reset event.
 *
 * The CID is claimed at creation (VHOST_VSOCK_SET_GUEST_CID), so a CID in
 * use fails the start of the VM, not the guest's driver.  A driver reset
 * stops the kernel's queues (VHOST_VSOCK_SET_RUNNING 0, eventfds detached)
 * before the transport takes its kicks back; the next DRIVER_OK starts
 * them again from the fresh rings, and the guest is sent a transport reset
 * event so that it drops connections the host side may still think open.
 */
#ifndef VIREO_VMM_VIRTIO_VSOCK_H
#define VIREO_VMM_VIRTIO_VSOCK_H

#include <stdint.h>

#include "virtio.h"

#define VIRTIO_VSOCK_F_STREAM    0
#define VIRTIO_VSOCK_F_SEQPACKET 1
#define VIRTIO_VSOCK_QUEUE_SIZE  128u
#define VIRTIO_VSOCK_EVENT_TRANSPORT_RESET 0u
#define VIRTIO_VSOCK_DEFAULT_DEV "/dev/vhost-vsock"

/*
 * Open @vhost_path (VIRTIO_VSOCK_DEFAULT_DEV), set it up for guest @cid and
 * create the device.  Returns 0 or -errno with one line printed:
 * -ENOENT no vhost-vsock device (module not loaded), -EACCES no permission,
 * -EADDRINUSE the CID belongs to another VM, -EINVAL a reserved CID.
 */
int virtio_vsock_create(const struct virtio_env *env, const char *vhost_path,
			uint64_t cid, struct virtio_dev **out);

/* Queue a transport reset event for the guest (sent as soon as it has an
 * event buffer).  Takes the device lock. */
void virtio_vsock_transport_reset(struct virtio_dev *d);

/* Transport reset events delivered so far. */
uint64_t virtio_vsock_resets_sent(struct virtio_dev *d);

#endif
