#!/usr/bin/env bash
# Save and restore of a VM with a virtio-balloon: the virtio guest
# ("balloonsave") inflates one page a round through the balloon's inflate
# queue, each buffer answered with an MSI-X interrupt, and sets the
# balloon's "actual" to 1 MiB a round.  The VM is saved after round 3 with
# a target set through the API, and restored in a new vireo-vmm
# (sandboxed, the defaults as root): the guest's remaining rounds go
# through the restored queue and vector, the target is the saved one, no
# old ring entry is taken again (each answered buffer's page frame number
# is then overwritten with 0, which the device would refuse with a
# warning), and the balloon's options come from the save.
#   save-restore-balloon.sh VMM GUEST (virtio.elf)
set -u
vmm=$1 guest=$2
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; rm -rf "$dir"' EXIT
chmod 0777 "$dir"
sock=$dir/api.sock
save=$dir/save
fail() { echo "FAIL: $*"; for f in "$dir"/*.out "$dir"/*.err; do echo "== $f"; cat "$f"; done; exit 1; }

call() {
	local args=(-s -o "$dir/resp" -w '%{http_code}' --max-time 60 --unix-socket "$sock" -X "$1")
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	code=$(curl "${args[@]}" "http://localhost$2") || code=000
	body=$(cat "$dir/resp" 2>/dev/null)
	echo "$1 $2${3:+ $3} -> $code $body"
}
expect() { [ "$code" = "$1" ] || fail "expected status $1, got $code"; }
wait_for() {
	for _ in $(seq 1800); do
		grep -q "$2" "$1" && return 0
		kill -0 $pid 2>/dev/null || fail "vireo-vmm ended before '$2'"
		sleep 0.1
	done
	fail "no '$2' in $1 after 180 s"
}
finish() {
	wait $pid
	local rc=$?
	pid=
	[ $rc -eq "$2" ] || fail "$1: exit status $rc, expected $2"
	grep -q "Sanitizer\|runtime error" "$dir/$1.err" && fail "$1: sanitizer report"
	return 0
}

# 1. The balloon guest, a target set, saved after round 3.
"$vmm" --debug-exit --sandbox=off --memory 64M --balloon=deflate-on-oom=on \
	--cmdline balloonsave --api-socket "$sock" --kernel "$guest" \
	</dev/null >"$dir/first.out" 2>"$dir/first.err" &
pid=$!
wait_for "$dir/first.out" "^balloon round 2$"
call PUT /vm/balloon '{"target_mib": 12}'; expect 204
wait_for "$dir/first.out" "^balloon round 3$"
call PUT /vm/save "{\"dir\": \"$save\", \"exit\": true}"; expect 204
finish first 0
grep -q "virtio-balloon save ok" "$dir/first.out" && fail "the guest finished before the save"
last=$(grep '^balloon round' "$dir/first.out" | tail -1)

# 2. A restore may not add a balloon (it comes from the save).
"$vmm" --restore "$save" --balloon </dev/null >"$dir/add.out" 2>"$dir/add.err"
rc=$?
[ $rc -eq 1 ] || fail "--restore with --balloon: status $rc, expected 1"
grep -q "the devices come from the save" "$dir/add.err" || fail "--restore with --balloon: no reason"

# 3. Restored: the guest goes on through the same queue; the target is
#    the saved one; nothing was taken from the ring twice.
"$vmm" --restore "$save" --api-socket "$sock" </dev/null >"$dir/second.out" 2>"$dir/second.err" &
pid=$!
wait_for "$dir/second.out" "virtio-balloon save ok"
grep -q "virtio-balloon save: start\|virtio device at" "$dir/second.out" &&
	fail "the restored guest started again"
first=$(grep '^balloon round' "$dir/second.out" | head -1)
[ "${first#balloon round }" -gt "${last#balloon round }" ] || fail "restored at '$first' after '$last'"
grep -q "^balloon round 8$" "$dir/second.out" || fail "not every round after the restore"
call GET /vm/balloon; expect 200
grep -q '"target_mib":12,' <<<"$body" || fail "the saved target is not restored"
grep -q '"actual_mib":8,' <<<"$body" || fail "the guest's actual (8 MiB) is not seen"
grep -q "page frame 0x0" "$dir/first.err" "$dir/second.err" &&
	fail "the balloon took an answered ring entry again"
kill -TERM $pid
finish second 143
echo "ok: saved at '$last', restored at '$first', target and queue restored"
