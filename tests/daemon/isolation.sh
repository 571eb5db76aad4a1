#!/usr/bin/env bash
# Each VM's vireo-vmm unprivileged and in its own cgroup v2 leaf, with
# tiny guests on /dev/kvm.  Needs root (vireod gives VMs their users only
# as root) and /dev/kvm: else skipped (77).
#   isolation.sh user VIREOD VIREO VMM GUEST
#     Two VMs: each vireo-vmm (the monitor vireod knows and the VM's own
#     process) runs with its own uid and gid (BASE + N, not root, no
#     supplementary groups, no capabilities), the same uid after a restart
#     and after a kill -9 of vireod; an undefined VM's uid is reused.  Each
#     process is in the leaf vireo.slice/NAME.UUID of the cgroup2 mount
#     (when there is one).  vireod not root: one log line, no isolation.
#   isolation.sh limits-args VIREOD VIREO VMM GUEST
#     --cgroup-root a plain directory dressed as a cgroup with the cpu and
#     memory controllers: vireo-vmm is given and writes the leaf's
#     cpu.max and memory.max from the definition (any host).
#   The same in the kernel's cgroup v2 (cpu.max and memory.max enforced)
#   is the lab scenario tests/lab/scenarios/vireod-limits.sh.
set -u
mode=$1 vireod=$2 vireo=$3 vmm=$(realpath "$4") guest=$(realpath "$5")
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "not root"
need_kvm
make_tmp iso 755
export VIREO_SOCKET=$T/sock
BASE=1500000000
vireod_args=(--vm-uid-base $BASE)
leaves=()
cleanup_after() {
	sleep 0.2
	for l in "${leaves[@]}"; do rmdir "$l" 2>/dev/null; done
}
# v ARGS...: vireo, which must succeed
v() { vrun "vireo $*" "$vireo" "$@"; [ $rc = 0 ] || fail "vireo $* failed"; }
uuid_of() { "$vireo" dominfo "$1" 2>/dev/null | sed -n 's/^UUID: *//p'; }
defn() {  # defn NAME CPUS MEMORY
	printf '{"name": "%s", "cpus": %s, "memory": "%s", "kernel": "%s", "cmdline": "console=ttyS0"}\n' \
		"$1" "$2" "$3" "$guest" >"$T/$1.json"
	v define "$T/$1.json"
}
field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }
# check_proc PID UID: every id is UID, no groups, no capabilities
check_proc() {
	local ids
	for _ in $(seq 100); do   # the monitor drops once the VM's process has
		ids=$(field $1 Uid)
		[ "$ids" = "$2	$2	$2	$2" ] && break
		sleep 0.1
	done
	[ "$ids" = "$2	$2	$2	$2" ] || fail "pid $1 runs as uids '$ids', expected $2"
	[ "$(field $1 Gid)" = "$2	$2	$2	$2" ] || fail "pid $1 gids '$(field $1 Gid)'"
	[ -z "$(field $1 Groups)" ] || fail "pid $1 keeps the groups '$(field $1 Groups)'"
	[ "$(field $1 CapEff)" = 0000000000000000 ] || fail "pid $1 keeps capabilities"
	[ "$(field $1 CapPrm)" = 0000000000000000 ] || fail "pid $1 keeps permitted capabilities"
}
# vm_procs NAME: the monitor vireod knows and its children
vm_procs() { local p; p=$(pid_of "$1"); echo $p $(pgrep -P $p); }
cg_mount=$(awk '$0 ~ / - cgroup2 / { print $5; exit }' /proc/self/mountinfo)
# check_leaf NAME: each process of the VM in CG_MOUNT/vireo.slice/NAME.UUID
check_leaf() {
	[ -n "$cg_mount" ] || return 0
	local rel=/vireo.slice/$1.$(uuid_of "$1")
	leaves+=("$cg_mount$rel")
	for p in $(vm_procs "$1"); do
		grep -qx "0::$rel" /proc/$p/cgroup || fail "pid $p of $1 is in $(grep ^0:: /proc/$p/cgroup), expected $rel"
		grep -qx "$p" "$cg_mount$rel/cgroup.procs" || fail "pid $p not in $cg_mount$rel/cgroup.procs"
	done
}

