/*
 * The save file of a VM (PUT /vm/save, vireo-vmm --restore): the format,
 * its writer and its parser.  Pure: no KVM, no files; unit tests and
 * fuzz/fuzz_state.c call it on buffers.  snapshot.c fills and applies it.
 *
 * Layout (little-endian, x86-64 hosts only):
 *   header   "VIREOVMS" magic, u32 version (VSTATE_VERSION), u32 header
 *            size (24), u64 total file size
 *   sections one after another, each a struct vstate_sec_hdr (type,
 *            index, payload length, crc32 of the payload) and its payload
 *   the END section (length 0) last; nothing after it.
 * Sections: CONFIG first and once (the machine: memory, vCPUs, options,
 * the memory file's regions, the disks), one VCPU per vCPU (index = the
 * vCPU's number), VM once (clock, irqchip, PIT), DEVICES once (the
 * platform devices), one DISK per --disk (index = the disk's number: its
 * options), one VIRTIO per virtio PCI function (index = its place among
 * them: transport, common and device-model state), and with PUT
 * /vm/snapshot one SNAPSHOT (index 0, at most once: the name of the
 * disks' internal snapshots and which disks have one), and one NET per
 * --net (index = its number: how to build it again), and one SLIRP per
 * user-mode --net (index = the net's number: its hostfwd rules and
 * libslirp's own state, slirp_state_save's bytes; the only section whose
 * length varies, padded with zeros to a multiple of 8).  A VIRTIO
 * section's model part is the device's own state (ops->save), each
 * device's layout starting with its own version byte.  The KVM
 * structures are stored as the kernel defines them; every payload has a
 * fixed size that the parser checks.
 *
 * Version 2 added the NET section, the config's vsock, balloon and net
 * fields, and 1024 bytes of model state; version 1 files are refused.
 */
#ifndef VIREO_VMM_STATE_H
#define VIREO_VMM_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VSTATE_MAGIC      "VIREOVMS"
#define VSTATE_VERSION    2u
#define VSTATE_MAX_VCPUS  256u
#define VSTATE_MAX_MSRS   32u
#define VSTATE_MAX_REGIONS 2u
#define VSTATE_MAX_DISKS  16u     /* VIRTIO_OPTS_MAX_DISKS */
#define VSTATE_MAX_NETS   4u      /* VIRTIO_OPTS_MAX_NETS */
#define VSTATE_MAX_VIRTIO 24u     /* disks, console, rng, vsock, balloon, nets (DEVICES_MAX_VIRTIO) */
#define VSTATE_MAX_QUEUES 8u      /* VIRTIO_MAX_QUEUES */
#define VSTATE_MAX_VECTORS 9u     /* a queue's each and the config change's */
#define VSTATE_MAX_MODEL  1024u   /* a device model's own state (ops->save) */
#define VSTATE_PATH_MAX   4096u
#define VSTATE_MAX_BACKING_DIRS 8u
/* The largest state file the restore reads. */
#define VSTATE_MAX_FILE   (16u << 20)

enum vstate_sec {
	VSTATE_SEC_END = 0,
	VSTATE_SEC_CONFIG = 1,
	VSTATE_SEC_VCPU = 2,
	VSTATE_SEC_VM = 3,
	VSTATE_SEC_DEVICES = 4,
	VSTATE_SEC_DISK = 5,
	VSTATE_SEC_VIRTIO = 6,
	VSTATE_SEC_SNAPSHOT = 7,
	VSTATE_SEC_NET = 8,
	VSTATE_SEC_SLIRP = 9,
};

struct vstate_file_hdr {
	char magic[8];
	uint32_t version;
	uint32_t hdr_size;
	uint64_t file_size;
};

struct vstate_sec_hdr {
	uint32_t type;
	uint32_t index;
	uint64_t len;
	uint32_t crc;      /* zlib crc32 of the payload */
	uint32_t reserved; /* 0 */
};

