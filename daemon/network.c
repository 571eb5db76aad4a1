/*
 * Virtual networks (network.h).
 *
 * One lock (net_lock) serialises the network operations, the supervisor's
 * checks and the taps' creation.  It is taken after a VM's operation lock
 * and before vm.c's registry lock (the hooks of struct net_config take
 * that one), so vm.c never calls in here while it holds its registry or
 * define lock.
 *
 * The bridge and the taps are made over rtnetlink (netlink.c), the
 * nftables table through libnftables (one transaction that replaces the
 * whole table), dnsmasq is run with --keep-in-foreground in its own
 * session, so that it is vireod's child until vireod ends and is adopted
 * by its pid file afterwards.
 */
#include "network.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_tun.h>

#include <json-c/json.h>
#include <nftables/libnftables.h>

#include <vireo/util.h>

#include "netdef.h"
#include "netlink.h"

#define NET_MAX          64
#define TICK_MS          250
#define RESPAWN_MIN_MS   1000
#define RESPAWN_MAX_MS   30000
#define DNSMASQ_SETTLE_MS 400

struct net {
	struct netdef def;
	bool active;
	pid_t pid;                      /* dnsmasq; 0: none */
	unsigned long long starttime;
	bool child;
	unsigned respawns, fail_streak;
	long long respawn_at_ms;        /* 0: none due */
};

static struct net_config cfg;
static pthread_mutex_t net_lock = PTHREAD_MUTEX_INITIALIZER;
static struct net nets[NET_MAX];
static unsigned nnets;
static pthread_t sup_thread;
static bool sup_running;
static volatile bool sup_stop;

VIREO_PRINTF(4, 5)
static int fail(int status, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return status;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *json_out(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *r = s ? strdup(s) : NULL;
	json_object_put(o);
	return r;
}

static struct net *find(const char *name)
{
	for (unsigned i = 0; i < nnets; i++)
		if (!strcmp(nets[i].def.name, name))
			return &nets[i];
	return NULL;
}

static void netfile(const struct net *n, const char *file, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s%s%s", cfg.net_dir, n->def.name, file ? "/" : "", file ? file : "");
}

/* Field 22 of /proc/PID/stat (start time in clock ticks), 0 if none. */
static unsigned long long proc_starttime(pid_t pid)
{
	char p[64], buf[1024];
	unsigned long long st = 0;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *s = strrchr(buf, ')');
	if (!s || s[1] != ' ' || s[2] == 'Z')
		return 0;
	/* after ") ": field 3 is the state; the start time is field 22 */
	s += 2;
	for (int f = 3; f < 22 && s; f++) {
		s = strchr(s, ' ');
		if (s)
			s++;
	}
	if (s)
		st = strtoull(s, NULL, 10);
	return st;
}

/* Whether PID runs dnsmasq with this network's conf file. */
static bool proc_is_dnsmasq(pid_t pid, const struct net *n)
{
	char p[64], buf[4096], conf[PATH_MAX + 16];
	ssize_t len;

	snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return false;
	buf[len] = '\0';
	const char *a0 = strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf;
	if (strcmp(a0, "dnsmasq"))
		return false;
	char cf[PATH_MAX];
	netfile(n, "dnsmasq.conf", cf, sizeof(cf));
	snprintf(conf, sizeof(conf), "--conf-file=%s", cf);
	for (ssize_t off = 0; off < len; off += (ssize_t)strlen(buf + off) + 1)
		if (!strcmp(buf + off, conf))
			return true;
	return false;
}

/* Write @text to @path atomically (a temporary file, then rename). */
static int write_file(const char *path, const char *text, mode_t mode)
{
	char tmp[PATH_MAX + 8];

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) || vio_write_full(fd, text, strlen(text)) || fsync(fd)) {
		int e = errno ? -errno : -EIO;
		close(fd);
		unlink(tmp);
		return e;
	}
	close(fd);
	if (rename(tmp, path)) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	return 0;
}

/* ---- nftables ---- */

static int nft_run(const char *cmds, char *err, size_t errlen)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);

	if (!ctx)
		return fail(-ENOMEM, err, errlen, "nftables: out of memory");
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	int r = nft_run_cmd_from_buffer(ctx, cmds);
	if (r) {
		const char *e = nft_ctx_get_error_buffer(ctx);
		char line[256];
		snprintf(line, sizeof(line), "%s", e && *e ? e : "failed");
		line[strcspn(line, "\n")] = '\0';
		fail(-EIO, err, errlen, "nftables: %s", line);
	}
	nft_ctx_free(ctx);
	return r ? -EIO : 0;
}

