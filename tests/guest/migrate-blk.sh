#!/usr/bin/env bash
# Live migration of a VM with a writable virtio-blk disk on shared storage
# (one file, both processes on this host).
#   migrate-blk.sh VMM GUEST CPUS [nolog]
# 1. The virtio guest's "migblk" mode reads 256 KiB from the disk into one
#    of two buffers per round and checks the other buffer (read the round
#    before): the device writes guest RAM, the vCPUs only read it.  It is
#    migrated live (pre-copy, several rounds) while it reads; the target
#    must go on from where the source was and finish with every buffer
#    right ("virtio-blk migrate ok"), then holds until the test sends a
#    byte to its serial port.  With "nolog" the source runs with
#    the test hook VIREO_TEST_MIGRATE_NO_DEVICE_LOG (the VMM's own dirty
#    log off), and the test expects the guest to fail instead: that shows
#    the check can fail (a page the device wrote after it was copied).
# 2. The disk's lock: held by the source while the migration copies RAM
#    (a third process cannot lock the file), released by the source only
#    at the switch-over ("released the locks"), then held by the target.
#    Both report the same downtime: the source's GET /migrate and log and
#    the target's GET /migrate and log; the progress fields are there.
# 3. (1 vCPU) A target that cannot build the VM (its --disk names a file
#    that does not exist): the source, which had released the lock, takes
#    it back, runs on, and the guest finishes there.
# 4. (1 vCPU, root) Both sandboxed (--sandbox, the default as root), over
#    TCP: the source's connector process opens the connection outside its
#    network namespace; the guest finishes on the target.
set -u
vmm=$1 guest=$2 cpus=$3 mode=${4:-}
. "$(dirname "$0")/lib-api.sh"
need_kvm
api_init
wait_secs=120

# The disk: every 8-byte word holds its byte offset times K.
disk=$dir/disk.img
python3 -c "
import array, sys
K = 0x9e3779b97f4a7c15; M = (1 << 64) - 1
a = array.array('Q', ((o * 8 * K) & M for o in range(8 << 17)))
open(sys.argv[1], 'wb').write(a.tobytes())" "$disk" || fail "cannot make the disk"
chmod 0666 "$disk"

# locked FILE: 0 when another process holds a lock on it (an exclusive
# OFD lock could not be placed), 1 when it is free.  F_OFD_GETLK only
# asks: the probe never holds a lock the VMs could trip over.
locked() {
	python3 -c "
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
r = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 0, 0))
sys.exit(0 if struct.unpack('hhqqi4x', r)[0] != fcntl.F_UNLCK else 1)" "$1"
}

tsock=$dir/tapi.sock

boot=(--debug-exit --memory 64M --cpus "$cpus" --cmdline "migblk cpus=$cpus"
      --disk "path=$disk,id=d0" --kernel "$guest")
# 1 and 2: the guest holds at the end until it reads a byte from the
# serial port (the target's stdin, a FIFO this shell keeps open on fd 3),
# so that the target's GET /migrate is asked while the target still runs.
hboot=(--debug-exit --memory 64M --cpus "$cpus" --cmdline "migblk hold cpus=$cpus"
       --disk "path=$disk,id=d0" --kernel "$guest")
mkfifo "$dir/target.in" || fail "mkfifo"
exec 3<>"$dir/target.in"

# 1 and 2.
u=unix:$dir/target.sock
"$vmm" "${hboot[@]}" --api-socket "$tsock" --incoming "$u" --verbose <"$dir/target.in" \
	>"$dir/target.out" 2>"$dir/target.err" &
tpid=$!; pids+=("$tpid")
wait_for "$dir/target.err" "waiting for a migration" $tpid
env ${mode:+VIREO_TEST_MIGRATE_NO_DEVICE_LOG=1} "$vmm" "${hboot[@]}" --sandbox=off \
	--api-socket "$sock" </dev/null >"$dir/source.out" 2>"$dir/source.err" &
