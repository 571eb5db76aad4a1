/* virtio-net device model: see net.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <vireo/util.h>

#include "../net/mac.h"
#include "../vhost.h"
#include "net.h"

#define NET_CONFIG_SIZE 10u      /* mac, status, max_virtqueue_pairs */
#define NET_RX_IOV_MAX  VIRTQ_CHAIN_MAX
#define NET_RX_CHAINS   VIRTIO_NET_QUEUE_SIZE
#define NET_CTRL_MAX    (2u + 2u * (4u + 6u * 256u))   /* largest command we read */
/* Ethernet frame without GSO: 1500 bytes of MTU, header and a VLAN tag. */
#define NET_FRAME_NOGSO (1500u + 14u + 4u)
/* The spill buffer of a pair: the largest frame with its header. */
#define NET_SPILL (VIRTIO_NET_HDR_LEN + NET_FRAME_MAX)

struct virtio_net {
	struct virtio_dev vdev;
	struct virtio_dev_ops ops;      /* nr_queues depends on the pairs */
	struct net_backend *be;
	uint8_t mac[6];
	unsigned max_pairs, cur_pairs;
	/* receive filter (CTRL_RX, CTRL_MAC) */
	bool promisc, allmulti, alluni, nomulti, nouni, nobcast;
	uint8_t uc[VIRTIO_NET_MAC_TABLE][6], mc[VIRTIO_NET_MAC_TABLE][6];
	unsigned nuc, nmc;
	bool uc_all, mc_all;            /* a table overflowed */
	/* own data path */
	int epfd;                       /* the backend's pair fds, watched by the loop */
	bool rx_armed[VIRTIO_NET_MAX_PAIRS];
	struct virtq_chain *chain;
	struct iovec *iov;              /* NET_RX_IOV_MAX + 1: rx gather, tx with our header */
	uint16_t rx_head[NET_RX_CHAINS];
	uint32_t rx_cap[NET_RX_CHAINS];
	uint8_t *spill[VIRTIO_NET_MAX_PAIRS];   /* NET_SPILL bytes each */
	uint64_t spill_len[VIRTIO_NET_MAX_PAIRS];  /* a frame waits there */
	uint32_t rx_hint[VIRTIO_NET_MAX_PAIRS];    /* the last frame's length */
	/* vhost */
	struct vhost vh[VIRTIO_NET_MAX_PAIRS];   /* fd -1: own data path */
	bool vhost_active;
	int kick_taken[VIRTIO_MAX_QUEUES];   /* fds given to vhost, or -1 */
	int call_taken[VIRTIO_MAX_QUEUES];
	struct virtio_net_stats st;
	bool warned;                    /* the first refusal was logged */
};

static struct virtio_net *to_net(struct virtio_dev *d)
{
	return (struct virtio_net *)d;
}

static unsigned ctrl_q(const struct virtio_net *n)
{
	return 2 * n->max_pairs;
}

/* ---- pure helpers ---- */

unsigned virtio_net_offloads(uint64_t f)
{
	unsigned off = 0;

	if (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM)) {
		off |= NET_OFF_CSUM;
		if (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4))
			off |= NET_OFF_TSO4;
		if (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6))
			off |= NET_OFF_TSO6;
		if (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN))
			off |= NET_OFF_ECN;
	}
	return off;
}

int virtio_net_tx_hdr_check(const struct virtio_net_hdr *h, uint64_t f,
			    uint64_t len)
{
	uint8_t gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	bool csum = f & VIRTIO_BIT(VIRTIO_NET_F_CSUM);
	uint16_t cstart = le16toh(h->csum_start), coff = le16toh(h->csum_offset);

	if (h->flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
		return -EINVAL;
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!csum)
			return -EINVAL;
		if ((uint64_t)cstart + coff + 2 > len)
			return -EINVAL;
	}
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		if (h->gso_type & VIRTIO_NET_HDR_GSO_ECN)
			return -EINVAL;
		return len <= NET_FRAME_NOGSO ? 0 : -EINVAL;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(f & VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4)))
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(f & VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6)))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
	    !(f & VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN)))
		return -EINVAL;
	if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) || h->gso_size == 0)
		return -EINVAL;
	return len <= NET_FRAME_MAX ? 0 : -EINVAL;
}

/* Copy into / out of an iovec array at an offset. */
static size_t iov_to(const struct iovec *iov, unsigned cnt, size_t off,
		     const void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < cnt && done < len; i++) {
		size_t l = iov[i].iov_len, n;
		if (off >= l) {
			off -= l;
			continue;
		}
		n = VIREO_MIN(l - off, len - done);
		memcpy((uint8_t *)iov[i].iov_base + off, (const uint8_t *)buf + done, n);
		done += n;
		off = 0;
	}
	return done;
}

