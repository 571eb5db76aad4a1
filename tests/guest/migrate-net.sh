#!/usr/bin/env bash
# Live migration of a VM that receives frames all the while: the devices
# of a paused VM still run, and a frame that comes in between the taking
# of the state and the reading of the last pages must not reach the
# target's RAM (the target's device would then use that buffer again).
#   migrate-net.sh VMM GUEST (virtio.elf)
# In a network namespace of its own (never the host's interfaces): two
# persistent taps, one per VMM, into each of which a packet socket sends
# a frame of EtherType 0x88b5 every 50 ms (slow enough for the guest to
# keep buffers on its ring, on a slow host too, so that the device fills
# them while the VM is paused).  The virtio
# guest's "netrx" mode checks every buffer the device gives back and
# that no buffer off its ring is written (test_netrx).  The source runs
# with the test hook VIREO_TEST_MIGRATE_FINAL_DELAY_MS: 300 ms between
# the state's taking and the last pages' reading, in which frames keep
# coming.  The target's guest must go on where the source's stopped,
# take its 600 frames with every check passed, and the target must not
# say its RAM and device state disagree.  Before that, a target whose
# --net has another MAC refuses the stream and the source runs on.  Skips
# (77) without root,
# /dev/net/tun or ip netns.
set -u
vmm=$(readlink -f "$1") guest=$(readlink -f "$2")
. "$(dirname "$0")/lib-api.sh"
need_kvm
[ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && command -v ip >/dev/null ||
	{ echo "needs root, /dev/net/tun and ip: skipped"; exit 77; }
ns=vmn$$
api_init
snd=
trap '[ -n "$snd" ] && kill $snd 2>/dev/null; api_cleanup; ip netns del "$ns" 2>/dev/null' EXIT
ip netns add "$ns" 2>/dev/null || { echo "cannot make a network namespace: skipped"; exit 77; }
# (The processes started in the background are started by ip itself, not
# through this function, so that $! is theirs and the clean-up's kill
# reaches them.)
in_ns() { ip netns exec "$ns" "$@"; }
wait_secs=120

in_ns sysctl -qw net.ipv6.conf.default.disable_ipv6=1
for t in vn0 vn1; do
	in_ns ip tuntap add dev $t mode tap || fail "cannot make a tap in the namespace"
	in_ns ip link set $t up
done
# The sender: one frame a round into each tap (the one without a reader
# yet may refuse it).
ip netns exec "$ns" python3 -c '
import socket, time
socks = []
for name in ("vn0", "vn1"):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((name, 0))
    socks.append(s)
print("sending", flush=True)
n = 0
while True:
    n += 1
    f = b"\xff" * 6 + b"\x52\x54\x00\x12\x34\x99" + b"\x88\xb5" + b"VIREO RX %d" % n
    f += b"\0" * (60 - len(f))
    for s in socks:
        try:
            s.send(f)
        except OSError:
            pass
    time.sleep(0.05)
' >"$dir/send.log" 2>"$dir/send.err" &
snd=$!
wait_for "$dir/send.log" sending $snd

boot=(--debug-exit --sandbox=off --memory 64M --cpus 1 --cmdline netrx --kernel "$guest")
# target N MAC: a target (targetN) on vn1 whose net has MAC; tpid, u.
target() {
	u=unix:$dir/target$1.sock
	ip netns exec "$ns" "$vmm" "${boot[@]}" --net tap=vn1,mac=$2,vhost=off,id=lan \
		--incoming "$u" --verbose </dev/null >"$dir/target$1.out" 2>"$dir/target$1.err" &
	tpid=$!; pids+=("$tpid")
	wait_for "$dir/target$1.err" "waiting for a migration" $tpid
}
ip netns exec "$ns" env VIREO_TEST_MIGRATE_FINAL_DELAY_MS=300 "$vmm" "${boot[@]}" \
	--net tap=vn0,mac=52:54:00:12:34:56,vhost=off,id=lan --api-socket "$sock" \
	</dev/null >"$dir/source.out" 2>"$dir/source.err" &
spid=$!; pids+=("$spid")
wait_for "$dir/source.out" "^net rx 100$" $spid

# A target whose command line gives the net another MAC: it builds the
# VM from its command line while the stream comes in (no disk, each net
# with its MAC), finds the saved net unlike it, and never runs; the
# source runs on.
target 0 52:54:00:12:34:57
call PUT /migrate "{\"uri\": \"$u\"}"
[ "$code" = 202 ] || fail "PUT /migrate (1): $code $body"
finish target0 1 $tpid
grep -q "built while the stream comes in" "$dir/target0.err" ||
	fail "target0 did not build the VM while the stream came in"
grep -q "does not match the saved net" "$dir/target0.err" ||
	fail "target0: no clear error for the other MAC"
[ -s "$dir/target0.out" ] && fail "target0's guest ran: $(head -3 "$dir/target0.out")"
wait_for "$dir/source.err" "failed: .*the VM runs on" $spid
n=$(grep -c '^net rx' "$dir/source.out")
wait_for "$dir/source.out" "^net rx $(( (n + 1) * 50 ))$" $spid
echo "a target with another MAC: '$(grep -o 'does not match the saved net.*' "$dir/target0.err")'; the source runs on"

target "" 52:54:00:12:34:56
call PUT /migrate "{\"uri\": \"$u\"}"
[ "$code" = 202 ] || fail "PUT /migrate: $code $body"
finish source 0 $spid
grep -q "built while the stream comes in" "$dir/target.err" ||
	fail "the target did not build the VM while the stream came in"
grep -q "migrated to $u" "$dir/source.err" || fail "the source does not say it migrated"
grep -q "FAIL" "$dir/source.out" && fail "the source's guest failed: $(grep FAIL "$dir/source.out")"
finish target 0 $tpid
grep -q "do not match" "$dir/target.err" &&
	fail "the target found RAM and device state apart: $(grep 'do not match' "$dir/target.err")"
grep -q "FAIL" "$dir/target.out" && fail "the target's guest failed: $(grep FAIL "$dir/target.out")"
grep -q "^virtio-net rx ok$" "$dir/target.out" || fail "target: no 'virtio-net rx ok'"
grep -q "virtio-net rx: start" "$dir/target.out" && fail "the target started the guest again"
went_on 'net rx ' "$dir/source.out" "$dir/target.out"
echo "migrated while receiving: source at '$last', target from '$first';" \
	"$(grep -o 'downtime [0-9]* ms' "$dir/source.err" | head -1)"
echo ok
