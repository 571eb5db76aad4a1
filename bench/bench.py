#!/usr/bin/env python3
"""Side-by-side benchmarks: run A and B alternately (A B A B ...), N times
each, in one run, and print medians and the ratio B/A. See bench/README.md.

    python3 bench/bench.py [--runs N] [--list] [ENTRY ...]

With no ENTRY every entry runs. Exit status 0 when every entry produced its
numbers, 1 otherwise.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VMM = os.path.join(TOP, "build", "release", "vmm", "vireo-vmm")


def have_vireo_vmm():
    return os.access(VMM, os.X_OK)


# Each entry: what it measures, the lab scenario that measures it, and its
# sides. A side is (label, the scenario's name for it, available?). Side A is
# the reference; side B the one compared against it. A side that is not
# available yet is shown as such and left out of the run.
ENTRIES = {
    "boot-microvm": {
        "what": "boot-to-marker wall time of the inner fixture in the lab (ms, lower is better)",
        "scenario": os.path.join(TOP, "bench", "lab", "bench-boot.sh"),
        "unit": "ms",
        "sides": [
            ("qemu-microvm", "microvm", lambda: True),
            ("vireo-vmm", "vireo", have_vireo_vmm),
        ],
    },
}

DATA_RE = re.compile(r"^DATA (\S+) (.*)$")


def run_entry(name, entry, runs):
    """Run one entry in the lab; return ({side: [values]}, error or None)."""
    sides = [s for s in entry["sides"] if s[2]()]
    missing = [s[0] for s in entry["sides"] if not s[2]()]
    for label in missing:
        print(f"bench: {name}: side {label} is not available yet; measuring without it",
              file=sys.stderr)
    # Time bound: a generous minute per boot, warm-up included.
    bound = 120 + 60 * (runs + 1) * len(sides)
    cmd = ["bash", os.path.join(TOP, "tests", "lab", "run.sh"),
           "--env", "BENCH_SIDES=" + " ".join(s[1] for s in sides),
           "--env", f"BENCH_RUNS={runs}",
           "--timeout", str(bound),
           entry["scenario"]]
    print(f"bench: {name}: {' '.join(cmd[1:])}", file=sys.stderr)
    values = {s[1]: [] for s in sides}
    result = None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=TOP)
    for line in proc.stdout:
        line = line.rstrip("\n")
        m = DATA_RE.match(line)
        if m:
            fields = dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
            side, value = fields.get("side"), fields.get(entry["unit"])
            if side in values and value is not None:
                values[side].append(float(value))
            print("  " + line, file=sys.stderr)
            continue
        if line.startswith("RESULT "):
            result = line
        print("  " + line, file=sys.stderr)
    proc.wait()
    if result is None or not result.startswith("RESULT PASS"):
        return values, result or f"the lab run ended with status {proc.returncode}"
    return values, None


def fmt(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def print_table(rows):
    head = ["entry", "side", "n", "median", "min", "max", "ratio vs A", "runs in order"]
    table = [head]
    for r in rows:
        table.append(r)
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
            sides = ", ".join(f"{'AB'[i]}={s[0]}{'' if s[2]() else ' (not yet)'}"
                              for i, s in enumerate(e["sides"]))
            print(f"{name}: {e['what']}; sides {sides}")
        return 0
    if args.runs < 5:
        print(f"bench: --runs {args.runs} is too few: medians need at least 5 runs per side",
              file=sys.stderr)
        return 2
    names = args.entries or list(ENTRIES)
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
        ref = None
        for i, (label, key, available) in enumerate(entry["sides"]):
            v = values.get(key, [])
            if not v:
                rows.append([name, f"{'AB'[i]} {label}", 0, "-", "-", "-",
                             "not yet" if not available() else "no data", ""])
                continue
            med = statistics.median(v)
            if i == 0:
                ref = med
            ratio = "1.00" if i == 0 else (f"{med / ref:.2f}" if ref else "-")
            rows.append([name, f"{'AB'[i]} {label}", len(v), f"{fmt(med)} {entry['unit']}",
                         fmt(min(v)), fmt(max(v)), ratio, " ".join(fmt(x) for x in v)])
    print()
    print_table(rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
