#!/usr/bin/env bash
# Save and restore (PUT /vm/save, --restore): the savewrite guest updates
# 16 MiB in rounds; after round 3 it is saved over the API with
# "exit": true (vireo-vmm ends with 0), then a NEW vireo-vmm restores it
# (with --restore-prefault when asked).  The restored guest carries on
# from the round it was at (no new start) and ends with every word checked
# and the expected checksum.  The first VM is sandboxed (its monitor
# makes the files); the restored one is not, and saves again (paused, then
# resumed) into the directory it runs from, and a third process restores
# that save sandboxed and filtered (the defaults as root).  Also: the
# memory file is sparse, a save into a directory that cannot be made is a
# 400 and the VM runs on.
#   save-restore.sh VMM GUEST CPUS [--restore-prefault]
set -u
vmm=$1 guest=$2 cpus=$3 prefault=${4:-}
. "$(dirname "$0")/lib-api.sh"
api_init
want=$(savewrite_checksum)
wait_secs=120
save=$dir/save

# 1. Boot (sandboxed and filtered as root, the defaults: the monitor
#    makes the files, as the sandbox's user), save after round 3 with
#    exit: true.
"$vmm" --debug-exit --memory 64M --cpus "$cpus" --cmdline "cpus=$cpus" \
	--api-socket "$sock" --kernel "$guest" </dev/null >"$dir/first.out" 2>"$dir/first.err" &
pid=$!
wait_for "$dir/first.out" "^round 3$"
call PUT /vm/save '{"dir": "/nonexistent/a/b"}'; expect 400
grep -q "cannot create /nonexistent/a/b/memory.new" <<<"$body" ||
	fail "the error does not name the directory"
call GET /vm; expect 200
grep -q '"state":"running"' <<<"$body" || fail "not running after a failed save"
call PUT /vm/save "{\"dir\": \"$save\", \"exit\": true}"; expect 204
finish first 0
grep -q "checksum" "$dir/first.out" && fail "the guest finished before the save"
[ -f "$save/state" ] && [ -f "$save/memory" ] || fail "no state or memory file in $save"
ls "$save" | grep -q '\.new$' && fail "a .new file left in $save"
size=$(stat -c %s "$save/memory")
[ "$size" = $((64 << 20)) ] || fail "memory file of $size bytes, expected 64 MiB"
used=$(( $(stat -c %b "$save/memory") * $(stat -c %B "$save/memory") ))
# 16 MiB of pattern pages plus the guest's own few pages: the rest holes
[ "$used" -lt $((24 << 20)) ] || fail "memory file not sparse: $used bytes allocated"
last=$(grep '^round' "$dir/first.out" | tail -1)

# 2. A new process, without the sandbox, restores it; a second save while
#    it runs, into the directory it was restored from (paused, not
#    exiting), then resume.
"$vmm" --restore "$save" $prefault --sandbox=off --api-socket "$sock" </dev/null \
	>"$dir/second.out" 2>"$dir/second.err" &
pid=$!
wait_for "$dir/second.out" "^round"
grep -q "savewrite: start" "$dir/second.out" && fail "the restored guest started again"
first=$(grep '^round' "$dir/second.out" | head -1)
[ "${first#round }" -gt "${last#round }" ] || fail "restored at '$first' after '$last'"
call GET /vm; expect 200
grep -q "\"vcpus\":$cpus" <<<"$body" || fail "the restored VM has not $cpus vCPUs"
grep -q '"memory_mib":64' <<<"$body" || fail "the restored VM has not 64 MiB"
call PUT /vm/save "{\"dir\": \"$save\"}"; expect 204
call GET /vm; expect 200
grep -q '"state":"paused"' <<<"$body" || fail "not paused after a save without exit"
call PUT /vm/resume; expect 204
wait_for "$dir/second.out" "checksum"
finish second 0
grep -q "^checksum $want over 16384 words: ok$" "$dir/second.out" ||
	fail "expected 'checksum $want over 16384 words: ok'"

# 3. The second save, restored (sandboxed and filtered as root: the
#    defaults): it finishes the same.
"$vmm" --restore "$save" </dev/null >"$dir/third.out" 2>"$dir/third.err" &
pid=$!
wait_for "$dir/third.out" "checksum"
finish third 0
grep -q "savewrite: start" "$dir/third.out" && fail "the second restore started again"
grep -q "^checksum $want over 16384 words: ok$" "$dir/third.out" ||
	fail "second restore: expected 'checksum $want over 16384 words: ok'"
# 4. Refused restores: one error line naming the fault, status 1, the
#    guest never runs, the save is left as it was.
sum_before=$(md5sum "$save/state" "$save/memory")
bad=$dir/bad
mkdir "$bad"
ln "$save/memory" "$bad/memory"
# refuse NAME PATTERN [ARGS...]: a restore from $bad must fail so
refuse() {
	local name=$1 pat=$2
	shift 2
	"$vmm" --restore "$bad" "$@" </dev/null >"$dir/$name.out" 2>"$dir/$name.err"
	local rc=$?
	[ $rc -eq 1 ] || fail "$name: exit status $rc, expected 1"
	[ "$(wc -l <"$dir/$name.err")" -eq 1 ] || fail "$name: not one error line"
	grep -q -- "$pat" "$dir/$name.err" || fail "$name: no '$pat' in the error"
	[ -s "$dir/$name.out" ] && fail "$name: the guest ran"
	echo "refused ($name): $(cat "$dir/$name.err")"
}
refuse missing "cannot open the state file"
head -c 5000 "$save/state" >"$bad/state"
refuse truncated "state file: truncated"
python3 - "$save/state" "$bad/state" 1000 <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[int(sys.argv[3])] ^= 0x40
open(sys.argv[2], 'wb').write(b)
PY
refuse corrupt "vcpu section 0: checksum mismatch"
python3 - "$save/state" "$bad/state" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[8] = 9
open(sys.argv[2], 'wb').write(b)
PY
refuse version "format version 9, this vireo-vmm reads version 2"
cp "$save/state" "$bad/state"
refuse disk "the saved VM has 0 disks, 1 --disk given" --disk "$bad/state"
"$vmm" --restore "$bad" --kernel "$guest" </dev/null >"$dir/kernel.out" 2>"$dir/kernel.err"
[ $? -eq 2 ] || fail "--restore with --kernel: not a usage error"
grep -q "not with --kernel" "$dir/kernel.err" || fail "--restore with --kernel: no reason given"
rm "$bad/memory"
truncate -s 1M "$bad/memory"
refuse memory "the memory file .* is 1048576 bytes"
[ "$(md5sum "$save/state" "$save/memory")" = "$sum_before" ] || fail "a refused restore changed the save"

echo "ok: saved at '$last', restored at '$first', checksum $want"
