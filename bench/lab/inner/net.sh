# Inner guest side of the network benchmark (bench/lab/bench-net.sh):
# TCP throughput with iperf3 against the server on the lab host, guest to
# host then host to guest (-R), bench.net_seconds=S each (default 5), then
# one line
#   NET g2h=Mbit/s h2g=Mbit/s
# (the receiver's figure). bench.net_mode=tap: eth0 gets bench.net_ip=A
# (a /24) and the server is bench.net_host=H; bench.net_mode=user: eth0
# gets its address by DHCP and the server is 10.0.2.2 (the host's
# loopback). Carried in the iperf3 archive as /scenarios/net.sh.
mode=tap secs=5 ip= host=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	bench.net_mode=*) mode=${arg#bench.net_mode=} ;;
	bench.net_seconds=*) secs=${arg#bench.net_seconds=} ;;
	bench.net_ip=*) ip=${arg#bench.net_ip=} ;;
	bench.net_host=*) host=${arg#bench.net_host=} ;;
	esac
done
fail() { echo "net: FAIL: $*"; exit 1; }
command -v iperf3 >/dev/null || fail "no iperf3 in this initramfs"
n=0
while [ ! -d /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -d /sys/class/net/eth0 ] || fail "no eth0"
ip link set lo up
ip link set eth0 up || fail "ip link set eth0 up"
if [ "$mode" = user ]; then
	cat >/tmp/dhcp.sh <<'SH'
#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
	;;
esac
SH
	chmod +x /tmp/dhcp.sh
	udhcpc -i eth0 -n -q -t 10 -s /tmp/dhcp.sh >/dev/null 2>&1 || fail "no DHCP lease"
	host=10.0.2.2
else
	[ -n "$ip" ] && [ -n "$host" ] || fail "no bench.net_ip= / bench.net_host="
	ip addr add "$ip/24" dev eth0 || fail "ip addr add $ip/24"
	n=0
	until ping -c 1 -W 1 "$host" >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -ge 30 ] && fail "no ping reply from $host"
	done
fi
# rate ARGS...: one iperf3 run, the receiver's Mbit/s.
rate() {
	iperf3 -c "$host" -t "$secs" -f m "$@" >/tmp/iperf.out 2>&1 ||
		{ sed 's/^/net: | /' /tmp/iperf.out; return 1; }
	awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Mbits/sec") v = $i } END { print v }' /tmp/iperf.out
}
g2h=$(rate) || fail "iperf3 to $host failed"
h2g=$(rate -R) || fail "iperf3 -R from $host failed"
[ -n "$g2h" ] && [ -n "$h2g" ] || fail "no receiver figure in iperf3's output"
echo "NET g2h=$g2h h2g=$h2g"