static int nft_apply(const struct netdef *d, char *err, size_t errlen)
{
	char cmds[2048], a[16], sub[24];
	int n;

	snprintf(sub, sizeof(sub), "%s/%u", netdef_ip_str(d->addr & netdef_mask(d->prefix), a), d->prefix);
	/* add, delete, add: one transaction that replaces the table */
	n = snprintf(cmds, sizeof(cmds),
		     "add table ip vireo-%s\n"
		     "delete table ip vireo-%s\n"
		     "table ip vireo-%s {\n", d->name, d->name, d->name);
	if (d->mode == NETDEF_NAT)
		n += snprintf(cmds + n, sizeof(cmds) - (size_t)n,
			      "  chain postrouting {\n"
			      "    type nat hook postrouting priority srcnat; policy accept;\n"
			      "    ip saddr %s ip daddr 224.0.0.0/24 return\n"
			      "    ip saddr %s ip daddr 255.255.255.255 return\n"
			      "    ip saddr %s ip daddr != %s masquerade\n"
			      "  }\n"
			      "  chain forward {\n"
			      "    type filter hook forward priority filter; policy accept;\n"
			      "    iifname \"%s\" ip saddr %s accept\n"
			      "    oifname \"%s\" ip daddr %s ct state established,related accept\n"
			      "    iifname \"%s\" drop\n"
			      "    oifname \"%s\" drop\n"
			      "  }\n", sub, sub, sub, sub, d->bridge, sub, d->bridge, sub,
			      d->bridge, d->bridge);
	else
		n += snprintf(cmds + n, sizeof(cmds) - (size_t)n,
			      "  chain forward {\n"
			      "    type filter hook forward priority filter; policy accept;\n"
			      "    iifname \"%s\" drop\n"
			      "    oifname \"%s\" drop\n"
			      "  }\n", d->bridge, d->bridge);
	snprintf(cmds + n, sizeof(cmds) - (size_t)n, "}\n");
	return nft_run(cmds, err, errlen);
}

static void nft_remove(const struct netdef *d)
{
	char cmds[256], err[256];

	snprintf(cmds, sizeof(cmds), "add table ip vireo-%s\ndelete table ip vireo-%s\n",
		 d->name, d->name);
	if (nft_run(cmds, err, sizeof(err)))
		vwarn("network %s: %s", d->name, err);
}

/* ---- dnsmasq ---- */

static const char *dnsmasq_path(void)
{
	static const char *const cands[] = { "/usr/sbin/dnsmasq", "/sbin/dnsmasq",
					     "/usr/local/sbin/dnsmasq", "/usr/bin/dnsmasq" };

	for (size_t i = 0; i < VIREO_ARRAY_SIZE(cands); i++)
		if (access(cands[i], X_OK) == 0)
			return cands[i];
	return NULL;
}

struct hosts_buf {
	const char *net;
	char *text;
	size_t len, cap;
	bool oom;
};

/*
 * Whether a VM's name can be its DHCP host name: a DNS label that starts
 * with a letter, so that dnsmasq cannot read it as anything else in a
 * dhcp-host line (an address, a lease time, "ignore", "infinite").
 */
