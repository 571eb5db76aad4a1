/* virtio-vsock through vhost-vsock: see vsock.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vhost.h>

#include <vireo/util.h>

#include "../vhost.h"
#include "virtio_opts.h"
#include "vsock.h"

#define VQ_RX 0u
#define VQ_TX 1u
#define VQ_EVENT 2u

struct vsock_relay {
	struct virtio_dev *d;
	unsigned q;
	int fd;
};

struct virtio_vsock {
	struct virtio_dev vdev;
	struct vhost vh;
	uint64_t cid;
	uint8_t config[8];
	bool started;          /* the kernel runs rx/tx */
	bool was_active;       /* a driver reached DRIVER_OK before */
	bool reset_pending;    /* a transport reset event to deliver */
	uint64_t resets_sent;
	/* Without an irqfd for a queue (no MSI-X), vhost signals these and
	 * the event loop raises the queue's interrupt. */
	struct vsock_relay relay[2];
	struct virtq_chain chain;
};

static struct virtio_vsock *to_vsock(struct virtio_dev *d)
{
	return (struct virtio_vsock *)d;
}

static int vsock_running(struct virtio_vsock *s, int on)
{
	return ioctl(s->vh.fd, VHOST_VSOCK_SET_RUNNING, &on) < 0 ? -errno : 0;
}

/* Stop the kernel's queues and take its eventfds away. */
static void vsock_stop(struct virtio_vsock *s)
{
	if (!s->started)
		return;
	if (vsock_running(s, 0) < 0)
		vwarn("%s: cannot stop vhost-vsock: %s", s->vdev.name, strerror(errno));
	vhost_vring_stop(&s->vh, VQ_RX);
	vhost_vring_stop(&s->vh, VQ_TX);
	for (unsigned q = VQ_RX; q <= VQ_TX; q++) {
		s->vdev.transport->queue_kick_fd(&s->vdev, q, false);
		s->vdev.transport->queue_call_fd(&s->vdev, q, false);
	}
	s->started = false;
}

/* Deliver a pending transport reset event if the guest gave a buffer. */
static void vsock_events(struct virtio_vsock *s)
{
	struct virtq *q = &s->vdev.vq[VQ_EVENT];
	uint8_t ev[4] = { VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0 };
	size_t n;

	if (!s->reset_pending || !virtio_dev_running(&s->vdev) || !q->ready)
		return;
	if (virtq_pop(q, &s->chain) <= 0)
		return;
	n = virtq_chain_write(&s->chain, 0, ev, sizeof(ev));
	virtq_push(q, s->chain.head, (uint32_t)n);
	if (n == sizeof(ev)) {
		s->reset_pending = false;
		s->resets_sent++;
	}
	virtio_dev_queue_interrupt(&s->vdev, VQ_EVENT);
}

static void vsock_queue_notify(struct virtio_dev *d, unsigned q)
{
	/* rx/tx kicks go to the kernel once started; before DRIVER_OK there
	 * is nothing to do with them. */
	if (q == VQ_EVENT)
		vsock_events(to_vsock(d));
}

static void vsock_relay_cb(void *opaque)
{
	struct vsock_relay *r = opaque;
	struct virtio_dev *d = r->d;
	uint64_t v;

	if (read(r->fd, &v, sizeof(v)) < 0)
		return;
	virtio_dev_lock(d);
	if (virtio_dev_running(d) && d->transport && d->transport->irq_queue) {
		d->isr |= VIRTIO_ISR_QUEUE;
		d->transport->irq_queue(d, r->q);
	}
	virtio_dev_unlock(d);
}

