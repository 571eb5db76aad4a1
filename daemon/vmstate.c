/* vireod's VM-state operations (vmstate.h). */
#include "vmstate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <vireo/img.h>
#include <vireo/util.h>

#include "isolate.h"
#include "vm-priv.h"

#define SAVE_TIMEOUT_MS   (10 * 60 * 1000)
#define SANDBOX_UID       65534   /* vireo-vmm's default --user */
#define CLONE_CHUNK       (1024 * 1024)

static void prog_set_op(const char *vm, const char *op, const char *file, uint64_t done,
			uint64_t total);

/* ---- vireo-vmm's command line ------------------------------------------------ */

/* ---- helpers ------------------------------------------------------------------- */

static char *json_str(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *r = s ? strdup(s) : NULL;
	json_object_put(o);
	return r;
}

VIREO_PRINTF(3, 4)
static int fail(int status, char **resp, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(msg));
	*resp = json_str(o);
	return status;
}

static bool is_running(struct vm *vm, enum vm_state *st)
{
	pthread_mutex_lock(&reg_lock);
	bool r = running_locked(vm);
	if (st)
		*st = vm->state;
	pthread_mutex_unlock(&reg_lock);
	return r;
}

/* Wait until the VM's process is gone (it was told to end). */
static bool wait_stopped(struct vm *vm, int ms)
{
	for (int i = 0; i < ms / 50; i++) {
		if (!is_running(vm, NULL))
			return true;
		usleep(50000);
	}
	return !is_running(vm, NULL);
}

/* The first writable qcow2 disk: where vireo-vmm puts a snapshot's
 * directory (its path + ".snap-NAME").  NULL when none. */
static const char *snap_base(const struct vmdef *def)
{
	for (unsigned i = 0; i < def->nr_disks; i++)
		if (def->disks[i].qcow2 && !def->disks[i].readonly)
			return def->disks[i].path;
	return NULL;
}

/* ---- reboot ---------------------------------------------------------------------- */

static int do_reboot(struct vm *vm, char **resp)
{
	char err[1024];
	int s;

	if (!is_running(vm, NULL))
		return fail(409, resp, "%s is not running", vm->def.name);
	/* vireo-vmm has no reset in its API: a new process boots the VM (a cold
	 * reset; the guest is not asked). */
	if ((s = destroy_locked_op(vm, err, sizeof(err))) != 204)
		return fail(s, resp, "%s", err);
	if ((s = spawn_ex(vm, false, NULL, err, sizeof(err))) != 204)
		return fail(s, resp, "%s", err);
	emit(vm->def.name, "rebooted", "%s", "a new vireo-vmm boots it");
	return 204;
}

/* ---- save and restore -------------------------------------------------------------- */

static int write_tag(const char *dir, const struct vmdef *def)
{
	char p[PATH_MAX], tmp[PATH_MAX];
	json_object *o = json_object_new_object();

	json_object_object_add(o, "vm", json_object_new_string(def->name));
	json_object_object_add(o, "uuid", json_object_new_string(def->uuid));
	char *s = json_str(o);
	if (!s)
		return -ENOMEM;
	snprintf(p, sizeof(p), "%s/%s", dir, VMSTATE_SAVE_TAG);
	snprintf(tmp, sizeof(tmp), "%s/%s.new", dir, VMSTATE_SAVE_TAG);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int r = fd < 0 ? -errno : 0;
	if (!r && (vio_write_full(fd, s, strlen(s)) || vio_write_full(fd, "\n", 1)))
		r = -EIO;
	if (fd >= 0)
		close(fd);
	if (!r && rename(tmp, p))
		r = -errno;
	if (r)
		unlink(tmp);
	free(s);
	return r;
}

/* Who vireo-vmm's sandbox makes a save's files as: its --user (vireod's
 * isolation gives each VM its own), else vireo-vmm's default user. */