static bool host_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) ||
	    s[n - 1] == '-' || !strcasecmp(s, "ignore") || !strcasecmp(s, "infinite") ||
	    !strcasecmp(s, "deleted"))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static void hosts_line(void *opaque, const char *vm, const char *net, const char *mac, const char *ip)
{
	struct hosts_buf *h = opaque;
	char line[160];

	if (strcmp(net, h->net) || !mac || !mac[0] || h->oom)
		return;
	/* dnsmasq's dhcp-host syntax: MAC[,IP][,NAME]; a VM name that is
	 * not a host name is left out (the VM still gets its address) */
	bool named = host_name_ok(vm);
	if (!named && !(ip && ip[0]))
		return;
	int n = snprintf(line, sizeof(line), "%s%s%s%s%s\n", mac, ip && ip[0] ? "," : "",
			 ip ? ip : "", named ? "," : "", named ? vm : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (h->len + (size_t)n + 1 > h->cap) {
		size_t cap = (h->cap + (size_t)n + 1) * 2;
		char *t = realloc(h->text, cap);
		if (!t) {
			h->oom = true;
			return;
		}
		h->text = t;
		h->cap = cap;
	}
	memcpy(h->text + h->len, line, (size_t)n + 1);
	h->len += (size_t)n;
}

/* The DHCP hosts file of @n from the VM definitions (net_lock held). */
static int write_hosts(const struct net *n)
{
	struct hosts_buf h = { .net = n->def.name };
	char p[PATH_MAX];

	if (cfg.hosts)
		cfg.hosts(hosts_line, &h);
	if (h.oom) {
		free(h.text);
		return -ENOMEM;
	}
	netfile(n, "hosts", p, sizeof(p));
	int r = write_file(p, h.text ? h.text : "", 0644);
	free(h.text);
	return r;
}

static int write_conf(const struct net *n)
{
	const struct netdef *d = &n->def;
	char p[PATH_MAX], hosts[PATH_MAX], leases[PATH_MAX], a[16], b[16], c[16], m[16];
	char text[4096];
	int k;

	netfile(n, "hosts", hosts, sizeof(hosts));
	netfile(n, "leases", leases, sizeof(leases));
	k = snprintf(text, sizeof(text),
		     "# written by vireod for network %s: do not edit\n"
		     "interface=%s\n"
		     "except-interface=lo\n"
		     "bind-interfaces\n"
		     "listen-address=%s\n"
		     "no-hosts\n"
		     "strict-order\n"
		     "log-facility=-\n"
		     "quiet-dhcp\n"
		     "pid-file=\n",
		     d->name, d->bridge, netdef_ip_str(d->addr, a));
	if (d->mode == NETDEF_ISOLATED)
		k += snprintf(text + k, sizeof(text) - (size_t)k, "no-resolv\n");
	if (d->domain[0])
		k += snprintf(text + k, sizeof(text) - (size_t)k,
			      "domain=%s\nlocal=/%s/\nexpand-hosts\n", d->domain, d->domain);
	if (d->dhcp) {
		k += snprintf(text + k, sizeof(text) - (size_t)k,
			      "dhcp-range=%s,%s,%s,1h\n"
			      "dhcp-authoritative\n"
			      "dhcp-hostsfile=%s\n"
			      "dhcp-leasefile=%s\n",
			      netdef_ip_str(d->dhcp_start, b), netdef_ip_str(d->dhcp_end, c),
			      netdef_ip_str(netdef_mask(d->prefix), m), hosts, leases);
		if (d->mode == NETDEF_ISOLATED)   /* no default route into a network with no way out */
			k += snprintf(text + k, sizeof(text) - (size_t)k, "dhcp-option=3\n");
	}
	if (k < 0 || (size_t)k >= sizeof(text))
		return -ENAMETOOLONG;
	netfile(n, "dnsmasq.conf", p, sizeof(p));
	return write_file(p, text, 0644);
}

static int write_pidfile(const struct net *n)
{
	char p[PATH_MAX], line[64];

	netfile(n, "dnsmasq.pid", p, sizeof(p));
	snprintf(line, sizeof(line), "%d %llu\n", (int)n->pid, n->starttime);
	return write_file(p, line, 0644);
}

static void last_log_line(const struct net *n, char *out, size_t len)
{
	char p[PATH_MAX], buf[4096];

	out[0] = '\0';
	netfile(n, "dnsmasq.log", p, sizeof(p));
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
	ssize_t r = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (r <= 0)
		return;
	buf[r] = '\0';
	while (r > 0 && buf[r - 1] == '\n')
		buf[--r] = '\0';
	char *l = strrchr(buf, '\n');
	l = l ? l + 1 : buf;
	size_t k = strlen(l) < len - 1 ? strlen(l) : len - 1;
	memcpy(out, l, k);
	out[k] = '\0';
	for (char *s = out; *s; s++)
		if ((unsigned char)*s < 0x20)
			*s = '?';
}

/* Start dnsmasq for @n (net_lock held): 0, or -1 with @err. */
static int spawn_dnsmasq(struct net *n, char *err, size_t errlen)
{
	const char *bin = dnsmasq_path();
	char conf[PATH_MAX], confarg[PATH_MAX + 16], logp[PATH_MAX];

	if (!bin) {
		fail(0, err, errlen, "dnsmasq is not installed (Debian package dnsmasq-base)");
		return -1;
	}
	netfile(n, "dnsmasq.conf", conf, sizeof(conf));
	snprintf(confarg, sizeof(confarg), "--conf-file=%s", conf);
	netfile(n, "dnsmasq.log", logp, sizeof(logp));
	/* each start begins a fresh log; the previous one is kept as .1 */
	char old[PATH_MAX];
	netfile(n, "dnsmasq.log.1", old, sizeof(old));
	rename(logp, old);
	int logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0) {
		fail(0, err, errlen, "cannot open %s: %s", logp, strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		int nul = open("/dev/null", O_RDONLY);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setsid();
		dup2(nul, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
#ifdef SYS_close_range
		if (syscall(SYS_close_range, 3u, ~0u, 0))
#endif
			for (int fd = 3; fd < 65536; fd++)
				close(fd);
		execl(bin, "dnsmasq", confarg, "--keep-in-foreground", (char *)NULL);
		dprintf(2, "vireod: cannot run %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	int e = errno;
	close(logfd);
	if (pid < 0) {
		fail(0, err, errlen, "fork: %s", strerror(e));
		return -1;
	}
	n->pid = pid;
	n->child = true;
	n->starttime = proc_starttime(pid);
	/* dnsmasq checks its conf and binds its sockets at once: a short
	 * wait shows a start that fails. */
	long long until = mono_ms() + DNSMASQ_SETTLE_MS;
	while (mono_ms() < until) {
		int ws;
		if (waitpid(pid, &ws, WNOHANG) == pid) {
			char line[200];
			n->pid = 0;
			n->child = false;
			last_log_line(n, line, sizeof(line));
			fail(0, err, errlen, "dnsmasq ended at start%s%s", line[0] ? ": " : "", line);
			return -1;
		}
		usleep(20000);
	}
	if (!n->starttime)
		n->starttime = proc_starttime(pid);
	write_pidfile(n);
	return 0;
}

static void stop_dnsmasq(struct net *n)
{
	char p[PATH_MAX];

	if (n->pid) {
		kill(n->pid, SIGTERM);
		for (int i = 0; i < 200; i++) {
			if (n->child ? waitpid(n->pid, NULL, WNOHANG) == n->pid :
			    proc_starttime(n->pid) != n->starttime)
				break;
			usleep(10000);
			if (i == 150)
				kill(n->pid, SIGKILL);
		}
		if (n->child)
			waitpid(n->pid, NULL, WNOHANG);
	}
	n->pid = 0;
	n->child = false;
	n->respawn_at_ms = 0;
	netfile(n, "dnsmasq.pid", p, sizeof(p));
	unlink(p);
}

/* ---- start, destroy ---- */

/* Undo what a start did (net_lock held); the definition stays. */
static void teardown(struct net *n)
{
	char p[PATH_MAX];
	int r;

	stop_dnsmasq(n);
	nft_remove(&n->def);
	if (if_nametoindex(n->def.bridge) && (r = nl_link_del(n->def.bridge)))
		vwarn("network %s: cannot delete bridge %s: %s", n->def.name, n->def.bridge, strerror(-r));
	netfile(n, "active", p, sizeof(p));
	unlink(p);
	n->active = false;
}

static int start_locked(struct net *n, char *err, size_t errlen)
{
	const struct netdef *d = &n->def;
	char dir[PATH_MAX], p[PATH_MAX], e[300];
	int r;

	if (n->active)
		return fail(409, err, errlen, "network %s is already started", d->name);
	if (if_nametoindex(d->bridge))
		return fail(409, err, errlen, "bridge: an interface named %s already exists", d->bridge);
	netfile(n, NULL, dir, sizeof(dir));
	if ((mkdir(cfg.net_dir, 0755) && errno != EEXIST) || (mkdir(dir, 0755) && errno != EEXIST))
		return fail(500, err, errlen, "cannot make %s: %s", dir, strerror(errno));
	chmod(dir, 0755);       /* dnsmasq re-reads the hosts file as nobody */
	if ((r = nl_bridge_add(d->bridge)))
		return fail(500, err, errlen, "cannot create bridge %s: %s", d->bridge, strerror(-r));
	if ((r = nl_addr_add(d->bridge, d->addr, d->prefix)) || (r = nl_link_up(d->bridge))) {
		nl_link_del(d->bridge);
		return fail(500, err, errlen, "cannot set up bridge %s: %s", d->bridge, strerror(-r));
	}
	if (nft_apply(d, e, sizeof(e))) {
		nl_link_del(d->bridge);
		return fail(500, err, errlen, "%s", e);
	}
	if (d->mode == NETDEF_NAT) {
		int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "1\n", 2) != 2) {
			int en = errno;
			if (fd >= 0)
				close(fd);
			teardown(n);
			return fail(500, err, errlen, "cannot enable IPv4 forwarding: %s", strerror(en));
		}
		close(fd);
	}
	if ((r = write_conf(n)) || (r = write_hosts(n))) {
		teardown(n);
		return fail(500, err, errlen, "cannot write dnsmasq's files in %s: %s", dir, strerror(-r));
	}
	if (spawn_dnsmasq(n, e, sizeof(e))) {
		teardown(n);
		return fail(500, err, errlen, "network %s: %s", d->name, e);
	}
	netfile(n, "active", p, sizeof(p));
	if ((r = write_file(p, d->bridge, 0644))) {
		teardown(n);
		return fail(500, err, errlen, "cannot write %s: %s", p, strerror(-r));
	}
	n->active = true;
	n->fail_streak = 0;
	vinfo("network %s started: bridge %s, dnsmasq pid %d", d->name, d->bridge, (int)n->pid);
	return 204;
}

/* ---- the supervisor ---- */

static void *sup_main(void *arg)
{
	(void)arg;
	while (!sup_stop) {
		long long now = mono_ms();

		pthread_mutex_lock(&net_lock);
		for (unsigned i = 0; i < nnets; i++) {
			struct net *n = &nets[i];
			if (!n->active)
				continue;
			if (n->pid) {
				bool gone;
				int ws = 0;
				if (n->child) {
					pid_t r = waitpid(n->pid, &ws, WNOHANG);
					gone = r == n->pid || (r < 0 && errno == ECHILD);
				} else {
					gone = proc_starttime(n->pid) != n->starttime;
				}
				if (!gone)
					continue;
				vwarn("network %s: dnsmasq (pid %d) ended: restarting it", n->def.name,
				      (int)n->pid);
				n->pid = 0;
				n->child = false;
				long long delay = (long long)RESPAWN_MIN_MS << (n->fail_streak < 5 ? n->fail_streak : 5);
				n->respawn_at_ms = now + (delay > RESPAWN_MAX_MS ? RESPAWN_MAX_MS : delay);
				n->fail_streak++;
				continue;
			}
			if (n->respawn_at_ms && now >= n->respawn_at_ms) {
				char e[300];
				n->respawn_at_ms = 0;
				write_conf(n);
				write_hosts(n);
				if (spawn_dnsmasq(n, e, sizeof(e))) {
					vwarn("network %s: %s", n->def.name, e);
					n->respawn_at_ms = now + RESPAWN_MAX_MS;
				} else {
					n->respawns++;
					vinfo("network %s: dnsmasq restarted, pid %d", n->def.name, (int)n->pid);
				}
			}
		}
		pthread_mutex_unlock(&net_lock);
		usleep(TICK_MS * 1000);
	}
	return NULL;
}

/* ---- init ---- */

/* A started network from before (startup, net_lock held). */
static void adopt(struct net *n)
{
	char p[PATH_MAX], e[300] = "cannot write dnsmasq's files";
	unsigned long long st;
	int pid;

	netfile(n, "active", p, sizeof(p));
	if (access(p, F_OK))
		return;
	if (!if_nametoindex(n->def.bridge)) {
		vinfo("network %s: its bridge %s is gone: cleaning up", n->def.name, n->def.bridge);
		netfile(n, "dnsmasq.pid", p, sizeof(p));
		FILE *f = fopen(p, "re");
		if (f) {
			if (fscanf(f, "%d %llu", &pid, &st) == 2 && pid > 1 &&
			    proc_starttime(pid) == st && proc_is_dnsmasq(pid, n)) {
				n->pid = pid;
				n->starttime = st;
			}
			fclose(f);
		}
		teardown(n);
		return;
	}
	n->active = true;
	netfile(n, "dnsmasq.pid", p, sizeof(p));
	FILE *f = fopen(p, "re");
	int k = f ? fscanf(f, "%d %llu", &pid, &st) : 0;
	if (f)
		fclose(f);
	if (k == 2 && pid > 1 && proc_starttime(pid) == st && proc_is_dnsmasq(pid, n)) {
		n->pid = pid;
		n->starttime = st;
		n->child = false;
		vinfo("network %s: adopted dnsmasq pid %d", n->def.name, pid);
		return;
	}
	vinfo("network %s: dnsmasq is not running: starting it", n->def.name);
	if (write_conf(n) || write_hosts(n) || spawn_dnsmasq(n, e, sizeof(e))) {
		vwarn("network %s: %s", n->def.name, e);
		n->respawn_at_ms = mono_ms() + RESPAWN_MIN_MS;
	}
}

static int load_one(void *opaque, const char *name, const char *json)
{
	struct netdef d;
	char err[256];

	(void)opaque;
	if (netdef_parse(json, strlen(json), &d, err, sizeof(err)) || strcmp(d.name, name) ||
	    !d.bridge[0]) {
		vwarn("stored definition of network '%s' is invalid (%s): skipped", name, err);
		return 0;
	}
	if (nnets == NET_MAX) {
		vwarn("more than %d networks: '%s' skipped", NET_MAX, name);
		return 0;
	}
	struct net *n = &nets[nnets++];
	memset(n, 0, sizeof(*n));
	n->def = d;
	adopt(n);
	return 0;
}

int networks_init(const struct net_config *c)
{
	int r;

	cfg = *c;
	pthread_mutex_lock(&net_lock);
	r = store_net_list(cfg.store, load_one, NULL);
	pthread_mutex_unlock(&net_lock);
	if (r) {
		verr("cannot load the network definitions: %s", strerror(-r));
		return r;
	}
	sup_stop = false;
	r = pthread_create(&sup_thread, NULL, sup_main, NULL);
	if (r) {
		verr("cannot start the network supervisor: %s", strerror(r));
		return -r;
	}
	sup_running = true;
	return 0;
}

void networks_autostart(void)
{
	pthread_mutex_lock(&net_lock);
	for (unsigned i = 0; i < nnets; i++) {
		struct net *n = &nets[i];
		char err[512];
		if (!n->def.autostart || n->active)
			continue;
		vinfo("network %s: autostart", n->def.name);
		if (start_locked(n, err, sizeof(err)) != 204)
			vwarn("network %s: autostart failed: %s", n->def.name, err);
	}
	pthread_mutex_unlock(&net_lock);
}

void networks_shutdown(void)
{
	if (!sup_running)
		return;
	sup_stop = true;
	pthread_join(sup_thread, NULL);
	sup_running = false;
}

void networks_vms_changed(void)
{
	pthread_mutex_lock(&net_lock);
	for (unsigned i = 0; i < nnets; i++) {
		struct net *n = &nets[i];
		if (!n->active)
			continue;
		if (write_hosts(n))
			vwarn("network %s: cannot rewrite the DHCP hosts file", n->def.name);
		else if (n->pid)
			kill(n->pid, SIGHUP);
	}
	pthread_mutex_unlock(&net_lock);
}

/* ---- taps ---- */

int network_tap_open(const char *net, char *tap, size_t taplen, int *fd, char *err, size_t errlen)
{
	struct ifreq ifr;
	int status = 200, r;

	pthread_mutex_lock(&net_lock);
	struct net *n = find(net);
	if (!n) {
		status = fail(404, err, errlen, "no network named '%s'", net);
		goto out;
	}
	if (!n->active) {
		status = fail(409, err, errlen, "network %s is not started (vireo net-start %s)", net, net);
		goto out;
	}
	int t = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (t < 0) {
		status = fail(500, err, errlen, "cannot open /dev/net/tun: %s", strerror(errno));
		goto out;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "vtap%%d");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(t, TUNSETIFF, &ifr)) {
		status = fail(500, err, errlen, "cannot create a tap: %s", strerror(errno));
		close(t);
		goto out;
	}
	if ((r = nl_link_set_master(ifr.ifr_name, n->def.bridge)) || (r = nl_link_up(ifr.ifr_name))) {
		status = fail(500, err, errlen, "cannot attach tap %s to bridge %s: %s", ifr.ifr_name,
			      n->def.bridge, strerror(-r));
		close(t);
		goto out;
	}
	snprintf(tap, taplen, "%s", ifr.ifr_name);
	*fd = t;
out:
	pthread_mutex_unlock(&net_lock);
	return status;
}

/* ---- the REST operations ---- */

static int lookup(const char *name, struct net **out, char *err, size_t errlen)
{
	if (!netdef_name_ok(name))
		return fail(404, err, errlen, "no network named '%.40s' (not a valid network name)", name);
	*out = find(name);
	return *out ? 200 : fail(404, err, errlen, "no network named '%s'", name);
}

static bool subnets_overlap(const struct netdef *a, const struct netdef *b)
{
	unsigned p = a->prefix < b->prefix ? a->prefix : b->prefix;
	uint32_t m = netdef_mask(p);

	return (a->addr & m) == (b->addr & m);
}

int net_define(const char *body, size_t len, char **resp, char *err, size_t errlen)
{
	struct netdef d;
	char e[300];
	int status, r;

	if (netdef_parse(body, len, &d, e, sizeof(e)))
		return fail(400, err, errlen, "%s", e);
	pthread_mutex_lock(&net_lock);
	if (find(d.name)) {
		status = fail(409, err, errlen, "name: a network named '%s' is already defined", d.name);
		goto out;
	}
	if (nnets == NET_MAX) {
		status = fail(409, err, errlen, "at most %d networks", NET_MAX);
		goto out;
	}
	for (unsigned i = 0; i < nnets; i++) {
		char a[16];
		if (d.bridge[0] && !strcmp(nets[i].def.bridge, d.bridge)) {
			status = fail(409, err, errlen, "bridge: %s is the bridge of network %s", d.bridge,
				      nets[i].def.name);
			goto out;
		}
		if (subnets_overlap(&d, &nets[i].def)) {
			status = fail(409, err, errlen, "address: the subnet overlaps network %s's (%s/%u)",
				      nets[i].def.name, netdef_ip_str(nets[i].def.addr, a),
				      nets[i].def.prefix);
			goto out;
		}
	}
	if (!d.bridge[0]) {
		/* vireoN: the lowest N no network has and no interface is called */
		for (unsigned k = 0; k < 1000 && !d.bridge[0]; k++) {
			char cand[NETDEF_BRIDGE_MAX + 1];
			bool taken = false;
			snprintf(cand, sizeof(cand), "vireo%u", k);
			for (unsigned i = 0; i < nnets && !taken; i++)
				taken = !strcmp(nets[i].def.bridge, cand);
			if (!taken && !if_nametoindex(cand))
				snprintf(d.bridge, sizeof(d.bridge), "%s", cand);
		}
		if (!d.bridge[0]) {
			status = fail(409, err, errlen, "bridge: no free name vireo0..vireo999: give one");
			goto out;
		}
	}
	char *json = netdef_to_json(&d);
	if (!json) {
		status = fail(500, err, errlen, "out of memory");
		goto out;
	}
	r = store_net_add(cfg.store, d.name, d.bridge, json);
	if (r == -EEXIST)
		status = fail(409, err, errlen, "name: a network named '%s' is already defined", d.name);
	else if (r == -ENOTUNIQ)
		status = fail(409, err, errlen, "bridge: %s is the bridge of another network", d.bridge);
	else if (r)
		status = fail(500, err, errlen, "the store could not save the network");
	else {
		struct net *n = &nets[nnets++];
		memset(n, 0, sizeof(*n));
		n->def = d;
		*resp = json;
		json = NULL;
		status = 201;
	}
	free(json);
out:
	pthread_mutex_unlock(&net_lock);
	return status;
}

/* Refuse while a running VM uses @n, unless @force (net_lock held). */
static int check_users(const struct net *n, bool force, const char *what, char *err, size_t errlen)
{
	char who[128];

	if (force || !cfg.users || !cfg.users(n->def.name, who, sizeof(who)))
		return 0;
	return fail(409, err, errlen, "network %s is used by running VM %s: %s it with --force "
		    "(the VM loses its network) or stop the VM first", n->def.name, who, what);
}

int net_destroy(const char *name, bool force, char *err, size_t errlen)
{
	struct net *n;
	int status;

	pthread_mutex_lock(&net_lock);
	status = lookup(name, &n, err, errlen);
	if (status != 200)
		goto out;
	if (!n->active) {
		status = fail(409, err, errlen, "network %s is not started", name);
		goto out;
	}
	if ((status = check_users(n, force, "destroy", err, errlen)))
		goto out;
	teardown(n);
	vinfo("network %s destroyed", name);
	status = 204;
out:
	pthread_mutex_unlock(&net_lock);
	return status;
}

int net_undefine(const char *name, bool force, char *err, size_t errlen)
{
	struct net *n;
	char dir[PATH_MAX];
	int status;

	pthread_mutex_lock(&net_lock);
	status = lookup(name, &n, err, errlen);
	if (status != 200)
		goto out;
	if (n->active && !force) {
		status = fail(409, err, errlen, "network %s is started: destroy it first, or undefine "
			      "it with --force", name);
		goto out;
	}
	if ((status = check_users(n, force, "undefine", err, errlen)))
		goto out;
	int r = store_net_delete(cfg.store, name);
	if (r && r != -ENOENT) {
		status = fail(500, err, errlen, "the store could not delete the network");
		goto out;
	}
	if (n->active)
		teardown(n);
	/* its run directory goes too */
	static const char *const files[] = { "dnsmasq.conf", "hosts", "leases", "dnsmasq.log",
					     "dnsmasq.log.1", "dnsmasq.pid", "active" };
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(files); i++) {
		netfile(n, files[i], dir, sizeof(dir));
		unlink(dir);
	}
	netfile(n, NULL, dir, sizeof(dir));
	rmdir(dir);
	*n = nets[--nnets];
	status = 204;
out:
	pthread_mutex_unlock(&net_lock);
	return status;
}

