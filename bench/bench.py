#!/usr/bin/env python3
"""Side-by-side benchmarks: run A and B alternately (A B A B ...), N times
each, in one run, and print medians and the ratio B/A. See bench/README.md.

    python3 bench/bench.py [--runs N] [--list] [ENTRY ...]

Entries: boot (alias boot-microvm), rss, blk, net-vhost, net-own, net-user,
debian, state (lab), first-kvm-run, serial, mgmt (this host). With no ENTRY every entry runs.
Exit status 0 when every entry produced its
numbers, 1 otherwise.
"""
import argparse
import os
import re
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VMM = os.path.join(TOP, "build", "release", "vmm", "vireo-vmm")
FIXTURES = os.path.join(TOP, "build", "fixtures")


def have_vireo_vmm():
    return os.access(VMM, os.X_OK)


def have_strace():
    return shutil.which("strace") is not None


def build_extra_archive(name, packages, script):
    """An extra initramfs archive of Debian tools for the inner guest (see
    scripts/fixtures.sh fx_build_extra), with @script as /scenarios/;
    returns [its path]."""
    cmd = f'. scripts/fixtures.sh && fx_build_extra {name} {packages} {script}'
    out = subprocess.run(["bash", "-c", cmd], cwd=TOP, stdout=subprocess.PIPE, text=True)
    path = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode != 0 or not os.path.isfile(path):
        raise RuntimeError(f"building the {name} archive failed (status {out.returncode})")
    return [path]


def build_fio_archive():
    """The inner guest's fio."""
    return build_extra_archive("bench-fio", "bench/lab/fio-packages", "bench/lab/inner/blk.sh")


def build_iperf3_archive():
    """iperf3 for the inner guest and the lab host."""
    return build_extra_archive("bench-iperf3", "bench/lab/iperf3-packages",
                               "bench/lab/inner/net.sh")


def net_entry(mode, what, goal):
    return {
        "what": f"virtio-net TCP throughput in the lab, iperf3 guest<->lab host, {what} "
                "(Mbit/s, higher is better)",
        "scenario": os.path.join(TOP, "bench", "lab", "bench-net.sh"),
        "files": build_iperf3_archive,
        "lab_env": {"BENCH_NET_MODE": mode},
        "metrics": [("g2h", "guest->host", "Mbit/s", ("ratio>=", goal)),
                    ("h2g", "host->guest", "Mbit/s", ("ratio>=", goal))],
        "sides": [
            ("qemu-microvm-pci", "microvm", lambda: True),
            ("vireo-vmm", "vireo", have_vireo_vmm),
        ],
    }


