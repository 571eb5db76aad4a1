/* virtio modern PCI transport: see pci.h for the layout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vireo/util.h>

#include "../dev/pci.h"
#include "../irq.h"
#include "../loop.h"
#include "pci.h"
#include "../state.h"

#define VP_NVEC (VIRTIO_MAX_QUEUES + 1)
/* A guest that keeps rewriting an MSI-X entry would cost a GSI routing
 * table update (KVM_SET_GSI_ROUTING, an SRCU grace period in the host) per
 * interrupt: past this many updates of one vector in a second, the vector
 * is signalled with KVM_SIGNAL_MSI until the second is over. */
#define VP_ROUTE_UPDATES_PER_S 32u

/* virtio PCI capability types (4.1.4). */
#define VP_CAP_COMMON 1
#define VP_CAP_NOTIFY 2
#define VP_CAP_ISR    3
#define VP_CAP_DEVICE 4
#define VP_CAP_PCI    5
#define VP_COMMON_LEN 0x40u

struct vp_kick {
	struct virtio_pci *vp;
	unsigned q;
	int fd;
	bool taken;     /* read by another consumer (transport.queue_kick_fd) */
};

struct vp_msix {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct virtio_pci {
	struct pci_dev pci;
	const struct dev_env *env;     /* the host's */
	struct virtio_dev *vdev;
	struct virtio_transport transport;
	char name[80];
	unsigned nvec;
	uint32_t dfsel, gfsel;
	uint16_t qsel;
	uint16_t config_vector;
	/* MSI-X */
	unsigned msix_cap, cfg_cap;
	bool msix_enable, msix_fmask;
	struct vp_msix msix[VP_NVEC];
	uint32_t pba;
	int gsi[VP_NVEC];
	int irqfd[VP_NVEC];
	bool routed[VP_NVEC];
	uint64_t route_window_ns[VP_NVEC];
	unsigned route_updates[VP_NVEC];
	unsigned ext[VP_NVEC];         /* irqfd users outside (transport.queue_call_fd) */
	uint32_t ext_q[VP_NVEC];       /* ... which queues */
	/* queue kicks */
	struct vp_kick kick[VIRTIO_MAX_QUEUES];
	bool ioev_on;
	uint64_t ioev_base;
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static uint64_t get_le(const uint8_t *p, unsigned len)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- interrupts ---- */

static void vp_intx_update(struct virtio_pci *vp)
{
	pci_intx(&vp->pci, vp->vdev->isr ? 1 : 0);
}

static bool vp_vector_masked(const struct virtio_pci *vp, unsigned v)
{
	return vp->msix_fmask || (vp->msix[v].ctrl & 1);
}

/* Whether vector v may update its route now (rate limit, see above). */
static bool vp_route_allowed(struct virtio_pci *vp, unsigned v)
{
	uint64_t now = vtime_ns();

	if (now - vp->route_window_ns[v] >= 1000000000ull) {
		vp->route_window_ns[v] = now;
		vp->route_updates[v] = 0;
	}
	return vp->route_updates[v]++ < VP_ROUTE_UPDATES_PER_S;
}

static void vp_vector_fire(struct virtio_pci *vp, unsigned v)
{
	const struct vp_msix *e;
	uint64_t one = 1;

	if (v >= vp->nvec)
		return;
	if (vp_vector_masked(vp, v)) {
		vp->pba |= 1u << v;
		return;
	}
	e = &vp->msix[v];
	if (vp->irqfd[v] >= 0 && !vp->routed[v] && vp_route_allowed(vp, v) &&
	    irq_msi_route(vp->env->irq, (unsigned)vp->gsi[v],
			  (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data, false) == 0)
		vp->routed[v] = true;
	if (vp->routed[v]) {
		if (write(vp->irqfd[v], &one, sizeof(one)) == sizeof(one))
			return;
	}
	irq_msi(vp->env->irq, (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data);
}

/* A vector whose irqfd is written outside the transport: keep its route
 * as the guest's table says, at once (see vp_queue_call_fd). */
static void vp_ext_sync(struct virtio_pci *vp, unsigned v)
{
	const struct vp_msix *e = &vp->msix[v];
	uint64_t one = 1;

	if (v >= vp->nvec || !vp->ext[v] || vp->irqfd[v] < 0)
		return;
	if (!vp->msix_enable || vp_vector_masked(vp, v)) {
		if (vp->routed[v])
			irq_msi_route(vp->env->irq, (unsigned)vp->gsi[v], 0, 0, true);
		vp->routed[v] = false;
		return;
	}
	if (vp->routed[v])
		return;
	if (irq_msi_route(vp->env->irq, (unsigned)vp->gsi[v],
			  (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data, false) == 0) {
		vp->routed[v] = true;
		/* What the other side sent while unrouted is lost: one spurious
		 * interrupt instead, which virtio drivers take. */
		if (write(vp->irqfd[v], &one, sizeof(one)) < 0) {
			/* the counter is full: an interrupt is coming anyway */
		}
	}
}

/* A vector may have been unmasked: deliver what is pending. */
static void vp_vector_unmasked(struct virtio_pci *vp, unsigned v)
{
	if (v < vp->nvec && (vp->pba & (1u << v)) && !vp_vector_masked(vp, v)) {
		vp->pba &= ~(1u << v);
		vp_vector_fire(vp, v);
	}
}

static void vp_irq_queue(struct virtio_dev *d, unsigned q)
{
	struct virtio_pci *vp = d->transport_priv;

	if (vp->msix_enable)
		vp_vector_fire(vp, d->vq[q].msix_vector);
	else
		vp_intx_update(vp);
}

static void vp_irq_config(struct virtio_dev *d)
{
	struct virtio_pci *vp = d->transport_priv;

	if (vp->msix_enable)
		vp_vector_fire(vp, vp->config_vector);
	else
		vp_intx_update(vp);
}

/* ---- vectors and kicks handed to an outside data path (vhost) ---- */

/*
 * struct virtio_transport's queue_kick_fd: hand queue q's ioeventfd to
 * another reader (take) or take it back.  Only the epoll interest changes
 * (the loop's table is not touched), which is safe from a vCPU thread;
 * vp_kick checks taken for an event already fetched.
 */
static int vp_queue_kick_fd(struct virtio_dev *d, unsigned q, bool take)
{
	struct virtio_pci *vp = d->transport_priv;
	struct vp_kick *k;

	if (q >= d->ops->nr_queues || q >= VIRTIO_MAX_QUEUES || vp->kick[q].fd < 0)
		return -EINVAL;
	k = &vp->kick[q];
	if (k->taken == take)
		return k->fd;
	__atomic_store_n(&k->taken, take, __ATOMIC_RELEASE);
	if (evloop_mod(vp->env->loop, k->fd, take ? 0 : EPOLLIN) < 0 && !take)
		verr("%s: cannot watch queue %u notifications again", vp->name, q);
	return k->fd;
}

/*
 * struct virtio_transport's queue_call_fd: the irqfd of queue q's MSI-X
 * vector, whose route from now on follows the guest's MSI-X table at once
 * (vp_ext_sync), or (take false) release it.
 */
static int vp_queue_call_fd(struct virtio_dev *d, unsigned q, bool take)
{
	struct virtio_pci *vp = d->transport_priv;
	unsigned v;

	if (q >= d->ops->nr_queues || q >= VIRTIO_MAX_QUEUES)
		return -EINVAL;
	if (!take) {
		for (v = 0; v < vp->nvec; v++)
			if (vp->ext[v] && (vp->ext_q[v] & (1u << q))) {
				vp->ext_q[v] &= ~(1u << q);
				vp->ext[v]--;
			}
		return 0;
	}
	v = d->vq[q].msix_vector;
	if (!vp->msix_enable || v >= vp->nvec)
		return -ENOENT;
	if (vp->irqfd[v] < 0)
		return -ENODEV;
	if (!(vp->ext_q[v] & (1u << q))) {
		vp->ext_q[v] |= 1u << q;
		vp->ext[v]++;
	}
	vp_ext_sync(vp, v);
	return vp->irqfd[v];
}

/* The driver reset the device (its reset op has given back what it took,
 * or should have): the transport serves every kick again. */
static void vp_ext_reset(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES && q < vp->vdev->ops->nr_queues; q++)
		if (vp->kick[q].fd >= 0)
			vp_queue_kick_fd(vp->vdev, q, false);
	memset(vp->ext, 0, sizeof(vp->ext));
	memset(vp->ext_q, 0, sizeof(vp->ext_q));
}

/* ---- common configuration ---- */

static struct virtq *vp_selq(struct virtio_pci *vp)
{
	return vp->qsel < vp->vdev->ops->nr_queues ? &vp->vdev->vq[vp->qsel] : NULL;
}

static void vp_common_image(struct virtio_pci *vp, uint8_t *c)
{
	struct virtio_dev *d = vp->vdev;
	struct virtq *q = vp_selq(vp);

	memset(c, 0, VP_COMMON_LEN);
	put32(c + 0x00, vp->dfsel);
	put32(c + 0x04, virtio_dev_host_features(d, vp->dfsel));
	put32(c + 0x08, vp->gfsel);
	put32(c + 0x0c, vp->gfsel < 2 ? (uint32_t)(d->guest_features >> (32 * vp->gfsel)) : 0);
	put16(c + 0x10, vp->config_vector);
	put16(c + 0x12, (uint16_t)d->ops->nr_queues);
	c[0x14] = virtio_dev_status(d);
	c[0x15] = (uint8_t)d->config_generation;
	put16(c + 0x16, vp->qsel);
	if (q) {
		put16(c + 0x18, q->size);
		put16(c + 0x1a, q->msix_vector);
		put16(c + 0x1c, q->ready);
		put16(c + 0x1e, vp->qsel);
		put_le(c + 0x20, q->desc_gpa, 8);
		put_le(c + 0x28, q->avail_gpa, 8);
		put_le(c + 0x30, q->used_gpa, 8);
	}
}

static uint16_t vp_vector_check(const struct virtio_pci *vp, uint64_t v)
{
	return v < vp->nvec ? (uint16_t)v : VIRTIO_PCI_NO_VECTOR;
}

static void vp_common_field(struct virtio_pci *vp, unsigned off, uint64_t v)
{
	struct virtio_dev *d = vp->vdev;
	struct virtq *q = vp_selq(vp);
	bool qcfg = q && virtio_dev_queue_configurable(d, vp->qsel);

	switch (off) {
	case 0x00: vp->dfsel = (uint32_t)v; break;
	case 0x08: vp->gfsel = (uint32_t)v; break;
	case 0x0c: virtio_dev_set_guest_features(d, vp->gfsel, (uint32_t)v); break;
	case 0x10: vp->config_vector = vp_vector_check(vp, v); break;
	case 0x14:
		virtio_dev_set_status(d, (uint8_t)v);
		if (v == 0) {
			vp->config_vector = VIRTIO_PCI_NO_VECTOR;
			vp_intx_update(vp);
			vp_ext_reset(vp);
		}
		break;
	case 0x16: vp->qsel = (uint16_t)v; break;
	case 0x18: if (qcfg) q->size = (uint16_t)v; break;
	case 0x1a: if (q) q->msix_vector = vp_vector_check(vp, v); break;
	case 0x1c: if (q && v == 1) virtio_dev_queue_enable(d, vp->qsel); break;
	case 0x20: if (qcfg) q->desc_gpa = v; break;
	case 0x28: if (qcfg) q->avail_gpa = v; break;
	case 0x30: if (qcfg) q->used_gpa = v; break;
	default: break;   /* read-only or queue_reset (not offered) */
	}
}

static const struct { uint8_t off, len; } vp_fields[] = {
	{ 0x00, 4 }, { 0x08, 4 }, { 0x0c, 4 }, { 0x10, 2 }, { 0x14, 1 },
	{ 0x16, 2 }, { 0x18, 2 }, { 0x1a, 2 }, { 0x1c, 2 }, { 0x20, 8 },
	{ 0x28, 8 }, { 0x30, 8 },
};

static void vp_common_write(struct virtio_pci *vp, unsigned off,
			    const uint8_t *data, unsigned len)
{
	uint8_t c[VP_COMMON_LEN];

	vp_common_image(vp, c);
	memcpy(c + off, data, len);
	for (unsigned i = 0; i < VIREO_ARRAY_SIZE(vp_fields); i++) {
		unsigned fo = vp_fields[i].off, fl = vp_fields[i].len;
		if (fo < off + len && off < fo + fl)
			vp_common_field(vp, fo, get_le(c + fo, fl));
	}
}

/* ---- MSI-X table ---- */

static void vp_msix_access(struct virtio_pci *vp, uint64_t off, uint8_t *data,
			   unsigned len, bool is_write)
{
	if (off >= VIRTIO_PCI_PBA_OFF - VIRTIO_PCI_MSIX_OFF) {
		uint64_t po = off - (VIRTIO_PCI_PBA_OFF - VIRTIO_PCI_MSIX_OFF);
		if (!is_write)
			put_le(data, po < 8 ? (uint64_t)vp->pba >> (8 * po) : 0, len);
		return;
	}
	for (unsigned done = 0; done < len; done += 4) {
		uint64_t o = off + done;
		unsigned v = (unsigned)(o / 16), field = (unsigned)(o % 16) / 4;
		uint32_t *w;

		if (v >= vp->nvec || len - done < 4 || o % 4) {
			if (!is_write)
				memset(data + done, 0, len - done);
			return;
		}
		w = field == 0 ? &vp->msix[v].addr_lo : field == 1 ? &vp->msix[v].addr_hi :
		    field == 2 ? &vp->msix[v].data : &vp->msix[v].ctrl;
		if (!is_write) {
			put32(data + done, *w);
			continue;
		}
		*w = (uint32_t)get_le(data + done, 4);
		if (field == 3)
			*w &= 1;
		else
			vp->routed[v] = false;
		vp_ext_sync(vp, v);
		vp_vector_unmasked(vp, v);
	}
}

/* ---- BAR ---- */

static void vp_bar_locked(struct virtio_pci *vp, uint64_t off, uint8_t *data,
			  unsigned len, bool is_write)
{
	struct virtio_dev *d = vp->vdev;

	if (off < VIRTIO_PCI_COMMON_OFF + VP_COMMON_LEN) {
		if (off + len > VP_COMMON_LEN) {
			if (!is_write)
				memset(data, 0, len);
		} else if (is_write) {
			vp_common_write(vp, (unsigned)off, data, len);
		} else {
			uint8_t c[VP_COMMON_LEN];
			vp_common_image(vp, c);
			memcpy(data, c + off, len);
		}
	} else if (off >= VIRTIO_PCI_ISR_OFF && off < VIRTIO_PCI_ISR_OFF + 4) {
		if (!is_write) {
			memset(data, 0, len);
			if (off == VIRTIO_PCI_ISR_OFF) {
				data[0] = d->isr;   /* reading clears it */
				d->isr = 0;
				if (!vp->msix_enable)
					vp_intx_update(vp);
			}
		}
	} else if (off >= VIRTIO_PCI_DEVICE_OFF && off < VIRTIO_PCI_NOTIFY_OFF) {
		if (is_write)
			virtio_dev_config_write(d, (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF),
						data, len);
		else
			virtio_dev_config_read(d, (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF),
					       data, len);
	} else if (off >= VIRTIO_PCI_NOTIFY_OFF && off < VIRTIO_PCI_MSIX_OFF) {
		uint64_t q = (off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;
		if (is_write)
			virtio_dev_queue_notify(d, (unsigned)VIREO_MIN(q, 0xffffu));
		else
			memset(data, 0, len);
	} else if (off >= VIRTIO_PCI_MSIX_OFF && off < VIRTIO_PCI_PBA_OFF + 0x1000) {
		vp_msix_access(vp, off - VIRTIO_PCI_MSIX_OFF, data, len, is_write);
	} else if (!is_write) {
		memset(data, 0, len);
	}
}

static void vp_bar_io(struct pci_dev *pd, unsigned bar, uint64_t off,
		      uint8_t *data, unsigned len, bool is_write)
{
	struct virtio_pci *vp = pd->opaque;

	if (bar != VIRTIO_PCI_BAR || off >= VIRTIO_PCI_BAR_SIZE ||
	    len > VIRTIO_PCI_BAR_SIZE - off) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	virtio_dev_lock(vp->vdev);
	vp_bar_locked(vp, off, data, len, is_write);
	virtio_dev_unlock(vp->vdev);
}

/* ---- config space hooks: MSI-X control, PCI configuration access cap ---- */

static bool overlaps(unsigned a, unsigned alen, unsigned b, unsigned blen)
{
	return a < b + blen && b < a + alen;
}

/* The VIRTIO_PCI_CAP_PCI_CFG window: an access to pci_cfg_data performs
 * a BAR access described by the capability's bar/offset/length. */
static void vp_cfg_window(struct virtio_pci *vp, uint8_t *data, unsigned off,
			  unsigned len, bool is_write)
{
	unsigned bar = pci_cfg_read(&vp->pci, vp->cfg_cap + 4, 1);
	uint32_t boff = pci_cfg_read(&vp->pci, vp->cfg_cap + 8, 4);
	uint32_t blen = pci_cfg_read(&vp->pci, vp->cfg_cap + 12, 4);
	unsigned win = vp->cfg_cap + 16;
	uint8_t buf[4];

	if (bar != VIRTIO_PCI_BAR || (blen != 1 && blen != 2 && blen != 4) ||
	    off != win || len != blen)
		return;
	if (is_write) {
		vp_bar_io(&vp->pci, VIRTIO_PCI_BAR, boff, data, len, true);
	} else {
		vp_bar_io(&vp->pci, VIRTIO_PCI_BAR, boff, buf, blen, false);
		memcpy(data, buf, len);
	}
}

static void vp_cfg_read(struct pci_dev *pd, unsigned off, uint8_t *data,
			unsigned len)
{
	struct virtio_pci *vp = pd->opaque;

	if (overlaps(off, len, vp->cfg_cap + 16, 4))
		vp_cfg_window(vp, data, off, len, false);
}

static void vp_cfg_write(struct pci_dev *pd, unsigned off, const uint8_t *data,
			 unsigned len)
{
	struct virtio_pci *vp = pd->opaque;

	if (overlaps(off, len, vp->msix_cap + 2, 2)) {
		uint16_t ctl = (uint16_t)pci_cfg_read(pd, vp->msix_cap + 2, 2);

		virtio_dev_lock(vp->vdev);
		vp->msix_enable = ctl & 0x8000;
		vp->msix_fmask = ctl & 0x4000;
		if (vp->msix_enable) {
			vp->vdev->isr = 0;
			pci_intx(&vp->pci, 0);
		}
		for (unsigned v = 0; v < vp->nvec; v++) {
			vp_ext_sync(vp, v);
			vp_vector_unmasked(vp, v);
		}
		virtio_dev_unlock(vp->vdev);
	}
	if (overlaps(off, len, vp->cfg_cap + 16, 4))
		vp_cfg_window(vp, (uint8_t *)data, off, len, true);
}

/* ---- queue kicks through ioeventfd ---- */

static void vp_kick(void *opaque, uint32_t events)
{
	struct vp_kick *k = opaque;
	uint64_t v;

	(void)events;
	if (__atomic_load_n(&k->taken, __ATOMIC_ACQUIRE) || read(k->fd, &v, sizeof(v)) < 0)
		return;
	virtio_dev_lock(k->vp->vdev);
	virtio_dev_queue_notify(k->vp->vdev, k->q);
	virtio_dev_unlock(k->vp->vdev);
}

static void vp_ioeventfds(struct virtio_pci *vp, bool on, uint64_t base)
{
	unsigned nq = vp->vdev->ops->nr_queues;

	if (vp->ioev_on) {
		for (unsigned q = 0; q < nq; q++)
			if (vp->kick[q].fd >= 0)
				irq_ioeventfd(vp->env->irq, vp->ioev_base + VIRTIO_PCI_NOTIFY_OFF +
					      VIRTIO_PCI_NOTIFY_MULT * q, 2, false, false,
					      0, vp->kick[q].fd, true);
		vp->ioev_on = false;
	}
	if (!on)
		return;
	for (unsigned q = 0; q < nq; q++) {
		int r;
		if (vp->kick[q].fd < 0)
			continue;
		r = irq_ioeventfd(vp->env->irq, base + VIRTIO_PCI_NOTIFY_OFF +
				  VIRTIO_PCI_NOTIFY_MULT * q, 2, false, false, 0,
				  vp->kick[q].fd, false);
		if (r < 0)
			vdebug("%s: no ioeventfd for queue %u (%s): kicks exit to "
			       "user space", vp->name, q, strerror(-r));
	}
	vp->ioev_on = true;
	vp->ioev_base = base;
}

/* Called under the PCI host lock: touches only the ioeventfd state. */
static void vp_bar_remap(struct pci_dev *pd, unsigned bar, uint64_t addr,
			 bool mapped)
{
	struct virtio_pci *vp = pd->opaque;

	if (bar == VIRTIO_PCI_BAR)
		vp_ioeventfds(vp, mapped, addr);
}

static const struct pci_dev_ops vp_pci_ops = {
	.bar_io = vp_bar_io,
	.cfg_read = vp_cfg_read,
	.cfg_write = vp_cfg_write,
	.bar_remap = vp_bar_remap,
};

/* ---- set-up ---- */

static int vp_vcap(struct virtio_pci *vp, uint8_t type, uint32_t off,
		   uint32_t len, unsigned caplen)
{
	int o = pci_cap_add(&vp->pci, 0x09, caplen);
	uint8_t *c;

	if (o < 0)
		return o;
	c = vp->pci.cfg + o;
	c[2] = (uint8_t)caplen;
	c[3] = type;
	c[4] = VIRTIO_PCI_BAR;
	put32(c + 8, off);
	put32(c + 12, len);
	return o;
}

static int vp_caps(struct virtio_pci *vp)
{
	uint32_t dlen = VIREO_MAX(vp->vdev->ops->config_size, 4u);
	int o;

	if ((o = vp_vcap(vp, VP_CAP_COMMON, VIRTIO_PCI_COMMON_OFF, VP_COMMON_LEN, 16)) < 0 ||
	    (o = vp_vcap(vp, VP_CAP_ISR, VIRTIO_PCI_ISR_OFF, 4, 16)) < 0 ||
	    (o = vp_vcap(vp, VP_CAP_DEVICE, VIRTIO_PCI_DEVICE_OFF, dlen, 16)) < 0)
		return o;
	o = vp_vcap(vp, VP_CAP_NOTIFY, VIRTIO_PCI_NOTIFY_OFF,
		    VIRTIO_PCI_NOTIFY_MULT * vp->vdev->ops->nr_queues, 20);
	if (o < 0)
		return o;
	put32(vp->pci.cfg + o + 16, VIRTIO_PCI_NOTIFY_MULT);
	o = vp_vcap(vp, VP_CAP_PCI, 0, 0, 20);
	if (o < 0)
		return o;
	vp->cfg_cap = (unsigned)o;
	vp->pci.wmask[o + 4] = 0xff;
	memset(vp->pci.wmask + o + 8, 0xff, 12);   /* offset, length, data */
	o = pci_cap_add(&vp->pci, 0x11, 12);
	if (o < 0)
		return o;
	vp->msix_cap = (unsigned)o;
	put16(vp->pci.cfg + o + 2, (uint16_t)(vp->nvec - 1));
	vp->pci.wmask[o + 3] = 0xc0;               /* enable, function mask */
	put32(vp->pci.cfg + o + 4, VIRTIO_PCI_MSIX_OFF | VIRTIO_PCI_BAR);
	put32(vp->pci.cfg + o + 8, VIRTIO_PCI_PBA_OFF | VIRTIO_PCI_BAR);
	return 0;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp)
		return;
	vp_ioeventfds(vp, false, 0);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		if (vp->kick[q].fd >= 0) {
			evloop_del(vp->env->loop, vp->kick[q].fd);
			close(vp->kick[q].fd);
		}
	}
	for (unsigned v = 0; v < vp->nvec; v++) {
		if (vp->irqfd[v] >= 0) {
			irq_irqfd(vp->env->irq, (unsigned)vp->gsi[v], vp->irqfd[v], true);
			close(vp->irqfd[v]);
		}
	}
	virtio_dev_destroy(vp->vdev);
	free(vp);
}

int virtio_pci_create(struct pci_host *host, struct virtio_dev *vdev,
		      struct virtio_pci **out)
{
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	uint8_t subclass, cls;
	int r;

	if (!vp) {
		virtio_dev_destroy(vdev);
		return -ENOMEM;
	}
	vp->env = &host->env;
	vp->vdev = vdev;
	vp->nvec = vdev->ops->nr_queues + 1;
	vp->config_vector = VIRTIO_PCI_NO_VECTOR;
	snprintf(vp->name, sizeof(vp->name), "%s", vdev->name);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vp->kick[q] = (struct vp_kick){ vp, q, -1, false };
	for (unsigned v = 0; v < VP_NVEC; v++) {
		vp->irqfd[v] = -1;
		vp->msix[v].ctrl = 1;   /* entries start masked */
	}
	vp->transport.irq_queue = vp_irq_queue;
	vp->transport.irq_config = vp_irq_config;
	vp->transport.queue_kick_fd = vp_queue_kick_fd;
	vp->transport.queue_call_fd = vp_queue_call_fd;
	vdev->transport = &vp->transport;
	vdev->transport_priv = vp;

	cls = virtio_dev_pci_class(vdev->ops->device_id, &subclass);
	pci_dev_init(&vp->pci, 0x1af4, (uint16_t)(0x1040 + vdev->ops->device_id),
		     (uint32_t)cls << 16 | (uint32_t)subclass << 8, 0x1af4, 0x1100,
		     &vp_pci_ops, vp, vp->name);
	vp->pci.cfg[0x08] = 1;   /* revision 1: a modern-only device */
	r = pci_bar_add(&vp->pci, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE, PCI_BAR_MEM64);
	if (r == 0)
		r = vp_caps(vp);
	if (r < 0) {
		verr("%s: cannot lay out the PCI function: %s", vp->name, strerror(-r));
		goto fail;
	}
	for (unsigned q = 0; q < vdev->ops->nr_queues; q++) {
		vp->kick[q].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vp->kick[q].fd < 0 ||
		    evloop_add(vp->env->loop, vp->kick[q].fd, EPOLLIN, vp_kick, &vp->kick[q]) < 0) {
			r = -errno;
			verr("%s: cannot set up queue %u notifications: %s", vp->name, q,
			     strerror(errno));
			goto fail;
		}
	}
	for (unsigned v = 0; v < vp->nvec; v++) {
		int gsi = irq_gsi_alloc(vp->env->irq);
		int fd = gsi < 0 ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

		if (fd >= 0 && irq_irqfd(vp->env->irq, (unsigned)gsi, fd, false) < 0) {
			close(fd);
			fd = -1;
		}
		vp->gsi[v] = gsi;
		vp->irqfd[v] = fd;   /* -1: vectors go through KVM_SIGNAL_MSI */
	}
	r = pci_register(host, &vp->pci);
	if (r < 0) {
		verr("%s: no free PCI slot (at most %d devices)", vp->name, PCI_MAX_SLOTS - 1);
		goto fail;
	}
	vdebug("%s: PCI slot %d", vp->name, r);
	*out = vp;
	return 0;
fail:
	virtio_pci_destroy(vp);
	return r;
}

struct virtio_dev *virtio_pci_vdev(struct virtio_pci *vp)
{
	return vp->vdev;
}

/* ---- save and restore ---- */

#define VP_CFG_COMMAND 0x04
#define VP_CFG_BAR0    0x10
#define VP_CFG_BARS_LEN 24      /* the six BAR registers */

_Static_assert(VP_NVEC <= VSTATE_MAX_VECTORS, "MSI-X vectors in the state file");
_Static_assert(VIRTIO_MAX_QUEUES <= VSTATE_MAX_QUEUES, "queues in the state file");
_Static_assert(PCI_CFG_SIZE == sizeof(((struct vstate_virtio *)0)->cfg), "config space");

int virtio_pci_save(struct virtio_pci *vp, struct vstate_virtio *s, char *err, size_t errlen)
{
	struct virtio_dev *d = vp->vdev;
	int r = 0;

	memset(s, 0, sizeof(*s));
	virtio_dev_lock(d);
	s->device_id = d->ops->device_id;
	s->nr_queues = (uint16_t)d->ops->nr_queues;
	s->nr_vectors = vp->nvec;
	s->host_features = d->host_features;
	s->guest_features = d->guest_features;
	s->config_generation = d->config_generation;
	s->status = d->status;
	s->isr = d->isr;
	s->msix_enable = vp->msix_enable;
	s->msix_fmask = vp->msix_fmask;
	s->dfsel = vp->dfsel;
	s->gfsel = vp->gfsel;
	s->qsel = vp->qsel;
	s->config_vector = vp->config_vector;
	s->pba = vp->pba;
	for (unsigned v = 0; v < vp->nvec; v++)
		s->msix[v] = (struct vstate_msix){ vp->msix[v].addr_lo, vp->msix[v].addr_hi,
						   vp->msix[v].data, vp->msix[v].ctrl };
	/* Queues served outside vireo-vmm (vhost) bring their indices in. */
	if (d->ops->sync && virtio_dev_running(d))
		d->ops->sync(d);
	for (unsigned q = 0; q < d->ops->nr_queues; q++) {
		const struct virtq *vq = &d->vq[q];

		s->vq[q] = (struct vstate_vq){
			.desc_gpa = vq->desc_gpa, .avail_gpa = vq->avail_gpa,
			.used_gpa = vq->used_gpa, .size = vq->size,
			.msix_vector = vq->msix_vector, .last_avail = vq->last_avail,
			.used_idx = vq->used_idx, .signalled_used = vq->signalled_used,
			.ready = vq->ready, .broken = vq->broken,
			.signalled_valid = vq->signalled_valid,
		};
	}
	if (d->ops->save) {
		size_t n = d->ops->save(d, NULL, 0);

		if (n > sizeof(s->model)) {
			snprintf(err, errlen, "%s: %zu bytes of device state, at most %zu", vp->name,
				 n, sizeof(s->model));
			r = -ENOTSUP;
		} else {
			s->model_len = (uint32_t)d->ops->save(d, s->model, n);
		}
	}
	virtio_dev_unlock(d);
	pthread_mutex_lock(&vp->pci.host->lock);
	memcpy(s->cfg, vp->pci.cfg, sizeof(s->cfg));
	pthread_mutex_unlock(&vp->pci.host->lock);
	return r;
}

/* A config space write as the guest's, through the host (BAR moves, the
 * MSI-X control hook). */
static void vp_cfg_put(struct virtio_pci *vp, unsigned off, const uint8_t *src, unsigned len)
{
	uint8_t b[16];

	memcpy(b, src, len);
	pci_cfg_access(vp->pci.host, vp->pci.slot, off, b, len, true);
}

int virtio_pci_restore(struct virtio_pci *vp, const struct vstate_virtio *s, char *err,
		       size_t errlen)
{
	struct virtio_dev *d = vp->vdev;
	const uint8_t early = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK;
	uint8_t zero[2] = { 0, 0 };
	bool same_bars;
	int r = 0;

	if (s->device_id != d->ops->device_id || s->nr_queues != d->ops->nr_queues ||
	    s->nr_vectors != vp->nvec || s->host_features != d->host_features) {
		snprintf(err, errlen, "%s differs from the saved device (id %u, %u queues, "
			 "features 0x%llx)", vp->name, s->device_id, s->nr_queues,
			 (unsigned long long)s->host_features);
		return -EINVAL;
	}
	/* Config space: decoding off, the header's BARs and interrupt line,
	 * then the command register (the BARs map at the saved addresses),
	 * the PCI configuration access capability's fields (not its data
	 * window, whose write is a BAR access).  BARs where the device was
	 * built (the guest kept them, as it mostly does) stay mapped: no
	 * decoding off, whose ioeventfds' removal and return each cost KVM
	 * an SRCU grace period, in the target's downtime. */
	pthread_mutex_lock(&vp->pci.host->lock);
	same_bars = memcmp(vp->pci.cfg + VP_CFG_BAR0, s->cfg + VP_CFG_BAR0, VP_CFG_BARS_LEN) == 0;
	pthread_mutex_unlock(&vp->pci.host->lock);
	if (!same_bars)
		vp_cfg_put(vp, VP_CFG_COMMAND, zero, 2);
	for (unsigned off = VP_CFG_BAR0; off < 0x40; off += 4)
		vp_cfg_put(vp, off, s->cfg + off, 4);
	vp_cfg_put(vp, VP_CFG_COMMAND, s->cfg + VP_CFG_COMMAND, 2);
	vp_cfg_put(vp, vp->cfg_cap + 4, s->cfg + vp->cfg_cap + 4, 12);

	/* The MSI-X table, then its enable and mask bits. */
	virtio_dev_lock(d);
	for (unsigned v = 0; v < vp->nvec; v++) {
		const uint32_t w[4] = { s->msix[v].addr_lo, s->msix[v].addr_hi, s->msix[v].data,
					s->msix[v].ctrl };

		for (unsigned f = 0; f < 4; f++) {
			uint8_t b[4];

			put32(b, w[f]);
			vp_msix_access(vp, v * 16 + f * 4, b, 4, true);
		}
	}
	virtio_dev_unlock(d);
	vp_cfg_put(vp, vp->msix_cap + 2, s->cfg + vp->msix_cap + 2, 2);

	/* The driver's set-up, as it wrote it: features, status up to
	 * FEATURES_OK, each queue, then DRIVER_OK (the device starts). */
	virtio_dev_lock(d);
	vp_common_field(vp, 0x08, 0);
	vp_common_field(vp, 0x0c, (uint32_t)s->guest_features);
	vp_common_field(vp, 0x08, 1);
	vp_common_field(vp, 0x0c, (uint32_t)(s->guest_features >> 32));
	if (s->status & early)
		vp_common_field(vp, 0x14, s->status & early);
	if ((s->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !(d->status & VIRTIO_STATUS_FEATURES_OK)) {
		snprintf(err, errlen, "%s refused the saved features 0x%llx", vp->name,
			 (unsigned long long)s->guest_features);
		r = -EINVAL;
		goto out;
	}
	for (unsigned q = 0; q < d->ops->nr_queues; q++) {
		const struct vstate_vq *sq = &s->vq[q];

		vp_common_field(vp, 0x16, q);
		vp_common_field(vp, 0x18, sq->size);
		vp_common_field(vp, 0x20, sq->desc_gpa);
		vp_common_field(vp, 0x28, sq->avail_gpa);
		vp_common_field(vp, 0x30, sq->used_gpa);
		vp_common_field(vp, 0x1a, sq->msix_vector);
		if (!sq->ready)
			continue;
		vp_common_field(vp, 0x1c, 1);
		if (!d->vq[q].ready) {
			snprintf(err, errlen, "%s: the saved queue %u does not fit this VM "
				 "(size %u, rings at 0x%llx)", vp->name, q, sq->size,
				 (unsigned long long)sq->desc_gpa);
			r = -EINVAL;
			goto out;
		}
	}
	vp_common_field(vp, 0x10, s->config_vector);
	/* What the device had done: the rings' indices, before DRIVER_OK, so
	 * that activate (which may work the queues, or hand them to vhost
	 * with VHOST_SET_VRING_BASE) starts where the saved device stopped
	 * and replays nothing. */
	for (unsigned q = 0; q < d->ops->nr_queues; q++) {
		struct virtq *vq = &d->vq[q];

		vq->last_avail = s->vq[q].last_avail;
		vq->used_idx = s->vq[q].used_idx;
		vq->signalled_used = s->vq[q].signalled_used;
		vq->signalled_valid = s->vq[q].signalled_valid;
		vq->broken = vq->broken || s->vq[q].broken;
		/* Guest RAM must agree (a state and RAM taken at one
		 * moment): else the guest would see buffers used twice or
		 * never.  The device writes its own index with its next
		 * buffer; this says where the two came apart. */
		uint16_t ram;

		if (virtq_ram_used_idx(vq, &ram) && ram != vq->used_idx)
			vwarn("%s: queue %u: guest RAM says %u buffers used, the saved "
			      "state %u: RAM and device state do not match", vp->name, q,
			      ram, vq->used_idx);
	}
	/* A device that needed a reset is not activated again. */
	d->status |= s->status & VIRTIO_STATUS_NEEDS_RESET;
	if (s->status & ~early)
		vp_common_field(vp, 0x14, s->status & (uint8_t)~VIRTIO_STATUS_NEEDS_RESET);
	if ((s->status & VIRTIO_STATUS_DRIVER_OK) && !(s->status & VIRTIO_STATUS_NEEDS_RESET) &&
	    !virtio_dev_running(d)) {
		snprintf(err, errlen, "%s could not be started again with the saved state",
			 vp->name);
		r = -EINVAL;
		goto out;
	}
	d->isr = s->isr;
	d->config_generation = s->config_generation;
	vp->dfsel = s->dfsel;
	vp->gfsel = s->gfsel;
	vp->qsel = s->qsel;
	vp->pba = s->pba & ((1u << vp->nvec) - 1);
	if (s->model_len) {
		if (!d->ops->restore || d->ops->restore(d, s->model, s->model_len)) {
			snprintf(err, errlen, "%s: the saved device state cannot be restored",
				 vp->name);
			r = -EINVAL;
			goto out;
		}
	}
	if (!vp->msix_enable)
		vp_intx_update(vp);
	for (unsigned v = 0; v < vp->nvec; v++)
		vp_vector_unmasked(vp, v);
out:
	virtio_dev_unlock(d);
	return r;
}

void virtio_pci_restore_kick(struct virtio_pci *vp)
{
	struct virtio_dev *d = vp->vdev;

	virtio_dev_lock(d);
	if (virtio_dev_running(d))
		for (unsigned q = 0; q < d->ops->nr_queues; q++)
			if (d->vq[q].ready)
				virtio_dev_queue_notify(d, q);
	virtio_dev_unlock(d);
}
