# shellcheck shell=bash
# The set-up the daemon tests (tests/daemon/*.sh) share.  A test sets
# $vireod, $vireo and $vmm (the programs), then sources this file found
# next to itself, so that it works from any directory meson runs it in:
#   . "$(dirname "$0")/lib.sh"
# and calls make_tmp first.  What it gives:
#
#   make_tmp NAME [MODE]   $T, a new directory /tmp/vireod-NAME.XXXXXX
#                          (chmod MODE if given), removed at exit by cleanup
#   cleanup                the EXIT trap make_tmp sets: cleanup_before (if
#                          the test defines it: its own helpers), the
#                          clients in bg[] (continued, then ended), the
#                          event follower $evpid, every VM by its pid file
#                          ($T/run/*/vmm.pid, $T/*/run/*/vmm.pid), the
#                          vireods $dpid and dpids[] (kill -9), then
#                          cleanup_after (if defined), then rm -rf $T
#   kill_pidfiles FILE...  kill -9 the pid (first word) of each FILE that exists
#   fail MSG               "FAIL: MSG", the logs (show_logs if the test
#                          defines it, else show_daemon_logs), exit 1
#   show_daemon_logs       $T/vireod.log and each VM's $T/run/*/vmm.log
#   dump [-v] FILE...      each FILE that exists under "--- FILE" (-v: cat -v)
#   skip MSG               "SKIP: MSG", exit 77 (meson's skipped)
#   need_kvm               skip unless /dev/kvm opens for reading and writing
#   need_cmds PROG...      skip unless each PROG is on $PATH ("SKIP: no PROG")
#   vrun LABEL CMD...      run CMD: stdout in $out, stderr in $err, the exit
#                          status in $rc; prints "LABEL -> rc | out | stderr"
#   v ARGS...              vrun of "$vireo ARGS" (labelled "vireo ARGS")
#   expect_rc N            fail unless $rc is N
#   has REGEX              fail unless REGEX (grep -E) is in $out or $err
#   wait_file FILE REGEX [SECONDS]   until REGEX is in FILE (default 30 s)
#   alive PID              the process runs (a zombie does not count)
#   state_of VM, pid_of VM           dominfo's State and PID of VM
#   vireod_argv DIR [ARGS...]        the command line of vireod_fg in the
#                          array vireod_cmd
#   vireod_fg DIR [ARGS...]          vireod --foreground with its state,
#                          run dir and socket in DIR (DIR/state, DIR/run,
#                          DIR/sock), --vmm $vmm, the test's vireod_args[]
#                          and ARGS, in the foreground (output not redirected)
#   start_vireod DIR [ARGS...]       vireod_fg in the background, logging to
#                          DIR/vireod.log, its pid in $dpid; returns once it
#                          answers on DIR/sock, fails if it ends or does not
#                          answer in 30 s
#   start_daemon [ARGS...] start_vireod $T; with $events_file set, its
#                          events (vireo events --all) appended there by a
#                          follower $evpid (the previous one ended)
#   make_cert CERT KEY [WHAT]  a self-signed EC certificate for localhost
#                          and 127.0.0.1 (KEY 0600), in the current directory
#   tls_setup              in $T (cd there): cert.pem and key.pem
#                          (make_cert), a random token in $token and the
#                          file token (0600), a free TCP port of 127.0.0.1
#                          in $port (needs openssl and python3)

dpid= evpid=
bg=()
vireod_args=()

