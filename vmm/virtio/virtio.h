/*
 * The virtio device model, independent of the transport.
 *
 * A device (blk, console, rng, later net, balloon, vsock) embeds a
 * struct virtio_dev as its first member and fills a struct virtio_dev_ops.
 * A transport (vmm/virtio/pci.c) turns the guest's register accesses into
 * calls to the virtio_dev_* functions below, which run the status and
 * feature negotiation state machine (virtio 1.2, 3.1) and the queue set-up,
 * and it delivers interrupts through struct virtio_transport.
 *
 * Threads: every entry into a device holds its lock (d->lock): the
 * transport takes it around register accesses (vCPU threads) and queue
 * kicks (event loop); device callbacks registered through virtio_env and
 * the devices' public functions take it themselves.  Functions declared
 * here expect the caller to hold it, except init and destroy.
 */
#ifndef VIREO_VMM_VIRTIO_H
#define VIREO_VMM_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../gmem.h"
#include "virtq.h"

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE  1u
#define VIRTIO_STATUS_DRIVER       2u
#define VIRTIO_STATUS_DRIVER_OK    4u
#define VIRTIO_STATUS_FEATURES_OK  8u
#define VIRTIO_STATUS_NEEDS_RESET  64u
#define VIRTIO_STATUS_FAILED       128u

/* Transport-level feature bits (6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* Device ids (5). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK   19

/* ISR status bits (4.1.4.5). */
#define VIRTIO_ISR_QUEUE  1u
#define VIRTIO_ISR_CONFIG 2u

#define VIRTIO_MAX_QUEUES 8u

#define VIRTIO_BIT(b) (1ULL << (b))

struct virtio_dev;

/*
 * What a device needs from the VMM: guest memory, and a way to have the
 * event loop call it back when a file descriptor is readable (backend
 * completions, timers).  watch_fd returns 0 or -errno.
 */
struct virtio_env {
	const struct gmem *mem;
	void *loop;
	int (*watch_fd)(void *loop, int fd, void (*cb)(void *opaque),
			void *opaque);
	void (*unwatch_fd)(void *loop, int fd);
	/* How a device opens a host file (a vhost node): open(2) when NULL;
	 * vireo-vmm gives the descriptors it opened before its sandbox. */
	int (*open_file)(const char *path, int flags, mode_t mode);
};

/* Filled by the transport: how to interrupt the guest. */
struct virtio_transport {
	void (*irq_queue)(struct virtio_dev *dev, unsigned q);
	void (*irq_config)(struct virtio_dev *dev);
	/*
	 * For devices whose queues are served outside the VMM (vhost-net,
	 * vhost-vsock): both optional (NULL: not available), both called with
	 * the device lock held, from ops->activate (take) and ops->reset or
	 * destroy (give back, take false).
	 *
	 * queue_kick_fd(take): the eventfd the guest's notifications of queue
	 * q signal (KVM ioeventfd).  From then until it is given back (or the
	 * driver resets the device) the transport no longer reads it itself
	 * (ops->queue_notify is not called for q): whoever took it serves the
	 * kicks.  Returns the fd (still the transport's: do not close it) or
	 * -errno.
	 *
	 * queue_call_fd(take): an eventfd whose every write interrupts the
	 * guest as virtio_dev_queue_interrupt() would for queue q (a KVM irqfd
	 * on the queue's MSI-X vector; its route installed now and kept in
	 * step with the guest's MSI-X table, removed while the vector is
	 * masked, the vector fired once on unmasking).  Returns the fd (the
	 * transport's) or -errno when there is none (-ENOENT: no MSI-X or no
	 * vector for q): the device must then interrupt through
	 * virtio_dev_queue_interrupt() itself.
	 */
	int (*queue_kick_fd)(struct virtio_dev *dev, unsigned q, bool take);
	int (*queue_call_fd)(struct virtio_dev *dev, unsigned q, bool take);
};

struct virtio_dev_ops {
	uint16_t device_id;     /* VIRTIO_ID_* */
	uint32_t config_size;   /* bytes of device-specific config */
	unsigned nr_queues;     /* <= VIRTIO_MAX_QUEUES */
	uint16_t max_queue_size;

