#!/usr/bin/env bash
# vireod's console and VM-state verbs with tiny guests on /dev/kvm:
#  - console: two readers and a writer (the guest echoes the writer's keys
#    upper-cased to all), a second writer refused, Ctrl-] detaches, a
#    writer killed with -9 and a stopped (SIGSTOP) reader hold up neither
#    the VM nor the others, a reader's keys dropped, 16 clients at most,
#    raw clients vanishing with a reset, the console again
#    after kill -9 of vireod and adoption, the clients told when the VM
#    ends;
#  - reboot (a new process; repeated, it also fills the console log past
#    its 1 MiB cap: console.log.1 is exactly 1 MiB, --log shows the end);
#  - clone --linked (a qcow2 overlay whose backing file is the source's
#    disk, per qemu-img info) and --full (a copy, identical, no backing),
#    the source image untouched, refused while the source runs;
#  - save and restore (the guest goes on where it was, managed again);
#  - snapshot-create-as, -list (text and --json; qemu-img lists it too),
#    -revert (disks and memory back), -delete (refused while running; the
#    qcow2 snapshot and its files go);
#  - the events of each.
#   vmstate.sh VIREOD VIREO VMM HELLO_GUEST (hello.elf) VIREO_IMG
set -u
vireod=$1 vireo=$2 vmm=$(realpath "$3") hello=$(realpath "$4") img=$5
. "$(dirname "$0")/lib.sh"
need_kvm
command -v qemu-img >/dev/null || skip "no qemu-img"
# vireo-vmm runs sandboxed as nobody when this runs as root: its saves and
# snapshots are made as nobody, who must reach them
make_tmp vmstate 0755
mkdir -m 0777 "$T/disks"
export VIREO_SOCKET=$T/sock
# the input of clients that stay: open (never at its end) while this runs
mkfifo "$T/hold"
exec 9<>"$T/hold"
events_file=$T/events
show_logs() { show_daemon_logs; dump -v "$T"/c-*; }
wait_log() {  # wait_log VM REGEX: in its console log
	for _ in $(seq 300); do
		"$vireo" console "$1" --log 2>/dev/null | grep -qE -- "$2" && return 0
		sleep 0.1
	done
	fail "no /$2/ in $1's console log"
}
# defn NAME CMDLINE [EXTRA_JSON]
defn() {
	printf '{"name": "%s", "cpus": 1, "memory": "64M", "kernel": "%s", "cmdline": "console=ttyS0 %s"%s}\n' \
		"$1" "$hello" "$2" "${3:+, $3}" >"$T/$1.json"
	v define "$T/$1.json"; expect_rc 0
}
# reader NAME FILE: a read-only client in the background (its input stays open)
reader() {
	"$vireo" console "$1" --readonly <"$T/hold" >"$T/c-$2" 2>"$T/c-$2.err" &
	bg+=($!)
	wait_file "$T/c-$2.err" "Connected to $1, read-only"
}

start_daemon