static void sandbox_owner(const struct vmdef *def, uid_t *uid, gid_t *gid)
{
	char err[256], **argv = vmdef_vmm_argv(def, "vireo-vmm", "/");

	*uid = SANDBOX_UID;
	*gid = SANDBOX_UID;
	if (!argv)
		return;
	if (isolate_vmm_args(def, &argv, err, sizeof(err)) == 0) {
		for (size_t i = 0; argv[i] && argv[i + 1]; i++) {
			unsigned long u, g;
			if (strcmp(argv[i], "--user"))
				continue;
			if (sscanf(argv[i + 1], "%lu:%lu", &u, &g) == 2 && u < UINT32_MAX && g < UINT32_MAX) {
				*uid = (uid_t)u;
				*gid = (gid_t)g;
			}
		}
	}
	vmdef_argv_free(argv);
}

static int do_save(struct vm *vm, const char *dir, char **resp)
{
	char err[1024];
	enum vm_state st;
	struct stat sb;

	if (!vmstate_clean_abs_path(dir))
		return fail(400, resp, "dir: give an absolute path (no . or .. components)");
	if (!is_running(vm, &st) || (st != VM_RUNNING && st != VM_PAUSED))
		return fail(409, resp, "%s is not running", vm->def.name);
	bool made = mkdir(dir, 0700) == 0;
	if (!made && errno != EEXIST)
		return fail(400, resp, "dir: cannot make %s: %s", dir, strerror(errno));
	if (lstat(dir, &sb) || !S_ISDIR(sb.st_mode))
		return fail(400, resp, "dir: %s is not a directory", dir);
	/* As root vireo-vmm runs sandboxed, its files made as its user: a
	 * directory made here is handed to it (one that exists is left as it
	 * is: its owner decides who writes there). */
	uid_t ou = SANDBOX_UID;
	gid_t og = SANDBOX_UID;
	if (made && geteuid() == 0)
		sandbox_owner(&vm->def, &ou, &og);
	if (made && geteuid() == 0 && chown(dir, ou, og)) {
		int e = errno;
		rmdir(dir);
		return fail(500, resp, "dir: cannot hand %s to the sandbox's user: %s", dir,
			    strerror(e));
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "dir", json_object_new_string(dir));
	json_object_object_add(o, "exit", json_object_new_boolean(true));
	char *body = json_str(o);
	if (!body)
		return fail(500, resp, "out of memory");
	/* Its end is asked for: no restart. */
	pthread_mutex_lock(&reg_lock);
	vm->stop_requested = true;
	pthread_mutex_unlock(&reg_lock);
	char mem[PATH_MAX];
	/* vireo-vmm writes memory.new, renamed to memory at the end. */
	snprintf(mem, sizeof(mem), "%s/memory.new", dir);
	prog_set_op(vm->def.name, "save", mem, 0, vm->def.memory_mib << 20);
	int s = vmm_call_body(vm, "PUT", "/vm/save", body, SAVE_TIMEOUT_MS, NULL, err, sizeof(err));
	prog_set_op(NULL, NULL, NULL, 0, 0);
	free(body);
	if (s != 204) {
		pthread_mutex_lock(&reg_lock);
		vm->stop_requested = false;
		pthread_mutex_unlock(&reg_lock);
		return fail(s >= 500 ? s : 409, resp, "%s", err);
	}
	int r = write_tag(dir, &vm->def);
	if (!wait_stopped(vm, 30000))
		vwarn("%s: vireo-vmm still runs 30 s after its save", vm->def.name);
	if (r)
		return fail(500, resp, "%s saved in %s, but %s could not be written: %s", vm->def.name,
			    dir, VMSTATE_SAVE_TAG, strerror(-r));
	emit(vm->def.name, "saved", "%.100s", dir);
	return 204;
}

/* Which VM a save (or snapshot) directory holds: its tag file. */
static int read_tag(const char *dir, char *name, char *uuid, char **resp)
{
	char p[PATH_MAX], buf[4097];
	ssize_t n;

	if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, VMSTATE_SAVE_TAG) >= sizeof(p))
		return fail(400, resp, "dir: too long");
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return fail(errno == ENOENT ? 404 : 400, resp, "%s: %s (not a save made by vireod?)", p,
			    strerror(errno));
	struct stat sb;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		close(fd);
		return fail(400, resp, "%s: not a regular file", p);
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || n == sizeof(buf) - 1)
		return fail(400, resp, "%s: empty or larger than 4 KiB", p);
	if (vmstate_parse_tag(buf, (size_t)n, name, uuid))
		return fail(400, resp, "%s: not a valid vireod save tag", p);
	return 0;
}

