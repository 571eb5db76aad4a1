#!/usr/bin/env bash
# Self-test of tests/run-all.sh's accounting: runs a copy of it in a fake
# checkout (a scripts/build.sh that builds nothing, a meson on PATH that
# writes a crafted test log, fuzz targets that are shell scripts, a
# tests/lab/run.sh that prints crafted RESULT/RETRIED lines) and checks its
# last two lines ("N retried", "N passed, N failed, N skipped"), its exit
# status and what it lists. Exit 0 when every case holds.
#   tests/run-all-test.sh
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nfail=0

# ---- the fake checkout --------------------------------------------------------
fake=$work/top
mkdir -p "$fake/tests/lab/scenarios" "$fake/scripts" "$fake/bin" "$fake/fuzz"
cp "$here/run-all.sh" "$fake/tests/run-all.sh"
for n in lib alpha beta; do echo "# $n" >"$fake/tests/lab/scenarios/$n.sh"; done
# Fuzz targets: the "source" says what the built target does.
echo pass >"$fake/fuzz/fuzz_one.c"
echo pass >"$fake/fuzz/fuzz_two.c"
cat >"$fake/scripts/build.sh" <<'EOF'
#!/usr/bin/env bash
# Fake build: asan builds nothing; fuzz makes each fuzz/fuzz_*.c a script
# that exits 0 when its source says "pass".
[ "$1" = asan ] && exit "${FAKE_ASAN_RC:-0}"
[ "$1" = tsan ] && exit 0
mkdir -p build/fuzz/fuzz
for s in fuzz/fuzz_*.c; do
	b=build/fuzz/fuzz/$(basename "$s" .c)
	if [ "$(cat "$s")" = pass ]; then echo 'exit 0' >"$b"; else echo 'echo crash; exit 1' >"$b"; fi
	chmod +x "$b"
done
EOF
# meson: "test" writes $FAKE_MESON_LOG's tests (less the suites given with
# --no-suite) as meson's JSON log, or with --logbase (the ThreadSanitizer
# run) one passing harness; "introspect --tests" lists them.
# FAKE_MESON_LOG lines: SUITE NAME RESULT.
cat >"$fake/bin/meson" <<'EOF'
#!/usr/bin/env bash
cmd=$1; shift
python3 - "$cmd" "$FAKE_MESON_LOG" "$@" <<'PY'
import json, os, sys
cmd, spec, args = sys.argv[1], sys.argv[2], sys.argv[3:]
tests = [l.split() for l in open(spec) if l.strip()]
if cmd == "introspect":
    print(json.dumps([{"name": n, "suite": ["vireo:" + s]} for s, n, _ in tests]))
    sys.exit(0)
drop = {args[i + 1] for i, a in enumerate(args) if a == "--no-suite"}
if "--logbase" in args:   # the ThreadSanitizer run: one harness, passing
    os.makedirs("build/tsan/meson-logs", exist_ok=True)
    with open("build/tsan/meson-logs/tsan.json", "w") as f:
        print(json.dumps({"name": "vireo:stress / stress-pci", "result": "OK"}), file=f)
    sys.exit(0)
os.makedirs("build/asan/meson-logs", exist_ok=True)
with open("build/asan/meson-logs/testlog.json", "w") as f:
    for s, n, r in tests:
        if s not in drop:
            print(json.dumps({"name": f"vireo:{s} / {n}", "result": r}), file=f)
PY
EOF
# The lab: prints $FAKE_LAB_OUT, writes $FAKE_LAB_KVM_LOG (when set) as the
# kvm-tests' meson log, keeps its arguments, exits $FAKE_LAB_RC.
cat >"$fake/tests/lab/run.sh" <<'EOF'
#!/usr/bin/env bash
echo "$*" >"$FAKE_ARGS"
cat "$FAKE_LAB_OUT"
if [ -n "${FAKE_LAB_KVM_LOG:-}" ]; then
	mkdir -p build/asan/meson-logs
	cp "$FAKE_LAB_KVM_LOG" build/asan/meson-logs/lab-kvm.json
fi
exit "${FAKE_LAB_RC:-0}"
EOF
echo 'exit 0' >"$fake/tests/lab/stall-retry-test.sh"
chmod +x "$fake/scripts/build.sh" "$fake/bin/meson" "$fake/tests/lab/run.sh" "$fake/tests/lab/stall-retry-test.sh"

