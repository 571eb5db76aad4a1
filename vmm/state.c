#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "state.h"

_Static_assert(sizeof(struct vstate_file_hdr) == 24, "file header layout");
_Static_assert(sizeof(struct vstate_sec_hdr) == 24, "section header layout");
_Static_assert(sizeof(struct vstate_vcpu) % 8 == 0, "vcpu section alignment");
_Static_assert(sizeof(struct vstate_vm) % 8 == 0, "vm section alignment");
_Static_assert(sizeof(struct vstate_devices) % 8 == 0, "devices section alignment");
_Static_assert(sizeof(struct vstate_config) % 8 == 0, "config section alignment");
_Static_assert(sizeof(struct vstate_disk) % 8 == 0, "disk section alignment");
_Static_assert(sizeof(struct vstate_virtio) % 8 == 0, "virtio section alignment");
_Static_assert(sizeof(struct vstate_net) % 8 == 0, "net section alignment");
_Static_assert(sizeof(struct vstate_slirp) % 8 == 0, "slirp section alignment");
_Static_assert(sizeof(struct vstate_slirp_fwd) == 16, "slirp fwd layout");

static int vstate_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int vstate_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

uint32_t vstate_crc(const void *p, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);
	const uint8_t *b = p;

	/* crc32() takes a uInt length. */
	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		c = crc32(c, b, n);
		b += n;
		len -= n;
	}
	return (uint32_t)c;
}

static const char *vstate_sec_name(uint32_t type)
{
	switch (type) {
	case VSTATE_SEC_END: return "end";
	case VSTATE_SEC_CONFIG: return "config";
	case VSTATE_SEC_VCPU: return "vcpu";
	case VSTATE_SEC_VM: return "vm";
	case VSTATE_SEC_DEVICES: return "devices";
	case VSTATE_SEC_DISK: return "disk";
	case VSTATE_SEC_VIRTIO: return "virtio";
	case VSTATE_SEC_SNAPSHOT: return "snapshot";
	case VSTATE_SEC_NET: return "net";
	case VSTATE_SEC_SLIRP: return "slirp";
	default: return "unknown";
	}
}

static size_t vstate_sec_size(uint32_t type)
{
	switch (type) {
	case VSTATE_SEC_END: return 0;
	case VSTATE_SEC_CONFIG: return sizeof(struct vstate_config);
	case VSTATE_SEC_VCPU: return sizeof(struct vstate_vcpu);
	case VSTATE_SEC_VM: return sizeof(struct vstate_vm);
	case VSTATE_SEC_DEVICES: return sizeof(struct vstate_devices);
	case VSTATE_SEC_DISK: return sizeof(struct vstate_disk);
	case VSTATE_SEC_VIRTIO: return sizeof(struct vstate_virtio);
	case VSTATE_SEC_SNAPSHOT: return sizeof(struct vstate_snapshot);
	case VSTATE_SEC_NET: return sizeof(struct vstate_net);
	case VSTATE_SEC_SLIRP: return 0;   /* varies: vstate_check_slirp */
	default: return (size_t)-1;
	}
}

