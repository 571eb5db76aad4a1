/* vmm/state.c: the save file's writer and parser; every corruption of a
 * valid file is refused with a message. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "state.h"

static struct vstate_vcpu vc[2];
static struct vstate_vm vmst;
static struct vstate_devices devs;
static struct vstate_disk dk;
static struct vstate_virtio vio[2];

static struct vstate_config good_config(unsigned cpus)
{
	struct vstate_config c;

	memset(&c, 0, sizeof(c));
	c.memory = 64u << 20;
	c.cpus = cpus;
	c.flags = VSTATE_CFG_DEBUG_EXIT;
	c.nr_regions = 1;
	c.region[0] = (struct vstate_region){ .gpa = 0, .size = 64u << 20, .file_offset = 0 };
	c.memory_file_size = 64u << 20;
	return c;
}

/* A valid file of @cpus vCPUs with recognisable contents; with @virtio
 * a disk and an rng (two virtio functions). */
static void build_v(struct vstate_writer *w, unsigned cpus, bool virtio)
{
	struct vstate_config c = good_config(cpus);

	memset(vc, 0, sizeof(vc));
	for (unsigned i = 0; i < cpus; i++) {
		vc[i].regs.rip = 0x100000 + i;
		vc[i].regs.rax = 0x1122334455667788ull;
		vc[i].sregs.cr0 = 0x80050033;
		vc[i].nr_msrs = 2;
		vc[i].msrs[0] = (struct vstate_msr){ .index = 0x10, .value = 12345 };
		vc[i].msrs[1] = (struct vstate_msr){ .index = 0x6e0, .value = 999 };
		vc[i].xsave[0] = 0x37f;
		vc[i].lapic.regs[0x20] = (char)i;
	}
	memset(&vmst, 0, sizeof(vmst));
	vmst.clock.clock = 987654321;
	vmst.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	memset(&devs, 0, sizeof(devs));
	devs.uart.lcr = 3;
	devs.uart.rx_head = 5;
	devs.uart.rx_count = 2;
	devs.rtc_cmos[0x0b] = 2;
	devs.pm_cnt = 1;
	devs.pci_bridge_cfg[0] = 0x86;
	if (virtio) {
		c.nr_disks = 1;
		c.nr_virtio = 2;
		c.flags |= VSTATE_CFG_RNG;
		c.rng_rate = 4096;
	}
	vstate_writer_init(w);
	vstate_add(w, VSTATE_SEC_CONFIG, 0, &c, sizeof(c));
	for (unsigned i = 0; i < cpus; i++)
		vstate_add(w, VSTATE_SEC_VCPU, i, &vc[i], sizeof(vc[i]));
	vstate_add(w, VSTATE_SEC_VM, 0, &vmst, sizeof(vmst));
	vstate_add(w, VSTATE_SEC_DEVICES, 0, &devs, sizeof(devs));
	if (virtio) {
		memset(&dk, 0, sizeof(dk));
		strcpy(dk.path, "/var/lib/vm/disk.qcow2");
		strcpy(dk.id, "disk0");
		strcpy(dk.serial, "SER1");
		dk.format = 2;
		dk.size = 1 << 20;
		memset(vio, 0, sizeof(vio));
		vio[0].device_id = 2;
		vio[0].nr_queues = 1;
		vio[0].nr_vectors = 2;
		vio[0].vq[0] = (struct vstate_vq){ .desc_gpa = 0x1000, .size = 128, .last_avail = 7,
						   .used_idx = 7, .ready = 1 };
		vio[0].cfg[0] = 0xf4;
		vio[1].device_id = 4;
		vio[1].nr_queues = 1;
		vio[1].nr_vectors = 2;
		vio[1].model_len = 3;
		vio[1].model[2] = 9;
		/* sections in any order after the config */
		vstate_add(w, VSTATE_SEC_VIRTIO, 1, &vio[1], sizeof(vio[1]));
		vstate_add(w, VSTATE_SEC_DISK, 0, &dk, sizeof(dk));
		vstate_add(w, VSTATE_SEC_VIRTIO, 0, &vio[0], sizeof(vio[0]));
	}
	assert_int_equal(vstate_finish(w), 0);
}

static void build(struct vstate_writer *w, unsigned cpus)
{
	build_v(w, cpus, false);
}

static int parse(const void *buf, size_t len, char *err)
{
	struct vstate st;
	/* An aligned copy, as the restore reads it. */
	void *copy = aligned_alloc(8, len ? (len + 7) / 8 * 8 : 8);
	int r;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	r = vstate_parse(copy, len, &st, err, 256);
	free(copy);
	return r;
}

