/*
 * vireod's VM consoles: each running VM's COM1, fanned out to the clients
 * of `vireo console` and kept in a size-capped log.
 *
 * vireo-vmm runs with --console stdio, its stdin and stdout being two FIFOs
 * in the VM's run dir (console.in, console.out).  vireod holds both open
 * (read-write, non-blocking, so that neither end ever sees EOF while it
 * lives); a later vireod that adopts the VM opens them again.  While no
 * vireod runs, the guest's output is lost (vireo-vmm's writes fail with
 * EPIPE) and the VM runs on.  vireo-vmm's end is non-blocking, so a vireod
 * that does not read (stopped) costs output beyond the pipe's 1 MiB, never
 * a stalled guest.
 *
 * One thread (epoll) reads every VM's output, appends it to
 * RUN_DIR/NAME/console.log (renamed console.log.1 when it reaches
 * CONSOLE_LOG_ROTATE bytes: at most twice that on disk) and sends it to
 * the VM's clients.  A client is a socket (an upgraded HTTP connection,
 * server.c): at most one writer, whose bytes go to the guest, and any
 * number of readers.  Sends never block: a client more than
 * CONSOLE_CLIENT_BUF bytes behind is disconnected, so a vanished or
 * stalled client holds up neither the VM nor the other clients.
 */
#ifndef VIREO_DAEMON_CONSOLE_H
#define VIREO_DAEMON_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#define CONSOLE_LOG_ROTATE (1024 * 1024)
#define CONSOLE_CLIENT_BUF (256 * 1024)
#define CONSOLE_MAX_CLIENTS 16

/* How a client's socket is closed (MHD_upgrade_action for server.c). */
typedef void (*console_close_fn)(void *handle);

/* Start the console thread (vms_init).  0 or -errno. */
int console_init(void);
/* How clients' sockets are closed (server.c; default close(2)). */
void console_set_closer(console_close_fn close_fn);
/* Disconnect every client and stop the thread (the VMs run on). */
void console_shutdown(void);

/*
 * The console of VM @name whose run dir is @dir: @fresh makes the FIFOs
 * anew (before a start: then console_child_stdio() in the child), else
 * opens those a running vireo-vmm has (adoption; no FIFOs, no console).
 * 0 or -errno.
 */
int console_vm_open(const char *name, const char *dir, bool fresh);
/* In the child before exec (async-signal-safe): the FIFOs as stdin and
 * stdout.  0 or -1. */
int console_child_stdio(const char *dir);
/* The VM's process ended: take the output left, disconnect the clients,
 * close and remove the FIFOs. */
void console_vm_close(const char *name);

/*
 * Whether a client may attach to @name now: 0, or an HTTP status (404: no
 * console, the VM does not run; 409: @want_write and a writer is there)
 * with a message in @err.
 */
int console_check(const char *name, bool want_write, char *err, size_t errlen);
/*
 * Attach socket @fd (owned by the caller's @handle, closed through
 * close_fn) to @name's console, with @extra (@extra_len bytes the client
 * sent already: input when a writer).  @peer_fd: -1, or (TLS, where @fd
 * is libmicrohttpd's socket pair, which does not see the remote end go)
 * the client's TCP socket, of which a duplicate is watched for its
 * hang-up only: the client is then dropped as when @fd ends.  A writer asked for while another
 * has come meanwhile attaches read-only, told so in a line on the console.
 * Returns 0, or -1 when there is no console or CONSOLE_MAX_CLIENTS are
 * there already (then the caller closes).
 */
int console_attach(const char *name, int fd, void *handle, int peer_fd, bool want_write,
		   const char *extra, size_t extra_len);

/* The clients attached to @name: readers (writer included) and whether
 * a writer is there. */
unsigned console_clients(const char *name, bool *writer);

#endif
