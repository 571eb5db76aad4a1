/*
 * libFuzzer target: virtio-net's own data path (transmit, receive with and
 * without mergeable buffers) and control queue, on top of the virtqueue,
 * with a backend in memory that aborts if the device ever hands it a frame
 * longer than the largest allowed, and that returns frames whose length
 * and contents come from the input (longer than the buffers too).
 *
 * Input: [0] feature switches: bit0 refuse MRG_RXBUF, bit1 refuse the
 * guest offloads (GUEST_CSUM/TSO/ECN), bit2 refuse EVENT_IDX, bit3 refuse
 * CSUM and HOST_TSO, bit4 three queue pairs (MQ) instead of one, bit5
 * refuse INDIRECT_DESC, bit6 the save/restore hooks (restore from the
 * RAM image's first bytes); [1] log2 queue size (& 7); [2] number of frames
 * the backend has (& 7); [3] their length unit (length i = (i + 1) * [3] *
 * 64 + 14 + 12); then the guest RAM image (64 KiB at GPA 0x10000): queue q
 * has its descriptor table at +0x2000 q, its available ring at +0x2000 q +
 * 0x800, its used ring at +0x2000 q + 0x1000 (pair 0: rx 0, tx 1, then the
 * control queue: 2, or 6 with three pairs); then the frames' bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "net.h"

#define RAM_GPA  0x10000ULL
#define RAM_SIZE 0x10000u
#define HDR 4u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_be {
	struct net_backend be;
	const uint8_t *bytes;
	size_t nbytes;
	unsigned frames, next, unit;
};

static ssize_t fz_send(struct net_backend *be, unsigned pair, const struct iovec *iov, int cnt)
{
	size_t len = 0;
	volatile uint8_t sink = 0;

	if (pair >= be->nr_pairs)
		abort();
	for (int i = 0; i < cnt; i++) {
		len += iov[i].iov_len;
		if (iov[i].iov_len)   /* touch both ends: ASan checks the range */
			sink ^= ((const uint8_t *)iov[i].iov_base)[0] ^
				((const uint8_t *)iov[i].iov_base)[iov[i].iov_len - 1];
	}
	(void)sink;
	if (len > VIRTIO_NET_HDR_LEN + NET_FRAME_MAX || len < VIRTIO_NET_HDR_LEN)
		abort();
	return (ssize_t)len;
}

static ssize_t fz_recv(struct net_backend *be, unsigned pair, const struct iovec *iov, int cnt)
{
	struct fz_be *f = (struct fz_be *)be;
	size_t len, done = 0, src = 0;

	if (pair >= be->nr_pairs)
		abort();
	if (f->next >= f->frames)
		return -EAGAIN;
	len = (size_t)(f->next + 1) * f->unit * 64 + 14 + VIRTIO_NET_HDR_LEN;
	f->next++;
	for (int i = 0; i < cnt && done < len; i++) {
		size_t n = VIREO_MIN(iov[i].iov_len, len - done);
		for (size_t k = 0; k < n; k++, src++)
			((uint8_t *)iov[i].iov_base)[k] = f->nbytes ? f->bytes[src % f->nbytes] : 0;
		done += n;
	}
	return (ssize_t)len;
}

static int fz_offloads(struct net_backend *be, unsigned off)
{
	(void)be; (void)off;
	return 0;
}

static int fz_pairs(struct net_backend *be, unsigned n)
{
	return n >= 1 && n <= be->nr_pairs ? 0 : (abort(), -EINVAL);
}

static int fz_tapfd(struct net_backend *be, unsigned pair)
{
	(void)be; (void)pair;
	return -1;
}

static void fz_close(struct net_backend *be)
{
	free(be);
}

static const struct net_backend_ops fz_ops = {
	.send = fz_send, .recv = fz_recv, .set_offloads = fz_offloads,
	.set_pairs = fz_pairs, .tap_fd = fz_tapfd, .close = fz_close,
};

/* The model's save/restore hooks: its own state is taken back as it is,
 * and state from the input (@x, @n bytes) is either refused or taken
 * exactly (a save gives the same bytes). */