/* Config flags. */
#define VSTATE_CFG_BOOT_TIMER  (1u << 0)
#define VSTATE_CFG_DEBUG_EXIT  (1u << 1)
#define VSTATE_CFG_MEM_MERGE   (1u << 2)
#define VSTATE_CFG_HUGEPAGES   (1u << 3)
#define VSTATE_CFG_RNG         (1u << 4)   /* --rng */
#define VSTATE_CFG_CONSOLE     (1u << 5)   /* --virtio-console */
#define VSTATE_CFG_VSOCK       (1u << 6)   /* --vsock (vsock_cid) */
#define VSTATE_CFG_BALLOON     (1u << 7)   /* --balloon (balloon_*) */
#define VSTATE_CFG_ALL         0xffu

/* Balloon flags. */
#define VSTATE_BALLOON_REPORTING      (1u << 0)   /* free-page-reporting=on */
#define VSTATE_BALLOON_DEFLATE_ON_OOM (1u << 1)   /* deflate-on-oom=on */
#define VSTATE_BALLOON_ALL            0x3u

struct vstate_region {
	uint64_t gpa, size;
	uint64_t file_offset;   /* where the region starts in the memory file */
};

struct vstate_config {
	uint64_t memory;        /* bytes, as --memory */
	uint32_t cpus;
	uint32_t flags;         /* VSTATE_CFG_* */
	uint32_t serial_coalesce; /* enum vmm_coalesce */
	uint32_t nr_regions;
	struct vstate_region region[VSTATE_MAX_REGIONS];
	uint64_t memory_file_size;
	uint32_t nr_disks;      /* DISK sections */
	uint32_t nr_virtio;     /* VIRTIO sections: disks, console, rng, vsock, balloon,
				 * nets (the order vireo-vmm builds them in) */
	uint64_t rng_rate;      /* --rng rate=, bytes/s (0: unlimited) */
	uint32_t nr_nets;       /* NET sections */
	uint32_t balloon_flags; /* VSTATE_BALLOON_* */
	uint64_t vsock_cid;     /* with VSTATE_CFG_VSOCK: the guest's CID */
	uint64_t balloon_target;/* with VSTATE_CFG_BALLOON: --balloon target= */
};

/* A --net: how to build it again (its driver-set state is the VIRTIO
 * section's model part). */
#define VSTATE_NET_TAP  0u      /* tap=NAME: the same tap opened again */
#define VSTATE_NET_FD   1u      /* fd=N: the restore must be given fd= again */
#define VSTATE_NET_USER 2u      /* user: libslirp, its SLIRP section */

struct vstate_net {
	char id[32];            /* NUL-terminated, an id --net id= takes */
	char tap[16];           /* VSTATE_NET_TAP: the interface (IFNAMSIZ) */
	uint8_t mac[6];         /* the MAC the device was created with */
	uint8_t kind;           /* VSTATE_NET_* */
	uint8_t vhost;          /* enum virtio_net_vhost */
	uint32_t queues;        /* queue pairs, 1 .. 3 */
	uint32_t reserved;      /* 0 */
};

/* A user-mode net's hostfwd rule (struct net_hostfwd). */
struct vstate_slirp_fwd {
	uint8_t udp;            /* 0 tcp, 1 udp */
	uint8_t pad[3];         /* 0 */
	uint32_t host_addr;     /* network byte order */
	uint32_t guest_addr;    /* network byte order */
	uint16_t host_port;     /* 1 .. 65535 */
	uint16_t guest_port;    /* 1 .. 65535 */
};

#define VSTATE_MAX_FWD        16u          /* NET_USER_MAX_FWD */
#define VSTATE_MAX_SLIRP_STATE (1u << 20)  /* slirp_state_save's bytes */

/* A SLIRP section: this header, then state_len bytes of libslirp's
 * state (slirp_state_save at state_version, slirp_state_version()),
 * then zeros up to a multiple of 8. */
