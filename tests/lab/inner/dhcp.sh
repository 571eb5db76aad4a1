# Inner scenario: an address by DHCP on eth0 (busybox udhcpc), then a ping
# of the router it was given (tests/lab/scenarios/vireod-net.sh). Prints
# "dhcp: address IP/MASK router R", "dhcp: ping R ok" and "dhcp: ready",
# then idles until powered off (the ACPI power button, a reset, a kill).
fail() {
	echo "dhcp: FAIL: $*"
	exit 1
}
n=0
while [ ! -d /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -d /sys/class/net/eth0 ] || fail "no eth0"
cat >/tmp/udhcpc.sh <<'EOS'
#!/bin/sh
case "$1" in
bound | renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	echo "$ip/$mask ${router%% *}" >/tmp/lease ;;
esac
EOS
chmod +x /tmp/udhcpc.sh
ip link set lo up
ip link set eth0 up || fail "ip link set eth0 up"
udhcpc -i eth0 -n -q -t 20 -T 2 -s /tmp/udhcpc.sh >/dev/null 2>&1 || fail "no DHCP lease"
read -r addr router </tmp/lease
echo "dhcp: address $addr router $router mac $(cat /sys/class/net/eth0/address)"
n=0
until ping -c 1 -W 1 "$router" >/dev/null 2>&1; do
	n=$((n + 1))
	[ $n -ge 30 ] && fail "no ping reply from $router"
done
echo "dhcp: ping $router ok"
echo "dhcp: ready"
while :; do sleep 3600; done