int net_start(const char *name, char *err, size_t errlen)
{
	struct net *n;
	int status;

	pthread_mutex_lock(&net_lock);
	status = lookup(name, &n, err, errlen);
	if (status == 200)
		status = start_locked(n, err, errlen);
	pthread_mutex_unlock(&net_lock);
	return status;
}

static json_object *summary(const struct net *n)
{
	json_object *o = json_object_new_object();
	char a[16], addr[24];

	snprintf(addr, sizeof(addr), "%s/%u", netdef_ip_str(n->def.addr, a), n->def.prefix);
	json_object_object_add(o, "name", json_object_new_string(n->def.name));
	json_object_object_add(o, "mode", json_object_new_string(netdef_mode_name(n->def.mode)));
	json_object_object_add(o, "bridge", json_object_new_string(n->def.bridge));
	json_object_object_add(o, "address", json_object_new_string(addr));
	json_object_object_add(o, "active", json_object_new_boolean(n->active));
	json_object_object_add(o, "autostart", json_object_new_boolean(n->def.autostart));
	return o;
}

int nets_list(char **resp, char *err, size_t errlen)
{
	json_object *a = json_object_new_array();

	pthread_mutex_lock(&net_lock);
	/* in name order */
	bool done[NET_MAX] = { false };
	for (unsigned k = 0; k < nnets; k++) {
		int best = -1;
		for (unsigned i = 0; i < nnets; i++)
			if (!done[i] && (best < 0 || strcmp(nets[i].def.name, nets[best].def.name) < 0))
				best = (int)i;
		done[best] = true;
		json_object_array_add(a, summary(&nets[best]));
	}
	pthread_mutex_unlock(&net_lock);
	*resp = json_out(a);
	return *resp ? 200 : fail(500, err, errlen, "out of memory");
}

