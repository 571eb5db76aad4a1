/*
 * libFuzzer target: the save file's parser (vmm/state.c), which reads the
 * state file of vireo-vmm --restore before anything else.
 *
 * Input: the file.  It is parsed as given, then again with every section's
 * crc32 made right (so that mutations reach the checks behind the
 * checksums).  A file the parser accepts must hold what the restore
 * relies on (a configuration in range, one section per vCPU, the VM and
 * device sections, FIFO and index bounds), and writing its sections again
 * must give a file the parser accepts with the same contents.
 * Seeds: fuzz/corpus/state/ (files saved from tests/guest/savewrite.c, 1
 * and 2 vCPUs, and from tests/guest/virtio.c with a disk and an rng, and
 * a snapshot of it on a qcow2 disk, PUT /vm/snapshot; and from it with a
 * balloon and a tap net: tests/guest/save-restore-balloon.sh's and
 * -net.sh's set-up; and with a user-mode net, two hostfwd rules, as
 * tests/guest/save-restore-user-net.sh saves it).  The version-1 seeds were converted to version 2
 * (zeros for the new config fields and model bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "state.h"

static void fz_check(const struct vstate *st)
{
	const struct vstate_config *c = st->config;

	if (!c || c->cpus < 1 || c->cpus > VSTATE_MAX_VCPUS || !st->vm || !st->devices ||
	    c->nr_regions < 1 || c->nr_regions > VSTATE_MAX_REGIONS ||
	    c->memory_file_size != c->memory || c->nr_disks > VSTATE_MAX_DISKS)
		abort();
	for (unsigned i = 0; i < VSTATE_MAX_VCPUS; i++)
		if ((st->vcpu[i] != NULL) != (i < c->cpus) ||
		    (st->vcpu[i] && st->vcpu[i]->nr_msrs > VSTATE_MAX_MSRS))
			abort();
	for (unsigned i = 0; i < VSTATE_MAX_DISKS; i++)
		if ((st->disk[i] != NULL) != (i < c->nr_disks) ||
		    (st->disk[i] && (!memchr(st->disk[i]->path, 0, sizeof(st->disk[i]->path)) ||
				     strlen(st->disk[i]->serial) > 20)))
			abort();
	for (unsigned i = 0; i < VSTATE_MAX_VIRTIO; i++)
		if ((st->virtio[i] != NULL) != (i < c->nr_virtio) ||
		    (st->virtio[i] && (st->virtio[i]->nr_queues > VSTATE_MAX_QUEUES ||
				       st->virtio[i]->model_len > VSTATE_MAX_MODEL)))
			abort();
	if (c->nr_nets > VSTATE_MAX_NETS ||
	    ((c->flags & VSTATE_CFG_VSOCK) && (c->vsock_cid < 3 || c->vsock_cid > 0xfffffffeull)) ||
	    ((c->flags & VSTATE_CFG_BALLOON) && c->balloon_target > c->memory) ||
	    (st->vm->clock.flags & ~VSTATE_CLOCK_FLAGS))
		abort();
	for (unsigned i = 0; i < VSTATE_MAX_NETS; i++)
		if ((st->net[i] != NULL) != (i < c->nr_nets) ||
		    (st->net[i] && (!memchr(st->net[i]->id, 0, sizeof(st->net[i]->id)) ||
				    !memchr(st->net[i]->tap, 0, sizeof(st->net[i]->tap)) ||
				    st->net[i]->kind > VSTATE_NET_USER || st->net[i]->queues < 1 ||
				    st->net[i]->queues > 3 || (st->net[i]->mac[0] & 1))))
			abort();
	/* a SLIRP section exactly for each user net, its state within bounds */
	for (unsigned i = 0; i < VSTATE_MAX_NETS; i++)
		if ((st->slirp[i] != NULL) != (st->net[i] && st->net[i]->kind == VSTATE_NET_USER) ||
		    (st->slirp[i] && (st->slirp[i]->state_len > VSTATE_MAX_SLIRP_STATE ||
				      st->slirp[i]->nr_fwd > VSTATE_MAX_FWD)))
			abort();
	if (st->snapshot) {
		unsigned n = 0;

		if (!vstate_snapshot_name_ok(st->snapshot->name))
			abort();
		for (unsigned i = 0; i < VSTATE_MAX_DISKS; i++) {
			if (st->snapshot->disk[i] > 1 ||
			    (st->snapshot->disk[i] && (i >= c->nr_disks || st->disk[i]->readonly)))
				abort();
			n += st->snapshot->disk[i];
		}
		if (!n)
			abort();
	}
	if (st->devices->uart.rx_head >= sizeof(st->devices->uart.rx) ||
	    st->devices->uart.rx_count > sizeof(st->devices->uart.rx) ||
	    st->devices->rtc_index >= sizeof(st->devices->rtc_cmos) ||
	    (st->devices->pci_cf8 & ~VSTATE_PCI_CF8_MASK))
		abort();
}

