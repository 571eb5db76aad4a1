/*
 * The VMs of vireod (vm.h).
 *
 * Locks, in the order they are taken: a VM's operation lock (struct
 * vm.op, held across one request on that VM, which may wait for vireo-vmm),
 * then define_lock (define and undefine: the registry and the store agree),
 * then reg_lock (the registry and every VM's run-time fields; never held
 * across a wait on another process), then ev_lock (events; a leaf).
 *
 * A VM's vireo-vmm runs in its own session, with its pid and start time in
 * RUN_DIR/NAME/vmm.pid, its control API at RUN_DIR/NAME/api.sock, COM1 in
 * RUN_DIR/NAME/console.log and its own messages in RUN_DIR/NAME/vmm.log.
 * vireod's end never ends a VM: a later vireod adopts the process when the
 * pid still names a process with the same start time whose command line is
 * vireo-vmm's for this VM.  An adopted process is not vireod's child, so
 * its exit status is not known: the restart policy takes its end as a
 * failure unless a stop was asked for.
 */
#include "vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <vireo/util.h>

#include "console.h"
#include "httpc.h"
#include "isolate.h"
#include "network.h"
#include "vm-priv.h"
#include "vmstate.h"

#define START_TIMEOUT_MS   60000   /* vireo-vmm's API answering after a start */
#define INCOMING_TIMEOUT_MS (15 * 60000)   /* ... after --incoming: the whole migration */
#define START_POLL_MAX_US   5000   /* longest wait between looks at it */
#define DESTROY_TERM_MS    30000   /* SIGTERM, then SIGKILL */
#define VMM_API_TIMEOUT_MS 15000
#define BACKOFF_MAX_MS     60000
#define STABLE_MS          60000   /* running this long resets the backoff */
#define MONITOR_TICK_MS    100
#define EV_RING            256

const char *const state_names[] = {
	[VM_SHUTOFF] = "shutoff", [VM_STARTING] = "starting", [VM_RUNNING] = "running",
	[VM_PAUSED] = "paused", [VM_CRASHED] = "crashed",
};

static struct vm_config cfg;
pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t define_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vm *vms;
static pthread_t monitor_thread;
static bool monitor_running;
static volatile bool monitor_stop;

struct event {
	unsigned long long seq;
	long long time_ms;
	char vm[VMDEF_NAME_MAX + 1];
	char type[16];
	char detail[128];
};
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cond;
static struct event ev_ring[EV_RING];
static unsigned long long ev_seq;

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int status_err(int status, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return status;
}

void emit(const char *vm, const char *type, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&ev_lock);
	struct event *e = &ev_ring[ev_seq % EV_RING];
	e->seq = ++ev_seq;
	e->time_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	snprintf(e->vm, sizeof(e->vm), "%s", vm);
	snprintf(e->type, sizeof(e->type), "%s", type);
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
	pthread_cond_broadcast(&ev_cond);
	pthread_mutex_unlock(&ev_lock);
	vinfo("%s: %s%s%s", vm, type, e->detail[0] ? ": " : "", e->detail);
}

unsigned long long vms_events_last(void)
{
	pthread_mutex_lock(&ev_lock);
	unsigned long long s = ev_seq;
	pthread_mutex_unlock(&ev_lock);
	return s;
}

char *vms_events_wait(unsigned long long after, int timeout_ms, unsigned long long *last)
{
	struct timespec dl;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	pthread_mutex_lock(&ev_lock);
	while (ev_seq <= after && !monitor_stop)
		if (pthread_cond_timedwait(&ev_cond, &ev_lock, &dl) == ETIMEDOUT)
			break;
	unsigned long long from = after + 1;
	if (ev_seq > EV_RING && from <= ev_seq - EV_RING)
		from = ev_seq - EV_RING + 1;
	for (unsigned long long s = from; s <= ev_seq; s++) {
		const struct event *e = &ev_ring[(s - 1) % EV_RING];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "seq", json_object_new_int64((int64_t)e->seq));
		json_object_object_add(o, "time_ms", json_object_new_int64(e->time_ms));
		json_object_object_add(o, "vm", json_object_new_string(e->vm));
		json_object_object_add(o, "event", json_object_new_string(e->type));
		json_object_object_add(o, "detail", json_object_new_string(e->detail));
		fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	}
	*last = ev_seq > after ? ev_seq : after;
	pthread_mutex_unlock(&ev_lock);
	fclose(f);
	return out;
}

void rundir(const struct vm *vm, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", cfg.run_dir, vm->def.name);
}

void runfile(const struct vm *vm, const char *file, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/%s", cfg.run_dir, vm->def.name, file);
}

/* Start time of a process (field 22 of /proc/PID/stat); 0 if it is gone. */
static unsigned long long proc_starttime(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long st = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* After ") ": state is field 3, starttime field 22. */
	p++;
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %llu", &st) != 1)
		return 0;
	/* A zombie has finished: it is no longer the VM. */
	char *s = strrchr(buf, ')');
	if (s[1] == ' ' && s[2] == 'Z')
		return 0;
	return st;
}

/* Whether PID runs vireo-vmm for this VM: argv[0] ends in "vireo-vmm",
 * with "--name NAME" and "--api-socket RUN_DIR/NAME/api.sock". */
static bool proc_is_vmm(pid_t pid, const struct vm *vm)
{
	char path[64], sock[PATH_MAX];
	static char buf[65536];   /* under reg_lock */
	bool name = false, api = false;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	runfile(vm, "api.sock", sock, sizeof(sock));
	size_t a0 = strlen(buf);
	if (a0 < 9 || strcmp(buf + a0 - 9, "vireo-vmm") || (a0 > 9 && buf[a0 - 10] != '/'))
		return false;
	const char *prev = NULL;
	for (const char *p = buf; p < buf + n; p += strlen(p) + 1) {
		if (prev && !strcmp(prev, "--name") && !strcmp(p, vm->def.name))
			name = true;
		if (prev && !strcmp(prev, "--api-socket") && !strcmp(p, sock))
			api = true;
		prev = p;
	}
	return name && api;
}

