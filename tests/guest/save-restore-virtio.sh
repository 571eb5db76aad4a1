#!/usr/bin/env bash
# Save and restore with virtio devices: the virtio guest ("save" on its
# command line) writes and reads back a sector of a virtio-blk disk per
# round, each request answered with an MSI-X interrupt; the VM (with a
# virtio-rng beside the disk) is saved after round 3 and restored in a
# new vireo-vmm, sandboxed and filtered (the defaults as root), where the
# guest finishes its rounds through the restored queue and vector and
# reads every round's sector again.  The disk holds every round's data.
# Refused: a restore onto a disk of another size or a --disk whose options differ from the save
# (one error line, status 1, the guest never runs).
#   save-restore-virtio.sh VMM GUEST (virtio.elf)
set -u
vmm=$1 guest=$2
. "$(dirname "$0")/lib-api.sh"
api_init
save=$dir/save
disk=$dir/disk.img
python3 -c "
import sys
f = open(sys.argv[1], 'wb'); f.write(b'VIREO TEST DISK SECTOR 0'); f.truncate(1 << 20)" "$disk"

# 2. The disk guest, saved after round 3.
"$vmm" --debug-exit --sandbox=off --disk "$disk" --rng --cmdline save \
	--api-socket "$sock" --kernel "$guest" </dev/null >"$dir/first.out" 2>"$dir/first.err" &
pid=$!
wait_for "$dir/first.out" "^io round 3$"
call PUT /vm/save "{\"dir\": \"$save\", \"exit\": true}"; expect 204
finish first 0
grep -q "virtio-blk save ok" "$dir/first.out" && fail "the guest finished before the save"
last=$(grep '^io round' "$dir/first.out" | tail -1)

# 3. Refused restores: another disk size, a --disk that differs.
cp "$disk" "$dir/small.img"
truncate -s 512K "$dir/small.img"
"$vmm" --restore "$save" --disk "$dir/small.img" </dev/null >"$dir/size.out" 2>"$dir/size.err"
rc=$?
[ $rc -eq 1 ] || fail "a disk of another size: status $rc, expected 1"
[ "$(wc -l <"$dir/size.err")" -eq 1 ] || fail "a disk of another size: not one error line"
grep -q "disk disk0 (.*small.img) has 524288 bytes, the saved one had 1048576" "$dir/size.err" ||
	fail "a disk of another size: no reason given"
[ -s "$dir/size.out" ] && fail "a disk of another size: the guest ran"
"$vmm" --restore "$save" --disk "path=$disk,readonly=on" </dev/null >"$dir/ro.out" 2>"$dir/ro.err"
rc=$?
[ $rc -eq 1 ] || fail "a read-only --disk: status $rc, expected 1"
grep -q "does not match the saved disk 0" "$dir/ro.err" || fail "a read-only --disk: no reason given"
cat "$dir/size.err" "$dir/ro.err"

# 4. Restored in a new process (the disk from the save, by its path):
#    the guest goes on from the next round through the same queue.
"$vmm" --restore "$save" --api-socket "$sock" </dev/null >"$dir/second.out" 2>"$dir/second.err" &
pid=$!
wait_for "$dir/second.out" "virtio-blk save ok"
finish second 0
grep -q "virtio-blk save: start\|virtio device at" "$dir/second.out" && fail "the restored guest started again"
first=$(grep '^io round' "$dir/second.out" | head -1)
[ "${first#io round }" -gt "${last#io round }" ] || fail "restored at '$first' after '$last'"
grep -q "^io round 12$" "$dir/second.out" || fail "not every round after the restore"

# 5. The disk has every round's sector (written before and after).
python3 - "$disk" <<'PY' || fail "the disk does not hold every round's sector"
import sys
d = open(sys.argv[1], 'rb').read()
for r in range(1, 13):
    want = bytes((r * 31 + i * 7 + 1) & 0xff for i in range(512))
    if d[(2 + r) * 512:(3 + r) * 512] != want:
        sys.exit("round %d's sector differs" % r)
PY
echo "ok: saved at '$last', restored at '$first', disk checked"
