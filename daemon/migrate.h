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

/* HTTP status, with a malloc'd JSON answer in *resp (NULL for 204). */
int migrate_incoming_api(const char *body, size_t len, char **resp);
int migrate_incoming_abort_api(const char *name, char **resp);
int migrate_out_api(const char *name, const char *body, size_t len, char **resp);

#endif