static struct vm *find_locked(const char *name)
{
	for (struct vm *vm = vms; vm; vm = vm->next)
		if (!vm->deleted && !strcmp(vm->def.name, name))
			return vm;
	return NULL;
}

/* A VM by name, with a reference (vm_unref() it). */
static struct vm *find(const char *name)
{
	pthread_mutex_lock(&reg_lock);
	struct vm *vm = find_locked(name);
	if (vm)
		vm->refs++;
	pthread_mutex_unlock(&reg_lock);
	return vm;
}

/* Drop a reference; an undefined VM goes with its last one. */
static void vm_unref(struct vm *vm)
{
	pthread_mutex_lock(&reg_lock);
	if (--vm->refs == 0 && vm->deleted) {
		for (struct vm **pp = &vms; *pp; pp = &(*pp)->next) {
			if (*pp == vm) {
				*pp = vm->next;
				break;
			}
		}
		pthread_mutex_destroy(&vm->op);
		pthread_cond_destroy(&vm->cond);
		free(vm);
	}
	pthread_mutex_unlock(&reg_lock);
}

static struct vm *vm_new(const struct vmdef *def)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	pthread_condattr_t ca;

	if (!vm)
		return NULL;
	pthread_mutex_init(&vm->op, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->cond, &ca);
	pthread_condattr_destroy(&ca);
	vm->def = *def;
	vm->last_exit = -1;
	return vm;
}

/* Lock a VM for an operation; NULL (and 404) when there is no such VM or
 * it went while we waited. */
struct vm *op_begin(const char *name, char *err, size_t errlen)
{
	struct vm *vm = find(name);

	if (!vm) {
		snprintf(err, errlen, "no VM named '%s'", name);
		return NULL;
	}
	pthread_mutex_lock(&vm->op);
	pthread_mutex_lock(&reg_lock);
	bool gone = vm->deleted;
	pthread_mutex_unlock(&reg_lock);
	if (gone) {
		pthread_mutex_unlock(&vm->op);
		vm_unref(vm);
		snprintf(err, errlen, "no VM named '%s'", name);
		return NULL;
	}
	return vm;
}

void op_end(struct vm *vm)
{
	pthread_mutex_unlock(&vm->op);
	vm_unref(vm);
}

static void cleanup_runfiles(const struct vm *vm)
{
	char p[PATH_MAX];

	runfile(vm, "vmm.pid", p, sizeof(p));
	unlink(p);
	runfile(vm, "api.sock", p, sizeof(p));
	unlink(p);
	isolate_vm_ended(&vm->def);   /* its empty cgroup leaf */
}

/* For an error message: the last line of the VM's vmm.log that says
 * "error: " (vireo-vmm's one-line reason, before any register dump), else
 * its last line. */
static void last_log_line(const struct vm *vm, char *out, size_t len)
{
	char p[PATH_MAX], buf[8192];
	ssize_t n;
	int fd;

	out[0] = '\0';
	runfile(vm, "vmm.log", p, sizeof(p));
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
	n = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	const char *pick = NULL, *last = NULL;
	for (char *l = buf, *nl; *l; l = nl + 1) {
		nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		if (*l) {
			last = l;
			if (strstr(l, "error: "))
				pick = l;
		}
		if (!nl)
			break;
	}
	if (!pick)
		pick = last;
	if (!pick)
		return;
	size_t ln = strlen(pick) < len - 1 ? strlen(pick) : len - 1;
	memcpy(out, pick, ln);
	out[ln] = '\0';
}

static int write_pidfile(const struct vm *vm, pid_t pid, unsigned long long st)
{
	char p[PATH_MAX], tmp[PATH_MAX], line[64];
	int fd, n;

	runfile(vm, "vmm.pid", p, sizeof(p));
	runfile(vm, "vmm.pid.tmp", tmp, sizeof(tmp));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = snprintf(line, sizeof(line), "%d %llu\n", (int)pid, st);
	if (vio_write_full(fd, line, (size_t)n) || fsync(fd)) {
		close(fd);
		unlink(tmp);
		return -EIO;
	}
	close(fd);
	if (rename(tmp, p))
		return -errno;
	return 0;
}

static void close_fds_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0) == 0)
		return;
#endif
	for (int fd = lowfd; fd < 65536; fd++)
		close(fd);
}

/* Whether vireo-vmm's GET /vm answer says a VM runs (or is paused). */
static bool vmm_state_up(const char *body)
{
	json_object *o = json_tokener_parse(body), *st;
	bool up = false;

	if (o && json_object_object_get_ex(o, "state", &st) && json_object_is_type(st, json_type_string))
		up = !strcmp(json_object_get_string(st), "running") ||
		     !strcmp(json_object_get_string(st), "paused");
	json_object_put(o);
	return up;
}

/* Start vireo-vmm for @vm (op lock held, no process).  HTTP status. */
static int spawn(struct vm *vm, bool restart, char *err, size_t errlen)
{
	return spawn_ex(vm, restart, NULL, err, errlen);
}

int spawn_ex(struct vm *vm, bool restart, const char *restore_dir, char *err, size_t errlen)
{
	return spawn_full(vm, restart, restore_dir, NULL, NULL, NULL, err, errlen);
}

/* argv + "--incoming URI" (argv freed on failure). */
static char **argv_add_incoming(char **argv, const char *uri)
{
	size_t n = 0;

	while (argv[n])
		n++;
	char **a = realloc(argv, (n + 3) * sizeof(*a));
	char *k = strdup("--incoming"), *v = strdup(uri);
	if (!a || !k || !v) {
		free(k);
		free(v);
		vmdef_argv_free(a ? a : argv);
		return NULL;
	}
	a[n] = k;
	a[n + 1] = v;
	a[n + 2] = NULL;
	return a;
}