struct vstate_slirp {
	uint32_t state_version;
	uint32_t nr_fwd;
	struct vstate_slirp_fwd fwd[VSTATE_MAX_FWD];
	uint32_t state_len;     /* at most VSTATE_MAX_SLIRP_STATE */
	uint32_t reserved;      /* 0 */
	uint8_t state[];
};

/* The length of a SLIRP section with @state_len bytes of state. */
static inline size_t vstate_slirp_len(size_t state_len)
{
	return sizeof(struct vstate_slirp) + ((state_len + 7) & ~(size_t)7);
}

struct vstate_disk {
	char path[VSTATE_PATH_MAX];
	char id[32];
	char serial[24];
	uint32_t format;        /* enum virtio_disk_format */
	uint32_t readonly;
	uint32_t backing_off;
	uint32_t nr_backing_dirs;
	uint64_t size;          /* bytes, as the save saw it */
	char backing_dirs[VSTATE_MAX_BACKING_DIRS][VSTATE_PATH_MAX];
};

/* A snapshot's name: a letter, then up to 63 letters, digits, '.', '_'
 * or '-' (a directory name part, never an image's snapshot ID). */
#define VSTATE_SNAPSHOT_NAME_MAX 64u

struct vstate_snapshot {
	char name[VSTATE_SNAPSHOT_NAME_MAX + 16];   /* NUL-terminated */
	uint8_t disk[VSTATE_MAX_DISKS];   /* 1: disk i has the internal snapshot */
};

/* Whether @s is a snapshot name (the rule above). */
bool vstate_snapshot_name_ok(const char *s);

struct vstate_vq {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t size, msix_vector;
	uint16_t last_avail, used_idx, signalled_used;
	uint8_t ready, broken, signalled_valid, pad[3];
};

