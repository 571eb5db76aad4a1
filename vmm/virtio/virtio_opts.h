/*
 * vireo-vmm options for virtio devices (--disk, --virtio-console, --rng).
 * Parsing is pure (no I/O), so it is unit-tested; vmm/options.c calls one
 * function per option.
 */
#ifndef VIREO_VMM_VIRTIO_VIRTIO_OPTS_H
#define VIREO_VMM_VIRTIO_VIRTIO_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

struct virtio_opts {
	struct virtio_disk_opt disk[VIRTIO_OPTS_MAX_DISKS];
	unsigned nr_disks;
	bool console;                /* --virtio-console */
	bool rng;                    /* --rng */
	uint64_t rng_rate;           /* bytes/s, 0 = unlimited */
};

/* --disk path=FILE[,format=raw|qcow2][,readonly=on|off][,id=NAME][,serial=S]
 *        [,backing=on|off][,backing-dir=DIR]...
 * (a bare first item is the path).  0, or -EINVAL with one line in err. */
int virtio_opts_disk(struct virtio_opts *o, char *arg, char *err, size_t errlen);
/* --rng or --rng=rate=SIZE (bytes per second, e.g. 64K). */
int virtio_opts_rng(struct virtio_opts *o, const char *arg, char *err,
		    size_t errlen);
void virtio_opts_usage(FILE *f);

#endif
