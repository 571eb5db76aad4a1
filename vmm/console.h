/* The console behind COM1: stdio (terminal in raw mode, restored on every
 * exit path), a file, or nothing.  Input is read by the event loop. */
#ifndef VIREO_VMM_CONSOLE_H
#define VIREO_VMM_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "options.h"

struct console {
	int in_fd;             /* -1: no input */
	int out_fd;            /* -1: discard */
	bool owns_out;
	bool raw;              /* terminal switched to raw mode */
	bool escape;           /* saw Ctrl-A */
	bool in_paused;
	struct termios saved;
};

int console_open(struct console *c, const struct vmm_opts *o);
void console_close(struct console *c);
void console_write(struct console *c, const uint8_t *buf, size_t len);
/* Restore the terminal (idempotent, async-signal-safe). */
void console_restore(struct console *c);

#endif