static size_t iov_from(const struct iovec *iov, unsigned cnt, size_t off,
		       void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < cnt && done < len; i++) {
		size_t l = iov[i].iov_len, n;
		if (off >= l) {
			off -= l;
			continue;
		}
		n = VIREO_MIN(l - off, len - done);
		memcpy((uint8_t *)buf + done, (const uint8_t *)iov[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

/* ---- receive filter ---- */

static bool net_rx_accept(const struct virtio_net *n, const uint8_t *dst)
{
	if (n->promisc)
		return true;
	if (net_mac_is_broadcast(dst))
		return !n->nobcast;
	if (net_mac_is_multicast(dst)) {
		if (n->nomulti)
			return false;
		if (n->allmulti || n->mc_all)
			return true;
		for (unsigned i = 0; i < n->nmc; i++)
			if (!memcmp(n->mc[i], dst, 6))
				return true;
		return false;
	}
	if (n->nouni)
		return false;
	if (n->alluni || n->uc_all || !memcmp(n->mac, dst, 6))
		return true;
	for (unsigned i = 0; i < n->nuc; i++)
		if (!memcmp(n->uc[i], dst, 6))
			return true;
	return false;
}

static void net_filter_reset(struct virtio_net *n)
{
	/* Before the driver says otherwise (5.1.6.5.1): promiscuous off,
	 * all multicast on (Linux then narrows it). */
	n->promisc = n->alluni = n->nomulti = n->nouni = n->nobcast = false;
	n->allmulti = true;
	n->nuc = n->nmc = 0;
	n->uc_all = n->mc_all = false;
}

/* A guest mistake we refuse without resetting the device: counted, and
 * the first one logged. */
static void net_refused(struct virtio_net *n, uint64_t *counter, const char *what)
{
	(*counter)++;
	if (!n->warned) {
		n->warned = true;
		vwarn("%s: refused %s from the guest (dropped and counted; further "
		      "ones are only counted)", n->vdev.name, what);
	}
}

/* ---- own data path: transmit ---- */

static void net_tx(struct virtio_net *n, unsigned pair)
{
	unsigned qi = 2 * pair + 1, frames = 0;
	struct virtq *q = &n->vdev.vq[qi];
	struct virtq_chain *c = n->chain;
	uint64_t spent = 0;
	bool pushed = false;

	virtq_notify_off(q);
	for (;;) {
		struct virtio_net_hdr h;
		unsigned cnt;
		size_t skip;
		ssize_t r;
		int p;

		if (frames >= VIRTIO_NET_TX_FRAMES || spent >= VIRTIO_NET_TX_BUDGET) {
			virtio_dev_yield(&n->vdev, qi);
			break;
		}
		p = virtq_pop(q, c);
		if (p < 0)
			return;    /* broken: the device is in NEEDS_RESET */
		if (p == 0) {
			if (virtq_notify_on(q))
				continue;
			break;
		}
		frames++;
		spent += c->out_len;
		if (c->nr_in || c->out_len < VIRTIO_NET_HDR_LEN ||
		    virtq_chain_read(c, 0, &h, sizeof(h)) != sizeof(h) ||
		    virtio_net_tx_hdr_check(&h, n->vdev.guest_features,
					    c->out_len - VIRTIO_NET_HDR_LEN)) {
			net_refused(n, &n->st.tx_bad, "a transmit frame (bad header, length "
				    "or buffers)");
			virtq_push(q, c->head, 0);
			pushed = true;
			continue;
		}
		/* Our checked copy of the header, then the frame from the
		 * guest's buffers (which it could change under us). */
		h.num_buffers = 0;
		n->iov[0] = (struct iovec){ &h, sizeof(h) };
		cnt = 1;
		skip = VIRTIO_NET_HDR_LEN;
		for (unsigned i = 0; i < c->nr_out; i++) {
			struct iovec v = c->iov[i];
			if (skip >= v.iov_len) {
				skip -= v.iov_len;
				continue;
			}
			v.iov_base = (uint8_t *)v.iov_base + skip;
			v.iov_len -= skip;
			skip = 0;
			n->iov[cnt++] = v;
		}
		r = n->be->ops->send(n->be, pair, n->iov, (int)cnt);
		if (r == -EAGAIN) {
			virtq_unpop(q);
			virtio_dev_yield(&n->vdev, qi);
			break;
		}
		if (r < 0) {
			n->st.tx_dropped++;
		} else {
			n->st.tx_frames++;
			n->st.tx_bytes += c->out_len - VIRTIO_NET_HDR_LEN;
		}
		virtq_push(q, c->head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_dev_queue_interrupt(&n->vdev, qi);
}

/* ---- own data path: receive ---- */

static void net_rx_arm(struct virtio_net *n, unsigned pair, bool on)
{
	int fd = n->be->ops->fd ? n->be->ops->fd(n->be, pair) : -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = pair };

	if (fd < 0 || n->epfd < 0 || n->rx_armed[pair] == on)
		return;
	if (epoll_ctl(n->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) == 0 || !on)
		n->rx_armed[pair] = on;
}

static bool net_mrg(const struct virtio_net *n)
{
	return virtio_dev_has(&n->vdev, VIRTIO_NET_F_MRG_RXBUF);
}

static void net_unpop(struct virtq *q, unsigned k)
{
	while (k--)
		virtq_unpop(q);
}

/* Where the receive chains of one frame are gathered. */
struct net_rxg {
	unsigned nch, niov;
	uint64_t space;
};

/*
 * Pop receive chains until they hold @want bytes (mergeable buffers), or
 * one chain (without).  1: done; 0: not enough buffers (all put back);
 * -ENOSPC: the whole ring holds less than @want (put back); -EIO: the
 * ring is broken (NEEDS_RESET).
 */
static int net_rx_gather(struct virtio_net *n, struct virtq *q, uint64_t want,
			 struct net_rxg *g, bool *pushed)
{
	struct virtq_chain *c = n->chain;
	bool mrg = net_mrg(n);
	int p = 0;

	*g = (struct net_rxg){ 0, 0, 0 };
	while (g->space < want && g->nch < NET_RX_CHAINS) {
		p = virtq_pop(q, c);
		if (p < 0)
			return -EIO;
		if (p == 0)
			break;
		if (c->nr_out || c->in_len < (mrg ? 1 : VIRTIO_NET_HDR_LEN)) {
			net_refused(n, &n->st.rx_bad, "a receive buffer chain (readable "
				    "or too small)");
			virtq_push(q, c->head, 0);
			*pushed = true;
			continue;
		}
		if (g->niov + c->nr_in > NET_RX_IOV_MAX) {
			virtq_unpop(q);
			break;
		}
		memcpy(&n->iov[g->niov], &c->iov[c->nr_out], c->nr_in * sizeof(struct iovec));
		g->niov += c->nr_in;
		n->rx_head[g->nch] = c->head;
		n->rx_cap[g->nch] = (uint32_t)VIREO_MIN(c->in_len, (uint64_t)UINT32_MAX);
		g->nch++;
		g->space += c->in_len;
		if (!mrg)
			return 1;
	}
	if (g->space >= want && g->nch)
		return 1;
	net_unpop(q, g->nch);
	return g->nch >= q->size ? -ENOSPC : 0;
}

/* A frame of len bytes (header first) fills the gathered buffers: set
 * the header, push the chains it used, put the others back. */
static void net_rx_commit(struct virtio_net *n, struct virtq *q, const struct net_rxg *g,
			  uint64_t len)
{
	struct virtio_net_hdr h;
	unsigned used = 0;

	iov_from(n->iov, g->niov, 0, &h, sizeof(h));
	if (!virtio_dev_has(&n->vdev, VIRTIO_NET_F_GUEST_CSUM))
		h.flags = 0;
	for (uint64_t left = len; left; used++) {
		uint32_t take = (uint32_t)VIREO_MIN(left, (uint64_t)n->rx_cap[used]);
		left -= take;
		n->rx_cap[used] = take;
	}
	h.num_buffers = htole16((uint16_t)used);
	iov_to(n->iov, g->niov, 0, &h, sizeof(h));
	for (unsigned i = 0; i < used; i++)
		virtq_push(q, n->rx_head[i], n->rx_cap[i]);
	net_unpop(q, g->nch - used);
	n->st.rx_frames++;
	n->st.rx_bytes += len - VIRTIO_NET_HDR_LEN;
}

/*
 * Receive for pair p.  A frame is read straight into the guest's buffers:
 * one chain without mergeable buffers; with them, enough for the larger of
 * a full-size (non-GSO) frame and the pair's last frame, so that a stream
 * of GSO frames (host->guest TCP) lands in guest memory with no copy of
 * ours.  When the buffers there cannot hold the last frame's size, enough
 * for a full-size frame are taken.  With mergeable buffers a per-pair spill
 * buffer catches what does not fit; such a frame then waits whole in the
 * spill buffer until enough guest buffers are there, and is copied into
 * them.
 */
static void net_rx(struct virtio_net *n, unsigned pair)
{
	unsigned qi = 2 * pair;
	struct virtq *q = &n->vdev.vq[qi];
	uint8_t *spill = n->spill[pair];
	bool mrg = net_mrg(n), pushed = false;

	if (!q->ready || q->broken || pair >= n->cur_pairs) {
		net_rx_arm(n, pair, false);
		return;
	}
	for (unsigned frames = 0; frames < VIRTIO_NET_RX_FRAMES; frames++) {
		uint64_t plen = n->spill_len[pair], base, want;
		struct net_rxg g;
		unsigned cnt;
		uint8_t dst[6];
		ssize_t r;
		int k;

		if (plen) {
			/* A frame waits in the spill buffer. */
			k = net_rx_gather(n, q, plen, &g, &pushed);
			if (k == -EIO)
				return;
			if (k == -ENOSPC || (k == 1 && g.space < plen)) {
				if (k == 1)
					net_unpop(q, g.nch);
				n->spill_len[pair] = 0;
				n->st.rx_dropped++;
				continue;
			}
			if (k == 0)
				goto starved;
			iov_to(n->iov, g.niov, 0, spill, plen);
			net_rx_commit(n, q, &g, plen);
			n->spill_len[pair] = 0;
			n->rx_hint[pair] = (uint32_t)plen;
			pushed = true;
			continue;
		}
		base = mrg ? VIRTIO_NET_HDR_LEN + NET_FRAME_NOGSO : 1;
		want = mrg ? VIREO_MAX(base, (uint64_t)n->rx_hint[pair]) : 1;
		k = net_rx_gather(n, q, want, &g, &pushed);
		if (k == -EIO)
			return;
		if (k <= 0 && want > base) {
			k = net_rx_gather(n, q, base, &g, &pushed);
			if (k == -EIO)
				return;
		}
		if (k < 0) {
			/* The whole ring holds less than a full-size frame: take
			 * what there is, the spill buffer catches the rest. */
			k = net_rx_gather(n, q, 1, &g, &pushed);
			if (k == -EIO)
				return;
		}
		if (k <= 0)
			goto starved;
		cnt = g.niov;
		if (mrg)
			n->iov[cnt++] = (struct iovec){ spill, NET_SPILL };
		r = n->be->ops->recv(n->be, pair, n->iov, (int)cnt);
		if (r < 0) {
			net_unpop(q, g.nch);
			if (r != -EAGAIN)
				n->st.rx_dropped++;
			break;
		}
		if ((uint64_t)r < VIRTIO_NET_HDR_LEN + 14 ||
		    (uint64_t)r > g.space + (mrg ? NET_SPILL : 0) ||
		    (r > (ssize_t)g.space && (uint64_t)r > NET_SPILL)) {
			/* A runt, or cut short: lost; the buffers go back. */
			net_unpop(q, g.nch);
			n->st.rx_dropped++;
			continue;
		}
		n->rx_hint[pair] = (uint32_t)r;
		if ((uint64_t)r > g.space) {
			/* Larger than the buffers taken: the whole frame goes to
			 * the spill buffer and waits for enough of them. */
			memmove(spill + g.space, spill, (size_t)((uint64_t)r - g.space));
			iov_from(n->iov, g.niov, 0, spill, (size_t)g.space);
			net_unpop(q, g.nch);
			if (!net_rx_accept(n, spill + VIRTIO_NET_HDR_LEN)) {
				n->st.rx_filtered++;
				continue;
			}
			n->spill_len[pair] = (uint64_t)r;
			n->st.rx_spilled++;
			continue;
		}
		if (iov_from(n->iov, g.niov, VIRTIO_NET_HDR_LEN, dst, 6) != 6 ||
		    !net_rx_accept(n, dst)) {
			net_unpop(q, g.nch);
			n->st.rx_filtered++;
			continue;
		}
		net_rx_commit(n, q, &g, (uint64_t)r);
		pushed = true;
		continue;
starved:
		/* Out of buffers, or too few for the frame: wait for the
		 * guest's kick when it adds the next one. */
		if (virtq_notify_on_more(q))
			continue;
		n->st.starved++;
		net_rx_arm(n, pair, false);
		break;
	}
	if (pushed)
		virtio_dev_queue_interrupt(&n->vdev, qi);
}

/* The loop: a backend fd of ours is readable. */
static void net_rx_ready(void *opaque)
{
	struct virtio_net *n = opaque;
	struct epoll_event ev[VIRTIO_NET_MAX_PAIRS];
	int k;

	virtio_dev_lock(&n->vdev);
	k = epoll_wait(n->epfd, ev, VIRTIO_NET_MAX_PAIRS, 0);
	for (int i = 0; i < k; i++) {
		unsigned pair = ev[i].data.u32;
		if (pair < n->max_pairs && virtio_dev_running(&n->vdev) && !n->vhost_active)
			net_rx(n, pair);
		else if (pair < n->max_pairs)
			net_rx_arm(n, pair, false);
	}
	virtio_dev_unlock(&n->vdev);
}

void virtio_net_rx_poll(struct virtio_dev *d, unsigned pair)
{
	struct virtio_net *n = to_net(d);

	virtio_dev_lock(d);
	if (pair < n->max_pairs && virtio_dev_running(d) && !n->vhost_active)
		net_rx(n, pair);
	virtio_dev_unlock(d);
}

/* ---- control queue ---- */

static uint8_t net_ctrl_mac_table(struct virtio_net *n, const uint8_t *p, size_t len)
{
	uint32_t cnt[2];
	size_t off = 0;

	for (unsigned t = 0; t < 2; t++) {
		if (len - off < 4)
			return VIRTIO_NET_ERR;
		memcpy(&cnt[t], p + off, 4);
		cnt[t] = le32toh(cnt[t]);
		off += 4;
		if (cnt[t] > (len - off) / 6)
			return VIRTIO_NET_ERR;
		off += 6 * (size_t)cnt[t];
	}
	if (off != len)
		return VIRTIO_NET_ERR;
	off = 4;
	n->uc_all = cnt[0] > VIRTIO_NET_MAC_TABLE;
	n->nuc = n->uc_all ? 0 : cnt[0];
	for (unsigned i = 0; i < n->nuc; i++)
		memcpy(n->uc[i], p + off + 6 * i, 6);
	off += 6 * (size_t)cnt[0] + 4;
	n->mc_all = cnt[1] > VIRTIO_NET_MAC_TABLE;
	n->nmc = n->mc_all ? 0 : cnt[1];
	for (unsigned i = 0; i < n->nmc; i++)
		memcpy(n->mc[i], p + off + 6 * i, 6);
	return VIRTIO_NET_OK;
}

static uint8_t net_ctrl_exec(struct virtio_net *n, const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf + 2;
	size_t dl = len - 2;
	uint8_t cls = buf[0], cmd = buf[1];

	switch (cls) {
	case VIRTIO_NET_CTRL_RX: {
		bool *flag[] = { &n->promisc, &n->allmulti, &n->alluni, &n->nomulti,
				 &n->nouni, &n->nobcast };
		if (!virtio_dev_has(&n->vdev, VIRTIO_NET_F_CTRL_RX) || dl != 1 ||
		    cmd >= VIREO_ARRAY_SIZE(flag) || p[0] > 1)
			return VIRTIO_NET_ERR;
		*flag[cmd] = p[0];
		return VIRTIO_NET_OK;
	}
	case VIRTIO_NET_CTRL_MAC:
		if (cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET && virtio_dev_has(&n->vdev, VIRTIO_NET_F_CTRL_RX))
			return net_ctrl_mac_table(n, p, dl);
		if (cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET && dl == 6 &&
		    virtio_dev_has(&n->vdev, VIRTIO_NET_F_CTRL_MAC_ADDR)) {
			memcpy(n->mac, p, 6);
			return VIRTIO_NET_OK;
		}
		return VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_MQ: {
		uint16_t pairs;
		if (!virtio_dev_has(&n->vdev, VIRTIO_NET_F_MQ) ||
		    cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET || dl != 2)
			return VIRTIO_NET_ERR;
		memcpy(&pairs, p, 2);
		pairs = le16toh(pairs);
		if (pairs < 1 || pairs > n->max_pairs)
			return VIRTIO_NET_ERR;
		if (n->be->ops->set_pairs && n->be->ops->set_pairs(n->be, pairs) < 0)
			return VIRTIO_NET_ERR;
		n->cur_pairs = pairs;
		for (unsigned i = 0; i < n->max_pairs && !n->vhost_active; i++)
			net_rx_arm(n, i, i < pairs);
		return VIRTIO_NET_OK;
	}
	default:
		return VIRTIO_NET_ERR;
	}
}

static void net_ctrl(struct virtio_net *n)
{
	unsigned qi = ctrl_q(n);
	struct virtq *q = &n->vdev.vq[qi];
	struct virtq_chain *c = n->chain;
	uint8_t buf[NET_CTRL_MAX];
	bool pushed = false;
	int p;

	/* Commands are few and small: no budget beyond the ring's size. */
	for (unsigned k = 0; k < q->size && (p = virtq_pop(q, c)) == 1; k++) {
		uint8_t ack = VIRTIO_NET_ERR;

		if (c->nr_in == 0) {
			net_refused(n, &n->st.ctrl_bad, "a control command without an ack buffer");
			virtq_push(q, c->head, 0);
			pushed = true;
			continue;
		}
		if (c->out_len >= 2 && c->out_len <= sizeof(buf)) {
			virtq_chain_read(c, 0, buf, c->out_len);
			ack = net_ctrl_exec(n, buf, c->out_len);
		}
		if (ack != VIRTIO_NET_OK)
			net_refused(n, &n->st.ctrl_bad, "a malformed or unsupported control command");
		virtq_chain_write(c, 0, &ack, 1);
		virtq_push(q, c->head, 1);
		pushed = true;
	}
	if (pushed)
		virtio_dev_queue_interrupt(&n->vdev, qi);
}

/* ---- vhost ---- */

static void net_vhost_down(struct virtio_net *n)
{
	if (!n->vhost_active)
		return;
	for (unsigned p = 0; p < n->max_pairs; p++)
		for (unsigned i = 0; i < 2; i++) {
			/* the tap first: the kernel stops working the queue */
			vhost_net_set_backend(&n->vh[p], i, -1);
			vhost_vring_stop(&n->vh[p], i);
		}
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		if (n->kick_taken[q] >= 0)
			n->vdev.transport->queue_kick_fd(&n->vdev, q, false);
		if (n->call_taken[q] >= 0)
			n->vdev.transport->queue_call_fd(&n->vdev, q, false);
		n->kick_taken[q] = n->call_taken[q] = -1;
	}
	n->vhost_active = false;
}

static int net_vhost_up(struct virtio_net *n)
{
	uint64_t keep = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
			VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	const struct gmem *mem = n->vdev.env->mem;
	int r = 0;

	/* Every data queue needs an MSI-X vector's irqfd; else stay here. */
	for (unsigned qi = 0; qi < 2 * n->max_pairs; qi++) {
		int fd;

		if (!n->vdev.vq[qi].ready)
			continue;
		fd = n->vdev.transport->queue_call_fd(&n->vdev, qi, true);
		if (fd < 0) {
			vdebug("%s: queue %u has no MSI-X vector: data path stays in "
			       "vireo-vmm", n->vdev.name, qi);
			r = fd;
			goto undo;
		}
		n->call_taken[qi] = fd;
	}
	for (unsigned qi = 0; qi < 2 * n->max_pairs; qi++) {
		int fd;

		if (!n->vdev.vq[qi].ready)
			continue;
		fd = n->vdev.transport->queue_kick_fd(&n->vdev, qi, true);
		if (fd < 0) {
			r = fd;
			goto undo;
		}
		n->kick_taken[qi] = fd;
	}
	n->vhost_active = true;
	for (unsigned p = 0; p < n->max_pairs; p++) {
		struct vhost *v = &n->vh[p];
		const char *what = "features";

		if (!n->vdev.vq[2 * p].ready || !n->vdev.vq[2 * p + 1].ready)
			continue;    /* the driver did not set this pair up */
		r = vhost_set_features(v, n->vdev.guest_features & keep & v->features);
		if (r == 0) {
			what = "memory table";
			r = vhost_set_mem_table(v, mem);
		}
		for (unsigned i = 0; i < 2 && r == 0; i++) {
			what = "rings";
			r = vhost_vring_start(v, i, &n->vdev.vq[2 * p + i],
					      n->kick_taken[2 * p + i], n->call_taken[2 * p + i]);
		}
		for (unsigned i = 0; i < 2 && r == 0; i++) {
			what = "backend";
			r = vhost_net_set_backend(v, i, n->be->ops->tap_fd(n->be, p));
		}
		if (r < 0) {
			verr("%s: vhost-net: cannot set the %s: %s", n->vdev.name, what,
			     strerror(-r));
			goto undo;
		}
	}
	return 0;
undo:
	n->vhost_active = true;
	net_vhost_down(n);
	return r;
}

/* ---- save and restore ---- */

#define NET_STATE_VERSION 1u

/* The model's state in the save file: what the driver set through the
 * control queue (the transport has features, status and queues). */
struct net_state {
	uint8_t version;        /* NET_STATE_VERSION */
	uint8_t mac[6];         /* the device's MAC now (CTRL_MAC_ADDR_SET) */
	uint8_t cur_pairs;      /* active queue pairs (CTRL_MQ) */
	uint8_t promisc, allmulti, alluni, nomulti, nouni, nobcast, uc_all, mc_all;
	uint8_t nuc, nmc;
	uint8_t pad[6];
	uint8_t uc[VIRTIO_NET_MAC_TABLE][6], mc[VIRTIO_NET_MAC_TABLE][6];
};
_Static_assert(sizeof(struct net_state) == 24 + 2 * 6 * VIRTIO_NET_MAC_TABLE, "net state");

/* Before a save: vhost-net's rings stop a moment (the tap detached, so
 * no frame arrives in between), their indices come into vq[], and they
 * run on with the same eventfds. */
static void net_sync(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);

	if (!n->vhost_active)
		return;
	for (unsigned p = 0; p < n->max_pairs; p++) {
		if (!d->vq[2 * p].ready || !d->vq[2 * p + 1].ready)
			continue;
		for (unsigned i = 0; i < 2; i++)
			vhost_net_set_backend(&n->vh[p], i, -1);
		for (unsigned i = 0; i < 2; i++)
			if (vhost_vring_sync(&n->vh[p], i, &d->vq[2 * p + i]) < 0)
				vwarn("%s: cannot read queue %u's index from vhost-net", d->name,
				      2 * p + i);
		for (unsigned i = 0; i < 2; i++)
			if (vhost_net_set_backend(&n->vh[p], i, n->be->ops->tap_fd(n->be, p)) < 0)
				vwarn("%s: cannot give queue %u back to vhost-net after the save",
				      d->name, 2 * p + i);
	}
}

static size_t net_save(struct virtio_dev *d, void *buf, size_t len)
{
	const struct virtio_net *n = to_net(d);
	struct net_state st = {
		.version = NET_STATE_VERSION, .cur_pairs = (uint8_t)n->cur_pairs,
		.promisc = n->promisc, .allmulti = n->allmulti, .alluni = n->alluni,
		.nomulti = n->nomulti, .nouni = n->nouni, .nobcast = n->nobcast,
		.uc_all = n->uc_all, .mc_all = n->mc_all, .nuc = (uint8_t)n->nuc,
		.nmc = (uint8_t)n->nmc,
	};

	memcpy(st.mac, n->mac, 6);
	memcpy(st.uc, n->uc, sizeof(st.uc));
	memcpy(st.mc, n->mc, sizeof(st.mc));
	if (buf && len >= sizeof(st))
		memcpy(buf, &st, sizeof(st));
	return sizeof(st);
}

static int net_restore(struct virtio_dev *d, const void *buf, size_t len)
{
	struct virtio_net *n = to_net(d);
	const uint8_t *flags;
	struct net_state st;

	if (len != sizeof(st))
		return -EINVAL;
	memcpy(&st, buf, sizeof(st));
	flags = &st.promisc;
	for (unsigned i = 0; i < 8; i++)
		if (flags[i] > 1)
			return -EINVAL;
	if (st.version != NET_STATE_VERSION || st.cur_pairs < 1 || st.cur_pairs > n->max_pairs ||
	    st.nuc > VIRTIO_NET_MAC_TABLE || st.nmc > VIRTIO_NET_MAC_TABLE ||
	    (st.uc_all && st.nuc) || (st.mc_all && st.nmc) ||
	    memcmp(st.pad, (const uint8_t[6]){ 0 }, sizeof(st.pad)) ||
	    (st.cur_pairs > 1 && !virtio_dev_has(d, VIRTIO_NET_F_MQ)))
		return -EINVAL;
	memcpy(n->mac, st.mac, 6);
	n->promisc = st.promisc;
	n->allmulti = st.allmulti;
	n->alluni = st.alluni;
	n->nomulti = st.nomulti;
	n->nouni = st.nouni;
	n->nobcast = st.nobcast;
	n->uc_all = st.uc_all;
	n->mc_all = st.mc_all;
	n->nuc = st.nuc;
	n->nmc = st.nmc;
	memcpy(n->uc, st.uc, sizeof(n->uc));
	memcpy(n->mc, st.mc, sizeof(n->mc));
	if (!virtio_dev_running(d) || st.cur_pairs == n->cur_pairs) {
		n->cur_pairs = st.cur_pairs;   /* activate starts from 1 again */
		return 0;
	}
	/* activate started with one pair: the driver had chosen more. */
	if (n->be->ops->set_pairs && n->be->ops->set_pairs(n->be, st.cur_pairs) < 0)
		return -EINVAL;
	n->cur_pairs = st.cur_pairs;
	for (unsigned i = 0; i < n->max_pairs && !n->vhost_active; i++)
		net_rx_arm(n, i, i < n->cur_pairs);
	return 0;
}

/* ---- virtio_dev_ops ---- */

static void net_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	struct virtio_net *n = to_net(d);
	uint8_t cfg[NET_CONFIG_SIZE];

	memcpy(cfg, n->mac, 6);
	cfg[6] = VIRTIO_NET_S_LINK_UP;
	cfg[7] = 0;
	cfg[8] = (uint8_t)n->max_pairs;
	cfg[9] = 0;
	memcpy(buf, cfg + off, len);
}

static void net_config_write(struct virtio_dev *d, uint32_t off, const void *buf,
			     uint32_t len)
{
	/* The MAC is writable for legacy drivers only (5.1.4.2): ignore. */
	(void)d; (void)off; (void)buf; (void)len;
}

static void net_queue_notify(struct virtio_dev *d, unsigned qi)
{
	struct virtio_net *n = to_net(d);

	if (qi == ctrl_q(n)) {
		net_ctrl(n);
		return;
	}
	if (qi / 2 >= n->cur_pairs)
		return;
	if (n->vhost_active) {
		/* A kick that exited to us (no ioeventfd): pass it on. */
		uint64_t one = 1;
		if (n->kick_taken[qi] >= 0 && write(n->kick_taken[qi], &one, 8) < 0) {
			/* the counter is saturated: vhost has a kick anyway */
		}
		return;
	}
	if (qi % 2) {
		net_tx(n, qi / 2);
	} else {
		net_rx_arm(n, qi / 2, true);
		net_rx(n, qi / 2);
	}
}

static int net_features_ok(const struct virtio_net *n)
{
	uint64_t f = n->vdev.guest_features;
	const struct { unsigned bit, needs; } dep[] = {
		{ VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_CSUM },
		{ VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_CSUM },
		{ VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_TSO4 },
		{ VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_CSUM },
		{ VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_CSUM },
		{ VIRTIO_NET_F_HOST_ECN, VIRTIO_NET_F_HOST_TSO4 },
		{ VIRTIO_NET_F_CTRL_RX, VIRTIO_NET_F_CTRL_VQ },
		{ VIRTIO_NET_F_MQ, VIRTIO_NET_F_CTRL_VQ },
		{ VIRTIO_NET_F_CTRL_MAC_ADDR, VIRTIO_NET_F_CTRL_VQ },
	};

	for (unsigned i = 0; i < VIREO_ARRAY_SIZE(dep); i++) {
		if (!(f & VIRTIO_BIT(dep[i].bit)) || (f & VIRTIO_BIT(dep[i].needs)))
			continue;
		/* ECN goes with either TSO. */
		if (dep[i].bit == VIRTIO_NET_F_GUEST_ECN && (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6)))
			continue;
		if (dep[i].bit == VIRTIO_NET_F_HOST_ECN && (f & VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6)))
			continue;
		return -EINVAL;
	}
	return 0;
}