# ---- running it -----------------------------------------------------------------
out=$work/out
export FAKE_ARGS=$work/args FAKE_MESON_LOG=$work/meson FAKE_LAB_OUT=$work/lab
export FUZZ_SECONDS=1
# meson LINE...: the fake meson's tests (SUITE NAME RESULT).
meson_tests() { printf '%s\n' "$@" >"$FAKE_MESON_LOG"; }
lab_says() { printf '%s\n' "$@" >"$FAKE_LAB_OUT"; }
all_ok() {
	case_failed=0
	meson_tests "unit u1 OK" "guest g1 OK" "kvm k1 OK"
	lab_says "lab: starting" "RESULT PASS alpha" "RESULT PASS beta" "lab: 2 passed, 0 failed, 0 retried"
	echo pass >"$fake/fuzz/fuzz_two.c"
	chmod +x "$fake/tests/lab/run.sh"
	unset FAKE_LAB_RC FAKE_LAB_KVM_LOG LAB_FILTER LAB_SAMPLE
	kvm=/dev/null
}
# run ARGS...: run-all in the fake checkout; its status in $rc.
run() {
	(cd "$fake" && PATH="$fake/bin:$PATH" RUN_ALL_KVM_DEVICE=$kvm bash tests/run-all.sh "$@") >"$out" 2>&1
	rc=$?
}
fail() {
	case_failed=1
	echo "run-all-test: FAIL: $case: $*"
	sed 's/^/    | /' "$out" | tail -40
	nfail=$((nfail + 1))
}
# expect STATUS RETRIED "FINAL LINE": exit status (0 or nonzero), the line
# before the last and the last line.
expect() {
	if [ "$1" = 0 ]; then [ $rc -eq 0 ] || fail "exit status $rc, want 0"
	else [ $rc -ne 0 ] || fail "exit status 0, want non-zero"; fi
	[ "$(tail -n 2 "$out" | head -n 1)" = "$2" ] || fail "line before the last is not '$2'"
	[ "$(tail -n 1 "$out")" = "$3" ] || fail "last line is not '$3'"
}
# has REGEX WHAT: the output has a line matching REGEX (grep -E).
has() { grep -Eq -- "$1" "$out" || fail "$2 (no line matching '$1')"; }
hasnt() { ! grep -Eq -- "$1" "$out" || fail "$2 (a line matches '$1')"; }
ok() { [ "$case_failed" = 1 ] || echo "run-all-test: $case: ok"; }
# lab_names: the scenario names run.sh was given (its arguments less the
# options, such as CI's --env LAB_DEBIAN_SAMPLE=1).
lab_names() { sed -E 's/--(env|host-fs) [^ ]+//g' "$FAKE_ARGS" | xargs; }

case="everything runs and passes, one scenario retried"
all_ok
lab_says "RESULT PASS alpha" "RETRIED beta lab emulator fault (a vCPU of vireo resumed)" "RESULT PASS beta"
run
expect 0 "1 retried" "9 passed, 0 failed, 0 skipped"
has '^   beta: lab emulator fault' "the retry is not listed"
hasnt '== what failed' "something is listed as failed"
ok

case="--skip-lab --skip-fuzz: each target and scenario skipped on request"
all_ok
run --skip-lab --skip-fuzz
expect 0 "0 retried" "4 passed, 0 failed, 5 skipped"
for n in fuzz-one fuzz-two alpha beta lab-stall-retry; do has "^   SKIP $n\$" "$n is not listed as skipped"; done
has '^== skipped on request' "no list of requested skips"
has '^   fuzz-one, fuzz-two: --skip-fuzz$' "the fuzz skips are not listed with their reason"
hasnt '== what failed' "a requested skip is listed as failed"
ok

case="a meson test reporting SKIP fails the run"
all_ok
meson_tests "unit u1 OK" "guest g1 SKIP" "kvm k1 OK"
run --skip-lab --skip-fuzz
expect 1 "0 retried" "3 passed, 0 failed, 6 skipped"
has '^   vireo:guest / g1: skipped, not requested: the test reported SKIP' "the skip is not listed under what failed"
ok

case="a failing meson test, a crashing fuzz target"
all_ok
meson_tests "unit u1 OK" "guest g1 FAIL" "kvm k1 TIMEOUT"
echo crash >"$fake/fuzz/fuzz_two.c"
run --skip-lab
expect 1 "0 retried" "3 passed, 3 failed, 3 skipped"
has '^   vireo:guest / g1: meson test FAIL' "the failing meson test is not listed"
has '^   fuzz-two: crash or timeout' "the crashing fuzz target is not listed"
ok

case="no fuzz targets: a skip nobody asked for"
all_ok
mv "$fake/fuzz" "$work/fuzz.away"
run --skip-lab
mv "$work/fuzz.away" "$fake/fuzz"
expect 1 "0 retried" "4 passed, 0 failed, 4 skipped"
has '^   fuzz: skipped, not requested: no fuzz targets' "the missing fuzz targets are not listed"
ok

case="tests/lab/run.sh not executable: its scenarios skipped, not requested"
all_ok
chmod -x "$fake/tests/lab/run.sh"
run --skip-fuzz
expect 1 "0 retried" "4 passed, 0 failed, 5 skipped"
has '^   alpha, beta, lab-stall-retry: skipped, not requested: tests/lab/run.sh is missing or not executable' \
	"the scenarios are not listed as unrequested skips"
