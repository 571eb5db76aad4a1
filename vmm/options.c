#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "options.h"

enum {
	OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY,
	OPT_CONSOLE, OPT_BOOT_TIMER, OPT_NAME, OPT_ON_REBOOT, OPT_MEM_MERGE,
	OPT_MEM_HUGE, OPT_DEBUG_EXIT, OPT_HELP, OPT_VERSION, OPT_VERBOSE,
	OPT_DISK, OPT_VIRTIO_CONSOLE, OPT_RNG, OPT_UNPACK, OPT_SERIAL_COALESCE,
	OPT_VSOCK, OPT_BALLOON,
	OPT_SANDBOX, OPT_SECCOMP, OPT_USER, OPT_CGROUP, OPT_CPU_MAX, OPT_MEMORY_MAX,
	OPT_NET, OPT_API_SOCKET, OPT_RESTORE, OPT_RESTORE_PREFAULT, OPT_INCOMING,
};

static const struct option vmm_longopts[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "boot-timer", no_argument, NULL, OPT_BOOT_TIMER },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "on-reboot", required_argument, NULL, OPT_ON_REBOOT },
	{ "mem-merge", no_argument, NULL, OPT_MEM_MERGE },
	{ "mem-hugepages", no_argument, NULL, OPT_MEM_HUGE },
	{ "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "virtio-console", no_argument, NULL, OPT_VIRTIO_CONSOLE },
	{ "rng", optional_argument, NULL, OPT_RNG },
	{ "vsock", required_argument, NULL, OPT_VSOCK },
	{ "balloon", optional_argument, NULL, OPT_BALLOON },
	{ "net", required_argument, NULL, OPT_NET },
	{ "unpack", required_argument, NULL, OPT_UNPACK },
	{ "serial-coalesce", required_argument, NULL, OPT_SERIAL_COALESCE },
	{ "sandbox", optional_argument, NULL, OPT_SANDBOX },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "user", required_argument, NULL, OPT_USER },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "cpu-max", required_argument, NULL, OPT_CPU_MAX },
	{ "memory-max", required_argument, NULL, OPT_MEMORY_MAX },
	{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "restore-prefault", no_argument, NULL, OPT_RESTORE_PREFAULT },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* --incoming's forms: 0 when @u is one. */
static int vmm_opts_incoming_ok(const char *u)
{
	char *end;

	if (!strncmp(u, "tcp:", 4)) {
		const char *c = strrchr(u + 4, ':');
		unsigned long port;

		if (!c || c == u + 4 || c - (u + 4) > 255)
			return -1;
		port = strtoul(c + 1, &end, 10);
		return c[1] && !*end && port > 0 && port < 65536 ? 0 : -1;
	}
	if (!strncmp(u, "unix:", 5))
		return u[5] && strlen(u + 5) <= 107 ? 0 : -1;
	if (!strncmp(u, "fd:", 3)) {
		long fd = strtol(u + 3, &end, 10);

		return u[3] && !*end && fd >= 0 && fd < 65536 ? 0 : -1;
	}
	return -1;
}

