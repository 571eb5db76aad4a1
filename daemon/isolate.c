/*
 * Each VM's vireo-vmm unprivileged and in its own cgroup (isolate.h).
 *
 * vireo-vmm does the work itself (vmm/sandbox.c): started as root it
 * opens /dev/kvm, the kernel, the disks and the taps, then enters its
 * sandbox and drops to --user; --cgroup moves it into a cgroup v2
 * directory with --cpu-max and --memory-max.  vireod only chooses:
 *
 * - the user: uid = gid = BASE + N, one N per VM name (0 <= N < 65536),
 *   kept in STATE_DIR/vm-uids ("UID NAME" lines) so that a VM keeps its
 *   uid across starts and vireod restarts.  A uid that names a user in
 *   the passwd database is skipped; the entry of an undefined VM is
 *   dropped (and its N reused) when a new VM needs one.
 * - the cgroup: ROOT/NAME.UUID, ROOT by default vireo.slice at the top of
 *   the cgroup v2 file system (--cgroup-root).  cpu.max: the VM's vCPUs
 *   plus one CPU for its device and I/O threads; memory.max: its RAM plus
 *   ISOLATE_MEM_OVERHEAD_MIB plus 1/16 of its RAM (page tables, queues,
 *   buffers).  When the cpu or memory controller cannot be enabled there
 *   (a v1 or hybrid hierarchy), the VM still gets its leaf, without that
 *   limit, and the start-up log says so.
 *
 * Not root: vireo-vmm cannot drop or move, and none of this is done (one
 * log line at start-up).
 */
#include "vmdef.h"
#include "isolate.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vireo/util.h>

#include "store.h"

#define ISOLATE_SLOTS            65536
#define ISOLATE_MEM_OVERHEAD_MIB 128
#define CPU_PERIOD_US            100000

static pthread_mutex_t iso_lock = PTHREAD_MUTEX_INITIALIZER;
static char map_path[PATH_MAX];
static uint32_t uid_base;
static struct store *iso_store;
static char cg_root[PATH_MAX];      /* "" when no cgroup */
static bool cg_cpu, cg_mem;
static bool active;

static int write_file(const char *dir, const char *name, const char *val)
{
	char p[PATH_MAX + 64];
	size_t n = strlen(val);
	int r = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, n) != (ssize_t)n)
		r = -errno;
	close(fd);
	return r;
}

