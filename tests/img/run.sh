#!/usr/bin/env bash
# Runner for the numbered image tests (QEMU iotests style).
#
#   tests/img/run.sh [--regen] [--vireo-img PATH] [NNN|NNN-name ...]
#
# Runs each tests/img/NNN-*.sh (all of them by default), compares its stdout
# with NNN-*.out and prints "PASS|FAIL|SKIP NNN-name" per test.  A test fails
# when it exits non-zero or its output differs from the expectation.
# --regen writes the output of passing tests (exit 0) as their new
# expectation; review the diff before committing it.
# Exit status: 0 all passed, 77 all skipped (meson's skip code), 1 otherwise.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
regen=0
sel=()
while [ $# -gt 0 ]; do
	case "$1" in
	--regen) regen=1 ;;
	--vireo-img) shift; export VIREO_IMG=$1 ;;
	-h|--help) sed -n '2,12p' "$0"; exit 0 ;;
	-*) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) sel+=("$1") ;;
	esac
	shift
done

tests=()
if [ ${#sel[@]} -eq 0 ]; then
	for t in "$here"/[0-9][0-9][0-9]-*.sh; do tests+=("$t"); done
else
	for s in "${sel[@]}"; do
		m=("$here/${s%.sh}"*.sh)
		if [ ! -f "${m[0]}" ] || [ ${#m[@]} -ne 1 ]; then
			echo "run.sh: no single test matches '$s'" >&2
			exit 2
		fi
		tests+=("${m[0]}")
	done
fi

pass=0 failn=0 skip=0
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	exp="$here/$name.out"
	out=$(mktemp)
	err=$(mktemp)
	bash "$t" >"$out" 2>"$err"
	rc=$?
	if [ $rc -eq 77 ]; then
		echo "SKIP $name: $(tail -1 "$err")"
		skip=$((skip + 1))
	elif [ $regen -eq 1 ] && [ $rc -eq 0 ]; then
		cp "$out" "$exp"
		echo "REGEN $name"
		pass=$((pass + 1))
	elif [ $rc -ne 0 ]; then
		echo "FAIL $name (exit $rc)"
		sed 's/^/  | /' "$out"
		sed 's/^/  ! /' "$err" | tail -40
		failn=$((failn + 1))
	elif [ ! -f "$exp" ]; then
		echo "FAIL $name: no expectation $name.out (run with --regen and review)"
		sed 's/^/  | /' "$out"
		failn=$((failn + 1))
	elif ! diff -u "$exp" "$out" >"$out.diff"; then
		echo "FAIL $name: output differs from $name.out"
		sed 's/^/  /' "$out.diff"
		sed 's/^/  ! /' "$err" | tail -20
		failn=$((failn + 1))
	else
		echo "PASS $name"
		pass=$((pass + 1))
	fi
	rm -f "$out" "$err" "$out.diff"
done
echo "$pass passed, $failn failed, $skip skipped"
if [ $failn -ne 0 ]; then exit 1; fi
if [ $pass -eq 0 ] && [ $skip -gt 0 ]; then exit 77; fi
exit 0
