# vireod with a Linux guest (issue 19): a directory pool with a qcow2 base
# volume and a linked clone of it, a NAT network (bridge, nftables,
# dnsmasq), and a VM (the inner fixture, 1 vCPU) defined with the clone as
# its disk and a NIC on the network. The guest (tests/lab/inner/dhcp.sh)
# gets an address in the network's DHCP range from dnsmasq and pings the
# bridge (this host). Then: vireo reboot (it boots again and gets an
# address again), vireo shutdown (the ACPI power button: the guest powers
# off, the VM is shut off), vireo clone --linked into a second VM, both
# started at once: each gets its own address (different MACs) and reaches
# this host. Everything is taken down at the end: no bridge left.
# lab-timeout: 900
# lab-sample: yes
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
T=$LAB_TMP
chmod 0711 "$T"
lab_vireod
trap 'vireo destroy web1 >/dev/null 2>&1; vireo destroy web2 >/dev/null 2>&1; vireo destroy web3 >/dev/null 2>&1; vireo net-destroy lan --force >/dev/null 2>&1; kill $LAB_VIREOD_PID 2>/dev/null' EXIT
# v ARGS...: vireo, which must succeed.
v() {
	vireo "$@" >"$T/v.out" 2>&1 || { cat "$T/v.out"; tail -n 20 "$T/vireod.out"; lab_fail "vireo $* failed"; }
	cat "$T/v.out"
}
# console_wait NAME PATTERN COUNT SECONDS: NAME's console log has COUNT
# lines matching PATTERN.
console_wait() {
	_n=0
	while [ "$(tr -d '\r' <"$T/run/$1/console.log" 2>/dev/null | grep -c "$2")" -lt "$3" ]; do
		_n=$((_n + 1))
		[ $_n -gt $(($4 * 10)) ] && {
			tail -n 20 "$T/run/$1/console.log" 2>/dev/null; tail -n 20 "$T/run/$1/vmm.log" 2>/dev/null
			lab_fail "$1: no $3 lines matching '$2' in its console log after $4 s"; }
		sleep 0.1
	done
}
# addr NAME: the last address NAME's guest reported.
addr() {
	tr -d '\r' <"$T/run/$1/console.log" | sed -n 's/^dhcp: address \([0-9.]*\)\/.*/\1/p' | tail -1
}
in_range() {
	case "$1" in 10.78.0.1[0-9][0-9]) return 0 ;; esac
	return 1
}

v pool-define-as p dir "$T/pool"
v vol-create-as p base.qcow2 64M
v vol-create-as p web1.qcow2 0 --backing-vol base.qcow2
cat >"$T/lan.json" <<EOJ
{"name": "lan", "mode": "nat", "address": "10.78.0.1/24",
 "dhcp": {"start": "10.78.0.100", "end": "10.78.0.199"}}
EOJ
v net-define "$T/lan.json"
v net-start lan
[ -d /sys/class/net/"$(vireo net-info lan | sed -n 's/^Bridge: *//p')" ] ||
	lab_fail "no bridge after net-start: $(vireo net-info lan)"
cat >"$T/web1.json" <<EOJ
{"name": "web1", "cpus": 1, "memory": "256M",
 "kernel": "$LAB_INNER_KERNEL", "initrd": "$LAB_INNER_INITRD",
 "cmdline": "$LAB_INNER_CMDLINE vireo.notimer vireo.run=dhcp",
 "disks": [{"path": "$T/pool/web1.qcow2", "format": "qcow2"}],
 "nics": [{"type": "network", "network": "lan"}]}
EOJ
v define "$T/web1.json"
v start web1
console_wait web1 '^dhcp: ping .* ok' 1 180
a1=$(addr web1)
in_range "$a1" || lab_fail "web1 got $a1, outside the range 10.78.0.100-199"
echo "vireod-net: web1 has $a1 from dnsmasq and reaches the bridge"

# reboot: a new vireo-vmm boots it again (the console log goes on)
pid1=$(vireo dominfo web1 | sed -n 's/^PID: *//p')
v reboot web1
console_wait web1 '^dhcp: ping .* ok' 2 180
pid2=$(vireo dominfo web1 | sed -n 's/^PID: *//p')
[ "$pid1" != "$pid2" ] || lab_fail "vireo reboot left the same vireo-vmm ($pid1)"
echo "vireod-net: rebooted (vireo-vmm $pid1 -> $pid2), address $(addr web1) again"

# ACPI shutdown
v shutdown web1 --timeout 120
n=0
while :; do
	st=$(vireo dominfo web1 | sed -n 's/^State: *//p')
	[ "$st" = "shut off" ] && break
	n=$((n + 1))
	[ $n -gt 150 ] && lab_fail "150 s after vireo shutdown web1 is '$st'"
	sleep 1
done
grep -q VIREO-POWER-BUTTON "$T/run/web1/console.log" ||
	lab_fail "the guest never saw the power button (console: $(tail -n 5 "$T/run/web1/console.log"))"

# two linked clones of the shut-off web1 (its disk is their backing file,
# so web1 itself stays off), both at once
v clone web1 web2 --linked
v clone web1 web3 --linked
v start web2
v start web3
console_wait web2 '^dhcp: ping .* ok' 1 180
console_wait web3 '^dhcp: ping .* ok' 1 180
a2=$(addr web2) a3=$(addr web3)
in_range "$a2" && in_range "$a3" || lab_fail "addresses $a2 and $a3: not both in the range"
[ "$a2" != "$a3" ] || lab_fail "both clones got $a2"
m2=$(tr -d '\r' <"$T/run/web2/console.log" | sed -n 's/.* mac \(.*\)$/\1/p' | tail -1)
m3=$(tr -d '\r' <"$T/run/web3/console.log" | sed -n 's/.* mac \(.*\)$/\1/p' | tail -1)
[ "$m2" != "$m3" ] || lab_fail "both clones have the MAC $m2"
for c in web2 web3; do
	vireo-img info -U "$T/pool/$c-disk0.qcow2" | grep -q "backing file: $T/pool/web1.qcow2" ||
		lab_fail "$c's disk is not a linked clone of web1's: $(vireo-img info -U "$T/pool/$c-disk0.qcow2" 2>&1 | tr '\n' ' ')"
done
echo "vireod-net: linked clones web2 $a2 ($m2) and web3 $a3 ($m3) run at once"
v destroy web2
v destroy web3
br=$(vireo net-info lan | sed -n 's/^Bridge: *//p')
v net-destroy lan
[ -d "/sys/class/net/$br" ] && lab_fail "the bridge $br is still there after net-destroy"
echo "vireod-net: ok"
