#!/usr/bin/env bash
# vireo migrate --live between two vireods on this host (separate state and
# run dirs and sockets), with a tiny guest on /dev/kvm (hello.elf "echo":
# it echoes its console input upper-cased):
#  - the VM moves from A to B: B lists it running (the same uuid, its
#    vireo-vmm started with --incoming), A lists it shut off, the guest
#    echoes on B without a new boot (B's console log has no boot banner);
#  - the events: A "migrating" and "migrated", B "migrated-in";
#  - back from B to A the same way;
#  - to a vireod that has a VM of that name, or of that uuid: refused, the
#    VM runs on at A (same pid), the other one on the target untouched;
#  - to a vireod that is not there: refused, the VM runs on;
#  - the endpoints refuse hostile bodies (400), an abort of a VM not
#    waiting for a migration (409), progress with none under way (404).
#   migrate.sh VIREOD VIREO VMM HELLO_GUEST
set -u
vireod=$1 vireo=$2 vmm=$(realpath "$3") hello=$(realpath "$4")
. "$(dirname "$0")/lib.sh"
need_kvm
make_tmp migrate 0755
# the vireods A, B and C (each in $T/D), their pids by name
declare -A dpids
show_logs() {
	for d in A B C; do
		[ -f "$T/$d/vireod.log" ] && { echo "--- vireod $d"; cat "$T/$d/vireod.log"; }
		dump "$T/$d"/run/*/vmm.log*
		[ -f "$T/$d/events" ] && { echo "--- events $d"; cat "$T/$d/events"; }
	done
}
# v D ARGS: vireo against vireod D
v() {
	local d=$1
	shift
	vrun "vireo@$d $*" "$vireo" -c "unix:$T/$d/sock" "$@"
}
info() { "$vireo" -c "unix:$T/$1/sock" dominfo "$2" 2>/dev/null | sed -n "s/^$3: *//p"; }
wait_log() {  # wait_log D VM REGEX: in its console log on D
	for _ in $(seq 300); do
		"$vireo" -c "unix:$T/$1/sock" console "$2" --log 2>/dev/null | grep -qE -- "$3" && return 0
		sleep 0.1
	done
	fail "no /$3/ in $2's console log on $1"
}
wait_event() {  # wait_event D TEXT: in D's event stream
	for _ in $(seq 100); do
		grep -qF -- "$2" "$T/$1/events" && return 0
		sleep 0.1
	done
	fail "no event $2 on $1"
}
# type D VM TEXT: keys to the guest's console on D (then Ctrl-])
type_keys() {
	(sleep 0.5; printf '%s' "$3"; sleep 1; printf '\035') |
		"$vireo" -c "unix:$T/$1/sock" console "$2" >"$T/c-$1-$3" 2>&1
}
start_daemon() {  # start_daemon D: vireod D and a follower of its events
	local d=$1
	mkdir -p "$T/$d"
	start_vireod "$T/$d"
	dpids[$d]=$dpid
	dpid=
	"$vireo" -c "unix:$T/$d/sock" events --all >>"$T/$d/events" 2>&1 &
}
# defn D NAME CMDLINE
defn() {
	printf '{"name": "%s", "cpus": 1, "memory": "64M", "kernel": "%s", "cmdline": "console=ttyS0 %s"}\n' \
		"$2" "$hello" "$3" >"$T/$2.json"
	v "$1" define "$T/$2.json"; expect_rc 0
}

start_daemon A
start_daemon B
start_daemon C

defn A mig echo
v A start mig; expect_rc 0
wait_log A mig "^echo ready$"
type_keys A mig one
grep -q "ONE" "$T/c-A-one" || fail "no echo on A"
uuid=$(info A mig UUID)
[ -n "$uuid" ] || fail "no uuid"
pidA=$(info A mig PID)

# --- usage and hostile requests -----------------------------------------------------
v A migrate mig "unix:$T/B/sock"; expect_rc 2; has "give --live"
v A migrate --live mig; expect_rc 2
v A migrate --live 'bad/name' "unix:$T/B/sock"; expect_rc 2
api() {  # api D METHOD PATH [BODY]
	local a=(-s -o "$T/api" -w '%{http_code}' --unix-socket "$T/$1/sock" -X "$2")
	[ -n "${4:-}" ] && a+=(-H 'Content-Type: application/json' --data-raw "$4")
	curl "${a[@]}" "http://localhost$3"
}
if command -v curl >/dev/null; then
	for b in '' 'null' '[]' '{"listen": "127.0.0.1"}' '{"definition": 1}' \
		 '{"definition": {"name": "x"}}' '{"definition": {}, "listen": "::1"}' \
		 '{"definition": {"name": "x", "memory": "64M", "kernel": "/k"}, "zz": 1}'; do
		[ "$(api B POST /migrations/incoming "$b")" = 400 ] || fail "incoming body '$b' not refused: $(cat "$T/api")"
	done
	# no uuid: the VM would not keep its own
	[ "$(api B POST /migrations/incoming '{"definition": {"name": "x", "memory": "64M", "kernel": "/k"}}')" = 400 ] ||
		fail "incoming without a uuid not refused"
	for b in '' '{}' '{"uri": "http://x"}' '{"uri": "tcp:1.2.3.4:5", "downtime_ms": 0}' \
		 '{"uri": "tcp:1.2.3.4:5", "bandwidth_mbps": "x"}' '{"uri": 5}'; do
		[ "$(api A POST /vms/mig/migrate "$b")" = 400 ] || fail "migrate body '$b' not refused: $(cat "$T/api")"
	done
	[ "$(api B DELETE /vms/mig/incoming)" = 404 ] || fail "abort of no VM not 404"
	[ "$(api A GET /vms/mig/migrate)" = 404 ] || fail "progress of no migration not 404"
	[ "$(api A DELETE /vms/mig/incoming)" = 409 ] || fail "abort of a running VM not 409"
	[ "$(info A mig PID)" = "$pidA" ] || fail "the abort touched A's VM"
fi

# --- a target with a VM of that name: refused, the VM runs on at A ---------------------
defn C mig spin
v C start mig; expect_rc 0
pidC=$(info C mig PID)
v A migrate --live mig "unix:$T/C/sock"; expect_rc 1; has "already defined"
[ "$(info A mig State)" = running ] || fail "A's VM does not run after a refused migration"
[ "$(info A mig PID)" = "$pidA" ] || fail "A's VM has another process"
[ "$(info C mig PID)" = "$pidC" ] || fail "C's VM was touched"
[ "$(info C mig UUID)" != "$uuid" ] || fail "C's VM took the uuid"
# a target with a VM of that uuid under another name: refused too
printf '{"name": "twin", "uuid": "%s", "cpus": 1, "memory": "64M", "kernel": "%s"}\n' "$uuid" "$hello" >"$T/twin.json"
v B define "$T/twin.json"; expect_rc 0
v A migrate --live mig "unix:$T/B/sock"; expect_rc 1; has "uuid: $uuid is already the uuid"
[ "$(info A mig PID)" = "$pidA" ] || fail "A's VM has another process"
v B dominfo mig; expect_rc 1
v B undefine twin; expect_rc 0
# a target that is not there
v A migrate --live mig "unix:$T/nothere.sock"; expect_rc 3
[ "$(info A mig PID)" = "$pidA" ] || fail "A's VM has another process"

# --- a migration that fails part-way (cancelled at the source's vireo-vmm,
# DELETE /migrate on its API socket, while a 1 Mbit/s cap keeps it going):
# the target gives its copy up (no process, no definition), the VM runs on
# at A
printf '{"name": "unet", "cpus": 1, "memory": "64M", "kernel": "%s", "cmdline": "console=ttyS0 spin"}\n' \
	"$hello" >"$T/unet.json"
v A define "$T/unet.json"; expect_rc 0
v A start unet; expect_rc 0
pidU=$(info A unet PID)
"$vireo" -c "unix:$T/A/sock" migrate --live unet "unix:$T/B/sock" --bandwidth 1 >"$T/cancel.out" 2>&1 &
cpid=$!
api=$T/A/run/unet/api.sock
for _ in $(seq 200); do
	curl -s --unix-socket "$api" http://localhost/migrate 2>/dev/null | grep -q '"state":"active"' && break
	sleep 0.1
done
curl -s --unix-socket "$api" http://localhost/migrate | grep -q '"state":"active"' ||
	fail "unet's migration never became active"
curl -s -o /dev/null -w '%{http_code}' -X DELETE --unix-socket "$api" http://localhost/migrate | grep -q 204 ||
	fail "DELETE /migrate on unet's vireo-vmm was not accepted"
wait $cpid
rc=$?
cat "$T/cancel.out"
[ $rc = 1 ] || fail "a cancelled migrate --live exited $rc, want 1"
grep -qi "cancel" "$T/cancel.out" || fail "the cancelled migrate --live does not say it was cancelled"
for _ in $(seq 50); do
	"$vireo" -c "unix:$T/B/sock" dominfo unet >/dev/null 2>&1 || break
	sleep 0.1
done
v B dominfo unet; expect_rc 1; has "no VM named 'unet'"
[ -z "$(ls "$T/B/run" 2>/dev/null | grep unet)" ] || fail "B kept unet's run dir"
pgrep -f -- "--name unet .*--incoming" >/dev/null && fail "B's incoming process for unet still runs"
[ "$(info A unet PID)" = "$pidU" ] || fail "unet does not run on at A"
[ "$(info A unet State)" = running ] || fail "unet is not running at A"
wait_event B '"vm":"unet","event":"migrate-failed"'
v A destroy unet; expect_rc 0

# --- A to B ------------------------------------------------------------------------------
v A migrate --live mig "unix:$T/B/sock"; expect_rc 0; has "VM mig migrated to"
[ "$(info A mig State)" = "shut off" ] || fail "A's VM is not shut off"
[ "$(info B mig State)" = running ] || fail "B's VM is not running"
[ "$(info B mig UUID)" = "$uuid" ] || fail "B's VM has another uuid"
pidB=$(info B mig PID)
kill -0 "$pidA" 2>/dev/null && fail "A's vireo-vmm still runs"
tr '\0' ' ' </proc/$pidB/cmdline | grep -q -- "--incoming tcp:127.0.0.1:" || fail "pid $pidB is not an --incoming"
v B list; has "^ *$pidB +mig +running$"
v A list --all; has "mig +shut off"
# the guest goes on: it echoes on B, and did not boot again there
type_keys B mig two
grep -q "TWO" "$T/c-B-two" || fail "the guest does not echo on B"
"$vireo" -c "unix:$T/B/sock" console mig --log | grep -q "hello from the tiny guest" &&
	fail "the guest booted again on B"
wait_event A '"vm":"mig","event":"migrating"'
wait_event A '"vm":"mig","event":"migrated"'
wait_event B '"vm":"mig","event":"migrated-in"'

# --- and back: A has the definition still, shut off: refused -----------------------------
v B migrate --live mig "unix:$T/A/sock"; expect_rc 1; has "already defined"
[ "$(info B mig PID)" = "$pidB" ] || fail "B's VM has another process"
v A undefine mig; expect_rc 0
v B migrate --live mig "unix:$T/A/sock"; expect_rc 0
[ "$(info A mig State)" = running ] || fail "not running on A again"
[ "$(info B mig State)" = "shut off" ] || fail "not shut off on B"
type_keys A mig three
grep -q "THREE" "$T/c-A-three" || fail "the guest does not echo on A again"

for d in A B C; do
	kill -TERM "${dpids[$d]}"
	wait "${dpids[$d]}"
	drc=$?
	[ $drc -eq 0 ] || fail "vireod $d exit status $drc after SIGTERM"
	grep -q "Sanitizer\|runtime error" "$T/$d/vireod.log" && fail "sanitizer report from vireod $d"
done
dpids=()
echo "migrate: ok"