struct vstate_msix {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct vstate_virtio {
	uint16_t device_id;
	uint16_t nr_queues;
	uint32_t nr_vectors;
	uint64_t host_features, guest_features;
	uint32_t config_generation;
	uint8_t status, isr, msix_enable, msix_fmask;
	uint32_t dfsel, gfsel;
	uint16_t qsel, config_vector;
	uint32_t pba;
	struct vstate_msix msix[VSTATE_MAX_VECTORS];
	struct vstate_vq vq[VSTATE_MAX_QUEUES];
	uint8_t cfg[256];       /* PCI config space */
	uint32_t model_len;     /* bytes of model[] used */
	uint32_t reserved;
	uint8_t model[VSTATE_MAX_MODEL];
};

struct vstate_msr {
	uint32_t index, reserved;
	uint64_t value;
};

struct vstate_vcpu {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_debugregs debugregs;
	uint32_t xsave[1024];   /* struct kvm_xsave's region (KVM_GET_XSAVE) */
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	uint32_t nr_msrs;
	uint32_t reserved;
	struct vstate_msr msrs[VSTATE_MAX_MSRS];
};

struct vstate_vm {
	struct kvm_clock_data clock;
	struct kvm_irqchip pic_master, pic_slave, ioapic;
	struct kvm_pit_state2 pit;
};

struct vstate_uart {
	uint8_t ier, iir_fifo, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	uint8_t thr_ipending, rx_was_full;
	uint32_t irq_level;
	uint32_t rx_head, rx_count;
	uint8_t rx[64];
};

struct vstate_devices {
	struct vstate_uart uart;
	uint8_t rtc_index, i8042_cmd, i8042_ctr, i8042_out, i8042_out_full, pad[3];
	uint8_t rtc_cmos[128];
	uint16_t pm_sts, pm_en, pm_cnt, pad2;
	uint32_t pm_sci_level;
	uint32_t pm_timer;       /* the PM timer's count at the save */
	uint32_t pci_cf8;
	uint32_t reserved;
	uint8_t pci_bridge_cfg[256];
};

/* The bits of the PCI config address register (0xcf8) a guest can set. */
#define VSTATE_PCI_CF8_MASK 0x80fffffcu

/* A parsed file: pointers into the caller's buffer. */
struct vstate {
	const struct vstate_config *config;
	const struct vstate_vcpu *vcpu[VSTATE_MAX_VCPUS];
	const struct vstate_vm *vm;
	const struct vstate_devices *devices;
	const struct vstate_disk *disk[VSTATE_MAX_DISKS];
	const struct vstate_virtio *virtio[VSTATE_MAX_VIRTIO];
	const struct vstate_snapshot *snapshot;   /* NULL: a save */
	const struct vstate_net *net[VSTATE_MAX_NETS];
	const struct vstate_slirp *slirp[VSTATE_MAX_NETS];   /* user nets' */
};

/*
 * Check @buf (@len bytes, the whole file) and fill @out.  0, or -EINVAL
 * (any other -errno never) with one line in @err: a wrong magic, a wrong
 * version, a truncated or oversized file, a section whose checksum, length,
 * type or index is wrong, a missing or repeated section, a configuration
 * out of range.  @buf must be 8-byte aligned and outlive @out.
 */
int vstate_parse(const void *buf, size_t len, struct vstate *out, char *err, size_t errlen);

/* The checks vstate_parse makes of a CONFIG section (migstream.c's
 * CONFIG record too): 0 or -EINVAL with one line in @err. */
int vstate_check_config(const struct vstate_config *c, char *err, size_t errlen);
/*
 * The guest clock at a restore.  @saved is the VM section's kvmclock
 * (KVM_GET_CLOCK at the save; with KVM_CLOCK_REALTIME its realtime is the
 * host's wall clock then, in ns).  The guest's clock advances by the wall
 * time between the save and @now_ns (the host's CLOCK_REALTIME now): not
 * at all when it went backwards (a host clock behind the saving one), so
 * the guest's clock never goes back.  Fills @out for KVM_SET_CLOCK: with
 * @kernel_realtime (KVM_CAP_ADJUST_CLOCK offers KVM_CLOCK_REALTIME) the
 * kernel adds the time itself (atomically with its own clock read), else
 * the time is added here.  Without a saved realtime: the saved clock.
 */
#define VSTATE_CLOCK_FLAGS (KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)
void vstate_clock_restore(const struct kvm_clock_data *saved, uint64_t now_ns,
			  bool kernel_realtime, struct kvm_clock_data *out);

/*
 * The TSC offset (KVM_VCPU_TSC_OFFSET: guest TSC = host TSC + offset) that
 * makes a restored vCPU's TSC read @saved_tsc (its saved IA32_TSC) plus
 * the wall time between the save (@saved_realtime) and now (@now_realtime,
 * when the host's TSC read @now_host_tsc), counted at @tsc_khz: the TSC
 * moves on with the kvmclock, as the kernel's documented migration does.
 * A wall clock that went back counts nothing.
 */
uint64_t vstate_tsc_offset(uint64_t saved_tsc, uint64_t saved_realtime, uint64_t now_realtime,
			   uint64_t now_host_tsc, uint32_t tsc_khz);

/* zlib's crc32 of @len bytes (any length). */
uint32_t vstate_crc(const void *p, size_t len);

/* Writing: a growing buffer. */
struct vstate_writer {
	uint8_t *buf;
	size_t len, cap;
	int error;           /* -ENOMEM once an append failed */
};

void vstate_writer_init(struct vstate_writer *w);
void vstate_add(struct vstate_writer *w, enum vstate_sec type, uint32_t index,
		const void *payload, size_t len);
/* Append the END section, fill in the header; the file is w->buf, w->len.
 * 0 or -ENOMEM. */
int vstate_finish(struct vstate_writer *w);
void vstate_writer_free(struct vstate_writer *w);

#endif