ok

case="no /dev/kvm and --skip-lab: the suites guest and kvm skipped, not requested"
all_ok
kvm=$work/no-kvm
run --skip-lab --skip-fuzz
expect 1 "0 retried" "2 passed, 0 failed, 8 skipped"
has '^   SKIP kvm-tests$' "kvm-tests is not listed as skipped"
has '^   vireo:guest / g1, vireo:kvm / k1: skipped, not requested: no usable' "the kvm suites' tests are not listed"
ok

case="no /dev/kvm: the suites guest and kvm run in the lab and count"
all_ok
kvm=$work/no-kvm
lab_says "RESULT PASS alpha" "RESULT PASS beta" "RESULT PASS kvm-tests"
printf '%s\n' '{"name": "vireo:guest / g1", "result": "OK"}' '{"name": "vireo:kvm / k1", "result": "OK"}' >"$work/kvm.json"
export FAKE_LAB_KVM_LOG=$work/kvm.json
run
expect 0 "0 retried" "10 passed, 0 failed, 0 skipped"
grep -q -- '--host-fs tests/lab/hostfs/kvm-tests.sh' "$FAKE_ARGS" || fail "run.sh was not given --host-fs kvm-tests"
ok

case="a failed scenario and one without a result"
all_ok
lab_says "RESULT FAIL beta no marker" "    beta| the guest said X" "    beta| and then Y" \
	"    gamma| not beta's" "lab: 0 passed, 1 failed"
export FAKE_LAB_RC=1
run --skip-fuzz
expect 1 "0 retried" "5 passed, 2 failed, 2 skipped"
has '^   alpha: no result from the lab run' "alpha is not failed for its missing result"
has '^   beta: no marker$' "beta's reason is not listed"
[ "$(sed -n "/^== the failed lab scenarios' last lines/,\$p" "$out" | grep -c '^    beta| ')" = 2 ] ||
	fail "beta's last lines are not repeated at the end"
sed -n "/^== the failed lab scenarios' last lines/,\$p" "$out" | grep -q 'gamma|' &&
	fail "a line that is not beta's is repeated with its last lines"
hasnt '^   lab: the harness failed' "the harness is failed too"
ok

case="the lab harness fails before any scenario"
all_ok
lab_says "lab: the release build failed"
export FAKE_LAB_RC=2
run --skip-fuzz
expect 1 "0 retried" "5 passed, 2 failed, 2 skipped"
has '^   alpha, beta: no result from the lab run' "the scenarios are not failed"
ok

case="LAB_FILTER: the other scenarios skipped on request"
all_ok
lab_says "RESULT PASS alpha"
LAB_FILTER='al*' run --skip-fuzz
expect 0 "0 retried" "5 passed, 0 failed, 4 skipped"
[ "$(lab_names)" = alpha ] || fail "run.sh was given '$(cat "$FAKE_ARGS")', not alpha alone"
has "^   beta, lab-stall-retry: LAB_FILTER 'al\\*'" "beta and lab-stall-retry are not skipped on request"
ok

case="LAB_SAMPLE=1: only the marked scenarios run, the others skipped on request"
all_ok
lab_says "RESULT PASS beta"
printf '# beta\n# lab-sample: yes\n' >"$fake/tests/lab/scenarios/beta.sh"
LAB_SAMPLE=1 run --skip-fuzz
echo "# beta" >"$fake/tests/lab/scenarios/beta.sh"
expect 0 "0 retried" "6 passed, 0 failed, 3 skipped"
[ "$(lab_names)" = beta ] || fail "run.sh was given '$(cat "$FAKE_ARGS")', not beta alone"
has "^   alpha: LAB_SAMPLE=1: not in the lab's sample" "alpha is not skipped on request"
ok

case="LAB_FILTER matching no scenario fails"
all_ok
LAB_FILTER='nothing*' run --skip-fuzz
expect 1 "0 retried" "4 passed, 1 failed, 5 skipped"
has "^   lab-filter: LAB_FILTER 'nothing\\*' matches no lab scenario" "the empty filter is not listed"
ok

case="a retried scenario that fails"
all_ok
lab_says "RESULT PASS alpha" "RETRIED beta lab emulator fault (first)" "RESULT FAIL beta lab emulator fault again when vireo's run was retried"
export FAKE_LAB_RC=1
run --skip-fuzz
expect 1 "1 retried" "6 passed, 1 failed, 2 skipped"
has "^   beta: lab emulator fault again" "beta's failure is not listed"
ok

if [ $nfail -ne 0 ]; then
	echo "run-all-test: $nfail check(s) failed"
	exit 1
fi
echo "run-all-test: all cases hold"
