/* The console behind COM1: stdio (terminal in raw mode, restored on every
 * exit path), a file, or nothing.  Input is read by the event loop. */
#ifndef VIREO_VMM_CONSOLE_H
#define VIREO_VMM_CONSOLE_H

#include <pthread.h>
#include <stdatomic.h>
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
	/* Output bytes held until console_flush() (any thread). */
	pthread_mutex_t out_lock;
	_Atomic size_t out_len;
	uint8_t out_buf[4096];
	bool out_lock_ok;
};

int console_open(struct console *c, const struct vmm_opts *o);
void console_close(struct console *c);
/* Write now (after anything held).  Any thread. */
void console_write(struct console *c, const uint8_t *buf, size_t len);
/* Hold one byte of output until console_flush() or a full buffer: lets a
 * batch of replayed UART writes go out in one write(2). */
void console_put(struct console *c, uint8_t byte);
/* Write what console_put() held; cheap when nothing is held. */
void console_flush(struct console *c);
/* Restore the terminal (idempotent, async-signal-safe). */
void console_restore(struct console *c);

#endif
