#!/usr/bin/env bash
# lab-marker-time: the marker is timed, -T stamps each output line with its
# arrival time, -k kills at the marker, a missing marker gives exit 1 and a
# timeout line.   marker-time-test.sh LAB-MARKER-TIME
set -u
mt=$1 fail=0
out=$("$mt" -T -t 10 -- sh -c 'echo first; sleep 0.3; printf "VIREO-BOOT-OK\r\n"; echo last' | tr -d '\r'; exit "${PIPESTATUS[0]}")
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "exit status $rc with the marker, want 0"; fail=1; }
first=$(echo "$out" | sed -n 's/^\[+\([0-9]*\)\] first$/\1/p')
mark=$(echo "$out" | sed -n 's/^\[+\([0-9]*\)\] VIREO-BOOT-OK$/\1/p')
ms=$(echo "$out" | sed -n 's/^MARKER-MS \([0-9]*\)$/\1/p')
[ -n "$first" ] && [ -n "$mark" ] || { echo "lines not stamped [+MS]"; fail=1; }
[ -n "$ms" ] || { echo "no MARKER-MS line"; fail=1; }
if [ -n "$first" ] && [ -n "$mark" ] && [ -n "$ms" ]; then
	[ "$mark" -ge $((first + 250)) ] || { echo "marker stamp $mark not >= first $first + 250"; fail=1; }
	[ "$ms" -ge "$mark" ] && [ "$ms" -le $((mark + 200)) ] ||
		{ echo "MARKER-MS $ms far from the marker line's stamp $mark"; fail=1; }
fi
echo "$out" | grep -q '^\[+[0-9]*\] last$' || { echo "output after the marker lost"; fail=1; }
echo "$out" | grep -q '^MARKER-EXIT 0$' || { echo "no MARKER-EXIT 0"; fail=1; }
# A stderr line that comes while a stdout line is half written does not cut it.
out=$("$mt" -t 10 -- sh -c 'printf "VIREO-"; sleep 0.2; echo "a log line" >&2; sleep 0.1; echo "BOOT-OK x"')
echo "$out" | grep -q '^VIREO-BOOT-OK x$' || { echo "stdout line cut by stderr"; fail=1; }
echo "$out" | grep -q '^a log line$' || { echo "stderr line lost"; fail=1; }
echo "$out" | grep -q '^MARKER-MS ' || { echo "marker split by stderr not seen"; fail=1; }
# Without -T nothing is stamped; -k ends a command that would run on.
out=$("$mt" -k -t 10 -- sh -c 'echo VIREO-BOOT-OK; sleep 30')
rc=$?
[ $rc -eq 0 ] || { echo "-k: exit status $rc, want 0"; fail=1; }
echo "$out" | grep -q '^VIREO-BOOT-OK$' || { echo "-k: marker line missing or stamped"; fail=1; }
echo "$out" | grep -q '^MARKER-EXIT 137$' || { echo "-k: command not killed"; fail=1; }
# No marker: exit 1 and MARKER-TIMEOUT.
out=$("$mt" -t 1 -- sh -c 'echo nothing; sleep 5')
rc=$?
[ $rc -eq 1 ] || { echo "no marker: exit status $rc, want 1"; fail=1; }
echo "$out" | grep -q '^MARKER-TIMEOUT 1$' || { echo "no MARKER-TIMEOUT line"; fail=1; }
# -Q: at the deadline the command gets SIGQUIT first, its output of the next
# moments still comes through, then it is killed.
out=$("$mt" -Q -t 1 -- sh -c 'trap "echo got-quit; echo dump-on-stderr >&2" QUIT; echo waiting; while :; do sleep 0.1; done')
rc=$?
[ $rc -eq 1 ] || { echo "-Q: exit status $rc, want 1"; fail=1; }
echo "$out" | grep -q '^got-quit$' || { echo "-Q: no SIGQUIT reached the command (or its output was lost)"; fail=1; }
echo "$out" | grep -q '^dump-on-stderr$' || { echo "-Q: the command's stderr after SIGQUIT was lost"; fail=1; }
echo "$out" | grep -q '^MARKER-TIMEOUT 1$' || { echo "-Q: no MARKER-TIMEOUT line"; fail=1; }
echo "$out" | grep -q '^MARKER-EXIT 137$' || { echo "-Q: command not killed after the dump"; fail=1; }
# -Q with a command that SIGQUIT ends: still a timeout.
out=$("$mt" -Q -t 1 -- sh -c 'echo waiting; exec sleep 5')
echo "$out" | grep -q '^MARKER-TIMEOUT 1$' || { echo "-Q: a command ended by SIGQUIT was not reported as timed out"; fail=1; }
echo "$out" | grep -q '^MARKER-EXIT 131$' || { echo "-Q: want exit status 131 (SIGQUIT) from sleep"; fail=1; }
[ $fail -eq 0 ] && echo "lab-marker-time: ok"
exit $fail