static void test_round_trip(void **state)
{
	struct vstate_writer w;
	struct vstate st;
	char err[256] = "";

	(void)state;
	for (unsigned cpus = 1; cpus <= 2; cpus++) {
		build(&w, cpus);
		assert_int_equal(vstate_parse(w.buf, w.len, &st, err, sizeof(err)), 0);
		assert_non_null(st.config);
		assert_int_equal(st.config->cpus, cpus);
		assert_int_equal(st.config->memory, 64u << 20);
		assert_int_equal(st.config->flags, VSTATE_CFG_DEBUG_EXIT);
		for (unsigned i = 0; i < cpus; i++) {
			assert_non_null(st.vcpu[i]);
			assert_memory_equal(st.vcpu[i], &vc[i], sizeof(vc[i]));
		}
		assert_null(st.vcpu[cpus]);
		assert_memory_equal(st.vm, &vmst, sizeof(vmst));
		assert_memory_equal(st.devices, &devs, sizeof(devs));
		assert_null(st.disk[0]);
		assert_null(st.virtio[0]);
		vstate_writer_free(&w);
	}
	build_v(&w, 2, true);
	assert_int_equal(vstate_parse(w.buf, w.len, &st, err, sizeof(err)), 0);
	assert_int_equal(st.config->nr_disks, 1);
	assert_int_equal(st.config->rng_rate, 4096);
	assert_memory_equal(st.disk[0], &dk, sizeof(dk));
	assert_memory_equal(st.virtio[0], &vio[0], sizeof(vio[0]));
	assert_memory_equal(st.virtio[1], &vio[1], sizeof(vio[1]));
	assert_null(st.disk[1]);
	assert_null(st.virtio[2]);
	vstate_writer_free(&w);
}

/* Disks and virtio functions: counts, indices, strings, ranges. */
static void test_virtio_sections(void **state)
{
	struct vstate_config c = good_config(1);
	struct vstate_writer w;
	char err[256];

	(void)state;
	build_v(&w, 1, true);   /* fills dk, vio */
	vstate_writer_free(&w);
	c.nr_disks = 1;
	c.nr_virtio = 2;
	c.flags |= VSTATE_CFG_RNG;
	for (unsigned k = 0; k < 10; k++) {
		struct vstate_disk d = dk;
		struct vstate_virtio v0 = vio[0];
		struct vstate_config cc = c;
		const char *want = NULL;
		bool second_disk = false, skip_v1 = false;

		switch (k) {
		case 0: memset(d.path, 'a', sizeof(d.path)); want = "not terminated"; break;
		case 1: d.path[0] = 0; want = "not terminated"; break;
		case 2: memset(d.serial, 'x', sizeof(d.serial)); want = "not terminated"; break;
		case 3: d.format = 3; want = "out of range"; break;
		case 4: d.nr_backing_dirs = 1; want = "backing dir 0"; break;
		case 5: v0.nr_queues = 9; want = "out of range"; break;
		case 6: v0.model_len = VSTATE_MAX_MODEL + 1; want = "out of range"; break;
		case 7: skip_v1 = true; want = "1 of 2 virtio sections"; break;
		case 8: second_disk = true; want = "disk section 1 for a VM of 1"; break;
		case 9: cc.nr_virtio = 1; want = "config: 1 virtio devices for 1 disks, 0 nets, an rng"; break;
		}
		vstate_writer_init(&w);
		vstate_add(&w, VSTATE_SEC_CONFIG, 0, &cc, sizeof(cc));
		vstate_add(&w, VSTATE_SEC_VCPU, 0, &vc[0], sizeof(vc[0]));
		vstate_add(&w, VSTATE_SEC_VM, 0, &vmst, sizeof(vmst));
		vstate_add(&w, VSTATE_SEC_DEVICES, 0, &devs, sizeof(devs));
		vstate_add(&w, VSTATE_SEC_DISK, 0, &d, sizeof(d));
		if (second_disk)
			vstate_add(&w, VSTATE_SEC_DISK, 1, &d, sizeof(d));
		vstate_add(&w, VSTATE_SEC_VIRTIO, 0, &v0, sizeof(v0));
		if (!skip_v1)
			vstate_add(&w, VSTATE_SEC_VIRTIO, 1, &vio[1], sizeof(vio[1]));
		assert_int_equal(vstate_finish(&w), 0);
		err[0] = 0;
		if (parse(w.buf, w.len, err) != -EINVAL)
			fail_msg("virtio case %u accepted", k);
		if (!strstr(err, want))
			fail_msg("virtio case %u: '%s' does not say '%s'", k, err, want);
		vstate_writer_free(&w);
	}
}

