/*
 * vireod: the management daemon.  Keeps VM definitions (store.c), runs
 * each VM as its own vireo-vmm process (vm.c) and serves the REST API on a
 * Unix socket (server.c, api.c).  See vireod(8).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vireo/util.h>

#include "api.h"
#include "isolate.h"
#include "network.h"
#include "pool.h"
#include "server.h"
#include "store.h"
#include "tls.h"
#include "vm.h"

#define DEFAULT_STATE_DIR "/var/lib/vireo"
#define DEFAULT_SOCKET    "/run/vireo/vireod.sock"
#define DEFAULT_RUN_DIR   "/run/vireo/vms"
#define DEFAULT_UID_BASE  1000000000u

static void usage(FILE *f)
{
	fputs(
"Usage: vireod [OPTIONS]\n"
"Manage Vireo VMs: definitions, their vireo-vmm processes, the REST API.\n"
"\n"
"  --state-dir DIR   definitions (SQLite) and the lock (default " DEFAULT_STATE_DIR ")\n"
"  --state-sync MODE normal (default): a change is saved before it is answered\n"
"                    and survives a kill of vireod, a host crash may lose the\n"
"                    last ones; full: also fsync'd first, survives a host crash\n"
"  --socket PATH     the API's Unix socket (default " DEFAULT_SOCKET ")\n"
"  --run-dir DIR     one directory per running VM: pid, API socket, console\n"
"                    and vireo-vmm's log (default " DEFAULT_RUN_DIR ")\n"
"  --net-dir DIR     one directory per started network: dnsmasq's files\n"
"                    (default: \"networks\" beside the run dir, so\n"
"                    /run/vireo/networks; made 0755: dnsmasq re-reads\n"
"                    its hosts file as nobody)\n"
"  --vmm PATH        the vireo-vmm to run (default: the one beside vireod,\n"
"                    else vireo-vmm in PATH)\n"
"  --foreground      stay in the foreground, messages on stderr\n"
"  --no-autostart    do not start the VMs and networks marked autostart\n"
"  --verbose         more messages\n"
"  --list-routes     print the API's routes (METHOD PATH) and exit\n"
"  --listen ADDR:PORT  also serve the API over TCP, HTTPS only, each request\n"
"                    with 'Authorization: Bearer TOKEN'; needs:\n"
"  --tls-cert FILE   the server's certificate (PEM; its chain after it)\n"
"  --tls-key FILE    its private key (PEM; not readable by others)\n"
"  --token-file FILE the token (one line; not readable by others)\n"
"  --vm-uid-base N   as root, each VM's vireo-vmm drops to uid = gid = N + k,\n"
"                    k per VM (default 1000000000; 0: vireo-vmm's own default)\n"
"  --cgroup-root DIR as root, each VM in the cgroup v2 leaf DIR/NAME.UUID\n"
"                    (default vireo.slice at the cgroup2 mount; none: no leaf)\n"
"  --help, --version\n"
"\n"
"Exit status: 0 after SIGTERM or SIGINT (the VMs go on running), 1 error,\n"
"2 bad command line.\n", f);
}

/* vireo-vmm beside our own executable, else in PATH; NULL if neither. */
static char *find_vmm(void)
{
	char self[PATH_MAX], cand[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		snprintf(cand, sizeof(cand), "%s/vireo-vmm", dirname(self));
		if (access(cand, X_OK) == 0)
			return strdup(cand);
	}
	const char *path = getenv("PATH");
	if (!path)
		return NULL;
	char *copy = strdup(path), *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(cand, sizeof(cand), "%s/vireo-vmm", *d ? d : ".");
		if (access(cand, X_OK) == 0) {
			free(copy);
			return strdup(cand);
		}
	}
	free(copy);
	return NULL;
}

