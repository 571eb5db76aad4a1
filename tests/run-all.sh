#!/usr/bin/env bash
# Run every test: unit and tiny-guest tests and image interop scripts (meson,
# under ASan+UBSan), fuzz targets for a bounded time, then the lab scenarios.
# Every test program, fuzz target and lab scenario counts once, as passed,
# failed or skipped; the last line is "N passed, N failed, N skipped".
#
#   tests/run-all.sh [--skip-lab] [--skip-fuzz]
#
# --skip-lab and --skip-fuzz ask for a suite to be skipped: each of its tests
# (each lab scenario that would have run, each fuzz target) is counted as
# skipped and listed as skipped on request. A skip nobody asked for (a meson
# test that reports SKIP, no fuzz targets, no executable tests/lab/run.sh,
# the suites guest and kvm with neither a usable /dev/kvm here nor the lab)
# is counted as skipped too, and fails the run: it is listed under "what
# failed" with its reason. Lab scenarios that were run again after a fault of
# the lab's emulated machine are counted on the line "N retried" just above
# the last line. Exits 0 only when nothing failed, every skip was asked for
# and something passed.
#
# Env: FUZZ_SECONDS (per target; default 20), FUZZ_JOBS (targets at once;
# default the number of CPUs),
# LAB_FILTER (scenario name glob: the other scenarios are skipped on request;
# a glob that matches none is an error), LAB_SAMPLE (1: only the scenarios
# with a "# lab-sample: yes" line, and kvm-tests, run; the others are
# skipped on request; .ci/run asks for this), RUN_ALL_KVM_DEVICE (the device whose
# opening decides whether the suites guest and kvm run here or in the lab;
# default /dev/kvm; tests/run-all-test.sh sets it).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
skip_lab=0 skip_fuzz=0
for a in "$@"; do
	case "$a" in
	--skip-lab) skip_lab=1 ;;
	--skip-fuzz) skip_fuzz=1 ;;
	*) echo "run-all: unknown option $a" >&2; exit 2 ;;
	esac
done
fuzz_seconds=${FUZZ_SECONDS:-20}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# results: "PASS|FAIL|SKIP name", one line per test.
# reasons: "name: why" for each failure and each skip nobody asked for,
#   repeated just above the last line (CI keeps only the tail of the output).
# requested: "name: why" for each skip asked for.
# retried: "name: why" for each retry of a lab scenario.
# details: the last lines of each failed lab scenario, also repeated at the
#   end (the tail CI keeps shows them).
results=$tmp/results reasons=$tmp/reasons requested=$tmp/requested retried=$tmp/retried
details=$tmp/details
: >"$results"; : >"$reasons"; : >"$requested"; : >"$retried"; : >"$details"

# record PASS|FAIL|SKIP NAME [REASON]: one test's result. SKIP is a skip
# nobody asked for (skip_requested is the other kind).
record() {
	echo "$1 $2" >>"$results"
	echo "== $1 $2${3:+ ($3)}"
	case "$1" in
	FAIL) echo "$2: ${3:-failed}" >>"$reasons" ;;
	SKIP) echo "$2: skipped, not requested: ${3:-no reason given}" >>"$reasons" ;;
	esac
}
# skip_requested NAME REASON: NAME did not run because we were asked so.
skip_requested() {
	echo "SKIP $1" >>"$results"
	echo "$1: $2" >>"$requested"
}

# count_meson_log FILE WHAT [PREFIX]: record each test in a meson JSON test
# log, its name prefixed with PREFIX (WHAT names the run, for a missing log).
count_meson_log() {
	if [ ! -s "$1" ]; then
		record FAIL "$2" "no meson test log $1"
		return
	fi
	python3 - "$1" "$reasons" "${3:-}" >>"$results" <<'PY'
import json, sys
with open(sys.argv[2], "a") as reasons:
    for line in open(sys.argv[1]):
        line = line.strip()
        if not line:
            continue
        t = json.loads(line)
        t["name"] = sys.argv[3] + t["name"]
        result = t.get("result")
        if result in ("OK", "EXPECTEDFAIL"):
            print("PASS", t["name"])
        elif result == "SKIP":
            print("SKIP", t["name"])
            print(f"{t['name']}: skipped, not requested: the test reported SKIP"
                  " (exit 77), see its log above", file=reasons)
        else:
            print("FAIL", t["name"])
            print(f"{t['name']}: meson test {result}, see its log above", file=reasons)
PY
}

