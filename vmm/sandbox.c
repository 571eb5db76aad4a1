/*
 * The sandbox.  Order matters:
 * - unshare(2) of the mount, IPC, UTS and network namespaces needs a
 *   single-threaded process, and a new PID namespace only takes children:
 *   so sandbox_start() runs first, unshares everything and forks; the
 *   child (PID 1 of the new namespace) goes on, the parent stays outside
 *   as the monitor (signals in, exit status out);
 * - the child then opens its files (hold.c: disks start I/O threads) and
 *   sandbox_lock() makes an empty tmpfs its root and drops to the user:
 *   glibc switches every thread's ids (a signal to each), so the I/O
 *   workers' filter allows the set*id calls (harmless without
 *   capabilities); capabilities go with the switch to a non-zero uid, the
 *   bounding set and ambient set are cleared explicitly before it.
 * The network namespace is new unless a --net user device needs the
 * host's network (libslirp connects to it for the guest, and its root
 * then carries a copy of /etc/resolv.conf for the guest's DNS); taps are
 * opened before sandbox_start (hold_open_net), in the host's namespace,
 * and keep working from any.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vireo/util.h>

#include "filters.h"
#include "hold.h"
#include "migrate.h"
#include "sandbox.h"
#include "watchdog.h"

static bool sb_on;
static int sb_pipe = -1;          /* child: tells the monitor it dropped */
static uid_t sb_uid;
static gid_t sb_gid;
/* --api-socket: its directory (opened before the fork) and name, for the
 * monitor to remove it once the VM's process has ended; made: the child
 * made it (told with the lock). */
static int sb_api_dir = -1;
static char sb_api_name[108];
static bool sb_api_made;
/* PUT /vm/save in the sandbox: the VM's process asks the monitor, which
 * still sees the host's file system (as the sandbox's user), to make the
 * save's files (SOCK_SEQPACKET pair; -1 without --api-socket). */
static int sb_save = -1;
static int sb_save_child = -1;
/* The monitor shares the child's mount namespace, whose root the child's
 * pivot_root replaces for both: it reaches the host's files through
 * descriptors of the old root and working directory, opened before. */
static int sb_save_root = -1, sb_save_cwd = -1;

#define SB_SAVE_DIR_MAX 4000

/* PUT /migrate in the sandbox: the VM's process asks the connector (a
 * process outside the namespaces, see sandbox_connect) for a connection
 * (SOCK_SEQPACKET pair; -1 without --api-socket). */
static int sb_conn = -1;

struct sb_conn_req {
	char uri[128];
};

struct sb_conn_reply {
	int err;
	char msg[256];
};

struct sb_save_req {
	char op;                     /* 'C' create DIR/NAME.new, 'R' rename it to DIR/NAME */
	char name[8];                /* "state" or "memory" */
	char dir[SB_SAVE_DIR_MAX + 1];
};

void sandbox_api_socket_made(void)
{
	sb_api_made = true;
}

/* The monitor: remove the API socket the child made, as the sandbox's
 * user (it works where that user may remove it; else the next vireo-vmm
 * replaces the stale socket). */
static void sandbox_api_cleanup(void)
{
	if (sb_api_made && sb_api_dir >= 0 && unlinkat(sb_api_dir, sb_api_name, 0)) {
		/* left behind: stale, and replaced by the next start */
	}
}

bool sandbox_wanted(const struct vmm_opts *o)
{
	return o->sandbox == VMM_SANDBOX_ON || (o->sandbox == VMM_SANDBOX_AUTO && geteuid() == 0);
}

bool sandbox_active(void)
{
	return sb_on;
}

/* ---- cgroup ------------------------------------------------------------------- */

static int sandbox_write(const char *dir, const char *file, const char *val)
{
	char path[600];
	int fd, r = 0;
	size_t len = strlen(val);

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, len) != (ssize_t)len)
		r = -errno;
	if (fd >= 0)
		close(fd);
	return r;
}

