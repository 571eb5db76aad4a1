#!/usr/bin/env bash
# --net on this host's /dev/net/tun (no guest networking: that is the lab's
# net-tap): option errors exit 2 with one line and create nothing; runtime
# failures exit 1 with one line and leave no tap; a tap vireo-vmm creates is
# gone after it exits; a persistent tap is opened by name and stays; an
# inherited tap fd (fd=N) is taken.  Skips (77) without root or /dev/net/tun.
#   net-tap.sh VMM GUEST
set -u
vmm=$(readlink -f "$1") guest=$(readlink -f "$2")
[ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && command -v ip >/dev/null || exit 77
fail=0
t=vnt$$
bad() { echo "FAIL: $*"; fail=1; }
gone() { ! ip link show "$1" >/dev/null 2>&1; }
# The guest ends itself through the debug-exit port (status 7 for hello).
run() { timeout 60 "$vmm" --kernel "$guest" --console none --debug-exit "$@" 2>&1 </dev/null; }

# option errors: exit 2, one line, no tap
for o in "tap=$t,mac=zz" "tap=$t,bogus=1" "tap=$t,fd=3" "tap=$t,queues=9" "tap=$t,vhost=maybe" \
	 "tap=a/b" "user,tap=$t" "user,hostfwd=tcp::22"; do
	out=$(run --net "$o"); rc=$?
	[ $rc -eq 2 ] || bad "--net $o: exit $rc, expected 2 ($out)"
	[ "$(wc -l <<<"$out")" -eq 1 ] || bad "--net $o: more than one line: $out"
	gone "$t" || bad "--net $o: $t exists"
done
echo "option errors: exit 2, one line each"

# user-mode networking needs no tap and no root; a taken hostfwd port is a
# runtime error naming it
out=$(run --net user,hostfwd=tcp:127.0.0.1:0-:22 2>&1); rc=$?
[ $rc -eq 2 ] || bad "--net user with port 0: exit $rc, expected 2 ($out)"
out=$(run --net user); rc=$?
[ $rc -eq 7 ] || bad "--net user: exit $rc, expected the guest's 7 ($out)"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 -c 'import socket, time, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(30)' >"$dir/port" &
holder=$!
for _ in $(seq 50); do [ -s "$dir/port" ] && break; sleep 0.1; done
port=$(cat "$dir/port")
out=$(run --net "user,hostfwd=tcp:127.0.0.1:$port-:22"); rc=$?
kill $holder 2>/dev/null
[ $rc -eq 1 ] || bad "--net user with a taken port: exit $rc, expected 1 ($out)"
grep -q "cannot forward tcp 127.0.0.1:$port" <<<"$out" || bad "taken port not named: $out"
echo "user-mode networking: boots, and a taken hostfwd port is named"

# runtime failures: exit 1, one line naming the problem, no tap left
out=$(run --net fd=99); rc=$?
[ $rc -eq 1 ] || bad "fd=99: exit $rc, expected 1"
grep -q 'not an open tap file descriptor' <<<"$out" || bad "fd=99: no clear message: $out"
out=$(timeout 60 "$vmm" --kernel /nonexistent --net "tap=$t" 2>&1 </dev/null); rc=$?
[ $rc -eq 1 ] || bad "missing kernel with --net: exit $rc, expected 1"
gone "$t" || bad "the tap $t created before a failure was left behind"
ip link add "$t" type dummy 2>/dev/null && {
	out=$(run --net "tap=$t"); rc=$?
	[ $rc -eq 1 ] || bad "tap=$t (a dummy, not a tap): exit $rc, expected 1"
	grep -q "tap $t" <<<"$out" || bad "tap=$t (not a tap): no clear message: $out"
	ip link del "$t"
}
echo "runtime errors: exit 1, nothing left behind"

# created by vireo-vmm: there while it runs, gone after
out=$(run --net "tap=$t" --net "tap=${t}b,queues=2,vhost=off" --verbose); rc=$?
grep -q "tap $t: created" <<<"$out" || bad "tap=$t was not created: $out"
grep -q "tap ${t}b: created, 2 queue pair" <<<"$out" || bad "multi-queue ${t}b was not created: $out"
grep -q "net net0: $t, MAC " <<<"$out" || bad "no net0 device line"
[ $rc -eq 7 ] || bad "with two --net: exit $rc, expected the guest's 7: $(tail -3 <<<"$out")"
gone "$t" && gone "${t}b" || bad "a tap vireo-vmm created is still there after it exited"
# the same --name gives the same MAC
m1=$(run --name web1 --net "tap=$t" --verbose | sed -n 's/.*net net0: .*MAC \([0-9a-f:]*\).*/\1/p')
m2=$(run --name web1 --net "tap=$t" --verbose | sed -n 's/.*net net0: .*MAC \([0-9a-f:]*\).*/\1/p')
m3=$(run --name web2 --net "tap=$t" --verbose | sed -n 's/.*net net0: .*MAC \([0-9a-f:]*\).*/\1/p')
[ -n "$m1" ] && [ "$m1" = "$m2" ] && [ "$m1" != "$m3" ] || bad "generated MACs: web1 $m1, $m2; web2 $m3"
echo "created taps removed at exit; MAC for --name web1: $m1"

# persistent: opened by name, still there after
if ip tuntap add dev "$t" mode tap 2>/dev/null; then
	out=$(run --net "tap=$t,mac=52:54:00:12:34:56" --verbose); rc=$?
	grep -q "tap $t: opened" <<<"$out" || bad "persistent $t was not opened by name: $out"
	grep -q "MAC 52:54:00:12:34:56" <<<"$out" || bad "mac= was not used"
	ip link show "$t" >/dev/null 2>&1 || bad "the persistent tap $t went away"
	ip tuntap del dev "$t" mode tap
	echo "persistent tap opened by name and kept"
fi

# fd=N: a tap a parent opened (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
if command -v python3 >/dev/null; then
	out=$(python3 - "$vmm" "$guest" "$t" <<'PY' 2>&1
import fcntl, os, struct, subprocess, sys
vmm, guest, name = sys.argv[1:4]
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', name.encode(), 0x0002 | 0x1000 | 0x4000))
r = subprocess.run([vmm, '--kernel', guest, '--console', 'none', '--verbose', '--debug-exit',
                    '--net', 'fd=%d' % fd], pass_fds=[fd], stdin=subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
print(r.stdout.decode(errors='replace'))
print('rc=%d' % r.returncode)
PY
)
	grep -q "net net0: $t, MAC" <<<"$out" || bad "fd=N: the inherited tap $t was not used: $(tail -5 <<<"$out")"
	grep -q '^rc=7$' <<<"$out" || bad "fd=N: $(tail -3 <<<"$out")"
	echo "fd=N: inherited tap used"
fi
gone "$t" || { ip link del "$t" 2>/dev/null; bad "$t left behind at the end"; }
exit $fail
