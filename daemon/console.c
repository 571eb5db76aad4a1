/* vireod's VM consoles (console.h). */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vireo/util.h>

#define KIND_VM     1
#define KIND_CLIENT 2
#define KIND_PEER   3
#define READ_CHUNK  16384

struct hubvm;

struct cclient {
	int kind;                       /* KIND_CLIENT: first (epoll tag) */
	struct cclient *next;
	struct hubvm *vm;
	int fd;
	void *handle;
	bool writer;
	bool dead;
	char *pend;                     /* output not sent yet */
	size_t plen;
	/* TLS: the connection's own socket (a dup), watched for the remote
	 * end's hang-up only (libmicrohttpd reads it and does not pass that
	 * on to @fd, its socket pair's end); -1 otherwise. */
	struct {
		int kind;               /* KIND_PEER (epoll tag) */
		struct cclient *owner;
		int fd;
	} peer;
};

struct hubvm {
	int kind;                       /* KIND_VM */
	struct hubvm *next;
	char name[64];
	char dir[PATH_MAX];
	int out_fd, in_fd, log_fd;
	off_t log_size;
	struct cclient *clients;
	bool dead;
};

static pthread_mutex_t hub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hubvm *hub_vms;
static struct cclient *graveyard;       /* closed clients, freed after a batch */
static struct hubvm *vm_graveyard;
static int epfd = -1;
static int wake_fd[2] = { -1, -1 };
static pthread_t hub_thread;
static bool hub_running;
static volatile bool hub_stop;
static console_close_fn close_cb;

static struct hubvm *find_vm(const char *name)
{
	for (struct hubvm *v = hub_vms; v; v = v->next)
		if (!v->dead && !strcmp(v->name, name))
			return v;
	return NULL;
}

/* Under hub_lock. */
static void client_drop(struct cclient *c)
{
	if (c->dead)
		return;
	c->dead = true;
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->peer.fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->peer.fd, NULL);
		close(c->peer.fd);
		c->peer.fd = -1;
	}
	for (struct cclient **pp = &c->vm->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (close_cb && c->handle)
		close_cb(c->handle);
	else
		close(c->fd);
	c->next = graveyard;
	graveyard = c;
}

/* Send to one client without blocking; what does not fit waits in its
 * buffer, a client too far behind goes.  Under hub_lock. */
static void client_send(struct cclient *c, const char *buf, size_t len)
{
	if (c->dead || !len)
		return;
	if (!c->plen) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			client_drop(c);
			return;
		}
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		}
		if (!len)
			return;
	}
	if (c->plen + len > CONSOLE_CLIENT_BUF) {
		vinfo("%s: a console client is %zu bytes behind: disconnected", c->vm->name,
		      c->plen + len);
		client_drop(c);
		return;
	}
	char *nb = realloc(c->pend, c->plen + len);
	if (!nb) {
		client_drop(c);
		return;
	}
	c->pend = nb;
	memcpy(c->pend + c->plen, buf, len);
	c->plen += len;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c };
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void client_flush(struct cclient *c)
{
	while (c->plen && !c->dead) {
		ssize_t n = send(c->fd, c->pend, c->plen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			client_drop(c);
			return;
		}
		memmove(c->pend, c->pend + n, c->plen - (size_t)n);
		c->plen -= (size_t)n;
	}
	if (!c->dead) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

static void log_open(struct hubvm *v)
{
	char p[PATH_MAX + 16];
	struct stat st;

	snprintf(p, sizeof(p), "%s/console.log", v->dir);
	v->log_fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	v->log_size = v->log_fd >= 0 && fstat(v->log_fd, &st) == 0 ? st.st_size : 0;
}

/* Append to the log, renaming it console.log.1 at CONSOLE_LOG_ROTATE. */
static void log_write(struct hubvm *v, const char *buf, size_t len)
{
	while (len && v->log_fd >= 0) {
		if (v->log_size >= CONSOLE_LOG_ROTATE) {
			char p[PATH_MAX + 16], old[PATH_MAX + 16];
			snprintf(p, sizeof(p), "%s/console.log", v->dir);
			snprintf(old, sizeof(old), "%s/console.log.1", v->dir);
			close(v->log_fd);
			rename(p, old);
			log_open(v);
			if (v->log_fd < 0)
				return;
		}
		size_t room = (size_t)(CONSOLE_LOG_ROTATE - v->log_size);
		size_t n = len < room ? len : room;
		if (vio_write_full(v->log_fd, buf, n)) {
			close(v->log_fd);
			v->log_fd = -1;
			return;
		}
		v->log_size += (off_t)n;
		buf += n;
		len -= n;
	}
}

/* The guest's output: log and fan out.  Under hub_lock. */
static void vm_output(struct hubvm *v, int max_rounds)
{
	char buf[READ_CHUNK];

	for (int i = 0; i < max_rounds && v->out_fd >= 0; i++) {
		ssize_t n = read(v->out_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		log_write(v, buf, (size_t)n);
		for (struct cclient *c = v->clients, *next; c; c = next) {
			next = c->next;
			client_send(c, buf, (size_t)n);
		}
	}
}

/* A client's bytes: the guest's input from the writer, dropped from the
 * others.  Under hub_lock. */
static void client_input(struct cclient *c)
{
	char buf[4096];

	/* A few rounds at most: a flooding writer does not starve the others
	 * (epoll reports what is left again). */
	for (int round = 0; round < 16; round++) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			client_drop(c);
			return;
		}
		/* A full FIFO (the guest does not read): the input is lost. */
		if (c->writer && c->vm->in_fd >= 0 && write(c->vm->in_fd, buf, (size_t)n) < 0) {
			/* dropped */
		}
	}
}