# kvm_suite_tests: the meson tests of the suites guest and kvm, named as in
# meson's test log; "kvm-suites" when the build cannot list them.
kvm_suite_tests() {
	meson introspect build/asan --tests 2>/dev/null | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if {s.split(":")[-1] for s in t["suite"]} & {"guest", "kvm"}:
        print(t["suite"][0] + " / " + t["name"])' 2>/dev/null | grep . || echo kvm-suites
}

# The tests that need /dev/kvm (meson suites guest and kvm) run here when
# this host's /dev/kvm opens; otherwise (a host without one, like the PVM
# guests CI runs on) they run in the lab's outer VM, on this host's files
# (tests/lab/hostfs/kvm-tests.sh), with the lab scenarios below.
# (Not `exec 3<>/dev/kvm` alone: that creates a regular file where none is.)
kvm_dev=${RUN_ALL_KVM_DEVICE:-/dev/kvm}
kvm_here=0
[ -c "$kvm_dev" ] &&
	python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDWR))' "$kvm_dev" 2>/dev/null &&
	kvm_here=1
kvm_log=build/asan/meson-logs/lab-kvm.json

# 1. Meson tests in the sanitizer build.
echo "== building the test flavour (ASan+UBSan), at $SECONDS s"
if bash scripts/build.sh asan; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	if [ $kvm_here -eq 1 ]; then
		meson test -C build/asan --print-errorlogs --num-processes 2 || true
	else
		echo "== no usable $kvm_dev here: the suites guest and kvm run in the lab (below)"
		meson test -C build/asan --print-errorlogs --num-processes 2 \
			--no-suite guest --no-suite kvm || true
	fi
	count_meson_log build/asan/meson-logs/testlog.json meson-tests
else
	record FAIL build-asan "build failed"
fi

# 1b. The concurrency harness under ThreadSanitizer (suite stress; it uses a
# KVM VM where /dev/kvm opens and runs without one elsewhere).
echo "== building the concurrency harness (ThreadSanitizer), at $SECONDS s"
if bash scripts/build.sh tsan; then
	TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
		meson test -C build/tsan --no-rebuild --print-errorlogs --suite stress \
		--logbase tsan || true
	count_meson_log build/tsan/meson-logs/tsan.json tsan-tests tsan-
else
	record FAIL build-tsan "build failed"
fi

# 2. Fuzz targets, each for a bounded time on its checked-in seed corpus.
fuzz_targets=()
for src in fuzz/fuzz_*.c; do
	[ -f "$src" ] && fuzz_targets+=("$(basename "$src" .c)")
