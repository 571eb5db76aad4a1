#!/usr/bin/env bash
# vireod's virtual networks, all inside a network namespace of the test's
# own (unshare --net): nothing of the host's interfaces or nftables rules
# is touched.  net-define (and refused definitions), net-start: the bridge
# with its address, the nftables table with masquerade (NAT) or without
# (isolated), dnsmasq bound to the bridge; a DHCP client (busybox udhcpc)
# in a second namespace on a veth pair gets an address from the range and,
# with a defined VM's MAC, that VM's fixed address and DNS name; dnsmasq
# restarted when killed and adopted by a new vireod; autostart; a VM with
# a NIC on the network gets its tap on the bridge (tiny guest on /dev/kvm),
# the network cannot be destroyed under it without --force; net-destroy
# and net-undefine leave nothing behind.
#   network.sh VIREOD VIREO VMM GUEST (tests/guest/pwrbtn.elf)
set -u
if [ -z "${VIREO_NET_TEST_NS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (namespaces, bridges)"; exit 77; }
	PATH=$PATH:/usr/sbin:/sbin
	for p in dnsmasq nft busybox ip unshare nsenter; do
		command -v $p >/dev/null || { echo "SKIP: $p is not installed"; exit 77; }
	done
	unshare --net true 2>/dev/null || { echo "SKIP: cannot make a network namespace"; exit 77; }
	export VIREO_NET_TEST_NS=1 PATH
	exec unshare --net -- bash "$0" "$@"
fi
vireod=$1 vireo=$2 vmm=$(realpath "$3") guest=$(realpath "$4")
. "$(dirname "$0")/lib.sh"
make_tmp net-test 711   # dnsmasq (as nobody) re-reads its hosts file in $T/net
export VIREO_SOCKET=$T/sock
vireod_args=(--net-dir "$T/net")
cpid=
cleanup_before() {
	kill_pidfiles "$T"/net/*/dnsmasq.pid
	[ -n "$cpid" ] && kill -KILL $cpid 2>/dev/null
}
show_logs() { show_daemon_logs; dump "$T"/net/*/dnsmasq.log; }
dnsmasq_pid() { "$vireo" net-info "$1" 2>/dev/null | sed -n 's/^dnsmasq: *//p'; }
# dhcp MAC: a DHCP exchange from the client namespace with @MAC; sets
# $lease to the address offered, "" if none
dhcp() {
	nsenter --net=/proc/$cpid/ns/net ip link set vc1 down
	nsenter --net=/proc/$cpid/ns/net ip link set vc1 address "$1" up
	printf '#!/bin/sh\n[ "$1" = bound ] && echo "$ip" >%s/lease\nexit 0\n' "$T" >"$T/udhcpc.sh"
	chmod +x "$T/udhcpc.sh"
	rm -f "$T/lease"
	nsenter --net=/proc/$cpid/ns/net busybox udhcpc -i vc1 -f -q -n -t 6 -T 1 \
		-s "$T/udhcpc.sh" >"$T/udhcpc.log" 2>&1
	lease=$(cat "$T/lease" 2>/dev/null)
	echo "udhcpc with $1 -> '${lease}'"
}
ip link set lo up

start_daemon

# --- definitions: refused ones name the field
printf '{"name": "n1", "mode": "nat", "address": "10.77.0.1/24", "dhcp": {"start": "10.77.0.10", "end": "10.77.0.20"}, "domain": "vm.test"}\n' >"$T/n1.json"
v net-define "$T/n1.json"; expect_rc 0; has 'Network n1 defined from .* \(bridge vireo0\)'
v net-define "$T/n1.json"; expect_rc 1; has "name: a network named 'n1' is already defined"
bad() {  # bad JSON PATTERN
	printf '%s\n' "$1" >"$T/bad.json"
	v net-define "$T/bad.json"; expect_rc 1; has "$2"
}
bad '{"name": "b", "address": "10.78.0.0/24"}' "address: is the subnet's network or broadcast address"
bad '{"name": "b", "address": "10.78.0.1/31"}' 'address: the prefix must be from 8 to 30'
bad '{"name": "b", "address": "10.78.0.1"}' "address: must be the bridge's IPv4 address and prefix"
bad '{"name": "b", "address": "10.78.0.1/24", "mode": "bridge"}' 'mode: must be "nat" or "isolated"'
bad '{"name": "b", "address": "10.78.0.1/24", "dhcp": {"start": "10.79.0.2", "end": "10.78.0.9"}}' \
	'dhcp.start: not in the subnet 10.78.0.0/24'
bad '{"name": "b", "address": "10.78.0.1/24", "dhcp": {"start": "10.78.0.9", "end": "10.78.0.2"}}' \
	'dhcp.end: before dhcp.start'
