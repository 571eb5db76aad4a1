#!/usr/bin/env bash
# The control API (--api-socket): GET /vm, pause (synchronous), resume,
# errors, a second vireo-vmm refused on the same path, shutdown through
# the ACPI power button (the guest powers off, exit 0) and the socket
# removed at the end.  Run as root, the first VM is sandboxed and filtered
# (the defaults); the second runs without the sandbox (the builder removes
# the socket) over a stale socket left at the path.
# A third VM reboots again and again (--on-reboot restart) under
# requests: the socket serves every VM, and answers 409 between them.
#   api.sh VMM GUEST (tests/guest/pwrbtn.elf) RESET_GUEST (hello.elf)
set -u
vmm=$1 guest=$2 reset_guest=$3
. "$(dirname "$0")/lib-api.sh"
api_init
api_timeout=20
finish_secs=30
has() { grep -qF -- "$1" <<<"$body" || fail "expected '$1' in the answer"; }

# start ARGS...: a VM with the API, once it waits for the power button
start() {
	"$vmm" --debug-exit --api-socket "$sock" --kernel "$guest" "$@" \
		</dev/null >"$dir/vm.out" 2>"$dir/vm.err" &
	pid=$!
	for _ in $(seq 600); do
		grep -q "waiting for the power button" "$dir/vm.out" && [ -S "$sock" ] && break
		kill -0 $pid 2>/dev/null || fail "vireo-vmm ended early"
		sleep 0.1
	done
	[ -S "$sock" ] || fail "no socket at $sock"
}

# shutdown: PUT /vm/shutdown, the guest powers off, vireo-vmm exits 0
shutdown() {
	call PUT /vm/shutdown; expect 204
	finish vm 0
	grep -q "power button pressed" "$dir/vm.out" || fail "the guest did not see the power button"
	[ -e "$sock" ] && fail "the socket is still there after the exit"
	return 0
}

start
[ "$(stat -c %a "$sock")" = 600 ] || fail "socket mode $(stat -c %a "$sock"), expected 600"
call GET /vm; expect 200; has '"state":"running"'; has '"vcpus":1'; has '"memory_mib":512'
call PUT /vm/pause; expect 204
call GET /vm; expect 200; has '"state":"paused"'
call PUT /vm/pause; expect 409; has '"error"'
call PUT /vm/shutdown; expect 409
call PUT /vm/resume; expect 204
call GET /vm; expect 200; has '"state":"running"'
call PUT /vm/resume; expect 409
# a few errors, on the real socket
call GET /nothing; expect 404; has '"error"'
call DELETE /vm; expect 405
call PUT /vm/pause '{"x":'; expect 400
call GET /vm/balloon; expect 404
head -c 70000 /dev/zero | tr '\0' ' ' >"$dir/big"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 --unix-socket "$sock" -X PUT \
	--data-binary @"$dir/big" http://localhost/vm/pause)
echo "PUT /vm/pause (70000 bytes) -> $code"; expect 413
# a second vireo-vmm on the same path is refused; the first goes on
"$vmm" --debug-exit --api-socket "$sock" --kernel "$guest" </dev/null >"$dir/second.out" 2>"$dir/second.err"
rc=$?
cat "$dir/second.err"
[ $rc -eq 1 ] || fail "second vireo-vmm: exit status $rc, expected 1"
grep -q "in use" "$dir/second.err" || fail "second vireo-vmm: no 'in use' message"
call GET /vm; expect 200; has '"state":"running"'
shutdown
echo "api (sandboxed): ok"

# A file that is not a socket is refused and left alone.
echo keep >"$sock"
"$vmm" --debug-exit --api-socket "$sock" --kernel "$guest" </dev/null >/dev/null 2>"$dir/second.err"
rc=$?
[ $rc -eq 1 ] && grep -q "not a socket" "$dir/second.err" && [ "$(cat "$sock")" = keep ] ||
	fail "a regular file at the path: status $rc, $(cat "$dir/second.err")"
rm -f "$sock"
# A stale socket (no one listens) is replaced; no sandbox this time.
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$sock"
[ -S "$sock" ] || fail "no stale socket made"
start --sandbox=off --balloon --cpus 2
grep -q "stale socket" "$dir/vm.err" || fail "no word of the stale socket"
call GET /vm/balloon; expect 200; has '"target_mib":0'
call PUT /vm/balloon '{"target_mib": 16}'; expect 204
call GET /vm/balloon; expect 200; has '"target_mib":16'
call PUT /vm/balloon '{"target_mib": 99999999999999999999}'; expect 400
call PUT /vm/balloon '{"target_mib": 16, "x": 1}'; expect 400
call PUT /vm/pause; expect 204
call PUT /vm/resume; expect 204
shutdown
echo "api (no sandbox, stale socket): ok"

# Across guest reboots (--on-reboot restart): no failure but 409 between
# VMs, SIGTERM ends it (143) and the socket goes.
"$vmm" --on-reboot restart --api-socket "$sock" --kernel "$reset_guest" --cmdline reset \
	</dev/null >"$dir/vm.out" 2>"$dir/vm.err" &
pid=$!
for _ in $(seq 600); do [ -S "$sock" ] && break; sleep 0.1; done
codes=
for _ in $(seq 20); do
	for r in "PUT /vm/pause" "PUT /vm/resume" "GET /vm"; do
		codes+=" $(curl -s -o /dev/null -w '%{http_code}' --max-time 20 --unix-socket "$sock" \
			-X ${r% *} "http://localhost${r#* }")"
	done
done
echo "codes:$codes"
grep -qE ' (000|4[0-8][0-8]|5..)' <<<"${codes// 409/}" && fail "unexpected status among$codes"
boots=$(grep -c "hello from the tiny guest" "$dir/vm.out")
kill -TERM $pid
finish vm 143
[ "$boots" -ge 2 ] || fail "the guest booted $boots times, expected 2 or more"
[ -e "$sock" ] && fail "the socket is still there after the exit"
echo "api (restarts, $boots boots): ok"
