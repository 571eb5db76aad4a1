# VM state with a Linux guest (issue 18): save/restore, live migration, a
# migration whose target dies, snapshot revert, and damaged save files. The
# inner guest (tests/lab/inner/vm-state.sh, 1 vCPU, 256 MiB) counts five
# times a second: each count goes to the console, as a record onto its
# qcow2 virtio disk and as a line over one TCP connection (tap on a bridge
# here, the guest's MAC fixed) that stays open throughout.
#  1. Save with exit, wait 5 s, --restore in a new process: the count goes
#     on from the next number (no reboot, no gap), the guest's wall clock
#     is right (within 3 s of ours), the disk holds every record.
#  2. Live migration of the restored VM over a Unix socket to a target on
#     a second tap on the same bridge: the source exits 0, the target goes
#     on from the next number; both report the downtime.
#  3. A migration to a target killed part-way (bandwidth capped so it
#     takes long): the source keeps running and counting.
#     The TCP connection has carried every count, in order, once, through
#     all of that (checked here, after step 3).
#  4. A snapshot, 25 more counts, power-off; --restore of the snapshot
#     goes on from the count after the snapshot's, and the disk has lost
#     the records written after it.
#  5. A truncated and a corrupted state file: one error line, exit 1,
#     nothing started, the disk not modified.
# Steps 1-5 use vireo-vmm's own data path (vhost=off): a device in the
# host kernel writes guest RAM behind the migration's dirty log, so a VM
# with vhost-net is not migrated. 6. vhost=on: save and restore (vhost-net
# stopped and started on the saved ring indices), the count and the TCP
# connection going on.  7. A VM without a disk migrated to a target that
# builds it while the stream comes in: the count and the TCP connection
# go on.
# Every vireo-vmm is sandboxed (the default as root); migrations go over
# TCP on loopback (a root target's unix: socket is 0600, out of the
# sandboxed source's reach).
# lab-timeout: 900
# Not in CI's lab sample: the guest migrated in step 2 has now and then
# crashed (a triple fault) or stopped in the lab, in steps 2 to 4, for a
# reason not found yet; the failure shows the outer kernel's record and
# whether it is the lab emulator's fault.  Run it with
# tests/lab/run.sh vm-state.
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
[ -c /dev/net/tun ] || lab_fail "no /dev/net/tun in the outer VM (tun module?)"

T=$LAB_TMP
disk=$T/disk.qcow2 mac=52:54:00:5e:a7:01
vireo-img create -q -f qcow2 "$disk" 16M || lab_fail "cannot create $disk"
chmod 0666 "$disk"
chmod 0777 "$T"
br=vstbr
ip link add "$br" type bridge && ip addr add 10.77.9.1/24 dev "$br" && ip link set "$br" up ||
	lab_fail "cannot make the bridge $br"
for t in vst0 vst1; do
	{ tunctl -t $t >/dev/null 2>&1 || ip tuntap add dev $t mode tap; } &&
		ip link set $t master "$br" && ip link set $t up ||
		lab_fail "cannot make the tap $t on $br"
done
# The listener's stdin stays open without data (busybox nc ends the
# connection at an EOF of its stdin).
mkfifo "$T/hold"
exec 5<>"$T/hold"
# st_listen LOG: a new listener for the guest's TCP connection (the one
# before, if any, gone), what it receives into $T/LOG.
listener=
st_listen() {
	[ -n "$listener" ] && { kill $listener 2>/dev/null; wait $listener 2>/dev/null; }
	nc -l -p 5003 <"$T/hold" >"$T/$1" 2>/dev/null &
	listener=$!
}
st_listen tcp.log
pids=
cleanup() {
	for p in $pids $listener; do kill -9 "$p" 2>/dev/null; done
	ip link del vst0 2>/dev/null
	ip link del vst1 2>/dev/null
	ip link del "$br" 2>/dev/null
}
trap cleanup EXIT
cmdline="$LAB_INNER_CMDLINE vireo.notimer vireo.run=vm-state vireo.netip=10.77.9.2 vireo.nethost=10.77.9.1"

