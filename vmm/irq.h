/*
 * Interrupts and doorbells: what devices may ask of KVM, and nothing else.
 *
 * A device raises a legacy line (GSI), sends an MSI, has KVM inject a GSI
 * when an eventfd is written (irqfd), routes a GSI to an MSI message, and
 * has KVM signal an eventfd when the guest writes a register (ioeventfd:
 * the doorbell direction).  Devices get a struct irq_ctl through their
 * struct dev_env (devenv.h), never the VM's file descriptors.
 *
 * The GSI routing table has its own lock, the interrupt-route lock: the
 * last but one in the lock order (vmm/README.md), taken with a device's lock
 * held, never the other way round.  Re-installing a route that is already
 * in the table costs no ioctl.
 *
 * With vm_fd -1 (unit tests, fuzz targets) every call that would reach KVM
 * returns -EBADF and nothing else changes.
 */
#ifndef VIREO_VMM_IRQ_H
#define VIREO_VMM_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* GSIs 0-23 are the ISA/IOAPIC lines; MSI routes get GSIs from 24 up. */
#define IRQ_FIRST_MSI_GSI 24
#define IRQ_MAX_ROUTES    1024

struct kvm_irq_routing;

struct irq_ctl {
	int vm_fd;
	pthread_mutex_t lock;              /* the interrupt-route lock */
	struct kvm_irq_routing *routes;
	unsigned nr_routes;
	unsigned next_gsi;
	uint64_t commits;                  /* KVM_SET_GSI_ROUTING calls made */
};

/* Install the legacy routes (ISA IRQs to the 8259s and the IOAPIC; GSI 0
 * to IOAPIC pin 2, as the MADT's override says).  Returns 0 or -errno. */
int irq_ctl_init(struct irq_ctl *c, int vm_fd);
void irq_ctl_destroy(struct irq_ctl *c);

/* Set the level of GSI gsi (0-23). */
int irq_line(struct irq_ctl *c, unsigned gsi, int level);
/* Inject one MSI. */
int irq_msi(struct irq_ctl *c, uint64_t addr, uint32_t data);
/* A GSI for an MSI route (>= IRQ_FIRST_MSI_GSI), or -ENOSPC. */
int irq_gsi_alloc(struct irq_ctl *c);
/* Route gsi to the MSI (addr, data), or remove its route (mask true). */
int irq_msi_route(struct irq_ctl *c, unsigned gsi, uint64_t addr, uint32_t data,
		  bool mask);
/* Attach (detach) eventfd fd so that a write to it injects gsi. */
int irq_irqfd(struct irq_ctl *c, unsigned gsi, int fd, bool detach);
/* Attach (detach) eventfd fd that KVM signals on a guest write of len
 * bytes at addr (port I/O when pio), only of value when datamatch. */
int irq_ioeventfd(struct irq_ctl *c, uint64_t addr, unsigned len, bool pio,
		  bool datamatch, uint64_t value, int fd, bool detach);

#endif