spid=$!; pids+=("$spid")
wait_for "$dir/source.out" "^blk round 100$" $spid
locked "$disk" || fail "the source does not hold the disk's lock"
# A capped link (4 Mbit/s; the guest RAM not zero: about 2 MB) so that
# rounds run while the guest reads.
call PUT /migrate "{\"uri\": \"$u\", \"bandwidth_mbps\": 4, \"downtime_ms\": 1500}"
[ "$code" = 202 ] || fail "PUT /migrate: $code $body"
# GET /migrate every 50 ms until it is no longer active: the progress
# fields of the last answer that said active, and the last answer.
active= last= n=0
for _ in $(seq 1200); do
	call -q GET /migrate
	[ -n "${VERBOSE:-}" ] && echo "$code $body"
	[ "$code" = 200 ] || break
	last=$body
	grep -q '"state":"active"' <<<"$body" || break
	grep -q '"bytes_sent":[1-9]' <<<"$body" && active=$body
	# The lock stays with the source until the switch-over.
	if [ $((++n % 4)) = 0 ]; then
		locked "$disk" || grep -q "released the locks" "$dir/source.err" ||
			fail "the disk is not locked during the pre-copy"
	fi
	sleep 0.05
done
echo "GET /migrate (active) -> $active"
[ -n "$active" ] || fail "GET /migrate never said active with bytes sent"
for k in bytes_sent bytes_remaining rounds dirty_rate_bps bandwidth_bps expected_downtime_ms \
	 pages zero_pages throttle_percent; do
	v=$(json "$active" $k)
	[[ "$v" =~ ^[0-9]+$ ]] || fail "GET /migrate: $k is '$v'"
done
[ "$(json "$active" direction)" = out ] || fail "direction: $active"
[ "$(json "$active" downtime_ms)" = null ] || fail "a downtime while active: $active"
echo "GET /migrate (last) -> $last"
finish source 0 $spid
grep -q "migrated to $u" "$dir/source.err" || fail "the source does not say it migrated"
grep -q "released the locks of 1 writable disk for the target" "$dir/source.err" ||
	fail "the source did not say it released the disk"
if [ -n "$mode" ]; then
	# Without the VMM's dirty log the target's buffers are stale ("FAIL:
	# stale disk data"), or its used ring is and a read never completes
	# (the guest waits: killed after 60 s).  Either is the expected
	# failure; a guest that finishes its checks is not.
	for _ in $(seq 600); do
		kill -0 $tpid 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $tpid 2>/dev/null; then
		kill -KILL $tpid
		wait $tpid
		grep -q "^virtio-blk migrate ok$" "$dir/target.out" && fail "nolog: the guest passed"
		echo "without the device dirty log: the target's guest hung (a stale used ring)"
	else
		wait $tpid
		grep -q "FAIL: " "$dir/target.out" || fail "nolog: the target's guest did not fail"
		echo "without the device dirty log: $(grep 'FAIL' "$dir/target.out")"
	fi
	echo ok
	exit 0
fi
wait_for "$dir/target.err" "migrated in" $tpid
# A disk opens once the source has let it go: the VM is built after the
# stream's end.
grep -q "built while the stream comes in" "$dir/target.err" &&
	fail "a target with a disk built the VM before the stream's end"
# The target runs the guest: it holds the disk now.
call -u "$tsock" GET /migrate
[ "$code" = 200 ] || fail "target GET /migrate: $code"
[ "$(json "$body" state)" = completed ] || fail "target: $body"
[ "$(json "$body" direction)" = in ] || fail "target direction: $body"
[ "$(json "$body" bytes_received)" -gt 0 ] || fail "target bytes_received: $body"
tdown=$(json "$body" downtime_ms)
sdown=$(grep -o 'migrated to .*: downtime [0-9]* ms' "$dir/source.err" | grep -o 'downtime [0-9]*' | grep -o '[0-9]*$')
[ -n "$sdown" ] && [ "$tdown" = "$sdown" ] ||
	fail "downtime: target $tdown ms, source's log '$sdown'"
