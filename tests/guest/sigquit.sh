#!/usr/bin/env bash
# SIGQUIT makes a running VM print its interrupt state and every vCPU's
# registers on stderr, and the guest runs on (a later SIGTERM still ends it
# with status 143).   sigquit.sh VMM GUEST
set -u
vmm=$1 guest=$2
. "$(dirname "$0")/spin-lib.sh"
start_spinning "$vmm" "$guest"
kill -QUIT $pid
for _ in $(seq 300); do
	[ "$(grep -c 'state (SIGQUIT)' "$dir/err")" -ge 2 ] && grep -q 'vCPU 1 state' "$dir/err" &&
		[ "$(grep -c 'rip' "$dir/err")" -ge 2 ] && break
	sleep 0.1
done
sleep 0.5
fail=0
grep -q 'state dump (SIGQUIT)' "$dir/err" || { echo "no state dump header"; fail=1; }
grep -q 'COM1: ier=' "$dir/err" || { echo "no COM1 state"; fail=1; }
grep -q 'IOAPIC: irr=' "$dir/err" || { echo "no IOAPIC state"; fail=1; }
for c in 0 1; do
	grep -q "vCPU $c state (SIGQUIT)" "$dir/err" || { echo "vCPU $c did not dump"; fail=1; }
done
[ "$(grep -c 'rip' "$dir/err")" -ge 2 ] || { echo "fewer than two register dumps"; fail=1; }
# The running vCPU's dump walks its RIP through the guest's own page tables;
# the tiny guest maps the low 4 GiB 1:1, so the walk must end where it began.
walk=$(grep -m1 -E '^  walk rip [0-9a-f]{16}: pml4e 0x[0-9a-f]+ pdpte 0x[0-9a-f]+ .*-> gpa 0x[0-9a-f]+' "$dir/err")
if [ -z "$walk" ]; then
	echo "no page walk of RIP in the dump"; fail=1
else
	va=$(echo "$walk" | sed -E 's/^  walk rip ([0-9a-f]+):.*/\1/')
	pa=$(echo "$walk" | sed -E 's/.*-> gpa 0x([0-9a-f]+).*/\1/')
	[ $((16#$va)) -eq $((16#$pa)) ] || { echo "RIP 0x$va walked to 0x$pa, not 1:1"; fail=1; }
fi
if ! kill -0 $pid 2>/dev/null; then
	echo "vireo-vmm ended after SIGQUIT; it should run on"; fail=1
else
	kill -TERM $pid
fi
wait $pid
got=$?
cat "$dir/err"
[ "$got" = 143 ] || { echo "exit status $got after SIGTERM, expected 143"; fail=1; }
grep -q "Sanitizer\|runtime error" "$dir/err" && { echo "sanitizer report"; fail=1; }
[ $fail -eq 0 ] && echo "SIGQUIT: ok"
exit $fail