int spawn_full(struct vm *vm, bool restart, const char *restore_dir, const char *incoming,
	       void (*forked)(void *opaque, pid_t pid), void *opaque, char *err, size_t errlen)
{
	char dir[PATH_MAX], logp[PATH_MAX], sock[PATH_MAX];
	struct vmdef def;
	char **argv;
	pid_t pid;
	int logfd;

	pthread_mutex_lock(&reg_lock);
	def = vm->def;
	pthread_mutex_unlock(&reg_lock);
	rundir(vm, dir, sizeof(dir));
	if (mkdir(dir, 0700) && errno != EEXIST)
		return status_err(500, err, errlen, "cannot make %s: %s", dir, strerror(errno));
	cleanup_runfiles(vm);
	runfile(vm, "vmm.log", logp, sizeof(logp));
	runfile(vm, "api.sock", sock, sizeof(sock));
	/* Each start begins a fresh log (the previous one is kept as .1). */
	char old[PATH_MAX];
	runfile(vm, "vmm.log.1", old, sizeof(old));
	rename(logp, old);
	logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return status_err(500, err, errlen, "cannot open %s: %s", logp, strerror(errno));
	/* NICs on a virtual network: a tap on its bridge each, handed to
	 * vireo-vmm as fds 3, 4, ... (vmdef_vmm_argv()). */
	int taps[VMDEF_MAX_NICS], ntaps = 0;
	for (unsigned i = 0; i < def.nr_nics; i++) {
		char tapname[IF_NAMESIZE], e[300];
		if (def.nics[i].type != VMDEF_NIC_NETWORK)
			continue;
		int s = network_tap_open(def.nics[i].network, tapname, sizeof(tapname), &taps[ntaps],
					 e, sizeof(e));
		if (s != 200) {
			while (ntaps > 0)
				close(taps[--ntaps]);
			close(logfd);
			return status_err(s == 404 || s == 409 ? 409 : s, err, errlen, "%s: nics[%u]: %s",
					  def.name, i, e);
		}
		vinfo("%s: nics[%u] on network %s: tap %s", def.name, i, def.nics[i].network, tapname);
		ntaps++;
	}
	argv = vmdef_vmm_argv(&def, cfg.vmm_path, dir);
	if (argv && vm_argv_console_restore(argv, restore_dir)) {
		vmdef_argv_free(argv);
		argv = NULL;
	}
	if (argv && incoming)
		argv = argv_add_incoming(argv, incoming);
	int cr = argv ? console_vm_open(def.name, dir, true) : 0;
	if (cr)
		vwarn("%s: no console (%s): its output is dropped", def.name, strerror(-cr));
	if (!argv) {
		while (ntaps > 0)
			close(taps[--ntaps]);
		close(logfd);
		return status_err(500, err, errlen, "out of memory");
	}
	if (isolate_vmm_args(&def, &argv, err, errlen)) {   /* its user and cgroup */
		vmdef_argv_free(argv);
		if (!cr)
			console_vm_close(def.name);
		while (ntaps > 0)
			close(taps[--ntaps]);
		close(logfd);
		return 500;
	}
	pid = fork();
	if (pid == 0) {
		sigset_t none;
		int nul = open("/dev/null", O_RDONLY);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setsid();
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(logfd, 2);
		if (!cr && console_child_stdio(dir))
			dprintf(2, "vireod: cannot open the console FIFOs in %s\n", dir);
		/* the taps to 3, 4, ...: first out of the way, then in place */
		for (int k = 0; k < ntaps; k++)
			taps[k] = fcntl(taps[k], F_DUPFD_CLOEXEC, 64);
		for (int k = 0; k < ntaps; k++)
			if (taps[k] < 0 || dup2(taps[k], 3 + k) != 3 + k)
				_exit(127);
		close_fds_from(3 + ntaps);
		execv(argv[0], argv);
		dprintf(2, "vireod: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int fork_errno = errno;
	vmdef_argv_free(argv);
	close(logfd);
	if (pid < 0 && !cr)
		console_vm_close(def.name);
	while (ntaps > 0)
		close(taps[--ntaps]);
	if (pid < 0)
		return status_err(500, err, errlen, "fork: %s", strerror(fork_errno));
	unsigned long long st = proc_starttime(pid);
	write_pidfile(vm, pid, st);
	pthread_mutex_lock(&reg_lock);
	vm->pid = pid;
	vm->starttime = st;
	vm->child = true;
	vm->state = VM_STARTING;
	/* An incoming process that ends before the guest runs there is no
	 * crash to restart: the migration failed. */
	vm->stop_requested = incoming != NULL;
	vm->incoming = incoming != NULL;
	vm->shutdown_deadline_ms = 0;
	vm->started_ms = mono_ms();
	pthread_mutex_unlock(&reg_lock);
	if (forked)
		forked(opaque, pid);

	/* Wait until its control API answers, or it ends.  vireo-vmm is up
	 * in tens of milliseconds: look again after 1 ms, then twice as long
	 * each time up to START_POLL_MAX_US, so that a start is answered soon
	 * after the VM is built without spinning on a slow one. */
	long long deadline = mono_ms() + (incoming ? INCOMING_TIMEOUT_MS : START_TIMEOUT_MS);
	useconds_t poll_us = 1000;
	for (;;) {
		pthread_mutex_lock(&reg_lock);
		bool alive = vm->pid == pid;
		pthread_mutex_unlock(&reg_lock);
		if (!alive) {
			char line[200];
			last_log_line(vm, line, sizeof(line));
			return status_err(500, err, errlen, "%s: vireo-vmm ended %s%s%s", def.name,
					  incoming ? "before the guest came over" : "at start",
					  line[0] ? ": " : "", line);
		}
		/* Its API answers "shutting-down" until the VM is built (a
		 * migration target that builds it while the stream comes in:
		 * "incoming" until the guest runs). */
		int status = 0;
		char *body = NULL, e[256];
		if (access(sock, F_OK) == 0 &&
		    httpc_request(sock, "GET", "/vm", NULL, 2000, &status, &body, e, sizeof(e)) == 0 &&
		    status == 200 && vmm_state_up(body)) {
			free(body);
			break;
		}
		free(body);
		if (mono_ms() > deadline) {
			kill(pid, SIGKILL);
			return status_err(500, err, errlen, "%s: vireo-vmm's API did not answer within %d s",
					  def.name, (incoming ? INCOMING_TIMEOUT_MS : START_TIMEOUT_MS) / 1000);
		}
		usleep(poll_us);
		if (poll_us < START_POLL_MAX_US)
			poll_us = poll_us * 2 < START_POLL_MAX_US ? poll_us * 2 : START_POLL_MAX_US;
	}
	pthread_mutex_lock(&reg_lock);
	if (vm->pid == pid && vm->state == VM_STARTING)
		vm->state = VM_RUNNING;
	if (restart)
		vm->restarts++;
	if (incoming) {
		vm->incoming = false;
		vm->stop_requested = false;
	}
	pthread_mutex_unlock(&reg_lock);
	if (incoming)
		emit(def.name, "migrated-in", "pid %d, from %.100s", (int)pid, incoming);
	else if (restore_dir)
		emit(def.name, "restored", "pid %d, from %.100s", (int)pid, restore_dir);
	else
		emit(def.name, restart ? "restarted" : "started", "pid %d", (int)pid);
	return 204;
}

/* The VM's process ended (reg_lock held). */
static void on_exit_locked(struct vm *vm, bool known, int wstatus)
{
	long long now = mono_ms();
	bool clean = known && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
	bool reboot = known && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 3;
	bool requested = vm->stop_requested;
	char how[64];

	if (!known)
		snprintf(how, sizeof(how), "exit status unknown (adopted process)");
	else if (WIFEXITED(wstatus))
		snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(wstatus));
	else
		snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(wstatus));
	vm->pid = 0;
	vm->child = false;
	vm->incoming = false;
	vm->last_exit = known ? wstatus : -1;
	vm->shutdown_deadline_ms = 0;
	cleanup_runfiles(vm);
	console_vm_close(vm->def.name);
	pthread_cond_broadcast(&vm->cond);
	if (clean || requested || reboot) {
		vm->state = VM_SHUTOFF;
		emit(vm->def.name, reboot && !requested ? "rebooting" : "stopped", "%s", how);
	} else {
		vm->state = VM_CRASHED;
		emit(vm->def.name, "crashed", "%s", how);
	}
	if (vm->deleted || requested || monitor_stop)
		return;
	bool again = reboot || vm->def.restart == VMDEF_RESTART_ALWAYS ||
		     (vm->def.restart == VMDEF_RESTART_ON_FAILURE && !clean);
	if (!again)
		return;
	if (now - vm->started_ms >= STABLE_MS || reboot)
		vm->fail_streak = 0;
	long long delay = reboot ? 0 : 1000LL << (vm->fail_streak < 6 ? vm->fail_streak : 6);
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	if (!reboot)
		vm->fail_streak++;
	vm->restart_at_ms = now + delay;
	vm->restart_pending = true;
}

