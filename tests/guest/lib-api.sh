# shellcheck shell=bash
# Sourced by the guest tests that start vireo-vmm processes, drive them
# over the control API (--api-socket) and check how they end:
#   . "$(dirname "$0")/lib-api.sh"
#   api_init
# (found beside the test script, wherever meson runs it from).  Needs bash,
# curl and python3.
#
# api_init      sets $dir (a new scratch directory, mode 0777: the monitor
#               of a sandboxed vireo-vmm makes and removes its files there
#               as the sandbox's user), $sock=$dir/api.sock, $pid (empty)
#               and $pids (empty array), and traps EXIT with api_cleanup.
# api_cleanup   kills (SIGKILL) $pid and each process in $pids, then
#               removes $dir.  A test with more to undo sets its own EXIT
#               trap that also calls api_cleanup.
# fail MSG...   prints "FAIL: MSG" and each $dir/*.out and $dir/*.err,
#               exits 1.
# call [-q] [-u SOCKET] METHOD PATH [BODY]
#               one HTTP request over $sock (or SOCKET), BODY (when given)
#               sent as application/json; sets $code (the HTTP status, 000
#               when curl failed) and $body (the answer; empty when there
#               was none: the old response file is removed first, so a
#               failed call never leaves an earlier body).  Prints
#               "METHOD PATH [BODY] -> CODE ANSWER" unless -q.
# expect CODE   fails unless $code is CODE.
# wait_for FILE PATTERN [PID]
#               returns once a line of FILE matches PATTERN (grep); fails
#               if PID ($pid when not given) ends first, or after
#               $wait_secs seconds.
# finish NAME STATUS [PID]
#               waits up to $finish_secs seconds for PID ($pid when not
#               given) to end (else kills it and fails), fails unless it
#               exited with STATUS or if $dir/NAME.err holds a sanitizer
#               report; then forgets it (empties $pid if it was $pid,
#               takes it out of $pids).
# json JSON KEY prints the value of KEY in the JSON object ("null" when
#               KEY is absent or null).
# need_kvm      exits 77 (skipped) without a readable, writable /dev/kvm.
# free_port     prints a TCP port of 127.0.0.1 that was free just now.
# savewrite_checksum
#               prints the checksum a correct run of the savewrite guest
#               ends with (its recurrence over 16384 words and 16 rounds,
#               see savewrite.c, computed here independently).
#
# Parameters (set after sourcing; the defaults in brackets):
#   api_timeout   seconds one call may take (curl --max-time) [60]
#   call_show     characters of an answer that call prints (empty: all) []
#   wait_secs     the bound of wait_for, in seconds [180]
#   finish_secs   the bound of finish, in seconds [120]
api_timeout=60
call_show=
wait_secs=180
finish_secs=120

api_init() {
	dir=$(mktemp -d) || { echo "FAIL: mktemp"; exit 1; }
	chmod 0777 "$dir"
	sock=$dir/api.sock
	pid=
	pids=()
	trap api_cleanup EXIT
}

api_cleanup() {
	local p
	for p in ${pid:-} "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$dir"
}

fail() {
	local f
	echo "FAIL: $*"
	for f in "$dir"/*.out "$dir"/*.err; do
		[ -e "$f" ] || continue
		echo "== $f"
		cat "$f"
	done
	exit 1
}

call() {
	local s=$sock quiet=
	while [ $# -gt 0 ]; do
		case $1 in
		-q) quiet=1; shift ;;
		-u) s=$2; shift 2 ;;
		*) break ;;
		esac
	done
	local args=(-s -o "$dir/resp" -w '%{http_code}' --max-time "$api_timeout" --unix-socket "$s" -X "$1")
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	rm -f "$dir/resp"
	code=$(curl "${args[@]}" "http://localhost$2") || code=000
	body=$(cat "$dir/resp" 2>/dev/null)
	[ -n "$quiet" ] && return 0
	local shown=$body
	[ -n "$call_show" ] && shown=${body:0:call_show}
	echo "$1 $2${3:+ $3} -> $code $shown"
}

expect() { [ "$code" = "$1" ] || fail "expected status $1, got $code"; }

wait_for() {
	local p=${3:-$pid}
	for _ in $(seq $((wait_secs * 10))); do
		grep -q -- "$2" "$1" && return 0
		kill -0 "$p" 2>/dev/null || fail "vireo-vmm ($1) ended before '$2'"
		sleep 0.1
	done
	fail "no '$2' in $1 after $wait_secs s"
}

# went_on PREFIX BEFORE AFTER: the guest's first "PREFIX N" line in file
# AFTER comes after its last one in file BEFORE (it went on, not from the
# start): sets last and first to those lines, or fails.
went_on() {
	last=$(grep "^$1" "$2" | tail -1)
	first=$(grep "^$1" "$3" | head -1)
	[ -n "$first" ] && [ -n "$last" ] && [ "${first#"$1"}" -gt "${last#"$1"}" ] ||
		fail "$(basename "$3") at '$first' after $(basename "$2")'s '$last'"
}

finish() {
	local p=${3:-$pid} q kept=()
	for _ in $(seq $((finish_secs * 10))); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$p" 2>/dev/null && { kill -KILL "$p"; fail "$1 still runs after $finish_secs s"; }
	wait "$p"
	local rc=$?
	[ "$p" = "$pid" ] && pid=
	for q in "${pids[@]}"; do
		[ "$q" = "$p" ] || kept+=("$q")
	done
	pids=("${kept[@]}")
	[ $rc -eq "$2" ] || fail "$1: exit status $rc, expected $2"
	grep -q "Sanitizer\|runtime error" "$dir/$1.err" && fail "$1: sanitizer report"
	return 0
}

json() {
	python3 -c "import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print('null' if v is None else v)" "$1" "$2"
}

need_kvm() {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "no /dev/kvm: skipped"; exit 77; }
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

savewrite_checksum() {
	python3 -c "
K=0x9e3779b97f4a7c15; M=(1<<64)-1; s=0
for n in range(4096*4):
    p,sl=divmod(n,4); i=p*512+sl*128; v=0
    for r in range(1,17): v=(v*K+(i^r))&M
    sh=n&31; s=(s+(((v<<sh)&M)|((v>>(64-sh)) if sh else 0)))&M
print('0x%016x'%s)"
}
