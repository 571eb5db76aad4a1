# Inner scenario: user-mode networking (tests/lab/scenarios/net-user.sh).
# eth0 gets its address by DHCP (busybox udhcpc); the guest must get
# 10.0.2.15 with 10.0.2.2 as its gateway, fetch the page the lab host
# serves on its own 127.0.0.1:8080 through http://10.0.2.2:8080/, then
# answer HTTP requests on port 80 (the host reaches it through a hostfwd
# port) until the host says on port 81 that an answer arrived (so the VM
# does not end with it still in flight), and report.
fail() {
	echo "net-user: FAIL: $*"
	ip addr 2>&1 | sed 's/^/net-user: | /'
	ip route 2>&1 | sed 's/^/net-user: | /'
	exit 1
}
n=0
while [ ! -d /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -d /sys/class/net/eth0 ] || fail "no eth0 (virtio-net not found)"
ip link set lo up
ip link set eth0 up || fail "ip link set eth0 up"
# udhcpc hands the lease to a script: this one applies it with ip(8).
cat >/tmp/dhcp.sh <<'SH'
#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
	echo "net-user: lease $ip router $router dns $dns"
	;;
esac
SH
chmod +x /tmp/dhcp.sh
udhcpc -i eth0 -n -q -t 10 -s /tmp/dhcp.sh || fail "no DHCP lease"
addr=$(ip -4 addr show dev eth0 | sed -n 's/.*inet \([0-9.]*\)\/.*/\1/p' | head -1)
[ "$addr" = 10.0.2.15 ] || fail "DHCP gave '$addr', want 10.0.2.15"
echo "net-user: eth0 10.0.2.15 by DHCP"
page=$(wget -q -O - http://10.0.2.2:8080/page.txt) || fail "wget http://10.0.2.2:8080/page.txt failed"
echo "net-user: fetched '$page'"
# Requests through the host's hostfwd port, answered by nc. The guest keeps
# answering until the host confirms: in a slow lab libslirp may hand the
# guest a connection whose host end has already given up, and that answer
# is lost, so the host asks again.
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello-from-the-guest\n' >/tmp/resp
: >/tmp/req
# The confirmation's listener is up before the request can come.
timeout 240 nc -l -p 81 >/tmp/done </dev/null &
confirm=$!
( while :; do nc -l -p 80 </tmp/resp >>/tmp/req; done ) &
server=$!
echo "net-user: serving on port 80"
wait $confirm
rc=$?
kill $server 2>/dev/null
grep -q '^GET ' /tmp/req || fail "port 80 got no GET: $(head -c 200 /tmp/req)"
echo "net-user: served $(grep -m1 '^GET ' /tmp/req | tr -d '\r')"
[ $rc -eq 0 ] || fail "the host never confirmed on port 81"
grep -q got-it /tmp/done || fail "port 81 got '$(head -c 100 /tmp/done)', not the host's confirmation"
echo "net-user: the host got the answer"
echo "net-user: ok"
