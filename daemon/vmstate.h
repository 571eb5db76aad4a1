/*
 * vireod's VM-state operations: reboot, save and restore, internal qcow2
 * snapshots (create, list, revert, delete) and clone (linked: qcow2
 * overlays on the source's disks; full: copies), through vireo-vmm's
 * control API and the image library.  See vireod(8) and
 * docs/vireod-api.yaml.
 */
#ifndef VIREO_DAEMON_VMSTATE_H
#define VIREO_DAEMON_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>

#include "vmdef.h"

enum vmstate_op {
	VMSTATE_REBOOT,         /* POST /vms/{name}/reboot */
	VMSTATE_SAVE,           /* POST /vms/{name}/save {"dir"} */
	VMSTATE_RESTORE,        /* POST /restore {"dir"} */
	VMSTATE_CLONE,          /* POST /vms/{name}/clone {"name", "mode"} */
	VMSTATE_SNAP_LIST,      /* GET /vms/{name}/snapshots */
	VMSTATE_SNAP_CREATE,    /* POST /vms/{name}/snapshots {"name"} */
	VMSTATE_SNAP_REVERT,    /* POST /vms/{name}/snapshots/{snapshot}/revert */
	VMSTATE_SNAP_DELETE,    /* DELETE /vms/{name}/snapshots/{snapshot} */
	VMSTATE_PROGRESS,       /* GET /vms/{name}/progress */
};

/* The file a save's directory gets: which VM it is ({"vm", "uuid"}). */
#define VMSTATE_SAVE_TAG "vireod.json"
#define VMSTATE_SNAP_NAME_MAX 64
#define VMSTATE_FIELD_MAX VMDEF_PATH_MAX

/* ---- pure (vmstate-parse.c; fuzz/fuzz_vmstate.c) ---- */

/*
 * A request body: a JSON object whose fields are all strings (1 to
 * VMSTATE_FIELD_MAX bytes, no NUL) named among @keys (NULL-terminated);
 * each goes to @vals[its index], the others are "".  0, or -1 with a
 * message in @err.
 */
int vmstate_body_fields(const char *body, size_t len, const char *const *keys,
			char vals[][VMSTATE_FIELD_MAX + 1], char *err, size_t errlen);
/* A save's tag file (at most 4 KiB): 0 with a valid VM name and uuid, or -1. */
int vmstate_parse_tag(const char *text, size_t len, char name[VMDEF_NAME_MAX + 1], char uuid[37]);
/* An absolute path without "." or ".." components or control bytes. */
bool vmstate_clean_abs_path(const char *p);
/* vireo-vmm's snapshot names: a letter, then up to 63 of [A-Za-z0-9._-]. */
bool vmstate_snap_name_ok(const char *s);
/*
 * Rewrite vireo-vmm's argv (vmdef_vmm_argv(): malloc'd strings, NULL at
 * the end, freed by vmdef_argv_free) in place: --console's value becomes
 * "stdio" (vireod's FIFOs); with @restore_dir, the boot-only options
 * (--kernel, --initrd, --cmdline, --cpus, --memory, --disk, --net, --rng,
 * --balloon) go and "--restore DIR" comes last.  0, -EINVAL (no --kernel
 * or other option with a value to take the place of), -ENOMEM.
 */
int vm_argv_console_restore(char **argv, const char *restore_dir);

/* ---- vireod (vmstate.c) ---- */

/*
 * Run @op on VM @name (NULL for a restore) with @arg (the snapshot, or
 * NULL) and the request body.  Returns the HTTP status with a malloc'd
 * JSON answer in *resp (an {"error"} object on failure; NULL for 204).
 */
int vmstate_api(enum vmstate_op op, const char *name, const char *arg, const char *body,
		size_t body_len, char **resp);

#endif