/* Whether the controller @ctl is in @dir/cgroup.controllers. */
static bool has_controller(const char *dir, const char *ctl)
{
	char p[PATH_MAX + 64], buf[1024];
	FILE *f;
	bool yes = false;

	snprintf(p, sizeof(p), "%s/cgroup.controllers", dir);
	f = fopen(p, "re");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f))
		for (char *save = NULL, *w = strtok_r(buf, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
			yes |= !strcmp(w, ctl);
	fclose(f);
	return yes;
}

/* The first cgroup2 mount point in /proc/self/mountinfo. */
static int cgroup2_mount(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (r && fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SRC OPTS */
		char *dash = strstr(line, " - ");
		char mp[PATH_MAX], fstype[64];
		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
			continue;
		/* Octal escapes (\040) in a mount point: not ours to guess. */
		if (strchr(mp, '\\') || strlen(mp) >= len)
			continue;
		memcpy(out, mp, strlen(mp) + 1);
		r = 0;
	}
	fclose(f);
	return r;
}

static void cgroup_init(const char *root_opt)
{
	char parent[PATH_MAX];

	cg_root[0] = '\0';
	if (root_opt && !strcmp(root_opt, "none")) {
		vinfo("isolation: --cgroup-root none: VMs run in vireod's cgroup");
		return;
	}
	if (root_opt) {
		snprintf(cg_root, sizeof(cg_root), "%s", root_opt);
	} else {
		char mnt[PATH_MAX - 32];
		if (cgroup2_mount(mnt, sizeof(mnt))) {
			vinfo("isolation: no cgroup v2 file system mounted: VMs run without a cgroup "
			      "of their own");
			return;
		}
		snprintf(cg_root, sizeof(cg_root), "%s/vireo.slice", mnt);
	}
	if (mkdir(cg_root, 0755) && errno != EEXIST) {
		vwarn("isolation: cannot make the cgroup %s: %s: VMs run without a cgroup of their "
		      "own", cg_root, strerror(errno));
		cg_root[0] = '\0';
		return;
	}
	snprintf(parent, sizeof(parent), "%s", cg_root);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	/* The parent must hand cpu and memory down to ROOT, ROOT to its leaves. */
	bool cpu = has_controller(cg_root, "cpu"), mem = has_controller(cg_root, "memory");
	if (!cpu)
		cpu = !write_file(parent, "cgroup.subtree_control", "+cpu") && has_controller(cg_root, "cpu");
	if (!mem)
		mem = !write_file(parent, "cgroup.subtree_control", "+memory") &&
		      has_controller(cg_root, "memory");
	cg_cpu = cpu && !write_file(cg_root, "cgroup.subtree_control", "+cpu");
	cg_mem = mem && !write_file(cg_root, "cgroup.subtree_control", "+memory");
	vinfo("isolation: each VM in a cgroup under %s (%s, %s)", cg_root,
	      cg_cpu ? "cpu.max set" : "no cpu controller there: no cpu.max",
	      cg_mem ? "memory.max set" : "no memory controller there: no memory.max");
}

int isolate_init(const struct isolate_config *c, char *err, size_t errlen)
{
	active = false;
	if (geteuid() != 0) {
		vinfo("isolation: vireod is not root: each vireo-vmm runs as vireod's user, without "
		      "a per-VM user or cgroup");
		return 0;
	}
	if (c->uid_base && (uint64_t)c->uid_base + ISOLATE_SLOTS > 0xfffffffeULL) {
		snprintf(err, errlen, "--vm-uid-base %u: BASE + 65536 must stay below 4294967295",
			 c->uid_base);
		return -1;
	}
	uid_base = c->uid_base;
	iso_store = c->store;
	snprintf(map_path, sizeof(map_path), "%s/vm-uids", c->state_dir);
	if (uid_base)
		vinfo("isolation: each VM's vireo-vmm drops to its own uid and gid, %u + N "
		      "(STATE_DIR/vm-uids)", uid_base);
	else
		vinfo("isolation: --vm-uid-base 0: vireo-vmm drops to its default user (nobody)");
	cgroup_init(c->cgroup_root);
	active = true;
	return 0;
}

struct uid_map {
	size_t n;
	struct { uint32_t slot; char name[VMDEF_NAME_MAX + 1]; } e[ISOLATE_SLOTS];
};

/* Read the map (missing: empty).  Malformed lines are dropped with a
 * warning: the file is vireod's own, but a damaged one must not stop it. */
static int map_load(struct uid_map *m)
{
	FILE *f = fopen(map_path, "re");
	char line[256];

	m->n = 0;
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f) && m->n < ISOLATE_SLOTS) {
		char name[128];
		unsigned long long uid;
		if (sscanf(line, "%llu %127s", &uid, name) != 2 || uid < uid_base ||
		    uid >= (unsigned long long)uid_base + ISOLATE_SLOTS || !vmdef_name_ok(name)) {
			vwarn("%s: dropping a malformed line", map_path);
			continue;
		}
		m->e[m->n].slot = (uint32_t)(uid - uid_base);
		snprintf(m->e[m->n].name, sizeof(m->e[m->n].name), "%.63s", name);
		m->n++;
	}
	fclose(f);
	return 0;
}