/* The machine the configuration describes must be one vireo-vmm builds. */
int vstate_check_config(const struct vstate_config *c, char *err, size_t errlen)
{
	uint64_t off = 0;

	if (c->cpus < 1 || c->cpus > VSTATE_MAX_VCPUS)
		return vstate_err(err, errlen, "config: %u vCPUs (1 to %u)", c->cpus,
				  VSTATE_MAX_VCPUS);
	if (c->memory < (2u << 20) || c->memory > (1ull << 46) || c->memory % 4096)
		return vstate_err(err, errlen, "config: memory size %llu out of range",
				  (unsigned long long)c->memory);
	if (c->flags & ~VSTATE_CFG_ALL)
		return vstate_err(err, errlen, "config: unknown flags 0x%x", c->flags);
	if (c->serial_coalesce > 2)
		return vstate_err(err, errlen, "config: serial-coalesce mode %u", c->serial_coalesce);
	if (c->nr_regions < 1 || c->nr_regions > VSTATE_MAX_REGIONS)
		return vstate_err(err, errlen, "config: %u memory regions", c->nr_regions);
	for (unsigned i = 0; i < c->nr_regions; i++) {
		const struct vstate_region *r = &c->region[i];

		if (r->size == 0 || r->size % 4096 || r->gpa % 4096 || r->file_offset != off ||
		    r->size > c->memory || r->gpa + r->size < r->gpa)
			return vstate_err(err, errlen, "config: memory region %u is inconsistent", i);
		off += r->size;
	}
	if (off != c->memory || c->memory_file_size != c->memory)
		return vstate_err(err, errlen, "config: memory regions add up to %llu, not %llu",
				  (unsigned long long)off, (unsigned long long)c->memory);
	if (c->nr_disks > VSTATE_MAX_DISKS)
		return vstate_err(err, errlen, "config: %u disks (at most %u)", c->nr_disks,
				  VSTATE_MAX_DISKS);
	if (c->nr_nets > VSTATE_MAX_NETS)
		return vstate_err(err, errlen, "config: %u nets (at most %u)", c->nr_nets,
				  VSTATE_MAX_NETS);
	if (c->nr_virtio != c->nr_disks + !!(c->flags & VSTATE_CFG_CONSOLE) +
			    !!(c->flags & VSTATE_CFG_RNG) + !!(c->flags & VSTATE_CFG_VSOCK) +
			    !!(c->flags & VSTATE_CFG_BALLOON) + c->nr_nets)
		return vstate_err(err, errlen, "config: %u virtio devices for %u disks, %u nets%s%s%s%s",
				  c->nr_virtio, c->nr_disks, c->nr_nets,
				  c->flags & VSTATE_CFG_CONSOLE ? ", a console" : "",
				  c->flags & VSTATE_CFG_RNG ? ", an rng" : "",
				  c->flags & VSTATE_CFG_VSOCK ? ", a vsock" : "",
				  c->flags & VSTATE_CFG_BALLOON ? ", a balloon" : "");
	if (c->rng_rate && !(c->flags & VSTATE_CFG_RNG))
		return vstate_err(err, errlen, "config: an rng rate without an rng");
	/* CIDs 0-2 are the hypervisor, local and the host; 2^32-1 is any. */
	if ((c->flags & VSTATE_CFG_VSOCK) ? c->vsock_cid < 3 || c->vsock_cid > 0xfffffffeull
					  : c->vsock_cid != 0)
		return vstate_err(err, errlen, "config: vsock CID %llu",
				  (unsigned long long)c->vsock_cid);
	if ((c->flags & VSTATE_CFG_BALLOON) ? (c->balloon_flags & ~VSTATE_BALLOON_ALL) ||
					      c->balloon_target > c->memory ||
					      c->balloon_target % 4096
					    : c->balloon_flags || c->balloon_target)
		return vstate_err(err, errlen, "config: balloon flags 0x%x, target %llu",
				  c->balloon_flags, (unsigned long long)c->balloon_target);
	return 0;
}

/* A NUL within the array, and (@nonempty) something before it. */
static bool vstate_str_ok(const char *s, size_t size, bool nonempty)
{
	const char *nul = memchr(s, 0, size);

	return nul && (!nonempty || nul != s);
}

static int vstate_check_disk(const struct vstate_disk *d, unsigned i, char *err, size_t errlen)
{
	if (!vstate_str_ok(d->path, sizeof(d->path), true) ||
	    !vstate_str_ok(d->id, sizeof(d->id), true) ||
	    !vstate_str_ok(d->serial, sizeof(d->serial), false) || strlen(d->serial) > 20)
		return vstate_err(err, errlen, "disk %u: a path, id or serial not terminated", i);
	if (d->format > 2 || d->readonly > 1 || d->backing_off > 1 ||
	    d->nr_backing_dirs > VSTATE_MAX_BACKING_DIRS)
		return vstate_err(err, errlen, "disk %u: options out of range", i);
	for (unsigned k = 0; k < d->nr_backing_dirs; k++)
		if (!vstate_str_ok(d->backing_dirs[k], sizeof(d->backing_dirs[k]), true))
			return vstate_err(err, errlen, "disk %u: backing dir %u not terminated", i, k);
	return 0;
}