bad '{"name": "b", "address": "10.78.0.5/24", "dhcp": {"start": "10.78.0.2", "end": "10.78.0.9"}}' \
	"dhcp: the range holds the bridge's own address"
bad '{"name": "b", "address": "10.78.0.1/24", "bridge": "a/b"}' 'bridge: an interface name'
bad '{"name": "b", "address": "10.78.0.1/24", "domain": "Bad..name"}' 'domain: a DNS name'
bad '{"name": "b", "address": "10.78.0.1/24", "colour": "blue"}' 'colour: unknown field'
bad '{"address": "10.78.0.1/24"}' 'name: missing'
bad '{"name": "b", "address": "10.77.0.129/25"}' 'address: the subnet overlaps network n1'
bad '{"name": "b", "address": "10.78.0.1/24", "bridge": "vireo0"}' 'bridge: vireo0 is the bridge of network n1'
v net-list; expect_rc 0; grep -q n1 <<<"$out" && fail "net-list without --all shows an inactive network"
v net-list --all; expect_rc 0; has ' n1 +inactive +nat +vireo0 +10\.77\.0\.1/24 +no'
v net-start nosuch; expect_rc 1; has "no network named 'nosuch'"
v net-info 'bad/name'; expect_rc 2

# --- a VM on the network: its MAC is made at define and kept
printf '{"name": "web", "memory": "64M", "kernel": "%s", "nics": [{"type": "network", "network": "n1", "ip": "10.77.0.50"}]}\n' \
	"$guest" >"$T/web.json"
v define "$T/web.json"; expect_rc 0
mac=$("$vireo" dumpdef web | grep -o '"mac": "[0-9a-f:]*"' | cut -d'"' -f4)
[[ $mac =~ ^[0-9a-f][26ae](:[0-9a-f]{2}){5}$ ]] || fail "web's MAC '$mac' is not a locally administered unicast one"
printf '{"name": "bad", "kernel": "%s", "nics": [{"type": "network", "network": "n1", "mac": "01:00:5e:00:00:01"}]}\n' \
	"$guest" >"$T/bad.json"
v define "$T/bad.json"; expect_rc 1; has 'nics\[0\]\.mac: must be six hex pairs'
# starting it before its network: a clear error
v start web; expect_rc 1; has 'network n1 is not started \(vireo net-start n1\)'

# --- net-start: bridge, address, nftables, dnsmasq on the bridge only
v net-start n1; expect_rc 0; has 'Network n1 started'
v net-start n1; expect_rc 1; has 'already started'
ip -o link show vireo0 | grep -q 'vireo0:' || fail "no bridge vireo0"
ip -d link show vireo0 | grep -q 'bridge ' || fail "vireo0 is not a bridge"
ip -o -4 addr show dev vireo0 | grep -q 'inet 10\.77\.0\.1/24' || fail "vireo0 has not 10.77.0.1/24"
nft list table ip vireo-n1 >"$T/nft" || fail "no nftables table vireo-n1"
grep -q 'ip saddr 10.77.0.0/24 ip daddr != 10.77.0.0/24 masquerade' "$T/nft" || fail "no masquerade rule"
grep -q 'iifname "vireo0" ip saddr 10.77.0.0/24 accept' "$T/nft" || fail "no forward rule"
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || fail "ip_forward is off"
v net-list; expect_rc 0; has ' n1 +active +nat +vireo0'
v net-info n1; expect_rc 0; has '^Active: +yes'; has '^DHCP: +10\.77\.0\.10 - 10\.77\.0\.20'
v net-info n1 --json; expect_rc 0; has '"active":true'
v net-dumpdef n1; expect_rc 0; has '"domain": "vm.test"'
dpid1=$(dnsmasq_pid n1)
[ -n "$dpid1" ] && alive "$dpid1" || fail "no dnsmasq running for n1"
tr '\0' ' ' </proc/$dpid1/cmdline | grep -q "dnsmasq --conf-file=$T/net/n1/dnsmasq.conf" ||
	fail "pid $dpid1 is not n1's dnsmasq"
grep -qx 'interface=vireo0' "$T/net/n1/dnsmasq.conf" || fail "dnsmasq is not bound to vireo0"
grep -qx 'bind-interfaces' "$T/net/n1/dnsmasq.conf" || fail "dnsmasq without bind-interfaces"
# listening on the bridge's address only
ss -lnup 2>/dev/null | grep -q '10\.77\.0\.1:53 .*dnsmasq' || fail "dnsmasq does not listen on 10.77.0.1:53"
ss -lnup 2>/dev/null | grep -q '0\.0\.0\.0:53 .*dnsmasq' && fail "dnsmasq listens on every address"
grep -qx "$mac,10.77.0.50,web" "$T/net/n1/hosts" || fail "web is not in the DHCP hosts file"

