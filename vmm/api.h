/*
 * The control API of vireo-vmm (--api-socket): HTTP/1.1 and JSON on a
 * Unix socket.  docs/api.md and docs/api.yaml describe the endpoints.
 *
 * Two halves:
 * - api.c: api_handle(), the request dispatcher.  Pure: it parses the
 *   method, path and body, calls the VM through struct api_ops and writes
 *   the status and the JSON answer.  Unit tests and fuzz/fuzz_api.c call
 *   it with fake operations, no socket.
 * - api_server.c: the socket (made before the sandbox), libmicrohttpd on
 *   a thread of its own (seccomp role "api"), and the operations on the
 *   VM that runs (bound and unbound by main.c around each VM's run).
 */
#ifndef VIREO_VMM_API_H
#define VIREO_VMM_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "migrate.h"
#include "virtio/balloon.h"

/* Requests with a larger body are answered 413. */
#define API_BODY_MAX (64u * 1024u)
/* PUT /vm/pause waits this long for the vCPUs to park (else 500). */
#define API_PAUSE_TIMEOUT_MS 5000u

enum api_state { API_STATE_RUNNING, API_STATE_PAUSED, API_STATE_SHUTTING_DOWN,
		 API_STATE_INCOMING };

struct api_vm_info {
	enum api_state state;
	unsigned vcpus;
	uint64_t memory_mib;
	uint64_t uptime_ms;
	const char *name;
};

struct api_balloon_info {
	uint64_t target_mib;   /* what the guest is asked to give */
	uint64_t actual_mib;   /* what the driver says it holds */
	struct virtio_balloon_stats stats;   /* the last the guest sent */
	uint64_t now_ns;       /* for the age of the statistics */
};

/* GET /metrics: what the VM counts. */
enum api_exit {
	API_EXIT_IO, API_EXIT_MMIO, API_EXIT_INTR, API_EXIT_HLT, API_EXIT_SHUTDOWN,
	API_EXIT_SYSTEM_EVENT, API_EXIT_OTHER, API_EXIT_NR
};
#define API_METRICS_DEVS 64u   /* disks, and NICs, at most */
#define API_METRICS_ID 48u     /* bytes of a device's id, NUL included */

struct api_metrics_vcpu {
	uint64_t exits[API_EXIT_NR];
	uint64_t run_ns;
};

struct api_metrics_disk {
	char id[API_METRICS_ID];
	uint64_t read_ops, read_bytes, write_ops, write_bytes;
};

struct api_metrics_net {
	char id[API_METRICS_ID];
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
};

struct api_metrics {
	unsigned nr_vcpus;
	struct api_metrics_vcpu *vcpu;   /* malloc'd by the operation; api.c frees */
	unsigned nr_disks, nr_nets;
	struct api_metrics_disk disk[API_METRICS_DEVS];
	struct api_metrics_net net[API_METRICS_DEVS];
	bool balloon;
	uint64_t balloon_target_bytes, balloon_actual_bytes;
};

/*
 * What the dispatcher asks of the VM.  Each returns 0 or -errno:
 * -EALREADY (already paused / running: 409), -ESHUTDOWN (the VM is
 * stopping or between two runs: 409), -EBUSY (not in this state, e.g. a
 * shutdown while paused: 409), -EINPROGRESS (pause, resume, save or
 * snapshot while a migration is active: 409), -ENODEV (no such device:
 * 404), -ERANGE (a value the VM refuses: 400), anything else 500.
 */
struct api_ops {
	int (*info)(void *opaque, struct api_vm_info *out);
	int (*pause)(void *opaque);
	int (*resume)(void *opaque);
	int (*shutdown)(void *opaque);
	int (*balloon_set)(void *opaque, uint64_t target_mib);
	int (*balloon_get)(void *opaque, struct api_balloon_info *out);
	/* PUT /vm/save: pause (if running), save into @dir, then stay paused
	 * or (@exit) end vireo-vmm with status 0.  Besides the codes above:
	 * -ENOTSUP (a device that cannot be saved: 409), a file error
	 * (-ENOENT, -EACCES, -ENOTDIR, -EROFS, -ENAMETOOLONG, -ENOSPC: 400).
	 * @msg gets one line saying what failed. */
	int (*save)(void *opaque, const char *dir, bool exit, char *msg, size_t msglen);
	/* PUT /vm/snapshot: pause (if running), take the disks' internal
	 * snapshots named @name and save the VM into @dir (NULL: the
	 * default beside the first disk), then resume a VM that ran.
	 * Besides save's codes: -EEXIST (the name is taken: 409). */
	int (*snapshot)(void *opaque, const char *name, const char *dir, char *msg,
			size_t msglen);
	/* PUT /vm/poweroff: stop the VM at once (as SIGTERM, the guest not
	 * asked), vireo-vmm then exits 0; a migration under way is
	 * cancelled first. */
	int (*poweroff)(void *opaque);
	/* GET /metrics: fill @out (zeroed by the caller). */
	int (*metrics)(void *opaque, struct api_metrics *out);
	/* PUT /migrate: start a live migration (migrate.h); -EBUSY when one
	 * is active (409), -ENOTSUP when this VM cannot migrate (409, @msg
	 * says why).  GET /migrate: the last one's status.  DELETE /migrate:
	 * cancel; -EALREADY when none is active (409). */
	int (*migrate_start)(void *opaque, const struct migrate_params *p, char *msg,
			     size_t msglen);
	int (*migrate_get)(void *opaque, struct migrate_status *out);
	int (*migrate_cancel)(void *opaque);
};

struct api_ctx {
	const struct api_ops *ops;
	void *opaque;
};

/*
 * Handle one request: @method and @path as sent (path without the query),
 * @body of @len bytes (may hold NULs; NULL when @len exceeds
 * API_BODY_MAX and the body was not kept).  Sets *status and *response
 * (malloc'd JSON text, NULL for 204 No Content; the caller frees it).
 */
void api_handle(const struct api_ctx *ctx, const char *method, const char *path,
		const char *body, size_t len, unsigned *status, char **response);

/* The Content-Type of a response to @path with @status. */
const char *api_content_type(const char *path, unsigned status);
/* The Prometheus text of @m (malloc'd, NULL when out of memory). */
char *api_metrics_text(const struct api_metrics *m);

/* ---- the server (api_server.c) ---- */

struct vm;
struct vmm_opts;

/* Before the sandbox's lock (root, the host's file system): make the
 * socket at @o's --api-socket (mode 0600; a stale socket there is
 * replaced, anything else refused) and the HTTP daemon.  0, or -errno
 * after printing one line.  A no-op without --api-socket. */
int api_server_open(const struct vmm_opts *o);
bool api_server_active(void);
/* Under the builder's filter: start the API thread. */
int api_server_start(void);
/* main.c around each VM's run: requests reach @vm while bound. */
void api_server_bind(struct vm *vm);
void api_server_unbind(void);
/* Stop the thread and the daemon; remove the socket path when this
 * process still can (no sandbox: the monitor does it otherwise). */
void api_server_close(void);

#endif
