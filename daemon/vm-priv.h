/*
 * vm.c's insides, shared with the VM-state operations of vmstate.c
 * (reboot, save, restore, snapshots, clone).  The lock order of vm.c
 * holds: a VM's op lock, then define_lock, then reg_lock, then the event
 * and console locks.
 */
#ifndef VIREO_DAEMON_VM_PRIV_H
#define VIREO_DAEMON_VM_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <vireo/util.h>

#include "vm.h"

enum vm_state { VM_SHUTOFF, VM_STARTING, VM_RUNNING, VM_PAUSED, VM_CRASHED };
extern const char *const state_names[];

struct vm {
	struct vm *next;
	pthread_mutex_t op;
	pthread_cond_t cond;            /* with reg_lock: pid or state changed */
	/* Under reg_lock: */
	bool deleted;
	struct vmdef def;
	enum vm_state state;
	pid_t pid;                      /* 0: no process */
	unsigned long long starttime;   /* of pid, in clock ticks since boot */
	bool child;                     /* pid is our child (waitpid gives its status) */
	bool stop_requested;
	bool incoming;                  /* a --incoming process, the guest not here yet */
	int last_exit;                  /* wait status of the last end; -1: unknown */
	unsigned refs;                  /* holders of a pointer (find(), threads) */
	unsigned restarts, fail_streak;
	long long started_ms, restart_at_ms, shutdown_deadline_ms;
	bool restart_pending;
};

extern pthread_mutex_t reg_lock;

VIREO_PRINTF(4, 5)
int status_err(int status, char *err, size_t errlen, const char *fmt, ...);
VIREO_PRINTF(3, 4)
void emit(const char *vm, const char *type, const char *fmt, ...);
void rundir(const struct vm *vm, char *buf, size_t len);
void runfile(const struct vm *vm, const char *file, char *buf, size_t len);
/* Lock a VM for an operation (NULL and 404 in @err: no such VM). */
struct vm *op_begin(const char *name, char *err, size_t errlen);
void op_end(struct vm *vm);
bool running_locked(const struct vm *vm);
int require_state(struct vm *vm, enum vm_state want, const char *what, char *err, size_t errlen);
/* SIGTERM (then SIGKILL) and wait for the end; 204, 409, 500. */
int destroy_locked_op(struct vm *vm, char *err, size_t errlen);
/* Start vireo-vmm (op lock held, no process): booting the definition, or
 * with @restore_dir from a save or snapshot.  204 or an error status. */
int spawn_ex(struct vm *vm, bool restart, const char *restore_dir, char *err, size_t errlen);
/* The same, or with @incoming as a live migration's target (vireo-vmm
 * --incoming URI: 204 once the guest runs here, "migrated-in");
 * @forked, when given, is called once the process is made. */
int spawn_full(struct vm *vm, bool restart, const char *restore_dir, const char *incoming,
	       void (*forked)(void *opaque, pid_t pid), void *opaque, char *err, size_t errlen);
/* SIGKILL the --incoming process of @name (the migration was given up):
 * 204, 404, 409. */
int vm_incoming_abort(const char *name, char *err, size_t errlen);
int vmm_call_body(struct vm *vm, const char *method, const char *path, const char *req,
		  int timeout_ms, char **body, char *err, size_t errlen);
void gen_uuid(char out[37]);

#endif