static void *restart_main(void *arg)
{
	struct vm *vm = arg;
	char err[512];

	pthread_mutex_lock(&vm->op);
	pthread_mutex_lock(&reg_lock);
	bool go = vm->restart_pending && !vm->deleted && vm->pid == 0 && !monitor_stop;
	vm->restart_pending = false;
	pthread_mutex_unlock(&reg_lock);
	if (go && spawn(vm, true, err, sizeof(err)) != 204)
		vwarn("%s: restart failed: %s", vm->def.name, err);
	op_end(vm);   /* the monitor's reference */
	return NULL;
}

static void *monitor_main(void *arg)
{
	(void)arg;
	while (!monitor_stop) {
		long long now = mono_ms();
		struct vm *due[64];
		int ndue = 0;

		pthread_mutex_lock(&reg_lock);
		for (struct vm *vm = vms; vm; vm = vm->next) {
			if (vm->pid) {
				if (vm->child) {
					int ws;
					pid_t r = waitpid(vm->pid, &ws, WNOHANG);
					if (r == vm->pid)
						on_exit_locked(vm, true, ws);
					else if (r < 0 && errno == ECHILD)
						on_exit_locked(vm, false, 0);
				} else if (proc_starttime(vm->pid) != vm->starttime) {
					on_exit_locked(vm, false, 0);
				}
			}
			if (vm->pid && vm->shutdown_deadline_ms && now >= vm->shutdown_deadline_ms) {
				vm->shutdown_deadline_ms = 0;
				vwarn("%s: still running after the shutdown timeout: SIGTERM", vm->def.name);
				kill(vm->pid, SIGTERM);
			}
			if (vm->restart_pending && now >= vm->restart_at_ms && vm->restart_at_ms &&
			    ndue < (int)VIREO_ARRAY_SIZE(due)) {
				vm->restart_at_ms = 0;   /* restart_main clears restart_pending */
				vm->refs++;   /* for restart_main */
				due[ndue++] = vm;
			}
		}
		pthread_mutex_unlock(&reg_lock);
		for (int i = 0; i < ndue; i++) {
			pthread_t t;
			if (pthread_create(&t, NULL, restart_main, due[i]) == 0)
				pthread_detach(t);
			else
				vm_unref(due[i]);
		}
		usleep(MONITOR_TICK_MS * 1000);
	}
	return NULL;
}

/* Adopt the VM's vireo-vmm if its pid file names it (startup). */
static void adopt(struct vm *vm)
{
	char p[PATH_MAX], sock[PATH_MAX];
	unsigned long long st;
	int pid;
	FILE *f;

	runfile(vm, "vmm.pid", p, sizeof(p));
	f = fopen(p, "re");
	if (!f)
		return;
	int n = fscanf(f, "%d %llu", &pid, &st);
	fclose(f);
	if (n != 2 || pid <= 1 || proc_starttime(pid) != st || !proc_is_vmm(pid, vm)) {
		vinfo("%s: stale pid file (no such vireo-vmm process): removed", vm->def.name);
		cleanup_runfiles(vm);
		return;
	}
	vm->pid = pid;
	vm->starttime = st;
	vm->child = false;
	vm->state = VM_RUNNING;
	vm->started_ms = mono_ms();
	char dir[PATH_MAX];
	rundir(vm, dir, sizeof(dir));
	if (console_vm_open(vm->def.name, dir, false))
		vinfo("%s: no console FIFOs in %s: adopted without a console", vm->def.name, dir);
	runfile(vm, "api.sock", sock, sizeof(sock));
	int status = 0;
	char *body = NULL, e[256];
	if (httpc_request(sock, "GET", "/vm", NULL, 5000, &status, &body, e, sizeof(e)) == 0 &&
	    status == 200 && strstr(body, "\"state\":\"paused\""))
		vm->state = VM_PAUSED;
	free(body);
	emit(vm->def.name, "adopted", "pid %d, %s", pid, state_names[vm->state]);
}

