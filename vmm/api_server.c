/*
 * The control API's server: the Unix socket, libmicrohttpd driven from a
 * thread of our own (role "api" in filters.c), and the operations on the
 * VM that runs (api.h).
 *
 * The socket is made and the daemon set up before the sandbox's lock
 * (main.c), in the host's file system; the daemon has no thread of its
 * own (MHD_USE_EPOLL): the API thread polls its epoll descriptor and a
 * stop eventfd, then calls MHD_run().  The thread lives as long as the
 * process, across VMs (--on-reboot restart): main.c binds each VM while
 * it runs.
 *
 * Locks: api_bind_lock guards the bound VM; the API thread holds it for
 * the whole of one operation on the VM, so main.c's unbind waits for it
 * before the VM goes.  It is above every lock of vmm/README.md's order:
 * under it an operation takes a device lock (the balloon's) or the
 * runstate's pause lock or vm_call's lock (leaves), never the other way
 * round.  Device work (the power button, the balloon) runs on the event
 * loop through vm_call(): it raises interrupts with KVM ioctls, which the
 * API's filter does not allow, and takes the device locks there.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <vireo/util.h>

#include "api.h"
#include "filters.h"
#include "migrate.h"
#include "options.h"
#include "sandbox.h"
#include "snapshot.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "vm.h"

static struct {
	const struct vmm_opts *opts;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	int lfd, stop_fd;
	struct MHD_Daemon *mhd;
	pthread_t thread;
	bool open, started;
	pthread_mutex_t bind_lock;
	struct vm *vm;             /* under bind_lock */
	uint64_t vm_start_ns;
} api = { .lfd = -1, .stop_fd = -1, .bind_lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- the operations ------------------------------------------------------------ */

static int api_op_info(void *opaque, struct api_vm_info *out)
{
	(void)opaque;
	pthread_mutex_lock(&api.bind_lock);
	out->vcpus = api.opts->cpus;
	out->memory_mib = api.opts->memory >> 20;
	out->name = api.opts->name;
	out->state = API_STATE_SHUTTING_DOWN;
	/* (no VM yet: a target that builds it while the stream comes in) */
	if (!api.vm && migrate_active())
		out->state = API_STATE_INCOMING;
	if (api.vm) {
		out->uptime_ms = (vtime_ns() - api.vm_start_ns) / 1000000u;
		if (!runstate_stopping(&api.vm->rs))
			out->state = runstate_pause_asked(&api.vm->rs) ? API_STATE_PAUSED
								     : API_STATE_RUNNING;
	}
	pthread_mutex_unlock(&api.bind_lock);
	return 0;
}

static int api_op_pause(void *opaque)
{
	int r = -ESHUTDOWN;

	(void)opaque;
	if (migrate_active())
		return -EINPROGRESS;
	pthread_mutex_lock(&api.bind_lock);
	if (api.vm)
		r = vm_pause(api.vm, API_PAUSE_TIMEOUT_MS);
	pthread_mutex_unlock(&api.bind_lock);
	return r;
}

static int api_op_resume(void *opaque)
{
	int r = -ESHUTDOWN;

	(void)opaque;
	if (migrate_active())
		return -EINPROGRESS;
	pthread_mutex_lock(&api.bind_lock);
	if (api.vm)
		r = vm_resume(api.vm);
	pthread_mutex_unlock(&api.bind_lock);
	return r;
}

/* On the event loop (vm_call): device work that raises interrupts. */
static int api_loop_button(struct vm *vm, void *arg)
{
	(void)arg;
	devices_power_button(&vm->dev);   /* the ACPI PM lock */
	return 0;
}

static int api_loop_balloon_set(struct vm *vm, void *arg)
{
	return virtio_balloon_set_target(vm->dev.balloon, *(uint64_t *)arg);
}

static int api_loop_balloon_get(struct vm *vm, void *arg)
{
	struct api_balloon_info *out = arg;
	struct virtio_balloon_counters c;

	virtio_balloon_get_counters(vm->dev.balloon, &c);
	virtio_balloon_get_stats(vm->dev.balloon, &out->stats);
	/* Fresh statistics for the next GET. */
	virtio_balloon_request_stats(vm->dev.balloon, false);
	out->target_mib = ((uint64_t)c.target_pages * VIRTIO_BALLOON_PAGE) >> 20;
	out->actual_mib = ((uint64_t)c.actual_pages * VIRTIO_BALLOON_PAGE) >> 20;
	out->now_ns = vtime_ns();
	return 0;
}

static int api_op_shutdown(void *opaque)
{
	int r = -ESHUTDOWN;

	(void)opaque;
	pthread_mutex_lock(&api.bind_lock);
	if (api.vm && !runstate_stopping(&api.vm->rs)) {
		if (runstate_pause_asked(&api.vm->rs)) {
			r = -EBUSY;   /* the guest could not see the button */
		} else {
			r = vm_call(api.vm, api_loop_button, NULL);
		}
	}
	pthread_mutex_unlock(&api.bind_lock);
	return r;
}

/* The balloon of the bound VM, or NULL with *r set. */
static struct virtio_dev *api_balloon(int *r)
{
	*r = -ENODEV;
	if (!api.opts->virtio.balloon)
		return NULL;
	*r = -ESHUTDOWN;
	if (!api.vm || runstate_stopping(&api.vm->rs) || !api.vm->dev.balloon)
		return NULL;
	*r = 0;
	return api.vm->dev.balloon;
}

static int api_op_balloon_set(void *opaque, uint64_t mib)
{
	struct virtio_dev *b;
	int r;

	(void)opaque;
	pthread_mutex_lock(&api.bind_lock);
	b = api_balloon(&r);
	if (b) {
		uint64_t bytes = mib << 20;

		r = vm_call(api.vm, api_loop_balloon_set, &bytes);
	}
	pthread_mutex_unlock(&api.bind_lock);
	return r;
}

static int api_op_balloon_get(void *opaque, struct api_balloon_info *out)
{
	struct virtio_dev *b;
	int r;

	(void)opaque;
	pthread_mutex_lock(&api.bind_lock);
	b = api_balloon(&r);
	if (b)
		r = vm_call(api.vm, api_loop_balloon_get, out);
	pthread_mutex_unlock(&api.bind_lock);
	return r;
}

struct api_save {
	const char *dir;
	char *msg;
	size_t msglen;
};

static int api_loop_save(struct vm *vm, void *arg)
{
	struct api_save *s = arg;

	return snapshot_save(vm, s->dir, s->msg, s->msglen);
}

/* Pause (the vCPUs park), save on the event loop, then stay paused, or
 * ask the VM to stop with status 0.  A VM that was running before a failed
 * save runs on. */
static int api_op_save(void *opaque, const char *dir, bool exit_after, char *msg,
		       size_t msglen)
{
	struct api_save s = { dir, msg, msglen };
	bool paused_here = false;
	int r = -ESHUTDOWN;

	(void)opaque;
	if (migrate_active())
		return -EINPROGRESS;
	pthread_mutex_lock(&api.bind_lock);
	if (api.vm && !runstate_stopping(&api.vm->rs)) {
		r = vm_pause(api.vm, API_PAUSE_TIMEOUT_MS);
		paused_here = r == 0;
		if (r == -EALREADY)
			r = 0;
		if (!r)
			r = vm_call(api.vm, api_loop_save, &s);
		if (!r && exit_after) {
			vinfo("saved into %s: exiting", dir);
			runstate_request_stop(&api.vm->rs, VM_STOP_SAVED, 0);
		} else if (!r) {
			vinfo("saved into %s: the VM stays paused", dir);
		} else if (paused_here) {
			vm_resume(api.vm);
		}
	}
	pthread_mutex_unlock(&api.bind_lock);
	return r;
}

struct api_snapshot {
	const char *name, *dir;
	char *msg;
	size_t msglen;
};

static int api_loop_snapshot(struct vm *vm, void *arg)
{
	struct api_snapshot *s = arg;

	return snapshot_take(vm, s->name, s->dir, s->msg, s->msglen);
}

/* Pause (the vCPUs park), take the snapshot on the event loop, then let
 * a VM that was running run on, whatever the outcome. */
static int api_op_snapshot(void *opaque, const char *name, const char *dir, char *msg,
			   size_t msglen)
{
	struct api_snapshot s = { name, dir, msg, msglen };
	bool paused_here = false;
	int r = -ESHUTDOWN;

	(void)opaque;
	if (migrate_active())
		return -EINPROGRESS;
	pthread_mutex_lock(&api.bind_lock);
	if (api.vm && !runstate_stopping(&api.vm->rs)) {
		r = vm_pause(api.vm, API_PAUSE_TIMEOUT_MS);
		paused_here = r == 0;
		if (r == -EALREADY)
			r = 0;
		if (!r)
			r = vm_call(api.vm, api_loop_snapshot, &s);
		if (paused_here)
			vm_resume(api.vm);
	}
	pthread_mutex_unlock(&api.bind_lock);
	return r;
}

/* Stop the VM at once, as SIGTERM does (the teardown flushes the disks),
 * but with exit status 0; a paused VM's parked vCPUs wake to stop. */
static int api_op_poweroff(void *opaque)
{
	int r = -ESHUTDOWN;

	(void)opaque;
	pthread_mutex_lock(&api.bind_lock);
	if (api.vm && !runstate_stopping(&api.vm->rs)) {
		/* A migration under way is cancelled first: the VM stops here
		 * and runs nowhere (main.c's migrate_unbind waits for the
		 * migration thread). */
		if (migrate_cancel() == 0)
			vinfo("PUT /vm/poweroff: cancelling the migration");
		vinfo("PUT /vm/poweroff: stopping the VM");
		runstate_request_stop(&api.vm->rs, VM_STOP_API_POWEROFF, 0);
		r = 0;
	}
	pthread_mutex_unlock(&api.bind_lock);
	return r;
}

/* PUT /migrate: the job goes to the migration thread (migrate.c); this
 * thread does not wait for it. */
static int api_op_migrate_start(void *opaque, const struct migrate_params *p, char *msg,
				size_t msglen)
{
	int r = -ESHUTDOWN;

	(void)opaque;
	pthread_mutex_lock(&api.bind_lock);
	if (!api.vm && migrate_active())
		r = -EINPROGRESS;   /* a target taking its VM in */
	if (api.vm && !runstate_stopping(&api.vm->rs)) {
		r = 0;
		/* Sandboxed, the connection comes from the sandbox's
		 * connector (sandbox_connect). */
		r = snapshot_check_devices(api.vm, "migrated", msg, msglen);
		if (!r)
			r = migrate_start(api.vm, p);
	}
	pthread_mutex_unlock(&api.bind_lock);
	return r;
}

static int api_op_migrate_get(void *opaque, struct migrate_status *out)
{
	(void)opaque;
	migrate_get(out);
	return 0;
}

static int api_op_migrate_cancel(void *opaque)
{
	(void)opaque;
	return migrate_cancel();
}

/* A device's id: its name after "virtio-xxx ". */
static void api_dev_id(char *out, const char *name)
{
	const char *sp = strchr(name, ' ');
	const char *id = sp ? sp + 1 : name;
	size_t n = strnlen(id, API_METRICS_ID - 1);   /* longer ids are cut */

	memcpy(out, id, n);
	out[n] = '\0';
}

/* On the event loop: the devices' counters, each under its own lock. */
static int api_loop_metrics(struct vm *vm, void *arg)
{
	struct api_metrics *m = arg;

	for (unsigned i = 0; i < vm->dev.nr_virtio; i++) {
		struct virtio_dev *d = virtio_pci_vdev(vm->dev.virtio[i]);

		if (d->ops->device_id == VIRTIO_ID_BLOCK && m->nr_disks < API_METRICS_DEVS) {
			struct api_metrics_disk *o = &m->disk[m->nr_disks++];
			struct virtio_blk_stats st;

			virtio_blk_get_stats(d, &st);
			api_dev_id(o->id, d->name);
			o->read_ops = st.read_ops;
			o->read_bytes = st.read_bytes;
			o->write_ops = st.write_ops;
			o->write_bytes = st.write_bytes;
		} else if (d->ops->device_id == VIRTIO_ID_NET && m->nr_nets < API_METRICS_DEVS) {
			struct api_metrics_net *o = &m->net[m->nr_nets++];
			struct virtio_net_stats st;

			virtio_net_get_stats(d, &st);
			api_dev_id(o->id, d->name);
			o->rx_packets = st.rx_frames;
			o->rx_bytes = st.rx_bytes;
			o->tx_packets = st.tx_frames;
			o->tx_bytes = st.tx_bytes;
		}
	}
	if (vm->dev.balloon) {
		struct virtio_balloon_counters c;

		virtio_balloon_get_counters(vm->dev.balloon, &c);
		m->balloon = true;
		m->balloon_target_bytes = (uint64_t)c.target_pages * VIRTIO_BALLOON_PAGE;
		m->balloon_actual_bytes = (uint64_t)c.actual_pages * VIRTIO_BALLOON_PAGE;
	}
	return 0;
}

/* The vCPUs' counters are read here (atomics their threads write), the
 * devices' on the event loop. */
static int api_op_metrics(void *opaque, struct api_metrics *m)
{
	int r = -ESHUTDOWN;

	(void)opaque;
	pthread_mutex_lock(&api.bind_lock);
	if (!api.vm && migrate_active())
		r = -EINPROGRESS;   /* a target taking its VM in */
	if (api.vm && !runstate_stopping(&api.vm->rs)) {
		unsigned n = api.opts->cpus;

		m->vcpu = calloc(n, sizeof(*m->vcpu));
		r = m->vcpu ? 0 : -ENOMEM;
		for (unsigned i = 0; !r && i < n; i++) {
			uint64_t ex[VCPU_EXIT_NR];

			if (!api.vm->vcpus[i])
				continue;
			vcpu_get_stats(api.vm->vcpus[i], ex, &m->vcpu[i].run_ns);
			for (unsigned e = 0; e < VCPU_EXIT_NR && e < API_EXIT_NR; e++)
				m->vcpu[i].exits[e] = ex[e];
		}
		if (!r) {
			m->nr_vcpus = n;
			r = vm_call(api.vm, api_loop_metrics, m);
		}
	}
	pthread_mutex_unlock(&api.bind_lock);
	return r;
}

_Static_assert((int)API_EXIT_NR == (int)VCPU_EXIT_NR, "exit reasons of api.h and vcpu.h");
_Static_assert(DEVICES_MAX_VIRTIO <= API_METRICS_DEVS, "room for every disk and NIC");

static const struct api_ops api_vm_ops = {
	.info = api_op_info, .pause = api_op_pause, .resume = api_op_resume,
	.shutdown = api_op_shutdown, .balloon_set = api_op_balloon_set,
	.balloon_get = api_op_balloon_get, .save = api_op_save,
	.migrate_start = api_op_migrate_start, .migrate_get = api_op_migrate_get,
	.migrate_cancel = api_op_migrate_cancel,
	.snapshot = api_op_snapshot, .poweroff = api_op_poweroff, .metrics = api_op_metrics,
};
static const struct api_ctx api_ctx = { &api_vm_ops, NULL };

void api_server_bind(struct vm *vm)
{
	pthread_mutex_lock(&api.bind_lock);
	api.vm = vm;
	api.vm_start_ns = vtime_ns();
	pthread_mutex_unlock(&api.bind_lock);
}

void api_server_unbind(void)
{
	pthread_mutex_lock(&api.bind_lock);
	api.vm = NULL;
	pthread_mutex_unlock(&api.bind_lock);
}

/* ---- HTTP ------------------------------------------------------------------------ */

struct api_conn {
	char *buf;
	size_t len;       /* kept */
	size_t total;     /* received */
};

static enum MHD_Result api_respond(struct MHD_Connection *c, const char *method,
				   const char *url, const char *body, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status;
	char *text;

	api_handle(&api_ctx, method, url, body, len, &status, &text);
	if (text)
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	else
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	if (text)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					api_content_type(url, status));
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result api_access(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload, size_t *upload_size, void **con_cls)
{
	struct api_conn *ac = *con_cls;

	(void)cls;
	(void)version;
	if (!ac) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		uint64_t n;

		ac = calloc(1, sizeof(*ac));
		if (!ac)
			return MHD_NO;
		*con_cls = ac;
		/* A body announced too large is refused unread. */
		if (cl && vparse_u64(cl, 0, UINT64_MAX, &n) == 0 && n > API_BODY_MAX)
			return api_respond(c, method, url, NULL, (size_t)VIREO_MIN(n, SIZE_MAX));
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;

		ac->total += n;
		if (ac->buf || ac->total == n) {
			if (ac->total > API_BODY_MAX) {
				free(ac->buf);   /* too large: the rest is dropped */
				ac->buf = NULL;
				ac->len = 0;
			} else {
				char *b = realloc(ac->buf, ac->len + n);

				if (!b)
					return MHD_NO;
				memcpy(b + ac->len, upload, n);
				ac->buf = b;
				ac->len += n;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (ac->total > API_BODY_MAX)
		return api_respond(c, method, url, NULL, ac->total);
	return api_respond(c, method, url, ac->buf ? ac->buf : "", ac->len);
}

static void api_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			  enum MHD_RequestTerminationCode toe)
{
	struct api_conn *ac = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (ac) {
		free(ac->buf);
		free(ac);
	}
	*con_cls = NULL;
}

static void *api_thread(void *arg)
{
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(api.mhd, MHD_DAEMON_INFO_EPOLL_FD);
	int epfd = info ? info->epoll_fd : -1;

	(void)arg;
	pthread_setname_np(pthread_self(), "api");
	filters_enter_or_die(VMM_ROLE_API);
	for (;;) {
		struct pollfd pf[2] = {
			{ .fd = epfd, .events = POLLIN }, { .fd = api.stop_fd, .events = POLLIN },
		};
		MHD_UNSIGNED_LONG_LONG to;
		int ms = -1;

		if (MHD_get_timeout(api.mhd, &to) == MHD_YES)
			ms = to > INT_MAX ? INT_MAX : (int)to;
		if (poll(pf, 2, ms) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		MHD_run(api.mhd);
	}
	return NULL;
}

/* ---- the socket ------------------------------------------------------------------- */

/* An existing path: a stale socket (no one listens) goes; anything else
 * is refused.  0 or -errno after printing one line. */
static int api_check_existing(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		verr("--api-socket %s: %s", path, strerror(errno));
		return r;
	}
	if (!S_ISSOCK(st.st_mode)) {
		verr("--api-socket %s: exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (r == 0 || errno != ECONNREFUSED) {
		int e = errno;

		close(fd);
		verr("--api-socket %s: %s", path,
		     r == 0 ? "in use (another vireo-vmm listens there)" : strerror(e));
		return -EADDRINUSE;
	}
	close(fd);
	vinfo("--api-socket %s: replacing a stale socket", path);
	if (unlink(path) && errno != ENOENT) {
		r = -errno;
		verr("--api-socket %s: cannot remove the stale socket: %s", path, strerror(errno));
		return r;
	}
	return 0;
}

static int api_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, r;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		verr("--api-socket '%s': give a path of 1 to %zu characters", path,
		     sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((r = api_check_existing(path, &sa)))
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		verr("--api-socket: socket: %s", strerror(errno));
		return r;
	}
	old = umask(0177);   /* made 0600, no window with more */
	r = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r || listen(fd, 16) || stat(path, &st)) {
		r = -errno;
		verr("--api-socket %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	api.dev = st.st_dev;
	api.ino = st.st_ino;
	snprintf(api.path, sizeof(api.path), "%s", path);
	return fd;
}

int api_server_open(const struct vmm_opts *o)
{
	int fd;

	if (!o->api_socket)
		return 0;
	api.opts = o;
	fd = api_socket(o->api_socket);
	if (fd < 0)
		return fd;
	api.lfd = fd;
	api.open = true;   /* the path is ours: removed at the end */
	if (sandbox_active())
		sandbox_api_socket_made();
	api.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	api.mhd = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, api_access, NULL,
				   MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				   MHD_OPTION_NOTIFY_COMPLETED, api_completed, NULL,
				   MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
				   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				   MHD_OPTION_END);
	if (api.stop_fd < 0 || !api.mhd) {
		verr("--api-socket %s: cannot start the HTTP daemon", api.path);
		api_server_close();
		return -EIO;
	}
	api.lfd = -1;   /* the daemon's now */
	return 0;
}

bool api_server_active(void)
{
	return api.mhd != NULL;
}

int api_server_start(void)
{
	int e;

	if (!api.mhd)
		return 0;
	e = migrate_thread_start();
	if (e)
		return e;
	e = pthread_create(&api.thread, NULL, api_thread, NULL);
	if (e) {
		verr("cannot start the API thread: %s", strerror(e));
		migrate_thread_stop();
		return -e;
	}
	api.started = true;
	return 0;
}

void api_server_close(void)
{
	struct stat st;
	uint64_t one = 1;

	if (api.started) {
		if (write(api.stop_fd, &one, sizeof(one)) < 0) {
			/* an eventfd written once cannot be full */
		}
		pthread_join(api.thread, NULL);
		api.started = false;
		migrate_thread_stop();
	}
	if (api.mhd)
		MHD_stop_daemon(api.mhd);   /* closes the listening socket */
	api.mhd = NULL;
	if (api.lfd >= 0)
		close(api.lfd);
	api.lfd = -1;
	if (api.stop_fd >= 0)
		close(api.stop_fd);
	api.stop_fd = -1;
	/* Without the sandbox the path is still reachable (with it, the
	 * monitor removes it: sandbox.c); only ours, not a successor's. */
	if (api.open && !sandbox_active() && lstat(api.path, &st) == 0 &&
	    st.st_dev == api.dev && st.st_ino == api.ino)
		unlink(api.path);
	api.open = false;
}