static int vstate_check_net(const struct vstate_net *n, unsigned i, char *err, size_t errlen)
{
	if (!vstate_str_ok(n->id, sizeof(n->id), true) ||
	    !vstate_str_ok(n->tap, sizeof(n->tap), n->kind == VSTATE_NET_TAP) ||
	    (n->kind != VSTATE_NET_TAP && n->tap[0]))
		return vstate_err(err, errlen, "net %u: an id or tap name not terminated", i);
	if (n->kind > VSTATE_NET_USER || n->vhost > 2 || n->queues < 1 || n->queues > 3 ||
	    n->reserved)
		return vstate_err(err, errlen, "net %u: options out of range", i);
	/* A unicast MAC, not all zeros. */
	if ((n->mac[0] & 1) || !(n->mac[0] | n->mac[1] | n->mac[2] | n->mac[3] | n->mac[4] |
				n->mac[5]))
		return vstate_err(err, errlen, "net %u: not a unicast MAC", i);
	return 0;
}

/* A SLIRP section of @len bytes (its header read only once len allows). */
static int vstate_check_slirp(const struct vstate_slirp *sl, uint64_t len, unsigned i,
			      char *err, size_t errlen)
{
	const uint8_t *pad;

	if (len < sizeof(*sl) || len % 8 ||
	    len - sizeof(*sl) > vstate_slirp_len(VSTATE_MAX_SLIRP_STATE) - sizeof(*sl))
		return vstate_err(err, errlen, "slirp section %u is %llu bytes", i,
				  (unsigned long long)len);
	if (sl->state_len > VSTATE_MAX_SLIRP_STATE || sl->reserved ||
	    vstate_slirp_len(sl->state_len) != len)
		return vstate_err(err, errlen, "slirp %u: %u bytes of state in a section of "
				  "%llu bytes (at most %u)", i, sl->state_len,
				  (unsigned long long)len, VSTATE_MAX_SLIRP_STATE);
	pad = sl->state + sl->state_len;
	for (size_t k = 0; k < len - sizeof(*sl) - sl->state_len; k++)
		if (pad[k])
			return vstate_err(err, errlen, "slirp %u: padding not zero", i);
	if (sl->nr_fwd > VSTATE_MAX_FWD)
		return vstate_err(err, errlen, "slirp %u: %u hostfwd rules (at most %u)", i,
				  sl->nr_fwd, VSTATE_MAX_FWD);
	for (unsigned k = 0; k < VSTATE_MAX_FWD; k++) {
		const struct vstate_slirp_fwd *f = &sl->fwd[k];
		bool used = k < sl->nr_fwd;

		if (f->udp > 1 || f->pad[0] || f->pad[1] || f->pad[2] ||
		    (used ? !f->host_port || !f->guest_port
			  : f->udp || f->host_addr || f->guest_addr || f->host_port ||
			    f->guest_port))
			return vstate_err(err, errlen, "slirp %u: hostfwd rule %u out of range",
					  i, k);
	}
	return 0;
}

static int vstate_check_virtio(const struct vstate_virtio *v, unsigned i, char *err,
			       size_t errlen)
{
	if (v->nr_queues > VSTATE_MAX_QUEUES || v->nr_vectors > VSTATE_MAX_VECTORS ||
	    v->model_len > VSTATE_MAX_MODEL || v->reserved)
		return vstate_err(err, errlen, "virtio %u: %u queues, %u vectors, %u bytes of "
				  "model state: out of range", i, v->nr_queues, v->nr_vectors,
				  v->model_len);
	return 0;
}

void vstate_clock_restore(const struct kvm_clock_data *saved, uint64_t now_ns,
			  bool kernel_realtime, struct kvm_clock_data *out)
{
	memset(out, 0, sizeof(*out));
	out->clock = saved->clock;
	if (!(saved->flags & KVM_CLOCK_REALTIME))
		return;
	if (kernel_realtime) {
		out->flags = KVM_CLOCK_REALTIME;
		out->realtime = saved->realtime;
		return;
	}
	if (now_ns > saved->realtime && now_ns - saved->realtime <= UINT64_MAX - saved->clock)
		out->clock = saved->clock + (now_ns - saved->realtime);
}

