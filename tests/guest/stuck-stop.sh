#!/usr/bin/env bash
# SIGTERM ends the VM within a bounded time even when the teardown is stuck:
# with VIREO_TEST_HANG_ON_STOP (test builds) the event loop hangs as soon as
# the stop is asked for, as if a device lock never came free; the watchdog
# thread must still flush and end the process with 143, saying why.
#   stuck-stop.sh VMM GUEST
set -u
vmm=$1 guest=$2
. "$(dirname "$0")/spin-lib.sh"
export VIREO_TEST_HANG_ON_STOP=1
start_spinning "$vmm" "$guest"
start=$(date +%s)
kill -TERM $pid
# The grace period is 20 s; allow it and some slack, never forever.
for _ in $(seq 400); do
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
if kill -0 $pid 2>/dev/null; then
	echo "vireo-vmm still running $(( $(date +%s) - start )) s after SIGTERM with a stuck teardown"
	kill -KILL $pid; cat "$dir/err"; exit 1
fi
wait $pid
got=$?
cat "$dir/err"
[ "$got" = 143 ] || { echo "exit status $got, expected 143"; exit 1; }
grep -q "did not stop within 20000 ms of Terminated: flushing disks and exiting" "$dir/err" ||
	{ echo "no watchdog message"; exit 1; }
echo "stuck teardown ended by the watchdog after $(( $(date +%s) - start )) s (status $got)"