static int vsock_activate(struct virtio_dev *d)
{
	struct virtio_vsock *s = to_vsock(d);
	const struct virtio_transport *t = d->transport;
	int r;

	if (!t || !t->queue_kick_fd || !t->queue_call_fd) {
		verr("%s: the transport cannot hand queues to vhost", d->name);
		return -ENOTSUP;
	}
	vsock_stop(s);
	s->started = true;   /* from here on vsock_stop undoes what was done */
	r = vhost_set_features(&s->vh, d->guest_features);
	if (r == 0)
		r = vhost_set_mem_table(&s->vh, d->env->mem);
	for (unsigned q = VQ_RX; q <= VQ_TX && r == 0; q++) {
		int kick = t->queue_kick_fd(d, q, true);
		int call = t->queue_call_fd(d, q, true);

		if (call < 0)
			call = s->relay[q].fd;
		if (kick < 0 || call < 0) {
			r = kick < 0 ? kick : -ENOTSUP;
			break;
		}
		r = vhost_vring_start(&s->vh, q, &d->vq[q], kick, call);
	}
	if (r == 0)
		r = vsock_running(s, 1);
	if (r < 0) {
		verr("%s: cannot start vhost-vsock: %s", d->name, strerror(-r));
		vsock_stop(s);
		return r;
	}
	vdebug("%s: vhost-vsock running for CID %llu", d->name, (unsigned long long)s->cid);
	/* A driver that comes after another (a reset guest) may find the
	 * host side still holding connections from before. */
	if (s->was_active)
		s->reset_pending = true;
	s->was_active = true;
	vsock_events(s);
	return 0;
}

static void vsock_reset(struct virtio_dev *d)
{
	vsock_stop(to_vsock(d));
}

static void vsock_config_read(struct virtio_dev *d, uint32_t off, void *buf,
			      uint32_t len)
{
	memcpy(buf, to_vsock(d)->config + off, len);
}

/* ---- save and restore ---- */

#define VSOCK_STATE_VERSION 1u

struct vsock_state {
	uint8_t version;        /* VSOCK_STATE_VERSION */
	uint8_t was_active;
	uint8_t reset_pending;
	uint8_t pad[5];
	uint64_t cid;           /* must be this device's */
	uint64_t resets_sent;
};
_Static_assert(sizeof(struct vsock_state) == 24, "vsock state layout");

/* Before a save: the kernel's rx/tx stop a moment, their indices come
 * into vq[]; then they run on (the eventfds stay). */
static void vsock_sync(struct virtio_dev *d)
{
	struct virtio_vsock *s = to_vsock(d);

	if (!s->started)
		return;
	if (vsock_running(s, 0) < 0)
		vwarn("%s: cannot stop vhost-vsock for the save: %s", d->name, strerror(errno));
	for (unsigned q = VQ_RX; q <= VQ_TX; q++)
		if (d->vq[q].ready && vhost_vring_sync(&s->vh, q, &d->vq[q]) < 0)
			vwarn("%s: cannot read queue %u's index from vhost-vsock", d->name, q);
	if (vsock_running(s, 1) < 0)
		vwarn("%s: cannot restart vhost-vsock after the save: %s", d->name,
		      strerror(errno));
}

static size_t vsock_save(struct virtio_dev *d, void *buf, size_t len)
{
	const struct virtio_vsock *s = to_vsock(d);
	struct vsock_state st = {
		.version = VSOCK_STATE_VERSION, .was_active = s->was_active,
		.reset_pending = s->reset_pending, .cid = s->cid,
		.resets_sent = s->resets_sent,
	};

	if (buf && len >= sizeof(st))
		memcpy(buf, &st, sizeof(st));
	return sizeof(st);
}

/* The queues were started again from the saved indices (activate); the
 * host side's connections are gone, so the guest is told to drop its
 * own: a transport reset event, as after a driver reset. */
static int vsock_restore(struct virtio_dev *d, const void *buf, size_t len)
{
	struct virtio_vsock *s = to_vsock(d);
	struct vsock_state st;

	if (len != sizeof(st))
		return -EINVAL;
	memcpy(&st, buf, sizeof(st));
	if (st.version != VSOCK_STATE_VERSION || st.was_active > 1 || st.reset_pending > 1 ||
	    st.cid != s->cid || st.pad[0] || st.pad[1] || st.pad[2] || st.pad[3] || st.pad[4])
		return -EINVAL;
	s->resets_sent = st.resets_sent;
	s->was_active = st.was_active || virtio_dev_running(d);
	s->reset_pending = true;
	vsock_events(s);
	return 0;
}

static void vsock_free(struct virtio_vsock *s)
{
	const struct virtio_env *env = s->vdev.env;

	for (unsigned q = 0; q < 2; q++) {
		if (s->relay[q].fd < 0)
			continue;
		if (env->unwatch_fd)
			env->unwatch_fd(env->loop, s->relay[q].fd);
		close(s->relay[q].fd);
	}
	vhost_close(&s->vh);
	virtio_dev_fini(&s->vdev);
	free(s);
}

