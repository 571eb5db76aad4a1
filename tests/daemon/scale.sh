#!/usr/bin/env bash
# vireod at scale, with tiny guests on /dev/kvm (pwrbtn.elf: runs until
# its ACPI power button is pressed).  Each mode keeps under 2 minutes on
# a 2-core machine with the ASan build.
#   scale.sh restart10 VIREOD VIREO VMM GUEST
#     10 VMs run; kill -9 of vireod; a new vireod: all 10 are still
#     running, with the same processes, and managed (suspend/resume one,
#     ACPI shutdown of all through it); no definition lost, none changed.
#   scale.sh clients50 VIREOD VIREO VMM GUEST
#     50 clients at once, each defining, starting, checking and stopping
#     (destroy or ACPI shutdown) its own VM: every operation succeeds; at
#     the end all 50 are defined and shut off, no vireo-vmm is left, no
#     pid file, and the event stream has each VM's start and stop.
#   scale.sh perms VIREOD VIREO VMM GUEST
#     The Unix socket (0660, root and the group): a uid neither root nor
#     in the group is refused (EACCES) for every request, the group is let
#     in, root too.  Needs root (for setpriv); no VM.
set -u
mode=$1 vireod=$2 vireo=$3 vmm=$(realpath "$4") guest=$(realpath "$5")
. "$(dirname "$0")/lib.sh"
make_tmp scale 755
export VIREO_SOCKET=$T/sock
vireod_args=(--no-autostart)
show_logs() {
	echo "--- vireod log"; tail -50 "$T"/vireod.log 2>/dev/null
	for l in "$T"/run/*/vmm.log; do [ -s "$l" ] && { echo "--- $l"; tail -5 "$l"; }; done
}
defn() {
	printf '{"name": "%s", "cpus": 1, "memory": "16M", "kernel": "%s", "cmdline": "console=ttyS0"}\n' \
		"$1" "$guest" >"$T/$1.json"
}
# list_json: vireo list --all --json into $list
list_json() { list=$("$vireo" list --all --json) || fail "list failed"; }
# count STATE: VMs in that state
count() { grep -o "\"state\":\"$1\"" <<<"$list" | wc -l; }
# wait_all STATE N SECONDS
wait_all() {
	for _ in $(seq $(($3 * 5))); do
		list_json
		[ "$(count "$1")" = "$2" ] && return 0
		sleep 0.2
	done
	fail "$(count "$1") VMs $1, expected $2: $list"
}

case "$mode" in
restart10)
	need_kvm
	start_daemon
	for i in $(seq 10); do
		defn r$i
		"$vireo" define "$T/r$i.json" >/dev/null || fail "define r$i"
	done
	for i in $(seq 10); do
		"$vireo" dumpdef r$i >"$T/r$i.before" || fail "dumpdef r$i"
	done
	pids=()
	for i in $(seq 10); do "$vireo" start r$i >/dev/null & pids+=($!); done
	for p in "${pids[@]}"; do wait $p || fail "a start failed"; done
	wait_all running 10 60
	declare -A pid
	for i in $(seq 10); do
		pid[r$i]=$("$vireo" dominfo r$i | sed -n 's/^PID: *//p')
		alive "${pid[r$i]}" || fail "r$i's pid ${pid[r$i]} does not run"
	done
	echo "10 VMs running: ${pid[*]}"
	kill -KILL $dpid; wait $dpid 2>/dev/null; dpid=
	for i in $(seq 10); do alive "${pid[r$i]}" || fail "r$i ended with vireod"; done
	start_daemon
	list_json
	[ "$(count running)" = 10 ] || fail "after the restart: $list"
	for i in $(seq 10); do
		p=$("$vireo" dominfo r$i | sed -n 's/^PID: *//p')
		[ "$p" = "${pid[r$i]}" ] || fail "r$i has pid '$p' after the restart, was ${pid[r$i]}"
		"$vireo" dumpdef r$i | cmp -s - "$T/r$i.before" || fail "r$i's definition changed"
	done
	grep -c 'adopted' "$T/vireod.log" | grep -qx 10 || fail "not 10 adoptions in the log"
	"$vireo" suspend r5 >/dev/null || fail "suspend of an adopted VM"
	"$vireo" dominfo r5 | grep -q '^State: *paused$' || fail "r5 not paused"
	"$vireo" resume r5 >/dev/null || fail "resume of an adopted VM"
	pids=()
	for i in $(seq 10); do "$vireo" shutdown r$i --timeout 30 >/dev/null & pids+=($!); done
	for p in "${pids[@]}"; do wait $p || fail "a shutdown was refused"; done
	wait_all shutoff 10 60
	for i in $(seq 10); do
		alive "${pid[r$i]}" && fail "r$i's vireo-vmm ${pid[r$i]} still runs"
	done
	# and once more after a second kill -9: every definition is there
	kill -KILL $dpid; wait $dpid 2>/dev/null; dpid=
	start_daemon
	list_json
	[ "$(count shutoff)" = 10 ] || fail "definitions lost: $list"
	echo PASS
	;;
clients50)
	need_kvm
	start_daemon
	"$vireo" events >"$T/events" 2>&1 &
	evpid=$!
	sleep 0.3
	client() {  # one client's whole story; any failure is reported
		local n=c$1 st
		defn $n
		"$vireo" define "$T/$n.json" >/dev/null 2>"$T/$n.err" || { echo "define $n: $(cat "$T/$n.err")"; return 1; }
		"$vireo" start $n >/dev/null 2>"$T/$n.err" || { echo "start $n: $(cat "$T/$n.err")"; return 1; }
		st=$("$vireo" dominfo $n 2>"$T/$n.err" | sed -n 's/^State: *//p')
		[ "$st" = running ] || { echo "$n is '$st' after its start"; return 1; }
		if [ $(($1 % 2)) = 0 ]; then
			"$vireo" destroy $n >/dev/null 2>"$T/$n.err" || { echo "destroy $n: $(cat "$T/$n.err")"; return 1; }
		else
			"$vireo" shutdown $n --timeout 60 >/dev/null 2>"$T/$n.err" ||
				{ echo "shutdown $n: $(cat "$T/$n.err")"; return 1; }
			for _ in $(seq 600); do
				st=$("$vireo" dominfo $n 2>/dev/null | sed -n 's/^State: *//p')
				[ "$st" = "shut off" ] && break
				sleep 0.1
			done
		fi
		st=$("$vireo" dominfo $n 2>/dev/null | sed -n 's/^State: *//p')
		[ "$st" = "shut off" ] || { echo "$n is '$st' after its stop"; return 1; }
	}
	SECONDS=0
	pids=()
	for i in $(seq 50); do client $i >"$T/client$i.out" 2>&1 & pids+=($!); done
	bad=0
	for i in $(seq 50); do
		wait ${pids[$((i - 1))]} || { bad=$((bad + 1)); echo "client $i: $(cat "$T/client$i.out")"; }
	done
	echo "50 clients done in ${SECONDS}s, $bad failed"
	[ $bad = 0 ] || fail "$bad of 50 clients failed"
	list_json
	[ "$(grep -o '"name":"c[0-9]*"' <<<"$list" | sort -u | wc -l)" = 50 ] || fail "not 50 VMs defined: $list"
	[ "$(count shutoff)" = 50 ] || fail "not all 50 shut off: $list"
	ls "$T"/run/*/vmm.pid >/dev/null 2>&1 && fail "pid files left: $(ls "$T"/run/*/vmm.pid)"
	for f in /proc/[0-9]*/cmdline; do
		{ tr '\0' ' ' <"$f"; } 2>/dev/null | grep -q -- "--api-socket $T/run/" &&
			fail "a vireo-vmm is left: $(tr '\0' ' ' <"$f")"
	done
	sleep 0.5
	for i in $(seq 50); do
		grep "\"vm\":\"c$i\"" "$T/events" | grep -q '"event":"started"' || fail "no started event of c$i"
		grep "\"vm\":\"c$i\"" "$T/events" | grep -q '"event":"stopped"' || fail "no stopped event of c$i"
	done
	# and all 50 undefined at once
	pids=()
	for i in $(seq 50); do "$vireo" undefine c$i >/dev/null & pids+=($!); done
	for p in "${pids[@]}"; do wait $p || fail "an undefine failed"; done
	list_json
	[ "$list" = "[]" ] || fail "VMs left after 50 undefines: $list"
	echo PASS
	;;