int net_info(const char *name, char **resp, char *err, size_t errlen)
{
	struct net *n;
	int status;

	pthread_mutex_lock(&net_lock);
	status = lookup(name, &n, err, errlen);
	if (status != 200)
		goto out;
	json_object *o = summary(n);
	char *def = netdef_to_json(&n->def);
	json_object *d = def ? json_tokener_parse(def) : NULL;
	free(def);
	json_object_object_add(o, "definition", d);
	if (n->active) {
		char p[PATH_MAX];
		if (n->pid)
			json_object_object_add(o, "dnsmasq_pid", json_object_new_int(n->pid));
		json_object_object_add(o, "dnsmasq_restarts", json_object_new_int((int)n->respawns));
		netfile(n, NULL, p, sizeof(p));
		json_object_object_add(o, "run_dir", json_object_new_string(p));
	}
	*resp = json_out(o);
	status = *resp ? 200 : fail(500, err, errlen, "out of memory");
out:
	pthread_mutex_unlock(&net_lock);
	return status;
}

int net_set_autostart(const char *name, const char *body, size_t len, char *err, size_t errlen)
{
	struct net *n;
	int status;
	bool on;

	if (len > 256 || memchr(body, '\0', len))
		return fail(400, err, errlen, "the body must be {\"autostart\": true|false}");
	struct json_tokener *tok = json_tokener_new_ex(4);
	if (!tok)
		return fail(500, err, errlen, "out of memory");
	json_object *o = json_tokener_parse_ex(tok, body, (int)len), *v;
	bool ok = o && json_tokener_get_error(tok) == json_tokener_success &&
		  json_object_is_type(o, json_type_object) && json_object_object_length(o) == 1 &&
		  json_object_object_get_ex(o, "autostart", &v) && json_object_is_type(v, json_type_boolean);
	json_tokener_free(tok);
	on = ok && json_object_get_boolean(v);
	json_object_put(o);
	if (!ok)
		return fail(400, err, errlen, "the body must be {\"autostart\": true|false}");
	pthread_mutex_lock(&net_lock);
	status = lookup(name, &n, err, errlen);
	if (status != 200)
		goto out;
	struct netdef d = n->def;
	d.autostart = on;
	char *json = netdef_to_json(&d);
	if (!json || store_net_update(cfg.store, name, json)) {
		status = fail(500, err, errlen, "the store could not save the network");
	} else {
		n->def = d;
		status = 204;
	}
	free(json);
out:
	pthread_mutex_unlock(&net_lock);
	return status;
}