static void reap(void)
{
	while (graveyard) {
		struct cclient *c = graveyard;
		graveyard = c->next;
		free(c->pend);
		free(c);
	}
	while (vm_graveyard) {
		struct hubvm *v = vm_graveyard;
		vm_graveyard = v->next;
		free(v);
	}
}

static void *hub_main(void *arg)
{
	struct epoll_event evs[32];

	(void)arg;
	while (!hub_stop) {
		int n = epoll_wait(epfd, evs, 32, 1000);
		if (n < 0 && errno != EINTR)
			break;
		pthread_mutex_lock(&hub_lock);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				char b[64];
				while (read(wake_fd[0], b, sizeof(b)) > 0)
					;
				continue;
			}
			int kind = *(int *)evs[i].data.ptr;
			if (kind == KIND_PEER) {
				/* The TLS client hung up (or its connection broke). */
				struct cclient *c = ((struct cclient *)((char *)evs[i].data.ptr -
							offsetof(struct cclient, peer)));
				if (!c->dead)
					client_drop(c);
			} else if (kind == KIND_VM) {
				struct hubvm *v = evs[i].data.ptr;
				if (!v->dead)
					vm_output(v, 16);
			} else {
				struct cclient *c = evs[i].data.ptr;
				if (c->dead)
					continue;
				if (evs[i].events & EPOLLOUT)
					client_flush(c);
				if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
					client_input(c);
			}
		}
		reap();
		pthread_mutex_unlock(&hub_lock);
	}
	return NULL;
}

void console_set_closer(console_close_fn fn)
{
	pthread_mutex_lock(&hub_lock);
	close_cb = fn;
	pthread_mutex_unlock(&hub_lock);
}

int console_init(void)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return -errno;
	if (pipe2(wake_fd, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, wake_fd[0], &ev))
		return -errno;
	hub_stop = false;
	int r = pthread_create(&hub_thread, NULL, hub_main, NULL);
	if (r)
		return -r;
	hub_running = true;
	return 0;
}

static void vm_free_locked(struct hubvm *v)
{
	while (v->clients)
		client_drop(v->clients);
	if (v->out_fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, v->out_fd, NULL);
		close(v->out_fd);
	}
	if (v->in_fd >= 0)
		close(v->in_fd);
	if (v->log_fd >= 0)
		close(v->log_fd);
	v->out_fd = v->in_fd = v->log_fd = -1;
	v->dead = true;
	for (struct hubvm **pp = &hub_vms; *pp; pp = &(*pp)->next) {
		if (*pp == v) {
			*pp = v->next;
			break;
		}
	}
	v->next = vm_graveyard;
	vm_graveyard = v;
}