static int sandbox_cgroup(const struct vmm_opts *o)
{
	char v[64];
	int r;

	if (mkdir(o->cgroup, 0755) && errno != EEXIST) {
		r = -errno;
		verr("--cgroup %s: cannot create it: %s", o->cgroup, strerror(errno));
		return r;
	}
	if (o->cpu_max_given) {
		if (o->cpu_quota_us)
			snprintf(v, sizeof(v), "%llu %llu", (unsigned long long)o->cpu_quota_us,
				 (unsigned long long)o->cpu_period_us);
		else
			snprintf(v, sizeof(v), "max %llu", (unsigned long long)o->cpu_period_us);
		if ((r = sandbox_write(o->cgroup, "cpu.max", v))) {
			verr("--cpu-max: cannot write '%s' to %s/cpu.max: %s (is the cpu "
			     "controller enabled in the parent's cgroup.subtree_control?)",
			     v, o->cgroup, strerror(-r));
			return r;
		}
	}
	if (o->memory_max_given) {
		if (o->memory_max)
			snprintf(v, sizeof(v), "%llu", (unsigned long long)o->memory_max);
		else
			snprintf(v, sizeof(v), "max");
		if ((r = sandbox_write(o->cgroup, "memory.max", v))) {
			verr("--memory-max: cannot write '%s' to %s/memory.max: %s (is the "
			     "memory controller enabled in the parent's cgroup.subtree_control?)",
			     v, o->cgroup, strerror(-r));
			return r;
		}
	}
	if ((r = sandbox_write(o->cgroup, "cgroup.procs", "0"))) {
		verr("--cgroup %s: cannot move into it: %s (a cgroup v2 directory?)",
		     o->cgroup, strerror(-r));
		return r;
	}
	return 0;
}

/* ---- privileges --------------------------------------------------------------- */

static int sandbox_fail(const char *what)
{
	int r = -errno;

	verr("sandbox: %s: %s", what, strerror(errno));
	return r;
}

/* Clear every capability set, switch to uid/gid, set no_new_privs. */
static int sandbox_drop(uid_t uid, gid_t gid)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	uid_t ru, eu, su;

	/* The bounding set needs CAP_SETPCAP, gone after the uid switch. */
	for (int c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) && errno != EINVAL)
			return sandbox_fail("cannot clear the capability bounding set");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return sandbox_fail("cannot clear the ambient capabilities");
	if (setgroups(0, NULL))
		return sandbox_fail("cannot drop the supplementary groups");
	if (setresgid(gid, gid, gid))
		return sandbox_fail("cannot switch the group");
	if (setresuid(uid, uid, uid))
		return sandbox_fail("cannot switch the user");
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d))
		return sandbox_fail("cannot clear the capabilities");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return sandbox_fail("cannot set no_new_privs");
	/* Check rather than trust. */
	if (getresuid(&ru, &eu, &su) || ru != uid || eu != uid || su != uid ||
	    syscall(SYS_capget, &h, d) || d[0].effective || d[0].permitted ||
	    d[0].inheritable || d[1].effective || d[1].permitted || d[1].inheritable) {
		errno = EPERM;
		return sandbox_fail("privileges still held after the drop");
	}
	return 0;
}

/* ---- the connector ------------------------------------------------------------ */

/* The connector's loop: one connection per request, until the VM's
 * process (the other end's last holder) is gone. */
static void sandbox_connector_serve(int s) __attribute__((noreturn));
static void sandbox_connector_serve(int s)
{
	for (;;) {
		struct sb_conn_req q;
		struct sb_conn_reply a;
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} cm;
		struct iovec iov = { &a, sizeof(a) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n = recv(s, &q, sizeof(q), 0);
		int fd = -1;

		if (n == 0 || (n < 0 && errno != EINTR))
			_exit(0);
		if (n < 0)
			continue;
		memset(&a, 0, sizeof(a));
		if ((size_t)n != sizeof(q) || !memchr(q.uri, 0, sizeof(q.uri))) {
			a.err = EINVAL;
			snprintf(a.msg, sizeof(a.msg), "a malformed request to the connector");
		} else {
			fd = migrate_connect(q.uri, a.msg, sizeof(a.msg));
			if (fd < 0) {
				a.err = -fd;
				fd = -1;
			}
		}
		if (fd >= 0) {
			memset(&cm, 0, sizeof(cm));
			m.msg_control = cm.b;
			m.msg_controllen = sizeof(cm.b);
			cm.h.cmsg_level = SOL_SOCKET;
			cm.h.cmsg_type = SCM_RIGHTS;
			cm.h.cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(&cm.h), &fd, sizeof(int));
		}
		if (sendmsg(s, &m, MSG_NOSIGNAL) < 0 && errno == EPIPE)
			_exit(0);
		if (fd >= 0)
			close(fd);
	}
}