# A metric: (key in the scenario's DATA lines, label, unit, goal). goal is
# None or (kind, value): "ratio<=" / "ratio>=" compare B's median to A's,
# "abs<=" compares B's median to value (in the metric's unit).
#
# Each entry: what it measures, where ("lab": a lab scenario that reports
# DATA lines; "host": a function run here), its metrics and its sides. A
# side is (label, the scenario's name for it, available?). Side A is the
# reference; side B the one compared against it. A side that is not
# available yet is shown as such and left out of the run.
ENTRIES = {
    "boot": {
        "what": "boot-to-marker wall time of the inner fixture in the lab (ms, lower is better)",
        "scenario": os.path.join(TOP, "bench", "lab", "bench-boot.sh"),
        "metrics": [("ms", "boot to marker", "ms", ("ratio<=", 0.6)),
                    ("pre", "before guest clock", "ms", None),
                    ("kernel", "guest uptime at marker", "ms", None),
                    ("idle", "guest idle at marker", "ms", None)],
        "sides": [
            ("qemu-microvm", "microvm", lambda: True),
            ("vireo-vmm", "vireo", have_vireo_vmm),
            # The same, the bzImage decompressing itself in the guest (as
            # before vireo-vmm unpacked it): shows what --unpack host saves.
            ("vireo-vmm --unpack guest", "vireo-unpack-guest", have_vireo_vmm),
        ],
    },
    "rss": {
        "what": "VMM memory overhead in the lab: VmHWM minus the guest RAM mapping's Rss, "
                "sampled until the guest powers off (KiB, lower is better)",
        "scenario": os.path.join(TOP, "bench", "lab", "bench-rss.sh"),
        "metrics": [("overhead", "overhead (HWM-RAM)", "KiB", ("abs<=", 5120)),
                    ("hwm", "VmHWM", "KiB", None),
                    ("ram", "guest RAM Rss", "KiB", None)],
        "sides": [
            ("qemu-microvm", "microvm", lambda: True),
            ("vireo-vmm", "vireo", have_vireo_vmm),
        ],
    },
    "blk": {
        "what": "virtio-blk in the lab, same raw image on tmpfs: dd 1 MiB O_DIRECT, "
                "fio 4 KiB random O_DIRECT QD16 (higher is better)",
        "scenario": os.path.join(TOP, "bench", "lab", "bench-blk.sh"),
        "files": build_fio_archive,
        "lab_env": {"LAB_MEM": "3072"},
        "metrics": [("seqwrite", "seq write 1M", "MB/s", ("ratio>=", 1.0)),
                    ("seqread", "seq read 1M", "MB/s", ("ratio>=", 1.0)),
                    ("randread", "rand read 4K", "IOPS", ("ratio>=", 1.0)),
                    ("randwrite", "rand write 4K", "IOPS", ("ratio>=", 1.0))],
        "sides": [
            ("qemu-microvm-pci", "microvm", lambda: True),
            ("vireo-vmm", "vireo", have_vireo_vmm),
        ],
    },
    # (a) vhost-net on both sides, (b) both VMMs' own data paths, (c)
    # user-mode networking on both sides.
    "net-vhost": net_entry("vhost", "tap with vhost-net on both sides", 1.0),
    "net-own": net_entry("own", "tap, vhost off: each VMM's own data path", 1.3),
    "net-user": net_entry("user", "user-mode networking (libslirp) on both sides", 1.0),
    "debian": {
        "what": "the Debian 12 guest's first boot in the lab (fresh overlay, cloud-init "
                "seed, user-mode networking): VMM start to the first ssh login, and "
                "systemd-analyze's time to its default target (s, lower is better)",
        "scenario": os.path.join(TOP, "bench", "lab", "bench-debian.sh"),
        "run_seconds": 420,
        "metrics": [("ssh", "start to ssh login", "s", ("ratio<=", 0.8)),
                    ("systemd", "systemd-analyze total", "s", None),
                    ("kernel", "systemd-analyze kernel", "s", None),
                    ("busy", "guest CPU busy at login", "s", None),
                    ("wait", "guest CPU idle at login", "s", None)],
        "sides": [
            ("qemu-microvm-pci", "microvm", lambda: True),
            ("vireo-vmm", "vireo", have_vireo_vmm),
        ],
    },
    "state": {
        "what": "VM state in the lab, the inner fixture (1 vCPU, 70% of RAM filled): restore "
                "(VMM start to the guest running again; QEMU -incoming from its exec: "
                "migration file), all of RAM resident after a restore, save, and live "
                "migration over loopback, idle and busy (each VMM's own report; ms, "
                "lower is better)",
        "scenario": os.path.join(TOP, "bench", "lab", "bench-state.sh"),
        "run_seconds": 600,
        "lab_env": {"LAB_MEM": "8192"},
        "metrics": [("restore256", "restore 256 MiB", "ms", None),
                    ("restore2048", "restore 2 GiB", "ms", ("ratio<=", 0.1)),
                    ("resident256", "all resident 256 MiB", "ms", None),
                    ("resident2048", "all resident 2 GiB", "ms", None),
                    ("save256", "save 256 MiB", "ms", None),
                    ("save2048", "save 2 GiB", "ms", None)] + [
                   (f"mig{m}{k}_{w}", f"migrate {m} MiB {k} {label}", "ms",
                    ("ratio<=", goal))
                   for m in (256, 1024) for k in ("idle", "busy")
                   for w, label, goal in (("total", "total", 1.0), ("down", "downtime", 0.5))],
        "sides": [
            ("qemu-microvm", "microvm", lambda: True),
            ("vireo-vmm", "vireo", have_vireo_vmm),
        ],
    },
    "first-kvm-run": {
        "what": "on this host's /dev/kvm, the PVH tiny guest (tests/guest/pvh.elf): "
                "exec to first KVM_RUN and whole run (ms, lower is better)",
        "host": "first_kvm_run",
        "metrics": [("trace", "exec>KVM_RUN tracefs", "ms", ("abs<=", 5.0)),
                    ("strace", "exec>KVM_RUN strace", "ms", None),
                    ("verbose", "main>guest --verbose", "ms", None),
                    ("tomain", "exec>exit --version", "ms", None),
                    ("total", "whole run", "ms", None)],
        "sides": [
            ("qemu-microvm", "qemu", lambda: True),
            ("vireo-vmm", "vireo", have_vireo_vmm),
        ],
    },
    "serial": {
        "what": "on this host's /dev/kvm, the PVH tiny guest printing 64 KiB on COM1 the way "
                "Linux's serial console does (status read, then the character): cost per "
                "character and whole run (lower is better)",
        "host": "serial_out",
        "metrics": [("perchar", "per character", "us", None),
                    ("spew", "whole run, 64 KiB", "ms", None),
                    ("plain", "whole run, 1 line", "ms", None)],
        "sides": [
            ("qemu-microvm", "qemu", lambda: True),
            ("vireo-vmm", "vireo", have_vireo_vmm),
        ],
    },
    "mgmt": {
        "what": "on this host, libvirt + QEMU (virsh, qemu:///system) against vireod + vireo "
                "with the PVH tiny guest: list --all with 50 VMs defined, define+undefine, "
                "start to the guest's first byte on COM1, 50 starts (ms, lower is better)",
        "host": "mgmt",
        "metrics": [("list", "list --all, 50 defined", "ms", ("ratio<=", 0.2)),
                    ("defund", "define+undefine", "ms", ("ratio<=", 0.2)),
                    ("start", "start to first output", "ms", ("ratio<=", 0.1)),
                    ("startcli", "start command returns", "ms", None),
                    ("start50", "50 starts to all printed", "ms", ("ratio<=", 0.1))],
        "sides": [
            ("libvirt+qemu-microvm", "libvirt", lambda: True),
            ("vireod+vireo", "vireod", lambda: have_vireod()),
        ],
    },
}
ALIASES = {"boot-microvm": "boot"}