	/* Device config space; off + len <= config_size is checked before. */
	void (*config_read)(struct virtio_dev *d, uint32_t off, void *buf,
			    uint32_t len);
	void (*config_write)(struct virtio_dev *d, uint32_t off,
			     const void *buf, uint32_t len);
	/* The guest kicked queue q (only after DRIVER_OK, never when broken). */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
	/* DRIVER_OK was set: start working.  Non-zero -> NEEDS_RESET. */
	int (*activate)(struct virtio_dev *d);
	/* The driver reset the device: drop in-flight work, forget state. */
	void (*reset)(struct virtio_dev *d);
	/* Save/restore hooks (may be NULL), for the model's own state (the
	 * transport saves features, status and queues itself).  save returns
	 * the bytes it needs (at most VSTATE_MAX_MODEL); it writes only when
	 * len suffices; its first byte should be a version of the layout.
	 * restore is called after the transport restored the queues' indices
	 * and, when the saved device ran, after DRIVER_OK (activate) with
	 * them: it must check every value (the file is untrusted) and
	 * returns 0 or -EINVAL (the restore is refused). */
	size_t (*save)(struct virtio_dev *d, void *buf, size_t len);
	int (*restore)(struct virtio_dev *d, const void *buf, size_t len);
	/* Before a save, device running: queues served outside vireo-vmm
	 * (vhost) put their ring indices into vq[] (last_avail, used_idx),
	 * and keep working after (may be NULL). */
	void (*sync)(struct virtio_dev *d);
	/* Release everything, the device struct included; the lock may still
	 * be taken here (draining work) and virtio_dev_fini() must be called
	 * once nothing will take it again, before the struct is freed.  NULL:
	 * the core calls virtio_dev_fini() and frees nothing. */
	void (*destroy)(struct virtio_dev *d);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	const struct virtio_env *env;
	const struct virtio_transport *transport;  /* NULL until attached */
	void *transport_priv;
	char name[64];               /* "virtio-blk disk0": for messages */
	uint64_t host_features;      /* offered */
	uint64_t guest_features;     /* written by the driver */
	uint8_t status;
	uint8_t isr;                 /* for transports with an ISR register */
	uint32_t config_generation;
	bool fail_logged;
	pthread_mutex_t lock;
	struct virtq vq[VIRTIO_MAX_QUEUES];
	/* Work a queue left at its budget (virtio_dev_yield). */
	int yield_fd;                /* eventfd watched on the loop, or -1 */
	uint32_t yielded;            /* queues to resume, under lock */
	uint64_t yields;             /* how often a budget ran out */
};

static inline void virtio_dev_lock(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
}

static inline void virtio_dev_unlock(struct virtio_dev *d)
{
	pthread_mutex_unlock(&d->lock);
}

/* Prepare the common part; VERSION_1, INDIRECT_DESC and EVENT_IDX are
 * added to @features. */
void virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops,
		     const struct virtio_env *env, const char *name,
		     uint64_t features);

/* Status register: a write of 0 resets; other writes may only add bits.
 * Setting FEATURES_OK is refused (the bit stays clear) unless the driver
 * accepted VERSION_1 and nothing that was not offered. */
uint8_t virtio_dev_status(const struct virtio_dev *d);
void virtio_dev_set_status(struct virtio_dev *d, uint8_t status);
void virtio_dev_reset(struct virtio_dev *d);

/* Feature words (sel 0: bits 0-31, sel 1: bits 32-63). Driver writes are
 * ignored once FEATURES_OK is set. */
uint32_t virtio_dev_host_features(const struct virtio_dev *d, uint32_t sel);
void virtio_dev_set_guest_features(struct virtio_dev *d, uint32_t sel,
				   uint32_t val);
static inline bool virtio_dev_has(const struct virtio_dev *d, unsigned bit)
{
	return (d->guest_features & VIRTIO_BIT(bit)) != 0;
}

/* Queue set-up.  The transport writes vq[i].size / *_gpa / msix_vector
 * while virtio_dev_queue_configurable() is true, then enables. */
bool virtio_dev_queue_configurable(const struct virtio_dev *d, unsigned q);
int virtio_dev_queue_enable(struct virtio_dev *d, unsigned q);

/* Config space with bounds checks; out-of-range reads give zeros. */
void virtio_dev_config_read(struct virtio_dev *d, uint32_t off, void *buf,
			    uint32_t len);
void virtio_dev_config_write(struct virtio_dev *d, uint32_t off,
			     const void *buf, uint32_t len);
/* Device side changed its config: bump generation, interrupt. */
void virtio_dev_config_changed(struct virtio_dev *d);

/* The guest kicked queue q (from the transport / ioeventfd handler). */
void virtio_dev_queue_notify(struct virtio_dev *d, unsigned q);

/* After pushing used buffers: interrupt the guest if it wants one. */
void virtio_dev_queue_interrupt(struct virtio_dev *d, unsigned q);

/* The guest broke the rules: set NEEDS_RESET, log once, tell the driver.
 * The device does nothing more until reset. */
void virtio_dev_fail(struct virtio_dev *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline bool virtio_dev_running(const struct virtio_dev *d)
{
	return (d->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(d->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

/* Tear the device down (ops->destroy, which ends in virtio_dev_fini()). */
void virtio_dev_destroy(struct virtio_dev *d);
/* The core's own teardown: stop watching, destroy the lock. */
void virtio_dev_fini(struct virtio_dev *d);

/*
 * Budgets.  A device works on the event loop, so it must not let one guest
 * request, or one kick, keep the loop from everything else: it stops a
 * queue's work when its per-wake-up budget is spent and calls
 * virtio_dev_yield(d, q).  The loop then calls ops->queue_notify(d, q)
 * again, under the lock, once it has served the other ready events.
 * Without an event loop (env->watch_fd NULL) the work waits for the next
 * kick.
 */
void virtio_dev_yield(struct virtio_dev *d, unsigned q);

/* PCI identity of a device type (used by the PCI transport). */
uint8_t virtio_dev_pci_class(uint16_t device_id, uint8_t *subclass);

#endif
