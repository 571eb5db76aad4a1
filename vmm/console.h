/*
 * The console: the one module between the guest's consoles and the user.
 *
 * The user's side is stdio (a terminal switched to raw mode, restored on
 * every exit path), a file, or nothing.  The guest's side is COM1 (a 16550
 * at 0x3f8, IRQ 4, dev/ns16550.c) and, with --virtio-console, hvc0.  Output
 * of both goes to the user; input goes to hvc0 when it exists, else to
 * COM1.  Ctrl-A x on a terminal stops the VM, Ctrl-A Ctrl-A sends Ctrl-A.
 *
 * COM1's transmit register may be a coalesced KVM zone (coalesce.h): the
 * guest's writes then queue in a ring page, replayed in order before every
 * exit a vCPU handles (console_exit_begin) and from a timer on the event
 * loop (fast while COM1 is in use, slow otherwise).  Output bytes are held
 * and written out in one write(2) per exit (console_exit_end).
 *
 * Output into a regular file (--console file:PATH, or stdout redirected
 * to one) stops at CONSOLE_FILE_MAX bytes: what comes after is dropped and
 * counted, with one warning, so a guest cannot fill the host's disk.
 *
 * Threads: vCPUs reach COM1 through the bus and call the exit hooks; the
 * event loop reads input and runs the replay timer; output is serialized by
 * the console's output lock, the 16550 by its own lock.
 */
#ifndef VIREO_VMM_CONSOLE_H
#define VIREO_VMM_CONSOLE_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "coalesce.h"
#include "dev/ns16550.h"
#include "options.h"

struct bus;
struct evloop;
struct irq_ctl;
struct runstate;
struct virtio_dev;
struct virtio_console_backend;

#define CONSOLE_FILE_MAX (256ull << 20)

struct console_env {
	struct bus *pio;        /* COM1 registers here */
	struct irq_ctl *irq;    /* COM1's interrupt line */
	struct evloop *loop;    /* input, wake-ups, the replay timer */
	struct runstate *rs;    /* Ctrl-A x stops the VM */
};

struct console {
	bool inited;
	struct console_env env;
	/* The user's side. */
	int in_fd;             /* -1: no input */
	int out_fd;            /* -1: discard */
	bool owns_out;
	bool raw;              /* terminal switched to raw mode */
	bool escape;           /* saw Ctrl-A */
	bool in_paused;        /* the guest has no room: input not polled */
	bool in_watched;
	struct termios saved;
	pthread_mutex_t out_lock;
	_Atomic size_t out_len;
	uint8_t out_buf[4096];
	uint64_t out_max;              /* 0: no limit (not a regular file) */
	uint64_t out_written, out_dropped;
	/* The guest's side. */
	struct ns16550 uart;
	bool uart_on_bus;
	struct virtio_dev *hvc;        /* input goes here when set */
	int wake_efd;                  /* the guest made room for input */
	/* Coalesced COM1 transmit writes. */
	struct coalesce coal;
	int coal_tfd;                  /* replay timer (event loop) */
	_Atomic bool coal_fast;        /* timer at the fast rate */
	_Atomic bool coal_busy;        /* COM1 used since the last tick */
};

/* COM1 on env->pio, nothing on the user's side yet.  Returns 0 or -errno;
 * console_destroy() is needed either way. */
int console_init(struct console *c, const struct console_env *env);
void console_destroy(struct console *c);

/* The user's side, from --console (prints one error line on failure). */
int console_open(struct console *c, const struct vmm_opts *o);
/* Restore the terminal and close a console file (idempotent). */
void console_close(struct console *c);
/* Restore the terminal only (idempotent). */
void console_restore(struct console *c);

/* hvc0: where its output goes, and the device that takes input. */
void console_hvc_backend(struct console *c, struct virtio_console_backend *be);
void console_set_hvc(struct console *c, struct virtio_dev *hvc);

/* Event loop, once the vCPUs run: watch input, set up coalesced COM1
 * writes per mode on ring (entries long; NULL when KVM has none). */
void console_start(struct console *c, enum vmm_coalesce mode, int vm_fd,
		   struct kvm_coalesced_mmio_ring *ring, uint32_t entries);
/* After the vCPUs stopped: replay what is left, stop watching. */
void console_stop(struct console *c);

/* struct vcpu_env hooks (opaque = the console). */
void console_exit_begin(void *opaque);
void console_exit_end(void *opaque);

/* Write now (after anything held).  Any thread. */
void console_write(struct console *c, const uint8_t *buf, size_t len);
/* Hold one byte until console_flush() or a full buffer. */
void console_put(struct console *c, uint8_t byte);
void console_flush(struct console *c);

/* Output bytes dropped at CONSOLE_FILE_MAX. */
uint64_t console_dropped(struct console *c);

/* One line of COM1's state (SIGQUIT). */
void console_dump(struct console *c);

#endif