# st_vmm OUT ARGS...: vireo-vmm in the background, output to $T/OUT; pid
# in $vpid.
st_vmm() {
	_o=$T/$1
	shift
	vireo-vmm "$@" </dev/null >"$_o" 2>&1 &
	vpid=$!
	pids="$pids $vpid"
}
# st_boot OUT TAP API [ARGS...]: the VM from its kernel ($vhost: on or
# off, default off).
st_boot() {
	_o=$1 _tap=$2 _api=$3
	shift 3
	st_vmm "$_o" --name vmstate --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" \
		--cmdline "$cmdline" --memory 256M --cpus 1 \
		--disk "path=$disk,format=qcow2" --net "tap=$_tap,mac=$mac,vhost=${vhost:-off}" \
		--api-socket "$T/$_api" "$@"
}
# st_listening FILE PID: until vireo-vmm --incoming says it waits.
st_listening() {
	_n=0
	until grep -q 'waiting for a migration' "$1"; do
		kill -0 "$2" 2>/dev/null || { cat "$1"; lab_fail "the migration target ended before it listened"; }
		_n=$((_n + 1))
		[ $_n -gt 300 ] && lab_fail "the migration target did not listen within 30 s"
		sleep 0.1
	done
}
# st_text FILE...: the files' text as one stream, the guest's console lines
# whole again: vireo-vmm's log (stderr, to the same file) may land inside
# a console line ("v" LOG-LINE "m-state: count 65 ..."); the log line is
# taken out and the two halves joined.
st_text() {
	cat "$@" | tr -d '\r' | awk '
		match($0, /vireo-vmm(\[[^]]*\])?: (debug|info|warning|error): /) && RSTART > 1 {
			pre = substr($0, 1, RSTART - 1)
			if ((getline nxt) > 0) { print pre nxt; next }
		}
		{ print }'
}
# st_count FILE: the highest count FILE shows (0 if none).
st_count() {
	st_text "$1" | sed -n 's/^vm-state: count \([0-9]*\) .*/\1/p' | tail -1 | grep . || echo 0
}
# st_continues BEFORE AFTER: the counts of BEFORE's output followed by
# AFTER's (joined as one stream, so a line the pause cut in two is whole
# again) go up by one each, and AFTER has its own: no reset, no gap, no
# count repeated.  Prints the counts at the junction.
st_continues() {
	_gap=$(st_text "$1" "$2" | sed -n 's/.*vm-state: count \([0-9]*\) .*/\1/p' | awk '
		NR > 1 && $1 != p + 1 { print p; exit }
		{ p = $1 }')
	if [ -n "$_gap" ]; then
		# The output from the last good count on, as it came (stderr:
		# the lab's log), to tell a lost line from one a kernel
		# message cut.
		st_text "$1" "$2" | awk -v f="$_gap" '
			/vm-state: count / { n = $0; sub(/.*vm-state: count /, "", n); n += 0 }
			n >= f && k < 12 { print "  around the gap: " $0; k++ }' | cat -v >&2
		st_text "$1" "$2" | sed -n 's/.*vm-state: count \([0-9]*\) .*/\1/p' |
			awk -v f="$_gap" 'p == f { print "count " $1 " came after " f; exit } { p = $1 }'
		return 1
	fi
	[ -n "$(st_first "$2")" ] || { echo "no count in $2"; return 1; }
}
# st_first FILE: the first count FILE shows.
st_first() {
	st_text "$1" | sed -n 's/^vm-state: count \([0-9]*\) .*/\1/p' | head -1
}
# st_wait PID FILE N SECONDS: until FILE shows count N.
st_wait() {
	_n=0
	while [ "$(st_count "$2")" -lt "$3" ]; do
		kill -0 "$1" 2>/dev/null || { tail -n 20 "$2"; st_outer "$2"; lab_fail "vireo-vmm ($2) ended before count $3"; }
		_n=$((_n + 1))
		[ $_n -gt $(($4 * 10)) ] && { st_stuck "$1" "$2"; lab_fail "no count $3 in $2 after $4 s"; }
		sleep 0.1
	done
}
# st_stuck PID OUT: a VM that stopped counting: its threads, what its vCPUs
# do (SIGQUIT: vireo-vmm's state dump, from its event loop) and its output.
st_stuck() {
	# (sandboxed, the VM runs in the monitor's child)
	for _p in "$1" $(pgrep -P "$1" 2>/dev/null); do
		for _t in /proc/"$_p"/task/*; do
			echo "vm-state: process $_p thread $(cat "$_t/comm" 2>/dev/null):" \
				"state $(cut -d' ' -f3 "$_t/stat" 2>/dev/null), in $(cat "$_t/wchan" 2>/dev/null)"
		done
	done
	kill -QUIT "$1" 2>/dev/null
	sleep 3
	tail -n 45 "$2" | tr -d '\r'
	st_outer "$2"
}
# st_outer OUT: with the outer kernel's record on (lab_trace_on, around
# the migration), its last lines, and whether they show the lab
# emulator's own fault (lib.sh: lab_emulator_fault).
st_tracing=
st_outer() {
	[ -n "$st_tracing" ] || return 0
	lab_trace_off "$T/mig.trace"
	tail -n 20 "$T/mig.trace" | sed 's/^/  outer record: /'
	if lab_emulator_fault "$1" "$T/mig.trace" 256; then
		echo "vm-state: the outer record shows the lab emulator's own fault"
	else
		echo "vm-state: the outer record shows no sign of the lab emulator's fault"
	fi
}
# st_api SOCK METHOD PATH [BODY]: $code and $body.
st_api() {
	if [ $# -ge 4 ]; then
		code=$(curl -s -o "$T/resp" -w '%{http_code}' --max-time 120 --unix-socket "$T/$1" \
			-X "$2" -H 'Content-Type: application/json' --data-binary "$4" "http://localhost$3")
	else
		code=$(curl -s -o "$T/resp" -w '%{http_code}' --max-time 120 --unix-socket "$T/$1" \
			-X "$2" "http://localhost$3")
	fi
	body=$(cat "$T/resp" 2>/dev/null)
	echo "vm-state: $2 $3 ${4:-} -> $code $body"
}
# st_exit PID WHAT STATUS SECONDS: PID ends with STATUS within SECONDS.
st_exit() {
	_n=0
	while kill -0 "$1" 2>/dev/null; do
		_n=$((_n + 1))
		[ $_n -gt $(($4 * 10)) ] && lab_fail "$2 still running after $4 s"
		sleep 0.1
	done
	wait "$1"
	_rc=$?
	[ $_rc -eq "$3" ] || lab_fail "$2 ended with status $_rc, want $3"
}
# (busybox awk reads a number with leading zeros as octal: they are cut
# off before a record is compared.)
# st_records N: the disk's first N records are 1..N (the image read with
# its lock ignored, -U, as qemu-img's users do on a running VM's disk).
st_records() {
	rm -f "$T/disk.raw"
	vireo-img convert -U -f qcow2 -O raw "$disk" "$T/disk.raw" || lab_fail "cannot read $disk"
	head -c $((16 * $1)) "$T/disk.raw" | awk -v n="$1" '
		{ v = $0; sub(/^0+/, "", v) }
		v + 0 != NR { bad = NR; exit }
		END { if (bad || NR != n) { print "record " (bad ? bad : NR + 1) " is wrong"; exit 1 } }' || {
		head -c 256 "$T/disk.raw" | od -c | head -n 16
		return 1
	}
}
# st_tcp_ok FILE LAST: FILE holds the counts 1, 2, ... in order, once
# each, up to at least LAST - 5 (the last ones may be on their way).
st_tcp_ok() {
	awk -v last="$2" '
		$0 + 0 != NR { print "tcp: line " NR " is " $0; bad = 1; exit }
		END { if (!bad && NR < last - 5) { print "tcp: only " NR " counts of " last; bad = 1 }
		      exit bad }' "$1"
}
# st_downtime: the downtime_ms of GET /migrate's answer in $body.
st_downtime() {
	echo "$body" | sed -n 's/.*"downtime_ms": *\([0-9.]*\).*/\1/p'
}
# st_tcp_end OUT LOG API PID STEP ACROSS WHAT: the TCP connection (into
# $T/LOG) carried every count OUT shows, once, in order (1 s for the
# last); then the VM (WHAT) powers off.  Sets last.
st_tcp_end() {
	sleep 1
	last=$(st_count "$T/$1")
	st_tcp_ok "$T/$2" "$last" ||
		lab_fail "$5: the TCP connection lost or repeated counts across $6"
	st_api "$3" PUT /vm/poweroff
	st_exit "$4" "$7" 0 60
}
# st_record I: the disk's record I as a number (0 when it holds zeros).
st_record() {
	dd if="$T/disk.raw" bs=16 skip=$(($1 - 1)) count=1 2>/dev/null | tr -d '\0' | awk '{ v = $0; sub(/^0+/, "", v); print v + 0 } END { if (!NR) print 0 }'
}

# 1. Save, wait, restore.
st_boot s1.out vst0 a1.sock
src=$vpid
st_wait $src "$T/s1.out" 10 300
mkdir -p "$T/save1" && chmod 0777 "$T/save1"
st_api a1.sock PUT /vm/save "{\"dir\": \"$T/save1\", \"exit\": true}"
[ "$code" = 204 ] || lab_fail "PUT /vm/save answered $code: $body"
st_exit $src "the saved VM" 0 60
n1=$(st_count "$T/s1.out")
# (count n1's record may not be written yet: it is printed first)
if ! st_records $((n1 - 1)); then
	tr -d '\r' <"$T/s1.out" | tail -n 12
	lab_fail "after the save, the disk does not hold records 1..$((n1 - 1))"
fi
cp -r "$T/save1" "$T/save1.copy"
sleep 5
st_vmm r1.out --restore "$T/save1" --api-socket "$T/a2.sock"
src=$vpid
st_wait $src "$T/r1.out" $((n1 + 10)) 120
f=$(st_first "$T/r1.out")
st_continues "$T/s1.out" "$T/r1.out" >"$T/junction" ||
	lab_fail "after the restore the count did not go on: $(cat "$T/junction")"
grep -q 'vm-state: ready\|VIREO-BOOT-OK' "$T/r1.out" && lab_fail "the restored guest booted again"
gdate=$(tr -d '\r' <"$T/r1.out" | sed -n 's/^vm-state: count .* date \([0-9]*\).*/\1/p' | tail -1)
skew=$(($(date +%s) - gdate))
echo "vm-state: restore: count went on from $f; guest clock $skew s behind ours"
[ $skew -le 3 ] && [ $skew -ge -3 ] ||
	lab_fail "after the restore the guest's clock is $skew s off (more than 3)"
lab_data "restore_clock_skew_s=$skew"

# 2. Live migration to a target on vst1 (the outer kernel's record on
# from here to the end of step 4, where the migrated guest has now and
# then crashed: see st_outer).
lab_trace_on vireo 256 && st_tracing=1
st_boot t1.out vst1 a3.sock --incoming tcp:127.0.0.1:4701
dst=$vpid
st_listening "$T/t1.out" $dst
st_api a2.sock PUT /migrate '{"uri": "tcp:127.0.0.1:4701"}'
[ "$code" = 204 ] || [ "$code" = 202 ] || lab_fail "PUT /migrate answered $code: $body"
st_exit $src "the migration's source" 0 300
grep -q migrated "$T/r1.out" || lab_fail "the source did not say it migrated"
n2=$(st_count "$T/r1.out")
st_wait $dst "$T/t1.out" $((n2 + 10)) 120
f=$(st_first "$T/t1.out")
st_continues "$T/r1.out" "$T/t1.out" >"$T/junction" ||
	lab_fail "after the migration the count did not go on: $(cat "$T/junction")"
grep -q 'vm-state: ready\|VIREO-BOOT-OK' "$T/t1.out" && lab_fail "the migrated guest booted again"
grep -q 'do not match' "$T/t1.out" "$T/r1.out" &&
	lab_fail "RAM and device state apart: $(grep -h 'do not match' "$T/t1.out" "$T/r1.out" | head -1)"
st_api a3.sock GET /migrate
dt=$(st_downtime)
[ -n "$dt" ] || lab_fail "the target's GET /migrate reports no downtime_ms: $body"
echo "vm-state: migration: count went on from $f; downtime $dt ms (target's report)"
lab_data "migration_downtime_ms=$dt"

# 3. A target killed part-way: the source runs on.
src=$dst
st_boot t2.out vst0 a4.sock --incoming tcp:127.0.0.1:4702
dst=$vpid
st_listening "$T/t2.out" $dst
st_api a3.sock PUT /migrate '{"uri": "tcp:127.0.0.1:4702", "bandwidth_mbps": 8}'
[ "$code" = 204 ] || [ "$code" = 202 ] || { st_outer "$T/t1.out"; lab_fail "PUT /migrate (2) answered $code: $body"; }
sleep 3
kill -9 $dst
n=0
while :; do
	st_api a3.sock GET /migrate >/dev/null
	echo "$body" | grep -q '"state": *"failed"' && break
	n=$((n + 1))
	[ $n -gt 60 ] && lab_fail "60 s after its target was killed the migration is not 'failed': $body"
	sleep 1
done
n3=$(st_count "$T/t1.out")
st_wait $src "$T/t1.out" $((n3 + 10)) 60
echo "vm-state: a killed target: the source counts on ($(st_count "$T/t1.out"))"

# The TCP connection: every count once, in order.
sleep 1
last=$(st_count "$T/t1.out")
st_tcp_ok "$T/tcp.log" "$last" || lab_fail "the TCP connection lost or repeated counts across save, restore and migration"
echo "vm-state: the TCP connection carried counts 1..$(wc -l <"$T/tcp.log") in order"

# 4. Snapshot, go on, power off, revert.
# The snapshot of a paused VM (it stays paused): the output up to the
# snapshot is what the console shows then (1 s for the last bytes).
st_api a3.sock PUT /vm/pause
[ "$code" = 204 ] || lab_fail "PUT /vm/pause answered $code: $body"
sleep 1
cp "$T/t1.out" "$T/t1.snap"
st_api a3.sock PUT /vm/snapshot "{\"name\": \"s1\", \"dir\": \"$T/snap1\"}"
[ "$code" = 204 ] || lab_fail "PUT /vm/snapshot answered $code: $body"
st_api a3.sock GET /vm
echo "$body" | grep -q '"state": *"paused"' || lab_fail "the VM does not stay paused after a snapshot: $body"
st_api a3.sock PUT /vm/resume
[ "$code" = 204 ] || lab_fail "PUT /vm/resume answered $code: $body"
s=$(st_count "$T/t1.snap")
st_wait $src "$T/t1.out" $((s + 25)) 60
st_api a3.sock PUT /vm/poweroff
st_exit $src "the VM powered off" 0 60
late=$(st_count "$T/t1.out")
vireo-img snapshot -l "$disk" | grep -q ' s1 ' || lab_fail "vireo-img snapshot -l does not list s1"
st_vmm r2.out --restore "$T/snap1" --api-socket "$T/a5.sock"
src=$vpid
st_wait $src "$T/r2.out" $((s + 1)) 120
st_api a5.sock PUT /vm/poweroff
st_exit $src "the reverted VM powered off" 0 60
f=$(st_first "$T/r2.out")
q=$(st_count "$T/r2.out")
st_continues "$T/t1.snap" "$T/r2.out" >"$T/junction" ||
	lab_fail "after the revert the count did not go on: $(cat "$T/junction")"
[ $((q + 2)) -le "$late" ] || lab_fail "the reverted guest counted to $q before its power-off: too far to check its disk"
st_records $((q - 1)) || lab_fail "after the revert the disk does not hold records 1..$((q - 1))"
for i in $((q + 2)) "$late"; do
	r=$(st_record "$i")
	[ "$r" = 0 ] || lab_fail "after the revert the disk still holds record $i ($r), written after the snapshot"
done
echo "vm-state: snapshot at $s, ran to $late, reverted: count went on from $f, records after $((q + 1)) gone"
[ -n "$st_tracing" ] && lab_trace_off "$T/mig.trace"
st_tracing=

# 5. Damaged state files.
sum=$(md5sum <"$disk")
sz=$(wc -c <"$T/save1.copy/state")
for how in truncated corrupt; do
	rm -rf "$T/bad" && cp -r "$T/save1.copy" "$T/bad"
	if [ $how = truncated ]; then
		head -c $((sz / 2)) "$T/save1.copy/state" >"$T/bad/state"
	else
		printf '\377' | dd of="$T/bad/state" bs=1 seek=$((sz / 2)) conv=notrunc 2>/dev/null
	fi
	vireo-vmm --restore "$T/bad" </dev/null >"$T/bad.log" 2>&1
	rc=$?
	echo "vm-state: $how state file: status $rc: $(grep -m1 'error' "$T/bad.log")"
	[ $rc -eq 1 ] || lab_fail "a $how state file: status $rc, want 1"
	[ "$(grep -c 'error' "$T/bad.log")" -ge 1 ] || lab_fail "a $how state file: no error line"
	grep -q 'vm-state: count' "$T/bad.log" && lab_fail "a $how state file: the guest ran"
	[ "$(md5sum <"$disk")" = "$sum" ] || lab_fail "a $how state file: the disk was modified"
done

# 6. vhost=on: save and restore.  A boot that met the lab emulator's own
# fault (lib.sh: lab_trace_on records the run, lab_emulator_retry tells)
# is run once more, with a new listener; any other end fails.
try=1
while :; do
	st_listen tcp6.log
	lab_trace_on vireo 256
	vhost=on st_boot v1.out vst0 a6.sock --verbose
	src=$vpid
	if (st_wait $src "$T/v1.out" 10 300); then
		lab_trace_off "$T/v1.trace"
		break
	fi
	lab_trace_off "$T/v1.trace"
	kill $src 2>/dev/null
	wait $src 2>/dev/null
	lab_emulator_retry v1 256 $try ||
		lab_fail "vireo-vmm (v1.out) ended before count 10, or was not counting after 300 s"
	try=2
done
grep -q 'data path in vhost-net' "$T/v1.out" || lab_fail "vhost=on: the data path is not in vhost-net"
rm -rf "$T/save6" && mkdir -p "$T/save6" && chmod 0777 "$T/save6"
st_api a6.sock PUT /vm/save "{\"dir\": \"$T/save6\", \"exit\": true}"
[ "$code" = 204 ] || lab_fail "vhost=on: PUT /vm/save answered $code: $body"
st_exit $src "the saved vhost=on VM" 0 60
n6=$(st_count "$T/v1.out")
st_vmm v2.out --restore "$T/save6" --api-socket "$T/a7.sock" --verbose
src=$vpid
st_wait $src "$T/v2.out" $((n6 + 10)) 120
f=$(st_first "$T/v2.out")
st_continues "$T/v1.out" "$T/v2.out" >"$T/junction" ||
	lab_fail "vhost=on: after the restore the count did not go on: $(cat "$T/junction")"
grep -q 'data path in vhost-net' "$T/v2.out" || lab_fail "vhost=on: the restored data path is not in vhost-net"
st_tcp_end v2.out tcp6.log a7.sock $src "vhost=on" "the save and restore" "the restored vhost=on VM"
echo "vm-state: vhost=on: saved at $n6, restored, counted on to $last over the same TCP connection"

# 7. A VM without a disk (vireo.nodisk): live migration to a target that
# builds the VM while the stream comes in (no disk; its net, with the
# MAC, from its command line): the count and a new TCP connection go on.
st_listen tcp7.log
# st_nodisk OUT TAP API [ARGS...]: st_boot's VM without its disk.
st_nodisk() {
	_o=$1 _tap=$2 _api=$3
	shift 3
	st_vmm "$_o" --name vmstate --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" \
		--cmdline "$cmdline vireo.nodisk" --memory 256M --cpus 1 \
		--net "tap=$_tap,mac=$mac,vhost=off" --api-socket "$T/$_api" "$@"
}
st_nodisk n1.out vst0 a8.sock
src=$vpid
st_wait $src "$T/n1.out" 10 300
st_nodisk n2.out vst1 a9.sock --incoming tcp:127.0.0.1:4703 --verbose
dst=$vpid
st_listening "$T/n2.out" $dst
st_api a8.sock PUT /migrate '{"uri": "tcp:127.0.0.1:4703"}'
[ "$code" = 204 ] || [ "$code" = 202 ] || lab_fail "no disk: PUT /migrate answered $code: $body"
st_exit $src "the diskless migration's source" 0 300
n7=$(st_count "$T/n1.out")
st_wait $dst "$T/n2.out" $((n7 + 10)) 120
f=$(st_first "$T/n2.out")
st_continues "$T/n1.out" "$T/n2.out" >"$T/junction" ||
	lab_fail "no disk: after the migration the count did not go on: $(cat "$T/junction")"
grep -q 'the VM is built while the stream comes in' "$T/n2.out" ||
	lab_fail "no disk: the target did not build the VM while the stream came in"
grep -q 'vm-state: ready\|VIREO-BOOT-OK' "$T/n2.out" && lab_fail "no disk: the migrated guest booted again"
st_api a9.sock GET /migrate
dt=$(st_downtime)
st_tcp_end n2.out tcp7.log a9.sock $dst "no disk" "the migration" "the diskless migrated VM"
echo "vm-state: no disk: migrated at $n7 to a target built while the stream came in, counted on from $f to $last over the same TCP connection; downtime $dt ms"
lab_data "migration_nodisk_downtime_ms=$dt"
echo "vm-state: ok"
