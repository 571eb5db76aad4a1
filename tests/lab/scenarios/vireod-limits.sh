# vireod's per-VM cgroup leaf with the kernel's cpu and memory controllers
# (issue 19): hosts with a hybrid cgroup v1 set-up (the CI machines) have
# neither in cgroup v2, so this runs here, on a cgroup2 hierarchy of our
# own. vireod (--cgroup-root there) starts a VM with 2 vCPUs and 96 MiB:
# both vireo-vmm processes (the sandbox monitor and the VM) are in the
# leaf vireo/NAME.UUID, whose cpu.max is 3 CPUs and memory.max 96 MiB +
# 128 MiB + 96/16 MiB; the kernel enforces them (memory.max reads back,
# memory.current is within it). The VM reaches the guest's marker and
# destroy removes the empty leaf.
# lab-timeout: 300
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
T=$LAB_TMP
cgm=$T/cgroup
mkdir -p "$cgm"
mount -t cgroup2 none "$cgm" || lab_fail "cannot mount cgroup2 at $cgm"
grep -qw cpu "$cgm/cgroup.controllers" && grep -qw memory "$cgm/cgroup.controllers" ||
	lab_fail "the outer VM's cgroup2 lacks cpu or memory: '$(cat "$cgm/cgroup.controllers")'"
echo "+cpu +memory" >"$cgm/cgroup.subtree_control" || lab_fail "cannot enable cpu and memory"
mkdir -p "$cgm/vireo"
chmod 0755 "$T"
lab_vireod --cgroup-root "$cgm/vireo"
trap 'kill $LAB_VIREOD_PID 2>/dev/null; sleep 0.5; umount -l "$cgm" 2>/dev/null' EXIT
grep -q "cpu.max set, memory.max set" "$T/vireod.out" ||
	{ cat "$T/vireod.out"; lab_fail "vireod does not take the cpu and memory controllers of $cgm/vireo"; }
printf '{"name": "lim", "cpus": 2, "memory": "96M", "kernel": "%s", "initrd": "%s", "cmdline": "%s"}\n' \
	"$LAB_INNER_KERNEL" "$LAB_INNER_INITRD" "$LAB_INNER_CMDLINE vireo.notimer" >"$T/lim.json"
vireo define "$T/lim.json" || lab_fail "vireo define failed"
vireo start lim || { cat "$T/vireod.out"; lab_fail "vireo start failed"; }
uuid=$(vireo dominfo lim | sed -n 's/^UUID: *//p')
pid=$(vireo dominfo lim | sed -n 's/^PID: *//p')
leaf=$cgm/vireo/lim.$uuid
[ -d "$leaf" ] || lab_fail "no leaf $leaf"
n=0
until grep -q VIREO-BOOT-OK "$T/run/lim/console.log" 2>/dev/null; do
	n=$((n + 1))
	[ $n -gt 1200 ] && { tail -n 20 "$T/run/lim/vmm.log"; lab_fail "the VM did not reach its marker within 120 s"; }
	sleep 0.1
done
procs="$pid $(cat /proc/"$pid"/task/*/children 2>/dev/null)"
[ "$(echo $procs | wc -w)" -ge 2 ] || lab_fail "vireo-vmm $pid has no sandboxed child"
for p in $procs; do
	grep -qx "$p" "$leaf/cgroup.procs" || lab_fail "pid $p is not in $leaf (cgroup.procs: $(tr '\n' ' ' <"$leaf/cgroup.procs"))"
done
[ "$(cat "$leaf/cpu.max")" = "300000 100000" ] || lab_fail "cpu.max is '$(cat "$leaf/cpu.max")', want 3 CPUs"
want=$(((96 + 128 + 96 / 16) * 1048576))
[ "$(cat "$leaf/memory.max")" = "$want" ] || lab_fail "memory.max is '$(cat "$leaf/memory.max")', want $want"
cur=$(cat "$leaf/memory.current")
[ "$cur" -gt 0 ] && [ "$cur" -le "$want" ] || lab_fail "memory.current $cur is not within (0, $want]"
echo "vireod-limits: pids $procs in $leaf: cpu.max $(cat "$leaf/cpu.max"), memory.max $want, memory.current $cur"
vireo destroy lim || lab_fail "vireo destroy failed"
n=0
while [ -d "$leaf" ]; do
	n=$((n + 1))
	[ $n -gt 100 ] && lab_fail "the leaf $leaf is still there 10 s after destroy"
	sleep 0.1
done
echo "vireod-limits: ok"