# --- a DHCP client on a veth pair in a second namespace
unshare --net sleep 600 &
cpid=$!
sleep 0.2
ip link add vc0 type veth peer name vc1 || fail "cannot make a veth pair"
ip link set vc1 netns $cpid
ip link set vc0 master vireo0 up
dhcp 02:00:00:aa:bb:01
[[ $lease =~ ^10\.77\.0\.(1[0-9]|20)$ ]] || { cat "$T/udhcpc.log"; fail "no lease from the range 10.77.0.10-20"; }
grep -q "02:00:00:aa:bb:01 $lease" "$T/net/n1/leases" || fail "the lease is not in dnsmasq's lease file"
# a VM defined while the network runs: the hosts file is rewritten, dnsmasq
# re-reads it (SIGHUP)
printf '{"name": "db", "memory": "64M", "kernel": "%s", "nics": [{"type": "network", "network": "n1", "mac": "02:00:00:aa:bb:02", "ip": "10.77.0.60"}]}\n' \
	"$guest" >"$T/db.json"
v define "$T/db.json"; expect_rc 0
grep -qx '02:00:00:aa:bb:02,10.77.0.60,db' "$T/net/n1/hosts" || fail "db is not in the hosts file"
sleep 0.5
dhcp 02:00:00:aa:bb:02
[ "$lease" = 10.77.0.60 ] || { cat "$T/udhcpc.log"; fail "db's MAC did not get its fixed address"; }
nsenter --net=/proc/$cpid/ns/net ip addr add 10.77.0.60/24 dev vc1
nsenter --net=/proc/$cpid/ns/net busybox nslookup db.vm.test 10.77.0.1 >"$T/ns" 2>&1
grep -q '10\.77\.0\.60' "$T/ns" || { cat "$T/ns"; fail "dnsmasq does not resolve db.vm.test"; }
# VM names that dnsmasq would read as something else are not host names
for n in ignore 10.77.0.1; do
	printf '{"name": "%s", "memory": "64M", "kernel": "%s", "nics": [{"type": "network", "network": "n1", "mac": "02:00:00:aa:bb:03", "ip": "10.77.0.70"}]}\n' \
		"$n" "$guest" >"$T/odd.json"
	v define "$T/odd.json"; expect_rc 0
	grep -qx '02:00:00:aa:bb:03,10.77.0.70' "$T/net/n1/hosts" || fail "VM $n: not MAC,IP alone in the hosts file"
	v undefine "$n"; expect_rc 0
done
# a clone of db: a MAC of its own, not db's fixed address
v clone db db2 --linked; expect_rc 0
m2=$("$vireo" dumpdef db2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["nics"][0].get("mac", ""))')
ip2=$("$vireo" dumpdef db2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["nics"][0].get("ip", ""))')
[[ $m2 =~ ^[0-9a-f:]{17}$ ]] && [ "$m2" != 02:00:00:aa:bb:02 ] || fail "db2's MAC is '$m2', not one of its own"
[ -z "$ip2" ] || fail "db2 kept db's fixed address $ip2"
grep -q "^$m2," "$T/net/n1/hosts" || fail "db2 ($m2) is not in the hosts file"
v undefine db2; expect_rc 0
v undefine db; expect_rc 0
grep -q 'db' "$T/net/n1/hosts" && fail "db stays in the hosts file after undefine"

# --- dnsmasq supervised: killed, it is restarted
kill -KILL "$dpid1"
for _ in $(seq 50); do
	p=$(dnsmasq_pid n1)
	[ -n "$p" ] && [ "$p" != "$dpid1" ] && alive "$p" && break
	sleep 0.2
done
dpid2=$(dnsmasq_pid n1)
[ -n "$dpid2" ] && [ "$dpid2" != "$dpid1" ] && alive "$dpid2" || fail "dnsmasq was not restarted"

# --- kill -9 of vireod: the network stays, a new vireod adopts its dnsmasq
kill -KILL $dpid; wait $dpid 2>/dev/null; dpid=
alive "$dpid2" || fail "dnsmasq ended with vireod"
start_daemon
v net-info n1; expect_rc 0; has '^Active: +yes'; has "^dnsmasq: +$dpid2\$"
grep -q 'adopted dnsmasq pid' "$T/vireod.log" || fail "vireod did not say it adopted dnsmasq"