/* The snapshot section: parsed when right, each mistake refused. */
static void test_snapshot_section(void **state)
{
	struct vstate_config c = good_config(1);
	struct vstate_writer w;
	char err[256];

	(void)state;
	build_v(&w, 1, true);   /* fills dk, vio */
	vstate_writer_free(&w);
	c.nr_disks = 1;
	c.nr_virtio = 2;
	c.flags |= VSTATE_CFG_RNG;
	assert_true(vstate_snapshot_name_ok("before-upgrade.1_x"));
	assert_false(vstate_snapshot_name_ok("1abc"));
	assert_false(vstate_snapshot_name_ok(".a"));
	assert_false(vstate_snapshot_name_ok("a/b"));
	assert_false(vstate_snapshot_name_ok(""));
	for (unsigned k = 0; k < 9; k++) {
		struct vstate_snapshot sn;
		struct vstate_disk d = dk;
		const char *want = NULL;
		bool twice = false;

		memset(&sn, 0, sizeof(sn));
		strcpy(sn.name, "snap1");
		sn.disk[0] = 1;
		switch (k) {
		case 0: break;   /* valid */
		case 1: memset(sn.name, 'a', sizeof(sn.name)); want = "not a snapshot name"; break;
		case 2: strcpy(sn.name, "../x"); want = "not a snapshot name"; break;
		case 3: sn.disk[0] = 2; want = "disk 0 out of range"; break;
		case 4: sn.disk[1] = 1; want = "disk 1 out of range"; break;
		case 5: sn.disk[0] = 0; want = "no disk has it"; break;
		case 6: d.readonly = 1; want = "disk 0 is read-only or raw"; break;
		case 7: d.format = 1; want = "disk 0 is read-only or raw"; break;
		case 8: twice = true; want = "a second snapshot section"; break;
		}
		vstate_writer_init(&w);
		vstate_add(&w, VSTATE_SEC_CONFIG, 0, &c, sizeof(c));
		vstate_add(&w, VSTATE_SEC_VCPU, 0, &vc[0], sizeof(vc[0]));
		vstate_add(&w, VSTATE_SEC_VM, 0, &vmst, sizeof(vmst));
		vstate_add(&w, VSTATE_SEC_DEVICES, 0, &devs, sizeof(devs));
		vstate_add(&w, VSTATE_SEC_SNAPSHOT, 0, &sn, sizeof(sn));
		if (twice)
			vstate_add(&w, VSTATE_SEC_SNAPSHOT, 0, &sn, sizeof(sn));
		vstate_add(&w, VSTATE_SEC_DISK, 0, &d, sizeof(d));
		vstate_add(&w, VSTATE_SEC_VIRTIO, 0, &vio[0], sizeof(vio[0]));
		vstate_add(&w, VSTATE_SEC_VIRTIO, 1, &vio[1], sizeof(vio[1]));
		assert_int_equal(vstate_finish(&w), 0);
		err[0] = 0;
		if (!want) {
			struct vstate st;
			void *copy = aligned_alloc(8, (w.len + 7) / 8 * 8);

			assert_non_null(copy);
			memcpy(copy, w.buf, w.len);
			assert_int_equal(vstate_parse(copy, w.len, &st, err, sizeof(err)), 0);
			assert_non_null(st.snapshot);
			assert_string_equal(st.snapshot->name, "snap1");
			assert_int_equal(st.snapshot->disk[0], 1);
			free(copy);
		} else {
			if (parse(w.buf, w.len, err) != -EINVAL)
				fail_msg("snapshot case %u accepted", k);
			if (!strstr(err, want))
				fail_msg("snapshot case %u: '%s' does not say '%s'", k, err, want);
		}
		vstate_writer_free(&w);
	}
}

/* Truncated anywhere: refused. */
static void test_truncated(void **state)
{
	struct vstate_writer w;
	char err[256];

	(void)state;
	build_v(&w, 2, true);
	for (size_t len = 0; len < w.len; len += (len < 64 ? 1 : 97)) {
		err[0] = 0;
		assert_int_equal(parse(w.buf, len, err), -EINVAL);
		assert_true(err[0] != 0);
	}
	assert_int_equal(parse(w.buf, w.len - 1, err), -EINVAL);
	assert_non_null(strstr(err, "truncated"));
	vstate_writer_free(&w);
}

/* Any single flipped byte: refused (the header's fields, a section
 * header's, or a payload's checksum). */
static void test_every_byte(void **state)
{
	struct vstate_writer w;
	char err[256];

	(void)state;
	build(&w, 1);
	for (size_t off = 0; off < w.len; off++) {
		w.buf[off] ^= 0x5a;
		err[0] = 0;
		if (parse(w.buf, w.len, err) != -EINVAL)
			fail_msg("a flipped byte at offset %zu was accepted", off);
		assert_true(err[0] != 0);
		w.buf[off] ^= 0x5a;
	}
	assert_int_equal(parse(w.buf, w.len, err), 0);
	vstate_writer_free(&w);
}