cleanup() {
	declare -F cleanup_before >/dev/null && cleanup_before
	local p
	for p in "${bg[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
	[ -n "$evpid" ] && kill "$evpid" 2>/dev/null
	# the VMs outlive vireod: end them by their pid files
	kill_pidfiles "$T"/run/*/vmm.pid "$T"/*/run/*/vmm.pid
	[ -n "$dpid" ] && kill -KILL "$dpid" 2>/dev/null
	if declare -p dpids >/dev/null 2>&1; then
		for p in "${dpids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	fi
	declare -F cleanup_after >/dev/null && cleanup_after
	rm -rf "$T"
}

kill_pidfiles() {
	local f
	for f in "$@"; do
		[ -f "$f" ] && kill -KILL "$(cut -d' ' -f1 "$f")" 2>/dev/null
	done
	return 0
}

make_tmp() {
	T=$(mktemp -d "/tmp/vireod-$1.XXXXXX") || { echo "FAIL: mktemp"; exit 1; }
	[ -n "${2:-}" ] && chmod "$2" "$T"
	trap cleanup EXIT
}

dump() {
	local cat=(cat) f
	[ "$1" = -v ] && { cat=(cat -v); shift; }
	for f in "$@"; do [ -f "$f" ] && { echo "--- $f"; "${cat[@]}" "$f"; }; done
	return 0
}

show_daemon_logs() {
	echo "--- vireod log"; cat "$T"/vireod.log 2>/dev/null
	dump "$T"/run/*/vmm.log
}

fail() {
	echo "FAIL: $*"
	if declare -F show_logs >/dev/null; then show_logs; else show_daemon_logs; fi
	exit 1
}

skip() { echo "SKIP: $*"; exit 77; }

need_kvm() {
	{ exec 3<>/dev/kvm; } 2>/dev/null || skip "/dev/kvm cannot be opened"
	exec 3>&-
}

need_cmds() {
	local p
	for p in "$@"; do command -v "$p" >/dev/null || skip "no $p"; done
}

vrun() {
	local label=$1
	shift
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	out=$(cat "$T/out") err=$(cat "$T/err")
	echo "$label -> $rc${out:+ | ${out//$'\n'/ / }}${err:+ | stderr: $err}"
}

v() { vrun "vireo $*" "$vireo" "$@"; }
expect_rc() { [ "$rc" = "$1" ] || fail "expected exit status $1, got $rc"; }
has() { grep -qE -- "$1" <<<"$out$err" || fail "expected /$1/ in the output"; }

wait_file() {
	for _ in $(seq $((${3:-30} * 10))); do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no /$2/ in $1"
}

alive() { [ -r /proc/$1/stat ] && ! grep -q '^[0-9]* ([^)]*) Z' /proc/$1/stat; }
state_of() { "$vireo" dominfo "$1" 2>/dev/null | sed -n 's/^State: *//p'; }
pid_of() { "$vireo" dominfo "$1" 2>/dev/null | sed -n 's/^PID: *//p'; }

# (an array, not a function run in the background: $! is vireod's own pid)
vireod_argv() {
	local dir=$1
	shift
	vireod_cmd=("$vireod" --foreground --state-dir "$dir/state" --run-dir "$dir/run"
		    --socket "$dir/sock" --vmm "$vmm" "${vireod_args[@]}" "$@")
}

vireod_fg() {
	vireod_argv "$@"
	"${vireod_cmd[@]}"
}

start_vireod() {
	local dir=$1
	vireod_argv "$@"
	"${vireod_cmd[@]}" >>"$dir/vireod.log" 2>&1 &
	dpid=$!
	for _ in $(seq 300); do
		[ -S "$dir/sock" ] && "$vireo" -c "unix:$dir/sock" version >/dev/null 2>&1 && return 0
		kill -0 "$dpid" 2>/dev/null || fail "vireod on $dir/sock ended at start"
		sleep 0.1
	done
	fail "vireod does not answer on $dir/sock"
}

start_daemon() {
	start_vireod "$T" "$@"
	if [ -n "${events_file:-}" ]; then
		# a new vireod numbers its events from 1 again: a new follower
		[ -n "$evpid" ] && kill "$evpid" 2>/dev/null
		"$vireo" -c "unix:$T/sock" events --all >>"$events_file" 2>&1 &
		evpid=$!
	fi
	return 0
}

make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-keyout "$2" -out "$1" -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null ||
		fail "openssl req${3:+ ($3)}"
	chmod 600 "$2"
}

tls_setup() {
	cd "$T" || fail "cd $T"
	make_cert cert.pem key.pem
	token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
	echo "$token" >token
	chmod 600 token
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
}
