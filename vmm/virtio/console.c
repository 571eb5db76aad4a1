/*
 * virtio-console with a single port and no multiport control queue:
 * queue 0 receives (host to guest), queue 1 transmits (guest to host).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "console.h"

struct virtio_console {
	struct virtio_dev vdev;
	struct virtio_console_backend be;
	uint16_t cols, rows;
	/* Host input not yet given to the guest (a byte ring). */
	uint8_t in[VIRTIO_CONSOLE_INBUF];
	size_t in_head, in_len;
	struct virtq_chain chain;
	uint64_t dropped;       /* output past VIRTIO_CONSOLE_CHAIN_MAX */
	bool drop_logged;
};

static struct virtio_console *to_con(struct virtio_dev *d)
{
	return (struct virtio_console *)d;
}

/* Move buffered input into the guest's receive buffers. */
static void con_rx(struct virtio_console *c)
{
	struct virtq *q = &c->vdev.vq[0];
	bool pushed = false;

	if (!virtio_dev_running(&c->vdev) || !q->ready)
		return;
	while (c->in_len) {
		size_t written = 0;
		int r = virtq_pop(q, &c->chain);

		if (r <= 0)
			break;
		while (c->in_len && written < c->chain.in_len) {
			size_t n = VIREO_MIN(c->in_len, VIRTIO_CONSOLE_INBUF - c->in_head);
			n = virtq_chain_write(&c->chain, written, c->in + c->in_head, n);
			if (n == 0)
				break;
			written += n;
			c->in_head = (c->in_head + n) % VIRTIO_CONSOLE_INBUF;
			c->in_len -= n;
		}
		virtq_push(q, c->chain.head, (uint32_t)written);
		pushed = true;
	}
	if (pushed) {
		virtio_dev_queue_interrupt(&c->vdev, 0);
		if (c->be.rx_room)
			c->be.rx_room(c->be.opaque);
	}
}

/* Pass one request's output on, at most VIRTIO_CONSOLE_CHAIN_MAX bytes;
 * returns the bytes written. */
static uint64_t con_tx_chain(struct virtio_console *c)
{
	uint64_t done = 0;

	for (unsigned i = 0; i < c->chain.nr_out && done < VIRTIO_CONSOLE_CHAIN_MAX; i++) {
		size_t n = (size_t)VIREO_MIN(c->chain.iov[i].iov_len,
					     VIRTIO_CONSOLE_CHAIN_MAX - done);

		if (c->be.write)
			c->be.write(c->be.opaque, c->chain.iov[i].iov_base, n);
		done += n;
	}
	if (c->chain.out_len > done) {
		c->dropped += c->chain.out_len - done;
		if (!c->drop_logged)
			vwarn("%s: a transmit request of %llu bytes; output past %u bytes "
			      "of a request is dropped", c->vdev.name,
			      (unsigned long long)c->chain.out_len, VIRTIO_CONSOLE_CHAIN_MAX);
		c->drop_logged = true;
	}
	return done;
}

