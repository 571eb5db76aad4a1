/*
 * Live migration between two vireo-vmm processes (migstream.h's stream).
 *
 * Source (PUT /migrate, --api-socket): a migration thread of its own
 * (seccomp role "migrate"), started with the API thread and waiting for
 * a job.  It connects to the target (in the sandbox through the
 * sandbox's connector), sends the configuration, turns on KVM's dirty
 * logging (on the event loop, through vm_call) and the VMM's own (gmem.h:
 * the devices' writes into guest RAM), sends all of guest RAM, then the
 * pages dirtied meanwhile, in rounds, until what is left fits the
 * downtime limit at the measured bandwidth; then it pauses the vCPUs,
 * takes the state (snapshot_state: disks drained), sends the last pages
 * and the state, flushes the writable disks and releases their locks,
 * sends its pause time (STOP) and the end, and waits for the target's
 * READY.  On READY it answers GO, reads the target's downtime (DONE) and
 * the VM ends with status 0 ("migrated"); on anything else (cancel, a
 * closed or silent connection, no convergence) dirty logging is turned
 * off, the disks' locks are taken back and the VM resumes where it was.
 *
 * Target (--incoming URI): migrate_incoming() in main.c, before anything
 * is sized from the options (as --restore's snapshot_prepare): listen,
 * accept one connection, receive and check the stream (guest RAM into a
 * memfd).  A VM without disks whose nets this command line gives is built
 * from the CONFIG record on, while a thread takes in the rest
 * (migrate_incoming_receive, then migrate_incoming_received hands the
 * state to snapshot_incoming_state); any other waits for the whole stream
 * (snapshot_prepare_incoming), its disks opened after the END, so after
 * the source released them.  Once the VM is built and loaded,
 * migrate_incoming_go() says READY and waits for GO
 * before the guest runs; as it starts it sends the downtime (DONE) and
 * keeps it for its own GET /migrate.
 */
#ifndef VIREO_VMM_MIGRATE_H
#define VIREO_VMM_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vmm_opts;

/* The pre-copy rounds before the migration gives up, and its time limit.
 * From the second round on, a remaining set that does not shrink throttles
 * the vCPUs (paused 20% of each 100 ms, then 40%... up to 80%). */
#define MIGRATE_MAX_ROUNDS 30u
#define MIGRATE_MAX_SECONDS 300u
/* How long the source waits for the target's READY after the end. */
#define MIGRATE_READY_TIMEOUT_MS 30000u
/* After GO, how long the source waits for the target's downtime. */
#define MIGRATE_DONE_TIMEOUT_MS 10000u
/* Sends that block longer than this (a cut link) fail the migration. */
#define MIGRATE_SEND_TIMEOUT_S 20u
/* The target: how long a read from the source may wait. */
#define MIGRATE_RECV_TIMEOUT_S 60u

enum migrate_state {
	MIGRATE_NONE,          /* never started */
	MIGRATE_ACTIVE,
	MIGRATE_COMPLETED,
	MIGRATE_FAILED,
	MIGRATE_CANCELLED,
};

struct migrate_params {
	char uri[128];          /* tcp:HOST:PORT or unix:PATH */
	unsigned downtime_ms;   /* the downtime limit (default 300) */
	uint64_t bandwidth_mbps; /* 0: no cap */
};

struct migrate_status {
	enum migrate_state state;
	char uri[128];
	uint64_t bytes_sent;
	uint64_t bytes_remaining;     /* the dirty pages left at the last count */
	uint64_t rounds;
	uint64_t dirty_rate;          /* bytes/s the guest dirtied in the last round */
	uint64_t bandwidth;           /* bytes/s measured */
	uint64_t expected_downtime_ms;
	uint64_t downtime_ms;         /* the final one (completed) */
	uint64_t total_ms;
	uint64_t pages, zero_pages;
	unsigned throttle_percent;    /* auto-converge: the vCPUs' share paused */
	bool incoming;                /* this is the target (--incoming) */
	uint64_t bytes_received;      /* the target: the stream's bytes */
	char error[256];              /* failed or cancelled: why */
};

static inline const char *migrate_state_name(enum migrate_state s)
{
	switch (s) {
	case MIGRATE_ACTIVE: return "active";
	case MIGRATE_COMPLETED: return "completed";
	case MIGRATE_FAILED: return "failed";
	case MIGRATE_CANCELLED: return "cancelled";
	default: return "none";
	}
}

/* ---- source ---- */
/* Connect to tcp:ADDR:PORT (numeric) or unix:PATH: the descriptor, or
 * -errno with one line in @err. */
int migrate_connect(const char *uri, char *err, size_t errlen);
/* Under the builder's filter, with the API thread: the migration thread. */
int migrate_thread_start(void);
/* The end of the process: stop it (after migrate_unbind). */
void migrate_thread_stop(void);
/* PUT /migrate on @vm: 0 (started), -EBUSY (one is active), -ESHUTDOWN. */
int migrate_start(struct vm *vm, const struct migrate_params *p);
/* DELETE /migrate: 0, or -EALREADY when none is active. */
int migrate_cancel(void);
void migrate_get(struct migrate_status *out);
bool migrate_active(void);
/* main.c, before the VM goes: cancel a migration of it and wait. */
void migrate_unbind(void);

/* ---- target ---- */
/* --incoming: listen (in the host's network namespace and file system,
 * before the sandbox); migrate_incoming listens itself if this was not
 * called.  0, or -EINVAL after printing one error line. */
int migrate_incoming_listen(const struct vmm_opts *o);
/* The sandbox's monitor, after the fork: close its copy of the listening
 * socket (the VM's process takes the connection). */
void migrate_incoming_forget(void);
/* --incoming: take the connection and receive the VM into @o
 * (snapshot_prepare_incoming).  0, or -EINVAL after printing one error
 * line. */
int migrate_incoming(struct vmm_opts *o);
/* When migrate_incoming left the rest of the stream to come while the VM
 * is built (snapshot_incoming_early): start the thread that receives it
 * (main.c, once the builder's filter is in).  0, or -EINVAL after one
 * error line. */
int migrate_incoming_receive(void);
/* The VM is built: wait for the whole stream and hand its state to
 * snapshot_incoming_state (nothing to do when migrate_incoming took it
 * all).  0, or -EINVAL after one error line (the guest must not run). */
int migrate_incoming_received(struct vmm_opts *o);
/* A target that gives up before migrate_incoming_received: stop the
 * receiving thread and drop the connection. */
void migrate_incoming_abort(void);
/* The VM is built and loaded: READY, then wait for GO.  0, or -EIO after
 * printing one error line (the guest must not run). */
int migrate_incoming_go(void);

#endif
