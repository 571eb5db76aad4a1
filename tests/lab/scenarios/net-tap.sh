# virtio-net over a tap under vireo-vmm (issue 16), twice: with vhost-net
# (vhost=on, on a tap vireo-vmm creates and must remove at exit) and with
# vireo-vmm's own data path (vhost=off, on a persistent tap made here). Each
# time the guest (tests/lab/inner/net-tap.sh, 1 vCPU) sets a static address,
# pings this host over the tap, sends 32 MiB of random bytes here over TCP and
# receives 32 MiB of random bytes from here; both MD5s must match. The
# transfer times (guest clock) are reported as DATA lines. A third, short run
# gives the guest two --net devices on taps vireo-vmm creates (the first with
# queues=2 and vhost, the second with vhost=off and queues=2): both must
# show up with different MACs and answer pings, and on each the second
# queue pair must carry packets both ways once the guest turns it on (with
# 1 vCPU Linux uses one pair unless told); the first is then unbound and
# bound again
# in the guest (a device reset that stops vhost-net and starts it again) and
# must still answer.
# lab-timeout: 900
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
[ -c /dev/net/tun ] || lab_fail "no /dev/net/tun in the outer VM (tun module?)"

head -c 33554432 /dev/urandom >"$LAB_TMP/h2g.bin" || lab_fail "cannot create the host's 32 MiB"
h2g_md5=$(md5sum <"$LAB_TMP/h2g.bin" | cut -c1-32)
export LAB_INNER_MEM=512

# nt_hostaddr TAP ADDR: give the host's end its address and bring it up.
nt_hostaddr() {
	ip addr add "$2/24" dev "$1" && ip link set "$1" up
}

# nt_listen PORT IN OUT: accept peers on PORT one after another, each
# given IN; what the last complete one sent ends up in OUT. Run it in
# the background: TERM ends it and its nc.
nt_listen() {
	_part=$3.part
	[ "$3" = /dev/null ] && _part=/dev/null
	trap 'kill $_c 2>/dev/null; exit 0' TERM
	while :; do
		timeout 600 nc -l -p "$1" <"$2" >"$_part" &
		_c=$!
		# A peer that ended early (a guest the emulator's fault cut
		# short) leaves what it sent behind; the loop goes on.
		if wait $_c; then
			[ "$3" = /dev/null ] || mv "$_part" "$3"
		else
			sleep 0.2
		fi
	done
}

