/*
 * Each VM's vireo-vmm as its own unprivileged user and in its own cgroup
 * v2 leaf (isolate.c): the options vireod adds to its command line.
 */
#ifndef VIREO_DAEMON_ISOLATE_H
#define VIREO_DAEMON_ISOLATE_H

#include <stdbool.h>
#include <stdint.h>

struct store;
struct vmdef;

struct isolate_config {
	const char *state_dir;      /* STATE_DIR/vm-uids: each VM's uid */
	uint32_t uid_base;          /* uid = gid = BASE + N; 0: vireo-vmm's default user */
	const char *cgroup_root;    /* NULL: vireo.slice at the cgroup2 mount; "none" */
	struct store *store;        /* which VMs are still defined */
};

/* Once, before any VM starts.  Not root: logs that there is no isolation
 * and returns 0.  0 or -1 (@err). */
int isolate_init(const struct isolate_config *c, char *err, size_t errlen);
/* Append --user, --cgroup, --cpu-max, --memory-max for @def to the
 * NULL-terminated malloc'd @argv (vmdef_vmm_argv()'s).  0 or -errno (@err). */
int isolate_vmm_args(const struct vmdef *def, char ***argv, char *err, size_t errlen);
/* @def's vireo-vmm has ended: remove its cgroup leaf if empty. */
void isolate_vm_ended(const struct vmdef *def);
/* The limits written for @def: memory.max in bytes, cpu.max's quota in
 * microseconds per 100 ms. */
uint64_t isolate_memory_max(const struct vmdef *def);
uint64_t isolate_cpu_quota(const struct vmdef *def);

#endif
