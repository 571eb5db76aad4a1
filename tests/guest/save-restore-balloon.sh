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
# warning), and the balloon's options come from the save.  Then the same
# through a live migration (PUT /migrate to a target with --incoming).
#   save-restore-balloon.sh VMM GUEST (virtio.elf)
set -u
vmm=$1 guest=$2
. "$(dirname "$0")/lib-api.sh"
api_init
save=$dir/save

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
went_on 'balloon round ' "$dir/first.out" "$dir/second.out"
grep -q "^balloon round 8$" "$dir/second.out" || fail "not every round after the restore"
call GET /vm/balloon; expect 200
grep -q '"target_mib":12,' <<<"$body" || fail "the saved target is not restored"
grep -q '"actual_mib":8,' <<<"$body" || fail "the guest's actual (8 MiB) is not seen"
grep -q "page frame 0x0" "$dir/first.err" "$dir/second.err" &&
	fail "the balloon took an answered ring entry again"
kill -TERM $pid
finish second 143
echo "restore ok: saved at '$last', restored at '$first', target and queue restored"

# 4. A live migration carries the same: the target (same command line plus
#    --incoming, sandboxed) goes on through the same queue with the target
#    set on the source.
tsock=$dir/target-api.sock
boot=(--debug-exit --memory 64M --balloon=deflate-on-oom=on --cmdline balloonsave --kernel "$guest")
"$vmm" "${boot[@]}" --incoming "unix:$dir/mig.sock" --api-socket "$tsock" \
	</dev/null >"$dir/target.out" 2>"$dir/target.err" &
tpid=$!; pids+=("$tpid")
wait_for "$dir/target.err" "waiting for a migration" $tpid
"$vmm" "${boot[@]}" --sandbox=off --api-socket "$sock" </dev/null >"$dir/source.out" 2>"$dir/source.err" &
pid=$!
wait_for "$dir/source.out" "^balloon round 2$"
call PUT /vm/balloon '{"target_mib": 10}'; expect 204
call PUT /migrate "{\"uri\": \"unix:$dir/mig.sock\"}"; expect 202
finish source 0
grep -q "virtio-balloon save ok" "$dir/source.out" && fail "the source finished the guest"
wait_for "$dir/target.out" "virtio-balloon save ok" $tpid
went_on 'balloon round ' "$dir/source.out" "$dir/target.out"
call -u "$tsock" GET /vm/balloon; expect 200
grep -q '"target_mib":10,' <<<"$body" || fail "the source's target did not come with the migration"
grep -q '"actual_mib":8,' <<<"$body" || fail "the guest's actual (8 MiB) is not seen on the target"
grep -q "page frame 0x0" "$dir/target.err" && fail "the target took an answered ring entry again"
kill -TERM $tpid
finish target 143 $tpid
echo "ok: migrated at '$last', the target went on at '$first'"
