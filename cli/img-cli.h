/* vireo-img: shared helpers between the verb files. */
#ifndef VIREO_IMG_CLI_H
#define VIREO_IMG_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <vireo/img.h>
#include <vireo/util.h>

/* --probe-backing (any verb): probe the format of backing files that do
 * not name one, instead of refusing them. */
extern bool cli_probe_backing;
/* --confine-backing (any verb): backing files must resolve inside the
 * directory of the image named on the command line. */
extern bool cli_confine_backing;
/* -U / --force-share of the verb: read-only opens take no lock. */
extern bool cli_force_share;
/* What to print after a failed open (r from vimg_open). */
void cli_open_failed(const char *path, int r, const char *err);

/* Open an image or print why not; returns NULL on failure. */
struct vimg *cli_open(const char *path, const char *fmt, bool readonly,
		      bool no_backing);
/* Same, with cache=unsafe semantics (no syncs) when unsafe. */
struct vimg *cli_open_cache(const char *path, const char *fmt, bool readonly,
			    bool no_backing, bool unsafe);
void cli_progress(bool on, uint64_t done, uint64_t total);
char *cli_human_size(uint64_t v, char *buf, size_t len);
bool cli_is_zero(const void *buf, size_t len);

/* The whole command line (argv[0] is the program): what main() runs.
 * Returns the exit status; it never exits and can be called again (each
 * call starts with the defaults).  Output goes to stdout, messages to
 * vlog_file(). */
int vireo_img_main(int argc, char **argv);

int cmd_convert(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_rebase(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* Parse "-o" create options into o (also used by convert). */
int cli_parse_create_opts(const char *s, struct vimg_create_opts *o);

#endif