DATA_RE = re.compile(r"^DATA (\S+) (.*)$")


def metrics_of(entry):
    return entry.get("metrics") or [(entry["unit"], entry["unit"], entry["unit"], None)]


def run_entry(name, entry, runs):
    """Run one entry; return ({side: {metric: [values]}}, error or None)."""
    sides = [s for s in entry["sides"] if s[2]()]
    missing = [s[0] for s in entry["sides"] if not s[2]()]
    for label in missing:
        print(f"bench: {name}: side {label} is not available yet; measuring without it",
              file=sys.stderr)
    if "host" in entry:
        try:
            os.close(os.open("/dev/kvm", os.O_RDWR))
        except OSError as e:
            return {}, (f"this host's /dev/kvm does not open ({e.strerror}): a host entry needs "
                        "one (PVM machines have had none on some days)")
        return globals()[entry["host"]](sides, runs)
    keys = [m[0] for m in metrics_of(entry)]
    values = {s[1]: {k: [] for k in keys} for s in sides}
    extra = []
    if "files" in entry:
        try:
            for f in entry["files"]():
                extra += ["--file", f]
        except RuntimeError as e:
            return values, str(e)
    # Time bound: a generous two minutes per guest run (or the entry's
    # run_seconds), warm-up included.
    bound = 120 + entry.get("run_seconds", 120) * (runs + 1) * len(sides)
    # BENCH_* settings of this environment and of the entry's lab_env
    # reach the scenario too.
    env = dict(os.environ, **entry.get("lab_env", {}))
    passed = [a for k, v in sorted(env.items())
              if k.startswith("BENCH_") and k not in ("BENCH_SIDES", "BENCH_RUNS")
              for a in ("--env", f"{k}={v}")]
    cmd = ["bash", os.path.join(TOP, "tests", "lab", "run.sh"),
           "--env", "BENCH_SIDES=" + " ".join(s[1] for s in sides),
           "--env", f"BENCH_RUNS={runs}"] + passed + [
           "--timeout", str(bound)] + extra + [entry["scenario"]]
    print(f"bench: {name}: {' '.join(cmd[1:])}", file=sys.stderr)
    result = None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=TOP, env=env)
    for line in proc.stdout:
        line = line.rstrip("\n")
        m = DATA_RE.match(line)
        if m:
            fields = dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
            side = fields.get("side")
            if side in values:
                for k in keys:
                    try:
                        values[side][k].append(float(fields[k]))
                    except (KeyError, ValueError):
                        pass
        elif line.startswith("RESULT "):
            result = line
        print("  " + line, file=sys.stderr)
    proc.wait()
    if result is None or not result.startswith("RESULT PASS"):
        return values, result or f"the lab run ended with status {proc.returncode}"
    return values, None


# ---- first-kvm-run: on this host ------------------------------------------
def tiny_guest(name):
    """A tiny guest from tests/guest (built by the test flavours only)."""
    for flavour in ("asan", "debug"):
        g = os.path.join(TOP, "build", flavour, "tests", "guest", name)
        if os.path.isfile(g):
            return g
    subprocess.run(["bash", os.path.join(TOP, "scripts", "build.sh"), "debug"], check=True)
    return os.path.join(TOP, "build", "debug", "tests", "guest", name)


