/*
 * virtio 1.x modern PCI transport (virtio 1.2, 4.1): puts a virtio device
 * on the VMM's PCI host as a function with vendor 0x1af4, device
 * 0x1040 + id, revision 1, and
 *   BAR 4 (64-bit memory, 32 KiB):
 *     0x0000 common configuration     0x1000 ISR status
 *     0x2000 device configuration     0x3000 notifications (4 bytes/queue)
 *     0x4000 MSI-X table              0x5000 MSI-X PBA
 * with the virtio vendor capabilities (common, notify, ISR, device, PCI
 * configuration access) and an MSI-X capability in config space.
 *
 * Queue kicks reach the event loop through KVM ioeventfds (the vCPU does
 * not exit to user space); MSI-X vectors are KVM irqfds routed with the
 * host's MSI helper.  Without MSI-X the device falls back to INTx.
 */
#ifndef VIREO_VMM_VIRTIO_PCI_H
#define VIREO_VMM_VIRTIO_PCI_H

#include "virtio.h"

struct pci_host;
struct virtio_pci;

/*
 * Wrap @vdev (which the transport owns from now on) in a PCI function and
 * register it on host.  The host's event loop watches the kick eventfds;
 * interrupts go through the host's struct irq_ctl.  Returns 0 or -errno (a
 * message is printed).
 */
int virtio_pci_create(struct pci_host *host, struct virtio_dev *vdev,
		      struct virtio_pci **out);
void virtio_pci_destroy(struct virtio_pci *vp);

struct virtio_dev *virtio_pci_vdev(struct virtio_pci *vp);

/*
 * Save and restore (vmm/snapshot.c): the function's config space, MSI-X
 * table, the transport's registers, the device's common state (features,
 * status, queues with their ring indices) and the model's own (ops->save).
 * save runs with the vCPUs parked and the device idle (no request under
 * way); restore on a function just created, before the vCPUs run: it
 * replays the driver's set-up through the transport (BARs mapped, routes
 * and kicks installed, queues enabled and checked, the device activated),
 * then sets the indices.  0, or -errno with one line in @err.
 * restore_kick, once every part of the VM is restored: serve what the old
 * process left in the rings (the kick that announced it went with that
 * process); nothing reaches a disk before it.
 */
struct vstate_virtio;
int virtio_pci_save(struct virtio_pci *vp, struct vstate_virtio *s, char *err, size_t errlen);
int virtio_pci_restore(struct virtio_pci *vp, const struct vstate_virtio *s, char *err,
		       size_t errlen);
void virtio_pci_restore_kick(struct virtio_pci *vp);

/* BAR 4 layout. */
#define VIRTIO_PCI_BAR          4
#define VIRTIO_PCI_BAR_SIZE     0x8000u
#define VIRTIO_PCI_COMMON_OFF   0x0000u
#define VIRTIO_PCI_ISR_OFF      0x1000u
#define VIRTIO_PCI_DEVICE_OFF   0x2000u
#define VIRTIO_PCI_NOTIFY_OFF   0x3000u
#define VIRTIO_PCI_NOTIFY_MULT  4u
#define VIRTIO_PCI_MSIX_OFF     0x4000u
#define VIRTIO_PCI_PBA_OFF      0x5000u
#define VIRTIO_PCI_NO_VECTOR    0xffffu

#endif