void vmm_opts_usage(FILE *f)
{
	fputs(
"Usage: vireo-vmm --kernel PATH [OPTIONS]\n"
"       vireo-vmm --restore DIR [OPTIONS]\n"
"Boot a Linux kernel (bzImage or ELF vmlinux) in a KVM virtual machine.\n"
"\n"
"  --kernel PATH          kernel: bzImage (64-bit boot protocol >= 2.12) or\n"
"                         ELF (PVH entry note if present, else 64-bit entry)\n"
"  --initrd PATH          initial ramdisk\n"
"  --cmdline STRING       kernel command line (default \"console=ttyS0\")\n"
"  --cpus N               number of vCPUs (default 1, at most KVM's limit)\n"
"  --memory SIZE          guest RAM, e.g. 512M, 2G (default 512M; a bare\n"
"                         number is MiB)\n"
"  --console stdio|file:PATH|none\n"
"                         where COM1 goes (default stdio; a terminal is put\n"
"                         in raw mode, Ctrl-A x quits)\n"
"  --boot-timer           log the time since start when the guest writes\n"
"                         123 to MMIO 0xfeb00000\n"
"  --name NAME            VM name used in messages (\"vireo-vmm[NAME]: ...\")\n"
"  --unpack host|guest    bzImage: decompress the kernel and choose its KASLR\n"
"                         offsets in vireo-vmm before the guest starts (host,\n"
"                         default; LZ4, zstd, gzip, xz), or leave it to the\n"
"                         bzImage's own decompressor in the guest\n"
"  --serial-coalesce auto|on|off\n"
"                         have KVM queue the guest's COM1 transmit writes\n"
"                         instead of exiting for each character (auto,\n"
"                         default: on, except on QEMU's TCG emulator)\n"
"  --on-reboot restart|exit\n"
"                         on a guest reboot, start again or exit with status\n"
"                         3 (default exit)\n"
"  --mem-merge            mark guest RAM MADV_MERGEABLE (KSM)\n"
"  --mem-hugepages        ask for transparent huge pages for guest RAM\n"
"  --debug-exit           port 0x501: a guest write of V exits with status V\n"
"                         (test guests)\n"
"  --verbose              more messages on stderr\n"
"  --api-socket PATH      serve the control API (HTTP/JSON: state, pause,\n"
"                         resume, shutdown, balloon, save) on a Unix socket\n"
"                         made at PATH (mode 0600; refused if PATH exists,\n"
"                         unless a stale socket); removed at exit\n"
"  --restore DIR          run the VM saved in DIR (PUT /vm/save) on, instead\n"
"                         of booting --kernel; its machine comes from the save\n"
"  --restore-prefault     read all of the saved guest RAM before it runs\n"
"                         (default: each page when the guest first uses it)\n"
"  --incoming URI         wait for a live migration (PUT /migrate) on URI:\n"
"                         tcp:ADDR:PORT, unix:PATH or fd:N; the VM comes from\n"
"                         the stream (--kernel and other boot options unused)\n",
	      f);
	virtio_opts_usage(f);
	fputs(
"  --sandbox[=on|off]     after opening its files, enter new mount, PID, IPC,\n"
"                         UTS and network namespaces, an empty root, --user\n"
"                         and no capabilities (default: on when started as\n"
"                         root, off otherwise)\n"
"  --user UID[:GID]|NAME  who the sandbox runs as (default 65534:65534)\n"
"  --seccomp on|log|off   system call filters per thread: a call outside a\n"
"                         thread's list kills the process (on, default), is\n"
"                         logged by the kernel (log) or no filter (off)\n"
"  --cgroup PATH          move into this cgroup v2 directory (made if missing)\n"
"  --cpu-max QUOTA[:PERIOD]|max\n"
"                         with --cgroup: write cpu.max (microseconds; period\n"
"                         default 100000)\n"
"  --memory-max SIZE|max  with --cgroup: write memory.max\n",
	      f);
	fputs(
"  --help, --version\n"
"\n"
"Exit status: 0 guest powered off, 1 error (bad input, triple fault, KVM\n"
"error; one line and a register dump on stderr), 2 bad command line,\n"
"3 guest reboot, 128+N stopped by signal N (SIGTERM, SIGINT, SIGHUP).\n",
	      f);
}

static int vmm_opts_err(char *err, size_t errlen, const char *fmt, ...)
	VIREO_PRINTF(3, 4);
static int vmm_opts_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* --user UID[:GID] or a user name (looked up later, by the sandbox). */
static int vmm_opts_user(struct vmm_opts *o, const char *arg, char *err, size_t errlen)
{
	const char *colon = strchr(arg, ':');
	char uid[24];
	uint64_t u, g;

	o->user_given = true;
	o->user_name = NULL;
	if (!*arg)
		return vmm_opts_err(err, errlen, "--user '': give UID[:GID] or a user name");
	if (*arg < '0' || *arg > '9') {
		if (colon || strlen(arg) > 32)
			return vmm_opts_err(err, errlen,
				"--user '%s': give UID[:GID] or a user name", arg);
		o->user_name = arg;
		return 0;
	}
	if ((colon ? (size_t)(colon - arg) : strlen(arg)) >= sizeof(uid))
		return vmm_opts_err(err, errlen, "--user '%s': not a uid", arg);
	snprintf(uid, sizeof(uid), "%.*s", colon ? (int)(colon - arg) : 23, arg);
	/* 0 would not be a drop; (uid_t)-1 means "unchanged" to setresuid. */
	if (vparse_u64(uid, 1, 0xfffffffeULL, &u) ||
	    (colon && vparse_u64(colon + 1, 1, 0xfffffffeULL, &g)))
		return vmm_opts_err(err, errlen,
			"--user '%s': UID and GID must be numbers from 1 to 4294967294", arg);
	o->uid = (uint32_t)u;
	o->gid = colon ? (uint32_t)g : (uint32_t)u;
	return 0;
}

/* --cpu-max QUOTA[:PERIOD] (microseconds) or max. */
static int vmm_opts_cpu_max(struct vmm_opts *o, const char *arg, char *err, size_t errlen)
{
	const char *colon = strchr(arg, ':');
	char q[24];
	uint64_t quota, period = 100000;

	o->cpu_max_given = true;
	o->cpu_quota_us = 0;
	o->cpu_period_us = period;
	if (!strcmp(arg, "max"))
		return 0;
	snprintf(q, sizeof(q), "%.*s", colon ? (int)VIREO_MIN((size_t)(colon - arg), 23u) : 23, arg);
	if (vparse_u64(q, 1000, 1ULL << 40, &quota) ||
	    (colon && vparse_u64(colon + 1, 1000, 1000000, &period)))
		return vmm_opts_err(err, errlen,
			"--cpu-max '%s': use QUOTA[:PERIOD] in microseconds (quota at least "
			"1000, period 1000 to 1000000) or max", arg);
	o->cpu_quota_us = quota;
	o->cpu_period_us = period;
	return 0;
}