perms)
	[ "$(id -u)" = 0 ] || { echo "SKIP: not root (setpriv needs it)"; exit 77; }
	command -v setpriv >/dev/null || { echo "SKIP: no setpriv"; exit 77; }
	start_daemon
	[ "$(stat -c %a "$T/sock")" = 660 ] || fail "socket mode $(stat -c %a "$T/sock")"
	group=$(stat -c %G "$T/sock")
	# a uid and gid that are neither root, nor the socket's owner or group
	as_other() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	[ "$(stat -c %g "$T/sock")" != 65534 ] || fail "the socket's group is 65534: cannot test"
	for args in "version" "list --all" "define $T/x.json" "start x" "destroy x" "undefine x"; do
		defn x
		chmod 644 "$T/x.json"
		as_other "$vireo" $args >"$T/o" 2>&1; rc=$?
		echo "vireo $args as 65534 -> $rc: $(cat "$T/o")"
		[ $rc = 3 ] || fail "vireo $args as uid 65534: exit status $rc, expected 3"
		grep -q 'Permission denied' "$T/o" || fail "not refused by the socket's permissions"
	done
	"$vireo" list --all | grep -q ' x ' && fail "a refused client defined a VM"
	# the raw socket: no connection at all (a system python3 nobody can run)
	[ -x /usr/bin/python3 ] && as_other /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    sys.exit(0)
sys.exit("connected")' "$T/sock" || fail "uid 65534 could connect to the socket"
	# the socket's group is let in (vireod's group "vireo" when it exists)
	setpriv --reuid=65534 --regid=$(stat -c %g "$T/sock") --clear-groups "$vireo" version >"$T/o" 2>&1 ||
		fail "a member of the group $group was refused: $(cat "$T/o")"
	"$vireo" version >/dev/null || fail "root was refused"
	echo PASS
	;;
*) echo "scale.sh: unknown mode $mode"; exit 2 ;;
esac
