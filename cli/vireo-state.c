/*
 * vireo's VM-state verbs: save, restore, clone, snapshot-create-as,
 * snapshot-list, snapshot-revert, snapshot-delete (vireo(1)).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <vireo/util.h>

#include "vireo.h"
#include "vmdef.h"

/* @p made absolute from the current directory (vireod has its own). */
static const char *abs_path(const char *p, char *buf, size_t len)
{
	if (p[0] == '/')
		return p;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)) || (size_t)snprintf(buf, len, "%s/%s", cwd, p) >= len)
		return p;
	return buf;
}

static bool snap_arg_ok(const char *verb, const char *s)
{
	size_t n = strlen(s);
	bool ok = n > 0 && n <= 64 && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'));

	for (size_t i = 1; ok && i < n; i++) {
		char c = s[i];
		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '.' || c == '_' || c == '-';
	}
	if (!ok)
		fprintf(stderr, "vireo: %s: '%s' is not a valid snapshot name (a letter, then up to "
			"63 letters, digits, '.', '_' or '-')\n", verb, s);
	return ok;
}

/* ---- clone, with a progress line on a terminal (call_progress) ---- */

static int cmd_clone(int argc, char **argv, const struct vopts *vo)
{
	char path[128], poll[128];

	if (argc != 2) {
		fprintf(stderr, "vireo: clone: use clone SRC NEW [--linked|--full]\n");
		return EXIT_USAGE;
	}
	if (vo->linked && vo->full) {
		fprintf(stderr, "vireo: clone: --linked or --full, not both\n");
		return EXIT_USAGE;
	}
	for (int i = 0; i < 2; i++) {
		if (!vmdef_name_ok(argv[i])) {
			fprintf(stderr, "vireo: clone: '%s' is not a valid VM name\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(argv[1]));
	json_object_object_add(o, "mode", json_object_new_string(vo->full ? "full" : "linked"));
	char *body = json_body(o);
	snprintf(path, sizeof(path), "/vms/%s/clone", argv[0]);
	snprintf(poll, sizeof(poll), "/vms/%s/progress", argv[0]);
	char *resp = NULL;
	/* A linked clone is quick: no progress to show. */
	int rc = call_progress("POST", path, body, &resp, vo->full ? poll : NULL, "Cloning");
	free(body);
	if (rc)
		return rc;
	json_object *a = json_tokener_parse(resp), *disks;
	printf("VM %s cloned from %s (%s, uuid %s)\n", argv[1], argv[0], vo->full ? "full" : "linked",
	       a ? str_field(a, "uuid") : "?");
	if (a && json_object_object_get_ex(a, "disks", &disks))
		for (size_t i = 0; i < json_object_array_length(disks); i++)
			printf("  disk %s\n", json_object_get_string(json_object_array_get_idx(disks, i)));
	json_object_put(a);
	free(resp);
	return EXIT_OK;
}

static int snapshot_list(const char *name)
{
	char path[128], *r = NULL;
	int rc;

	snprintf(path, sizeof(path), "/vms/%s/snapshots", name);
	if ((rc = call("GET", path, NULL, &r)))
		return rc;
	json_object *a = json_tokener_parse(r);
	if (!json_object_is_type(a, json_type_array)) {
		fprintf(stderr, "vireo: snapshot-list: malformed answer from vireod\n");
		json_object_put(a);
		free(r);
		return EXIT_REFUSED;
	}
	if (json_out) {
		printf("%s\n", r);
	} else {
		printf(" %-24s %-20s %s\n", "Name", "Creation Time", "State");
		printf("------------------------------------------------------------------\n");
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *s = json_object_array_get_idx(a, i), *d, *h;
			char when[32] = "?";
			if (json_object_object_get_ex(s, "date", &d)) {
				time_t t = (time_t)json_object_get_int64(d);
				struct tm tm;
				if (localtime_r(&t, &tm))
					strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
			}
			bool has = json_object_object_get_ex(s, "has_state", &h) && json_object_get_boolean(h);
			printf(" %-24s %-20s %s\n", str_field(s, "name"), when,
			       has ? "disks and memory" : "disks only (no state files)");
		}
	}
	json_object_put(a);
	free(r);
	return EXIT_OK;
}

int cmd_state(const char *verb, int argc, char **argv, const struct vopts *vo)
{
	char path[256], abuf[PATH_MAX], *body, *r = NULL;
	const char *name;
	int rc;

	if (!strcmp(verb, "clone"))
		return cmd_clone(argc, argv, vo);
	if (!strcmp(verb, "restore")) {
		if (argc != 1) {
			fprintf(stderr, "vireo: restore: use restore DIR\n");
			return EXIT_USAGE;
		}
		json_object *o = json_object_new_object();
		json_object_object_add(o, "dir", json_object_new_string(abs_path(argv[0], abuf, sizeof(abuf))));
		body = json_body(o);
		rc = call("POST", "/restore", body, &r);
		free(body);
		if (rc)
			return rc;
		json_object *a = json_tokener_parse(r);
		printf("VM %s restored from %s\n", a ? str_field(a, "name") : "?", argv[0]);
		json_object_put(a);
		free(r);
		return EXIT_OK;
	}
	if (!name_arg(verb, argc, argv, &name))
		return EXIT_USAGE;
	if (!strcmp(verb, "snapshot-list")) {
		if (argc != 1) {
			fprintf(stderr, "vireo: snapshot-list: unexpected argument '%s'\n", argv[1]);
			return EXIT_USAGE;
		}
		return snapshot_list(name);
	}
	if (argc != 2) {
		fprintf(stderr, "vireo: %s: use %s NAME %s\n", verb, verb,
			!strcmp(verb, "save") ? "DIR" : "SNAP");
		return EXIT_USAGE;
	}
	if (!strcmp(verb, "save")) {
		const char *dir = abs_path(argv[1], abuf, sizeof(abuf));
		json_object *o = json_object_new_object();
		json_object_object_add(o, "dir", json_object_new_string(dir));
		body = json_body(o);
		snprintf(path, sizeof(path), "/vms/%s/save", name);
		char poll[128];
		snprintf(poll, sizeof(poll), "/vms/%s/progress", name);
		rc = call_progress("POST", path, body, NULL, poll, "Saving");
		free(body);
		if (!rc)
			printf("VM %s saved to %s\n", name, dir);
		return rc;
	}
	if (!snap_arg_ok(verb, argv[1]))
		return EXIT_USAGE;
	if (!strcmp(verb, "snapshot-create-as")) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(argv[1]));
		body = json_body(o);
		snprintf(path, sizeof(path), "/vms/%s/snapshots", name);
		rc = call("POST", path, body, NULL);
		free(body);
		if (!rc)
			printf("Snapshot %s of VM %s created\n", argv[1], name);
		return rc;
	}
	if (!strcmp(verb, "snapshot-revert")) {
		snprintf(path, sizeof(path), "/vms/%s/snapshots/%s/revert", name, argv[1]);
		if (!(rc = call("POST", path, NULL, NULL)))
			printf("VM %s reverted to snapshot %s\n", name, argv[1]);
		return rc;
	}
	/* snapshot-delete */
	snprintf(path, sizeof(path), "/vms/%s/snapshots/%s", name, argv[1]);
	if (!(rc = call("DELETE", path, NULL, NULL)))
		printf("Snapshot %s of VM %s deleted\n", argv[1], name);
	return rc;
}