static void con_tx(struct virtio_console *c)
{
	struct virtq *q = &c->vdev.vq[1];
	uint64_t spent = 0;
	bool pushed = false;

	for (;;) {
		if (spent >= VIRTIO_CONSOLE_WAKE_BUDGET) {
			if (virtq_has_work(q))
				virtio_dev_yield(&c->vdev, 1);
			break;
		}
		if (virtq_pop(q, &c->chain) <= 0)
			break;
		spent += con_tx_chain(c);
		virtq_push(q, c->chain.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_dev_queue_interrupt(&c->vdev, 1);
}

uint64_t virtio_console_dropped(struct virtio_dev *d)
{
	uint64_t n;

	virtio_dev_lock(d);
	n = to_con(d)->dropped;
	virtio_dev_unlock(d);
	return n;
}

static void con_queue_notify(struct virtio_dev *d, unsigned q)
{
	if (q == 0)
		con_rx(to_con(d));
	else if (q == 1)
		con_tx(to_con(d));
}

static int con_activate(struct virtio_dev *d)
{
	con_rx(to_con(d));
	return 0;
}

size_t virtio_console_input(struct virtio_dev *d, const void *buf, size_t len)
{
	struct virtio_console *c = to_con(d);
	size_t taken = 0;

	virtio_dev_lock(d);
	while (taken < len && c->in_len < VIRTIO_CONSOLE_INBUF) {
		size_t tail = (c->in_head + c->in_len) % VIRTIO_CONSOLE_INBUF;
		size_t n = VIREO_MIN(len - taken, VIRTIO_CONSOLE_INBUF - c->in_len);
		n = VIREO_MIN(n, VIRTIO_CONSOLE_INBUF - tail);
		memcpy(c->in + tail, (const uint8_t *)buf + taken, n);
		c->in_len += n;
		taken += n;
	}
	con_rx(c);
	virtio_dev_unlock(d);
	return taken;
}

size_t virtio_console_input_room(struct virtio_dev *d)
{
	struct virtio_console *c = to_con(d);
	size_t room;

	virtio_dev_lock(&c->vdev);
	room = VIRTIO_CONSOLE_INBUF - c->in_len;
	virtio_dev_unlock(&c->vdev);
	return room;
}

static void con_config_read(struct virtio_dev *d, uint32_t off, void *buf,
			    uint32_t len)
{
	struct virtio_console *c = to_con(d);
	uint8_t cfg[VIRTIO_CONSOLE_CFG_SIZE] = {
		(uint8_t)c->cols, (uint8_t)(c->cols >> 8),
		(uint8_t)c->rows, (uint8_t)(c->rows >> 8),
		1, 0, 0, 0,            /* max_nr_ports */
	};

	memcpy(buf, cfg + off, len);
}

static void con_config_write(struct virtio_dev *d, uint32_t off,
			     const void *buf, uint32_t len)
{
	struct virtio_console *c = to_con(d);

	/* emerg_wr: the low byte is a character to print at once. */
	if (off == 8 && len >= 1 && virtio_dev_has(d, VIRTIO_CONSOLE_F_EMERG_WRITE) &&
	    c->be.write)
		c->be.write(c->be.opaque, buf, 1);
}

static void con_reset(struct virtio_dev *d)
{
	(void)d;   /* buffered input stays for the next driver */
}

static void con_destroy(struct virtio_dev *d)
{
	virtio_dev_fini(d);
	free(to_con(d));
}

static const struct virtio_dev_ops con_ops = {
	.device_id = VIRTIO_ID_CONSOLE,
	.config_size = VIRTIO_CONSOLE_CFG_SIZE,
	.nr_queues = 2,
	.max_queue_size = VIRTIO_CONSOLE_QUEUE_SIZE,
	.config_read = con_config_read,
	.config_write = con_config_write,
	.queue_notify = con_queue_notify,
	.activate = con_activate,
	.reset = con_reset,
	.destroy = con_destroy,
};

int virtio_console_create(const struct virtio_env *env,
			  const struct virtio_console_backend *be,
			  uint16_t cols, uint16_t rows,
			  struct virtio_dev **out)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	uint64_t features = VIRTIO_BIT(VIRTIO_CONSOLE_F_EMERG_WRITE);

	if (!c)
		return -ENOMEM;
	if (cols && rows)
		features |= VIRTIO_BIT(VIRTIO_CONSOLE_F_SIZE);
	virtio_dev_init(&c->vdev, &con_ops, env, "virtio-console", features);
	if (be)
		c->be = *be;
	c->cols = cols;
	c->rows = rows;
	*out = &c->vdev;
	return 0;
}

void virtio_console_resize(struct virtio_dev *d, uint16_t cols, uint16_t rows)
{
	struct virtio_console *c = to_con(d);

	if (!(d->host_features & VIRTIO_BIT(VIRTIO_CONSOLE_F_SIZE)))
		return;
	c->cols = cols;
	c->rows = rows;
	virtio_dev_config_changed(d);
}
