/* vireo's pieces shared by its source files (vireo.c, vireo-console.c,
 * vireo-state.c). */
#ifndef VIREO_CLI_VIREO_H
#define VIREO_CLI_VIREO_H

#include <stdbool.h>

#include <json-c/json.h>

#include "connect.h"

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

/* Where vireod is (--connect), and --json. */
extern struct vconn_target vireod_at;
extern bool json_out;

/* Options after the verb: --all, --json, --force, --timeout S... */
struct vopts {
	bool all, force, log, disable, readonly, linked, full, names;
	long timeout;
	const char *format, *backing, *pool, *target;
};

/* One request; prints vireod's error and returns the exit status, or
 * EXIT_OK with the body in *resp (may be NULL when not wanted). */
int call(const char *method, const char *path, const char *body, char **resp);
bool name_arg(const char *verb, int argc, char **argv, const char **name);
const char *str_field(json_object *o, const char *key);
/* @o as a compact string (malloc'd); puts @o. */
char *json_body(json_object *o);

/* vireo-console.c: attach to NAME's console. */
int cmd_console(const char *name, bool readonly);
/* vireo-state.c: save, restore, clone and the snapshot verbs. */
int cmd_state(const char *verb, int argc, char **argv, const struct vopts *vo);
int cmd_migrate(int argc, char **argv);
/* vireo-complete.c: the options a verb takes after it (space-separated,
 * no dashes; "" for an unknown verb), and `vireo __complete ...`: the
 * questions answered without vireod (-1: not one of them), and the names
 * asked of vireod. */
const char *vireo_verb_opts(const char *verb);
int vireo_complete_static(int argc, char **argv);
int vireo_complete_names(int argc, char **argv);

#endif
