#!/usr/bin/env bash
# PUT /vm/snapshot and --restore of a snapshot: the virtio guest ("save":
# rounds of a sector write and read-back) on a qcow2 disk is snapshotted
# after a few rounds and runs on (then PUT /vm/poweroff); the image lists the internal
# snapshot (vireo-img and qemu-img) and passes qemu-img check.  Round 1's
# sector is then overwritten behind the guest's back: the restore of the
# snapshot reverts the disk (round 1 is back: the guest's final read of
# every round passes) and the memory (the guest goes on from the round
# after the snapshot).  Refused: the same name again (409), a VM with a
# writable raw disk (409), a restore onto an image without the snapshot
# (one error line, status 1, the image unchanged).
#   snapshot.sh VMM VIREO_IMG GUEST (virtio.elf)
set -u
vmm=$1 img=$2 guest=$3
. "$(dirname "$0")/lib-api.sh"
api_init
disk=$dir/disk.qcow2
snapdir=$disk.snap-before.1
"$img" create -q -f qcow2 "$disk" 1M || fail "vireo-img create"

# 1. A writable raw disk cannot be snapshotted: 409 naming it, runs on.
truncate -s 1M "$dir/raw.img"
"$vmm" --debug-exit --disk "$dir/raw.img" --cmdline save --api-socket "$sock" \
	--kernel "$guest" </dev/null >"$dir/raw.out" 2>"$dir/raw.err" &
pid=$!
wait_for "$dir/raw.out" "^io round 1$"
call PUT /vm/snapshot '{"name": "s1"}'; expect 409
grep -q "disk disk0 .* is a writable raw image" <<<"$body" || fail "the refusal does not name the raw disk"
call GET /vm; expect 200
grep -q '"state":"running"' <<<"$body" || fail "not running after a refused snapshot"
call PUT /vm/poweroff; expect 204
finish raw 0
ls "$dir"/raw.img.snap-* >/dev/null 2>&1 && fail "a refused snapshot left a directory"

# 2. The snapshot, taken paused after round 3 (so that the round it was
#    taken at is known); the guest then runs on to round 6.
"$vmm" --debug-exit --disk "path=$disk,format=qcow2" --cmdline save --api-socket "$sock" \
	--kernel "$guest" </dev/null >"$dir/first.out" 2>"$dir/first.err" &
pid=$!
wait_for "$dir/first.out" "^io round 3$"
call PUT /vm/pause; expect 204
sleep 0.2
at=$(grep '^io round' "$dir/first.out" | tail -1)
call PUT /vm/snapshot '{"name": "before.1"}'; expect 204
call GET /vm; expect 200
grep -q '"state":"paused"' <<<"$body" || fail "a paused VM does not stay paused"
call PUT /vm/snapshot '{"name": "before.1"}'; expect 409
grep -q "already has a snapshot named before.1" <<<"$body" || fail "no reason for the 409"
call PUT /vm/resume; expect 204
wait_for "$dir/first.out" "^io round 6$"
call PUT /vm/poweroff; expect 204
finish first 0
[ -f "$snapdir/state" ] && [ -f "$snapdir/memory" ] || fail "no state and memory in $snapdir"
"$img" snapshot -l "$disk" | tee "$dir/list" | grep -q "before\.1" || fail "vireo-img does not list it"
qemu-img snapshot -l "$disk" | grep -q "before\.1" || fail "qemu-img does not list it"
qemu-img check "$disk" || fail "qemu-img check"
"$img" check "$disk" >/dev/null || fail "vireo-img check"

# 3. An image without the snapshot: one error line, nothing changed.
cp "$disk" "$dir/other.qcow2"
"$img" snapshot -d before.1 "$dir/other.qcow2" || fail "vireo-img snapshot -d"
sum=$(md5sum <"$dir/other.qcow2")
"$vmm" --restore "$snapdir" --disk "path=$dir/other.qcow2,format=qcow2" </dev/null >"$dir/none.out" 2>"$dir/none.err"
rc=$?
[ $rc -eq 1 ] || fail "an image without the snapshot: status $rc, expected 1"
[ "$(wc -l <"$dir/none.err")" -eq 1 ] || fail "an image without the snapshot: not one error line"
grep -q "has no snapshot named before.1" "$dir/none.err" || fail "no reason given"
[ -s "$dir/none.out" ] && fail "the guest ran"
[ "$(md5sum <"$dir/other.qcow2")" = "$sum" ] || fail "the image was modified"
cat "$dir/none.err"
"$vmm" --restore "$dir/nothing" </dev/null >"$dir/nodir.out" 2>"$dir/nodir.err"
[ $? -eq 1 ] || fail "a missing snapshot directory: not status 1"

# 4. Round 1's sector changed behind the guest's back, then the restore.
qemu-io -f qcow2 -c "write -P 0x55 1536 512" "$disk" >/dev/null || fail "qemu-io write"
"$vmm" --restore "$snapdir" --api-socket "$sock" </dev/null >"$dir/second.out" 2>"$dir/second.err" &
pid=$!
wait_for "$dir/second.out" "virtio-blk save ok\|differs"
finish second 0
grep -q "differs" "$dir/second.out" && fail "the disk was not reverted"
grep -q "virtio-blk save: start" "$dir/second.out" && fail "the restored guest started again"
first=$(grep '^io round' "$dir/second.out" | head -1)
[ "${first#io round }" -eq $(( ${at#io round } + 1 )) ] ||
	fail "restored at '$first', the snapshot was taken after '$at'"
grep -q "back at their snapshot before.1" "$dir/second.err" || fail "no revert said"
qemu-img check "$disk" || fail "qemu-img check after the restore"
echo "ok: snapshot after '$at', restored at '$first', the disk reverted"