if [ "$mode" = limits-args ]; then
	# What vireod asks of vireo-vmm, whatever the host's cgroups: a
	# --cgroup-root that is a plain directory dressed as a cgroup with
	# both controllers; vireo-vmm writes cpu.max, memory.max and
	# cgroup.procs of the leaf, which are plain files here.
	fake=$T/fakecg/vireo
	mkdir -p "$fake"
	echo "cpu memory" >"$fake/cgroup.controllers"
	: >"$fake/cgroup.subtree_control"
	start_daemon --cgroup-root "$fake"
	grep -q "each VM in a cgroup under $fake (cpu.max set, memory.max set)" "$T/vireod.log" ||
		fail "vireod does not take the controllers of $fake"
	grep -q '+memory' "$fake/cgroup.subtree_control" || fail "memory not enabled for the leaves"
	defn lim 3 200M
	leaf=$fake/lim.$(uuid_of lim)
	mkdir "$leaf"
	: >"$leaf/cpu.max"; : >"$leaf/memory.max"; : >"$leaf/cgroup.procs"
	v start lim
	[ "$(cat "$leaf/cpu.max")" = "400000 100000" ] || fail "cpu.max '$(cat "$leaf/cpu.max")', expected 4 CPUs"
	want=$(( (200 + 128 + 200 / 16) * 1048576 ))
	[ "$(cat "$leaf/memory.max")" = "$want" ] || fail "memory.max '$(cat "$leaf/memory.max")', expected $want"
	[ -s "$leaf/cgroup.procs" ] || fail "vireo-vmm did not join $leaf"
	v destroy lim
	echo PASS
	exit 0
fi
# --- not root: vireod says so and adds nothing
mkdir "$T/nr"
chown nobody "$T/nr"
timeout 20 setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
	"$vireod" --foreground --state-dir "$T/nr/state" --run-dir "$T/nr/run" --socket "$T/nr/sock" \
	--vmm "$vmm" >"$T/nr/log" 2>&1 &
nrpid=$!
for _ in $(seq 100); do grep -q 'listening on' "$T/nr/log" && break; sleep 0.1; done
kill -TERM $nrpid 2>/dev/null; wait $nrpid
cat "$T/nr/log"
grep -q 'isolation: vireod is not root: each vireo-vmm runs as vireod.s user' "$T/nr/log" ||
	fail "vireod as nobody does not say that VMs run without isolation"

start_daemon
grep -q "isolation: each VM's vireo-vmm drops to its own uid and gid, $BASE + N" "$T/vireod.log" ||
	fail "no isolation line in the log"
defn iso1 1 64M
defn iso2 2 64M
v start iso1
v start iso2
for p in $(vm_procs iso1); do check_proc $p $BASE; done
for p in $(vm_procs iso2); do check_proc $p $((BASE + 1)); done
[ $(vm_procs iso1 | wc -w) -ge 2 ] || fail "iso1 has no sandboxed child process"
grep -qx "$BASE iso1" "$T/state/vm-uids" && grep -qx "$((BASE + 1)) iso2" "$T/state/vm-uids" ||
	fail "vm-uids: $(cat "$T/state/vm-uids")"
check_leaf iso1
check_leaf iso2

# the same uid after a restart of the VM and of vireod (kill -9)
v destroy iso1
v start iso1
for p in $(vm_procs iso1); do check_proc $p $BASE; done
check_leaf iso1
kill -KILL $dpid; wait $dpid 2>/dev/null; dpid=
start_daemon
v destroy iso2
v start iso2
for p in $(vm_procs iso2); do check_proc $p $((BASE + 1)); done
check_leaf iso2

# an undefined VM's uid goes to the next new VM
v destroy iso1
v undefine iso1
defn iso3 1 64M
v start iso3
for p in $(vm_procs iso3); do check_proc $p $BASE; done
grep -q ' iso1$' "$T/state/vm-uids" && fail "iso1 is still in vm-uids after its undefine"
# a damaged map does not stop a start: it is read again, the bad line dropped
echo "garbage line" >>"$T/state/vm-uids"
v destroy iso2
v start iso2
for p in $(vm_procs iso2); do check_proc $p $((BASE + 1)); done
v destroy iso2
v destroy iso3
# the ended VMs' leaves are gone
if [ -n "$cg_mount" ]; then
	sleep 0.5
	for n in iso2 iso3; do
		leaf=$cg_mount/vireo.slice/$n.$(uuid_of $n)
		[ -d "$leaf" ] && fail "$leaf stays after $n ended"
	done
fi
kill -TERM $dpid; wait $dpid; dpid=
[ -n "$cg_mount" ] || echo "note: no cgroup v2 mount: the leaves were not checked"
echo PASS