/* Before the namespaces: fork the connector.  It keeps one end of the
 * pair (as descriptor 3, everything else but stderr closed), drops to
 * the sandbox's user, and dies with the process that forked it. */
static int sandbox_connector_start(void)
{
	int sp[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp))
		return sandbox_fail("socketpair");
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(sp[0]);
		close(sp[1]);
		return sandbox_fail("fork");
	}
	if (pid == 0) {
		if (dup2(sp[1], 3) < 0)
			_exit(1);
		if (syscall(SYS_close_range, 4u, ~0u, 0u) < 0)
			for (int fd = 4; fd < 1024; fd++)
				close(fd);
		filters_no_leak_check();
		if (sandbox_drop(sb_uid, sb_gid))
			_exit(1);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() == 1)
			_exit(0);
		prctl(PR_SET_NAME, "vireo-connect", 0, 0, 0);
		if (filters_enter(VMM_ROLE_CONNECTOR))
			_exit(1);
		sandbox_connector_serve(3);
	}
	close(sp[1]);
	sb_conn = sp[0];
	return 0;
}

int sandbox_connect(const char *uri, char *err, size_t errlen)
{
	struct sb_conn_req q;
	struct sb_conn_reply a;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { &a, sizeof(a) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
			    .msg_controllen = sizeof(cm.b) };
	struct cmsghdr *c;
	ssize_t n;
	int fd = -1;

	if (sb_conn < 0) {
		snprintf(err, errlen, "no connector: the sandbox has one with --api-socket only");
		return -ENOTSUP;
	}
	if (strlen(uri) >= sizeof(q.uri)) {
		snprintf(err, errlen, "%s: too long", uri);
		return -ENAMETOOLONG;
	}
	memset(&q, 0, sizeof(q));
	memcpy(q.uri, uri, strlen(uri) + 1);
	if (send(sb_conn, &q, sizeof(q), MSG_NOSIGNAL) != (ssize_t)sizeof(q)) {
		snprintf(err, errlen, "the sandbox's connector is gone");
		return -EIO;
	}
	memset(&cm, 0, sizeof(cm));
	do {
		n = recvmsg(sb_conn, &m, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	for (c = n > 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (n != (ssize_t)sizeof(a) || (!a.err && fd < 0)) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "no answer from the sandbox's connector");
		return -EIO;
	}
	if (a.err) {
		if (fd >= 0)
			close(fd);
		a.msg[sizeof(a.msg) - 1] = 0;
		snprintf(err, errlen, "%s", a.msg[0] ? a.msg : strerror(a.err));
		return a.err > 0 && a.err < 4096 ? -a.err : -EIO;
	}
	return fd;
}

/* ---- the monitor ---------------------------------------------------------------- */

static void sandbox_exit_like(int st) __attribute__((noreturn));
static void sandbox_exit_like(int st)
{
	sigset_t set;
	int sig;

	sandbox_api_cleanup();
	if (WIFEXITED(st))
		_exit(WEXITSTATUS(st));
	sig = WTERMSIG(st);
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	kill(getpid(), sig);
	_exit(128 + sig);
}

/* The monitor: one request of the VM's process for its save (see
 * sandbox_save_create); the answer is an errno, with the new file's
 * descriptor for a create.  False once the VM's process has closed its
 * end. */
static bool sandbox_save_serve(int s)
{
	struct sb_save_req q;
	char path[SB_SAVE_DIR_MAX + 16], to[SB_SAVE_DIR_MAX + 16];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n = recv(s, &q, sizeof(q), 0);
	int err = 0, fd = -1;

	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
		return false;
	if (n < 0)
		return true;
	if ((size_t)n != sizeof(q) || !memchr(q.dir, 0, sizeof(q.dir)) || !q.dir[0] ||
	    !memchr(q.name, 0, sizeof(q.name)) ||
	    (strcmp(q.name, "state") && strcmp(q.name, "memory")) ||
	    (q.op != 'C' && q.op != 'R')) {
		err = EINVAL;
	} else {
		/* Absolute paths from the host's root, others from the
		 * directory vireo-vmm was started in. */
		int base = q.dir[0] == '/' ? sb_save_root : sb_save_cwd;
		const char *rel = q.dir + strspn(q.dir, "/");

		if (!*rel)
			rel = ".";
		snprintf(path, sizeof(path), "%s/%s.new", rel, q.name);
		snprintf(to, sizeof(to), "%s/%s", rel, q.name);
		if (base < 0)
			err = ENOENT;
		else if (q.op == 'C' && mkdirat(base, rel, 0700) < 0 && errno != EEXIST)
			err = errno;
		else if (q.op == 'C' && (fd = openat(base, path, O_WRONLY | O_CREAT | O_TRUNC |
						     O_CLOEXEC, 0600)) < 0)
			err = errno;
		else if (q.op == 'R' && renameat(base, path, base, to) < 0)
			err = errno;
	}
	iov = (struct iovec){ &err, sizeof(err) };
	if (fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		m.msg_control = cm.b;
		m.msg_controllen = sizeof(cm.b);
		cm.h.cmsg_level = SOL_SOCKET;
		cm.h.cmsg_type = SCM_RIGHTS;
		cm.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&cm.h), &fd, sizeof(int));
	}
	if (sendmsg(s, &m, MSG_NOSIGNAL) < 0) {
		/* the VM's process has gone: it ends the monitor too */
	}
	if (fd >= 0)
		close(fd);
	return true;
}