uint64_t vstate_tsc_offset(uint64_t saved_tsc, uint64_t saved_realtime, uint64_t now_realtime,
			   uint64_t now_host_tsc, uint32_t tsc_khz)
{
	uint64_t away = now_realtime > saved_realtime ? now_realtime - saved_realtime : 0;
	unsigned __int128 ticks = (unsigned __int128)away * tsc_khz / 1000000u;

	/* modulo 2^64, as the TSC and KVM's offset are */
	return saved_tsc + (uint64_t)ticks - now_host_tsc;
}

bool vstate_snapshot_name_ok(const char *s)
{
	size_t n = strnlen(s, VSTATE_SNAPSHOT_NAME_MAX + 1);

	if (n < 1 || n > VSTATE_SNAPSHOT_NAME_MAX ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static int vstate_check_snapshot(const struct vstate_snapshot *sn, const struct vstate_config *c,
				 char *err, size_t errlen)
{
	unsigned n = 0;

	if (!vstate_str_ok(sn->name, sizeof(sn->name), true) || !vstate_snapshot_name_ok(sn->name))
		return vstate_err(err, errlen, "snapshot: not a snapshot name");
	for (unsigned i = 0; i < VSTATE_MAX_DISKS; i++) {
		if (sn->disk[i] > 1 || (sn->disk[i] && i >= c->nr_disks))
			return vstate_err(err, errlen, "snapshot: disk %u out of range", i);
		n += sn->disk[i];
	}
	if (!n)
		return vstate_err(err, errlen, "snapshot: no disk has it");
	return 0;
}

static int vstate_check_vcpu(const struct vstate_vcpu *v, unsigned i, char *err, size_t errlen)
{
	if (v->nr_msrs > VSTATE_MAX_MSRS)
		return vstate_err(err, errlen, "vcpu %u: %u MSRs (at most %u)", i, v->nr_msrs,
				  VSTATE_MAX_MSRS);
	if (v->reserved)
		return vstate_err(err, errlen, "vcpu %u: reserved field set", i);
	return 0;
}

static int vstate_check_devices(const struct vstate_devices *d, char *err, size_t errlen)
{
	if (d->uart.rx_head >= sizeof(d->uart.rx) || d->uart.rx_count > sizeof(d->uart.rx))
		return vstate_err(err, errlen, "devices: UART receive FIFO %u+%u out of range",
				  d->uart.rx_head, d->uart.rx_count);
	if (d->rtc_index >= sizeof(d->rtc_cmos))
		return vstate_err(err, errlen, "devices: RTC index %u out of range", d->rtc_index);
	if (d->pci_cf8 & ~VSTATE_PCI_CF8_MASK)
		return vstate_err(err, errlen, "devices: PCI config address 0x%08x", d->pci_cf8);
	return 0;
}

int vstate_parse(const void *buf, size_t len, struct vstate *out, char *err, size_t errlen)
{
	const uint8_t *p = buf;
	const struct vstate_file_hdr *h = buf;
	size_t off;
	unsigned nvcpus = 0, ndisks = 0, nvirtio = 0, nnets = 0;
	bool end = false;
	int r;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*h))
		return vstate_err(err, errlen, "truncated: %zu bytes, shorter than the header", len);
	if (memcmp(h->magic, VSTATE_MAGIC, sizeof(h->magic)))
		return vstate_err(err, errlen, "not a vireo-vmm state file (wrong magic)");
	if (h->version != VSTATE_VERSION)
		return vstate_err(err, errlen, "format version %u, this vireo-vmm reads version %u",
				  h->version, VSTATE_VERSION);
	if (h->hdr_size != sizeof(*h))
		return vstate_err(err, errlen, "header size %u, expected %zu", h->hdr_size, sizeof(*h));
	if (h->file_size != len)
		return vstate_err(err, errlen, "%s: %zu bytes, the header says %llu",
				  len < h->file_size ? "truncated" : "trailing data", len,
				  (unsigned long long)h->file_size);
	off = sizeof(*h);
	while (!end) {
		const struct vstate_sec_hdr *s;
		const void *payload;
		size_t want;

		if (len - off < sizeof(*s))
			return vstate_err(err, errlen, "truncated: no end section");
		s = (const struct vstate_sec_hdr *)(p + off);
		off += sizeof(*s);
		if (s->len > len - off)
			return vstate_err(err, errlen, "truncated: %s section of %llu bytes at offset %zu",
					  vstate_sec_name(s->type), (unsigned long long)s->len, off);
		want = vstate_sec_size(s->type);
		if (want == (size_t)-1)
			return vstate_err(err, errlen, "unknown section type %u at offset %zu",
					  s->type, off - sizeof(*s));
		if (s->type == VSTATE_SEC_SLIRP) {
			r = vstate_check_slirp((const void *)(p + off), s->len, s->index, err,
					       errlen);
			if (r)
				return r;
		} else if (s->len != want)
			return vstate_err(err, errlen, "%s section is %llu bytes, expected %zu",
					  vstate_sec_name(s->type), (unsigned long long)s->len, want);
		if (s->reserved)
			return vstate_err(err, errlen, "%s section: reserved field set",
					  vstate_sec_name(s->type));
		payload = p + off;
		if (vstate_crc(payload, (size_t)s->len) != s->crc)
			return vstate_err(err, errlen, "%s section %u: checksum mismatch",
					  vstate_sec_name(s->type), s->index);
		off += (size_t)s->len;
		if (s->type != VSTATE_SEC_CONFIG && !out->config)
			return vstate_err(err, errlen, "the config section is not first");
		switch (s->type) {
		case VSTATE_SEC_END:
			if (s->index)
				return vstate_err(err, errlen, "end section with index %u", s->index);
			end = true;
			break;
		case VSTATE_SEC_CONFIG:
			if (out->config || s->index)
				return vstate_err(err, errlen, "a second config section");
			out->config = payload;
			r = vstate_check_config(out->config, err, errlen);
			if (r)
				return r;
			break;
		case VSTATE_SEC_VCPU:
			if (s->index >= out->config->cpus)
				return vstate_err(err, errlen, "vcpu section %u for a VM of %u vCPUs",
						  s->index, out->config->cpus);
			if (out->vcpu[s->index])
				return vstate_err(err, errlen, "a second vcpu section %u", s->index);
			r = vstate_check_vcpu(payload, s->index, err, errlen);
			if (r)
				return r;
			out->vcpu[s->index] = payload;
			nvcpus++;
			break;
		case VSTATE_SEC_VM:
			if (out->vm || s->index)
				return vstate_err(err, errlen, "a second vm section");
			if (((const struct vstate_vm *)payload)->clock.flags & ~VSTATE_CLOCK_FLAGS)
				return vstate_err(err, errlen, "vm: clock flags 0x%x",
						  ((const struct vstate_vm *)payload)->clock.flags);
			out->vm = payload;
			break;
		case VSTATE_SEC_DEVICES:
			if (out->devices || s->index)
				return vstate_err(err, errlen, "a second devices section");
			r = vstate_check_devices(payload, err, errlen);
			if (r)
				return r;
			out->devices = payload;
			break;
		case VSTATE_SEC_DISK:
			if (s->index >= out->config->nr_disks)
				return vstate_err(err, errlen, "disk section %u for a VM of %u disks",
						  s->index, out->config->nr_disks);
			if (out->disk[s->index])
				return vstate_err(err, errlen, "a second disk section %u", s->index);
			r = vstate_check_disk(payload, s->index, err, errlen);
			if (r)
				return r;
			out->disk[s->index] = payload;
			ndisks++;
			break;
		case VSTATE_SEC_VIRTIO:
			if (s->index >= out->config->nr_virtio)
				return vstate_err(err, errlen, "virtio section %u for a VM of %u "
						  "virtio devices", s->index, out->config->nr_virtio);
			if (out->virtio[s->index])
				return vstate_err(err, errlen, "a second virtio section %u", s->index);
			r = vstate_check_virtio(payload, s->index, err, errlen);
			if (r)
				return r;
			out->virtio[s->index] = payload;
			nvirtio++;
			break;
		case VSTATE_SEC_NET:
			if (s->index >= out->config->nr_nets)
				return vstate_err(err, errlen, "net section %u for a VM of %u nets",
						  s->index, out->config->nr_nets);
			if (out->net[s->index])
				return vstate_err(err, errlen, "a second net section %u", s->index);
			r = vstate_check_net(payload, s->index, err, errlen);
			if (r)
				return r;
			out->net[s->index] = payload;
			nnets++;
			break;
		case VSTATE_SEC_SLIRP:
			if (s->index >= out->config->nr_nets)
				return vstate_err(err, errlen, "slirp section %u for a VM of %u nets",
						  s->index, out->config->nr_nets);
			if (out->slirp[s->index])
				return vstate_err(err, errlen, "a second slirp section %u", s->index);
			out->slirp[s->index] = payload;
			break;
		case VSTATE_SEC_SNAPSHOT:
			if (out->snapshot || s->index)
				return vstate_err(err, errlen, "a second snapshot section");
			r = vstate_check_snapshot(payload, out->config, err, errlen);
			if (r)
				return r;
			out->snapshot = payload;
			break;
		}
	}
	if (off != len)
		return vstate_err(err, errlen, "trailing data after the end section");
	if (nvcpus != out->config->cpus)
		return vstate_err(err, errlen, "%u of %u vcpu sections", nvcpus, out->config->cpus);
	if (ndisks != out->config->nr_disks)
		return vstate_err(err, errlen, "%u of %u disk sections", ndisks,
				  out->config->nr_disks);
	if (nvirtio != out->config->nr_virtio)
		return vstate_err(err, errlen, "%u of %u virtio sections", nvirtio,
				  out->config->nr_virtio);
	if (nnets != out->config->nr_nets)
		return vstate_err(err, errlen, "%u of %u net sections", nnets, out->config->nr_nets);
	for (unsigned i = 0; i < out->config->nr_nets; i++)
		if ((out->net[i]->kind == VSTATE_NET_USER) != !!out->slirp[i])
			return vstate_err(err, errlen, "net %u: %s", i, out->slirp[i] ?
					  "a slirp section for a net not user-mode" :
					  "a user-mode net without its slirp section");
	if (!out->vm)
		return vstate_err(err, errlen, "no vm section");
	if (!out->devices)
		return vstate_err(err, errlen, "no devices section");
	for (unsigned i = 0; out->snapshot && i < out->config->nr_disks; i++)
		if (out->snapshot->disk[i] && (out->disk[i]->readonly || out->disk[i]->format == 1))
			return vstate_err(err, errlen, "snapshot: disk %u is read-only or raw", i);
	return 0;
}

