#!/usr/bin/env bash
# Save and restore of a VM with a virtio-net on a tap: in a network
# namespace of its own (never the host's interfaces), a persistent tap
# that a packet socket watches; the virtio guest ("netsave") sends one
# broadcast frame a round on the transmit queue, each answered with an
# MSI-X interrupt.  The VM is saved after round 3 and restored in a new
# vireo-vmm (sandboxed, the defaults as root) that opens the same tap by
# name: the guest's remaining rounds go out through the restored queue,
# and the tap sees every round's frame exactly once, in order (none lost,
# none sent again).  Refused: a restore whose --net differs from the saved
# net (one error line, status 1, the guest never runs).  Skips (77)
# without root, /dev/net/tun or ip netns.
#   save-restore-net.sh VMM GUEST (virtio.elf)
set -u
vmm=$(readlink -f "$1") guest=$(readlink -f "$2")
[ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && command -v ip >/dev/null || exit 77
ns=vsr$$
. "$(dirname "$0")/lib-api.sh"
api_init
cap=
trap '[ -n "$cap" ] && kill $cap 2>/dev/null; api_cleanup; ip netns del "$ns" 2>/dev/null' EXIT
ip netns add "$ns" 2>/dev/null || { echo "cannot make a network namespace: skipped"; exit 77; }
save=$dir/save
# (What runs in the background is started by ip itself, not through
# this function, so that $! is its process and the clean-up reaches it.)
in_ns() { ip netns exec "$ns" "$@"; }

in_ns ip tuntap add dev vt0 mode tap || fail "cannot make a tap in the namespace"
in_ns ip link set vt0 up
in_ns ip link set lo up
# The frames of EtherType 0x88b5 the guest sends, one payload a line.
ip netns exec "$ns" python3 -c '
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
s.bind(("vt0", 0))
print("listening", flush=True)
while True:
    f = s.recv(2048)
    p = f[14:]
    print(p[:p.index(b"\0")].decode("ascii", "replace") if b"\0" in p else "?", flush=True)
' >"$dir/cap.log" 2>"$dir/cap.err" &
cap=$!
for _ in $(seq 50); do grep -q listening "$dir/cap.log" && break; sleep 0.1; done
grep -q listening "$dir/cap.log" || fail "the packet socket did not start"

# 1. The net guest, saved after round 3.
ip netns exec "$ns" "$vmm" --debug-exit --sandbox=off --net tap=vt0,mac=52:54:00:12:34:56,vhost=off,id=lan \
	--cmdline netsave --api-socket "$sock" --kernel "$guest" \
	</dev/null >"$dir/first.out" 2>"$dir/first.err" &
pid=$!
wait_for "$dir/first.out" "^net round 3$"
call PUT /vm/save "{\"dir\": \"$save\", \"exit\": true}"; expect 204
finish first 0
grep -q "virtio-net save ok" "$dir/first.out" && fail "the guest finished before the save"
in_ns ip link show vt0 >/dev/null 2>&1 || fail "the persistent tap is gone after the save"

# 2. Refused: a --net that differs from the saved one.
in_ns "$vmm" --restore "$save" --net tap=vt0,id=other </dev/null >"$dir/id.out" 2>"$dir/id.err"
rc=$?
[ $rc -eq 1 ] || fail "a --net of another id: status $rc, expected 1"
[ "$(wc -l <"$dir/id.err")" -eq 1 ] || fail "a --net of another id: not one error line"
grep -q "does not match the saved net 0" "$dir/id.err" || fail "a --net of another id: no reason"
[ -s "$dir/id.out" ] && fail "a --net of another id: the guest ran"

# 3. Restored (the tap by its saved name): the guest goes on from the next
#    round through the same queue.
ip netns exec "$ns" "$vmm" --restore "$save" --api-socket "$sock" </dev/null \
	>"$dir/second.out" 2>"$dir/second.err" &
pid=$!
wait_for "$dir/second.out" "virtio-net save ok"
finish second 0
grep -q "virtio-net save: start\|virtio device at" "$dir/second.out" &&
	fail "the restored guest started again"
went_on 'net round ' "$dir/first.out" "$dir/second.out"

# 4. The tap saw each round once, in order.
for _ in $(seq 50); do [ "$(grep -c ROUND "$dir/cap.log")" -ge 8 ] && break; sleep 0.1; done
sleep 0.5
got=$(grep ROUND "$dir/cap.log" | sed 's/VIREO NET ROUND //' | tr '\n' ' ')
[ "$got" = "1 2 3 4 5 6 7 8 " ] || fail "the tap saw rounds '$got', expected '1 2 3 4 5 6 7 8 '"
echo "ok: saved at '$last', restored at '$first', the tap saw rounds $got"
