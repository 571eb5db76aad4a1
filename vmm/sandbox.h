/*
 * --sandbox: namespaces, an empty root, an unprivileged user, no
 * capabilities; --cgroup.  See vmm/README.md "Sandbox" and the man page.
 *
 * main.c calls sandbox_start() first (single-threaded: namespaces, the
 * cgroup; with the sandbox it forks, and the parent becomes the monitor
 * and never returns), then opens what the VM needs (hold.c), then
 * sandbox_lock() (the empty root and the privilege drop), then the
 * filters.
 */
#ifndef VIREO_VMM_SANDBOX_H
#define VIREO_VMM_SANDBOX_H

#include <stdbool.h>

#include "options.h"

/* 0 (in the process that goes on to run the VM), or -errno after
 * printing one line. */
int sandbox_start(const struct vmm_opts *o);
/* Enter the empty root and drop privileges (with the sandbox); set
 * no_new_privs (always).  0 or -errno after printing one line. */
int sandbox_lock(const struct vmm_opts *o);
bool sandbox_active(void);
/* Whether sandbox_start() will enter the sandbox (--sandbox, root). */
bool sandbox_wanted(const struct vmm_opts *o);
/* Whether the sandbox stays in the host's network namespace (a user-mode
 * net: libslirp's sockets are the host's). */
bool sandbox_host_net(const struct vmm_opts *o);
/* The child made the --api-socket (before sandbox_lock): the monitor
 * removes it when the VM's process has ended. */
void sandbox_api_socket_made(void);

/*
 * PUT /vm/save in the sandbox, whose root has no host directory: the
 * monitor (in the host's file system, as the sandbox's user) makes the
 * files.  create: make @dir (mode 0700) when missing and @dir/@name.new
 * (emptied), and return a descriptor open for writing on it; rename:
 * @dir/@name.new to @dir/@name.  @name is "state" or "memory".  0 or a
 * descriptor, or -errno (-ENOTSUP without the sandbox or --api-socket).
 */
int sandbox_save_create(const char *dir, const char *name);
int sandbox_save_rename(const char *dir, const char *name);

/*
 * PUT /migrate in the sandbox, whose network namespace and root see
 * nothing of the host: a connector process, forked before the namespaces
 * (so in the host's network and file system), as the sandbox's user,
 * no_new_privs, under its own filter, connects to @uri (migrate_connect)
 * and passes the connection over.  The descriptor, or -errno with one
 * line in @err (-ENOTSUP without the sandbox or --api-socket).
 */
int sandbox_connect(const char *uri, char *err, size_t errlen);

#endif
