#!/usr/bin/env bash
# SIGUSR2 presses the ACPI power button: the guest gets the SCI, sees
# PWRBTN_STS and powers off through S5, so vireo-vmm exits 0.
#   pwrbtn.sh VMM GUEST
set -u
vmm=$1 guest=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$vmm" --debug-exit --kernel "$guest" </dev/null >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 600); do
	grep -q "waiting for the power button" "$dir/out" && break
	sleep 0.1
done
sleep 0.2
kill -USR2 $pid
for _ in $(seq 300); do
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
kill -0 $pid 2>/dev/null && { echo "still running 30 s after SIGUSR2"; kill -KILL $pid; }
wait $pid
rc=$?
cat "$dir/out" "$dir/err"
grep -q "power button pressed" "$dir/out" || { echo "guest did not see the power button"; exit 1; }
[ $rc -eq 0 ] || { echo "exit status $rc, expected 0 (S5)"; exit 1; }
grep -q "Sanitizer\|runtime error" "$dir/err" && { echo "sanitizer report"; exit 1; }
echo "power button: ok"
