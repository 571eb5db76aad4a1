#!/usr/bin/env bash
# Run vireo-vmm once and check what it did.
#   check.sh NAME STATUS STDOUT_RE STDERR_RE -- VMM [ARGS...]
# STATUS: expected exit status; *_RE: extended regexps, each of which must
# match a line of the output; several are separated by ' && ' (empty: no
# check; EMPTY: the output must be empty), and that no sanitizer report
# appeared.  A run that hangs is killed after 120 s (and fails).
set -u
name=$1 want=$2 out_re=$3 err_re=$4
shift 4
[ "$1" = "--" ] && shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
timeout -k 5 120 "$@" </dev/null >"$dir/out" 2>"$dir/err"
got=$?
fail=0
if [ "$got" != "$want" ]; then
	echo "$name: exit status $got, expected $want"
	fail=1
fi
match() {   # match FILE WHAT RES
	local rest=$3 re
	if [ "$rest" = EMPTY ]; then
		[ -s "$1" ] && { echo "$name: $2 is not empty"; fail=1; }
		return
	fi
	while [ -n "$rest" ]; do
		re=${rest%% && *}
		[ "$re" = "$rest" ] && rest= || rest=${rest#* && }
		if ! grep -Eq -- "$re" "$1"; then
			echo "$name: $2 has no line matching /$re/"
			fail=1
		fi
	done
}
match "$dir/out" stdout "$out_re"
match "$dir/err" stderr "$err_re"
if grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$dir/err"; then
	echo "$name: sanitizer report"
	fail=1
fi
if [ $fail -ne 0 ]; then
	echo "--- command: $*"
	echo "--- stdout:"; head -c 4000 "$dir/out"
	echo "--- stderr:"; head -c 4000 "$dir/err"
	exit 1
fi
echo "$name: ok (status $got)"