static void fz_model(struct virtio_dev *d, const uint8_t *x, size_t n)
{
	uint8_t a[1024], b[1024];
	size_t len = d->ops->save(d, NULL, 0);

	if (len == 0 || len > sizeof(a) || d->ops->save(d, a, len) != len)
		abort();
	if (virtio_dev_running(d)) {
		if (d->ops->restore(d, a, len))
			abort();
		d->ops->save(d, b, len);
		if (memcmp(a, b, len))
			abort();
	}
	if (d->ops->restore(d, x, n < len ? n : len + 1) == 0)
		abort();   /* a length other than its own */
	if (n >= len && d->ops->restore(d, x, len) == 0) {
		d->ops->save(d, b, len);
		if (memcmp(b, x, len))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
	struct gmem mem = { 0 };
	struct virtio_env env = { 0 };
	struct fz_be *be;
	struct virtio_dev *d;
	uint8_t *ram;
	uint32_t f0, f1;
	uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	unsigned pairs, nq;
	size_t img;

	if (size < HDR)
		return 0;
	img = VIREO_MIN(size - HDR, (size_t)RAM_SIZE);
	ram = calloc(1, RAM_SIZE);
	memcpy(ram, data + HDR, img);
	mem.region[0] = (struct gmem_region){ RAM_GPA, RAM_SIZE, ram };
	mem.nr_regions = 1;
	mem.ram_size = RAM_SIZE;
	env.mem = &mem;

	pairs = (data[0] & 16) ? 3 : 1;
	nq = 2 * pairs + 1;
	be = calloc(1, sizeof(*be));
	be->be.ops = &fz_ops;
	be->be.nr_pairs = pairs;
	be->be.tx_offloads = NET_OFF_CSUM | NET_OFF_TSO4 | NET_OFF_TSO6 | NET_OFF_ECN;
	be->bytes = data + HDR + img;
	be->nbytes = size - HDR - img;
	be->frames = data[2] & 7;
	be->unit = data[3];
	if (virtio_net_create(&env, &be->be, mac, "fuzz", NULL, &d) < 0) {
		free(ram);
		return 0;
	}
	f0 = virtio_dev_host_features(d, 0);
	f1 = virtio_dev_host_features(d, 1);
	if (data[0] & 1)
		f0 &= ~(1u << VIRTIO_NET_F_MRG_RXBUF);
	if (data[0] & 2)
		f0 &= ~((1u << VIRTIO_NET_F_GUEST_CSUM) | (1u << VIRTIO_NET_F_GUEST_TSO4) |
			(1u << VIRTIO_NET_F_GUEST_TSO6) | (1u << VIRTIO_NET_F_GUEST_ECN));
	if (data[0] & 4)
		f0 &= ~(1u << VIRTIO_F_EVENT_IDX);
	if (data[0] & 8)
		f0 &= ~((1u << VIRTIO_NET_F_CSUM) | (1u << VIRTIO_NET_F_HOST_TSO4) |
			(1u << VIRTIO_NET_F_HOST_TSO6) | (1u << VIRTIO_NET_F_HOST_ECN));
	if (data[0] & 32)
		f0 &= ~(1u << VIRTIO_F_INDIRECT_DESC);
	virtio_dev_lock(d);
	virtio_dev_set_status(d, st);
	virtio_dev_set_guest_features(d, 0, f0);
	virtio_dev_set_guest_features(d, 1, f1);
	st |= VIRTIO_STATUS_FEATURES_OK;
	virtio_dev_set_status(d, st);
	for (unsigned q = 0; q < nq; q++) {
		unsigned slot = q < 2 ? q : (q == nq - 1 ? 2 : 3 + (q - 2) % 5);
		d->vq[q].size = (uint16_t)(1u << (data[1] & 7));
		d->vq[q].desc_gpa = RAM_GPA + 0x2000ULL * slot;
		d->vq[q].avail_gpa = RAM_GPA + 0x2000ULL * slot + 0x800;
		d->vq[q].used_gpa = RAM_GPA + 0x2000ULL * slot + 0x1000;
		virtio_dev_queue_enable(d, q);
	}
	virtio_dev_set_status(d, st | VIRTIO_STATUS_DRIVER_OK);
	virtio_dev_queue_notify(d, nq - 1);     /* control first: MQ, filter */
	if (data[0] & 64)   /* the model's state from the RAM image's start */
		fz_model(d, ram, RAM_SIZE);
	virtio_dev_queue_notify(d, 1);
	virtio_dev_queue_notify(d, 0);
	virtio_dev_unlock(d);
	for (unsigned p = 0; p < pairs; p++)
		virtio_net_rx_poll(d, p);
	virtio_dev_lock(d);
	virtio_dev_queue_notify(d, 1);
	for (unsigned q = 2; q + 1 < nq; q++)
		virtio_dev_queue_notify(d, q);
	virtio_dev_unlock(d);
	virtio_dev_destroy(d);
	free(ram);
	return 0;
}
