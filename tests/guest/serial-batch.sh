#!/usr/bin/env bash
# COM1 output that KVM queues instead of exiting (coalesced writes), seen
# from outside:
#   serial-batch.sh VMM GUEST spew   64 KiB of console output arrives whole
#                                    and in order, and went through the queue
#   serial-batch.sh VMM GUEST blind  characters written without any exit
#                                    after them still come out (the timer)
#   serial-batch.sh VMM GUEST off    --serial-coalesce off: the same output,
#                                    nothing queued
set -u
vmm=$1 guest=$2 mode=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
line='0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.'
fail() { echo "FAIL: $*"; echo "--- stderr"; tail -20 "$dir/err"; exit 1; }
case "$mode" in
spew | off)
	"$vmm" --debug-exit --verbose --serial-coalesce "$([ $mode = off ] && echo off || echo on)" \
		--cmdline spew --kernel "$guest" </dev/null >"$dir/out" 2>"$dir/err"
	rc=$?
	[ "$rc" = 0 ] || fail "exit status $rc, expected 0"
	tr -d '\r' <"$dir/out" >"$dir/lines"
	n=$(grep -cxF "$line" "$dir/lines")
	[ "$n" = 1024 ] || fail "$n of 1024 lines arrived intact"
	# Nothing else between them, and the end after them.
	[ "$(grep -vxF "$line" "$dir/lines" | grep -v '^hello\|^cmdline\|^e820')" = "spew done" ] ||
		fail "unexpected output: $(grep -vxF "$line" "$dir/lines" | head -3)"
	[ "$(tail -n 1 "$dir/lines")" = "spew done" ] || fail "output does not end with 'spew done'"
	replayed=$(sed -n 's/.*coalesced port writes: \([0-9]*\) replayed.*/\1/p' "$dir/err")
	if [ $mode = off ]; then
		grep -q "coalesced port writes: off (--serial-coalesce off)" "$dir/err" ||
			fail "--verbose does not say the queue is off"
		[ -z "$replayed" ] || fail "$replayed writes went through the queue with it off"
		echo "off: 1024 lines in order, nothing queued: ok"
	else
		[ -n "$replayed" ] || fail "no 'coalesced port writes' line in --verbose output"
		# The first characters may come before vireo-vmm has registered
		# the queue (it does so after starting the vCPUs): most, not all.
		total=$(wc -c <"$dir/out")
		[ "$replayed" -ge 60000 ] ||
			fail "only $replayed of the $total characters went through the queue"
		echo "spew: 1024 lines in order, $replayed of $total characters replayed from the queue: ok"
	fi ;;
blind)
	"$vmm" --verbose --serial-coalesce on --kernel "$guest" --cmdline blind </dev/null \
		>"$dir/out" 2>"$dir/err" &
	pid=$!
	for _ in $(seq 100); do
		grep -q "written blind" "$dir/out" && break
		sleep 0.1
	done
	grep -q "written blind" "$dir/out"
	seen=$?
	kill -TERM $pid
	wait $pid
	rc=$?
	[ "$seen" = 0 ] || fail "'written blind' did not come out within 10 s"
	[ "$rc" = 143 ] || fail "exit status $rc after SIGTERM, expected 143"
	replayed=$(sed -n 's/.*coalesced port writes: \([0-9]*\) replayed.*/\1/p' "$dir/err")
	# "written blind\n" is 14 characters, all of them queued.
	[ -n "$replayed" ] && [ "$replayed" -ge 14 ] ||
		fail "the blind writes did not go through the queue (replayed: '$replayed')"
	echo "blind: output came out with no exit after it ($replayed writes replayed): ok" ;;
*)
	echo "serial-batch.sh: unknown mode '$mode'"; exit 2 ;;
esac
if grep -q "Sanitizer\|runtime error" "$dir/err"; then
	fail "sanitizer report"
fi