done
if [ $skip_fuzz -eq 1 ]; then
	for name in "${fuzz_targets[@]}"; do skip_requested "fuzz-${name#fuzz_}" "--skip-fuzz"; done
	[ ${#fuzz_targets[@]} -gt 0 ] || skip_requested fuzz "--skip-fuzz (and no fuzz/fuzz_*.c)"
elif [ ${#fuzz_targets[@]} -eq 0 ]; then
	record SKIP fuzz "no fuzz targets (fuzz/fuzz_*.c)"
else
	echo "== building fuzz targets (clang, libFuzzer), at $SECONDS s"
	if bash scripts/build.sh fuzz; then
		# One target per CPU at a time (each is single-threaded).
		fuzz_one() {
			local name=$1 bin corpus work
			bin=build/fuzz/fuzz/$name
			corpus=fuzz/corpus/${name#fuzz_}
			work=$(mktemp -d)
			[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
			if timeout $((fuzz_seconds + 60)) "$bin" -max_total_time="$fuzz_seconds" \
				-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$work" >"$work.log" 2>&1; then
				record PASS "fuzz-${name#fuzz_}"
			else
				tail -30 "$work.log"
				record FAIL "fuzz-${name#fuzz_}" "crash or timeout, see above"
			fi
			rm -rf "$work" "$work.log"
		}
		fuzz_jobs=${FUZZ_JOBS:-$(nproc)}
		running=0
		for name in "${fuzz_targets[@]}"; do
			fuzz_one "$name" &
			running=$((running + 1))
			if [ $running -ge "$fuzz_jobs" ]; then
				wait -n
				running=$((running - 1))
			fi
		done
		wait
	else
		record FAIL build-fuzz "build failed"
	fi
fi

# 3. Lab scenarios (real Linux guests; see tests/lab/README.md). Those that
# would run: every tests/lab/scenarios/*.sh but lib.sh (as run.sh --all)
# and, without /dev/kvm here, kvm-tests (the suites guest and kvm); of
# these, the ones LAB_FILTER matches.
lab_all=()
for f in tests/lab/scenarios/*.sh; do
	[ -f "$f" ] && [ "$f" != tests/lab/scenarios/lib.sh ] && lab_all+=("$(basename "$f" .sh)")
done
[ $kvm_here -eq 1 ] || lab_all+=(kvm-tests)
lab_names=()
for n in "${lab_all[@]}"; do
	# shellcheck disable=SC2053
	if [ -n "${LAB_FILTER:-}" ] && [[ "$n" != $LAB_FILTER ]]; then
		skip_requested "$n" "LAB_FILTER '$LAB_FILTER'"
	elif [ "${LAB_SAMPLE:-}" = 1 ] && [ "$n" != kvm-tests ] &&
		! grep -q '^# lab-sample: yes' "tests/lab/scenarios/$n.sh"; then
		skip_requested "$n" "LAB_SAMPLE=1: not in the lab's sample (no '# lab-sample: yes' line)"
	else
		lab_names+=("$n")
	fi
done
kvm_in_lab=0
[ $kvm_here -eq 0 ] && [[ " ${lab_names[*]} " == *" kvm-tests "* ]] && kvm_in_lab=1
if [ ${#lab_names[@]} -eq 0 ] && [ -n "${LAB_FILTER:-}" ]; then
	record FAIL lab-filter "LAB_FILTER '$LAB_FILTER' matches no lab scenario"
fi
# The harness's own handling of outer-VM faults and retries
# (tests/lab/selftest), with every scenario only.
lab_stall=1
if [ -n "${LAB_FILTER:-}" ]; then
	lab_stall=0
	skip_requested lab-stall-retry "LAB_FILTER '$LAB_FILTER'"
fi

if [ $skip_lab -eq 1 ]; then
	for n in "${lab_names[@]}"; do skip_requested "$n" "--skip-lab"; done
	[ $lab_stall -eq 0 ] || skip_requested lab-stall-retry "--skip-lab"
elif [ ! -x tests/lab/run.sh ]; then
	for n in "${lab_names[@]}"; do record SKIP "$n" "tests/lab/run.sh is missing or not executable"; done
	[ $lab_stall -eq 0 ] || record SKIP lab-stall-retry "tests/lab/run.sh is missing or not executable"
elif [ ${#lab_all[@]} -eq 0 ]; then
	record SKIP lab "no lab scenarios (tests/lab/scenarios/*.sh)"
elif [ ${#lab_names[@]} -gt 0 ]; then
	echo "== lab scenarios, at $SECONDS s"
	nfail_before=$(grep -c '^FAIL ' "$results")
	# Its output passes through as it comes; RESULT and RETRIED lines are
	# also recorded. (Not `tee /dev/stderr`: when stderr is a file, tee
	# reopens it with O_TRUNC and its own offset, and the log ends up with
	# holes of NULs.)
	kvm_args=()
	if [ $kvm_in_lab -eq 1 ]; then
		rm -f "$kvm_log"
		kvm_args=(--host-fs tests/lab/hostfs/kvm-tests.sh)
	fi
	# In CI the Debian guest's scenario runs its sample (no reboot, one
	# scp round trip): the whole of it takes about 13 minutes in the lab.
	lab_env=()
	[ "${CI:-}" = true ] && lab_env=(--env LAB_DEBIAN_SAMPLE=1)
	# The scenarios by name (kvm-tests is the file in kvm_args).
	lab_run=()
	for n in "${lab_names[@]}"; do [ "$n" = kvm-tests ] || lab_run+=("$n"); done
	bash tests/lab/run.sh "${lab_env[@]}" "${kvm_args[@]}" "${lab_run[@]}" 2>&1 |
		awk -v results="$results" -v reasons="$reasons" -v retried="$retried" -v details="$details" '{ print; fflush() }
		cur != "" && index($0, "    " cur "| ") == 1 { print >> details; next }
		{ cur = "" }
		$1 == "RESULT" && ($2 == "PASS" || $2 == "FAIL") {
			print $2, $3 >> results
			if ($2 == "FAIL") {
				why = $0; sub(/^RESULT FAIL [^ ]+ ?/, "", why)
				print $3 ": " why >> reasons
				cur = $3
			}
		}
		$1 == "RETRIED" {
			why = $0; sub(/^RETRIED [^ ]+ ?/, "", why)
			print $2 ": " why >> retried
		}'
	lab_rc=${PIPESTATUS[0]}
	# A scenario that should have run and gave no result line failed.
	for n in "${lab_names[@]}"; do
		grep -Fxq -e "PASS $n" -e "FAIL $n" "$results" ||
			record FAIL "$n" "no result from the lab run (see its output above)"
	done
	# run.sh failed without a scenario failing: the harness itself failed.
	[ "$lab_rc" -eq 0 ] || [ "$(grep -c '^FAIL ' "$results")" -gt "$nfail_before" ] ||
		record FAIL lab "the harness failed, see its output above"
	# Each test kvm-tests ran (its own RESULT line says whether all passed).
	if [ $kvm_in_lab -eq 1 ]; then
		if [ -s "$kvm_log" ]; then
			count_meson_log "$kvm_log" kvm-suites
		else
			while IFS= read -r t; do
				record FAIL "$t" "no usable $kvm_dev here and the lab's kvm-tests left no $kvm_log"
			done < <(kvm_suite_tests)
		fi
	fi
	if [ $lab_stall -eq 1 ]; then
		echo "== the lab harness's self-test, at $SECONDS s"
		if bash tests/lab/stall-retry-test.sh; then
			record PASS lab-stall-retry
		else
			record FAIL lab-stall-retry "see above"
		fi
	fi
fi

# Without /dev/kvm here the suites guest and kvm run only in the lab.
if [ $kvm_here -eq 0 ] && [ $kvm_in_lab -eq 1 ] && { [ $skip_lab -eq 1 ] || [ ! -x tests/lab/run.sh ]; }; then
	while IFS= read -r t; do
		record SKIP "$t" "no usable $kvm_dev here, and without the lab the suites guest and kvm do not run"
	done < <(kvm_suite_tests)
elif [ $kvm_here -eq 0 ] && [ $kvm_in_lab -eq 0 ]; then
	while IFS= read -r t; do
		skip_requested "$t" "no usable $kvm_dev here, and LAB_FILTER '$LAB_FILTER' leaves out kvm-tests"
	done < <(kvm_suite_tests)
fi

# group FILE: "name: why" lines, one line per distinct why, with the names
# that share it (the first few, then how many more).
group() {
	awk '{ i = index($0, ": "); n = substr($0, 1, i - 1); w = substr($0, i + 2)
	       if (!(w in c)) order[++k] = w
	       c[w]++; if (c[w] <= 4) names[w] = names[w] (c[w] > 1 ? ", " : "") n }
	     END { for (j = 1; j <= k; j++) { w = order[j]
	             more = c[w] > 4 ? " and " (c[w] - 4) " more" : ""
	             printf "   %s%s: %s\n", names[w], more, w } }' "$1"
}

echo
echo "== summary, at $SECONDS s"
sort -k2 "$results" | sed 's/^/   /'
passed=$(grep -c '^PASS ' "$results")
failed=$(grep -c '^FAIL ' "$results")
skipped=$(grep -c '^SKIP ' "$results")
unrequested=$(grep -c ': skipped, not requested: ' "$reasons")
nretried=$(cut -d: -f1 "$retried" | sort -u | grep -c .)
if [ -s "$requested" ]; then
	echo
	echo "== skipped on request"
	group "$requested"
fi
if [ -s "$retried" ]; then
	echo
	echo "== retried (run again after a fault of the lab's emulated machine)"
	sed 's/^/   /' "$retried"
fi
if [ -s "$reasons" ]; then
	echo
	echo "== what failed"
	group "$reasons"
fi
if [ -s "$details" ]; then
	echo
	echo "== the failed lab scenarios' last lines (all of them above)"
	tail -n "${DETAIL_LINES:-40}" "$details"
fi
echo "$nretried retried"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$unrequested" -eq 0 ] && [ "$passed" -gt 0 ]
