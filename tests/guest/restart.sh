#!/usr/bin/env bash
# --on-reboot restart: a guest that resets at once is started again and
# again (fresh VM each time) until SIGTERM, which ends it with status 143.
#   restart.sh VMM GUEST
set -u
vmm=$1 guest=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$vmm" --on-reboot restart --name rs --kernel "$guest" --cmdline reset </dev/null >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 600); do
	[ "$(grep -c 'hello from the tiny guest' "$dir/out")" -ge 3 ] && break
	sleep 0.1
done
n=$(grep -c 'hello from the tiny guest' "$dir/out")
kill -TERM $pid
wait $pid
rc=$?
fail=0
[ "$n" -ge 3 ] || { echo "guest started $n times, expected 3 or more"; fail=1; }
[ $rc -eq 143 ] || { echo "exit status $rc after SIGTERM, expected 143"; fail=1; }
grep -q 'vireo-vmm\[rs\]: info: guest rebooted: starting it again' "$dir/err" ||
	{ echo "no restart message naming the VM"; fail=1; }
grep -q "Sanitizer\|runtime error" "$dir/err" && { echo "sanitizer report"; fail=1; }
[ $fail -eq 0 ] || { head -20 "$dir/err"; exit 1; }
echo "restart: ok ($n boots)"
