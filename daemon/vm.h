/*
 * vireod's VMs: the registry of defined VMs and the supervision of their
 * vireo-vmm processes (start, stop, adoption after a vireod restart,
 * restart policy).  Each VM has an operation lock that serialises the
 * requests on it; different VMs proceed in parallel.
 */
#ifndef VIREO_DAEMON_VM_H
#define VIREO_DAEMON_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "store.h"
#include "vmdef.h"

struct vm;

struct vm_config {
	const char *vmm_path;   /* vireo-vmm */
	const char *run_dir;    /* per-VM run dirs: RUN_DIR/NAME/ */
	struct store *store;
};

/* Load every definition from the store, adopt the vireo-vmm processes that
 * still run, start the monitor thread.  0 or -errno (message logged). */
int vms_init(const struct vm_config *cfg);
/* Start the VMs marked autostart that do not run (in the background). */
void vms_autostart(void);
/* Stop the monitor; the VMs go on running. */
void vms_shutdown(void);

/* Status codes of the operations below: HTTP statuses, with a message in @err. */
int vms_define(const struct vmdef *def, char *err, size_t errlen);
/* Replace a VM's definition (same name; the uuid stays).  While it runs,
 * only autostart and restart may change.  204, 400, 404, 409. */
int vms_redefine(const struct vmdef *def, char *err, size_t errlen);
int vms_undefine(const char *name, bool force, char *err, size_t errlen);
int vm_start(const char *name, char *err, size_t errlen);
int vm_shutdown(const char *name, unsigned timeout_s, char *err, size_t errlen);
int vm_destroy(const char *name, char *err, size_t errlen);
int vm_suspend(const char *name, char *err, size_t errlen);
int vm_resume(const char *name, char *err, size_t errlen);

/* The end of a VM's console log (at most VM_CONSOLE_LOG_MAX bytes) as JSON
 * {"log": TEXT, "truncated": BOOL}; NULL with *status 404 for no such VM. */
#define VM_CONSOLE_LOG_MAX (64 * 1024)
char *vm_console_log_json(const char *name, int *status);

/* Whether a defined VM has @path as a disk (its name in @who, *running
 * whether it runs). */
bool vms_uses_path(const char *path, char *who, size_t wholen, bool *running);

/* Whether a running VM has a NIC on virtual network @net (its name in
 * @who); @cb for the NIC on a network of every defined VM (network.h's
 * hooks; they take the registry lock). */
bool vms_network_users(const char *net, char *who, size_t wholen);
void vms_network_hosts(void (*cb)(void *opaque, const char *vm, const char *net,
				  const char *mac, const char *ip), void *opaque);

/* JSON answers (malloc'd): the list of every VM, one VM in full (NULL and
 * *status 404 when there is none). */
char *vms_list_json(void);
char *vm_info_json(const char *name, int *status);

/* Events: defined, redefined, undefined, started, stopped, crashed,
 * restarted, rebooting, adopted, paused, resumed, shutdown.  vms_events_wait() copies the events after sequence number
 * @after as JSON lines into a malloc'd string (waiting up to @timeout_ms
 * for one), and stores the last sequence number it returns. */
char *vms_events_wait(unsigned long long after, int timeout_ms, unsigned long long *last);
unsigned long long vms_events_last(void);

#endif