/* The parent: forward the stop, dump and power-button signals to the VM's
 * process and end as it ends.  Drops to the sandbox's user (and its own
 * filter) once the child has: until then it must be able to signal a
 * root child. */
static void sandbox_monitor(pid_t child, int rfd) __attribute__((noreturn));
static void sandbox_monitor(pid_t child, int rfd)
{
	struct pollfd pf[3];
	sigset_t set;
	int sfd, st;
	bool locked = false;

	sigemptyset(&set);
	watchdog_signals(&set);    /* what the VM's watchdog takes, forwarded */
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		/* Cannot forward: at least end with the child. */
		while (waitpid(child, &st, 0) < 0 && errno == EINTR)
			;
		sandbox_exit_like(st);
	}
	if (waitpid(child, &st, WNOHANG) == child)
		sandbox_exit_like(st);
	pf[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = rfd, .events = POLLIN };
	pf[2] = (struct pollfd){ .fd = sb_save, .events = POLLIN };
	for (;;) {
		struct signalfd_siginfo si;

		/* The save's requests come once the child has dropped. */
		if (locked && sb_save >= 0) {
			pf[1] = pf[2];
			if (poll(pf, 2, -1) < 0)
				continue;
			if (((pf[1].revents & POLLIN) && !sandbox_save_serve(sb_save)) ||
			    (!(pf[1].revents & POLLIN) && (pf[1].revents & (POLLHUP | POLLERR))))
				sb_save = -1;   /* the child closed it: it is ending */
		} else if (poll(pf, locked ? 1 : 2, -1) < 0) {
			continue;
		}
		if (!locked && pf[1].revents) {
			char c[2] = { 0, 0 };

			/* "L" or "AL" (it made the API socket): the child
			 * dropped; EOF: it ended early. */
			if (read(rfd, c, sizeof(c)) < 1) {
				/* ended before the drop: its status says why */
			}
			sb_api_made = c[0] == 'A';
			close(rfd);
			locked = true;
			if (sandbox_drop(sb_uid, sb_gid) || filters_enter(VMM_ROLE_MONITOR)) {
				kill(child, SIGKILL);
				while (waitpid(child, &st, 0) < 0 && errno == EINTR)
					;
				_exit(VMM_EXIT_ERROR);
			}
		}
		if (!(pf[0].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGCHLD) {
			if (waitpid(child, &st, WNOHANG) == child)
				sandbox_exit_like(st);
		} else {
			kill(child, (int)si.ssi_signo);
		}
	}
}

/* ---- entering --------------------------------------------------------------------- */