static int net_activate(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);
	int r;

	if (net_features_ok(n) < 0) {
		verr("%s: the driver accepted features 0x%llx without the ones they "
		     "depend on", d->name, (unsigned long long)d->guest_features);
		return -EINVAL;
	}
	n->cur_pairs = 1;
	if (n->be->ops->set_pairs)
		n->be->ops->set_pairs(n->be, 1);
	if (n->be->ops->set_offloads &&
	    (r = n->be->ops->set_offloads(n->be, virtio_net_offloads(d->guest_features))) < 0) {
		verr("%s: cannot set the offloads of %s: %s", d->name, n->be->name,
		     strerror(-r));
		return r;
	}
	if (d->transport && d->transport->queue_kick_fd && d->transport->queue_call_fd &&
	    n->vh[0].fd >= 0 && net_vhost_up(n) == 0) {
		vdebug("%s: data path in vhost-net", d->name);
		return 0;
	}
	net_rx_arm(n, 0, true);
	return 0;
}

static void net_reset(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);

	net_vhost_down(n);
	for (unsigned p = 0; p < n->max_pairs; p++)
		net_rx_arm(n, p, false);
	net_filter_reset(n);
	n->cur_pairs = 1;
	memset(n->spill_len, 0, sizeof(n->spill_len));
	memset(n->rx_hint, 0, sizeof(n->rx_hint));
}

