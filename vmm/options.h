/* Command-line options of vireo-vmm (parsing is pure: tests/unit). */
#ifndef VIREO_VMM_OPTIONS_H
#define VIREO_VMM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "virtio/virtio_opts.h"

/* Exit statuses (documented in docs/vireo-vmm.1). */
#define VMM_EXIT_POWEROFF  0    /* guest powered off */
#define VMM_EXIT_ERROR     1    /* bad input, set-up failure, guest crash */
#define VMM_EXIT_USAGE     2    /* bad command line */
#define VMM_EXIT_REBOOT    3    /* guest asked for a reboot (--on-reboot exit) */
/* 128 + signal number when stopped by SIGTERM, SIGINT or SIGHUP. */

enum vmm_console { VMM_CONSOLE_STDIO, VMM_CONSOLE_FILE, VMM_CONSOLE_NONE };
/* --serial-coalesce: queue COM1 transmit writes in KVM (see vm.c). */
enum vmm_coalesce { VMM_COALESCE_AUTO, VMM_COALESCE_ON, VMM_COALESCE_OFF };
/* --sandbox: auto = on when started as root (see vmm/sandbox.c). */
enum vmm_sandbox { VMM_SANDBOX_AUTO, VMM_SANDBOX_ON, VMM_SANDBOX_OFF };
/* --seccomp: on = a forbidden system call kills the process. */
enum vmm_seccomp { VMM_SECCOMP_ON, VMM_SECCOMP_LOG, VMM_SECCOMP_OFF };

/* Default --user: nobody/nogroup. */
#define VMM_SANDBOX_UID 65534u
#define VMM_SANDBOX_GID 65534u

struct vmm_opts {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	const char *name;
	bool name_given;
	unsigned cpus;
	uint64_t memory;
	enum vmm_console console;
	const char *console_path;
	bool boot_timer;
	bool reboot_restart;
	bool unpack_guest;           /* --unpack guest */
	enum vmm_coalesce serial_coalesce;
	bool mem_merge;
	bool mem_hugepages;
	bool debug_exit;
	bool help;
	bool version;
	int verbose;
	struct virtio_opts virtio;   /* --disk, --virtio-console, --rng */
	enum vmm_sandbox sandbox;
	enum vmm_seccomp seccomp;
	bool seccomp_given;          /* --seccomp was on the command line */
	/* --user: a name (resolved when the sandbox is entered, not here) or
	 * UID[:GID]; without GID the group is the uid's own number. */
	const char *user_name;       /* NULL: numeric (uid, gid) */
	uint32_t uid, gid;
	bool user_given;
	const char *cgroup;          /* --cgroup PATH (absolute), or NULL */
	const char *api_socket;      /* --api-socket PATH, or NULL */
	const char *restore_dir;     /* --restore DIR (the VM from PUT /vm/save) */
	bool restore_prefault;       /* --restore-prefault: read guest RAM first */
	const char *incoming;        /* --incoming URI (a live migration's target) */
	bool cpu_max_given;          /* --cpu-max */
	uint64_t cpu_quota_us;       /* 0: max (no limit) */
	uint64_t cpu_period_us;
	bool memory_max_given;       /* --memory-max */
	uint64_t memory_max;         /* bytes, 0: max (no limit) */
};

/* The VM comes from a save or a migration stream, not from a kernel. */
static inline bool vmm_opts_restoring(const struct vmm_opts *o)
{
	return o->restore_dir || o->incoming;
}

/* Parse argv into o (defaults first).  On error writes one line into err
 * and returns -EINVAL.  No I/O, no exit. */
int vmm_opts_parse(struct vmm_opts *o, int argc, char **argv,
		   char *err, size_t errlen);
void vmm_opts_usage(FILE *f);

#endif