static int load_one(void *opaque, const char *name, const char *json)
{
	struct vmdef def;
	char err[256];

	(void)opaque;
	if (vmdef_parse(json, strlen(json), &def, err, sizeof(err)) || strcmp(def.name, name)) {
		vwarn("stored definition of '%s' is invalid (%s): skipped", name, err);
		return 0;
	}
	struct vm *vm = vm_new(&def);
	if (!vm)
		return -ENOMEM;
	adopt(vm);
	pthread_mutex_lock(&reg_lock);
	vm->next = vms;
	vms = vm;
	pthread_mutex_unlock(&reg_lock);
	return 0;
}

int vms_init(const struct vm_config *c)
{
	pthread_condattr_t ca;
	int r;

	cfg = *c;
	if ((r = console_init())) {
		verr("cannot start the console thread: %s", strerror(-r));
		return r;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ev_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (mkdir(cfg.run_dir, 0700) && errno != EEXIST) {
		r = -errno;
		verr("cannot make %s: %s", cfg.run_dir, strerror(errno));
		return r;
	}
	r = store_vm_list(cfg.store, load_one, NULL);
	if (r) {
		verr("cannot load the definitions: %s", strerror(-r));
		return r;
	}
	monitor_stop = false;
	r = pthread_create(&monitor_thread, NULL, monitor_main, NULL);
	if (r) {
		verr("cannot start the monitor thread: %s", strerror(r));
		return -r;
	}
	monitor_running = true;
	return 0;
}

static void *autostart_main(void *arg)
{
	char names[256][VMDEF_NAME_MAX + 1];
	int n = 0;

	(void)arg;
	pthread_mutex_lock(&reg_lock);
	for (struct vm *vm = vms; vm && n < 256; vm = vm->next)
		if (!vm->deleted && vm->def.autostart && !vm->pid)
			snprintf(names[n++], sizeof(names[0]), "%s", vm->def.name);
	pthread_mutex_unlock(&reg_lock);
	for (int i = 0; i < n && !monitor_stop; i++) {
		char err[512];
		vinfo("%s: autostart", names[i]);
		int s = vm_start(names[i], err, sizeof(err));
		if (s != 204 && s != 409)
			vwarn("%s: autostart failed: %s", names[i], err);
	}
	return NULL;
}

void vms_autostart(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, autostart_main, NULL) == 0)
		pthread_detach(t);
}

void vms_shutdown(void)
{
	if (!monitor_running)
		return;
	monitor_stop = true;
	pthread_mutex_lock(&ev_lock);
	pthread_cond_broadcast(&ev_cond);
	pthread_mutex_unlock(&ev_lock);
	pthread_join(monitor_thread, NULL);
	monitor_running = false;
	console_shutdown();
}

void gen_uuid(char out[37])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
		/* Not cryptographic, only unique enough. */
		unsigned long long t = (unsigned long long)vtime_ns() ^ ((unsigned long long)getpid() << 32);
		for (int i = 0; i < 16; i++)
			b[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)(i * 37);
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* A MAC for each NIC on a virtual network that has none: kept from @old
 * (the same NIC of the same network), else random, locally administered
 * and unicast; stored with the definition, so stable. */
static void gen_macs(struct vmdef *def, const struct vmdef *old)
{
	for (unsigned i = 0; i < def->nr_nics; i++) {
		struct vmdef_nic *n = &def->nics[i];
		if (n->type != VMDEF_NIC_NETWORK || n->mac[0])
			continue;
		if (old && i < old->nr_nics && old->nics[i].type == VMDEF_NIC_NETWORK &&
		    !strcmp(old->nics[i].network, n->network) && old->nics[i].mac[0]) {
			memcpy(n->mac, old->nics[i].mac, sizeof(n->mac));
			continue;
		}
		unsigned char b[6];
		if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
			unsigned long long t = (unsigned long long)vtime_ns() ^ (unsigned long long)i << 40;
			for (int k = 0; k < 6; k++)
				b[k] = (unsigned char)(t >> (k * 8));
		}
		b[0] = (unsigned char)((b[0] & 0xfc) | 0x02);
		snprintf(n->mac, sizeof(n->mac), "%02x:%02x:%02x:%02x:%02x:%02x",
			 b[0], b[1], b[2], b[3], b[4], b[5]);
	}
}

int vms_define(const struct vmdef *in, char *err, size_t errlen)
{
	struct vmdef def = *in;
	char *json;
	int r, status;

	if (!def.uuid[0])
		gen_uuid(def.uuid);
	gen_macs(&def, NULL);
	json = vmdef_to_json(&def);
	if (!json)
		return status_err(500, err, errlen, "out of memory");
	struct vm *vm = vm_new(&def);
	if (!vm) {
		free(json);
		return status_err(500, err, errlen, "out of memory");
	}
	pthread_mutex_lock(&define_lock);
	pthread_mutex_lock(&reg_lock);
	bool taken = find_locked(def.name) != NULL;
	pthread_mutex_unlock(&reg_lock);
	if (taken) {
		status = status_err(409, err, errlen, "name: a VM named '%s' is already defined", def.name);
		goto fail;
	}
	r = store_vm_add(cfg.store, def.name, def.uuid, json);
	if (r == -EEXIST) {
		status = status_err(409, err, errlen, "name: a VM named '%s' is already defined", def.name);
		goto fail;
	} else if (r == -ENOTUNIQ) {
		status = status_err(409, err, errlen, "uuid: %s is already the uuid of another VM", def.uuid);
		goto fail;
	} else if (r) {
		status = status_err(500, err, errlen, "the store could not save the definition");
		goto fail;
	}
	pthread_mutex_lock(&reg_lock);
	vm->next = vms;
	vms = vm;
	pthread_mutex_unlock(&reg_lock);
	pthread_mutex_unlock(&define_lock);
	free(json);
	emit(def.name, "defined", "%s", def.uuid);
	networks_vms_changed();
	snprintf(err, errlen, "%s", def.uuid);
	return 201;
fail:
	pthread_mutex_unlock(&define_lock);
	pthread_mutex_destroy(&vm->op);
	pthread_cond_destroy(&vm->cond);
	free(vm);
	free(json);
	return status;
}

