/*
 * vireod's VM-state operations: reboot, save and restore, internal qcow2
 * snapshots (create, list, revert, delete) and clone (linked: qcow2
 * overlays on the source's disks; full: copies), through vireo-vmm's
 * control API and the image library.  See vireod(8) and
 * docs/vireod-api.yaml.
 */
#ifndef VIREO_DAEMON_VMSTATE_H
#define VIREO_DAEMON_VMSTATE_H

#include <stddef.h>

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

/*
 * Run @op on VM @name (NULL for a restore) with @arg (the snapshot, or
 * NULL) and the request body.  Returns the HTTP status with a malloc'd
 * JSON answer in *resp (an {"error"} object on failure; NULL for 204).
 */
int vmstate_api(enum vmstate_op op, const char *name, const char *arg, const char *body,
		size_t body_len, char **resp);

#endif