static int map_save(const struct uid_map *m)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", map_path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (size_t i = 0; i < m->n; i++)
		fprintf(f, "%llu %s\n", (unsigned long long)uid_base + m->e[i].slot, m->e[i].name);
	if (fflush(f) || fsync(fileno(f))) {
		int r = -errno;
		fclose(f);
		unlink(tmp);
		return r;
	}
	fclose(f);
	if (rename(tmp, map_path)) {
		int r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

/* The uid of VM @name, allocated on its first start.  0 or -errno. */
static int vm_uid(const char *name, uint32_t *uid)
{
	static struct uid_map m;    /* under iso_lock (too big for a stack) */
	static unsigned char used[ISOLATE_SLOTS];
	int r;

	if ((r = map_load(&m)))
		return r;
	for (size_t i = 0; i < m.n; i++) {
		if (!strcmp(m.e[i].name, name)) {
			*uid = uid_base + m.e[i].slot;
			return 0;
		}
	}
	/* Forget the VMs no longer defined, then take the lowest free N. */
	size_t k = 0;
	for (size_t i = 0; i < m.n; i++) {
		char *def = NULL;
		if (iso_store && store_vm_get(iso_store, m.e[i].name, &def) == -ENOENT)
			continue;
		free(def);
		m.e[k++] = m.e[i];
	}
	m.n = k;
	memset(used, 0, sizeof(used));
	for (size_t i = 0; i < m.n; i++)
		used[m.e[i].slot] = 1;
	uint32_t s;
	for (s = 0; s < ISOLATE_SLOTS; s++)
		if (!used[s] && !getpwuid(uid_base + s))
			break;
	if (s == ISOLATE_SLOTS || m.n == ISOLATE_SLOTS)
		return -EUSERS;
	m.e[m.n].slot = s;
	snprintf(m.e[m.n].name, sizeof(m.e[m.n].name), "%.63s", name);
	m.n++;
	if ((r = map_save(&m)))
		return r;
	*uid = uid_base + s;
	return 0;
}

uint64_t isolate_memory_max(const struct vmdef *def)
{
	return (def->memory_mib + ISOLATE_MEM_OVERHEAD_MIB + def->memory_mib / 16) << 20;
}

uint64_t isolate_cpu_quota(const struct vmdef *def)
{
	return ((uint64_t)def->cpus + 1) * CPU_PERIOD_US;
}

static int push(char ***argv, const char *fmt, ...) VIREO_PRINTF(2, 3);
static int push(char ***argv, const char *fmt, ...)
{
	size_t n = 0;
	va_list ap;
	char *s;

	while ((*argv)[n])
		n++;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	char **nv = realloc(*argv, (n + 2) * sizeof(*nv));
	if (!nv) {
		free(s);
		return -ENOMEM;
	}
	nv[n] = s;
	nv[n + 1] = NULL;
	*argv = nv;
	return 0;
}

int isolate_vmm_args(const struct vmdef *def, char ***argv, char *err, size_t errlen)
{
	int r = 0;

	if (!active)
		return 0;
	pthread_mutex_lock(&iso_lock);
	if (uid_base) {
		uint32_t uid;
		if ((r = vm_uid(def->name, &uid))) {
			snprintf(err, errlen, "%s: no uid for its vireo-vmm: %s (%s)", def->name,
				 strerror(-r), map_path);
			goto out;
		}
		if ((r = push(argv, "--user")) || (r = push(argv, "%u:%u", uid, uid)))
			goto oom;
	}
	if (cg_root[0]) {
		if ((r = push(argv, "--cgroup")) ||
		    (r = push(argv, "%s/%s%s%s", cg_root, def->name, def->uuid[0] ? "." : "", def->uuid)))
			goto oom;
		if (cg_cpu && ((r = push(argv, "--cpu-max")) ||
			       (r = push(argv, "%llu:%u", (unsigned long long)isolate_cpu_quota(def),
					 CPU_PERIOD_US))))
			goto oom;
		if (cg_mem && ((r = push(argv, "--memory-max")) ||
			       (r = push(argv, "%llu", (unsigned long long)isolate_memory_max(def)))))
			goto oom;
	}
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
out:
	pthread_mutex_unlock(&iso_lock);
	return r;
}

void isolate_vm_ended(const struct vmdef *def)
{
	char p[PATH_MAX + 200];

	if (!active || !cg_root[0])
		return;
	/* Fails (EBUSY) while a process is left in it: the next start or end
	 * tries again, and vireo-vmm takes an existing leaf as it is. */
	snprintf(p, sizeof(p), "%s/%s%s%s", cg_root, def->name, def->uuid[0] ? "." : "", def->uuid);
	rmdir(p);
}