static int do_restore(const char *dir, char **resp)
{
	char name[VMDEF_NAME_MAX + 1], uuid[37], err[1024], state[PATH_MAX];
	struct stat sb;
	int s;

	if (!vmstate_clean_abs_path(dir))
		return fail(400, resp, "dir: give an absolute path (no . or .. components)");
	if ((s = read_tag(dir, name, uuid, resp)))
		return s;
	snprintf(state, sizeof(state), "%s/state", dir);
	if (lstat(state, &sb) || !S_ISREG(sb.st_mode))
		return fail(400, resp, "%s has no state file: not a complete save", dir);
	struct vm *vm = op_begin(name, err, sizeof(err));
	if (!vm)
		return fail(404, resp, "%s holds a save of %s, which is not defined", dir, name);
	if (strcmp(vm->def.uuid, uuid)) {
		op_end(vm);
		return fail(409, resp, "%s holds a save of another VM named %s (uuid %s, not %s)", dir,
			    name, uuid, vm->def.uuid);
	}
	if (is_running(vm, NULL)) {
		op_end(vm);
		return fail(409, resp, "%s is running: destroy it before a restore", name);
	}
	pthread_mutex_lock(&reg_lock);
	vm->restart_pending = false;
	vm->fail_streak = 0;
	pthread_mutex_unlock(&reg_lock);
	s = spawn_ex(vm, false, dir, err, sizeof(err));
	op_end(vm);
	if (s != 204)
		return fail(s, resp, "%s", err);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	*resp = json_str(o);
	return 200;
}

/* ---- snapshots ---------------------------------------------------------------------- */

static int snap_dir(const struct vmdef *def, const char *snap, char *out, size_t len, char **resp)
{
	const char *base = snap_base(def);

	if (!base)
		return fail(409, resp, "%s has no writable qcow2 disk: no internal snapshots", def->name);
	if ((size_t)snprintf(out, len, "%s.snap-%s", base, snap) >= len)
		return fail(400, resp, "the snapshot's directory name is too long");
	return 0;
}

static int do_snap_create(struct vm *vm, const char *snap, char **resp)
{
	char err[1024], dir[PATH_MAX];
	enum vm_state st;
	int s;

	if (!vmstate_snap_name_ok(snap))
		return fail(400, resp, "name: a letter, then up to 63 letters, digits, '.', '_' or '-'");
	if ((s = snap_dir(&vm->def, snap, dir, sizeof(dir), resp)))
		return s;
	if (!is_running(vm, &st) || (st != VM_RUNNING && st != VM_PAUSED))
		return fail(409, resp, "%s is not running: a snapshot holds its memory too", vm->def.name);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(snap));
	char *body = json_str(o);
	if (!body)
		return fail(500, resp, "out of memory");
	s = vmm_call_body(vm, "PUT", "/vm/snapshot", body, SAVE_TIMEOUT_MS, NULL, err, sizeof(err));
	free(body);
	if (s != 204)
		return fail(s >= 500 ? s : 409, resp, "%s", err);
	int r = write_tag(dir, &vm->def);
	if (r)
		vwarn("%s: snapshot %s: cannot write %s/%s: %s", vm->def.name, snap, dir,
		      VMSTATE_SAVE_TAG, strerror(-r));
	emit(vm->def.name, "snapshot", "created %s", snap);
	return 204;
}