/* Walk the section headers as far as they go and set each crc32. */
static void fz_fix_crcs(uint8_t *buf, size_t size)
{
	size_t off = sizeof(struct vstate_file_hdr);

	while (size - off >= sizeof(struct vstate_sec_hdr) && off <= size) {
		struct vstate_sec_hdr h;

		memcpy(&h, buf + off, sizeof(h));
		off += sizeof(h);
		if (h.len > size - off)
			return;
		h.crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf + off, (uInt)h.len);
		memcpy(buf + off - sizeof(h), &h, sizeof(h));
		off += (size_t)h.len;
	}
}

static void fz_one(uint8_t *buf, size_t size)
{
	struct vstate st, again;
	struct vstate_writer w;
	char err[256];

	err[0] = 0;
	if (vstate_parse(buf, size, &st, err, sizeof(err))) {
		if (!err[0])
			abort();   /* a refusal always says why */
		return;
	}
	fz_check(&st);
	vstate_writer_init(&w);
	vstate_add(&w, VSTATE_SEC_CONFIG, 0, st.config, sizeof(*st.config));
	for (unsigned i = 0; i < st.config->cpus; i++)
		vstate_add(&w, VSTATE_SEC_VCPU, i, st.vcpu[i], sizeof(*st.vcpu[i]));
	vstate_add(&w, VSTATE_SEC_VM, 0, st.vm, sizeof(*st.vm));
	vstate_add(&w, VSTATE_SEC_DEVICES, 0, st.devices, sizeof(*st.devices));
	for (unsigned i = 0; i < st.config->nr_disks; i++)
		vstate_add(&w, VSTATE_SEC_DISK, i, st.disk[i], sizeof(*st.disk[i]));
	for (unsigned i = 0; i < st.config->nr_virtio; i++)
		vstate_add(&w, VSTATE_SEC_VIRTIO, i, st.virtio[i], sizeof(*st.virtio[i]));
	if (st.snapshot)
		vstate_add(&w, VSTATE_SEC_SNAPSHOT, 0, st.snapshot, sizeof(*st.snapshot));
	for (unsigned i = 0; i < st.config->nr_nets; i++)
		vstate_add(&w, VSTATE_SEC_NET, i, st.net[i], sizeof(*st.net[i]));
	for (unsigned i = 0; i < st.config->nr_nets; i++)
		if (st.slirp[i])
			vstate_add(&w, VSTATE_SEC_SLIRP, i, st.slirp[i],
				   vstate_slirp_len(st.slirp[i]->state_len));
	if (vstate_finish(&w) == 0) {
		if (vstate_parse(w.buf, w.len, &again, err, sizeof(err)))
			abort();
		if (memcmp(again.config, st.config, sizeof(*st.config)) ||
		    memcmp(again.vm, st.vm, sizeof(*st.vm)) ||
		    memcmp(again.devices, st.devices, sizeof(*st.devices)))
			abort();
		for (unsigned i = 0; i < st.config->cpus; i++)
			if (memcmp(again.vcpu[i], st.vcpu[i], sizeof(*st.vcpu[i])))
				abort();
		if (!again.snapshot != !st.snapshot ||
		    (st.snapshot && memcmp(again.snapshot, st.snapshot, sizeof(*st.snapshot))))
			abort();
		for (unsigned i = 0; i < st.config->nr_disks; i++)
			if (memcmp(again.disk[i], st.disk[i], sizeof(*st.disk[i])))
				abort();
		for (unsigned i = 0; i < st.config->nr_virtio; i++)
			if (memcmp(again.virtio[i], st.virtio[i], sizeof(*st.virtio[i])))
				abort();
		for (unsigned i = 0; i < st.config->nr_nets; i++)
			if (memcmp(again.net[i], st.net[i], sizeof(*st.net[i])) ||
			    !again.slirp[i] != !st.slirp[i] ||
			    (st.slirp[i] && memcmp(again.slirp[i], st.slirp[i],
						   vstate_slirp_len(st.slirp[i]->state_len))))
				abort();
	}
	vstate_writer_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The restore reads the file into an 8-byte aligned buffer. */
	uint8_t *buf = aligned_alloc(8, size ? (size + 7) / 8 * 8 : 8);

	if (!buf || size > VSTATE_MAX_FILE) {
		free(buf);
		return 0;
	}
	memcpy(buf, data, size);
	fz_one(buf, size);
	if (size >= sizeof(struct vstate_file_hdr)) {
		memcpy(buf, data, size);
		fz_fix_crcs(buf, size);
		fz_one(buf, size);
	}
	free(buf);
	return 0;
}
