#!/usr/bin/env bash
# Self-test of the lab harness's handling of an outer VM that stalls
# (tests/lab/run.sh: host-side watchdog, then one retry in a new outer VM).
# The scenarios in tests/lab/selftest/ stall the first outer VM on purpose.
#   1. default (one retry): stall-once is cut short, run again in a new outer
#      VM with what had not run, and everything passes; it is counted as
#      retried (a RETRIED line) and the summary says so.
#   2. LAB_STALL_RETRIES=0: stall-once fails with the stall's reason, 'after'
#      fails as never run, run.sh exits non-zero.
#   3. panic-once crashes the first outer VM's kernel: retried like a stall.
#   4. silent-once stops every process of the first outer VM, its heartbeat
#      included: the host's silence limit (LAB_SILENT_SECONDS) ends it long
#      before the scenario's bound, and it is retried like a stall.
#   5. emulator-retry and emulator-retry-twice (one outer VM): a run that
#      met the lab emulator's fault is retried once (lib.sh,
#      lab_emulator_retry); a clean retry passes, a retry that meets it
#      again fails; both are counted as retried.
# Exit 0 when all hold. Needs what the lab needs (outer mode only: in
# direct mode there is no outer VM to stall).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
st=$here/selftest
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail() { echo "stall-retry-test: FAIL: $*"; sed 's/^/    | /' "$out" | tail -40; exit 1; }

run() {
	LAB_WATCHDOG_GRACE=5 LAB_SILENT_SECONDS=${silent:-60} bash "$here/run.sh" --mode outer \
		"$st/first.sh" "$st/${1:-stall-once}.sh" "$st/after.sh" >"$out" 2>&1
}

# expect_retried NAME: the fault during NAME was retried in one new outer VM
# with exactly NAME and 'after', and every scenario passed once.
expect_retried() {
	grep -q "^lab: starting a new outer VM (outer-VM fault 1 of at most 2) for: $1 after\$" "$out" ||
		fail "no new outer VM for exactly '$1 after'"
	for n in first "$1" after; do
		[ "$(grep -c "^RESULT PASS $n\$" "$out")" -eq 1 ] || fail "expected one 'RESULT PASS $n'"
	done
	grep -q '^RESULT FAIL' "$out" && fail "a scenario failed"
	if [ "$(grep -c '^RETRIED ' "$out")" -ne 1 ] || ! grep -q "^RETRIED $1 " "$out"; then
		fail "expected one RETRIED line, for $1"
	fi
	grep -q '^lab: 3 passed, 0 failed, 1 retried after 1 outer-VM fault(s)' "$out" ||
		fail "the summary does not count the retry or mention the fault"
}

run; rc=$?
[ $rc -eq 0 ] || fail "with one retry allowed run.sh exited $rc"
grep -q '^lab: watchdog: nothing from scenario stall-once' "$out" || fail "the watchdog did not fire"
expect_retried stall-once
echo "stall-retry-test: one stall, retried: ok"

LAB_STALL_RETRIES=0 run; rc=$?
[ $rc -ne 0 ] || fail "with no retry allowed run.sh exited 0"
grep -q '^RESULT PASS first$' "$out" || fail "'first' did not pass"
grep -q '^RESULT FAIL stall-once the outer VM stalled .* while it ran$' "$out" || fail "stall-once did not fail as stalled"
grep -q '^RESULT FAIL after the outer VM stalled .* before it ran$' "$out" || fail "'after' did not fail as never run"
grep -q 'starting a new outer VM' "$out" && fail "a new outer VM was started though no retry was allowed"
grep -q '^RETRIED ' "$out" && fail "a scenario was counted as retried though no retry was allowed"
echo "stall-retry-test: one stall, no retry allowed: ok"

run panic-once; rc=$?
[ $rc -eq 0 ] || fail "after an outer kernel panic run.sh exited $rc"
grep -q '^lab: the outer kernel panicked while panic-once ran' "$out" || fail "the panic was not reported"
grep -q 'outer-kernel| .*Kernel panic - not syncing' "$out" || fail "the outer kernel's panic message was not shown"
expect_retried panic-once
echo "stall-retry-test: outer kernel panic, retried: ok"

silent=25 run silent-once; rc=$?
[ $rc -eq 0 ] || fail "after a silent outer VM run.sh exited $rc"
grep -q '^lab: watchdog: no output at all, heartbeat included, for 25 s during scenario silent-once' "$out" ||
	fail "the silence was not detected"
expect_retried silent-once
echo "stall-retry-test: silent outer VM, retried: ok"

LAB_WATCHDOG_GRACE=5 bash "$here/run.sh" --mode outer "$st/emulator-retry.sh" "$st/emulator-retry-twice.sh" \
	>"$out" 2>&1
rc=$?
[ $rc -ne 0 ] || fail "run.sh exited 0 though emulator-retry-twice failed"
grep -q '^RESULT PASS emulator-retry$' "$out" || fail "emulator-retry did not pass after its retry"
grep -q '^RESULT FAIL emulator-retry-twice lab emulator fault again' "$out" ||
	fail "emulator-retry-twice did not fail on the retry's fault"
for n in emulator-retry emulator-retry-twice; do
	[ "$(grep -c "^RETRIED $n lab emulator fault" "$out")" -eq 1 ] || fail "expected one 'RETRIED $n' line"
done
grep -q '^lab: 1 passed, 1 failed, 2 retried;' "$out" || fail "the summary does not count the two retried scenarios"
echo "stall-retry-test: lab emulator fault, retried once: ok"
