#!/usr/bin/env bash
# The guest's clock across a save and restore: the kvmclock guest prints
# its kvmclock and its TSC (scaled to ms) every 200 ms of kvmclock time;
# the VM is saved after round 3, the test waits 3 s, and the restored
# guest's next round must show the kvmclock advanced by the time the VM
# was away (its time of day is right again, and it is not ahead of the
# real time), and its TSC by the same (within 0.5 s: KVM_VCPU_TSC_OFFSET,
# Linux 5.16 and later).  The restored VM is sandboxed and filtered.
#   save-restore-clock.sh VMM GUEST (kvmclock.elf)
set -u
vmm=$1 guest=$2
. "$(dirname "$0")/lib-api.sh"
api_init
save=$dir/save

"$vmm" --debug-exit --sandbox=off --api-socket "$sock" --kernel "$guest" \
	</dev/null >"$dir/first.out" 2>"$dir/first.err" &
pid=$!
wait_for "$dir/first.out" "^clock round 3 "
call PUT /vm/save "{\"dir\": \"$save\", \"exit\": true}"; expect 204
finish first 0
saved_at=$(date +%s%N)
sleep 3
"$vmm" --restore "$save" </dev/null >"$dir/second.out" 2>"$dir/second.err" &
pid=$!
wait_for "$dir/second.out" "^clock ok$"
away=$(( ($(date +%s%N) - saved_at) / 1000000 ))
finish second 0
last=$(grep '^clock round' "$dir/first.out" | tail -1)
first=$(grep '^clock round' "$dir/second.out" | head -1)
[ -n "$first" ] || fail "no round after the restore"
read -r _ _ r1 _ ms1 _ tsc1 <<<"$last"
read -r _ _ r2 _ ms2 _ tsc2 <<<"$first"
[ "$r2" -eq $((r1 + 1)) ] || fail "restored at round $r2 after $r1"
dms=$((ms2 - ms1)) dtsc=$((tsc2 - tsc1))
echo "saved at '$last', restored at '$first': kvmclock +$dms ms, TSC +$dtsc ms (3 s sleep, $away ms from the save's end to the guest's end)"
[ "$dms" -ge 3000 ] || fail "the kvmclock advanced $dms ms across a save of more than 3 s"
[ "$dms" -le $((away + 1000)) ] || fail "the kvmclock advanced $dms ms, more than the $away ms away"
[ "$dtsc" -ge $((dms - 500)) ] && [ "$dtsc" -le $((dms + 500)) ] ||
	fail "the TSC moved $dtsc ms, the kvmclock $dms ms"
echo "ok"