# nt_run VHOST TAP SUBNET MODE: one guest run; MODE create (vireo-vmm
# creates the tap) or persistent (made here first).
nt_run() {
	_vh=$1 _tap=$2 _net=$3 _mode=$4 _out=$LAB_TMP/vireo.out
	if [ "$_mode" = persistent ]; then
		{ tunctl -t "$_tap" >/dev/null 2>&1 || ip tuntap add dev "$_tap" mode tap; } ||
			lab_fail "cannot create the persistent tap $_tap"
		nt_hostaddr "$_tap" "$_net.1" || lab_fail "cannot configure $_tap"
	else
		[ -e "/sys/class/net/$_tap" ] && lab_fail "$_tap exists before the run"
		# vireo-vmm creates it: configure our end once it appears.
		( n=0
		  while [ ! -e "/sys/class/net/$_tap" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
		  nt_hostaddr "$_tap" "$_net.1" ) &
	fi
	rm -f "$LAB_TMP/g2h.bin" "$LAB_TMP/hold"
	mkfifo "$LAB_TMP/hold"
	exec 3<>"$LAB_TMP/hold"
	# Listeners in loops: lab_boot may run the guest a second time (the
	# lab emulator's fault), and a busybox nc -l ends after one peer.
	nt_listen 5001 "$LAB_TMP/hold" "$LAB_TMP/g2h.bin" &
	_l1=$!
	nt_listen 5002 "$LAB_TMP/h2g.bin" /dev/null &
	_l2=$!
	LAB_VMM_ARGS="--verbose --net tap=$_tap,vhost=$_vh"
	lab_boot vireo "$LAB_INNER_CMDLINE vireo.run=net-tap vireo.netip=$_net.2 vireo.nethost=$_net.1" 800
	_rc=$?
	cp "$_out" "$LAB_TMP/vireo-$_vh.out"
	exec 3>&-
	kill $_l1 $_l2 2>/dev/null
	wait $_l1 $_l2 2>/dev/null
	[ $_rc -eq 0 ] || lab_fail "vhost=$_vh: no VIREO-BOOT-OK under vireo-vmm with --net tap=$_tap"
	lab_expect "$_out" '^net-tap: ok' "vhost=$_vh: the inner net-tap scenario did not report ok"
	[ "$LAB_GUEST_EXIT" = 0 ] || lab_fail "vhost=$_vh: inner net-tap exited with '${LAB_GUEST_EXIT:-none}'"
	if [ "$_vh" = on ]; then
		grep -q 'data path in vhost-net' "$_out" ||
			lab_fail "vhost=on: the data path did not go to vhost-net"
	else
		grep -q 'data path in vhost-net' "$_out" &&
			lab_fail "vhost=off: the data path went to vhost-net"
	fi
	lab_expect_sandboxed "$_out"
	_g=$(tr -d '\r' <"$_out" | sed -n 's/^net-tap: g2h md5 //p' | head -1)
	_got=$(md5sum <"$LAB_TMP/g2h.bin" | cut -c1-32)
	[ "$(wc -c <"$LAB_TMP/g2h.bin")" = 33554432 ] ||
		lab_fail "vhost=$_vh: the host received $(wc -c <"$LAB_TMP/g2h.bin") bytes from the guest, want 33554432"
	[ -n "$_g" ] && [ "$_g" = "$_got" ] ||
		lab_fail "vhost=$_vh: guest->host MD5 differs (guest sent $_g, host got $_got)"
	_h=$(tr -d '\r' <"$_out" | sed -n 's/^net-tap: h2g md5 \([0-9a-f]*\) .*/\1/p' | head -1)
	[ "$_h" = "$h2g_md5" ] ||
		lab_fail "vhost=$_vh: host->guest MD5 differs (host sent $h2g_md5, guest got ${_h:-nothing})"
	_gs=$(tr -d '\r' <"$_out" | sed -n 's/^net-tap: g2h seconds //p' | head -1)
	_hs=$(tr -d '\r' <"$_out" | sed -n 's/^net-tap: h2g seconds //p' | head -1)
	echo "net-tap: vhost=$_vh: 32 MiB guest->host in ${_gs}s, host->guest in ${_hs}s, MD5s match"
	lab_data "vhost=$_vh g2h_s=$_gs h2g_s=$_hs" \
		"g2h_MiBps=$(awk "BEGIN { if ($_gs > 0) printf \"%.1f\", 32 / $_gs }")" \
		"h2g_MiBps=$(awk "BEGIN { if ($_hs > 0) printf \"%.1f\", 32 / $_hs }")"
	if [ "$_mode" = persistent ]; then
		[ -e "/sys/class/net/$_tap" ] || lab_fail "the persistent tap $_tap went away"
		tunctl -d "$_tap" >/dev/null 2>&1 || ip tuntap del dev "$_tap" mode tap
	else
		sleep 1
		[ -e "/sys/class/net/$_tap" ] && lab_fail "vireo-vmm left the tap $_tap it created behind"
	fi
	rm -f "$LAB_TMP/g2h.bin"
}

if [ -c /dev/vhost-net ]; then
	nt_run on vtap0 10.77.1 create
else
	lab_fail "no /dev/vhost-net in the outer VM (vhost_net module?)"
fi
nt_run off vtap1 10.77.2 persistent

# Two devices on taps vireo-vmm creates (the first multi-queue).
for t in vtap2:10.77.3.1 vtap3:10.77.4.1; do
	( n=0
	  while [ ! -e "/sys/class/net/${t%%:*}" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
	  nt_hostaddr "${t%%:*}" "${t#*:}" ) &
done
LAB_VMM_ARGS="--verbose --net tap=vtap2,queues=2 --net tap=vtap3,vhost=off,queues=2,id=second"
lab_boot vireo "$LAB_INNER_CMDLINE vireo.run=net-tap vireo.netquick vireo.netip=10.77.3.2 vireo.nethost=10.77.3.1 vireo.net2ip=10.77.4.2 vireo.net2host=10.77.4.1" 300 ||
	lab_fail "two --net devices: no VIREO-BOOT-OK"
lab_expect "$LAB_TMP/vireo.out" '^net-tap: ok \(quick\)' "two --net devices: the inner scenario did not report ok"
[ "$(grep -c 'virtio-net net0: data path in vhost-net' "$LAB_TMP/vireo.out")" -ge 2 ] ||
	lab_fail "two --net devices: vhost-net was not started again after the driver reset"
[ "$LAB_GUEST_EXIT" = 0 ] || lab_fail "two --net devices: inner net-tap exited with '${LAB_GUEST_EXIT:-none}'"
grep -q 'virtio-net net0: data path in vhost-net' "$LAB_TMP/vireo.out" ||
	lab_fail "two --net devices: the multi-queue device did not use vhost-net"
sleep 1
[ -e /sys/class/net/vtap2 ] && lab_fail "vireo-vmm left the multi-queue tap vtap2 it created behind"
[ -e /sys/class/net/vtap3 ] && lab_fail "vireo-vmm left the tap vtap3 it created behind"
lab_expect_sandboxed "$LAB_TMP/vireo.out"
echo "net-tap: ok: vhost on and off, 32 MiB each way, ping; two devices, one with 2 queue pairs; sandboxed"