static int do_snap_list(struct vm *vm, char **resp)
{
	const char *base = snap_base(&vm->def);
	json_object *a = json_object_new_array();

	if (base) {
		struct vimg_open_opts oo = { .format = "qcow2", .readonly = true, .no_backing = true,
					     .force_share = true };
		struct vimg *img;
		struct vimg_snapshot *sn = NULL;
		char e[256];
		int n = 0;
		int r = vimg_open(base, &oo, &img, e, sizeof(e));
		if (r) {
			json_object_put(a);
			return fail(500, resp, "%s: %s", base, e);
		}
		r = vimg_snapshot_list(img, &sn, &n);
		if (r) {
			vimg_close(img);
			json_object_put(a);
			return fail(500, resp, "%s: cannot list its snapshots: %s", base, strerror(-r));
		}
		for (int i = 0; i < n; i++) {
			char dir[PATH_MAX], state[PATH_MAX + 8];
			struct stat sb;
			json_object *o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string(sn[i].name));
			json_object_object_add(o, "id", json_object_new_string(sn[i].id));
			json_object_object_add(o, "date", json_object_new_int64(sn[i].date_sec));
			json_object_object_add(o, "disk_size", json_object_new_int64((int64_t)sn[i].disk_size));
			snprintf(dir, sizeof(dir), "%s.snap-%s", base, sn[i].name);
			snprintf(state, sizeof(state), "%s/state", dir);
			bool has = lstat(state, &sb) == 0 && S_ISREG(sb.st_mode);
			json_object_object_add(o, "dir", has ? json_object_new_string(dir) : NULL);
			json_object_object_add(o, "has_state", json_object_new_boolean(has));
			json_object_array_add(a, o);
		}
		free(sn);
		vimg_close(img);
	}
	*resp = json_str(a);
	return *resp ? 200 : fail(500, resp, "out of memory");
}

static int do_snap_revert(struct vm *vm, const char *snap, char **resp)
{
	char err[1024], dir[PATH_MAX], state[PATH_MAX + 8];
	struct stat sb;
	int s;

	if (!vmstate_snap_name_ok(snap))
		return fail(404, resp, "no snapshot named '%.64s' (not a valid name)", snap);
	if ((s = snap_dir(&vm->def, snap, dir, sizeof(dir), resp)))
		return s;
	snprintf(state, sizeof(state), "%s/state", dir);
	if (lstat(state, &sb) || !S_ISREG(sb.st_mode))
		return fail(404, resp, "%s has no snapshot %s (no %s)", vm->def.name, snap, state);
	if (is_running(vm, NULL) && (s = destroy_locked_op(vm, err, sizeof(err))) != 204)
		return fail(s, resp, "%s", err);
	pthread_mutex_lock(&reg_lock);
	vm->restart_pending = false;
	pthread_mutex_unlock(&reg_lock);
	/* vireo-vmm reverts the disks to the snapshot, then runs its memory. */
	if ((s = spawn_ex(vm, false, dir, err, sizeof(err))) != 204)
		return fail(s, resp, "%s", err);
	emit(vm->def.name, "snapshot", "reverted to %s", snap);
	return 204;
}

static int do_snap_delete(struct vm *vm, const char *snap, char **resp)
{
	char dir[PATH_MAX], p[PATH_MAX + 16];
	unsigned had = 0;
	int s;

	if (!vmstate_snap_name_ok(snap))
		return fail(404, resp, "no snapshot named '%.64s' (not a valid name)", snap);
	if ((s = snap_dir(&vm->def, snap, dir, sizeof(dir), resp)))
		return s;
	if (is_running(vm, NULL))
		return fail(409, resp, "%s is running: its images are in use (shut it down first)",
			    vm->def.name);
	for (unsigned i = 0; i < vm->def.nr_disks; i++) {
		const struct vmdef_disk *d = &vm->def.disks[i];
		if (!d->qcow2 || d->readonly)
			continue;
		struct vimg_open_opts oo = { .format = "qcow2", .no_backing = true };
		struct vimg *img;
		char e[256];
		int r = vimg_open(d->path, &oo, &img, e, sizeof(e));
		if (r)
			return fail(r == -EBUSY ? 409 : 500, resp, "%s: %s", d->path, e);
		r = vimg_snapshot_delete(img, snap);
		int rc = vimg_close(img);
		if (r == -ENOENT)
			continue;
		if (r || rc)
			return fail(500, resp, "%s: cannot delete snapshot %s: %s", d->path, snap,
				    strerror(-(r ? r : rc)));
		had++;
	}
	/* Its memory and state files. */
	static const char *const files[] = { "state", "memory", VMSTATE_SAVE_TAG };
	bool files_gone = false;
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(files); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		if (unlink(p) == 0)
			files_gone = true;
	}
	if (rmdir(dir) == 0)
		files_gone = true;
	if (!had && !files_gone)
		return fail(404, resp, "%s has no snapshot %s", vm->def.name, snap);
	emit(vm->def.name, "snapshot", "deleted %s", snap);
	return 204;
}

