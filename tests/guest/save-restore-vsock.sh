#!/usr/bin/env bash
# Save and restore of a VM with a vhost-vsock device (where the host has
# /dev/vhost-vsock; else skipped, 77): the savewrite guest (which does not
# drive the device) is saved after round 3 and restored in a new
# vireo-vmm, which builds the device again from the save and claims the
# same CID (another VM holding it fails the restore with one line); the
# guest finishes its rounds.  Adding --vsock to a restore is refused.
#   save-restore-vsock.sh VMM GUEST (savewrite.elf)
set -u
vmm=$1 guest=$2
[ -c /dev/vhost-vsock ] && [ -w /dev/vhost-vsock ] || { echo "no /dev/vhost-vsock: skipped"; exit 77; }
cid=$(( 100000 + $$ % 100000 ))
dir=$(mktemp -d)
pid= other=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; [ -n "$other" ] && kill -KILL $other 2>/dev/null;
      rm -rf "$dir"' EXIT
chmod 0777 "$dir"
sock=$dir/api.sock
save=$dir/save
fail() { echo "FAIL: $*"; for f in "$dir"/*.out "$dir"/*.err; do echo "== $f"; cat "$f"; done; exit 1; }
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

"$vmm" --debug-exit --sandbox=off --memory 64M --vsock cid=$cid --api-socket "$sock" \
	--kernel "$guest" </dev/null >"$dir/first.out" 2>"$dir/first.err" &
pid=$!
wait_for "$dir/first.out" "^round 3$"
code=$(curl -s -o "$dir/resp" -w '%{http_code}' --max-time 60 --unix-socket "$sock" -X PUT \
	-H 'Content-Type: application/json' --data-binary "{\"dir\": \"$save\", \"exit\": true}" \
	http://localhost/vm/save)
[ "$code" = 204 ] || fail "PUT /vm/save: $code $(cat "$dir/resp")"
finish first 0

"$vmm" --restore "$save" --vsock cid=$cid </dev/null >"$dir/add.out" 2>"$dir/add.err"
rc=$?
[ $rc -eq 1 ] || fail "--restore with --vsock: status $rc, expected 1"

# Another VM holding the CID: the restore cannot claim it.
"$vmm" --sandbox=off --memory 64M --vsock cid=$cid --kernel "$guest" \
	</dev/null >"$dir/other.out" 2>"$dir/other.err" &
other=$!
for _ in $(seq 100); do grep -q "^round 1$" "$dir/other.out" && break; sleep 0.1; done
"$vmm" --restore "$save" </dev/null >"$dir/busy.out" 2>"$dir/busy.err"
rc=$?
kill -KILL $other; wait $other 2>/dev/null; other=
[ $rc -eq 1 ] || fail "a restore onto a CID in use: status $rc, expected 1"
[ -s "$dir/busy.out" ] && fail "a restore onto a CID in use: the guest ran"

"$vmm" --restore "$save" </dev/null >"$dir/second.out" 2>"$dir/second.err" &
pid=$!
wait_for "$dir/second.out" "checksum"
finish second 0
grep -q "savewrite: start" "$dir/second.out" && fail "the restored guest started again"
echo "ok: restored with CID $cid"
