/* Transport-independent virtio device core: status, features, queues. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vireo/util.h>

#include "virtio.h"

/* The loop's call after a yield: resume the queues that ran out of budget. */
static void virtio_dev_resume(void *opaque)
{
	struct virtio_dev *d = opaque;
	uint64_t v;
	uint32_t mask;

	if (read(d->yield_fd, &v, sizeof(v)) < 0) {
		/* spurious wake-up */
	}
	virtio_dev_lock(d);
	mask = d->yielded;
	d->yielded = 0;
	for (unsigned q = 0; q < d->ops->nr_queues && q < VIRTIO_MAX_QUEUES; q++)
		if ((mask & (1u << q)) && virtio_dev_running(d) && d->ops->queue_notify)
			d->ops->queue_notify(d, q);
	virtio_dev_unlock(d);
}

void virtio_dev_yield(struct virtio_dev *d, unsigned q)
{
	uint64_t one = 1;

	d->yields++;
	if (d->yield_fd < 0 || q >= VIRTIO_MAX_QUEUES)
		return;
	d->yielded |= 1u << q;
	if (write(d->yield_fd, &one, sizeof(one)) < 0) {
		/* already pending: the loop comes back anyway */
	}
}

void virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops,
		     const struct virtio_env *env, const char *name,
		     uint64_t features)
{
	memset(d, 0, sizeof(*d));
	d->ops = ops;
	d->env = env;
	snprintf(d->name, sizeof(d->name), "%s", name);
	pthread_mutex_init(&d->lock, NULL);
	d->host_features = features | VIRTIO_BIT(VIRTIO_F_VERSION_1) |
			   VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
			   VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		d->vq[i].dev = d;
		d->vq[i].index = i;
		virtq_reset(&d->vq[i]);
	}
	for (unsigned i = 0; i < ops->nr_queues && i < VIRTIO_MAX_QUEUES; i++)
		d->vq[i].size = ops->max_queue_size;
	d->yield_fd = -1;
	if (env && env->watch_fd) {
		d->yield_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->yield_fd >= 0 &&
		    env->watch_fd(env->loop, d->yield_fd, virtio_dev_resume, d) < 0) {
			close(d->yield_fd);
			d->yield_fd = -1;
		}
	}
}

uint8_t virtio_dev_status(const struct virtio_dev *d)
{
	return d->status;
}

void virtio_dev_reset(struct virtio_dev *d)
{
	if (d->ops->reset)
		d->ops->reset(d);
	d->status = 0;
	d->isr = 0;
	d->guest_features = 0;
	d->fail_logged = false;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		virtq_reset(&d->vq[i]);
		if (i < d->ops->nr_queues)
			d->vq[i].size = d->ops->max_queue_size;
	}
}