static void test_messages(void **state)
{
	struct vstate_writer w;
	struct vstate_file_hdr *h;
	uint8_t *big;
	char err[256];

	(void)state;
	build(&w, 1);
	h = (struct vstate_file_hdr *)w.buf;
	h->version = 9;
	assert_int_equal(parse(w.buf, w.len, err), -EINVAL);
	assert_non_null(strstr(err, "format version 9"));
	h->version = 1;   /* before the net, vsock and balloon state */
	assert_int_equal(parse(w.buf, w.len, err), -EINVAL);
	assert_non_null(strstr(err, "format version 1, this vireo-vmm reads version 2"));
	h->version = VSTATE_VERSION;
	h->magic[0] = 'X';
	assert_int_equal(parse(w.buf, w.len, err), -EINVAL);
	assert_non_null(strstr(err, "wrong magic"));
	h->magic[0] = 'V';
	/* A payload byte: that section's checksum. */
	w.buf[sizeof(*h) + sizeof(struct vstate_sec_hdr) + 3] ^= 1;
	assert_int_equal(parse(w.buf, w.len, err), -EINVAL);
	assert_non_null(strstr(err, "config section 0: checksum mismatch"));
	w.buf[sizeof(*h) + sizeof(struct vstate_sec_hdr) + 3] ^= 1;
	/* Trailing data, even with a header that covers it. */
	big = calloc(1, w.len + 8);
	assert_non_null(big);
	memcpy(big, w.buf, w.len);
	assert_int_equal(parse(big, w.len + 8, err), -EINVAL);
	assert_non_null(strstr(err, "trailing data"));
	((struct vstate_file_hdr *)big)->file_size = w.len + 8;
	assert_int_equal(parse(big, w.len + 8, err), -EINVAL);
	free(big);
	vstate_writer_free(&w);
}

