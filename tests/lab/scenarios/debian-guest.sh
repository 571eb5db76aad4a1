# The Debian 12 server guest (issue 17, docs/debian-guest.md) under
# vireo-vmm, 1 vCPU and 1 GiB each:
# - two VMs, deb1 and deb2, boot at once from linked clones (qcow2 overlays)
#   of the one base image, each with its own NoCloud seed, user-mode
#   networking and an ssh hostfwd port (2201, 2202 on 127.0.0.1);
# - each reaches multi-user.target with no failed unit, has its seed's
#   host name and 10.0.2.15 by DHCP, and is logged into with the seeded key;
# - scp copies 64 MiB each way with matching checksums;
# - each keeps its own writes (deb2 does not see deb1's file);
# - deb1 reboots from inside (systemctl reboot) under --on-reboot restart:
#   the same vireo-vmm comes back to multi-user with the write kept;
# - PUT /vm/shutdown (the ACPI power button) on both: systemd stops and
#   powers off, each vireo-vmm exits 0, and qemu-img check of each overlay
#   is clean.
# When a check fails, the guests' `journalctl -b -p err` and console tails
# are shown. The files come from the host (tests/lab/debian-prep.sh).
# LAB_DEBIAN_SAMPLE=1 (what CI runs, tests/run-all.sh): the scp round trip
# on deb1 only and no reboot; the whole set otherwise.
# One outer vCPU: with two, the two guests' vCPUs run in nested mode at once
# on the emulator's two CPUs, and its fault (lib.sh, lab_emulator_fault)
# hit a guest in each of two runs; with one, no fault was seen.
# lab-needs: debian
# lab-smp: 1
# lab-timeout: 1800
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
[ -n "${LAB_HOST_TOP:-}" ] || lab_fail "no LAB_HOST_TOP: run through tests/lab/run.sh (lab-needs: debian shares the host's files)"
[ -n "${LAB_HOST:-}" ] || lab_fail "the host's files are not mounted (LAB_HOST is empty)"
img=$LAB_HOST$LAB_HOST_TOP/build/debian
prep=$LAB_HOST$LAB_HOST_TOP/build/lab/debian
for f in "$img/debian-12.qcow2" "$img/vmlinuz" "$img/initrd.img" "$prep/id_ed25519" \
	"$prep/seed-deb1.img" "$prep/seed-deb2.img"; do
	[ -f "$f" ] || lab_fail "no $f (tests/lab/debian-prep.sh makes it)"
done
# The base on this VM's own file system, opened read-only by both VMs.
base=$LAB_TMP/base
mkdir -p "$base"
cp "$img/debian-12.qcow2" "$img/vmlinuz" "$img/initrd.img" "$base/" || lab_fail "cannot copy the base image"
cp "$prep/id_ed25519" "$LAB_TMP/key" && chmod 600 "$LAB_TMP/key" || lab_fail "cannot copy the key"
export HOME=$LAB_TMP
t0=$(cut -d' ' -f1 /proc/uptime)
el() { awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.0f", b - a }'; }
say() { echo "debian-guest: [$(el)s] $*"; }

SSH_OPTS="-i $LAB_TMP/key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=20 -o BatchMode=yes"
port() { case "$1" in deb1) echo 2201 ;; deb2) echo 2202 ;; esac; }
# gssh VM CMD...: run CMD in VM as root.
gssh() {
	_vm=$1; shift
	# shellcheck disable=SC2086
	timeout 120 ssh $SSH_OPTS -p "$(port "$_vm")" root@127.0.0.1 "$@"
}

# The outer kernel records the exits that show the lab emulator's own fault
# (lib.sh: lab_trace_on, lab_emulator_fault); a run that met it is run once
# more from the start (counted as retried), and meeting it again fails.
try=${LAB_DEBIAN_TRY:-1}
lab_trace_on vireo 1024

