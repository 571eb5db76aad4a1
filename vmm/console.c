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
	pthread_mutex_init(&c->out_lock, NULL);
	c->out_lock_ok = true;
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
	console_flush(c);
	console_restore(c);
	if (console_active == c)
		console_active = NULL;
	if (c->owns_out && c->out_fd >= 0)
		close(c->out_fd);
	c->out_fd = -1;
	if (c->out_lock_ok) {
		pthread_mutex_destroy(&c->out_lock);
		c->out_lock_ok = false;
	}
}

/* Under out_lock. */
static void console_flush_locked(struct console *c)
{
	size_t n = atomic_load(&c->out_len);

	if (n && c->out_fd >= 0)
		vio_write_full(c->out_fd, c->out_buf, n);
	atomic_store(&c->out_len, 0);
}

void console_write(struct console *c, const uint8_t *buf, size_t len)
{
	if (c->out_fd < 0)
		return;
	pthread_mutex_lock(&c->out_lock);
	console_flush_locked(c);
	vio_write_full(c->out_fd, buf, len);
	pthread_mutex_unlock(&c->out_lock);
}

void console_put(struct console *c, uint8_t byte)
{
	size_t n;

	if (c->out_fd < 0)
		return;
	pthread_mutex_lock(&c->out_lock);
	n = atomic_load(&c->out_len);
	if (n == sizeof(c->out_buf)) {
		console_flush_locked(c);
		n = 0;
	}
	c->out_buf[n] = byte;
	atomic_store(&c->out_len, n + 1);
	pthread_mutex_unlock(&c->out_lock);
}

void console_flush(struct console *c)
{
	if (!atomic_load(&c->out_len))
		return;
	pthread_mutex_lock(&c->out_lock);
	console_flush_locked(c);
	pthread_mutex_unlock(&c->out_lock);
}