grep -q "migrated in: .*downtime $tdown ms" "$dir/target.err" || fail "target log: no downtime $tdown"
if [ "$(json "$last" state)" = completed ]; then
	[ "$(json "$last" downtime_ms)" = "$tdown" ] || fail "source GET /migrate downtime: $last"
fi
kill -0 $tpid 2>/dev/null || fail "the target ended before it was let go"
locked "$disk" || fail "the target does not hold the disk"
wait_for "$dir/target.out" "^holding$" $tpid
printf x >&3
finish target 0 $tpid
grep -q "^virtio-blk migrate ok$" "$dir/target.out" || fail "target: no 'virtio-blk migrate ok'"
grep -q "virtio-blk migrate: start" "$dir/target.out" && fail "the target started the guest again"
went_on 'blk round ' "$dir/source.out" "$dir/target.out"
locked "$disk" && fail "the disk is still locked after both ended"
echo "migrated with the disk: source at '$last', target from '$first'; downtime $tdown ms on both"
[ "$cpus" = 1 ] || { echo ok; exit 0; }

# 3. The target cannot open the disk: the source takes the lock back.
u=unix:$dir/target2.sock
tboot=(--debug-exit --memory 64M --cpus 1 --cmdline "migblk cpus=1"
       --disk "path=$dir/missing.img,id=d0" --kernel "$guest")
"$vmm" "${tboot[@]}" --incoming "$u" </dev/null >"$dir/target2.out" 2>"$dir/target2.err" &
tpid=$!; pids+=("$tpid")
wait_for "$dir/target2.err" "waiting for a migration" $tpid
"$vmm" "${boot[@]}" --sandbox=off --api-socket "$sock" </dev/null \
	>"$dir/source2.out" 2>"$dir/source2.err" &
spid=$!; pids+=("$spid")
wait_for "$dir/source2.out" "^blk round 50$" $spid
call PUT /migrate "{\"uri\": \"$u\"}"
[ "$code" = 202 ] || fail "PUT /migrate: $code $body"
finish target2 1 $tpid
wait_for "$dir/source2.err" "took the locks of 1 writable disk back" $spid
locked "$disk" || fail "the source runs on without the disk's lock"
call GET /migrate
[ "$(json "$body" state)" = failed ] || fail "not failed: $body"
finish source2 0 $spid
grep -q "released the locks of 1 writable disk" "$dir/source2.err" || fail "source2 never released"
grep -q "^virtio-blk migrate ok$" "$dir/source2.out" || fail "source2: the guest did not finish"
[ -s "$dir/target2.out" ] && fail "target2: the guest ran"
echo "target failed after the hand-over: $(grep error "$dir/target2.err" | head -1)"
[ "$(id -u)" = 0 ] || { echo "not root: the sandboxed migration skipped"; echo ok; exit 0; }

# 4. Sandboxed source and target, over TCP.
port=$(free_port)
u=tcp:127.0.0.1:$port
"$vmm" "${boot[@]}" --sandbox=on --incoming "$u" </dev/null >"$dir/target3.out" 2>"$dir/target3.err" &
tpid=$!; pids+=("$tpid")
wait_for "$dir/target3.err" "waiting for a migration" $tpid
"$vmm" "${boot[@]}" --sandbox=on --api-socket "$sock" </dev/null \
	>"$dir/source3.out" 2>"$dir/source3.err" &
spid=$!; pids+=("$spid")
wait_for "$dir/source3.out" "^blk round 50$" $spid
call PUT /migrate "{\"uri\": \"$u\"}"
[ "$code" = 202 ] || fail "sandboxed PUT /migrate: $code $body"
finish source3 0 $spid
grep -q "migrated to $u" "$dir/source3.err" || fail "the sandboxed source did not migrate"
finish target3 0 $tpid
grep -q "^virtio-blk migrate ok$" "$dir/target3.out" || fail "target3: no 'virtio-blk migrate ok'"
echo "sandboxed: $(grep 'migrated to' "$dir/source3.err")"
echo ok
