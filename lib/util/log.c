#include <stdio.h>
#include <stdarg.h>
#include <vireo/util.h>

static const char *vlog_prog = "vireo";
static enum vlog_level vlog_level = VLOG_INFO;
static FILE *vlog_out;   /* NULL: stderr */

void vlog_set_prog(const char *prog) { vlog_prog = prog; }
void vlog_set_level(enum vlog_level lvl) { vlog_level = lvl; }
enum vlog_level vlog_get_level(void) { return vlog_level; }
void vlog_set_file(FILE *f) { vlog_out = f; }
FILE *vlog_file(void) { return vlog_out ? vlog_out : stderr; }

void vlogv(enum vlog_level lvl, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char buf[1024];
	int n;

	if (lvl > vlog_level)
		return;
	n = snprintf(buf, sizeof(buf), "%s: %s: ", vlog_prog, names[lvl]);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(buf))
		vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	/* One write per message so concurrent threads do not interleave. */
	fprintf(vlog_file(), "%s\n", buf);
}

void vlog(enum vlog_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogv(lvl, fmt, ap);
	va_end(ap);
}