# Evidence when something fails: each guest's errors (if ssh still works),
# the console tails; then the reason.
fail() {
	for _vm in deb1 deb2; do
		echo "--- $_vm: journalctl -b -p err"
		gssh "$_vm" journalctl -b -p err --no-pager 2>&1 | tail -n 40
	done >"$LAB_TMP/journals" 2>&1
	kill $pids 2>/dev/null
	lab_trace_off "$LAB_TMP/deb.trace"
	cat "$LAB_TMP/deb1.out" "$LAB_TMP/deb2.out" >"$LAB_TMP/deb.all" 2>/dev/null
	if lab_emulator_fault "$LAB_TMP/deb.all" "$LAB_TMP/deb.trace" 1024; then
		[ "$try" -gt 1 ] && lab_fail "lab emulator fault again in the retried run ($*)"
		echo "lab emulator fault (a vCPU of a Debian guest resumed with the outer host's state)" >>"$LAB_TMP/retries"
		echo "debian-guest: lab emulator fault ($*); running the scenario again"
		for _f in deb1 deb2; do cp "$LAB_TMP/$_f.out" "$LAB_TMP/$_f.emulator-fault.out" 2>/dev/null; done
		rm -rf "$LAB_TMP/base" "$LAB_TMP"/*.qcow2 "$LAB_TMP"/*.bin
		LAB_DEBIAN_TRY=2 exec sh "$0"
	fi
	if [ -s "$LAB_TMP/deb.trace" ]; then
		echo "--- the outer kernel's kvm_exit events kept (shutdown, or at its VMRUN resume point):"
		head -n 8 "$LAB_TMP/deb.trace"
	fi
	cat "$LAB_TMP/journals"
	for _vm in deb1 deb2; do
		echo "--- $_vm: console (last lines)"
		tr -d '\r' <"$LAB_TMP/$_vm.out" 2>/dev/null | tail -n 25
	done
	lab_fail "$@"
}

pids=
start_vm() { # NAME
	vireo-img create -f qcow2 -b "$base/debian-12.qcow2" -F qcow2 "$LAB_TMP/$1.qcow2" >/dev/null ||
		lab_fail "cannot make the overlay $1.qcow2"
	cp "$prep/seed-$1.img" "$LAB_TMP/seed-$1.img"
	vireo-vmm --name "$1" --cpus 1 --memory 1G --rng --on-reboot restart \
		--api-socket "$LAB_TMP/$1.api" \
		--kernel "$base/vmlinuz" --initrd "$base/initrd.img" \
		--cmdline "root=/dev/vda rw console=ttyS0 quiet" \
		--disk "path=$LAB_TMP/$1.qcow2,format=qcow2,backing-dir=$base" \
		--disk "path=$LAB_TMP/seed-$1.img,format=raw,readonly=on" \
		--net "user,hostfwd=tcp:127.0.0.1:$(port "$1")-:22" \
		</dev/null >"$LAB_TMP/$1.out" 2>&1 &
	eval "pid_$1=$!"
	pids="$pids $!"
}
# wait_ssh VM SECONDS: until an ssh login works.
wait_ssh() {
	_end=$(($(el) + $2))
	while [ "$(el)" -lt $_end ]; do
		eval "_p=\$pid_$1"
		kill -0 "$_p" 2>/dev/null || fail "$1: vireo-vmm ended before ssh worked"
		gssh "$1" true 2>/dev/null && return 0
		sleep 5
	done
	fail "$1: no ssh login within $2 s"
}

start_vm deb1
start_vm deb2
say "deb1 and deb2 started"
for vm in deb1 deb2; do
	wait_ssh $vm 900
	say "$vm: ssh login works"
done
for vm in deb1 deb2; do
	# 'running' when every unit started; 'degraded' names a failed unit.
	state=$(gssh $vm systemctl is-system-running --wait 2>&1)
	failed=$(gssh $vm systemctl --failed --no-legend --plain 2>&1)
	[ "$state" = running ] && [ -z "$failed" ] ||
		fail "$vm: system state '$state', failed units: ${failed:-none listed}"
	gssh $vm systemctl is-active multi-user.target | grep -qx active || fail "$vm: multi-user.target is not active"
	h=$(gssh $vm hostname)
	[ "$h" = $vm ] || fail "$vm: host name '$h', the seed says $vm"
	a=$(gssh $vm ip -4 -o addr show scope global | awk '{ print $4 }')
	case "$a" in 10.0.2.15/*) ;; *) fail "$vm: address '$a', want 10.0.2.15 by DHCP" ;; esac
	ua=$(gssh $vm systemd-analyze 2>&1 | head -1)
	say "$vm: multi-user, 0 failed units, host name $h, $a; $ua"
	gssh $vm systemd-analyze blame 2>&1 | head -n 6 | sed "s/^/debian-guest: $vm blame: /"
	gssh $vm "echo written-by-$vm >/root/mark && sync" || fail "$vm: cannot write /root/mark"
done
[ "$(gssh deb2 cat /root/mark)" = written-by-deb2 ] || fail "deb2's /root/mark is not its own"

# 64 MiB each way per VM, checksums compared.
head -c 67108864 /dev/urandom >"$LAB_TMP/up.bin"
up=$(sha256sum <"$LAB_TMP/up.bin" | cut -d' ' -f1)
scp_vms="deb1 deb2"
[ "${LAB_DEBIAN_SAMPLE:-0}" = 1 ] && scp_vms=deb1
for vm in $scp_vms; do
	s=$(el)
	# shellcheck disable=SC2086
	timeout 600 scp -q $SSH_OPTS -P "$(port $vm)" "$LAB_TMP/up.bin" root@127.0.0.1:/root/up.bin ||
		fail "$vm: scp to the guest failed"
	g=$(gssh $vm sha256sum /root/up.bin | cut -d' ' -f1)
	[ "$g" = "$up" ] || fail "$vm: the 64 MiB file arrived as $g, sent $up"
	gssh $vm "head -c 67108864 /dev/urandom >/root/down.bin && sha256sum /root/down.bin" >"$LAB_TMP/down.sum" ||
		fail "$vm: cannot make the guest's 64 MiB file"
	mid=$(el)
	# shellcheck disable=SC2086
	timeout 600 scp -q $SSH_OPTS -P "$(port $vm)" root@127.0.0.1:/root/down.bin "$LAB_TMP/down.bin" ||
		fail "$vm: scp from the guest failed"
	[ "$(sha256sum <"$LAB_TMP/down.bin" | cut -d' ' -f1)" = "$(cut -d' ' -f1 "$LAB_TMP/down.sum")" ] ||
		fail "$vm: the guest's 64 MiB file arrived with another checksum"
	rm -f "$LAB_TMP/down.bin"
	gssh $vm rm -f /root/up.bin /root/down.bin
	say "$vm: scp 64 MiB up in $((mid - s)) s, down in $(($(el) - mid)) s, checksums match"
done

# A reboot from inside: the same vireo-vmm process builds the VM again.
if [ "${LAB_DEBIAN_SAMPLE:-0}" != 1 ]; then
	boot1=$(gssh deb1 cat /proc/sys/kernel/random/boot_id) || fail "deb1: no boot id"
	gssh deb1 systemctl reboot 2>/dev/null
	end=$(($(el) + 900))
	while :; do
		kill -0 "$pid_deb1" 2>/dev/null || fail "deb1: vireo-vmm ended on the guest's reboot (--on-reboot restart)"
		[ "$(el)" -lt $end ] || fail "deb1: no ssh login into a new boot within 900 s of the reboot"
		boot2=$(gssh deb1 cat /proc/sys/kernel/random/boot_id 2>/dev/null)
		[ -n "$boot2" ] && [ "$boot2" != "$boot1" ] && break
		sleep 5
	done
	[ "$(gssh deb1 cat /root/mark)" = written-by-deb1 ] || fail "deb1: /root/mark is not there after the reboot"
	state=$(gssh deb1 systemctl is-system-running --wait 2>&1)
	[ "$state" = running ] || fail "deb1 after the reboot: system state '$state'"
	say "deb1: rebooted inside the same vireo-vmm, back to multi-user with its write"
fi

# Graceful shutdown through the control API's power button.
for vm in deb1 deb2; do
	curl -sf --unix-socket "$LAB_TMP/$vm.api" -X PUT http://localhost/vm/shutdown >/dev/null ||
		fail "$vm: PUT /vm/shutdown failed"
	eval "s_$vm=\$(el)"
done
for vm in deb1 deb2; do
	eval "_p=\$pid_$vm; _s=\$s_$vm"
	n=0
	while kill -0 "$_p" 2>/dev/null && [ $n -lt 300 ]; do sleep 1; n=$((n + 1)); done
	kill -0 "$_p" 2>/dev/null && fail "$vm: still running 300 s after PUT /vm/shutdown"
	wait "$_p"
	rc=$?
	[ $rc -eq 0 ] || fail "$vm: vireo-vmm exited $rc after the power button"
	say "$vm: powered off, vireo-vmm exit 0 $(($(el) - _s)) s after PUT /vm/shutdown"
done
# Once both have exited: qemu-img opens an overlay's backing file with
# QEMU's byte-range locks, which a vireo-vmm still using the shared base
# (a whole-file read lock) refuses.
for vm in deb1 deb2; do
	qemu-img check "$LAB_TMP/$vm.qcow2" >"$LAB_TMP/$vm.check" 2>&1 ||
		{ cat "$LAB_TMP/$vm.check"; lab_fail "$vm: qemu-img check of the overlay is not clean"; }
	say "$vm: qemu-img check of the overlay clean"
done
if [ "${LAB_DEBIAN_SAMPLE:-0}" = 1 ]; then
	echo "debian-guest (sample): two linked clones booted to multi-user, ssh, scp 64 MiB both ways on deb1, power button shut both down cleanly"
else
	echo "debian-guest: two linked clones booted to multi-user, ssh and scp 64 MiB both ways, reboot kept the write, power button shut both down cleanly"
fi
