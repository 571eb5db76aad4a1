#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "irq.h"

/* Under c->lock. */
static int irq_commit(struct irq_ctl *c)
{
	c->routes->nr = c->nr_routes;
	c->routes->flags = 0;
	c->commits++;
	return ioctl(c->vm_fd, KVM_SET_GSI_ROUTING, c->routes) < 0 ? -errno : 0;
}

static void irq_add_chip_route(struct irq_ctl *c, unsigned gsi, unsigned chip,
			       unsigned pin)
{
	c->routes->entries[c->nr_routes++] = (struct kvm_irq_routing_entry){
		.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
		.u.irqchip = { .irqchip = chip, .pin = pin } };
}

int irq_ctl_init(struct irq_ctl *c, int vm_fd)
{
	memset(c, 0, sizeof(*c));
	c->vm_fd = vm_fd;
	c->next_gsi = IRQ_FIRST_MSI_GSI;
	c->routes = calloc(1, sizeof(struct kvm_irq_routing) +
			   IRQ_MAX_ROUTES * sizeof(struct kvm_irq_routing_entry));
	if (!c->routes)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	/* The table is ours from the start: ISA IRQs 0-15 to the 8259 pins
	 * (2 is the cascade), GSIs 1-23 to the same IOAPIC pins, GSI 0 (the
	 * PIT) to IOAPIC pin 2. */
	for (unsigned gsi = 0; gsi < IRQ_FIRST_MSI_GSI; gsi++) {
		if (gsi < 16 && gsi != 2)
			irq_add_chip_route(c, gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER :
					   KVM_IRQCHIP_PIC_SLAVE, gsi % 8);
		if (gsi != 2)
			irq_add_chip_route(c, gsi, KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2 : gsi);
	}
	if (vm_fd < 0)
		return 0;
	return irq_commit(c);
}

void irq_ctl_destroy(struct irq_ctl *c)
{
	if (!c->routes)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->routes);
	c->routes = NULL;
}

int irq_line(struct irq_ctl *c, unsigned gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)level };

	return ioctl(c->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

int irq_msi(struct irq_ctl *c, uint64_t addr, uint32_t data)
{
	struct kvm_msi m = { .address_lo = (uint32_t)addr,
			     .address_hi = (uint32_t)(addr >> 32), .data = data };

	return ioctl(c->vm_fd, KVM_SIGNAL_MSI, &m) < 0 ? -errno : 0;
}

int irq_gsi_alloc(struct irq_ctl *c)
{
	int gsi;

	pthread_mutex_lock(&c->lock);
	gsi = c->next_gsi < IRQ_MAX_ROUTES ? (int)c->next_gsi++ : -ENOSPC;
	pthread_mutex_unlock(&c->lock);
	return gsi;
}

int irq_msi_route(struct irq_ctl *c, unsigned gsi, uint64_t addr, uint32_t data,
		  bool mask)
{
	struct kvm_irq_routing_entry want = {
		.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
		.u.msi = { .address_lo = (uint32_t)addr,
			   .address_hi = (uint32_t)(addr >> 32), .data = data } };
	struct kvm_irq_routing_entry *e = NULL;
	int ret = 0;

	if (gsi < IRQ_FIRST_MSI_GSI || gsi >= IRQ_MAX_ROUTES)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->nr_routes && !e; i++)
		if (c->routes->entries[i].gsi == gsi)
			e = &c->routes->entries[i];
	if (mask) {
		if (e) {
			*e = c->routes->entries[--c->nr_routes];
			ret = irq_commit(c);
		}
	} else if (!e || memcmp(e, &want, sizeof(want))) {
		if (!e && c->nr_routes >= IRQ_MAX_ROUTES) {
			ret = -ENOSPC;
		} else {
			if (!e)
				e = &c->routes->entries[c->nr_routes++];
			*e = want;
			ret = irq_commit(c);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int irq_irqfd(struct irq_ctl *c, unsigned gsi, int fd, bool detach)
{
	struct kvm_irqfd f = { .fd = (uint32_t)fd, .gsi = gsi,
			       .flags = detach ? KVM_IRQFD_FLAG_DEASSIGN : 0 };

	return ioctl(c->vm_fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

int irq_ioeventfd(struct irq_ctl *c, uint64_t addr, unsigned len, bool pio,
		  bool datamatch, uint64_t value, int fd, bool detach)
{
	struct kvm_ioeventfd io = {
		.datamatch = value, .addr = addr, .len = len, .fd = fd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (detach ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
	};

	return ioctl(c->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}
