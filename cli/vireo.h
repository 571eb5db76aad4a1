/* vireo's pieces shared by its source files (vireo.c, vireo-console.c,
 * vireo-state.c). */
#ifndef VIREO_CLI_VIREO_H
#define VIREO_CLI_VIREO_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "connect.h"

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

/* Where vireod is (--connect), and --json. */
extern struct vconn_target vireod_at;
extern bool json_out;

/* Options after the verb: --all, --json, --force, --timeout S... */
struct vopts {
	bool all, force, log, disable, readonly, linked, full, names, shrink;
	long timeout;
	const char *format, *backing, *pool, *target;
};

/* One request; prints vireod's error and returns the exit status, or
 * EXIT_OK with the body in *resp (may be NULL when not wanted). */
int call(const char *method, const char *path, const char *body, char **resp);
/* call() with a timeout of its own (a long operation). */
int call_timeout(const char *method, const char *path, const char *body, int timeout_ms,
		 char **resp);
/* A pool's or volume's name (pool.h's rule); prints why not. */
bool pool_arg_ok(const char *verb, const char *what, const char *v);
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
/* vireo-vol.c: vol-clone, vol-resize, vol-upload, vol-download. */
int cmd_vol(const char *verb, int argc, char **argv, const struct vopts *vo);

/* The progress line of a long operation ("LABEL [###   ]  42% (N/M MiB)"),
 * for a terminal only: callers check isatty(stdout). */
void progress_show(const char *label, uint64_t done, uint64_t total);
void progress_clear(void);
/* call() that, when stdout is a terminal, polls @poll_path ({"done",
 * "total"}) meanwhile and shows the progress line. */
int call_progress(const char *method, const char *path, const char *body, char **resp,
		  const char *poll_path, const char *label);

#endif