bool running_locked(const struct vm *vm)
{
	return vm->pid != 0;
}

/* Send @sig to the VM's process if it still is that process (reg_lock held). */
static void signal_locked(struct vm *vm, int sig)
{
	if (!vm->pid)
		return;
	if (vm->child || proc_starttime(vm->pid) == vm->starttime)
		kill(vm->pid, sig);
}

/* Wait (reg_lock held) until the process is gone or @ms pass. */
static bool wait_gone_locked(struct vm *vm, pid_t pid, long long ms)
{
	struct timespec dl;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += ms / 1000;
	dl.tv_nsec += (ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	while (vm->pid == pid)
		if (pthread_cond_timedwait(&vm->cond, &reg_lock, &dl) == ETIMEDOUT)
			return vm->pid != pid;
	return true;
}

int destroy_locked_op(struct vm *vm, char *err, size_t errlen)
{
	pthread_mutex_lock(&reg_lock);
	vm->restart_pending = false;
	if (!running_locked(vm)) {
		pthread_mutex_unlock(&reg_lock);
		return status_err(409, err, errlen, "%s is not running", vm->def.name);
	}
	pid_t pid = vm->pid;
	vm->stop_requested = true;
	signal_locked(vm, SIGTERM);
	if (!wait_gone_locked(vm, pid, DESTROY_TERM_MS)) {
		vwarn("%s: no end %d s after SIGTERM: SIGKILL", vm->def.name, DESTROY_TERM_MS / 1000);
		signal_locked(vm, SIGKILL);
		if (!wait_gone_locked(vm, pid, 10000)) {
			pthread_mutex_unlock(&reg_lock);
			return status_err(500, err, errlen, "%s: vireo-vmm (pid %d) did not end",
					  vm->def.name, (int)pid);
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return 204;
}

int vms_redefine(const struct vmdef *in, char *err, size_t errlen)
{
	struct vmdef def = *in;
	struct vm *vm = op_begin(def.name, err, errlen);
	int status = 204;

	if (!vm)
		return 404;
	pthread_mutex_lock(&reg_lock);
	bool running = running_locked(vm);
	struct vmdef *cur = malloc(sizeof(*cur));
	if (cur)
		*cur = vm->def;
	pthread_mutex_unlock(&reg_lock);
	if (!cur) {
		status = status_err(500, err, errlen, "out of memory");
		goto out;
	}
	if (def.uuid[0] && strcmp(def.uuid, cur->uuid)) {
		status = status_err(400, err, errlen, "uuid: cannot change (it is %s)", cur->uuid);
		free(cur);
		goto out;
	}
	memcpy(def.uuid, cur->uuid, sizeof(def.uuid));
	gen_macs(&def, cur);
	/* A running VM's autostart and restart policy may change (they do not
	 * touch its process); anything else waits for it to stop. */
	bool only_policy = false;
	if (running) {
		struct vmdef *t = malloc(sizeof(*t));
		if (t) {
			*t = def;
			t->autostart = cur->autostart;
			t->restart = cur->restart;
			only_policy = !memcmp(t, cur, sizeof(*t));
			free(t);
		}
	}
	free(cur);
	if (running && !only_policy) {
		status = status_err(409, err, errlen, "%s is running: shut it down before changing "
				    "more than autostart and restart", def.name);
		goto out;
	}
	char *json = vmdef_to_json(&def);
	if (!json) {
		status = status_err(500, err, errlen, "out of memory");
		goto out;
	}
	int r = store_vm_update(cfg.store, def.name, json);
	free(json);
	if (r) {
		status = status_err(500, err, errlen, "the store could not save the definition");
		goto out;
	}
	pthread_mutex_lock(&reg_lock);
	vm->def = def;
	pthread_mutex_unlock(&reg_lock);
	emit(def.name, "redefined", "%s", "");
	networks_vms_changed();
out:
	op_end(vm);
	return status;
}

int vms_undefine(const char *name, bool force, char *err, size_t errlen)
{
	struct vm *vm = op_begin(name, err, errlen);
	int status;

	if (!vm)
		return 404;
	pthread_mutex_lock(&reg_lock);
	bool running = running_locked(vm);
	pthread_mutex_unlock(&reg_lock);
	if (running && !force) {
		op_end(vm);
		return status_err(409, err, errlen, "%s is running: destroy it first (or force)", name);
	}
	if (running && (status = destroy_locked_op(vm, err, errlen)) != 204) {
		op_end(vm);
		return status;
	}
	pthread_mutex_lock(&define_lock);
	int r = store_vm_delete(cfg.store, name);
	if (r && r != -ENOENT) {
		pthread_mutex_unlock(&define_lock);
		op_end(vm);
		return status_err(500, err, errlen, "the store could not delete the definition");
	}
	pthread_mutex_lock(&reg_lock);
	vm->deleted = true;
	vm->restart_pending = false;
	pthread_mutex_unlock(&reg_lock);
	pthread_mutex_unlock(&define_lock);
	/* Its run dir and logs go with it. */
	char dir[PATH_MAX], p[PATH_MAX];
	static const char *const files[] = { "console.log", "console.log.1", "console.in",
					     "console.out", "vmm.log", "vmm.log.1", "vmm.pid.tmp" };
	cleanup_runfiles(vm);
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(files); i++) {
		runfile(vm, files[i], p, sizeof(p));
		unlink(p);
	}
	rundir(vm, dir, sizeof(dir));
	rmdir(dir);
	op_end(vm);
	emit(name, "undefined", "%s", "");
	networks_vms_changed();
	return 204;
}

int vm_incoming_abort(const char *name, char *err, size_t errlen)
{
	pthread_mutex_lock(&reg_lock);
	struct vm *vm = find_locked(name);
	int status = 204;
	if (!vm)
		status = status_err(404, err, errlen, "no VM named '%s'", name);
	else if (!vm->incoming || !vm->pid)
		status = status_err(409, err, errlen, "%s is not waiting for a migration", name);
	else
		kill(vm->pid, SIGKILL);
	pthread_mutex_unlock(&reg_lock);
	return status;
}

int vm_start(const char *name, char *err, size_t errlen)
{
	struct vm *vm = op_begin(name, err, errlen);
	int status;

	if (!vm)
		return 404;
	pthread_mutex_lock(&reg_lock);
	bool running = running_locked(vm);
	vm->restart_pending = false;
	vm->fail_streak = 0;
	pthread_mutex_unlock(&reg_lock);
	if (running)
		status = status_err(409, err, errlen, "%s is already running", name);
	else
		status = spawn(vm, false, err, errlen);
	op_end(vm);
	return status;
}

/* A request to the VM's vireo-vmm API; returns its status or 500/502. */
static int vmm_call(struct vm *vm, const char *method, const char *path, char **body,
		    char *err, size_t errlen)
{
	return vmm_call_body(vm, method, path, NULL, VMM_API_TIMEOUT_MS, body, err, errlen);
}

int vmm_call_body(struct vm *vm, const char *method, const char *path, const char *req,
		  int timeout_ms, char **body, char *err, size_t errlen)
{
	char sock[PATH_MAX], e[256];
	int status = 0;
	char *resp = NULL;

	runfile(vm, "api.sock", sock, sizeof(sock));
	if (httpc_request(sock, method, path, req, timeout_ms, &status, &resp, e, sizeof(e)))
		return status_err(502, err, errlen, "%s: vireo-vmm's API: %s", vm->def.name, e);
	if (status >= 300) {
		/* Pass on vireo-vmm's own message. */
		json_object *o = json_tokener_parse(resp);
		json_object *m;
		const char *msg = o && json_object_object_get_ex(o, "error", &m) ?
			json_object_get_string(m) : resp;
		snprintf(err, errlen, "%s: %s", vm->def.name, msg ? msg : "");
		json_object_put(o);
	}
	if (body)
		*body = resp;
	else
		free(resp);
	return status;
}

int require_state(struct vm *vm, enum vm_state want, const char *what, char *err, size_t errlen)
{
	pthread_mutex_lock(&reg_lock);
	enum vm_state s = vm->state;
	bool running = running_locked(vm);
	pthread_mutex_unlock(&reg_lock);
	if (!running)
		return status_err(409, err, errlen, "%s is not running", vm->def.name);
	if (s != want)
		return status_err(409, err, errlen, "%s is %s: cannot %s", vm->def.name,
				  state_names[s], what);
	return 0;
}

int vm_shutdown(const char *name, unsigned timeout_s, char *err, size_t errlen)
{
	struct vm *vm = op_begin(name, err, errlen);
	int status;

	if (!vm)
		return 404;
	status = require_state(vm, VM_RUNNING, "shut it down (resume it first)", err, errlen);
	if (!status) {
		/* Asked before the press: the guest may power off, and the
		 * monitor see an adopted VM's end (exit status unknown), before
		 * the press is answered. */
		pthread_mutex_lock(&reg_lock);
		bool was_requested = vm->stop_requested;
		vm->stop_requested = true;
		pthread_mutex_unlock(&reg_lock);
		status = vmm_call(vm, "PUT", "/vm/shutdown", NULL, err, errlen);
		pthread_mutex_lock(&reg_lock);
		if (status == 204 && vm->pid)
			vm->shutdown_deadline_ms = timeout_s ? mono_ms() + timeout_s * 1000LL : 0;
		else if (vm->pid)
			vm->stop_requested = was_requested;
		pthread_mutex_unlock(&reg_lock);
		if (status == 204)
			emit(name, "shutdown", "ACPI power button pressed");
	}
	op_end(vm);
	return status;
}

int vm_destroy(const char *name, char *err, size_t errlen)
{
	struct vm *vm = op_begin(name, err, errlen);

	if (!vm)
		return 404;
	int status = destroy_locked_op(vm, err, errlen);
	op_end(vm);
	return status;
}

static int pause_resume(const char *name, bool pause, char *err, size_t errlen)
{
	struct vm *vm = op_begin(name, err, errlen);
	int status;

	if (!vm)
		return 404;
	status = require_state(vm, pause ? VM_RUNNING : VM_PAUSED, pause ? "suspend it" : "resume it",
			       err, errlen);
	if (!status) {
		status = vmm_call(vm, "PUT", pause ? "/vm/pause" : "/vm/resume", NULL, err, errlen);
		if (status == 204) {
			pthread_mutex_lock(&reg_lock);
			if (vm->pid)
				vm->state = pause ? VM_PAUSED : VM_RUNNING;
			pthread_mutex_unlock(&reg_lock);
			emit(name, pause ? "paused" : "resumed", "%s", "");
		} else if (status < 500) {
			status = 409;
		}
	}
	op_end(vm);
	return status;
}

int vm_suspend(const char *name, char *err, size_t errlen)
{
	return pause_resume(name, true, err, errlen);
}

int vm_resume(const char *name, char *err, size_t errlen)
{
	return pause_resume(name, false, err, errlen);
}

static json_object *summary_locked(const struct vm *vm)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(vm->def.name));
	json_object_object_add(o, "uuid", json_object_new_string(vm->def.uuid));
	json_object_object_add(o, "state", json_object_new_string(state_names[vm->state]));
	json_object_object_add(o, "pid", vm->pid ? json_object_new_int(vm->pid) : NULL);
	json_object_object_add(o, "autostart", json_object_new_boolean(vm->def.autostart));
	return o;
}