class KvmRunTrace:
    """The kernel's own event tracing (tracefs, root only), in a private
    instance: the time from a process's execve to its first
    ioctl(KVM_RUN), any thread, with nothing stopping the process (strace
    stops it at every traced call)."""
    ROOT = "/sys/kernel/tracing"
    EVENTS = ("syscalls/sys_enter_execve", "syscalls/sys_enter_ioctl")
    LINE = re.compile(r"-(\d+)\s+\[\d+\]\s+\S+\s+([0-9.]+): (sys_execve|sys_ioctl)\((.*)\)")

    def __init__(self):
        self.dir = None
        inst = os.path.join(self.ROOT, "instances", f"vireo-bench-{os.getpid()}")
        if not os.path.isdir(os.path.join(self.ROOT, "instances")):
            # Not mounted on every machine (a fresh one here had none).
            subprocess.run(["mount", "-t", "tracefs", "nodev", self.ROOT],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            os.mkdir(inst)
        except OSError:
            return
        self.dir = inst
        try:
            self._w("trace_clock", "mono")
            self._w("events/syscalls/sys_enter_ioctl/filter", "cmd == 0xae80")   # KVM_RUN
            for e in self.EVENTS:
                self._w(f"events/{e}/enable", "1")
        except OSError:
            self.close()

    def _w(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def close(self):
        if self.dir:
            try:
                for e in self.EVENTS:
                    self._w(f"events/{e}/enable", "0")
                self._w("tracing_on", "0")
            except OSError:
                pass
            try:
                os.rmdir(self.dir)
            except OSError:
                pass
            self.dir = None

    def run(self, cmd):
        """Run cmd with its output discarded; ms from its execve to the
        first KVM_RUN after it, or None."""
        self._w("trace", "")
        self._w("tracing_on", "1")
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p.wait()
        self._w("tracing_on", "0")
        t_exec = None
        with open(os.path.join(self.dir, "trace")) as f:
            for line in f:
                m = self.LINE.search(line)
                if not m:
                    continue
                tid, t, what = int(m.group(1)), float(m.group(2)), m.group(3)
                if what == "sys_execve" and tid == p.pid:
                    t_exec = t
                elif what == "sys_ioctl" and t_exec is not None:
                    return (t - t_exec) * 1e3
        return None


def first_kvm_run(sides, runs):
    """Per side, alternately: a strace-free whole run of the PVH tiny guest
    (exec to exit, wall clock here), a run traced by the kernel (tracefs)
    for the time from execve to the first KVM_RUN (nothing stops the
    process), a run under strace for the same (strace --seccomp-bpf stops
    it only at the traced calls, still ~60 ioctls; kept for hosts without
    tracefs), and for vireo-vmm its own --verbose figure (from main()
    to entering the guest) and a whole `vireo-vmm --version` run (exec,
    loader, exit: an upper bound of the exec-to-main part)."""
    guest = tiny_guest("pvh.elf")
    cmds, ok_status = pvh_commands(guest, "pvh-cmdline")
    keys = ("trace", "strace", "verbose", "tomain", "total")
    values = {s[1]: {k: [] for k in keys} for s in sides}
    strace = shutil.which("strace")
    tracer = KvmRunTrace()

    def once(side, measured):
        cmd = cmds[side]
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        total = (time.monotonic() - t0) * 1e3
        if p.returncode != ok_status[side] or "hello from PVH" not in p.stdout:
            raise RuntimeError(f"{side}: the PVH guest did not run (status {p.returncode}): "
                               f"{p.stderr.strip()[-300:]}")
        if measured:
            values[side]["total"].append(total)
        if tracer.dir:
            ms = tracer.run(cmd)
            if measured and ms is not None:
                values[side]["trace"].append(ms)
        if strace:
            with tempfile.NamedTemporaryFile("r", suffix=".strace") as tf:
                subprocess.run([strace, "-f", "--seccomp-bpf", "-ttt", "-e", "trace=execve,ioctl",
                                "-e", "signal=none", "-o", tf.name] + cmd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                t_exec = t_run = None
                for line in tf:
                    f = line.split(None, 2)
                    if len(f) < 3:
                        continue
                    if t_exec is None and f[2].startswith("execve("):
                        t_exec = float(f[1])
                    elif t_run is None and "KVM_RUN" in f[2]:
                        t_run = float(f[1])
                if measured and t_exec is not None and t_run is not None:
                    values[side]["strace"].append((t_run - t_exec) * 1e3)
        if side == "vireo":
            t0 = time.monotonic()
            subprocess.run([VMM, "--version"], stdout=subprocess.DEVNULL)
            to_main = (time.monotonic() - t0) * 1e3
            p = subprocess.run(cmd + ["--verbose"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
            m = re.search(r"entering the guest ([0-9.]+) ms after start", p.stderr)
            if m and measured:
                values[side]["verbose"].append(float(m.group(1)))
                values[side]["tomain"].append(to_main)

    try:
        for i in range(0, runs + 1):   # run 0: warm-up
            for s in sides:
                once(s[1], i > 0)
    except RuntimeError as e:
        return values, str(e)
    finally:
        tracer.close()
    return values, None


def pvh_commands(guest, cmdline):
    """QEMU microvm and vireo-vmm running a PVH tiny guest to its
    debug-exit, and the exit status each gives for guest status 0."""
    # QEMU's debug-exit device at port 0x501 ends it like vireo-vmm's
    # --debug-exit. KVM here refuses the MSR IA32_ARCH_CAPABILITIES that
    # -cpu host sets.
    cmds = {
        "qemu": ["qemu-system-x86_64", "-M", "microvm,rtc=on", "-accel", "kvm",
                 "-cpu", "host,-arch-capabilities", "-smp", "1", "-m", "256",
                 "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
                 "-no-reboot", "-device", "isa-debug-exit,iobase=0x501,iosize=1",
                 "-kernel", guest, "-append", cmdline],
        "vireo": [VMM, "--debug-exit", "--memory", "256M", "--cpus", "1",
                  "--kernel", guest, "--cmdline", cmdline],
    }
    return cmds, {"qemu": 1, "vireo": 0}   # isa-debug-exit: (0 << 1) | 1


SPEW_BYTES = 1024 * 65


def serial_out(sides, runs):
    """Serial console output on this host: the PVH guest prints 1024 lines
    of 65 characters (tests/guest/pvh.S, cmdline "spew") to a file, and,
    in the same round, only its one-line greeting. Per character: the
    difference of the two whole runs over the 66,560 characters."""
    guest = tiny_guest("pvh.elf")
    keys = ("perchar", "spew", "plain")
    values = {s[1]: {k: [] for k in keys} for s in sides}
    spew_cmds, ok_status = pvh_commands(guest, "spew")
    plain_cmds, _ = pvh_commands(guest, "pvh-cmdline")

    def timed(cmd, side, want):
        with tempfile.TemporaryFile() as out:
            t0 = time.monotonic()
            p = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE)
            ms = (time.monotonic() - t0) * 1e3
            size = out.tell()
        if p.returncode != ok_status[side] or size < want:
            raise RuntimeError(f"{side}: the PVH guest did not finish (status {p.returncode}, "
                               f"{size} bytes of output): {p.stderr.decode()[-300:]}")
        return ms

    try:
        for i in range(0, runs + 1):   # run 0: warm-up
            for s in sides:
                spew = timed(spew_cmds[s[1]], s[1], SPEW_BYTES)
                plain = timed(plain_cmds[s[1]], s[1], 1)
                if i > 0:
                    values[s[1]]["spew"].append(spew)
                    values[s[1]]["plain"].append(plain)
                    values[s[1]]["perchar"].append((spew - plain) * 1e3 / SPEW_BYTES)
    except RuntimeError as e:
        return values, str(e)
    return values, None


# ---- mgmt: libvirt + QEMU against vireod + vireo, on this host -------------
VIREOD = os.path.join(TOP, "build", "release", "daemon", "vireod")
VIREO = os.path.join(TOP, "build", "release", "cli", "vireo")
BENCH_PACKAGES = os.path.join(TOP, "bench", "packages.txt")
MGMT_VMS = int(os.environ.get("BENCH_MGMT_VMS", "50"))   # defined VMs, list and start50
MGMT_LIST_CALLS = 7    # list calls per run (their median is the run's value)
MGMT_MEMORY_MIB = 64


def have_vireod():
    return all(os.access(p, os.X_OK) for p in (VMM, VIREOD, VIREO))


def bench_packages_missing():
    """Packages of bench/packages.txt that are not installed."""
    with open(BENCH_PACKAGES) as f:
        want = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    missing = []
    for p in want:
        q = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        if "ok installed" not in q.stdout:
            missing.append(p)
    return missing


class ConsoleWatch:
    """Waits for files to get their first byte, woken by inotify (on each
    file's directory, or on its parent while the directory does not exist
    yet) rather than by a polling interval."""
    IN_MODIFY, IN_CLOSE_WRITE, IN_CREATE, IN_MOVED_TO = 0x2, 0x8, 0x100, 0x80

    def __init__(self):
        import ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise RuntimeError("inotify_init1 failed")

    def close(self):
        os.close(self.fd)

    def _watch(self, path):
        mask = self.IN_MODIFY | self.IN_CLOSE_WRITE | self.IN_CREATE | self.IN_MOVED_TO
        for d in (os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
            if self.libc.inotify_add_watch(self.fd, d.encode(), mask) >= 0:
                return

    @staticmethod
    def _printed(path):
        try:
            return os.stat(path).st_size > 0
        except OSError:
            return False

    def wait(self, paths, t0, timeout, procs=()):
        """Monotonic times at which each of paths first had a byte; waits
        at most timeout seconds from t0. procs: Popen objects to reap
        (their exit times are returned too)."""
        seen, done = {}, {}
        pending = list(paths)
        pidfds = {pr: os.pidfd_open(pr.pid) for pr in procs}   # readable once it ends
        try:
            return self._wait(paths, t0, timeout, procs, seen, done, pending, pidfds)
        finally:
            for fd in pidfds.values():
                os.close(fd)

    def _wait(self, paths, t0, timeout, procs, seen, done, pending, pidfds):
        import select
        while True:
            for p in pending:
                self._watch(p)   # again: its directory may have appeared
            now = time.monotonic()
            for p in [p for p in pending if self._printed(p)]:
                seen[p] = now
                pending.remove(p)
            for pr in procs:
                if pr not in done and pr.poll() is not None:
                    done[pr] = now
            if not pending and len(done) == len(procs):
                return seen, done
            if now - t0 > timeout:
                raise RuntimeError(f"no console output within {timeout} s from "
                                   f"{', '.join(pending[:3]) or 'a start command'}")
            select.select([self.fd] + [pidfds[pr] for pr in procs if pr not in done], [], [],
                          0.2)
            try:
                while os.read(self.fd, 65536):
                    pass
            except BlockingIOError:
                pass


def run_ok(cmd, what, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{what}: {' '.join(cmd)}: status {p.returncode}: "
                           f"{(p.stderr or p.stdout).strip()[-300:]}")
    return p.stdout


def timed_ok(cmd, what, env=None):
    t0 = time.monotonic()
    run_ok(cmd, what, env)
    return (time.monotonic() - t0) * 1e3


class LibvirtSide:
    """virsh against qemu:///system. The domains: QEMU microvm (no
    firmware: QEMU enters the PVH guest itself; libvirt 9 knows no
    microvm, so no PCI and no USB controller are asked for), direct
    kernel boot, 1 vCPU, COM1 to a file."""
    URI = "qemu:///system"
    PREFIX = "vireo-bench-"

    def __init__(self, tmp, guest):
        self.dir = os.path.join(tmp, "libvirt")
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)   # QEMU runs as libvirt-qemu
        self.guest, self.started, self.kvm = guest, [], None
        self.virsh = ["virsh", "-q", "-c", self.URI]

    def _daemon_up(self):
        return subprocess.run(self.virsh + ["version"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0

    def setup(self):
        if not self._daemon_up():
            # No libvirtd (this host has no systemd to start it): run one,
            # with its virtlogd, for the bench, and end them after. Its
            # "default" NAT network must not start with it.
            if os.path.lexists("/etc/libvirt/qemu/networks/autostart/default.xml"):
                raise RuntimeError("libvirt's default network would start with libvirtd: run "
                                   "'bash scripts/setup.sh --bench', which turns that off")
            for d in ("virtlogd", "libvirtd"):
                p = subprocess.Popen([d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
                self.started.append(p)
            for _ in range(200):
                if self._daemon_up():
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError("the libvirtd started by the bench does not answer")
        # libvirt runs QEMU as libvirt-qemu, group kvm: Debian's udev gives
        # /dev/kvm root:kvm 0660. Without udev here it may be root-only: set
        # that for the run and put it back after.
        st = os.stat("/dev/kvm")
        import grp
        kvm_gid = grp.getgrnam("kvm").gr_gid
        if st.st_gid != kvm_gid or (st.st_mode & 0o060) != 0o060:
            self.kvm = (st.st_uid, st.st_gid, st.st_mode & 0o7777)
            os.chown("/dev/kvm", st.st_uid, kvm_gid)
            os.chmod("/dev/kvm", (st.st_mode & 0o7777) | 0o060)
        self.cleanup_domains()

    def cleanup_domains(self):
        out = subprocess.run(self.virsh + ["list", "--all", "--name"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout
        for n in out.split():
            if n.startswith(self.PREFIX):
                subprocess.run(self.virsh + ["destroy", n], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                subprocess.run(self.virsh + ["undefine", n], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                try:
                    os.unlink(f"/var/log/libvirt/qemu/{n}.log")
                except OSError:
                    pass

    def teardown(self):
        try:
            if self._daemon_up():
                self.cleanup_domains()
        finally:
            for p in reversed(self.started):
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if self.kvm:
                os.chown("/dev/kvm", self.kvm[0], self.kvm[1])
                os.chmod("/dev/kvm", self.kvm[2])

    def name(self, i):
        return f"{self.PREFIX}{i}"

    def console(self, name):
        return os.path.join(self.dir, name + ".console")

    def deffile(self, name):
        path = os.path.join(self.dir, name + ".xml")
        with open(path, "w") as f:
            f.write(f"""<domain type='kvm'>
  <name>{name}</name>
  <memory unit='MiB'>{MGMT_MEMORY_MIB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='microvm'>hvm</type>
    <kernel>{self.guest}</kernel>
    <cmdline>pvh-cmdline</cmdline>
  </os>
  <cpu mode='host-passthrough'><feature policy='disable' name='arch-capabilities'/></cpu>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'><source path='{self.console(name)}'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
""")
        return path

    def cmd(self, verb, *args):
        return self.virsh + [verb] + list(args)

    def list_cmd(self):
        return self.virsh + ["list", "--all"]


class VireodSide:
    """A vireod of the bench's own (temporary state and run directories, its
    own socket, --foreground), driven by vireo. As root it runs each VM as
    its own user in its own cgroup, as installed."""
    PREFIX = "vireo-bench-"

    def __init__(self, tmp, guest):
        self.dir = os.path.join(tmp, "vireod")
        os.mkdir(self.dir)
        self.guest, self.proc = guest, None
        self.sock = os.path.join(self.dir, "vireod.sock")
        self.run = os.path.join(self.dir, "run")
        self.env = dict(os.environ, VIREO_SOCKET=self.sock)
        self.env.pop("VIREO_CONNECT", None)

    def setup(self):
        self.log = open(os.path.join(self.dir, "vireod.log"), "w")
        self.proc = subprocess.Popen(
            [VIREOD, "--foreground", "--no-autostart", "--state-dir",
             os.path.join(self.dir, "state"), "--run-dir", self.run, "--socket", self.sock,
             "--vmm", VMM], stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(200):
            if subprocess.run([VIREO, "version"], env=self.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"vireod did not come up (see {self.log.name})")

    def teardown(self):
        if self.proc and self.proc.poll() is None:
            out = subprocess.run([VIREO, "list", "--all", "--json"], env=self.env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for n in re.findall(r'"name":\s*"([^"]+)"', out.stdout):
                subprocess.run([VIREO, "undefine", n, "--force"], env=self.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.proc.terminate()
            self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def name(self, i):
        return f"{self.PREFIX}{i}"

    def console(self, name):
        return os.path.join(self.run, name, "console.log")

    def deffile(self, name):
        path = os.path.join(self.dir, name + ".json")
        with open(path, "w") as f:
            f.write(f'{{"name": "{name}", "cpus": 1, "memory": "{MGMT_MEMORY_MIB}M", '
                    f'"kernel": "{self.guest}", "cmdline": "pvh-cmdline"}}\n')
        return path

    def cmd(self, verb, *args):
        return [VIREO, verb] + list(args)

    def list_cmd(self):
        return [VIREO, "list", "--all"]


def firewall_rules():
    """nft's ruleset (iptables on Debian 12 is nft underneath), or None."""
    if not shutil.which("nft"):
        return None
    return subprocess.run(["nft", "list", "ruleset"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True).stdout


def mgmt(sides, runs):
    """libvirt + QEMU (A) against vireod + vireo (B): see bench/README.md.
    Per round and side: list --all with 50 defined VMs (median of 7
    calls), define + undefine of a fresh VM, start of one VM to its
    guest's first byte on COM1, and 50 sequential start commands to the
    last of the 50 guests' first byte (then all destroyed, untimed)."""
    keys = ("list", "defund", "start", "startcli", "start50")
    values = {s[1]: {k: [] for k in keys} for s in sides}
    if os.geteuid() != 0:
        return values, "mgmt needs root (libvirt's qemu:///system, vireod's VM users)"
    missing = bench_packages_missing()
    if missing:
        return values, (f"{' '.join(missing)} not installed: run 'bash scripts/setup.sh --bench' "
                        "(bench/packages.txt)")
    tmp = tempfile.mkdtemp(prefix="vireo-bench-mgmt-")
    os.chmod(tmp, 0o755)
    # One copy of the PVH tiny guest, readable by libvirt's QEMU user, for both.
    guest = os.path.join(tmp, "pvh.elf")
    shutil.copy(tiny_guest("pvh.elf"), guest)
    os.chmod(guest, 0o644)
    links_before = set(os.listdir("/sys/class/net"))
    fw_before = firewall_rules()
    impl = {"libvirt": LibvirtSide(tmp, guest), "vireod": VireodSide(tmp, guest)}
    impl = {s[1]: impl[s[1]] for s in sides}
    watch, err = None, None
    try:
        watch = ConsoleWatch()
        for m in impl.values():
            m.setup()
            for i in range(MGMT_VMS):
                n = m.name(i)
                run_ok(m.cmd("define", m.deffile(n)), "define",
                       getattr(m, "env", None))

        def destroy_all(m, names):
            env = getattr(m, "env", None)
            procs = [subprocess.Popen(m.cmd("destroy", n), env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) for n in names]
            for p in procs:
                p.wait()

        def once(side, rnd):
            m = impl[side]
            env = getattr(m, "env", None)
            r = {}
            lst = [timed_ok(m.list_cmd(), "list", env) for _ in range(MGMT_LIST_CALLS)]
            r["list"] = statistics.median(lst)
            n = m.name(f"x{rnd}")
            path = m.deffile(n)
            t0 = time.monotonic()
            run_ok(m.cmd("define", path), "define", env)
            run_ok(m.cmd("undefine", n), "undefine", env)
            r["defund"] = (time.monotonic() - t0) * 1e3
            # start: one VM, from the command to its guest's first byte.
            n = m.name(0)
            con = m.console(n)
            if os.path.exists(con):
                os.unlink(con)
            t0 = time.monotonic()
            p = subprocess.Popen(m.cmd("start", n), env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            seen, done = watch.wait([con], t0, 60, [p])
            if p.wait() != 0:
                raise RuntimeError(f"{side}: start {n}: {p.stderr.read().decode()[-300:]}")
            p.stderr.close()
            r["start"] = (seen[con] - t0) * 1e3
            r["startcli"] = (done[p] - t0) * 1e3
            run_ok(m.cmd("destroy", n), "destroy", env)
            # start50: 50 start commands one after the other, until every
            # guest has printed.
            names = [m.name(i) for i in range(MGMT_VMS)]
            cons = [m.console(x) for x in names]
            for c in cons:
                if os.path.exists(c):
                    os.unlink(c)
            t0 = time.monotonic()
            try:
                for x in names:
                    run_ok(m.cmd("start", x), "start", env)
                seen, _ = watch.wait(cons, t0, 300)
            finally:
                destroy_all(m, names)
            r["start50"] = (max(seen.values()) - t0) * 1e3
            return r

        for i in range(0, runs + 1):   # run 0: warm-up
            for s in sides:
                r = once(s[1], i)
                print(f"  mgmt: run {i}{' (warm-up)' if i == 0 else ''} {s[0]}: " +
                      " ".join(f"{k}={v:.1f}" for k, v in r.items()), file=sys.stderr)
                if i > 0:
                    for k, v in r.items():
                        values[s[1]][k].append(v)
    except (RuntimeError, OSError) as e:
        err = str(e)
    finally:
        if watch:
            watch.close()
        for m in impl.values():
            try:
                m.teardown()
            except (RuntimeError, OSError) as e:
                err = err or f"teardown: {e}"
        new = set(os.listdir("/sys/class/net")) - links_before
        if new:
            err = err or f"network interfaces appeared during the run: {' '.join(sorted(new))}"
        if firewall_rules() != fw_before:
            err = err or "the firewall's rules (nft list ruleset) changed during the run"
        shutil.rmtree(tmp, ignore_errors=True)
    return values, err


def fmt(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def goal_text(goal, med, ref):
    """The goal of side B and whether its median meets it."""
    if goal is None:
        return ""
    kind, val = goal
    if kind == "abs<=":
        ok, text = med <= val, f"B <= {fmt(val)}"
    elif ref:
        ratio = med / ref
        ok = ratio <= val if kind == "ratio<=" else ratio >= val
        text = f"B/A {kind[5:]} {val:.2f}"
    else:
        return f"{kind} {val} (no A)"
    return f"{text}: {'met' if ok else 'MISSED'}"


def entry_rows(name, entry, values):
    rows = []
    metrics = metrics_of(entry)
    for key, label, unit, goal in metrics:
        ref = None
        title = name if len(metrics) == 1 else f"{name} {label}"
        for i, (slabel, skey, available) in enumerate(entry["sides"]):
            v = values.get(skey, {}).get(key, [])
            side = f"{'ABC'[i]} {slabel}"
            if not v:
                rows.append([title, side, 0, "-", "-", "-",
                             "not yet" if not available() else "no data", "", ""])
                continue
            med = statistics.median(v)
            if i == 0:
                ref = med
            ratio = "1.00" if i == 0 else (f"{med / ref:.2f}" if ref else "-")
            rows.append([title, side, len(v), f"{fmt(med)} {unit}", fmt(min(v)), fmt(max(v)),
                         ratio, "" if i == 0 else goal_text(goal, med, ref),
                         " ".join(fmt(x) for x in v)])
    return rows


def print_table(rows):
    head = ["entry", "side", "n", "median", "min", "max", "ratio vs A", "goal",
            "runs in order"]
    table = [head] + rows
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    for k, row in enumerate(table):
        print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(row)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="measured runs per side (>= 5)")
    ap.add_argument("--list", action="store_true", help="list the entries")
    ap.add_argument("entries", nargs="*")
    args = ap.parse_args()
    if args.list:
        for name, e in ENTRIES.items():
            sides = ", ".join(f"{'ABC'[i]}={s[0]}{'' if s[2]() else ' (not yet)'}"
                              for i, s in enumerate(e["sides"]))
            alias = [a for a, n in ALIASES.items() if n == name]
            aka = f" (also {', '.join(alias)})" if alias else ""
            print(f"{name}{aka}: {e['what']}; sides {sides}")
        return 0
    if args.runs < 5:
        print(f"bench: --runs {args.runs} is too few: medians need at least 5 runs per side",
              file=sys.stderr)
        return 2
    names = [ALIASES.get(n, n) for n in args.entries] or list(ENTRIES)
    for n in names:
        if n not in ENTRIES:
            print(f"bench: unknown entry '{n}' (have: {', '.join(ENTRIES)})", file=sys.stderr)
            return 2
    rows, failed = [], 0
    for name in names:
        entry = ENTRIES[name]
        values, err = run_entry(name, entry, args.runs)
        if err:
            print(f"bench: {name}: FAILED: {err}", file=sys.stderr)
            failed += 1
        rows += entry_rows(name, entry, values)
    print()
    print_table(rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
