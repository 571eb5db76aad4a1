#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <vireo/util.h>

#include "bus.h"
#include "console.h"
#include "hold.h"
#include "irq.h"
#include "loop.h"
#include "runstate.h"
#include "virtio/console.h"

/* The terminal state to put back at exit, also from atexit(): the one
 * piece of process-wide state, because the terminal is process-wide. */
static struct console *console_active;

static void console_atexit(void)
{
	if (console_active)
		console_restore(console_active);
}

/* ---- the user's side: output ------------------------------------------------ */

/* Under out_lock: write, up to the file's limit. */
static void console_emit(struct console *c, const uint8_t *buf, size_t n)
{
	size_t room = n;

	if (c->out_fd < 0 || n == 0)
		return;
	if (c->out_max) {
		room = c->out_written >= c->out_max ? 0 :
		       (size_t)VIREO_MIN((uint64_t)n, c->out_max - c->out_written);
		if (room < n) {
			if (!c->out_dropped)
				vwarn("console: the output file reached %llu bytes; further "
				      "guest output is dropped",
				      (unsigned long long)c->out_max);
			c->out_dropped += n - room;
		}
	}
	if (room)
		vio_write_full(c->out_fd, buf, room);
	c->out_written += room;
}

/* Under out_lock. */
static void console_flush_locked(struct console *c)
{
	console_emit(c, c->out_buf, atomic_load(&c->out_len));
	atomic_store(&c->out_len, 0);
}

uint64_t console_dropped(struct console *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->out_lock);
	n = c->out_dropped;
	pthread_mutex_unlock(&c->out_lock);
	return n;
}

void console_write(struct console *c, const uint8_t *buf, size_t len)
{
	if (c->out_fd < 0)
		return;
	pthread_mutex_lock(&c->out_lock);
	console_flush_locked(c);
	console_emit(c, buf, len);
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

/* Cap output into a regular file. */
static void console_set_limit(struct console *c)
{
	struct stat st;

	if (c->out_fd >= 0 && fstat(c->out_fd, &st) == 0 && S_ISREG(st.st_mode))
		c->out_max = CONSOLE_FILE_MAX;
}

static int console_open_user(struct console *c, const struct vmm_opts *o)
{
	switch (o->console) {
	case VMM_CONSOLE_NONE:
		return 0;
	case VMM_CONSOLE_FILE:
		c->out_fd = hold_open_file(o->console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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

int console_open(struct console *c, const struct vmm_opts *o)
{
	int ret = console_open_user(c, o);

	if (!ret)
		console_set_limit(c);
	return ret;
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
	c->owns_out = false;
	c->out_fd = c->in_fd = -1;
}

/* ---- the guest's side: COM1 and hvc0 --------------------------------------------- */

static void console_wake(struct console *c)
{
	uint64_t one = 1;

	if (write(c->wake_efd, &one, sizeof(one)) < 0) {
		/* counter saturation is harmless */
	}
}

static void console_uart_tx(void *opaque, uint8_t byte)
{
	console_put(opaque, byte);
}

static void console_uart_irq(void *opaque, int level)
{
	struct console *c = opaque;

	irq_line(c->env.irq, NS16550_COM1_IRQ, level);
}

static void console_uart_rx_space(void *opaque)
{
	console_wake(opaque);
}

static const struct ns16550_ops console_uart_ops = {
	.tx = console_uart_tx, .irq = console_uart_irq, .rx_space = console_uart_rx_space,
};

static void console_hvc_write(void *opaque, const void *buf, size_t len)
{
	console_write(opaque, buf, len);
}

static void console_hvc_room(void *opaque)
{
	console_wake(opaque);   /* the loop resumes reading input */
}

void console_hvc_backend(struct console *c, struct virtio_console_backend *be)
{
	*be = (struct virtio_console_backend){
		.write = console_hvc_write, .rx_room = console_hvc_room, .opaque = c,
	};
}

void console_set_hvc(struct console *c, struct virtio_dev *hvc)
{
	c->hvc = hvc;
}

/* ---- coalesced COM1 transmit writes ------------------------------------------ */

/* The replay timer ticks fast while the guest uses COM1 (its last
 * characters come out within CONSOLE_COAL_FAST_NS of being written) and
 * slowly otherwise, for a guest that writes without ever reading the UART. */
#define CONSOLE_COAL_FAST_NS 1000000ull        /* 1 ms */
#define CONSOLE_COAL_SLOW_NS 1000000000ull     /* 1 s */

static void console_coal_arm(struct console *c, uint64_t ns)
{
	struct itimerspec its = {
		.it_interval = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) },
		.it_value = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) },
	};

	if (c->coal_tfd >= 0 && timerfd_settime(c->coal_tfd, 0, &its, NULL) < 0)
		vdebug("coalesced writes: timerfd_settime: %s", strerror(errno));
}