/* Well-formed sections in a wrong order or number, or out of range. */
static void test_structure(void **state)
{
	struct vstate_config c = good_config(2), bad;
	struct vstate_writer w;
	char err[256];

	(void)state;
	memset(vc, 0, sizeof(vc));
	memset(&vmst, 0, sizeof(vmst));
	memset(&devs, 0, sizeof(devs));

	/* a vCPU missing */
	vstate_writer_init(&w);
	vstate_add(&w, VSTATE_SEC_CONFIG, 0, &c, sizeof(c));
	vstate_add(&w, VSTATE_SEC_VCPU, 0, &vc[0], sizeof(vc[0]));
	vstate_add(&w, VSTATE_SEC_VM, 0, &vmst, sizeof(vmst));
	vstate_add(&w, VSTATE_SEC_DEVICES, 0, &devs, sizeof(devs));
	assert_int_equal(vstate_finish(&w), 0);
	assert_int_equal(parse(w.buf, w.len, err), -EINVAL);
	assert_non_null(strstr(err, "1 of 2 vcpu sections"));
	vstate_writer_free(&w);

	/* a vCPU twice, and one beyond the count */
	for (unsigned idx = 0; idx < 2; idx++) {
		vstate_writer_init(&w);
		vstate_add(&w, VSTATE_SEC_CONFIG, 0, &c, sizeof(c));
		vstate_add(&w, VSTATE_SEC_VCPU, 0, &vc[0], sizeof(vc[0]));
		vstate_add(&w, VSTATE_SEC_VCPU, idx ? 2 : 0, &vc[1], sizeof(vc[1]));
		vstate_add(&w, VSTATE_SEC_VM, 0, &vmst, sizeof(vmst));
		vstate_add(&w, VSTATE_SEC_DEVICES, 0, &devs, sizeof(devs));
		assert_int_equal(vstate_finish(&w), 0);
		assert_int_equal(parse(w.buf, w.len, err), -EINVAL);
		assert_non_null(strstr(err, idx ? "vcpu section 2 for a VM of 2" : "a second vcpu"));
		vstate_writer_free(&w);
	}

	/* config not first; a section of the wrong size; an unknown type */
	vstate_writer_init(&w);
	vstate_add(&w, VSTATE_SEC_VM, 0, &vmst, sizeof(vmst));
	assert_int_equal(vstate_finish(&w), 0);
	assert_int_equal(parse(w.buf, w.len, err), -EINVAL);
	assert_non_null(strstr(err, "not first"));
	vstate_writer_free(&w);
	vstate_writer_init(&w);
	vstate_add(&w, VSTATE_SEC_CONFIG, 0, &c, sizeof(c) - 8);
	assert_int_equal(vstate_finish(&w), 0);
	assert_int_equal(parse(w.buf, w.len, err), -EINVAL);
	assert_non_null(strstr(err, "config section is"));
	vstate_writer_free(&w);
	vstate_writer_init(&w);
	vstate_add(&w, (enum vstate_sec)77, 0, &c, sizeof(c));
	assert_int_equal(vstate_finish(&w), 0);
	assert_int_equal(parse(w.buf, w.len, err), -EINVAL);
	assert_non_null(strstr(err, "unknown section type 77"));
	vstate_writer_free(&w);

	/* configurations out of range: each refused */
	for (unsigned k = 0; k < 9; k++) {
		bad = good_config(1);
		switch (k) {
		case 0: bad.cpus = 0; break;
		case 1: bad.cpus = VSTATE_MAX_VCPUS + 1; break;
		case 2: bad.memory = 1u << 20; break;
		case 3: bad.flags = 0x100; break;
		case 4: bad.nr_regions = 3; break;
		case 5: bad.region[0].size = 32u << 20; break;
		case 6: bad.memory_file_size = 1; break;
		case 7: bad.nr_disks = 1; break;
		case 8: bad.region[0].file_offset = 4096; break;
		}
		vstate_writer_init(&w);
		vstate_add(&w, VSTATE_SEC_CONFIG, 0, &bad, sizeof(bad));
		vstate_add(&w, VSTATE_SEC_VCPU, 0, &vc[0], sizeof(vc[0]));
		vstate_add(&w, VSTATE_SEC_VM, 0, &vmst, sizeof(vmst));
		vstate_add(&w, VSTATE_SEC_DEVICES, 0, &devs, sizeof(devs));
		assert_int_equal(vstate_finish(&w), 0);
		err[0] = 0;
		if (parse(w.buf, w.len, err) != -EINVAL)
			fail_msg("configuration case %u accepted", k);
		assert_non_null(strstr(err, "config:"));
		vstate_writer_free(&w);
	}

	/* device state out of range: the UART FIFO, the RTC index, the PCI
	 * config address; too many MSRs */
	for (unsigned k = 0; k < 4; k++) {
		struct vstate_devices d = devs;
		struct vstate_vcpu v = vc[0];

		if (k == 0)
			d.uart.rx_head = 64;
		else if (k == 1)
			d.rtc_index = 200;
		else if (k == 2)
			d.pci_cf8 = 0x80000003;
		else
			v.nr_msrs = VSTATE_MAX_MSRS + 1;
		c = good_config(1);
		vstate_writer_init(&w);
		vstate_add(&w, VSTATE_SEC_CONFIG, 0, &c, sizeof(c));
		vstate_add(&w, VSTATE_SEC_VCPU, 0, &v, sizeof(v));
		vstate_add(&w, VSTATE_SEC_VM, 0, &vmst, sizeof(vmst));
		vstate_add(&w, VSTATE_SEC_DEVICES, 0, &d, sizeof(d));
		assert_int_equal(vstate_finish(&w), 0);
		err[0] = 0;
		if (parse(w.buf, w.len, err) != -EINVAL)
			fail_msg("device or vCPU case %u accepted", k);
		assert_true(err[0] != 0);
		vstate_writer_free(&w);
	}
}

/* A file with a vsock, a balloon and @nets nets (virtio functions after
 * them), the sections as given. */
static void build_nets(struct vstate_writer *w, const struct vstate_config *c,
		       const struct vstate_net *n, unsigned nets, const struct vstate_vm *vm)
{
	vstate_writer_init(w);
	vstate_add(w, VSTATE_SEC_CONFIG, 0, c, sizeof(*c));
	vstate_add(w, VSTATE_SEC_VCPU, 0, &vc[0], sizeof(vc[0]));
	vstate_add(w, VSTATE_SEC_VM, 0, vm, sizeof(*vm));
	vstate_add(w, VSTATE_SEC_DEVICES, 0, &devs, sizeof(devs));
	for (unsigned i = 0; i < nets; i++)
		vstate_add(w, VSTATE_SEC_NET, i, &n[i], sizeof(n[i]));
	for (unsigned i = 0; i < c->nr_virtio; i++)
		vstate_add(w, VSTATE_SEC_VIRTIO, i, &vio[0], sizeof(vio[0]));
	assert_int_equal(vstate_finish(w), 0);
}

/* The vsock, balloon and net state: parsed when right, each mistake
 * refused with a message naming it. */