/* ---- clone ---------------------------------------------------------------------------- */

static pthread_mutex_t prog_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char vm[VMDEF_NAME_MAX + 1];
	const char *op;
	uint64_t done, total;
	char file[PATH_MAX];    /* save: its memory file, whose blocks are done */
} prog;

static void prog_set_op(const char *vm, const char *op, const char *file, uint64_t done,
			uint64_t total)
{
	pthread_mutex_lock(&prog_lock);
	snprintf(prog.vm, sizeof(prog.vm), "%s", vm ? vm : "");
	prog.op = op;
	snprintf(prog.file, sizeof(prog.file), "%s", file ? file : "");
	prog.done = done;
	prog.total = total;
	pthread_mutex_unlock(&prog_lock);
}

static void prog_set(const char *vm, uint64_t done, uint64_t total)
{
	prog_set_op(vm, "clone", NULL, done, total);
}

static int do_progress(const char *name, char **resp)
{
	char file[PATH_MAX];
	struct stat sb;

	pthread_mutex_lock(&prog_lock);
	bool mine = prog.vm[0] && !strcmp(prog.vm, name);
	uint64_t d = prog.done, t = prog.total;
	const char *op = prog.op;
	snprintf(file, sizeof(file), "%s", prog.file);
	pthread_mutex_unlock(&prog_lock);
	if (!mine)
		return fail(404, resp, "%s has no operation under way", name);
	/* A save: vireo-vmm writes guest RAM's non-zero pages into the memory
	 * file (zero pages stay holes), so its blocks say how far it got. */
	if (file[0] && lstat(file, &sb) == 0 && S_ISREG(sb.st_mode))
		d = VIREO_MIN((uint64_t)sb.st_blocks * 512, t);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "operation", json_object_new_string(op));
	json_object_object_add(o, "done", json_object_new_int64((int64_t)d));
	json_object_object_add(o, "total", json_object_new_int64((int64_t)t));
	*resp = json_str(o);
	return 200;
}