# --- console: readers and a writer --------------------------------------------
defn echo "echo"
v start echo; expect_rc 0
wait_log echo "^echo ready$"
reader echo r1
reader echo r2
# a writer that stays (its input open), then one refused
"$vireo" console echo <"$T/hold" >"$T/c-w1" 2>"$T/c-w1.err" &
w1=$!; bg+=($w1)
wait_file "$T/c-w1.err" "Connected to echo \(Ctrl"
v console echo </dev/null; expect_rc 1; has "echo's console has a writer already"
# a reader's keys go nowhere
(printf 'zzz'; sleep 0.5; printf '\035') | "$vireo" console echo --readonly >"$T/c-ro" 2>&1
grep -q "Detached" "$T/c-ro" || fail "Ctrl-] did not detach the reader"
# the writer vanishes (kill -9): the slot is free again
kill -KILL $w1
sleep 0.3
# a stalled reader (SIGSTOP) does not hold up the others
kill -STOP "${bg[1]}"
(sleep 0.5; printf 'abc'; sleep 1; printf '\035'; sleep 2) | "$vireo" console echo >"$T/c-w2" 2>"$T/c-w2.err"
grep -q "ABC" "$T/c-w2" || fail "the writer did not get the echo"
grep -q "Detached" "$T/c-w2.err" || fail "Ctrl-] did not detach the writer"
wait_file "$T/c-r1" "ABC" 5
grep -q "ZZZ" "$T/c-r1" && fail "a reader's keys reached the guest"
kill -CONT "${bg[1]}"
wait_file "$T/c-r2" "ABC" 5
v console echo --log; has "ABC"
# kill -9 of vireod: the console comes back with the adopting vireod
pid=$(pid_of echo)
kill -KILL $dpid; wait $dpid 2>/dev/null; dpid=
start_daemon
v list; has "^ $pid +echo +running$"
(sleep 0.5; printf 'def'; sleep 1; printf '\035') | "$vireo" console echo >"$T/c-w3" 2>&1
grep -q "DEF" "$T/c-w3" || fail "no console after adoption"
reader echo r3
# hostile clients: 15 raw upgrades (readers; input with them; with r3, 16), the 17th
# refused; a request without the Upgrade headers refused; then all of
# them vanish (reset): the console works on
python3 - "$T/sock" >"$T/c-raw" 2>&1 <<'PY' || fail "raw console clients: $(cat "$T/c-raw")"
import socket, struct, sys
def upgrade(extra=b"", upgrade=True):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sys.argv[1])
    hdr = b"Connection: Upgrade\r\nUpgrade: vireo-console\r\n" if upgrade else b""
    s.sendall(b"POST /vms/echo/console?readonly=true HTTP/1.1\r\nHost: x\r\n" + hdr +
              b"Content-Length: 0\r\n\r\n" + extra)
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        if not d:
            break
        head += d
    return s, head.split(b"\r\n")[0]
socks = []
for i in range(15):   # r3 is the 16th
    s, status = upgrade(b"garbage" * 1000)
    assert status.startswith(b"HTTP/1.1 101"), (i, status)
    socks.append(s)
s, status = upgrade()
assert status.startswith(b"HTTP/1.1 409"), status
s.close()
s, status = upgrade(upgrade=False)
assert status.startswith(b"HTTP/1.1 400"), status
s.close()
for s in socks:   # gone with a reset, unread output pending
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
print("raw clients ok")
PY
(sleep 0.5; printf 'ghi'; sleep 1; printf '\035') | "$vireo" console echo >"$T/c-w4" 2>&1
grep -q "GHI" "$T/c-w4" || fail "no console after the raw clients went"
grep -q "GARBAGE" "$T/c-w4" && fail "a reader's bytes reached the guest"
v destroy echo; expect_rc 0
wait_file "$T/c-r3.err" "Console closed by vireod" 10
grep -q "the VM's process ended" "$T/c-r3" || fail "the reader was not told the VM ended"
v console echo </dev/null; expect_rc 1; has "echo has no console"

# --- reboot, and the console log's cap -----------------------------------------
defn spew "spew"
v reboot spew; expect_rc 1; has "spew is not running"
v start spew; expect_rc 0
wait_log spew "^spew done$"
for i in $(seq 17); do
	pid=$(pid_of spew)
	v reboot spew; expect_rc 0; has "VM spew rebooted"
	[ "$(pid_of spew)" != "$pid" ] || fail "reboot kept pid $pid"
	[ "$(state_of spew)" = running ] || fail "not running after reboot"
	# its output is in the log before the next reboot
	for _ in $(seq 100); do
		n=$(cat "$T/run/spew/console.log.1" "$T/run/spew/console.log" 2>/dev/null | grep -c "^spew done$")
		[ "$n" -ge $((i + 1)) ] && break
		sleep 0.1
	done
	[ "$n" -ge $((i + 1)) ] || fail "boot $((i + 1)) of spew is not in its log"
