#!/usr/bin/env bash
# Run every test: unit and tiny-guest tests and image interop scripts (meson,
# under ASan+UBSan), fuzz targets for a bounded time, then the lab scenarios.
# Every test program, fuzz target and lab scenario counts once; the last line
# is "N passed, N failed".
#
#   tests/run-all.sh [--skip-lab] [--skip-fuzz]
# Env: FUZZ_SECONDS (per target; default 60 in CI, 30 otherwise), LAB_FILTER
# (scenario name glob).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
skip_lab=0 skip_fuzz=0
for a in "$@"; do
	case "$a" in
	--skip-lab) skip_lab=1 ;;
	--skip-fuzz) skip_fuzz=1 ;;
	*) echo "run-all: unknown option $a" >&2; exit 2 ;;
	esac
done
fuzz_seconds=${FUZZ_SECONDS:-30}
[ -z "${FUZZ_SECONDS:-}" ] && [ "${CI:-}" = "true" ] && fuzz_seconds=60
results=$(mktemp)
# Why each failure failed, one line each, repeated just above the last line
# (CI keeps only the tail of the output).
reasons=$(mktemp)
trap 'rm -f "$results" "$reasons"' EXIT
record() {
	echo "$1 $2" >>"$results"
	echo "== $1 $2${3:+ ($3)}"
	[ "$1" = PASS ] || echo "$2: ${3:-failed}" >>"$reasons"
}

# count_meson_log FILE: record each test in a meson JSON test log.
count_meson_log() {
	python3 - "$1" "$reasons" >>"$results" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    t = json.loads(line)
    ok = t.get("result") in ("OK", "EXPECTEDFAIL")
    skipped = t.get("result") == "SKIP"
    if skipped:
        print("FAIL", t["name"] + "(skipped)")
    else:
        print("PASS" if ok else "FAIL", t["name"])
    if not ok:
        with open(sys.argv[2], "a") as r:
            print(f"{t['name']}: meson test {t.get('result')}, see its log above", file=r)
PY
}

# The tests that need /dev/kvm (meson suites guest and kvm) run here when
# this host's /dev/kvm opens; otherwise (a host without one, like the PVM
# guests CI runs on) they run in the lab's outer VM, on this host's files
# (tests/lab/hostfs/kvm-tests.sh), with the lab scenarios below.
# (Not `exec 3<>/dev/kvm` alone: that creates a regular file where none is.)
kvm_here=0
[ -c /dev/kvm ] && python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null &&
	kvm_here=1
kvm_log=build/asan/meson-logs/lab-kvm.json

# 1. Meson tests in the sanitizer build.
echo "== building the test flavour (ASan+UBSan)"
if bash scripts/build.sh asan; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	if [ $kvm_here -eq 1 ]; then
		meson test -C build/asan --print-errorlogs --num-processes 2 || true
	else
		echo "== no usable /dev/kvm here: the suites guest and kvm run in the lab (below)"
		meson test -C build/asan --print-errorlogs --num-processes 2 \
			--no-suite guest --no-suite kvm || true
	fi
	count_meson_log build/asan/meson-logs/testlog.json
else
	record FAIL build-asan "build failed"
fi

# 2. Fuzz targets, each for a bounded time on its checked-in seed corpus.
if [ $skip_fuzz -eq 0 ] && [ -n "$(ls fuzz/*.c 2>/dev/null)" ]; then
	echo "== building fuzz targets (clang, libFuzzer)"
	if bash scripts/build.sh fuzz; then
		for src in fuzz/fuzz_*.c; do
			name=$(basename "$src" .c)
			bin=build/fuzz/fuzz/$name
			corpus=fuzz/corpus/${name#fuzz_}
			work=$(mktemp -d)
			[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
			if timeout $(( fuzz_seconds + 60 )) "$bin" -max_total_time="$fuzz_seconds" \
				-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$work" >"$work.log" 2>&1; then
				record PASS "fuzz-${name#fuzz_}"
			else
				tail -30 "$work.log"
				record FAIL "fuzz-${name#fuzz_}" "crash or timeout, see above"
			fi
			rm -rf "$work" "$work.log"
		done
	else
		record FAIL build-fuzz "build failed"
	fi
fi

# 3. Lab scenarios (real Linux guests; see tests/lab/README.md).
if [ $skip_lab -eq 0 ] && [ -x tests/lab/run.sh ]; then
	echo "== lab scenarios"
	nfail_before=$(grep -c '^FAIL ' "$results")
	# Its output passes through as it comes; RESULT lines are also recorded.
	# (Not `tee /dev/stderr`: when stderr is a file, tee reopens it with
	# O_TRUNC and its own offset, and the log ends up with holes of NULs.)
	kvm_args=()
	if [ $kvm_here -eq 0 ]; then
		rm -f "$kvm_log"
		kvm_args=(--host-fs tests/lab/hostfs/kvm-tests.sh)
	fi
	bash tests/lab/run.sh ${LAB_FILTER:+--filter "$LAB_FILTER"} --all "${kvm_args[@]}" 2>&1 |
		awk -v results="$results" -v reasons="$reasons" '{ print; fflush() }
		$1=="RESULT" && ($2=="PASS"||$2=="FAIL") {
			print $2, $3 >> results
			if ($2 == "FAIL") {
				why = $0; sub(/^RESULT FAIL [^ ]+ ?/, "", why)
				print $3 ": " why >> reasons
			}
		}'
	# run.sh failed without a scenario failing: the harness itself failed.
	[ "${PIPESTATUS[0]}" -eq 0 ] || [ "$(grep -c '^FAIL ' "$results")" -gt "$nfail_before" ] ||
		record FAIL lab "the harness failed, see its output above"
	# Each test kvm-tests ran (its own RESULT line says whether all passed).
	if [ $kvm_here -eq 0 ]; then
		if [ -s "$kvm_log" ]; then
			count_meson_log "$kvm_log"
		else
			record FAIL kvm-suites "no usable /dev/kvm here and the lab ran no kvm-tests (no $kvm_log)"
		fi
	fi
	# The harness's own handling of a stalled outer VM (tests/lab/selftest).
	if [ -z "${LAB_FILTER:-}" ]; then
		if bash tests/lab/stall-retry-test.sh; then
			record PASS lab-stall-retry
		else
			record FAIL lab-stall-retry "see above"
		fi
	fi
fi

if [ $kvm_here -eq 0 ] && { [ $skip_lab -eq 1 ] || [ ! -x tests/lab/run.sh ]; }; then
	record FAIL kvm-suites "no usable /dev/kvm here, and without the lab the suites guest and kvm did not run"
fi

echo
echo "== summary"
sort -k2 "$results" | sed 's/^/   /'
passed=$(grep -c '^PASS ' "$results")
failed=$(grep -c '^FAIL ' "$results")
if [ -s "$reasons" ]; then
	echo
	echo "== what failed"
	sed 's/^/   /' "$reasons"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