int vmm_opts_parse(struct vmm_opts *o, int argc, char **argv,
		   char *err, size_t errlen)
{
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->cpus = 1;
	o->memory = 512ULL << 20;
	o->cmdline = "console=ttyS0";
	o->console = VMM_CONSOLE_STDIO;
	o->name = "vm";
	o->uid = VMM_SANDBOX_UID;
	o->gid = VMM_SANDBOX_GID;
	err[0] = 0;

	optind = 0;   /* full reset of getopt state: parse may run twice */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", vmm_longopts, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: o->kernel = optarg; break;
		case OPT_INITRD: o->initrd = optarg; break;
		case OPT_CMDLINE: o->cmdline = optarg; break;
		case OPT_NAME:
			if (!*optarg || strlen(optarg) > 64)
				return vmm_opts_err(err, errlen,
					"--name '%s': must be 1 to 64 characters", optarg);
			o->name = optarg;
			o->name_given = true;
			break;
		case OPT_CPUS:
			if (vparse_u64(optarg, 1, 4096, &v))
				return vmm_opts_err(err, errlen,
					"--cpus '%s': not a number of vCPUs from 1 to KVM's limit", optarg);
			o->cpus = (unsigned)v;
			break;
		case OPT_MEMORY:
			if (vsize_parse(optarg, 1ULL << 20, &v))
				return vmm_opts_err(err, errlen,
					"--memory '%s': not a size (use e.g. 512M or 2G)", optarg);
			if (v < (16ULL << 20))
				return vmm_opts_err(err, errlen,
					"--memory '%s': too small, the minimum is 16M", optarg);
			if (v > (1ULL << 46))
				return vmm_opts_err(err, errlen,
					"--memory '%s': too large, the maximum is 64T", optarg);
			o->memory = VIREO_ALIGN_UP(v, 1ULL << 20);
			break;
		case OPT_CONSOLE:
			if (!strcmp(optarg, "stdio")) {
				o->console = VMM_CONSOLE_STDIO;
			} else if (!strcmp(optarg, "none")) {
				o->console = VMM_CONSOLE_NONE;
			} else if (!strncmp(optarg, "file:", 5) && optarg[5]) {
				o->console = VMM_CONSOLE_FILE;
				o->console_path = optarg + 5;
			} else {
				return vmm_opts_err(err, errlen,
					"--console '%s': use stdio, file:PATH or none", optarg);
			}
			break;
		case OPT_BOOT_TIMER: o->boot_timer = true; break;
		case OPT_ON_REBOOT:
			if (!strcmp(optarg, "restart"))
				o->reboot_restart = true;
			else if (!strcmp(optarg, "exit"))
				o->reboot_restart = false;
			else
				return vmm_opts_err(err, errlen,
					"--on-reboot '%s': use restart or exit", optarg);
			break;
		case OPT_UNPACK:
			if (!strcmp(optarg, "host"))
				o->unpack_guest = false;
			else if (!strcmp(optarg, "guest"))
				o->unpack_guest = true;
			else
				return vmm_opts_err(err, errlen,
					"--unpack '%s': use host or guest", optarg);
			break;
		case OPT_SERIAL_COALESCE:
			if (!strcmp(optarg, "auto"))
				o->serial_coalesce = VMM_COALESCE_AUTO;
			else if (!strcmp(optarg, "on"))
				o->serial_coalesce = VMM_COALESCE_ON;
			else if (!strcmp(optarg, "off"))
				o->serial_coalesce = VMM_COALESCE_OFF;
			else
				return vmm_opts_err(err, errlen,
					"--serial-coalesce '%s': use auto, on or off", optarg);
			break;
		case OPT_MEM_MERGE: o->mem_merge = true; break;
		case OPT_MEM_HUGE: o->mem_hugepages = true; break;
		case OPT_DEBUG_EXIT: o->debug_exit = true; break;
		case OPT_VERBOSE: o->verbose++; break;
		case OPT_DISK:
			if (virtio_opts_disk(&o->virtio, optarg, err, errlen))
				return -EINVAL;
			break;
		case OPT_VIRTIO_CONSOLE: o->virtio.console = true; break;
		case OPT_RNG:
			if (virtio_opts_rng(&o->virtio, optarg, err, errlen))
				return -EINVAL;
			break;
		case OPT_VSOCK:
			if (virtio_opts_vsock(&o->virtio, optarg, err, errlen))
				return -EINVAL;
			break;
		case OPT_BALLOON:
			if (virtio_opts_balloon(&o->virtio, optarg, err, errlen))
				return -EINVAL;
			break;
		case OPT_SANDBOX:
			if (!optarg || !strcmp(optarg, "on"))
				o->sandbox = VMM_SANDBOX_ON;
			else if (!strcmp(optarg, "off"))
				o->sandbox = VMM_SANDBOX_OFF;
			else if (!strcmp(optarg, "auto"))
				o->sandbox = VMM_SANDBOX_AUTO;
			else
				return vmm_opts_err(err, errlen,
					"--sandbox '%s': use on, off or auto", optarg);
			break;
		case OPT_SECCOMP:
			o->seccomp_given = true;
			if (!strcmp(optarg, "on"))
				o->seccomp = VMM_SECCOMP_ON;
			else if (!strcmp(optarg, "log"))
				o->seccomp = VMM_SECCOMP_LOG;
			else if (!strcmp(optarg, "off"))
				o->seccomp = VMM_SECCOMP_OFF;
			else
				return vmm_opts_err(err, errlen,
					"--seccomp '%s': use on, log or off", optarg);
			break;
		case OPT_USER:
			if (vmm_opts_user(o, optarg, err, errlen))
				return -EINVAL;
			break;
		case OPT_CGROUP:
			if (optarg[0] != '/' || strlen(optarg) > 512)
				return vmm_opts_err(err, errlen,
					"--cgroup '%s': give an absolute path in a cgroup v2 file system",
					optarg);
			o->cgroup = optarg;
			break;
		case OPT_CPU_MAX:
			if (vmm_opts_cpu_max(o, optarg, err, errlen))
				return -EINVAL;
			break;
		case OPT_MEMORY_MAX:
			o->memory_max_given = true;
			o->memory_max = 0;
			if (strcmp(optarg, "max") &&
			    (vsize_parse(optarg, 1, &v) || v < (1ULL << 20)))
				return vmm_opts_err(err, errlen,
					"--memory-max '%s': use a size of at least 1M (e.g. 768M) or max",
					optarg);
			if (strcmp(optarg, "max"))
				o->memory_max = v;
			break;
		case OPT_API_SOCKET:
			if (!*optarg || strlen(optarg) > 107)
				return vmm_opts_err(err, errlen,
					"--api-socket '%s': give a path of 1 to 107 characters",
					optarg);
			o->api_socket = optarg;
			break;
		case OPT_RESTORE:
			if (!*optarg || strlen(optarg) > 4000)
				return vmm_opts_err(err, errlen,
					"--restore '%s': give a directory of 1 to 4000 characters",
					optarg);
			o->restore_dir = optarg;
			break;
		case OPT_RESTORE_PREFAULT: o->restore_prefault = true; break;
		case OPT_INCOMING:
			if (vmm_opts_incoming_ok(optarg))
				return vmm_opts_err(err, errlen, "--incoming '%s': use tcp:ADDR:PORT, "
						    "unix:PATH (at most 107 characters) or fd:N",
						    optarg);
			o->incoming = optarg;
			break;
		case OPT_NET:
			if (virtio_opts_net(&o->virtio, optarg, err, errlen))
				return -EINVAL;
			break;
		case 'h':
		case OPT_HELP: o->help = true; return 0;
		case OPT_VERSION: o->version = true; return 0;
		case ':':
			return vmm_opts_err(err, errlen, "option '%s' needs a value",
					    argv[optind - 1]);
		default:
			return vmm_opts_err(err, errlen,
				"unknown option '%s' (see --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return vmm_opts_err(err, errlen,
			"unexpected argument '%s' (see --help)", argv[optind]);
	if (o->restore_prefault && !o->restore_dir)
		return vmm_opts_err(err, errlen, "--restore-prefault needs --restore DIR");
	if (o->restore_dir && (o->kernel || o->initrd))
		return vmm_opts_err(err, errlen, "--restore builds the VM from its save: "
				    "not with --%s", o->kernel ? "kernel" : "initrd");
	if (o->incoming && o->restore_dir)
		return vmm_opts_err(err, errlen, "--incoming and --restore: give one");
	if (!o->kernel && !o->restore_dir && !o->incoming)
		return vmm_opts_err(err, errlen, "no kernel given: use --kernel PATH");
	if ((o->cpu_max_given || o->memory_max_given) && !o->cgroup)
		return vmm_opts_err(err, errlen, "--%s needs --cgroup PATH",
				    o->cpu_max_given ? "cpu-max" : "memory-max");
	if (o->user_given && o->sandbox == VMM_SANDBOX_OFF)
		return vmm_opts_err(err, errlen, "--user applies to the sandbox: not with --sandbox=off");
	return 0;
}