static int sandbox_user(const struct vmm_opts *o)
{
	struct passwd *pw;

	sb_uid = o->uid;
	sb_gid = o->gid;
	if (!o->user_name)
		return 0;
	errno = 0;
	pw = getpwnam(o->user_name);
	if (!pw) {
		verr("--user %s: no such user%s%s", o->user_name, errno ? ": " : "",
		     errno ? strerror(errno) : "");
		return -ENOENT;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		verr("--user %s: is root (uid or gid 0): no drop at all", o->user_name);
		return -EINVAL;
	}
	sb_uid = pw->pw_uid;
	sb_gid = pw->pw_gid;
	return 0;
}

bool sandbox_host_net(const struct vmm_opts *o)
{
	for (unsigned i = 0; i < o->virtio.nr_nets; i++)
		if (o->virtio.net[i].user)
			return true;
	return false;
}

/* /etc/resolv.conf into the new root @d (libslirp reads it for the
 * guest's DNS).  Missing or unreadable: no file, and the guest's DNS
 * queries go unanswered, as they would outside the sandbox. */
static int sandbox_resolv_conf(const char *d)
{
	char buf[4096], path[64];
	ssize_t n;
	int in, out, r = 0;

	in = open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return 0;
	n = read(in, buf, sizeof(buf));
	close(in);
	if (n < 0)
		return 0;
	snprintf(path, sizeof(path), "%s/etc", d);
	if (mkdir(path, 0555))
		return sandbox_fail("cannot make /etc in the new root");
	snprintf(path, sizeof(path), "%s/etc/resolv.conf", d);
	out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (out < 0 || write(out, buf, (size_t)n) != n)
		r = sandbox_fail("cannot copy /etc/resolv.conf into the new root");
	if (out >= 0)
		close(out);
	return r;
}

int sandbox_start(const struct vmm_opts *o)
{
	bool root = geteuid() == 0;
	sigset_t chld, old;
	int p[2], r;
	pid_t pid;

	sb_on = sandbox_wanted(o);
	if (sb_on && !root) {
		verr("--sandbox needs root (it creates namespaces and switches users); "
		     "without root only the system call filters apply (--sandbox=off)");
		return -EPERM;
	}
	if (o->cgroup && (r = sandbox_cgroup(o)))
		return r;
	if (!sb_on)
		return 0;
	if ((r = sandbox_user(o)))
		return r;
	/* PUT /migrate: the connector, in the host's network and files. */
	if (o->api_socket && (r = sandbox_connector_start()))
		return r;
	if (pipe2(p, O_CLOEXEC))
		return sandbox_fail("pipe");
	if (o->api_socket) {
		int sp[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp))
			return sandbox_fail("socketpair");
		sb_save = sp[0];        /* the monitor's end */
		sb_save_child = sp[1];
		sb_save_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		sb_save_cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		/* The monitor removes the socket at the end: its directory now,
		 * before the child's new root hides it. */
		const char *slash = strrchr(o->api_socket, '/');
		char dir[4096];

		if (!slash)
			snprintf(dir, sizeof(dir), ".");
		else if (slash == o->api_socket)
			snprintf(dir, sizeof(dir), "/");
		else
			snprintf(dir, sizeof(dir), "%.*s", (int)(slash - o->api_socket),
				 o->api_socket);
		snprintf(sb_api_name, sizeof(sb_api_name), "%s", slash ? slash + 1 : o->api_socket);
		sb_api_dir = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID |
		    (sandbox_host_net(o) ? 0 : CLONE_NEWNET)))
		return sandbox_fail("cannot create namespaces");
	/* SIGCHLD blocked from before the fork: a child that fails at once
	 * must not end before the monitor listens (SIGCHLD's default is to
	 * discard it, and the monitor then waited forever). */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return sandbox_fail("fork");
	if (pid > 0) {
		close(p[1]);
		if (sb_save_child >= 0)
			close(sb_save_child);
		if (sb_conn >= 0)
			close(sb_conn);   /* the VM's process holds it */
		hold_forget();   /* the VM's process holds the taps */
		migrate_incoming_forget();   /* and takes the migration */
		sandbox_monitor(pid, p[0]);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(p[0]);
	if (sb_save >= 0)
		close(sb_save);       /* the monitor's, as the two below */
	if (sb_save_root >= 0)
		close(sb_save_root);
	if (sb_save_cwd >= 0)
		close(sb_save_cwd);
	sb_save_root = sb_save_cwd = -1;
	sb_save = sb_save_child;
	if (sb_api_dir >= 0)
		close(sb_api_dir);   /* the monitor's */
	sb_api_dir = -1;
	sb_pipe = p[1];
	filters_no_leak_check();
	/* The monitor gone (SIGKILL): so are we. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (sethostname("vireo", 5)) {
		/* a name of our own in the new UTS namespace: cosmetic */
	}
	return 0;
}