static bool all_zero(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* Copy @src into a new image @dst of the same format (through the image
 * library: qcow2 clusters that read as zeros stay unallocated). */
static int copy_image(const char *vmname, const char *src, bool qcow2, const char *dst,
		      uint64_t *done, uint64_t total, char *e, size_t elen)
{
	struct vimg_open_opts so = { .format = qcow2 ? "qcow2" : "raw", .readonly = true };
	struct vimg *in = NULL, *out = NULL;
	unsigned char *buf = NULL;
	int r = vimg_open(src, &so, &in, e, elen);

	if (r)
		return r;
	struct vimg_create_opts co = { .format = qcow2 ? VIMG_FMT_QCOW2 : VIMG_FMT_RAW,
				       .size = vimg_size(in) };
	if ((r = vimg_create(dst, &co, e, elen)))
		goto out;
	struct vimg_open_opts oo = { .format = qcow2 ? "qcow2" : "raw", .forbid_backing = true };
	if ((r = vimg_open(dst, &oo, &out, e, elen)))
		goto out;
	buf = malloc(CLONE_CHUNK);
	if (!buf) {
		r = -ENOMEM;
		snprintf(e, elen, "out of memory");
		goto out;
	}
	uint64_t size = vimg_size(in);
	for (uint64_t off = 0; off < size; off += CLONE_CHUNK) {
		size_t n = (size_t)VIREO_MIN((uint64_t)CLONE_CHUNK, size - off);
		if ((r = vimg_pread(in, buf, n, off))) {
			snprintf(e, elen, "%.200s: read at %llu: %s", src, (unsigned long long)off, strerror(-r));
			goto out;
		}
		if (!all_zero(buf, n) && (r = vimg_pwrite(out, buf, n, off))) {
			snprintf(e, elen, "%.200s: write at %llu: %s", dst, (unsigned long long)off, strerror(-r));
			goto out;
		}
		*done += n;
		prog_set(vmname, *done, total);
	}
out:
	free(buf);
	if (out) {
		int rc = vimg_close(out);
		if (!r && rc) {
			r = rc;
			snprintf(e, elen, "%.200s: %s", dst, strerror(-rc));
		}
	}
	if (in)
		vimg_close(in);
	return r;
}

static int do_clone(struct vm *vm, const char *newname, const char *mode, char **resp)
{
	char made[VMDEF_MAX_DISKS][VMDEF_PATH_MAX + 1], e[512];
	unsigned nmade = 0;
	int status;
	bool linked;

	if (!strcmp(mode, "") || !strcmp(mode, "linked"))
		linked = true;
	else if (!strcmp(mode, "full"))
		linked = false;
	else
		return fail(400, resp, "mode: \"linked\" or \"full\"");
	if (!vmdef_name_ok(newname))
		return fail(400, resp, "name: 1 to 63 of A-Z a-z 0-9 . _ -, starting with a letter or digit");
	if (is_running(vm, NULL))
		return fail(409, resp, "%s is running: shut it down before cloning it (its disks "
			    "change under a copy)", vm->def.name);
	int st = 0;
	char *info = vm_info_json(newname, &st);
	free(info);
	if (st == 200)
		return fail(409, resp, "name: a VM named '%s' is already defined", newname);
	struct vmdef *def = malloc(sizeof(*def));
	if (!def)
		return fail(500, resp, "out of memory");
	pthread_mutex_lock(&reg_lock);
	*def = vm->def;
	pthread_mutex_unlock(&reg_lock);
	snprintf(def->name, sizeof(def->name), "%s", newname);
	def->uuid[0] = '\0';
	def->autostart = false;
	/* A NIC on a virtual network gets a MAC of its own at define (as
	 * virt-clone gives new ones), and no fixed address of the source's. */
	for (unsigned i = 0; i < def->nr_nics; i++) {
		def->nics[i].mac[0] = '\0';
		def->nics[i].ip[0] = '\0';
	}
	/* The new disks: beside the source's, NEW-diskI.qcow2 (or .img). */
	uint64_t total = 0, done = 0;
	/* What a full clone copies: the writable disks' virtual sizes. */
	for (unsigned i = 0; i < def->nr_disks && !linked; i++) {
		struct vimg_open_opts oo = { .format = def->disks[i].qcow2 ? "qcow2" : "raw",
					     .readonly = true, .no_backing = true, .force_share = true };
		struct vimg *im;
		if (!def->disks[i].readonly && vimg_open(def->disks[i].path, &oo, &im, e, sizeof(e)) == 0) {
			total += vimg_size(im);
			vimg_close(im);
		}
	}
	prog_set(vm->def.name, 0, total);
	for (unsigned i = 0; i < def->nr_disks; i++) {
		struct vmdef_disk *d = &def->disks[i];
		char path[VMDEF_PATH_MAX + 1], dir[VMDEF_PATH_MAX + 1];
		struct stat sb;
		if (d->readonly)
			continue;   /* shared: it cannot change */
		snprintf(dir, sizeof(dir), "%s", d->path);
		char *slash = strrchr(dir, '/');
		if (!slash) {
			status = fail(400, resp, "disks[%u]: %s is not an absolute path", i, d->path);
			goto undo;
		}
		slash[1] = '\0';
		bool qcow2 = linked || d->qcow2;
		if ((size_t)snprintf(path, sizeof(path), "%s%s-disk%u.%s", dir, newname, i,
				     qcow2 ? "qcow2" : "img") >= sizeof(path)) {
			status = fail(400, resp, "disks[%u]: the clone's path is too long", i);
			goto undo;
		}
		if (lstat(path, &sb) == 0) {
			status = fail(409, resp, "disks[%u]: %s exists already", i, path);
			goto undo;
		}
		e[0] = '\0';
		int r;
		if (linked) {
			struct vimg_create_opts co = { .format = VIMG_FMT_QCOW2, .backing = d->path,
						       .backing_fmt = d->qcow2 ? "qcow2" : "raw" };
			r = vimg_create(path, &co, e, sizeof(e));
		} else {
			r = copy_image(vm->def.name, d->path, d->qcow2, path, &done, total, e, sizeof(e));
		}
		if (r) {
			if (lstat(path, &sb) == 0)
				snprintf(made[nmade++], sizeof(made[0]), "%s", path);
			status = fail(500, resp, "disks[%u]: %s", i,
				      e[0] ? e : strerror(-r));
			goto undo;
		}
		snprintf(made[nmade++], sizeof(made[0]), "%s", path);
		snprintf(d->path, sizeof(d->path), "%s", path);
		d->qcow2 = qcow2;
	}
	char err[512];
	status = vms_define(def, err, sizeof(err));
	if (status != 201) {
		status = fail(status, resp, "%s", err);
		goto undo;
	}
	prog_set(NULL, 0, 0);
	emit(vm->def.name, "cloned", "%s %s (uuid %s)", linked ? "linked" : "full", newname, err);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(newname));
	json_object_object_add(o, "uuid", json_object_new_string(err));
	json_object *disks = json_object_new_array();
	for (unsigned i = 0; i < nmade; i++)
		json_object_array_add(disks, json_object_new_string(made[i]));
	json_object_object_add(o, "disks", disks);
	*resp = json_str(o);
	free(def);
	return 201;
undo:
	prog_set(NULL, 0, 0);
	for (unsigned i = 0; i < nmade; i++)
		unlink(made[i]);
	free(def);
	return status;
}