static void net_destroy(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);

	virtio_dev_lock(d);
	net_reset(d);
	virtio_dev_unlock(d);
	vdebug("%s: tx %llu frames %llu bytes, rx %llu frames %llu bytes; refused: tx %llu, "
	       "rx %llu, ctrl %llu; dropped: tx %llu, rx %llu; filtered %llu; out of "
	       "receive buffers %llu times", d->name,
	       (unsigned long long)n->st.tx_frames, (unsigned long long)n->st.tx_bytes,
	       (unsigned long long)n->st.rx_frames, (unsigned long long)n->st.rx_bytes,
	       (unsigned long long)n->st.tx_bad, (unsigned long long)n->st.rx_bad,
	       (unsigned long long)n->st.ctrl_bad, (unsigned long long)n->st.tx_dropped,
	       (unsigned long long)n->st.rx_dropped, (unsigned long long)n->st.rx_filtered,
	       (unsigned long long)n->st.starved);
	if (n->epfd >= 0) {
		if (d->env->unwatch_fd)
			d->env->unwatch_fd(d->env->loop, n->epfd);
		close(n->epfd);
	}
	for (unsigned p = 0; p < VIRTIO_NET_MAX_PAIRS; p++)
		vhost_close(&n->vh[p]);
	net_backend_close(n->be);
	virtio_dev_fini(d);
	for (unsigned p = 0; p < VIRTIO_NET_MAX_PAIRS; p++)
		free(n->spill[p]);
	free(n->chain);
	free(n->iov);
	free(n);
}

