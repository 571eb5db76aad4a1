/*
 * The virtio devices of one VM, as vireo-vmm creates them from its options:
 * each --disk becomes a virtio-blk PCI function, --virtio-console and --rng
 * add their devices.  vm.c calls virtio_vmm_create() after the PCI host
 * exists and virtio_vmm_destroy() after the vCPUs are gone.
 */
#ifndef VIREO_VMM_VIRTIO_VMM_H
#define VIREO_VMM_VIRTIO_VMM_H

#include <stddef.h>

struct vm;
struct virtio_dev;

int virtio_vmm_create(struct vm *vm);
void virtio_vmm_destroy(struct vm *vm);

/* The virtio console, or NULL: the VMM sends keyboard input there. */
struct virtio_dev *virtio_vmm_console(struct vm *vm);

#endif
