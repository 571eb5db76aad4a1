#!/usr/bin/env bash
# SIGTERM / SIGINT end a running VM cleanly: exit status 128+N, no sanitizer
# report, process gone.   signal.sh VMM GUEST SIGNAL STATUS
set -u
vmm=$1 guest=$2 sig=$3 want=$4
. "$(dirname "$0")/spin-lib.sh"
start_spinning "$vmm" "$guest"
kill -"$sig" $pid
for _ in $(seq 300); do
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
if kill -0 $pid 2>/dev/null; then
	echo "vireo-vmm still running 30 s after SIG$sig"; kill -KILL $pid; exit 1
fi
wait $pid
got=$?
cat "$dir/err"
if [ "$got" != "$want" ]; then
	echo "exit status $got after SIG$sig, expected $want"; exit 1
fi
if grep -q "Sanitizer\|runtime error" "$dir/err"; then
	echo "sanitizer report"; exit 1
fi
echo "SIG$sig: ok (status $got)"