done
[ -f "$T/run/spew/console.log.1" ] || fail "the console log was not rotated"
s1=$(stat -c %s "$T/run/spew/console.log.1") s0=$(stat -c %s "$T/run/spew/console.log")
[ "$s1" -eq 1048576 ] || fail "console.log.1 is $s1 bytes, not 1 MiB"
[ "$s0" -lt 1048576 ] || fail "console.log is $s0 bytes"
wait_log spew "^spew done$"
v console spew --log; expect_rc 0
[ ${#out} -ge 60000 ] && [ ${#out} -le 65536 ] || fail "--log printed ${#out} bytes"
v destroy spew; expect_rc 0

# --- clone ------------------------------------------------------------------------
"$img" create -q -f qcow2 "$T/disks/src.qcow2" 8M || fail "vireo-img create"
qemu-io -f qcow2 -c "write -P 0x5a 0 2M" "$T/disks/src.qcow2" >/dev/null || fail "qemu-io"
truncate -s 1M "$T/disks/ro.img"
defn src "echo" "\"disks\": [{\"path\": \"$T/disks/src.qcow2\", \"format\": \"qcow2\"}, {\"path\": \"$T/disks/ro.img\", \"format\": \"raw\", \"readonly\": true}]"
sum=$(md5sum <"$T/disks/src.qcow2")
v start src; expect_rc 0
v clone src c1; expect_rc 1; has "src is running: shut it down before cloning"
v destroy src; expect_rc 0
sum=$(md5sum <"$T/disks/src.qcow2")
v clone src c1; expect_rc 0; has "VM c1 cloned from src \(linked"
v clone src c1; expect_rc 1; has "a VM named 'c1' is already defined"
qemu-img info "$T/disks/c1-disk0.qcow2" >"$T/info" || fail "qemu-img info"
grep -q "^backing file: $T/disks/src.qcow2" "$T/info" || fail "the linked clone has no backing file: $(cat "$T/info")"
v dumpdef c1; has "\"path\": \"$T/disks/c1-disk0.qcow2\""; has "\"path\": \"$T/disks/ro.img\""
grep -q "$("$vireo" dominfo src | sed -n 's/^UUID: *//p')" <<<"$out" && fail "the clone has the source's uuid"
v clone src c2 --full; expect_rc 0; has "VM c2 cloned from src \(full"
qemu-img info "$T/disks/c2-disk0.qcow2" | grep -q "^backing file" && fail "the full clone has a backing file"
qemu-img compare "$T/disks/src.qcow2" "$T/disks/c2-disk0.qcow2" || fail "the full clone differs"
qemu-img check "$T/disks/c2-disk0.qcow2" >/dev/null || fail "qemu-img check of the full clone"
[ "$(md5sum <"$T/disks/src.qcow2")" = "$sum" ] || fail "cloning changed the source image"
v clone src bad/name; expect_rc 2
v start c1; expect_rc 0
wait_log c1 "^echo ready$"
v destroy c1; expect_rc 0

# --- save and restore ----------------------------------------------------------
v save echo "$T/save1"; expect_rc 1; has "echo is not running"
v start echo; expect_rc 0
wait_log echo "^echo ready$"
(sleep 0.5; printf 'one'; sleep 1; printf '\035') | "$vireo" console echo >"$T/c-s1" 2>&1
grep -q "ONE" "$T/c-s1" || fail "no echo before the save"
v save echo "$T/save1"; expect_rc 0; has "VM echo saved to $T/save1"
[ -f "$T/save1/state" ] && [ -f "$T/save1/memory" ] && [ -f "$T/save1/vireod.json" ] || fail "the save is not whole"
[ "$(state_of echo)" = "shut off" ] || fail "the VM runs after its save"
v restore "$T/nothing"; expect_rc 1
v restore "$T/save1"; expect_rc 0; has "VM echo restored from"
v restore "$T/save1"; expect_rc 1; has "echo is running"
[ "$(state_of echo)" = running ] || fail "not running after restore"
pid=$(pid_of echo)
tr '\0' ' ' </proc/$pid/cmdline | grep -q -- "--restore $T/save1" || fail "pid $pid is not the restore"
# it goes on where it was: still echoing, the boot not seen again
(sleep 0.5; printf 'two'; sleep 1; printf '\035') | "$vireo" console echo >"$T/c-s2" 2>&1
grep -q "TWO" "$T/c-s2" || fail "the restored guest does not echo"
[ "$("$vireo" console echo --log | grep -c '^hello from the tiny guest')" -ge 1 ] || fail "no boot in the log"
v suspend echo; expect_rc 0
v resume echo; expect_rc 0
v destroy echo; expect_rc 0

# --- snapshots ----------------------------------------------------------------------
v snapshot-create-as src snapA; expect_rc 1; has "src is not running"
v start src; expect_rc 0
wait_log src "^echo ready$"
(sleep 0.5; printf 'before'; sleep 1; printf '\035') | "$vireo" console src >/dev/null 2>&1
v snapshot-create-as src snapA; expect_rc 0; has "Snapshot snapA of VM src created"
v snapshot-create-as src snapA; expect_rc 1; has "already has a snapshot named snapA"
v snapshot-create-as src 9bad; expect_rc 2
v snapshot-list src; expect_rc 0; has "snapA .* disks and memory"
v snapshot-list src --json; expect_rc 0; has '"name":"snapA"'; has '"has_state":true'
"$img" snapshot -U -l "$T/disks/src.qcow2" | grep -q snapA || fail "vireo-img does not list snapA"
(sleep 0.5; printf 'after'; sleep 1; printf '\035') | "$vireo" console src >/dev/null 2>&1
pid=$(pid_of src)
v snapshot-revert src snapA; expect_rc 0; has "VM src reverted to snapshot snapA"
[ "$(pid_of src)" != "$pid" ] || fail "revert kept the process"
[ "$(state_of src)" = running ] || fail "not running after the revert"
(sleep 0.5; printf 'back'; sleep 1; printf '\035') | "$vireo" console src >"$T/c-sn" 2>&1
grep -q "BACK" "$T/c-sn" || fail "the reverted guest does not echo"
v snapshot-revert src nosuch; expect_rc 1; has "src has no snapshot nosuch"
v snapshot-delete src snapA; expect_rc 1; has "src is running"
v destroy src; expect_rc 0
qemu-img snapshot -l "$T/disks/src.qcow2" | grep -q snapA || fail "qemu-img does not list snapA"
v snapshot-delete src snapA; expect_rc 0; has "Snapshot snapA of VM src deleted"
qemu-img snapshot -l "$T/disks/src.qcow2" | grep -q snapA && fail "qemu-img still lists snapA"
[ -e "$T/disks/src.qcow2.snap-snapA" ] && fail "the snapshot's files stay"
v snapshot-delete src snapA; expect_rc 1; has "src has no snapshot snapA"
qemu-img check "$T/disks/src.qcow2" >/dev/null || fail "qemu-img check after the snapshots"

# --- events -----------------------------------------------------------------------
sleep 0.5
for e in '"vm":"spew","event":"rebooted"' '"vm":"echo","event":"saved"' '"vm":"echo","event":"restored"' \
	 '"vm":"src","event":"cloned","detail":"linked c1' '"vm":"src","event":"cloned","detail":"full c2' \
	 '"vm":"src","event":"snapshot","detail":"created snapA"' \
	 '"vm":"src","event":"snapshot","detail":"reverted to snapA"' \
	 '"vm":"src","event":"snapshot","detail":"deleted snapA"'; do
	grep -qF -- "$e" "$T/events" || fail "no event $e"
done

kill -TERM $dpid
wait $dpid
drc=$?
dpid=
[ $drc -eq 0 ] || fail "vireod exit status $drc after SIGTERM"
grep -q "Sanitizer\|runtime error" "$T/vireod.log" && fail "sanitizer report from vireod"
echo "vmstate: ok"