static char *to_string_free(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = s ? strdup(s) : NULL;
	json_object_put(o);
	return out;
}

char *vms_list_json(void)
{
	json_object *a = json_object_new_array();
	struct vm *sorted[4096];
	size_t n = 0;

	pthread_mutex_lock(&reg_lock);
	for (struct vm *vm = vms; vm && n < VIREO_ARRAY_SIZE(sorted); vm = vm->next)
		if (!vm->deleted)
			sorted[n++] = vm;
	/* By name (insertion sort: the list is short). */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(sorted[j - 1]->def.name, sorted[j]->def.name) > 0; j--) {
			struct vm *t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, summary_locked(sorted[i]));
	pthread_mutex_unlock(&reg_lock);
	return to_string_free(a);
}

char *vm_info_json(const char *name, int *status)
{
	char sock[PATH_MAX];
	json_object *o;
	bool running;

	pthread_mutex_lock(&reg_lock);
	struct vm *vm = find_locked(name);
	if (!vm) {
		pthread_mutex_unlock(&reg_lock);
		*status = 404;
		return NULL;
	}
	o = summary_locked(vm);
	json_object_object_add(o, "cpus", json_object_new_int((int)vm->def.cpus));
	json_object_object_add(o, "memory_mib", json_object_new_int64((int64_t)vm->def.memory_mib));
	json_object_object_add(o, "restart", json_object_new_string(vmdef_restart_name(vm->def.restart)));
	json_object_object_add(o, "restarts", json_object_new_int((int)vm->restarts));
	json_object *ex = NULL;
	if (vm->last_exit >= 0 && WIFEXITED(vm->last_exit))
		ex = json_object_new_int(WEXITSTATUS(vm->last_exit));
	else if (vm->last_exit >= 0)
		ex = json_object_new_int(128 + WTERMSIG(vm->last_exit));
	json_object_object_add(o, "last_exit_status", ex);
	char *def = vmdef_to_json(&vm->def);
	json_object_object_add(o, "definition", def ? json_tokener_parse(def) : NULL);
	free(def);
	running = vm->pid != 0 && vm->state != VM_STARTING;
	runfile(vm, "api.sock", sock, sizeof(sock));
	char dir[PATH_MAX];
	rundir(vm, dir, sizeof(dir));
	json_object_object_add(o, "run_dir", json_object_new_string(dir));
	pthread_mutex_unlock(&reg_lock);
	/* vireo-vmm's own view, outside the locks. */
	json_object *v = NULL;
	if (running) {
		int st = 0;
		char *body = NULL, e[256];
		if (httpc_request(sock, "GET", "/vm", NULL, 5000, &st, &body, e, sizeof(e)) == 0 && st == 200)
			v = json_tokener_parse(body);
		free(body);
	}
	json_object_object_add(o, "vmm", v);
	*status = 200;
	return to_string_free(o);
}