/* ---- writing ---------------------------------------------------------------- */

void vstate_writer_init(struct vstate_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->len = sizeof(struct vstate_file_hdr);
	w->cap = 64 * 1024;
	w->buf = calloc(1, w->cap);
	if (!w->buf)
		w->error = -ENOMEM;
}

static void vstate_append(struct vstate_writer *w, const void *p, size_t len)
{
	if (w->error)
		return;
	if (w->cap - w->len < len) {
		size_t cap = w->cap;
		uint8_t *n;

		while (cap - w->len < len)
			cap *= 2;
		n = realloc(w->buf, cap);
		if (!n) {
			w->error = -ENOMEM;
			return;
		}
		memset(n + w->cap, 0, cap - w->cap);
		w->buf = n;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, len);
	w->len += len;
}

void vstate_add(struct vstate_writer *w, enum vstate_sec type, uint32_t index,
		const void *payload, size_t len)
{
	struct vstate_sec_hdr s = {
		.type = (uint32_t)type, .index = index, .len = len,
		.crc = vstate_crc(payload, len),
	};

	vstate_append(w, &s, sizeof(s));
	vstate_append(w, payload, len);
}

int vstate_finish(struct vstate_writer *w)
{
	struct vstate_file_hdr h = { .version = VSTATE_VERSION, .hdr_size = sizeof(h) };

	vstate_add(w, VSTATE_SEC_END, 0, "", 0);
	if (w->error)
		return w->error;
	memcpy(h.magic, VSTATE_MAGIC, sizeof(h.magic));
	h.file_size = w->len;
	memcpy(w->buf, &h, sizeof(h));
	return 0;
}

void vstate_writer_free(struct vstate_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}