/* COM1 is in use: make sure the timer ticks fast (any thread). */
static void console_coal_busy(struct console *c)
{
	if (c->coal_tfd < 0)
		return;
	atomic_store(&c->coal_busy, true);
	if (!atomic_exchange(&c->coal_fast, true))
		console_coal_arm(c, CONSOLE_COAL_FAST_NS);
}

/* Replay of one queued write: only COM1's zone is registered, and the
 * ring checks every entry against it. */
static void console_coal_replay(void *opaque, bool pio, uint64_t addr,
				const uint8_t *data, unsigned len)
{
	struct console *c = opaque;

	uint8_t buf[8];

	if (pio && addr >= NS16550_COM1_BASE && addr - NS16550_COM1_BASE < NS16550_NREGS &&
	    len <= sizeof(buf)) {
		memcpy(buf, data, len);
		ns16550_bus_io(&c->uart, addr - NS16550_COM1_BASE, buf, len, true);
	}
}

void console_exit_begin(void *opaque)
{
	struct console *c = opaque;

	if (coalesce_pending(&c->coal)) {
		if (coalesce_drain(&c->coal))
			console_coal_busy(c);
		console_flush(c);
	}
}

void console_exit_end(void *opaque)
{
	console_flush(opaque);
}

static void console_coal_tick(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint64_t ticks;
	unsigned n;

	if (read(c->coal_tfd, &ticks, sizeof(ticks)) < 0) {
		/* not expired yet */
	}
	n = coalesce_drain(&c->coal);
	console_flush(c);
	if (n || atomic_exchange(&c->coal_busy, false)) {
		if (!atomic_exchange(&c->coal_fast, true))
			console_coal_arm(c, CONSOLE_COAL_FAST_NS);
		return;
	}
	if (!atomic_load(&c->coal_fast))
		return;
	/* Quiet for a whole tick: slow down, unless COM1 was used meanwhile
	 * (a vCPU saw coal_fast still set and did not re-arm). */
	console_coal_arm(c, CONSOLE_COAL_SLOW_NS);
	atomic_store(&c->coal_fast, false);
	if (atomic_load(&c->coal_busy) && !atomic_exchange(&c->coal_fast, true))
		console_coal_arm(c, CONSOLE_COAL_FAST_NS);
}

/* Whether this process runs on QEMU's TCG emulator (hypervisor CPUID leaf
 * signature "TCGTCGTCGTCG"), as in the lab's outer VM.  There, guests
 * crashed now and then with KVM completing COM1 writes itself (something
 * in the emulated nested SVM), so --serial-coalesce auto leaves it off. */
static bool console_host_is_tcg(void)
{
	unsigned a, b, c, d;
	char sig[13];

	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 31)))
		return false;
	__cpuid(0x40000000, a, b, c, d);
	memcpy(sig, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	sig[12] = 0;
	return !strcmp(sig, "TCGTCGTCGTCG");
}

/* Have KVM queue writes to COM1's transmit register (port 0x3f8, one
 * byte: with DLAB set the same port is the divisor latch, which the replay
 * handles in order too).  On the event loop once the vCPUs run: registering
 * an I/O range waits for the VM's SRCU grace period, so it is kept off the
 * path to the first KVM_RUN. */
static void console_coal_setup(struct console *c, enum vmm_coalesce mode, int vm_fd,
			       struct kvm_coalesced_mmio_ring *ring, uint32_t entries)
{
	int ret;

	if (mode == VMM_COALESCE_OFF) {
		vdebug("coalesced port writes: off (--serial-coalesce off)");
		return;
	}
	if (mode == VMM_COALESCE_AUTO && console_host_is_tcg()) {
		vdebug("coalesced port writes: off (--serial-coalesce auto on QEMU's TCG)");
		return;
	}
	if (!ring) {
		vdebug("coalesced port writes: not offered by this KVM; COM1 exits for every write");
		return;
	}
	c->coal_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (c->coal_tfd < 0 ||
	    evloop_add(c->env.loop, c->coal_tfd, EPOLLIN, console_coal_tick, c) < 0) {
		vdebug("coalesced port writes: no timer (%s); COM1 exits for every write",
		       strerror(errno));
		if (c->coal_tfd >= 0)
			close(c->coal_tfd);
		c->coal_tfd = -1;
		return;
	}
	coalesce_start(&c->coal, ring, entries);
	ret = coalesce_add_zone(&c->coal, vm_fd, NS16550_COM1_BASE, 1, true);
	if (ret) {
		vdebug("coalesced port writes: KVM refused the zone (%s)", strerror(-ret));
		coalesce_stop(&c->coal);
	}
	console_coal_arm(c, CONSOLE_COAL_SLOW_NS);
	vdebug("coalesced port writes: COM1 transmit queued (%u-entry ring)", c->coal.max);
}

/* ---- input ---------------------------------------------------------------------- */

/* Ctrl-A handling on a raw terminal; returns the bytes left in buf, or -1
 * when the user asked to quit. */