void console_shutdown(void)
{
	if (!hub_running)
		return;
	hub_stop = true;
	if (write(wake_fd[1], "x", 1) < 0) {
		/* the 1 s tick ends it */
	}
	pthread_join(hub_thread, NULL);
	hub_running = false;
	pthread_mutex_lock(&hub_lock);
	while (hub_vms)
		vm_free_locked(hub_vms);
	reap();
	pthread_mutex_unlock(&hub_lock);
}

static int fifo_path(const char *dir, const char *file, char *out, size_t len)
{
	if ((size_t)snprintf(out, len, "%s/%s", dir, file) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int console_vm_open(const char *name, const char *dir, bool fresh)
{
	char pin[PATH_MAX], pout[PATH_MAX];
	struct stat st;
	int r;

	if (!hub_running)
		return -ENOTCONN;
	if ((r = fifo_path(dir, "console.in", pin, sizeof(pin))) ||
	    (r = fifo_path(dir, "console.out", pout, sizeof(pout))))
		return r;
	if (fresh) {
		unlink(pin);
		unlink(pout);
		if (mkfifo(pin, 0600) || mkfifo(pout, 0600))
			return -errno;
	} else if (lstat(pin, &st) || !S_ISFIFO(st.st_mode) || lstat(pout, &st) ||
		   !S_ISFIFO(st.st_mode)) {
		return -ENOENT;
	}
	struct hubvm *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->kind = KIND_VM;
	snprintf(v->name, sizeof(v->name), "%s", name);
	snprintf(v->dir, sizeof(v->dir), "%s", dir);
	/* Read-write: the FIFOs never see their other end go while we hold them. */
	v->out_fd = open(pout, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	v->in_fd = open(pin, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (v->out_fd < 0 || v->in_fd < 0) {
		r = -errno;
		if (v->out_fd >= 0)
			close(v->out_fd);
		if (v->in_fd >= 0)
			close(v->in_fd);
		free(v);
		return r;
	}
	/* Room for bursts (best effort: the default 64 KiB also works). */
	fcntl(v->out_fd, F_SETPIPE_SZ, 1024 * 1024);
	log_open(v);
	pthread_mutex_lock(&hub_lock);
	struct hubvm *old = find_vm(name);
	if (old)
		vm_free_locked(old);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = v };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, v->out_fd, &ev)) {
		r = -errno;
		pthread_mutex_unlock(&hub_lock);
		close(v->out_fd);
		close(v->in_fd);
		if (v->log_fd >= 0)
			close(v->log_fd);
		free(v);
		return r;
	}
	v->next = hub_vms;
	hub_vms = v;
	pthread_mutex_unlock(&hub_lock);
	return 0;
}

int console_child_stdio(const char *dir)
{
	char pin[PATH_MAX], pout[PATH_MAX];

	if (fifo_path(dir, "console.in", pin, sizeof(pin)) ||
	    fifo_path(dir, "console.out", pout, sizeof(pout)))
		return -1;
	int in = open(pin, O_RDWR | O_NOFOLLOW);
	/* Non-blocking: the guest never waits for vireod (a stalled vireod
	 * costs output once the pipe is full, not the VM). */
	int out = open(pout, O_WRONLY | O_NOFOLLOW | O_NONBLOCK);
	if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0)
		return -1;
	if (in > 1)
		close(in);
	if (out > 1)
		close(out);
	return 0;
}

void console_vm_close(const char *name)
{
	static const char bye[] = "\r\n[vireo: the VM's process ended: console closed]\r\n";

	pthread_mutex_lock(&hub_lock);
	struct hubvm *v = find_vm(name);
	if (v) {
		char pin[PATH_MAX], pout[PATH_MAX];
		vm_output(v, 1 << 20);   /* what is left, until EAGAIN */
		for (struct cclient *c = v->clients; c; c = c->next)
			client_send(c, bye, sizeof(bye) - 1);
		/* A last chance for what waits (non-blocking). */
		for (struct cclient *c = v->clients, *next; c; c = next) {
			next = c->next;
			client_flush(c);
		}
		if (!fifo_path(v->dir, "console.in", pin, sizeof(pin)))
			unlink(pin);
		if (!fifo_path(v->dir, "console.out", pout, sizeof(pout)))
			unlink(pout);
		vm_free_locked(v);
	}
	pthread_mutex_unlock(&hub_lock);
	if (v && write(wake_fd[1], "x", 1) < 0) {
		/* reaped at the next tick */
	}
}

