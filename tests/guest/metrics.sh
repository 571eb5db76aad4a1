#!/usr/bin/env bash
# GET /metrics and PUT /vm/poweroff on running tiny guests.
# 1. The virtio guest ("save": rounds of a sector write and read-back on a
#    virtio-blk disk): two scrapes a few rounds apart, the disk's and the
#    vCPU's counters move; then PUT /vm/poweroff while it runs: exit 0,
#    the rounds written so far are in the disk file.
# 2. The savewrite guest with a balloon: the balloon's gauges follow
#    PUT /vm/balloon; PUT /vm/poweroff of a paused VM: exit 0.
#   metrics.sh VMM GUEST (virtio.elf) OTHER_GUEST (savewrite.elf)
set -u
vmm=$1 guest=$2 other=$3
. "$(dirname "$0")/lib-api.sh"
api_init
call_show=200
disk=$dir/disk.img
truncate -s 1M "$disk"
# metric FILE NAME{LABELS}: its value (empty when missing)
metric() { grep -F "$2 " "$1" | head -1 | awk '{print $2}'; }
# more FIRST SECOND NAME{LABELS}: the value grew
more() {
	local a b
	a=$(metric "$1" "$3") b=$(metric "$2" "$3")
	[ -n "$a" ] && [ -n "$b" ] || fail "no $3 in the metrics"
	python3 -c "import sys; sys.exit(0 if float(sys.argv[2]) > float(sys.argv[1]) else 1)" "$a" "$b" ||
		fail "$3 did not grow: $a then $b"
	echo "$3: $a -> $b"
}

# 1. Counters move; poweroff of a running VM.
"$vmm" --debug-exit --disk "$disk" --cmdline save --api-socket "$sock" \
	--kernel "$guest" </dev/null >"$dir/disk.out" 2>"$dir/disk.err" &
pid=$!
wait_for "$dir/disk.out" "^io round 2$"
code=$(curl -s -o "$dir/m1" -D "$dir/h1" -w '%{http_code}' --max-time 60 --unix-socket "$sock" \
	http://localhost/metrics) || code=000
expect 200
grep -qi '^content-type: text/plain; version=0.0.4' "$dir/h1" || fail "not Prometheus text: $(cat "$dir/h1")"
wait_for "$dir/disk.out" "^io round 5$"
curl -s -o "$dir/m2" --max-time 60 --unix-socket "$sock" http://localhost/metrics || fail "second scrape"
grep -q '^# TYPE vireo_vcpu_exits_total counter$' "$dir/m2" || fail "no TYPE line"
more "$dir/m1" "$dir/m2" 'vireo_disk_written_bytes_total{disk="disk0"}'
more "$dir/m1" "$dir/m2" 'vireo_disk_write_ops_total{disk="disk0"}'
more "$dir/m1" "$dir/m2" 'vireo_disk_read_bytes_total{disk="disk0"}'
more "$dir/m1" "$dir/m2" 'vireo_disk_read_ops_total{disk="disk0"}'
more "$dir/m1" "$dir/m2" 'vireo_vcpu_exits_total{vcpu="0",reason="io"}'
more "$dir/m1" "$dir/m2" 'vireo_vcpu_run_seconds_total{vcpu="0"}'
grep -q "vireo_balloon" "$dir/m2" && fail "balloon metrics without a balloon"
# every sample line: NAME{LABELS} VALUE
grep -v '^#' "$dir/m2" | grep -vqE '^vireo_[a-z_]+(\{[^}]*\})? [0-9.]+$' && fail "a malformed line"
call PUT /vm/poweroff; expect 204
finish disk 0
[ -e "$sock" ] && fail "disk: the socket is still there"
grep -q "virtio-blk save ok" "$dir/disk.out" && fail "the guest finished before the poweroff"
last=$(grep '^io round' "$dir/disk.out" | tail -1)
python3 - "$disk" "${last#io round }" <<'PY' || fail "the disk lacks a round written before the poweroff"
import sys
d = open(sys.argv[1], 'rb').read()
for r in range(1, int(sys.argv[2]) + 1):
    want = bytes((r * 31 + i * 7 + 1) & 0xff for i in range(512))
    if d[(2 + r) * 512:(3 + r) * 512] != want:
        sys.exit("round %d's sector differs" % r)
PY

# 2. The balloon's gauges; poweroff while paused.
"$vmm" --debug-exit --memory 64M --balloon --api-socket "$sock" \
	--kernel "$other" </dev/null >"$dir/balloon.out" 2>"$dir/balloon.err" &
pid=$!
wait_for "$dir/balloon.out" "^round 1$"
call PUT /vm/balloon '{"target_mib": 16}'; expect 204
call GET /metrics; expect 200
grep -q '^vireo_balloon_target_bytes 16777216$' <<<"$body" || fail "no balloon target"
grep -q '^vireo_balloon_actual_bytes 0$' <<<"$body" || fail "no balloon actual"
call PUT /vm/pause; expect 204
call GET /metrics; expect 200
call PUT /vm/poweroff '{}'; expect 204
finish balloon 0
[ -e "$sock" ] && fail "balloon: the socket is still there"
echo "ok: counters moved, poweroff exits 0 (running and paused), disk holds '$last'"
