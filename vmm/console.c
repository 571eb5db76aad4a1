#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vireo/util.h>

#include "console.h"

/* The terminal state to put back at exit, also from atexit(): the one
 * piece of process-wide state, because the terminal is process-wide. */
static struct console *console_active;

static void console_atexit(void)
{
	if (console_active)
		console_restore(console_active);
}

int console_open(struct console *c, const struct vmm_opts *o)
{
	memset(c, 0, sizeof(*c));
	c->in_fd = c->out_fd = -1;
	switch (o->console) {
	case VMM_CONSOLE_NONE:
		return 0;
	case VMM_CONSOLE_FILE:
		c->out_fd = open(o->console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->out_fd < 0) {
			int err = -errno;
			verr("cannot open console file '%s': %s", o->console_path, strerror(errno));
			return err;
		}
		c->owns_out = true;
		return 0;
	case VMM_CONSOLE_STDIO:
		c->out_fd = STDOUT_FILENO;
		c->in_fd = STDIN_FILENO;
		if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &c->saved) == 0) {
			struct termios t = c->saved;
			cfmakeraw(&t);
			t.c_oflag = c->saved.c_oflag;   /* keep output processing */
			console_active = c;
			atexit(console_atexit);
			if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0)
				c->raw = true;
		}
		return 0;
	}
	return -EINVAL;
}

void console_restore(struct console *c)
{
	if (c->raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &c->saved);
		c->raw = false;
	}
}

void console_close(struct console *c)
{
	console_restore(c);
	if (console_active == c)
		console_active = NULL;
	if (c->owns_out && c->out_fd >= 0)
		close(c->out_fd);
	c->out_fd = -1;
}

void console_write(struct console *c, const uint8_t *buf, size_t len)
{
	if (c->out_fd >= 0)
		vio_write_full(c->out_fd, buf, len);
}