static void test_net_vsock_balloon(void **state)
{
	struct vstate_config c = good_config(1);
	struct vstate_net n[2];
	struct vstate_writer w;
	struct vstate st;
	char err[256];

	(void)state;
	build(&w, 1);   /* fills vc, vmst, devs */
	vstate_writer_free(&w);
	memset(&vio[0], 0, sizeof(vio[0]));
	memset(n, 0, sizeof(n));
	strcpy(n[0].id, "lan");
	strcpy(n[0].tap, "vt0");
	memcpy(n[0].mac, "\x52\x54\x00\x12\x34\x56", 6);
	n[0].kind = VSTATE_NET_TAP;
	n[0].queues = 2;
	n[1] = n[0];
	strcpy(n[1].id, "wan");
	memset(n[1].tap, 0, sizeof(n[1].tap));
	n[1].kind = VSTATE_NET_FD;
	n[1].queues = 1;
	c.flags |= VSTATE_CFG_VSOCK | VSTATE_CFG_BALLOON;
	c.vsock_cid = 42;
	c.balloon_flags = VSTATE_BALLOON_REPORTING | VSTATE_BALLOON_DEFLATE_ON_OOM;
	c.balloon_target = 16u << 20;
	c.nr_nets = 2;
	c.nr_virtio = 4;
	build_nets(&w, &c, n, 2, &vmst);
	assert_int_equal(vstate_parse(w.buf, w.len, &st, err, sizeof(err)), 0);
	assert_int_equal(st.config->vsock_cid, 42);
	assert_int_equal(st.config->balloon_target, 16u << 20);
	assert_int_equal(st.config->nr_nets, 2);
	assert_memory_equal(st.net[0], &n[0], sizeof(n[0]));
	assert_memory_equal(st.net[1], &n[1], sizeof(n[1]));
	assert_null(st.net[2]);
	vstate_writer_free(&w);

	for (unsigned k = 0; k < 16; k++) {
		struct vstate_config cc = c;
		struct vstate_net nn[2] = { n[0], n[1] };
		unsigned nets = 2;
		const char *want = NULL;

		switch (k) {
		case 0: nets = 1; want = "1 of 2 net sections"; break;
		case 1: cc.nr_nets = 1; cc.nr_virtio = 3; want = "net section 1 for a VM of 1"; break;
		case 2: nn[0].mac[0] = 1; want = "net 0: not a unicast MAC"; break;
		case 3: memset(nn[0].mac, 0, 6); want = "net 0: not a unicast MAC"; break;
		case 4: nn[1].kind = 3; want = "net 1: options out of range"; break;
		case 5: memset(nn[0].tap, 'x', sizeof(nn[0].tap)); want = "not terminated"; break;
		case 6: nn[0].tap[0] = 0; want = "net 0: an id or tap name"; break;
		case 7: strcpy(nn[1].tap, "vt1"); want = "net 1: an id or tap name"; break;
		case 8: nn[0].queues = 0; want = "options out of range"; break;
		case 9: nn[0].queues = 4; want = "options out of range"; break;
		case 10: cc.vsock_cid = 2; want = "config: vsock CID 2"; break;
		case 11: cc.flags &= ~VSTATE_CFG_VSOCK; cc.nr_virtio = 3; want = "config: vsock CID 42"; break;
		case 12: cc.balloon_flags = 4; want = "config: balloon flags 0x4"; break;
		case 13: cc.balloon_target = cc.memory + 4096; want = "config: balloon flags"; break;
		case 14: cc.nr_virtio = 5; want = "config: 5 virtio devices for 0 disks, 2 nets, a vsock, a balloon"; break;
		case 15: cc.nr_nets = 5; want = "config: 5 nets (at most 4)"; break;
		}
		build_nets(&w, &cc, nn, nets, &vmst);
		err[0] = 0;
		if (vstate_parse(w.buf, w.len, &st, err, sizeof(err)) != -EINVAL)
			fail_msg("net/vsock/balloon case %u accepted", k);
		if (!strstr(err, want))
			fail_msg("net/vsock/balloon case %u: '%s' does not say '%s'", k, err, want);
		vstate_writer_free(&w);
	}
}

/* A file of one tap net (0) and one user net (1) whose SLIRP section is
 * @sl (@len bytes) at index @idx, twice with @twice. */
static void build_slirp(struct vstate_writer *w, const struct vstate_net *n,
			const struct vstate_slirp *sl, size_t len, uint32_t idx, bool twice)
{
	struct vstate_config c = good_config(1);

	c.nr_nets = 2;
	c.nr_virtio = 2;
	vstate_writer_init(w);
	vstate_add(w, VSTATE_SEC_CONFIG, 0, &c, sizeof(c));
	vstate_add(w, VSTATE_SEC_VCPU, 0, &vc[0], sizeof(vc[0]));
	vstate_add(w, VSTATE_SEC_VM, 0, &vmst, sizeof(vmst));
	vstate_add(w, VSTATE_SEC_DEVICES, 0, &devs, sizeof(devs));
	for (unsigned i = 0; i < 2; i++)
		vstate_add(w, VSTATE_SEC_NET, i, &n[i], sizeof(n[i]));
	if (sl)
		vstate_add(w, VSTATE_SEC_SLIRP, idx, sl, len);
	if (sl && twice)
		vstate_add(w, VSTATE_SEC_SLIRP, idx, sl, len);
	for (unsigned i = 0; i < c.nr_virtio; i++)
		vstate_add(w, VSTATE_SEC_VIRTIO, i, &vio[0], sizeof(vio[0]));
	assert_int_equal(vstate_finish(w), 0);
}

