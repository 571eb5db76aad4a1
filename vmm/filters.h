/*
 * seccomp-bpf filters per thread role (libseccomp).  Each thread installs
 * the filter of its role on itself when it starts; a filter stacks on the
 * one the thread inherited, so a thread that creates others (the VM
 * builder) holds the union of what its children need, and each child
 * narrows it to its role.  See vmm/README.md "Sandbox".
 */
#ifndef VIREO_VMM_FILTERS_H
#define VIREO_VMM_FILTERS_H

#include "options.h"

enum vmm_role {
	VMM_ROLE_BUILDER,    /* main thread: builds/destroys VMs, starts threads */
	VMM_ROLE_LOOP,       /* the event loop */
	VMM_ROLE_VCPU,       /* vCPU threads: KVM_RUN and device exits */
	VMM_ROLE_IO,         /* disk I/O workers (blk_raw, lib/img aio) */
	VMM_ROLE_API,        /* the control API's thread (api_server.c) */
	VMM_ROLE_MIGRATE,    /* the migration thread (migrate.c, PUT /migrate) */
	VMM_ROLE_MONITOR,    /* the sandbox's monitor process (sandbox.c) */
	VMM_ROLE_WATCHDOG,   /* signals and the stop deadline (watchdog.c) */
	VMM_ROLE_CONNECTOR,  /* the sandbox's connector process (PUT /migrate) */
	VMM_ROLE_COUNT,
};

/* What some VMs' devices need beyond the base lists (filters.c). */
enum {
	FILTERS_TAP = 1u << 0,       /* --net tap=, fd= */
	FILTERS_VHOST = 1u << 1,     /* vhost-net, vhost-vsock */
	FILTERS_SOCKETS = 1u << 2,   /* --net user (libslirp) */
	FILTERS_API = 1u << 3,       /* --api-socket: the builder starts the
				      * API thread, the monitor removes the
				      * socket */
	FILTERS_API_UNLINK = 1u << 4, /* and no sandbox: the builder removes it */
	FILTERS_RESTORE = 1u << 5,   /* --restore: the builder loads the state */
};

/* Set the mode for the process and compile the filters (main thread,
 * before any thread starts), with the @extras the VM's devices need;
 * called again, compiles them again only if @mode or @extras changed.
 * 0 or -errno (a message printed). */
int filters_init(enum vmm_seccomp mode, unsigned extras);
enum vmm_seccomp filters_mode(void);

/*
 * Install @role's filter on the calling thread (no_new_privs first); a
 * no-op with --seccomp=off or before filters_init.  Returns 0 or -errno
 * (a message printed); filters_enter_or_die() ends the process instead,
 * for threads that cannot report a failure.
 */
int filters_enter(enum vmm_role role);
void filters_enter_or_die(enum vmm_role role);

/* ASan builds: skip LeakSanitizer's exit check in this process (it would
 * read the /proc of another PID namespace); also done by any filter. */
void filters_no_leak_check(void);

/* How many system calls @role allows (and ioctl request numbers), for
 * the documentation and the tests. */
unsigned filters_count(enum vmm_role role, unsigned *ioctls);
const char *filters_role_name(enum vmm_role role);

#endif
