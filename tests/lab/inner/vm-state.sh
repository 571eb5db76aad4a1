# Inner scenario: a guest whose state must survive save/restore, snapshots
# and live migration (tests/lab/scenarios/vm-state.sh).
# The kernel command line gives vireo.netip=GUEST_IP and vireo.nethost=HOST_IP
# (a /24). The guest brings eth0 up, pings HOST_IP, opens one TCP connection
# to HOST_IP:5003 and then counts, five times a second, for ever: each count
# i is
#   - printed on the console: "vm-state: count I up UPTIME date EPOCH",
#   - written to the first virtio disk as a 16-byte record at offset 16*(I-1)
#     ("%015d\n"), then synced,
#   - sent over the TCP connection as a line "I".
# With vireo.nodisk there is no disk: the records are not written.
# The host stops it (power-off, SIGTERM or a save with exit).
ip= host= disk=1
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	vireo.netip=*) ip=${arg#vireo.netip=} ;;
	vireo.nethost=*) host=${arg#vireo.nethost=} ;;
	vireo.nodisk) disk= ;;
	esac
done
fail() {
	echo "vm-state: FAIL: $*"
	exit 1
}
[ -n "$ip" ] && [ -n "$host" ] || fail "no vireo.netip= / vireo.nethost= on the command line"
[ -z "$disk" ] || [ -b /dev/vda ] || fail "no /dev/vda"
n=0
while [ ! -d /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -d /sys/class/net/eth0 ] || fail "no eth0"
ip link set lo up
ip addr add "$ip/24" dev eth0 || fail "ip addr add $ip/24 dev eth0"
ip link set eth0 up || fail "ip link set eth0 up"
n=0
until ping -c 1 -W 1 "$host" >/dev/null 2>&1; do
	n=$((n + 1))
	[ $n -ge 40 ] && fail "no ping reply from $host in 40 tries"
done
# A write to a connection that died is reported, not fatal.
trap '' PIPE
mkfifo /tmp/tcp
nc "$host" 5003 </tmp/tcp >/dev/null &
exec 4>/tmp/tcp
echo "vm-state: ready boot_id $(cat /proc/sys/kernel/random/boot_id)"
i=0
while :; do
	i=$((i + 1))
	echo "vm-state: count $i up $(cut -d' ' -f1 /proc/uptime) date $(date +%s)"
	if [ -n "$disk" ]; then
		printf '%015d\n' $i | dd of=/dev/vda bs=16 seek=$((i - 1)) conv=notrunc 2>/dev/null ||
			fail "cannot write record $i"
		sync
		echo "vm-state: synced $i"
	fi
	echo "$i" >&4 || echo "vm-state: tcp write $i failed"
	usleep 200000
done