/* A user-mode net's SLIRP section: its hostfwd rules and libslirp's bytes
 * round trip; wrong sizes, versions of the layout, rules and pairings
 * refused with a message naming them. */
static void test_slirp_section(void **state)
{
	size_t big = vstate_slirp_len(VSTATE_MAX_SLIRP_STATE + 8);
	struct vstate_slirp *sl = calloc(1, big), *bad = calloc(1, big);
	struct vstate_net n[2];
	struct vstate_writer w;
	struct vstate st;
	size_t len = vstate_slirp_len(13);
	char err[256];

	(void)state;
	assert_non_null(sl);
	assert_non_null(bad);
	build(&w, 1);   /* fills vc, vmst, devs */
	vstate_writer_free(&w);
	memset(&vio[0], 0, sizeof(vio[0]));
	memset(n, 0, sizeof(n));
	strcpy(n[0].id, "lan");
	strcpy(n[0].tap, "vt0");
	memcpy(n[0].mac, "\x52\x54\x00\x12\x34\x56", 6);
	n[0].kind = VSTATE_NET_TAP;
	n[0].queues = 1;
	n[1] = n[0];
	strcpy(n[1].id, "user0");
	memset(n[1].tap, 0, sizeof(n[1].tap));
	n[1].kind = VSTATE_NET_USER;
	sl->state_version = 4;
	sl->nr_fwd = 2;
	sl->fwd[0] = (struct vstate_slirp_fwd){ .host_addr = htonl(0x7f000001),
		.guest_addr = htonl(0x0a00020f), .host_port = 2222, .guest_port = 22 };
	sl->fwd[1] = (struct vstate_slirp_fwd){ .udp = 1, .host_port = 5353, .guest_port = 53 };
	sl->state_len = 13;
	memcpy(sl->state, "slirp-bytes!!", 13);
	assert_int_equal(len % 8, 0);
	assert_int_equal(len, sizeof(*sl) + 16);

	build_slirp(&w, n, sl, len, 1, false);
	if (vstate_parse(w.buf, w.len, &st, err, sizeof(err)))
		fail_msg("good slirp file refused: %s", err);
	assert_null(st.slirp[0]);
	assert_non_null(st.slirp[1]);
	assert_int_equal(st.net[1]->kind, VSTATE_NET_USER);
	assert_int_equal(st.slirp[1]->state_version, 4);
	assert_int_equal(st.slirp[1]->nr_fwd, 2);
	assert_memory_equal(st.slirp[1]->fwd, sl->fwd, sizeof(sl->fwd));
	assert_int_equal(st.slirp[1]->state_len, 13);
	assert_memory_equal(st.slirp[1]->state, "slirp-bytes!!", 13);
	vstate_writer_free(&w);

	/* the most state allowed: 1 MiB */
	memcpy(bad, sl, sizeof(*sl));
	bad->state_len = VSTATE_MAX_SLIRP_STATE;
	build_slirp(&w, n, bad, vstate_slirp_len(VSTATE_MAX_SLIRP_STATE), 1, false);
	if (vstate_parse(w.buf, w.len, &st, err, sizeof(err)))
		fail_msg("1 MiB of slirp state refused: %s", err);
	vstate_writer_free(&w);

	for (unsigned k = 0; k < 17; k++) {
		struct vstate_net nn[2] = { n[0], n[1] };
		size_t blen = len;
		uint32_t idx = 1;
		bool twice = false, none = false;
		const char *want = NULL;

		memset(bad, 0, big);
		memcpy(bad, sl, len);
		switch (k) {
		case 0: bad->state_len = VSTATE_MAX_SLIRP_STATE + 1;
			blen = vstate_slirp_len(VSTATE_MAX_SLIRP_STATE + 1);
			want = "slirp section 1 is"; break;
		case 1: bad->state_len = 17; want = "17 bytes of state"; break;
		case 2: bad->state_len = 5; want = "5 bytes of state"; break;
		case 3: blen = len - 4; want = "slirp section 1 is"; break;
		case 4: blen = sizeof(*sl) - 8; want = "slirp section 1 is"; break;
		case 5: bad->state[14] = 1; want = "padding not zero"; break;
		case 6: bad->reserved = 1; want = "bytes of state"; break;
		case 7: bad->nr_fwd = VSTATE_MAX_FWD + 1; want = "17 hostfwd rules"; break;
		case 8: bad->fwd[0].host_port = 0; want = "hostfwd rule 0"; break;
		case 9: bad->fwd[1].udp = 2; want = "hostfwd rule 1"; break;
		case 10: bad->fwd[2].host_port = 80; want = "hostfwd rule 2"; break;
		case 11: bad->fwd[0].pad[1] = 1; want = "hostfwd rule 0"; break;
		case 12: none = true; want = "net 1: a user-mode net without its slirp section"; break;
		case 13: idx = 0; want = "net 0: a slirp section for a net not user-mode"; break;
		case 14: idx = 2; want = "slirp section 2 for a VM of 2 nets"; break;
		case 15: twice = true; want = "a second slirp section 1"; break;
		case 16: nn[1].kind = VSTATE_NET_FD; want = "net 1: a slirp section for a net not"; break;
		}
		build_slirp(&w, nn, none ? NULL : bad, blen, idx, twice);
		err[0] = 0;
		if (vstate_parse(w.buf, w.len, &st, err, sizeof(err)) != -EINVAL)
			fail_msg("slirp case %u accepted", k);
		if (!strstr(err, want))
			fail_msg("slirp case %u: '%s' does not say '%s'", k, err, want);
		vstate_writer_free(&w);
	}
	/* a user net with a tap name */
	strcpy(n[1].tap, "vt1");
	build_slirp(&w, n, sl, len, 1, false);
	assert_int_equal(vstate_parse(w.buf, w.len, &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "net 1: an id or tap name"));
	vstate_writer_free(&w);
	free(sl);
	free(bad);
}