bool vms_uses_path(const char *path, char *who, size_t wholen, bool *running)
{
	char want[PATH_MAX], have[PATH_MAX];
	bool found = false;

	if (!realpath(path, want))
		snprintf(want, sizeof(want), "%s", path);
	pthread_mutex_lock(&reg_lock);
	for (struct vm *vm = vms; vm && !found; vm = vm->next) {
		if (vm->deleted)
			continue;
		for (unsigned i = 0; i < vm->def.nr_disks && !found; i++) {
			const char *d = vm->def.disks[i].path;
			if (!strcmp(d, path) || !strcmp(d, want) ||
			    (realpath(d, have) && !strcmp(have, want))) {
				snprintf(who, wholen, "%s", vm->def.name);
				*running = running_locked(vm);
				found = true;
			}
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return found;
}

bool vms_network_users(const char *net, char *who, size_t wholen)
{
	bool found = false;

	pthread_mutex_lock(&reg_lock);
	for (struct vm *vm = vms; vm && !found; vm = vm->next) {
		if (vm->deleted || !vm->pid)
			continue;
		for (unsigned i = 0; i < vm->def.nr_nics && !found; i++) {
			if (vm->def.nics[i].type == VMDEF_NIC_NETWORK && !strcmp(vm->def.nics[i].network, net)) {
				snprintf(who, wholen, "%s", vm->def.name);
				found = true;
			}
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return found;
}

void vms_network_hosts(void (*cb)(void *opaque, const char *vm, const char *net,
				  const char *mac, const char *ip), void *opaque)
{
	pthread_mutex_lock(&reg_lock);
	for (struct vm *vm = vms; vm; vm = vm->next) {
		if (vm->deleted)
			continue;
		for (unsigned i = 0; i < vm->def.nr_nics; i++) {
			const struct vmdef_nic *n = &vm->def.nics[i];
			if (n->type == VMDEF_NIC_NETWORK)
				cb(opaque, vm->def.name, n->network, n->mac, n->ip);
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

char *vm_console_log_json(const char *name, int *status)
{
	char p[PATH_MAX];
	char *buf = NULL;
	ssize_t n = 0;
	off_t size = 0;

	pthread_mutex_lock(&reg_lock);
	struct vm *vm = find_locked(name);
	if (vm)
		runfile(vm, "console.log", p, sizeof(p));
	pthread_mutex_unlock(&reg_lock);
	if (!vm) {
		*status = 404;
		return NULL;
	}
	buf = malloc(VM_CONSOLE_LOG_MAX + 1);
	if (!buf) {
		*status = 500;
		return NULL;
	}
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		size = lseek(fd, 0, SEEK_END);
		off_t from = size > VM_CONSOLE_LOG_MAX ? size - VM_CONSOLE_LOG_MAX : 0;
		n = pread(fd, buf, VM_CONSOLE_LOG_MAX, from);
		close(fd);
		if (n < 0)
			n = 0;
	}
	/* Short: the end of the rotated log (console.c) comes first. */
	char old[PATH_MAX + 4];
	snprintf(old, sizeof(old), "%s.1", p);
	fd = n < VM_CONSOLE_LOG_MAX ? open(old, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	if (fd >= 0) {
		off_t osize = lseek(fd, 0, SEEK_END);
		if (osize < 0)
			osize = 0;
		off_t want = VM_CONSOLE_LOG_MAX - n;
		off_t from = osize > want ? osize - want : 0;
		memmove(buf + (osize - from), buf, (size_t)n);
		ssize_t m = pread(fd, buf, (size_t)(osize - from), from);
		close(fd);
		if (m == osize - from) {
			n += m;
			size += osize;
		} else {
			memmove(buf, buf + (osize - from), (size_t)n);
		}
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "log", json_object_new_string_len(buf, (int)n));
	json_object_object_add(o, "truncated", json_object_new_boolean(size > VM_CONSOLE_LOG_MAX));
	free(buf);
	*status = 200;
	return to_string_free(o);
}
