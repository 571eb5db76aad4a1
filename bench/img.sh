#!/usr/bin/env bash
# Side-by-side benchmark of vireo-img against qemu-img on the same files.
#
#   bench/img.sh [-r RUNS] [-d DIR] [-m MiB] [--vireo PATH] [--only ROW-GLOB]
#
# For every row, the two tools run the same command line on the same kind of
# file, alternating (qemu, vireo, qemu, vireo...) RUNS times (default 5);
# the table shows median wall times and ratio = qemu_time / vireo_time
# (the speed ratio: higher is better for vireo).  Goals: at least 1.0x on
# every row, 1.3x on random 4 KiB writes.  Timings are reported, never
# asserted: this script exits 0 whatever the ratios (non-zero only when a
# command fails).  Uses build/release/cli/vireo-img by default (run
# `bash scripts/build.sh release` first).
#
# Rows: `bench` sequential and random (a large prime step that wraps around
# the image) reads and writes of 4 KiB and 64 KiB; `convert` raw->qcow2,
# qcow2->raw and compressed (-c) raw->qcow2.  Write rows start each run on a
# fresh empty image made by qemu-img.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=5 dir="" mib=256 vireo="$top/build/release/cli/vireo-img" only='*'
while [ $# -gt 0 ]; do
	case "$1" in
	-r) runs=$2; shift ;;
	-d) dir=$2; shift ;;
	-m) mib=$2; shift ;;
	--vireo) vireo=$2; shift ;;
	--only) only=$2; shift ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "img.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
qemu=$(command -v qemu-img) || { echo "img.sh: qemu-img not found (apt-get install qemu-utils)" >&2; exit 2; }
[ -x "$vireo" ] || { echo "img.sh: $vireo not found (bash scripts/build.sh release, or --vireo PATH)" >&2; exit 2; }
dir=${dir:-$(mktemp -d "${TMPDIR:-/var/tmp}/vireo-bench-img.XXXXXX")}
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
cd "$dir"
size=$((mib * 1024 * 1024))

echo "# preparing ${mib} MiB test files in $dir" >&2
# Source data: mixed random, patterned and zero regions, ~75% allocated.
python3 - "$size" <<'PY'
import os, random, sys
size = int(sys.argv[1]); r = random.Random(1)
with open("src.raw", "wb") as f:
    f.truncate(size)
    for off in range(0, size, 1 << 20):
        k = r.randrange(4)
        if k == 0:
            continue
        f.seek(off)
        f.write(os.urandom(1 << 20) if k == 1 else bytes([k * 17 + (off >> 20) % 200]) * (1 << 20))
PY
"$qemu" convert -f raw -O qcow2 src.raw full.qcow2
head -c $((size / 4)) src.raw >small.raw

prime=7919
# name | setup (untimed, run before each timed command) | command args
ROWS=(
"bench read seq 4k||bench -f qcow2 -c $((size / 4096)) -s 4096 full.qcow2"
"bench read seq 64k||bench -f qcow2 -c $((size / 65536)) -s 65536 full.qcow2"
"bench read rand 4k||bench -f qcow2 -c 32768 -s 4096 -S $((4096 * prime)) full.qcow2"
"bench read rand 64k||bench -f qcow2 -c 4096 -s 65536 -S $((65536 * prime)) full.qcow2"
"bench write seq 4k|fresh|bench -f qcow2 -w -c $((size / 4096 / 2)) -s 4096 w.qcow2"
"bench write seq 64k|fresh|bench -f qcow2 -w -c $((size / 65536)) -s 65536 w.qcow2"
"bench write rand 4k|fresh|bench -f qcow2 -w -c 32768 -s 4096 -S $((4096 * prime)) w.qcow2"
"bench write rand 64k|fresh|bench -f qcow2 -w -c 4096 -s 65536 -S $((65536 * prime)) w.qcow2"
"convert raw->qcow2|rmout|convert -f raw -O qcow2 src.raw out.qcow2"
"convert qcow2->raw|rmout|convert -f qcow2 -O raw full.qcow2 out.raw"
"convert -c raw->qcow2|rmout|convert -c -f raw -O qcow2 small.raw out.qcow2"
)

setup() {
	case "$1" in
	fresh) rm -f w.qcow2; "$qemu" create -q -f qcow2 w.qcow2 "$size" ;;
	rmout) rm -f out.qcow2 out.raw ;;
	esac
	sync
}

timeit() {   # tool args... ; prints seconds
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>bench.err || { echo "img.sh: failed: $* ($(head -1 bench.err))" >&2; return 1; }
	t1=$(date +%s%N)
	echo $(( (t1 - t0) / 1000 ))
}

# same_places ARGS: do both tools touch the same bytes with these bench
# arguments?  Runs them as pattern writes on two fresh images and compares.
same_places() {
	local a=${*/bench -f qcow2 -w/bench -f qcow2} img
	a=${a/bench -f qcow2/bench -f qcow2 -w --pattern=90}
	rm -f p1.qcow2 p2.qcow2
	"$qemu" create -q -f qcow2 p1.qcow2 "$size"
	"$qemu" create -q -f qcow2 p2.qcow2 "$size"
	img=${a##* }
	"$qemu" ${a% *} p1.qcow2 >/dev/null 2>&1 && "$vireo" ${a% *} p2.qcow2 >/dev/null 2>&1 &&
		"$qemu" compare -q p1.qcow2 p2.qcow2
}

printf '%-22s %12s %12s %8s %6s\n' "row" "qemu-img s" "vireo-img s" "ratio" "goal"
status=0
for row in "${ROWS[@]}"; do
	IFS='|' read -r name prep args <<<"$row"
	# shellcheck disable=SC2053
	[[ $name == $only ]] || continue
	if [[ $args == bench* ]] && ! same_places $args; then
		printf '%-22s %s\n' "$name" "NOT COMPARABLE: the tools access different offsets with these flags"
		continue
	fi
	qs=() vs=()
	for i in $(seq 1 "$runs"); do
		setup "$prep"; q=$(timeit "$qemu" $args) || { status=1; break; }
		setup "$prep"; v=$(timeit "$vireo" $args) || { status=1; break; }
		qs+=("$q") vs+=("$v")
	done
	[ ${#vs[@]} -eq "$runs" ] || { printf '%-22s %s\n' "$name" "FAILED"; continue; }
	goal=1.0
	[ "$name" = "bench write rand 4k" ] && goal=1.3
	python3 - "$name" "$goal" "${qs[*]}" "${vs[*]}" <<'PY'
import statistics, sys
name, goal = sys.argv[1], float(sys.argv[2])
q = statistics.median(int(x) for x in sys.argv[3].split()) / 1e6
v = statistics.median(int(x) for x in sys.argv[4].split()) / 1e6
ratio = q / v if v else float("inf")
print("%-22s %12.3f %12.3f %7.2fx %5.1fx %s" % (name, q, v, ratio, goal, "" if ratio >= goal else "<- below goal"))
PY
done
echo "# runs=$runs per tool, alternating; ratio = qemu-img time / vireo-img time (higher is better)"
exit $status
