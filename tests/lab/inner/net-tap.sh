# Inner scenario: virtio-net over a tap (tests/lab/scenarios/net-tap.sh).
# The kernel command line gives vireo.netip=GUEST_IP and vireo.nethost=HOST_IP
# (a /24). The guest brings eth0 up with GUEST_IP, pings HOST_IP, sends 32 MiB
# of random bytes to HOST_IP:5001 and receives what HOST_IP:5002 sends (busybox
# nc both ways), printing the MD5 of each for the host to compare and the time
# each transfer took (guest clock).
# With vireo.netquick (two --net devices, the first with queues=2): no
# transfers; eth1 gets vireo.net2ip= and pings vireo.net2host= too, and the
# two MACs must differ.
ip= host= ip2= host2= quick=0
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	vireo.netip=*) ip=${arg#vireo.netip=} ;;
	vireo.nethost=*) host=${arg#vireo.nethost=} ;;
	vireo.net2ip=*) ip2=${arg#vireo.net2ip=} ;;
	vireo.net2host=*) host2=${arg#vireo.net2host=} ;;
	vireo.netquick) quick=1 ;;
	esac
done
fail() {
	echo "net-tap: FAIL: $*"
	ip addr 2>&1 | sed 's/^/net-tap: | /'
	grep -i -E 'virtio|msi' /proc/interrupts | sed 's/^/net-tap: | /'
	dmesg | grep -i -E 'virtio|eth0' | tail -10 | sed 's/^/net-tap: | /'
	exit 1
}
now() { cut -d' ' -f1 /proc/uptime; }
# ping_until HOST WHY: one reply from HOST within 40 tries, else fail WHY.
ping_until() {
	_n=0
	until ping -c 1 -W 1 "$1" >/dev/null 2>&1; do
		_n=$((_n + 1))
		[ $_n -ge 40 ] && fail "$2"
	done
}
# mq_check IFC HOST: turn on queue pair 1 of IFC (a control-queue command),
# steer transmit to queue 1 (XPS), ping HOST; the tap sends a flow's
# replies to the queue that sent it, so both directions of pair 1 must
# count packets.
mq_check() {
	ethtool -L "$1" combined 2 || fail "ethtool -L $1 combined 2"
	echo 0 >"/sys/class/net/$1/queues/tx-0/xps_cpus" &&
		echo 1 >"/sys/class/net/$1/queues/tx-1/xps_cpus" || fail "cannot set XPS on $1"
	ping -c 5 -i 0.2 "$2" >/dev/null 2>&1 || fail "pings over $1 with queue pair 1 failed"
	_tx=$(ethtool -S "$1" | sed -n 's/.*tx_queue_1_packets: *//p')
	_rx=$(ethtool -S "$1" | sed -n 's/.*rx_queue_1_packets: *//p')
	echo "net-tap: $1 queue pair 1: tx $_tx rx $_rx packets"
	[ "${_tx:-0}" -gt 0 ] || fail "no packets sent on $1's queue pair 1"
	[ "${_rx:-0}" -gt 0 ] || fail "no packets received on $1's queue pair 1"
	echo 1 >"/sys/class/net/$1/queues/tx-0/xps_cpus"
}
[ -n "$ip" ] && [ -n "$host" ] || fail "no vireo.netip= / vireo.nethost= on the command line"
n=0
while [ ! -d /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -d /sys/class/net/eth0 ] || fail "no eth0 (virtio-net not found; have: $(ls /sys/class/net | tr '\n' ' '))"
echo "net-tap: eth0 $(cat /sys/class/net/eth0/address), virtio features $(cat /sys/class/net/eth0/device/features 2>/dev/null)"
ip link set lo up
ip addr add "$ip/24" dev eth0 || fail "ip addr add $ip/24 dev eth0"
ip link set eth0 up || fail "ip link set eth0 up"
ping_until "$host" "no ping reply from $host in 40 tries"
echo "net-tap: ping $host: $(ping -c 3 -W 2 "$host" | grep -E 'packets|round-trip' | tr '\n' ' ')"
if [ $quick = 1 ]; then
	[ -d /sys/class/net/eth1 ] || fail "no eth1 (second virtio-net not found)"
	m0=$(cat /sys/class/net/eth0/address) m1=$(cat /sys/class/net/eth1/address)
	[ "$m0" != "$m1" ] || fail "eth0 and eth1 have the same MAC $m0"
	echo "net-tap: eth1 $m1, virtio features $(cat /sys/class/net/eth1/device/features 2>/dev/null)"
	echo "net-tap: eth0 queues: $(ls /sys/class/net/eth0/queues | tr '\n' ' ')"
	ip addr add "$ip2/24" dev eth1 || fail "ip addr add $ip2/24 dev eth1"
	ip link set eth1 up || fail "ip link set eth1 up"
	ping_until "$host2" "no ping reply from $host2 over eth1 in 40 tries"
	echo "net-tap: ping $host2 over eth1: ok"
	# a little traffic on eth0 after the second device came up
	ping -c 5 -i 0.2 -s 1400 "$host" >/dev/null 2>&1 || fail "large pings over eth0 failed"
	mq_check eth0 "$host"
	mq_check eth1 "$host2"
	# Driver unbind and bind: the device is reset (vhost stopped) and set
	# up again; it must work afterwards.
	dev=$(basename "$(readlink /sys/class/net/eth0/device)")
	echo "$dev" >/sys/bus/virtio/drivers/virtio_net/unbind || fail "unbind $dev"
	echo "$dev" >/sys/bus/virtio/drivers/virtio_net/bind || fail "bind $dev"
	n=0
	while [ ! -d "/sys/bus/virtio/devices/$dev/net" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
	ifc=$(ls "/sys/bus/virtio/devices/$dev/net" 2>/dev/null | head -1)
	[ -n "$ifc" ] || fail "no interface after binding $dev again"
	ip addr add "$ip/24" dev "$ifc" && ip link set "$ifc" up || fail "configure $ifc after the rebind"
	ping_until "$host" "no ping reply from $host after the driver was bound again"
	echo "net-tap: $dev unbound and bound again ($ifc): ping $host ok"
	echo "net-tap: ok (quick)"
	exit 0
fi

# guest -> host
head -c 33554432 /dev/urandom >/tmp/g2h || fail "no room for 32 MiB in /tmp"
echo "net-tap: g2h md5 $(md5sum </tmp/g2h | cut -c1-32)"
t0=$(now)
nc "$host" 5001 </tmp/g2h || fail "nc to $host:5001 failed"
t1=$(now)
rm -f /tmp/g2h
echo "net-tap: g2h seconds $(awk "BEGIN { print $t1 - $t0 }")"

# host -> guest (stdin kept open without data: nc must not end the
# connection early on an EOF of its own)
mkfifo /tmp/hold
exec 3<>/tmp/hold
t0=$(now)
nc "$host" 5002 </tmp/hold >/tmp/h2g || fail "nc from $host:5002 failed"
t1=$(now)
exec 3>&-
echo "net-tap: h2g md5 $(md5sum </tmp/h2g | cut -c1-32) bytes $(wc -c </tmp/h2g)"
echo "net-tap: h2g seconds $(awk "BEGIN { print $t1 - $t0 }")"
grep -q . /proc/net/dev && echo "net-tap: $(grep eth0 /proc/net/dev | tr -s ' ')"
echo "net-tap: ok"