int console_check(const char *name, bool want_write, char *err, size_t errlen)
{
	int status = 0;

	pthread_mutex_lock(&hub_lock);
	struct hubvm *v = find_vm(name);
	unsigned n = 0;
	bool writer = false;
	for (struct cclient *c = v ? v->clients : NULL; c; c = c->next) {
		n++;
		writer |= c->writer;
	}
	if (!v)
		status = 404;
	else if (n >= CONSOLE_MAX_CLIENTS)
		status = 409;
	else if (want_write && writer)
		status = 409;
	pthread_mutex_unlock(&hub_lock);
	if (status == 404)
		snprintf(err, errlen, "%s has no console: it does not run (or vireo-vmm was "
			 "started without one)", name);
	else if (status == 409 && n >= CONSOLE_MAX_CLIENTS)
		snprintf(err, errlen, "%s's console has %d clients already", name, CONSOLE_MAX_CLIENTS);
	else if (status == 409)
		snprintf(err, errlen, "%s's console has a writer already: attach read-only "
			 "(vireo console --readonly)", name);
	return status;
}

int console_attach(const char *name, int fd, void *handle, int peer_fd, bool want_write,
		   const char *extra, size_t extra_len)
{
	static const char ro[] = "\r\n[vireo: another client writes to this console: "
				 "attached read-only]\r\n";
	struct cclient *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	c->kind = KIND_CLIENT;
	c->fd = fd;
	c->handle = handle;
	c->peer.kind = KIND_PEER;
	c->peer.owner = c;
	c->peer.fd = peer_fd >= 0 ? fcntl(peer_fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (peer_fd >= 0 && c->peer.fd < 0) {
		free(c);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	pthread_mutex_lock(&hub_lock);
	struct hubvm *v = find_vm(name);
	if (!v) {
		pthread_mutex_unlock(&hub_lock);
		goto fail;
	}
	bool writer = false;
	unsigned n = 0;
	for (struct cclient *o = v->clients; o; o = o->next) {
		writer |= o->writer;
		n++;
	}
	if (n >= CONSOLE_MAX_CLIENTS) {
		/* Others came since console_check(): told in-band, then closed. */
		static const char full[] = "[vireo: the console has its maximum of clients]\r\n";
		pthread_mutex_unlock(&hub_lock);
		if (send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* closing anyway */
		}
		goto fail;
	}
	c->vm = v;
	c->writer = want_write && !writer;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) {
		pthread_mutex_unlock(&hub_lock);
		goto fail;
	}
	struct epoll_event pev = { .events = EPOLLRDHUP, .data.ptr = &c->peer };
	if (c->peer.fd >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, c->peer.fd, &pev)) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
		pthread_mutex_unlock(&hub_lock);
		goto fail;
	}
	c->next = v->clients;
	v->clients = c;
	if (want_write && !c->writer)
		client_send(c, ro, sizeof(ro) - 1);
	if (c->writer && extra_len && v->in_fd >= 0 && write(v->in_fd, extra, extra_len) < 0) {
		/* dropped, as any input the guest has no room for */
	}
	pthread_mutex_unlock(&hub_lock);
	return 0;
fail:
	if (c->peer.fd >= 0)
		close(c->peer.fd);
	free(c);
	return -1;
}

unsigned console_clients(const char *name, bool *writer)
{
	unsigned n = 0;

	*writer = false;
	pthread_mutex_lock(&hub_lock);
	struct hubvm *v = find_vm(name);
	for (struct cclient *c = v ? v->clients : NULL; c; c = c->next) {
		n++;
		*writer |= c->writer;
	}
	pthread_mutex_unlock(&hub_lock);
	return n;
}