struct net_backend *virtio_net_backend(struct virtio_dev *d)
{
	return to_net(d)->be;
}

bool virtio_net_vhost_active(struct virtio_dev *d)
{
	bool a;

	virtio_dev_lock(d);
	a = to_net(d)->vhost_active;
	virtio_dev_unlock(d);
	return a;
}

void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *s)
{
	virtio_dev_lock(d);
	*s = to_net(d)->st;
	virtio_dev_unlock(d);
}

int virtio_net_create(const struct virtio_env *env, struct net_backend *be,
		      const uint8_t mac[6], const char *id, struct vhost *vhost,
		      struct virtio_dev **out)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	uint64_t f = VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
		     VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) |
		     VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |
		     VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) |
		     VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
		     VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
		     VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR);
	unsigned pairs = be->nr_pairs;
	char name[64];
	int r = -ENOMEM;

	/* Only what the backend can take from the guest. */
	if (!(be->tx_offloads & NET_OFF_CSUM))
		f &= ~VIRTIO_BIT(VIRTIO_NET_F_CSUM);
	if (!(be->tx_offloads & NET_OFF_TSO4) || !(f & VIRTIO_BIT(VIRTIO_NET_F_CSUM)))
		f &= ~VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4);
	if (!(be->tx_offloads & NET_OFF_TSO6) || !(f & VIRTIO_BIT(VIRTIO_NET_F_CSUM)))
		f &= ~VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6);
	if (!(be->tx_offloads & NET_OFF_ECN) || !(f & VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4)))
		f &= ~VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN);

	if (!n || pairs == 0 || pairs > VIRTIO_NET_MAX_PAIRS) {
		r = n ? -EINVAL : -ENOMEM;
		free(n);
		goto fail_be;
	}
	n->chain = malloc(sizeof(*n->chain));
	n->iov = calloc(NET_RX_IOV_MAX + 1, sizeof(*n->iov));
	if (!n->chain || !n->iov)
		goto fail;
	for (unsigned p = 0; p < pairs; p++)
		if (!(n->spill[p] = malloc(NET_SPILL)))
			goto fail;
	n->be = be;
	n->max_pairs = n->cur_pairs = be->nr_pairs;
	if (n->max_pairs > 1)
		f |= VIRTIO_BIT(VIRTIO_NET_F_MQ);
	memcpy(n->mac, mac, 6);
	net_filter_reset(n);
	n->ops = (struct virtio_dev_ops){
		.device_id = VIRTIO_ID_NET,
		.config_size = NET_CONFIG_SIZE,
		.nr_queues = 2 * n->max_pairs + 1,
		.max_queue_size = VIRTIO_NET_QUEUE_SIZE,
		.config_read = net_config_read,
		.config_write = net_config_write,
		.queue_notify = net_queue_notify,
		.activate = net_activate,
		.reset = net_reset,
		.save = net_save,
		.restore = net_restore,
		.sync = net_sync,
		.destroy = net_destroy,
	};
	snprintf(name, sizeof(name), "virtio-net %s", id);
	for (unsigned p = 0; p < VIRTIO_NET_MAX_PAIRS; p++) {
		n->vh[p] = (struct vhost){ .fd = -1 };
		if (vhost && p < n->max_pairs)
			n->vh[p] = vhost[p];
	}
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		n->kick_taken[q] = n->call_taken[q] = -1;
	virtio_dev_init(&n->vdev, &n->ops, env, name, f);
	n->epfd = -1;
	if (env->watch_fd) {
		n->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (n->epfd < 0 || (r = env->watch_fd(env->loop, n->epfd, net_rx_ready, n)) < 0) {
			r = n->epfd < 0 ? -errno : r;
			net_destroy(&n->vdev);
			return r;
		}
	}
	*out = &n->vdev;
	return 0;
fail:
	for (unsigned p = 0; p < VIRTIO_NET_MAX_PAIRS; p++)
		free(n->spill[p]);
	free(n->chain);
	free(n->iov);
	free(n);
fail_be:
	net_backend_close(be);
	for (unsigned p = 0; vhost && p < pairs && p < VIRTIO_NET_MAX_PAIRS; p++)
		vhost_close(&vhost[p]);
	return r;
}