/* An empty tmpfs as the root: pivot_root(2) to it, or, when the root is
 * the initramfs (rootfs cannot be pivoted away, e.g. the lab's outer VM),
 * move it over / and chroot there, as switch_root does; without
 * capabilities afterwards there is no way out of either. */
static int sandbox_root(const struct vmm_opts *o)
{
	static const char *const dirs[] = { "/tmp", "/mnt", "/run", "/dev" };
	const char *d = NULL;
	struct stat st;

	for (unsigned i = 0; i < VIREO_ARRAY_SIZE(dirs) && !d; i++)
		if (stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
			d = dirs[i];
	if (!d) {
		errno = ENOENT;
		return sandbox_fail("no directory to mount the new root on");
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return sandbox_fail("cannot make the mounts private");
	if (mount("vireo-root", d, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=16k,nr_inodes=16,mode=0555"))
		return sandbox_fail("cannot mount the new root");
	if (sandbox_host_net(o) && sandbox_resolv_conf(d))
		return -EIO;
	if (chdir(d))
		return sandbox_fail("cannot enter the new root");
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH))
			return sandbox_fail("cannot detach the old root");
	} else if (errno == EINVAL) {
		if (mount(".", "/", NULL, MS_MOVE, NULL) || chroot("."))
			return sandbox_fail("cannot move to the new root");
	} else {
		return sandbox_fail("pivot_root");
	}
	if (chdir("/"))
		return sandbox_fail("chdir /");
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV |
		  MS_NOEXEC, NULL))
		return sandbox_fail("cannot make the new root read-only");
	return 0;
}

int sandbox_lock(const struct vmm_opts *o)
{
	int r;

	if (!sb_on) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
			return sandbox_fail("cannot set no_new_privs");
		return 0;
	}
	if ((r = sandbox_root(o)) || (r = sandbox_drop(sb_uid, sb_gid)))
		return r;
	/* Cleared by the uid switch: ask again. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (write(sb_pipe, sb_api_made ? "AL" : "L", sb_api_made ? 2 : 1) < 1) {
		/* the monitor is gone: PDEATHSIG ends us */
	}
	close(sb_pipe);
	sb_pipe = -1;
	vdebug("sandbox: uid %u gid %u, empty root, new namespaces, no capabilities",
	       (unsigned)sb_uid, (unsigned)sb_gid);
	return 0;
}

/* ---- the save's files, through the monitor ---------------------------------------- */

static int sandbox_save_ask(char op, const char *dir, const char *name, int *fd)
{
	struct sb_save_req q;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	int err = EIO;
	struct iovec iov = { &err, sizeof(err) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
			    .msg_controllen = sizeof(cm.b) };
	struct cmsghdr *c;
	ssize_t n;

	if (sb_save < 0)
		return -ENOTSUP;
	if (strlen(dir) > SB_SAVE_DIR_MAX || strlen(name) >= sizeof(q.name))
		return -ENAMETOOLONG;
	memset(&q, 0, sizeof(q));
	q.op = op;
	snprintf(q.name, sizeof(q.name), "%s", name);
	memcpy(q.dir, dir, strlen(dir) + 1);
	if (send(sb_save, &q, sizeof(q), MSG_NOSIGNAL) != (ssize_t)sizeof(q))
		return -EIO;
	memset(&cm, 0, sizeof(cm));
	do {
		n = recvmsg(sb_save, &m, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(err))
		return -EIO;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && fd)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	return -err;
}

int sandbox_save_create(const char *dir, const char *name)
{
	int fd = -1, r = sandbox_save_ask('C', dir, name, &fd);

	if (r) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd >= 0 ? fd : -EIO;
}

int sandbox_save_rename(const char *dir, const char *name)
{
	return sandbox_save_ask('R', dir, name, NULL);
}
