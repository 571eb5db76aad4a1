#!/usr/bin/env bash
# vireod and vireo with tiny guests on /dev/kvm: define (and refused
# definitions), start, list/dominfo, suspend/resume, kill -9 of vireod
# while a VM runs and a new vireod that adopts it, ACPI shutdown, destroy,
# undefine (refused while running, --force), restart on failure with a
# new process, a stale pid file naming another process (not adopted, not
# killed), autostart, definitions surviving kill -9 (with --state-sync
# normal, the default, and full; a bad mode refused), a directory pool with a VM
# running on a linked clone (its volume not resized, uploaded, downloaded
# or cloned while it runs), concurrent defines, and the event stream.
# A guest that ignores the power button is ended by shutdown --timeout; a
# missing kernel makes start fail with vireo-vmm's reason; a guest that
# triple-faults is left "crashed".
#   lifecycle.sh VIREOD VIREO VMM GUEST (tests/guest/pwrbtn.elf)
#                HELLO_GUEST (hello.elf) TRIPLE_GUEST (triple.elf)
set -u
vireod=$1 vireo=$2 vmm=$(realpath "$3") guest=$(realpath "$4")
hello=$(realpath "$5") triple=$(realpath "$6")
. "$(dirname "$0")/lib.sh"
make_tmp test
export VIREO_SOCKET=$T/sock
events_file=$T/events
sleeper=
cleanup_before() { [ -n "$sleeper" ] && kill $sleeper 2>/dev/null; }
# wait_state VM STATE [SECONDS]
wait_state() {
	for _ in $(seq $((${3:-30} * 10))); do
		[ "$(state_of "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	fail "$1 is '$(state_of "$1")', expected '$2'"
}
defn() {  # defn NAME [EXTRA_JSON_FIELDS]
	printf '{"name": "%s", "cpus": 1, "memory": "64M", "kernel": "%s", "cmdline": "console=ttyS0"%s}\n' \
		"$1" "$guest" "${2:+, $2}" >"$T/$1.json"
}

start_daemon
[ "$(stat -c %a "$T/sock")" = 660 ] || fail "socket mode $(stat -c %a "$T/sock"), expected 660"

# --- definitions: refused ones name the field; the file limits; exit statuses
defn web1
v define "$T/web1.json"; expect_rc 0; has 'VM web1 defined'
v define "$T/web1.json"; expect_rc 1; has "name: a VM named 'web1' is already defined"
printf '{"name": "bad", "kernel": "%s", "memory": "lots"}' "$guest" >"$T/bad.json"
v define "$T/bad.json"; expect_rc 1; has "memory: 'lots' is not a size"
printf '{"name": "bad", "kernel": "%s", "disks": [{"path": "/x", "format": "vmdk"}]}' "$guest" >"$T/bad.json"
v define "$T/bad.json"; expect_rc 1; has 'disks\[0\]\.format: must be "raw" or "qcow2"'
printf '{"name": "bad", "kernel": ' >"$T/bad.json"
v define "$T/bad.json"; expect_rc 1; has 'invalid JSON'
v define "$T/nonexistent.json"; expect_rc 2; has 'cannot open'
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big.json"
v define "$T/big.json"; expect_rc 2; has 'larger than 65536'
v -c "$T/nosock" list; expect_rc 3; has 'cannot reach vireod'
v frobnicate; expect_rc 2; has "unknown command 'frobnicate'"
v start nosuchvm; expect_rc 1; has "no VM named 'nosuchvm'"
v list; expect_rc 0; grep -q web1 <<<"$out" && fail "list without --all shows a VM that is shut off"
v list --all; expect_rc 0; has 'web1 +shut off'

# --- start, list, dominfo, suspend, resume
v start web1; expect_rc 0; has 'VM web1 started'
v start web1; expect_rc 1; has 'already running'
v list; expect_rc 0; has '^ [0-9]+ +web1 +running$'
pid=$(pid_of web1)
tr '\0' ' ' </proc/$pid/cmdline | grep -q -- "vireo-vmm --name web1 " || fail "pid $pid is not web1's vireo-vmm"
v dominfo web1; expect_rc 0; has '^State: +running$'; has '^CPU\(s\): +1$'; has '^Memory: +64 MiB$'
v dominfo web1 --json; has '"vmm":\{"state":"running"'
v suspend web1; expect_rc 0
v dominfo web1 --json; has '"state":"paused"'; has '"vmm":\{"state":"paused"'
v suspend web1; expect_rc 1; has 'web1 is paused'
v shutdown web1; expect_rc 1; has 'resume it first'
v resume web1; expect_rc 0
v dominfo web1; has '^State: +running$'
v dumpdef web1; expect_rc 0; has '"kernel": "'"$guest"'"'
# edit and autostart: while it runs, only autostart and restart change
EDITOR="sed -i s/64M/96M/" v edit web1; expect_rc 1; has 'web1 is running: shut it down'
has 'your edit is in /tmp/vireo-edit-'
rm -f "$(grep -o '/tmp/vireo-edit-[^ ]*' <<<"$err")"
v autostart web1; expect_rc 0
v dominfo web1; has '^Autostart: +enable$'; has '^Memory: +64 MiB$'
v autostart web1 --disable; expect_rc 0
v dominfo web1; has '^Autostart: +disable$'

# --- kill -9 of vireod: the VM goes on; a new vireod adopts and manages it
kill -KILL $dpid; wait $dpid 2>/dev/null; dpid=
alive $pid || fail "the VM ended with vireod"
start_daemon
v list; expect_rc 0; has "^ $pid +web1 +running$"
v suspend web1; expect_rc 0
v dominfo web1; has '^State: +paused$'
v resume web1; expect_rc 0

# --- ACPI shutdown: the guest powers off (exit status 0)
v shutdown web1; expect_rc 0
wait_state web1 "shut off"
alive $pid && fail "vireo-vmm $pid still runs after the shutdown"
[ -e "$T/run/web1/vmm.pid" ] && fail "the pid file stays after the end"

# --- destroy (our child this time: exit status known)
v start web1; expect_rc 0
pid=$(pid_of web1)
v destroy web1; expect_rc 0
v dominfo web1; has '^State: +shut off$'; has '^Last exit: +143$'
# edit while shut off: validated again, the uuid stays
uuid=$("$vireo" dominfo web1 | sed -n 's/^UUID: *//p')
EDITOR=true v edit web1; expect_rc 0; has 'unchanged'
EDITOR="sed -i s/64M/96M/" v edit web1; expect_rc 0; has 'VM web1 redefined'
v dominfo web1; has '^Memory: +96 MiB$'; has "^UUID: +$uuid\$"
EDITOR="sed -i s/96M/lots/" v edit web1; expect_rc 1; has "memory: 'lots' is not a size"
editfile=$(grep -o '/tmp/vireo-edit-[^ ]*' <<<"$err")
[ -f "$editfile" ] || fail "edit did not keep the rejected edit"
rm -f "$editfile"
EDITOR="sed -i s/web1/web9/" v edit web1; expect_rc 1; has "name: must be 'web1'"
rm -f "$(grep -o '/tmp/vireo-edit-[^ ]*' <<<"$err")"
EDITOR=false v edit web1; expect_rc 1; has 'the editor .* failed'
v dominfo web1; has '^Memory: +96 MiB$'
alive $pid && fail "vireo-vmm $pid still runs after destroy"
v destroy web1; expect_rc 1; has 'not running'
# an ACPI shutdown of our own child: the guest's exit status 0 is seen
v start web1; expect_rc 0
v shutdown web1 --timeout 60; expect_rc 0
wait_state web1 "shut off"
v dominfo web1; has '^Last exit: +0$'
v console web1 --log; expect_rc 0; has '^waiting for the power button$'; has '^power button pressed: powering off'
v console web1 </dev/null; expect_rc 1; has 'web1 has no console'

# --- a guest deaf to the power button: shutdown --timeout ends it (SIGTERM)
printf '{"name": "deaf", "memory": "64M", "kernel": "%s", "cmdline": "console=ttyS0 spin"}\n' \
	"$hello" >"$T/deaf.json"
v define "$T/deaf.json"; expect_rc 0
v start deaf; expect_rc 0
for _ in $(seq 100); do "$vireo" console deaf --log 2>/dev/null | grep -q spinning && break; sleep 0.1; done
v shutdown deaf --timeout 2; expect_rc 0
sleep 1
v dominfo deaf; has '^State: +running$'   # not yet: the timeout is 2 s
wait_state deaf "shut off" 30
v dominfo deaf; has '^Last exit: +143$'
v undefine deaf; expect_rc 0

# --- a kernel that is not there: start fails with vireo-vmm's own reason
printf '{"name": "nokernel", "memory": "64M", "kernel": "%s/no/vmlinuz"}\n' "$T" >"$T/nokernel.json"
v define "$T/nokernel.json"; expect_rc 0
v start nokernel; expect_rc 1
has "nokernel: vireo-vmm ended at start: vireo-vmm\\[nokernel\\]: error: cannot open kernel '$T/no/vmlinuz'"
v undefine nokernel; expect_rc 0
# --- a guest that triple-faults: the VM is "crashed" (exit status 1), and
# with restart "never" it stays so
printf '{"name": "triple", "memory": "64M", "kernel": "%s"}\n' "$triple" >"$T/triple.json"
v define "$T/triple.json"; expect_rc 0
v start triple   # the fault may come before or after start's answer
wait_state triple crashed 10
v dominfo triple; has '^Last exit: +1$'; has '^Restarts: +0$'
v undefine triple; expect_rc 0

# --- undefine: refused while running, --force destroys first
v start web1; expect_rc 0
pid=$(pid_of web1)
v undefine web1; expect_rc 1; has 'web1 is running'
v undefine web1 --force; expect_rc 0
alive $pid && fail "undefine --force left vireo-vmm $pid running"
v dominfo web1; expect_rc 1; has "no VM named 'web1'"
[ -d "$T/run/web1" ] && fail "undefine left the run dir"

# --- restart on failure: kill -9 its vireo-vmm; a new one comes (backoff
# 1 s, then 2 s)
defn crashy '"restart": "on-failure"'
v define "$T/crashy.json"; expect_rc 0
v start crashy; expect_rc 0
pid=$(pid_of crashy)
kill -KILL $pid
for _ in $(seq 300); do
	npid=$(pid_of crashy)
	[ -n "$npid" ] && [ "$npid" != - ] && [ "$npid" != "$pid" ] && [ "$(state_of crashy)" = running ] && break
	sleep 0.1
done
[ -n "$npid" ] && [ "$npid" != - ] && [ "$npid" != "$pid" ] || fail "crashy was not restarted"
v dominfo crashy; has '^Restarts: +1$'
# the second failure in a row waits 2 s (backoff), then restarts
kill -KILL $npid
sleep 1.3
v dominfo crashy; has '^State: +crashed$'
wait_state crashy running 15
v dominfo crashy; has '^Restarts: +2$'
v destroy crashy; expect_rc 0
sleep 1.5
v dominfo crashy; has '^State: +shut off$'   # a destroy is not a failure

# --- a stale pid file naming another process: not adopted, not killed
defn other
v define "$T/other.json"; expect_rc 0
sleep 1000 &
sleeper=$!
mkdir -p "$T/run/other"
echo "$sleeper $(awk '{print $22}' /proc/$sleeper/stat)" >"$T/run/other/vmm.pid"
# --- an autostart VM (started by the next vireod)
defn auto '"autostart": true'
v define "$T/auto.json"; expect_rc 0
# --- and definitions survive kill -9 (crashy, other, auto)
kill -KILL $dpid; wait $dpid 2>/dev/null; dpid=
start_daemon
v list --all; expect_rc 0; has 'crashy +shut off'; has 'other +shut off'
alive $sleeper || fail "vireod killed a process it did not start"
v undefine other; expect_rc 0
# --- --state-sync: a bad mode is refused; with full (a flush per change)
# a definition also survives kill -9 (auto waits for the next vireod)
"$vireod" --state-sync sometimes --state-dir "$T/state2" --socket "$T/sock2" \
	--vmm "$vmm" --foreground >"$T/o" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "state-sync 'sometimes': use normal or full" "$T/o" ||
	fail "--state-sync sometimes: exit status $rc: $(cat "$T/o")"
[ -e "$T/state2" ] && fail "a refused --state-sync made the state directory"
kill -KILL $dpid; wait $dpid 2>/dev/null; dpid=
start_daemon --state-sync full --no-autostart
defn durable
v define "$T/durable.json"; expect_rc 0
kill -KILL $dpid; wait $dpid 2>/dev/null; dpid=
start_daemon
v list --all; expect_rc 0; has 'durable +shut off'; has 'crashy +shut off'
v undefine durable; expect_rc 0
wait_state auto running
v dominfo auto; has '^Autostart: +enable$'
v destroy auto; expect_rc 0

# --- a directory pool; a VM runs on a linked clone made in it
v pool-define-as images dir "$T/images"; expect_rc 0
v pool-define-as again dir "$T/images"; expect_rc 1; has 'already the directory of another pool'
v vol-create-as images base.qcow2 16M; expect_rc 0
v vol-create-as images web2.qcow2 0 --backing-vol base.qcow2; expect_rc 0
v vol-create-as images ../escape.qcow2 1M; expect_rc 2
v vol-list images; expect_rc 0; has 'base.qcow2 +qcow2 +16 MiB'; has 'web2.qcow2 +qcow2 +16 MiB'
defn web2 '"disks": [{"path": "'"$T"'/images/web2.qcow2", "format": "qcow2"}]'
v define "$T/web2.json"; expect_rc 0
v start web2; expect_rc 0
v dominfo web2; has '^State: +running$'
v vol-delete --pool images web2.qcow2; expect_rc 1; has "volume 'web2.qcow2' is a disk of VM 'web2'"
v vol-delete --pool images base.qcow2; expect_rc 1; has "backing file of volume 'web2.qcow2'"
# a running VM's disk: no resize, upload, download or clone
v vol-resize images web2.qcow2 32M; expect_rc 1; has "volume 'web2.qcow2' is a disk of running VM 'web2'"
head -c 4096 /dev/zero >"$T/zeros"
v vol-upload images web2.qcow2 "$T/zeros"; expect_rc 1; has "disk of running VM 'web2'"
v vol-download images web2.qcow2 "$T/web2.raw"; expect_rc 1; has "disk of running VM 'web2'"
v vol-clone images web2.qcow2 web3.qcow2; expect_rc 1; has "disk of running VM 'web2'"
v destroy web2; expect_rc 0
# shut off, it may be resized (grown)
v vol-resize images web2.qcow2 32M; expect_rc 0
v vol-list images; expect_rc 0; has 'web2.qcow2 +qcow2 +32 MiB'
v undefine web2; expect_rc 0
v vol-delete --pool images web2.qcow2; expect_rc 0
v vol-delete --pool images base.qcow2; expect_rc 0
v pool-undefine images; expect_rc 0
v pool-list; expect_rc 0; grep -q images <<<"$out" && fail "pool-undefine left the pool"

# --- concurrent defines of different VMs
for i in 1 2 3 4 5 6 7 8; do defn par$i; done
pids=()
for i in 1 2 3 4 5 6 7 8; do "$vireo" define "$T/par$i.json" >/dev/null 2>&1 & pids+=($!); done
for p in "${pids[@]}"; do wait $p || fail "a concurrent define failed"; done
v list --all --json; expect_rc 0
[ "$(grep -o '"name":"par[0-9]"' <<<"$out" | sort -u | wc -l)" = 8 ] || fail "not all 8 concurrent defines made it"

# --- kill -9 of vireod among concurrent defines: each define that was
# answered is there afterwards, whole
for i in $(seq 20); do defn k$i; done
pids=()
for i in $(seq 20); do
	( "$vireo" define "$T/k$i.json" >/dev/null 2>&1 && echo k$i >>"$T/acked" ) &
	pids+=($!)
	sleep 0.02
	[ $i = 12 ] && kill -KILL $dpid
done
for p in "${pids[@]}"; do wait $p; done
wait $dpid 2>/dev/null; dpid=
start_daemon
v list --all --json; expect_rc 0
n=0
for k in $(cat "$T/acked" 2>/dev/null); do
	grep -q "\"name\":\"$k\"" <<<"$out" || fail "$k was acknowledged but is gone after kill -9"
	n=$((n + 1))
done
for i in $(seq 20); do
	"$vireo" dumpdef k$i >/dev/null 2>&1 || continue
	"$vireo" dumpdef k$i | grep -q '"kernel": "'"$guest"'"' || fail "k$i's definition is not whole"
done
echo "$n of 20 defines acknowledged before the kill, all kept"

# --- start, undefine --force and dominfo of one VM racing: served one at
# a time, vireod stays up, and the VM ends up undefined with no process
defn race
for i in 1 2 3 4 5; do
	"$vireo" define "$T/race.json" >/dev/null 2>&1
	"$vireo" start race >/dev/null 2>&1 & a=$!
	"$vireo" undefine race --force >/dev/null 2>&1 & b=$!
	"$vireo" dominfo race >/dev/null 2>&1 & c=$!
	wait $a $b $c
	"$vireo" undefine race --force >/dev/null 2>&1
	v dominfo race; expect_rc 1; has "no VM named 'race'"
done
[ -d "$T/run/race" ] && fail "a raced undefine left the run dir"
pgrep -f -- "--name race " >/dev/null && fail "a raced VM's vireo-vmm still runs"

# --- the event stream saw the life of the VMs
sleep 0.5
cat "$T/events"
for e in '"vm":"web1","event":"defined"' '"vm":"web1","event":"redefined"' '"vm":"web1","event":"started"' '"vm":"web1","event":"paused"' \
	 '"vm":"web1","event":"resumed"' '"vm":"web1","event":"adopted"' \
	 '"vm":"web1","event":"stopped","detail":"exit status unknown (adopted process)"' \
	 '"vm":"web1","event":"stopped","detail":"exit status 143"' \
	 '"vm":"web1","event":"stopped","detail":"exit status 0"' \
	 '"vm":"web1","event":"undefined"' '"vm":"crashy","event":"crashed"' '"vm":"crashy","event":"restarted"'; do
	grep -qF -- "$e" "$T/events" || fail "no event $e"
done

# --- a clean stop of vireod: exit 0, the socket goes, no sanitizer report
kill -TERM $dpid
wait $dpid
drc=$?
dpid=
[ $drc -eq 0 ] || fail "vireod exit status $drc after SIGTERM"
[ -e "$T/sock" ] && fail "the socket stays after vireod's end"
grep -q "Sanitizer\|runtime error" "$T/vireod.log" && fail "sanitizer report from vireod"
echo "lifecycle: ok"
