#!/usr/bin/env bash
# SIGTERM / SIGINT end a running VM cleanly: exit status 128+N, no sanitizer
# report, process gone.   signal.sh VMM GUEST SIGNAL STATUS
set -u
vmm=$1 guest=$2 sig=$3 want=$4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$vmm" --cpus 2 --kernel "$guest" --cmdline spin </dev/null >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 600); do
	grep -q spinning "$dir/out" && break
	sleep 0.1
done
if ! grep -q spinning "$dir/out"; then
	echo "guest did not start"; kill -KILL $pid; cat "$dir/err"; exit 1
fi
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