static ssize_t console_unescape(struct console *c, uint8_t *buf, ssize_t n)
{
	size_t o = 0;

	for (ssize_t i = 0; i < n; i++) {
		if (c->escape) {
			c->escape = false;
			if (buf[i] == 'x')
				return -1;
			if (buf[i] != 1)
				continue;
		} else if (buf[i] == 1) {
			c->escape = true;
			continue;
		}
		buf[o++] = buf[i];
	}
	return (ssize_t)o;
}

static void console_input(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint8_t buf[NS16550_RX_FIFO];
	size_t space = c->hvc ? virtio_console_input_room(c->hvc) : ns16550_rx_space(&c->uart);
	ssize_t n;

	if (space == 0) {
		evloop_mod(c->env.loop, c->in_fd, 0);
		c->in_paused = true;
		return;
	}
	n = read(c->in_fd, buf, VIREO_MIN(space, sizeof(buf)));
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			evloop_del(c->env.loop, c->in_fd);   /* EOF: no more input */
			c->in_watched = false;
		}
		return;
	}
	if (c->raw && (n = console_unescape(c, buf, n)) < 0) {
		runstate_request_stop(c->env.rs, VM_STOP_SIGNAL, SIGINT);
		return;
	}
	if (c->hvc)
		virtio_console_input(c->hvc, buf, (size_t)n);
	else
		ns16550_rx_push(&c->uart, buf, (size_t)n);
}

static void console_on_wake(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint64_t v;

	if (read(c->wake_efd, &v, sizeof(v)) < 0) {
		/* nothing */
	}
	if (c->in_paused && c->in_watched) {
		c->in_paused = false;
		evloop_mod(c->env.loop, c->in_fd, EPOLLIN);
	}
}

/* ---- life cycle ----------------------------------------------------------------- */

static void console_com1_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
			    bool is_write)
{
	struct console *c = opaque;

	ns16550_bus_io(&c->uart, offset, data, len, is_write);
	console_coal_busy(c);
}

int console_init(struct console *c, const struct console_env *env)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->inited = true;
	c->env = *env;
	c->in_fd = c->out_fd = c->coal_tfd = -1;
	pthread_mutex_init(&c->out_lock, NULL);
	ns16550_init(&c->uart, &console_uart_ops, c);
	coalesce_init(&c->coal, console_coal_replay, c);
	c->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_efd < 0)
		return -errno;
	ret = bus_add(env->pio, NS16550_COM1_BASE, NS16550_NREGS, console_com1_io, c, "com1");
	c->uart_on_bus = ret == 0;
	return ret;
}

void console_start(struct console *c, enum vmm_coalesce mode, int vm_fd,
		   struct kvm_coalesced_mmio_ring *ring, uint32_t entries)
{
	if (evloop_add(c->env.loop, c->wake_efd, EPOLLIN, console_on_wake, c) < 0)
		vdebug("console: no wake-up event: %s", strerror(errno));
	if (c->in_fd >= 0) {
		if (evloop_add(c->env.loop, c->in_fd, EPOLLIN, console_input, c) < 0)
			vdebug("console input not pollable; input disabled");
		else
			c->in_watched = true;
	}
	console_coal_setup(c, mode, vm_fd, ring, entries);
}

void console_stop(struct console *c)
{
	console_exit_begin(c);     /* what the guest wrote last */
	console_flush(c);
	if (c->out_dropped)
		vwarn("console: %llu bytes of guest output dropped at the file's limit",
		      (unsigned long long)c->out_dropped);
	if (c->coal.replayed || c->coal.dropped || c->coal.broken)
		vdebug("coalesced port writes: %llu replayed, %llu dropped%s",
		       (unsigned long long)c->coal.replayed,
		       (unsigned long long)c->coal.dropped,
		       c->coal.broken ? ", ring indices out of range (ring given up)" : "");
	coalesce_stop(&c->coal);
	if (c->coal_tfd >= 0) {
		evloop_del(c->env.loop, c->coal_tfd);
		close(c->coal_tfd);
		c->coal_tfd = -1;
	}
	if (c->in_watched) {
		evloop_del(c->env.loop, c->in_fd);
		c->in_watched = false;
	}
	evloop_del(c->env.loop, c->wake_efd);
}

void console_destroy(struct console *c)
{
	if (!c->inited)
		return;
	c->inited = false;
	if (c->uart_on_bus)
		bus_remove(c->env.pio, NS16550_COM1_BASE, c);
	c->uart_on_bus = false;
	console_close(c);
	coalesce_destroy(&c->coal);
	ns16550_destroy(&c->uart);
	if (c->wake_efd >= 0)
		close(c->wake_efd);
	c->wake_efd = -1;
	pthread_mutex_destroy(&c->out_lock);
}

void console_dump(struct console *c)
{
	struct ns16550 *u = &c->uart;

	pthread_mutex_lock(&u->lock);
	vinfo("COM1: ier=%02x lcr=%02x mcr=%02x lsr=%02x thr_pending=%d rx=%u irq=%d",
	      u->ier, u->lcr, u->mcr, u->lsr, u->thr_ipending, u->rx_count, u->irq_level);
	pthread_mutex_unlock(&u->lock);
}