# --- the VM: a tap on the bridge, passed to vireo-vmm as fd=N
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	kvm=1
	v start web; expect_rc 0
	vpid=$("$vireo" dominfo web | sed -n 's/^PID: *//p')
	cmd=$(tr '\0' ' ' </proc/$vpid/cmdline)
	# (vireo-vmm parses its options in place: "=" and "," become NULs)
	grep -qE -- "--net fd.3.mac.$mac" <<<"$cmd" || fail "vireo-vmm has not --net fd=3,mac=$mac: $cmd"
	tap=$(ip -o link show master vireo0 | grep -o 'vtap[0-9]*' | head -1)
	[ -n "$tap" ] || fail "no tap on vireo0"
	ip -d link show "$tap" | grep -q 'tun type tap' || fail "$tap is not a tap"
	v net-destroy n1; expect_rc 1; has 'network n1 is used by running VM web'
	v net-undefine n1; expect_rc 1; has 'network n1 is started'
	v destroy web; expect_rc 0
	for _ in $(seq 50); do ip link show "$tap" >/dev/null 2>&1 || break; sleep 0.1; done
	ip link show "$tap" >/dev/null 2>&1 && fail "$tap stays after the VM ended"
	# --force: the network goes from under a running VM
	v start web; expect_rc 0
	v net-destroy n1 --force; expect_rc 0
	v destroy web; expect_rc 0
	v net-start n1; expect_rc 0
else
	kvm=0
	echo "no /dev/kvm: the VM part is skipped"
fi

# --- net-destroy: no bridge, no table, no dnsmasq
dpid3=$(dnsmasq_pid n1)
v net-destroy n1; expect_rc 0; has 'Network n1 destroyed'
ip link show vireo0 >/dev/null 2>&1 && fail "vireo0 stays after net-destroy"
nft list table ip vireo-n1 >/dev/null 2>&1 && fail "table vireo-n1 stays after net-destroy"
alive "$dpid3" && fail "dnsmasq $dpid3 still runs after net-destroy"
v net-destroy n1; expect_rc 1; has 'not started'
ip link show vc0 >/dev/null 2>&1 && ip link del vc0

# --- isolated: no masquerade, no forwarding
printf '{"name": "iso", "mode": "isolated", "bridge": "viso", "address": "10.88.0.1/24", "dhcp": {"start": "10.88.0.100", "end": "10.88.0.110"}}\n' >"$T/iso.json"
v net-define "$T/iso.json"; expect_rc 0; has 'bridge viso'
v net-start iso; expect_rc 0
nft list table ip vireo-iso >"$T/nft" || fail "no nftables table vireo-iso"
grep -q masquerade "$T/nft" && fail "an isolated network has a masquerade rule"
grep -q 'iifname "viso" drop' "$T/nft" || fail "an isolated network forwards"
grep -qx 'no-resolv' "$T/net/iso/dnsmasq.conf" || fail "an isolated network's dnsmasq forwards DNS"
ip -o -4 addr show dev viso | grep -q 'inet 10\.88\.0\.1/24' || fail "viso has not 10.88.0.1/24"

# --- autostart: a new vireod starts it
v net-autostart n1; expect_rc 0
v net-info n1; has '^Autostart: +yes'
kill -TERM $dpid; wait $dpid; dpid=
start_daemon
for _ in $(seq 50); do ip link show vireo0 >/dev/null 2>&1 && break; sleep 0.1; done
v net-info n1; expect_rc 0; has '^Active: +yes'
v net-autostart n1 --disable; expect_rc 0
v net-info n1; has '^Autostart: +no'
# the definitions survived two vireod restarts
v net-dumpdef iso; expect_rc 0; has '"mode": "isolated"'

dnsmasq_pid n1 >"$T/dnsmasq-pids"; dnsmasq_pid iso >>"$T/dnsmasq-pids"
# --- undefine: refused while started, --force destroys first; nothing stays
v net-undefine n1; expect_rc 1; has 'destroy it first'
v net-undefine n1 --force; expect_rc 0
v net-undefine iso --force; expect_rc 0
ip -o link | grep -qE 'vireo0|viso|vtap' && fail "interfaces stay after undefine"
[ -z "$(nft list ruleset)" ] || fail "nftables rules stay after undefine"
for p in $(cat "$T"/dnsmasq-pids 2>/dev/null); do alive "$p" && fail "dnsmasq $p still runs"; done
[ -z "$(ls -A "$T/net")" ] || fail "$T/net is not empty: $(ls "$T/net")"
v net-list --all; expect_rc 0; grep -qE 'n1|iso' <<<"$out" && fail "net-list shows undefined networks"
v undefine web; expect_rc 0

kill -TERM $dpid; wait $dpid; rc=$?; dpid=
[ $rc = 0 ] || fail "vireod exit status $rc after SIGTERM"
grep -qE 'Sanitizer|runtime error' "$T/vireod.log" && fail "sanitizer report from vireod"
if [ $kvm = 0 ]; then
	echo "network.sh: network parts ok; SKIP: the VM part needs /dev/kvm"
	exit 77
fi
echo "network.sh: ok"