static bool features_acceptable(const struct virtio_dev *d)
{
	if (d->guest_features & ~d->host_features) {
		vwarn("%s: driver accepted features 0x%llx that were not offered "
		      "(offered 0x%llx); refusing FEATURES_OK", d->name,
		      (unsigned long long)(d->guest_features & ~d->host_features),
		      (unsigned long long)d->host_features);
		return false;
	}
	if (!(d->guest_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		vwarn("%s: driver did not accept VIRTIO_F_VERSION_1 (legacy drivers "
		      "are not supported); refusing FEATURES_OK", d->name);
		return false;
	}
	return true;
}

void virtio_dev_set_status(struct virtio_dev *d, uint8_t status)
{
	uint8_t added;

	if (status == 0) {
		virtio_dev_reset(d);
		return;
	}
	/* NEEDS_RESET is the device's to set; a driver may not clear bits
	 * except by writing 0. */
	status = (uint8_t)((status & ~VIRTIO_STATUS_NEEDS_RESET) |
			   (d->status & VIRTIO_STATUS_NEEDS_RESET));
	if ((d->status & ~VIRTIO_STATUS_NEEDS_RESET) & ~status) {
		vwarn("%s: driver tried to clear status bits (0x%x -> 0x%x) without "
		      "a reset; ignored", d->name, d->status, status);
		status |= d->status;
	}
	added = (uint8_t)(status & ~d->status);

	if (added & VIRTIO_STATUS_FEATURES_OK) {
		if (!features_acceptable(d))
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	}
	if ((added & VIRTIO_STATUS_DRIVER_OK) &&
	    !(status & VIRTIO_STATUS_FEATURES_OK)) {
		vwarn("%s: DRIVER_OK without FEATURES_OK; ignored", d->name);
		status &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
		added &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	}
	d->status = status;
	if ((added & VIRTIO_STATUS_DRIVER_OK) &&
	    !(status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) &&
	    d->ops->activate) {
		int r = d->ops->activate(d);
		if (r < 0)
			virtio_dev_fail(d, "could not start: %s", strerror(-r));
	}
}

uint32_t virtio_dev_host_features(const struct virtio_dev *d, uint32_t sel)
{
	if (sel > 1)
		return 0;
	return (uint32_t)(d->host_features >> (32 * sel));
}

void virtio_dev_set_guest_features(struct virtio_dev *d, uint32_t sel,
				   uint32_t val)
{
	uint64_t mask;

	if (sel > 1 || (d->status & VIRTIO_STATUS_FEATURES_OK))
		return;
	mask = 0xffffffffULL << (32 * sel);
	d->guest_features = (d->guest_features & ~mask) |
			    ((uint64_t)val << (32 * sel));
}

bool virtio_dev_queue_configurable(const struct virtio_dev *d, unsigned q)
{
	return q < d->ops->nr_queues && q < VIRTIO_MAX_QUEUES &&
	       !d->vq[q].ready && (d->status & VIRTIO_STATUS_FEATURES_OK) &&
	       !(d->status & VIRTIO_STATUS_DRIVER_OK);
}

int virtio_dev_queue_enable(struct virtio_dev *d, unsigned q)
{
	struct virtq *vq;

	if (q >= d->ops->nr_queues || q >= VIRTIO_MAX_QUEUES)
		return -EINVAL;
	vq = &d->vq[q];
	if (vq->ready)
		return 0;
	if (vq->size > d->ops->max_queue_size) {
		virtio_dev_fail(d, "queue %u: size %u above the maximum %u", q,
				vq->size, d->ops->max_queue_size);
		return -EINVAL;
	}
	vq->event_idx = virtio_dev_has(d, VIRTIO_F_EVENT_IDX);
	vq->indirect = virtio_dev_has(d, VIRTIO_F_INDIRECT_DESC);
	return virtq_enable(vq, d->env->mem);
}

void virtio_dev_config_read(struct virtio_dev *d, uint32_t off, void *buf,
			    uint32_t len)
{
	memset(buf, 0, len);
	if (off > d->ops->config_size || len > d->ops->config_size - off)
		return;
	if (d->ops->config_read)
		d->ops->config_read(d, off, buf, len);
}

void virtio_dev_config_write(struct virtio_dev *d, uint32_t off,
			     const void *buf, uint32_t len)
{
	if (off > d->ops->config_size || len > d->ops->config_size - off)
		return;
	if (d->ops->config_write)
		d->ops->config_write(d, off, buf, len);
}

void virtio_dev_config_changed(struct virtio_dev *d)
{
	d->config_generation++;
	if (!(d->status & VIRTIO_STATUS_DRIVER_OK))
		return;
	d->isr |= VIRTIO_ISR_CONFIG;
	if (d->transport && d->transport->irq_config)
		d->transport->irq_config(d);
}

void virtio_dev_queue_notify(struct virtio_dev *d, unsigned q)
{
	if (q >= d->ops->nr_queues || q >= VIRTIO_MAX_QUEUES)
		return;
	if (!virtio_dev_running(d) || !d->vq[q].ready || d->vq[q].broken)
		return;
	if (d->ops->queue_notify)
		d->ops->queue_notify(d, q);
}

void virtio_dev_queue_interrupt(struct virtio_dev *d, unsigned q)
{
	if (!virtq_should_notify(&d->vq[q]))
		return;
	d->isr |= VIRTIO_ISR_QUEUE;
	if (d->transport && d->transport->irq_queue)
		d->transport->irq_queue(d, q);
}

void virtio_dev_fail(struct virtio_dev *d, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		d->vq[i].broken = d->vq[i].broken || d->vq[i].ready;
	if (!d->fail_logged) {
		verr("%s: guest driver error, device needs reset: %s", d->name, msg);
		d->fail_logged = true;
	}
	if (d->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	d->status |= VIRTIO_STATUS_NEEDS_RESET;
	virtio_dev_config_changed(d);
}

void virtio_dev_fini(struct virtio_dev *d)
{
	if (d->yield_fd >= 0) {
		if (d->env->unwatch_fd)
			d->env->unwatch_fd(d->env->loop, d->yield_fd);
		close(d->yield_fd);
		d->yield_fd = -1;
	}
	pthread_mutex_destroy(&d->lock);
}

void virtio_dev_destroy(struct virtio_dev *d)
{
	if (!d)
		return;
	if (d->ops->destroy)
		d->ops->destroy(d);
	else
		virtio_dev_fini(d);
}

uint8_t virtio_dev_pci_class(uint16_t device_id, uint8_t *subclass)
{
	switch (device_id) {
	case VIRTIO_ID_NET:     *subclass = 0x00; return 0x02; /* ethernet */
	case VIRTIO_ID_BLOCK:   *subclass = 0x00; return 0x01; /* storage */
	case VIRTIO_ID_CONSOLE: *subclass = 0x80; return 0x07; /* comm, other */
	default:                *subclass = 0x00; return 0xff; /* unclassified */
	}
}
