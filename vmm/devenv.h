/*
 * What a device may use of its VM: guest RAM, the event loop, the two
 * buses it registers its registers on, and interrupts/doorbells.  Devices
 * (vmm/dev/, the virtio PCI transport) are written against this, not
 * against struct vm, so they can be built and tested without a VM.
 */
#ifndef VIREO_VMM_DEVENV_H
#define VIREO_VMM_DEVENV_H

struct gmem;
struct evloop;
struct bus;
struct irq_ctl;

struct dev_env {
	const struct gmem *mem;
	struct evloop *loop;
	struct bus *pio, *mmio;
	struct irq_ctl *irq;
};

#endif