static void vsock_destroy(struct virtio_dev *d)
{
	struct virtio_vsock *s = to_vsock(d);

	virtio_dev_lock(d);
	vsock_stop(s);
	virtio_dev_unlock(d);
	vsock_free(s);
}

static const struct virtio_dev_ops vsock_ops = {
	.device_id = VIRTIO_ID_VSOCK,
	.config_size = 8,
	.nr_queues = 3,
	.max_queue_size = VIRTIO_VSOCK_QUEUE_SIZE,
	.config_read = vsock_config_read,
	.queue_notify = vsock_queue_notify,
	.activate = vsock_activate,
	.save = vsock_save,
	.restore = vsock_restore,
	.sync = vsock_sync,
	.reset = vsock_reset,
	.destroy = vsock_destroy,
};

int virtio_vsock_create(const struct virtio_env *env, const char *vhost_path,
			uint64_t cid, struct virtio_dev **out)
{
	struct virtio_vsock *s;
	int r;

	if (!virtio_opts_vsock_cid_ok(cid)) {
		verr("vsock: CID %llu is reserved or too large (use 3 to %llu)",
		     (unsigned long long)cid, (unsigned long long)VIRTIO_VSOCK_CID_MAX);
		return -EINVAL;
	}
	if (!vhost_path)
		vhost_path = VIRTIO_VSOCK_DEFAULT_DEV;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->relay[0].fd = s->relay[1].fd = -1;
	r = vhost_open(&s->vh, vhost_path, env->open_file);
	if (r == -ENOENT || r == -ENODEV || r == -ENXIO)
		verr("vsock: %s does not exist: the host kernel needs the vhost_vsock "
		     "module (modprobe vhost_vsock)", vhost_path);
	else if (r == -EACCES || r == -EPERM)
		verr("vsock: no permission to open %s", vhost_path);
	else if (r < 0)
		verr("vsock: %s is not a usable vhost device: %s", vhost_path, strerror(-r));
	if (r < 0) {
		free(s);
		return r;
	}
	if (!(s->vh.features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		verr("vsock: %s does not offer VIRTIO_F_VERSION_1", vhost_path);
		vhost_close(&s->vh);
		free(s);
		return -ENOTSUP;
	}
	if (ioctl(s->vh.fd, VHOST_VSOCK_SET_GUEST_CID, &cid) < 0) {
		r = -errno;
		if (r == -EADDRINUSE)
			verr("vsock: CID %llu is already used by another VM on this host",
			     (unsigned long long)cid);
		else
			verr("vsock: %s refused CID %llu: %s", vhost_path,
			     (unsigned long long)cid, strerror(-r));
		vhost_close(&s->vh);
		free(s);
		return r;
	}
	s->cid = cid;
	for (unsigned i = 0; i < 8; i++)
		s->config[i] = (uint8_t)(cid >> (8 * i));
	virtio_dev_init(&s->vdev, &vsock_ops, env, "virtio-vsock",
			s->vh.features & VIRTIO_BIT(VIRTIO_VSOCK_F_SEQPACKET));
	/* Offer only what the kernel's side does too. */
	s->vdev.host_features &= s->vh.features |
				 VIRTIO_BIT(VIRTIO_VSOCK_F_SEQPACKET);
	for (unsigned q = 0; q < 2; q++) {
		s->relay[q] = (struct vsock_relay){ &s->vdev, q, -1 };
		if (!env->watch_fd)
			continue;
		s->relay[q].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (s->relay[q].fd < 0 ||
		    env->watch_fd(env->loop, s->relay[q].fd, vsock_relay_cb, &s->relay[q]) < 0) {
			r = -errno;
			if (s->relay[q].fd >= 0)
				close(s->relay[q].fd);
			s->relay[q].fd = -1;
			vsock_free(s);
			return r ? r : -ENOMEM;
		}
	}
	*out = &s->vdev;
	return 0;
}

void virtio_vsock_transport_reset(struct virtio_dev *d)
{
	struct virtio_vsock *s = to_vsock(d);

	virtio_dev_lock(d);
	s->reset_pending = true;
	vsock_events(s);
	virtio_dev_unlock(d);
}

uint64_t virtio_vsock_resets_sent(struct virtio_dev *d)
{
	uint64_t n;

	virtio_dev_lock(d);
	n = to_vsock(d)->resets_sent;
	virtio_dev_unlock(d);
	return n;
}
