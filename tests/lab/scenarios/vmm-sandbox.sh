# vireo-vmm under --sandbox (as root, here explicit) boots the fixture with
# two disks, a virtio console and virtio-rng, COM1 to a console file, in a
# cgroup v2 leaf with limits, and reaches the marker. Checked from outside
# while the guest idles: the VM's process (the monitor's child) runs as
# 65534:65534 with no capability in any set, no_new_privs and a seccomp
# filter, in mount, PID, network, IPC and UTS namespaces other than ours,
# in the cgroup; the monitor (the PID we started) has dropped the same
# way. SIGTERM to the monitor reaches the VM: status 143.
# lab-timeout: 200
# lab-sample: yes
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
img=$LAB_TMP/disk.img ro=$LAB_TMP/ro.img con=$LAB_TMP/console.log err=$LAB_TMP/vmm.err
head -c 8388608 /dev/zero >"$img" || lab_fail "cannot create $img"
head -c 4194304 /dev/zero >"$ro" || lab_fail "cannot create $ro"
# A cgroup v2 hierarchy of our own (none is mounted by default).
cg=
cgm=$LAB_TMP/cgroup
mkdir -p "$cgm"
if mount -t cgroup2 none "$cgm" 2>/dev/null; then
	echo "+cpu +memory" >"$cgm/cgroup.subtree_control" 2>/dev/null
	mkdir -p "$cgm/vireo"
	echo "+cpu +memory" >"$cgm/vireo/cgroup.subtree_control" 2>/dev/null
	cg=$cgm/vireo/vm1
else
	echo "LAB-WARN $LAB_NAME: cannot mount cgroup2: not checking --cgroup"
fi
cgargs=
[ -n "$cg" ] && cgargs="--cgroup $cg --cpu-max 90000:100000 --memory-max 1G"
# shellcheck disable=SC2086
vireo-vmm --sandbox --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" \
	--cmdline "$LAB_INNER_CMDLINE vireo.run=idle vireo.idle=120" --memory 256M --boot-timer \
	--console "file:$con" --disk "path=$img,id=data" --disk "path=$ro,readonly=on,id=ro" \
	--virtio-console --rng $cgargs </dev/null >"$err" 2>&1 &
pid=$!
stop() {
	kill -9 $pid 2>/dev/null
	echo "--- console:"; tr -d '\r' <"$con" | tail -15
	echo "--- stderr:"; tail -15 "$err"
	[ -n "$cg" ] && umount "$cgm" 2>/dev/null
	lab_fail "$@"
}
i=0
until grep -q 'idle: ready' "$con" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 1500 ] || stop "no 'idle: ready' from the guest after 150 s"
	kill -0 $pid 2>/dev/null || stop "vireo-vmm exited before the guest was up"
	sleep 0.1
done
grep -q VIREO-BOOT-OK "$con" || stop "no VIREO-BOOT-OK in the console file"
grep -Eq 'boot-timer: [0-9]+ ms since start' "$err" || stop "no boot-timer line on stderr"
child=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null | awk '{print $1}')
if [ -z "$child" ]; then
	for s in /proc/[0-9]*/stat; do
		[ "$(awk '{print $4}' "$s" 2>/dev/null)" = "$pid" ] && child=${s#/proc/} && child=${child%/stat}
	done
fi
[ -n "$child" ] || stop "no child process of the monitor $pid"
field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s ' \t' ' '; }
for p in $child $pid; do
	what="the VM's process $child"
	[ "$p" = "$pid" ] && what="the monitor $pid"
	[ "$(field "$p" Uid)" = "65534 65534 65534 65534" ] || stop "$what: Uid: $(field "$p" Uid)"
	[ "$(field "$p" Gid)" = "65534 65534 65534 65534" ] || stop "$what: Gid: $(field "$p" Gid)"
	g=$(field "$p" Groups); [ -z "$g" ] || stop "$what: supplementary groups: $g"
	for c in CapInh CapPrm CapEff CapBnd CapAmb; do
		[ "$(field "$p" $c)" = 0000000000000000 ] || stop "$what: $c: $(field "$p" $c)"
	done
	[ "$(field "$p" NoNewPrivs)" = 1 ] || stop "$what: NoNewPrivs: $(field "$p" NoNewPrivs)"
	[ "$(field "$p" Seccomp)" = 2 ] || stop "$what: Seccomp: $(field "$p" Seccomp) (want 2, filter)"
	echo "vmm-sandbox: $what: uid/gid 65534, no capabilities, no_new_privs, seccomp filter"
done
# Every thread of the VM's process is filtered too.
for t in /proc/$child/task/*; do
	[ "$(sed -n 's/^Seccomp:[[:space:]]*//p' "$t/status")" = 2 ] ||
		stop "thread $(cat "$t/comm") ($t) has no seccomp filter"
done
echo "vmm-sandbox: threads, all filtered: $(cat /proc/$child/task/*/comm | sort | uniq -c | tr -s ' \n' ' ')"
for ns in mnt pid net ipc uts; do
	a=$(readlink "/proc/$child/ns/$ns") b=$(readlink "/proc/self/ns/$ns")
	[ -n "$a" ] && [ "$a" != "$b" ] || stop "the VM's process shares our $ns namespace ($a)"
done
echo "vmm-sandbox: namespaces mnt pid net ipc uts differ from ours"
nspid=$(field "$child" NSpid)
[ "${nspid##* }" = 1 ] || stop "the VM's process is not PID 1 of its namespace (NSpid: $nspid)"
if [ -n "$cg" ]; then
	grep -qx '0::/vireo/vm1' "/proc/$child/cgroup" || stop "not in the cgroup: $(cat "/proc/$child/cgroup")"
	[ "$(cat "$cg/cpu.max")" = "90000 100000" ] || stop "cpu.max: $(cat "$cg/cpu.max")"
	[ "$(cat "$cg/memory.max")" = 1073741824 ] || stop "memory.max: $(cat "$cg/memory.max")"
	echo "vmm-sandbox: in cgroup /vireo/vm1 (cpu.max $(cat "$cg/cpu.max"), memory.max $(cat "$cg/memory.max"))"
fi
kill -TERM $pid
wait $pid
rc=$?
[ -n "$cg" ] && { rmdir "$cg" "$cgm/vireo" 2>/dev/null; umount "$cgm" 2>/dev/null; }
[ $rc -eq 143 ] || lab_fail "vireo-vmm exited $rc after SIGTERM (want 143); $(tail -3 "$err" | tr '\n' ' ')"
grep -q 'error' "$err" && lab_fail "an error on stderr: $(grep -m1 error "$err")"
echo "vmm-sandbox: ok"