/* The guest clock at a restore: advanced by the wall time since the save,
 * by the kernel or here, never back; unknown clock flags refused. */
static void test_clock(void **state)
{
	struct kvm_clock_data saved = { .clock = 5000000000ull, .flags = KVM_CLOCK_REALTIME,
					.realtime = 1700000000000000000ull };
	struct kvm_clock_data out;
	struct vstate_config c = good_config(1);
	struct vstate_vm vm;
	struct vstate_writer w;
	struct vstate st;
	char err[256];

	(void)state;
	/* the kernel adds the time: the saved realtime passed on */
	vstate_clock_restore(&saved, saved.realtime + 7000000000ull, true, &out);
	assert_int_equal(out.clock, saved.clock);
	assert_int_equal(out.flags, KVM_CLOCK_REALTIME);
	assert_int_equal(out.realtime, saved.realtime);
	/* added here: 7 s later, 7 s more */
	vstate_clock_restore(&saved, saved.realtime + 7000000000ull, false, &out);
	assert_int_equal(out.clock, saved.clock + 7000000000ull);
	assert_int_equal(out.flags, 0);
	/* a host clock behind the save's: the guest's does not go back */
	vstate_clock_restore(&saved, saved.realtime - 1000, false, &out);
	assert_int_equal(out.clock, saved.clock);
	/* an absurd realtime: no overflow, the saved clock */
	saved.clock = UINT64_MAX - 10;
	vstate_clock_restore(&saved, saved.realtime + 1000, false, &out);
	assert_int_equal(out.clock, UINT64_MAX - 10);
	/* no saved realtime: the saved clock, nothing more */
	saved.flags = 0;
	saved.clock = 123;
	vstate_clock_restore(&saved, 1ull << 62, true, &out);
	assert_int_equal(out.clock, 123);
	assert_int_equal(out.flags, 0);

	/* the TSC: the saved value plus the time away at the TSC's rate */
	assert_int_equal(1000 + vstate_tsc_offset(5000000, 10000000000ull, 12000000000ull, 1000,
						  2500000), 5000000 + 5000000000ull);
	/* a host TSC ahead of the guest's: a negative offset (mod 2^64) */
	assert_int_equal(vstate_tsc_offset(100, 0, 0, 300, 1000000), (uint64_t)-200);
	/* a wall clock gone back: the saved value */
	assert_int_equal(7 + vstate_tsc_offset(42, 500, 100, 7, 3000000), 42);

	build(&w, 1);
	vstate_writer_free(&w);
	vm = vmst;
	vm.clock.flags = KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC | KVM_CLOCK_TSC_STABLE;
	build_nets(&w, &c, NULL, 0, &vm);
	assert_int_equal(vstate_parse(w.buf, w.len, &st, err, sizeof(err)), 0);
	vstate_writer_free(&w);
	vm.clock.flags = 1;
	build_nets(&w, &c, NULL, 0, &vm);
	assert_int_equal(vstate_parse(w.buf, w.len, &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vm: clock flags 0x1"));
	vstate_writer_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_virtio_sections),
		cmocka_unit_test(test_snapshot_section),
		cmocka_unit_test(test_net_vsock_balloon),
		cmocka_unit_test(test_slirp_section),
		cmocka_unit_test(test_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
