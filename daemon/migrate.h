/*
 * vireod's live migration between two vireods (vireo migrate --live):
 * the target's POST /migrations/incoming (define the VM, start vireo-vmm
 * --incoming, answer the URI it listens on) and DELETE
 * /vms/{name}/incoming (give up: the process and the definition go), the
 * source's POST /vms/{name}/migrate (PUT /migrate to its vireo-vmm,
 * follow GET /migrate until it exits 0 "migrated": the VM is shut off
 * here).  See vireod(8) and docs/vireod-api.yaml.
 */
#ifndef VIREO_DAEMON_MIGRATE_H
#define VIREO_DAEMON_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "vmdef.h"

#define MIGRATE_URI_MAX    127
#define MIGRATE_LISTEN_MAX 15   /* a dotted IPv4 address */

/* ---- pure (migrate-parse.c; fuzz/fuzz_vireod_migrate.c) ---- */

/*
 * POST /migrations/incoming's body: {"definition": OBJECT (vmdef_parse(),
 * with a uuid), "listen": a numeric IPv4 address (default 127.0.0.1)}.
 * 0, or an HTTP status (400, 500) with a message in @err.
 */
int migrate_parse_incoming(const char *body, size_t len, struct vmdef *def,
			   char listen[MIGRATE_LISTEN_MAX + 1], char *err, size_t errlen);
/*
 * POST /vms/{name}/migrate's body: {"uri": "tcp:..." or "unix:..." (at
 * most MIGRATE_URI_MAX bytes, no control bytes), "downtime_ms": 1 to
 * 60000, "bandwidth_mbps": 1 to 1000000} (0 when not given).  0, or an
 * HTTP status with a message in @err.
 */
int migrate_parse_out(const char *body, size_t len, char uri[MIGRATE_URI_MAX + 1],
		      int64_t *downtime_ms, int64_t *bandwidth_mbps, char *err, size_t errlen);

/* ---- vireod (migrate.c) ---- */

/* HTTP status, with a malloc'd JSON answer in *resp (NULL for 204). */
int migrate_incoming_api(const char *body, size_t len, char **resp);
int migrate_incoming_abort_api(const char *name, char **resp);
int migrate_out_api(const char *name, const char *body, size_t len, char **resp);
/* GET /vms/{name}/migrate: the last GET /migrate of its vireo-vmm while
 * POST /vms/{name}/migrate runs (200), else 404. */
int migrate_status_api(const char *name, char **resp);

#endif