static char *absolute(const char *p)
{
	char cwd[PATH_MAX], *out = NULL;

	if (p[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return strdup(p);
	if (asprintf(&out, "%s/%s", cwd, p) < 0)
		return NULL;
	return out;
}

int main(int argc, char **argv)
{
	enum { O_STATE = 256, O_SOCKET, O_RUN, O_VMM, O_FG, O_NOAUTO, O_VERBOSE, O_ROUTES,
	       O_HELP, O_VERSION, O_LISTEN, O_CERT, O_KEY, O_TOKEN, O_UIDBASE, O_CGROOT,
	       O_NETDIR, O_STATESYNC };
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "state-sync", required_argument, NULL, O_STATESYNC },
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "run-dir", required_argument, NULL, O_RUN },
		{ "vmm", required_argument, NULL, O_VMM },
		{ "net-dir", required_argument, NULL, O_NETDIR },
		{ "foreground", no_argument, NULL, O_FG },
		{ "no-autostart", no_argument, NULL, O_NOAUTO },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "list-routes", no_argument, NULL, O_ROUTES },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "tls-cert", required_argument, NULL, O_CERT },
		{ "tls-key", required_argument, NULL, O_KEY },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "vm-uid-base", required_argument, NULL, O_UIDBASE },
		{ "cgroup-root", required_argument, NULL, O_CGROOT },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ 0 },
	};
	const char *state_dir = DEFAULT_STATE_DIR, *sock = DEFAULT_SOCKET, *run_dir = DEFAULT_RUN_DIR;
	const char *vmm_opt = NULL, *net_dir = NULL;
	const char *listen_on = NULL, *tls_cert = NULL, *tls_key = NULL, *token_file = NULL;
	const char *cg_root = NULL;
	uint64_t uid_base = DEFAULT_UID_BASE;
	bool fg = false, autostart = true;
	enum store_sync state_sync = STORE_SYNC_NORMAL;
	int c, rc, ready[2] = { -1, -1 };
	char *vmm = NULL, *state_abs = NULL, *run_abs = NULL, *sock_abs = NULL, *net_abs = NULL;

	vlog_set_prog("vireod");
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_STATE: state_dir = optarg; break;
		case O_STATESYNC:
			if (!strcmp(optarg, "normal")) {
				state_sync = STORE_SYNC_NORMAL;
			} else if (!strcmp(optarg, "full")) {
				state_sync = STORE_SYNC_FULL;
			} else {
				verr("--state-sync '%s': use normal or full", optarg);
				return 2;
			}
			break;
		case O_SOCKET: sock = optarg; break;
		case O_RUN: run_dir = optarg; break;
		case O_VMM: vmm_opt = optarg; break;
		case O_NETDIR: net_dir = optarg; break;
		case O_FG: fg = true; break;
		case O_NOAUTO: autostart = false; break;
		case O_VERBOSE: vlog_set_level(VLOG_DEBUG); break;
		case O_ROUTES:
			for (size_t i = 0; i < api_nroutes; i++)
				printf("%s %s\n", api_routes[i].method, api_routes[i].pattern);
			return 0;
		case O_LISTEN: listen_on = optarg; break;
		case O_CERT: tls_cert = optarg; break;
		case O_KEY: tls_key = optarg; break;
		case O_TOKEN: token_file = optarg; break;
		case O_UIDBASE:
			if (vparse_u64(optarg, 0, 0xfffffffeULL - 65536, &uid_base)) {
				verr("--vm-uid-base '%s': use 0 to %llu", optarg,
				     0xfffffffeULL - 65536);
				return 2;
			}
			break;
		case O_CGROOT:
			if (strcmp(optarg, "none") && optarg[0] != '/') {
				verr("--cgroup-root '%s': give an absolute path or none", optarg);
				return 2;
			}
			cg_root = optarg;
			break;
		case O_HELP: usage(stdout); return 0;
		case O_VERSION: printf("vireod %s\n", VIREO_VERSION); return 0;
		default:
			verr("unknown option or missing value: '%s' (see --help)", argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		verr("unexpected argument '%s' (see --help)", argv[optind]);
		return 2;
	}
	char err[512];
	if (tls_check_options(listen_on, tls_cert, tls_key, token_file, err, sizeof(err))) {
		verr("%s", err);
		return 2;
	}
	vmm = vmm_opt ? absolute(vmm_opt) : find_vmm();
	if (!vmm) {
		verr("no vireo-vmm beside vireod or in PATH: give --vmm PATH");
		return 1;
	}
	if (access(vmm, X_OK)) {
		verr("--vmm %s: %s", vmm, strerror(errno));
		goto fail;
	}
	state_abs = absolute(state_dir);
	run_abs = absolute(run_dir);
	sock_abs = absolute(sock);
	if (net_dir) {
		net_abs = absolute(net_dir);
	} else if (run_abs) {
		char *copy = strdup(run_abs);
		if (copy && asprintf(&net_abs, "%s/networks", dirname(copy)) < 0)
			net_abs = NULL;
		free(copy);
	}
	if (!state_abs || !run_abs || !sock_abs || !net_abs) {
		verr("out of memory");
		goto fail;
	}
	if (!fg) {
		/* Background: the parent exits 0 once the socket listens. */
		if (pipe2(ready, O_CLOEXEC)) {
			verr("pipe: %s", strerror(errno));
			goto fail;
		}
		pid_t p = fork();
		if (p < 0) {
			verr("fork: %s", strerror(errno));
			goto fail;
		}
		if (p > 0) {
			char b = 0;
			close(ready[1]);
			rc = read(ready[0], &b, 1) == 1 && b == 'y' ? 0 : 1;
			goto out;
		}
		close(ready[0]);
		setsid();
		if (chdir("/")) {
			/* Not fatal: every path is absolute. */
		}
	}
	signal(SIGPIPE, SIG_IGN);
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	if (mkdir(state_abs, 0700) && errno != EEXIST) {
		verr("cannot make %s: %s", state_abs, strerror(errno));
		goto fail;
	}
	char lockp[PATH_MAX];
	snprintf(lockp, sizeof(lockp), "%s/vireod.lock", state_abs);
	int lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB)) {
		verr("%s: %s", lockp, lockfd < 0 ? strerror(errno) :
		     "another vireod uses this state directory");
		goto fail;
	}
	if (!fg) {
		char logp[PATH_MAX];
		snprintf(logp, sizeof(logp), "%s/vireod.log", state_abs);
		FILE *lf = fopen(logp, "ae");
		if (lf) {
			setvbuf(lf, NULL, _IOLBF, 0);
			vlog_set_file(lf);
		}
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			if (nul > 2)
				close(nul);
		}
	}
	struct store *st;
	if (store_open(state_abs, state_sync, &st, err, sizeof(err))) {
		verr("%s", err);
		goto fail;
	}
	pools_init(st, vms_uses_path);
	struct isolate_config ic = { .state_dir = state_abs, .uid_base = (uint32_t)uid_base,
				     .cgroup_root = cg_root, .store = st };
	if (isolate_init(&ic, err, sizeof(err))) {
		verr("%s", err);
		store_close(st);
		goto fail;
	}
	struct vm_config vc = { .vmm_path = vmm, .run_dir = run_abs, .store = st };
	if (vms_init(&vc)) {
		store_close(st);
		goto fail;
	}
	struct net_config nc = { .net_dir = net_abs, .store = st, .users = vms_network_users,
				 .hosts = vms_network_hosts };
	if (networks_init(&nc)) {
		vms_shutdown();
		store_close(st);
		goto fail;
	}
	if (server_start(sock_abs, err, sizeof(err))) {
		verr("%s", err);
		networks_shutdown();
		vms_shutdown();
		store_close(st);
		goto fail;
	}
	if (listen_on && tls_start(listen_on, tls_cert, tls_key, token_file, err, sizeof(err))) {
		verr("%s", err);
		server_stop();
		networks_shutdown();
		vms_shutdown();
		store_close(st);
		goto fail;
	}
	vinfo("listening on %s (state %s, VMs in %s, %s)", sock_abs, state_abs, run_abs, vmm);
	if (listen_on)
		vinfo("listening on %s too (HTTPS, bearer token)", listen_on);
	if (ready[1] >= 0) {
		if (write(ready[1], "y", 1) != 1) {
			/* The parent went: nothing to tell. */
		}
		close(ready[1]);
	}
	if (autostart) {
		networks_autostart();   /* first: the VMs may need them */
		vms_autostart();
	}
	int sig = 0;
	sigwait(&stop, &sig);
	vinfo("signal %d: stopping (the VMs go on running)", sig);
	server_quiesce();
	tls_stop();
	networks_shutdown();
	vms_shutdown();
	server_stop();
	store_close(st);
	rc = 0;
	goto out;
fail:
	rc = 1;
out:
	free(vmm);
	free(state_abs);
	free(run_abs);
	free(sock_abs);
	free(net_abs);
	return rc;
}