/* ---- the API ------------------------------------------------------------------------------ */

int vmstate_api(enum vmstate_op op, const char *name, const char *arg, const char *body,
		size_t body_len, char **resp)
{
	static const char *const k_dir[] = { "dir", NULL };
	static const char *const k_name[] = { "name", NULL };
	static const char *const k_clone[] = { "name", "mode", NULL };
	char (*vals)[VMSTATE_FIELD_MAX + 1] = NULL;
	char err[1024];
	int s;

	*resp = NULL;
	const char *const *keys = op == VMSTATE_SAVE || op == VMSTATE_RESTORE ? k_dir :
				  op == VMSTATE_SNAP_CREATE ? k_name : op == VMSTATE_CLONE ? k_clone : NULL;
	if (keys) {
		vals = calloc(2, sizeof(*vals));
		if (!vals)
			return fail(500, resp, "out of memory");
		if (vmstate_body_fields(body, body_len, keys, vals, err, sizeof(err))) {
			free(vals);
			return fail(400, resp, "%s", err);
		}
		if (!vals[0][0]) {
			free(vals);
			return fail(400, resp, "%s: missing", keys[0]);
		}
	}
	if (op == VMSTATE_RESTORE) {
		s = do_restore(vals[0], resp);
		free(vals);
		return s;
	}
	if (op == VMSTATE_PROGRESS)
		return do_progress(name, resp);
	struct vm *vm = op_begin(name, err, sizeof(err));
	if (!vm) {
		free(vals);
		return fail(404, resp, "%s", err);
	}
	switch (op) {
	case VMSTATE_REBOOT: s = do_reboot(vm, resp); break;
	case VMSTATE_SAVE: s = do_save(vm, vals[0], resp); break;
	case VMSTATE_CLONE: s = do_clone(vm, vals[0], vals[1], resp); break;
	case VMSTATE_SNAP_LIST: s = do_snap_list(vm, resp); break;
	case VMSTATE_SNAP_CREATE: s = do_snap_create(vm, vals[0], resp); break;
	case VMSTATE_SNAP_REVERT: s = do_snap_revert(vm, arg, resp); break;
	case VMSTATE_SNAP_DELETE: s = do_snap_delete(vm, arg, resp); break;
	default: s = fail(500, resp, "unhandled operation"); break;
	}
	op_end(vm);
	free(vals);
	return s;
}
