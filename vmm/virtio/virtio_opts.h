/*
 * vireo-vmm options for virtio devices (--disk, --virtio-console, --rng,
 * --vsock, --balloon).
 * Parsing is pure (no I/O), so it is unit-tested; vmm/options.c calls one
 * function per option.
 */
#ifndef VIREO_VMM_VIRTIO_VIRTIO_OPTS_H
#define VIREO_VMM_VIRTIO_VIRTIO_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../net/hostfwd.h"

#define VIRTIO_OPTS_MAX_DISKS 16
#define VIRTIO_DISK_ID_MAX    32
#define VIRTIO_DISK_MAX_BACKING_DIRS 8

enum virtio_disk_format { VIRTIO_DISK_AUTO, VIRTIO_DISK_RAW, VIRTIO_DISK_QCOW2 };

struct virtio_disk_opt {
	const char *path;            /* points into argv */
	enum virtio_disk_format format;
	bool readonly;
	char id[VIRTIO_DISK_ID_MAX];
	char serial[21];             /* "" = derived from id */
	bool backing_off;            /* backing=off: refuse any backing file */
	/* backing-dir=DIR (repeatable): where backing files may also be;
	 * NULL-terminated, pointing into argv */
	const char *backing_dirs[VIRTIO_DISK_MAX_BACKING_DIRS + 1];
};

/* --net (see virtio_opts_net). */
#define VIRTIO_OPTS_MAX_NETS  4
#define VIRTIO_NET_MAX_PAIRS  3      /* 2 * 3 + 1 queues <= VIRTIO_MAX_QUEUES */
#define VIRTIO_NET_ID_MAX     32
#define VIRTIO_NET_TAP_MAX    16     /* IFNAMSIZ */

enum virtio_net_vhost { VIRTIO_NET_VHOST_AUTO, VIRTIO_NET_VHOST_ON, VIRTIO_NET_VHOST_OFF };

struct virtio_net_opt {
	bool user;                   /* user-mode networking (libslirp) */
	struct net_hostfwd fwd[NET_USER_MAX_FWD];   /* with user: hostfwd= */
	unsigned nr_fwd;
	char tap[VIRTIO_NET_TAP_MAX]; /* tap=NAME, or "" with fd= or user */
	int fd;                      /* fd=N, or -1 */
	bool has_mac;
	uint8_t mac[6];
	enum virtio_net_vhost vhost;
	unsigned queues;             /* queue pairs, 1 .. VIRTIO_NET_MAX_PAIRS */
	char id[VIRTIO_NET_ID_MAX];
};

struct virtio_opts {
	struct virtio_disk_opt disk[VIRTIO_OPTS_MAX_DISKS];
	unsigned nr_disks;
	bool console;                /* --virtio-console */
	bool rng;                    /* --rng */
	uint64_t rng_rate;           /* bytes/s, 0 = unlimited */
	/* --vsock cid=N */
	bool vsock;
	uint64_t vsock_cid;          /* 3 .. VIRTIO_VSOCK_CID_MAX */
	/* --balloon[=free-page-reporting=on|off,deflate-on-oom=on|off,target=SIZE] */
	bool balloon;
	bool balloon_reporting;      /* default on */
	bool balloon_deflate_on_oom; /* default off */
	uint64_t balloon_target;     /* bytes to take from the guest at start */
	struct virtio_net_opt net[VIRTIO_OPTS_MAX_NETS];   /* --net */
	unsigned nr_nets;
};

/* The largest guest CID: 0xffffffff is VMADDR_CID_ANY, and the kernel's
 * vhost-vsock takes 32-bit CIDs only. */
#define VIRTIO_VSOCK_CID_MAX 0xfffffffeULL

/* --disk path=FILE[,format=raw|qcow2][,readonly=on|off][,id=NAME][,serial=S]
 *        [,backing=on|off][,backing-dir=DIR]...
 * (a bare first item is the path).  0, or -EINVAL with one line in err. */
int virtio_opts_disk(struct virtio_opts *o, char *arg, char *err, size_t errlen);
/* A disk id --disk id= takes: 1 to VIRTIO_DISK_ID_MAX - 1 letters, digits,
 * '-', '_' or '.'. */
bool virtio_opts_id_ok(const char *s);
/* --rng or --rng=rate=SIZE (bytes per second, e.g. 64K). */
int virtio_opts_rng(struct virtio_opts *o, const char *arg, char *err,
		    size_t errlen);
/* --vsock cid=N: N from 3 (0, 1, 2 are the hypervisor, local and host). */
int virtio_opts_vsock(struct virtio_opts *o, const char *arg, char *err,
		      size_t errlen);
/* Whether cid may be a guest's CID (the check of --vsock). */
bool virtio_opts_vsock_cid_ok(uint64_t cid);
/* --balloon or --balloon=KEY=VALUE,... (free-page-reporting, deflate-on-oom,
 * target: a size, rounded down to 4 KiB pages). */
int virtio_opts_balloon(struct virtio_opts *o, const char *arg, char *err,
			size_t errlen);
/* --net tap=NAME|fd=N[,mac=MAC][,vhost=on|off][,queues=N][,id=ID], or
 * --net user[,hostfwd=RULE]...[,mac=MAC][,id=ID].
 * 0, or -EINVAL with one line in err. */
int virtio_opts_net(struct virtio_opts *o, char *arg, char *err, size_t errlen);
/* A tap interface name --net tap= takes (1 to VIRTIO_NET_TAP_MAX - 1
 * characters, no '/', ':' or blanks). */
bool virtio_opts_tapname_ok(const char *s);
/* "52:54:00:12:34:56" (or with '-'): a unicast, non-zero MAC.  0 or -EINVAL. */
int virtio_opts_mac(const char *s, uint8_t mac[6]);
void virtio_opts_usage(FILE *f);

#endif
