#!/usr/bin/env bash
# Console in both directions on a terminal: run vireo-vmm under script(1)
# (a pseudo-terminal), type into the guest, read the echo back, and check
# the terminal settings are the same after vireo-vmm exits.
#   console.sh VMM GUEST
set -u
vmm=$1 guest=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/inner.sh" <<INNER
stty -g >"$dir/before"
"$vmm" --debug-exit --kernel "$guest" --cmdline echo 2>"$dir/err"
echo "status=\$?" >"$dir/status"
stty -g >"$dir/after"
INNER
# Feed keystrokes once the guest is ready.
( for _ in $(seq 600); do
	grep -q "echo ready" "$dir/typescript" 2>/dev/null && break
	sleep 0.1
  done
  printf 'hello vireo'
  sleep 0.5
  printf 'q'
  sleep 2 ) | timeout 120 script -qfec "bash $dir/inner.sh" "$dir/typescript" >/dev/null
fail=0
grep -q "HELLO VIREO" "$dir/typescript" || { echo "typed text did not come back upper-cased"; fail=1; }
grep -q "echo done" "$dir/typescript" || { echo "guest did not see the 'q'"; fail=1; }
grep -q "status=0" "$dir/status" 2>/dev/null || { echo "exit: $(cat "$dir/status" 2>/dev/null)"; fail=1; }
if ! cmp -s "$dir/before" "$dir/after"; then
	echo "terminal settings not restored"; fail=1
fi
if [ $fail -ne 0 ]; then
	echo "--- typescript:"; cat -v "$dir/typescript"; echo "--- stderr:"; cat "$dir/err"
	exit 1
fi
echo "console: ok"
