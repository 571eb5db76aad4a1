# Benchmark (lab): TCP throughput between the inner guest and the lab host
# (the outer VM) with iperf3, per VMM, one row per BENCH_NET_MODE:
#   vhost  a tap, vhost-net on both sides: QEMU -netdev tap,vhost=on
#          against vireo-vmm --net tap=,vhost=on
#   own    a tap, vhost off on both sides: QEMU's own data path against
#          vireo-vmm's (--net tap=,vhost=off)
#   user   user-mode networking (libslirp) on both sides: QEMU -netdev
#          user against vireo-vmm --net user; the server is reached
#          through 10.0.2.2, the lab host's loopback
#   microvm  QEMU -M microvm,pcie=on with virtio-net-pci (the same
#            transport as vireo-vmm's)
#   vireo    vireo-vmm --net ...
# The guest (bench/lab/inner/net.sh) runs iperf3 -c guest->host, then -R
# host->guest, BENCH_NET_SECONDS each (default 5). Needs the iperf3
# archive: bench.py passes build/fixtures/bench-iperf3.cpio with run.sh
# --file; it is appended to the inner initramfs and unpacked here for the
# server. Env: BENCH_SIDES, BENCH_RUNS (default 5), BENCH_WARMUP (default
# 0), BENCH_NET_MODE (vhost, own, user), BENCH_NET_SECONDS.
# Reports "LAB-DATA side=NAME run=I g2h=Mbit/s h2g=Mbit/s".
# lab-timeout: 1500
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
sides=${BENCH_SIDES:-microvm vireo}
runs=${BENCH_RUNS:-5}
warm=${BENCH_WARMUP:-0}
mode=${BENCH_NET_MODE:-vhost}
secs=${BENCH_NET_SECONDS:-5}
extra=${LAB_FILES:-/nonexistent}/bench-iperf3.cpio
[ -f "$extra" ] || lab_fail "no $extra (run through bench/bench.py net-*, which builds and passes it)"
case "$mode" in vhost | own | user) ;; *) lab_fail "BENCH_NET_MODE '$mode': vhost, own or user" ;; esac

# The server: the archive's iperf3 with its own libraries.
srv=$LAB_TMP/iperf3-root
mkdir -p "$srv"
(cd "$srv" && cpio -id <"$extra" 2>/dev/null) || lab_fail "cannot unpack $extra"
libs=$srv/lib/x86_64-linux-gnu:$srv/usr/lib/x86_64-linux-gnu
LD_LIBRARY_PATH=$libs "$srv/usr/bin/iperf3" -s >"$LAB_TMP/iperf3-server.log" 2>&1 &
server=$!
sleep 1
kill -0 $server 2>/dev/null || { cat "$LAB_TMP/iperf3-server.log"; lab_fail "the iperf3 server did not start"; }

initrd=$LAB_TMP/initrd-iperf3.cpio
cp "$LAB_INNER_INITRD" "$initrd" || lab_fail "cannot copy $LAB_INNER_INITRD"
pad=$(((4 - $(wc -c <"$initrd") % 4) % 4))
[ $pad -eq 0 ] || head -c $pad /dev/zero >>"$initrd"
cat "$extra" >>"$initrd" || lab_fail "cannot append $extra"
export LAB_INNER_INITRD=$initrd LAB_INNER_MEM=512

tap=btap0
cmdline="$LAB_INNER_CMDLINE vireo.run=net bench.net_seconds=$secs"
if [ "$mode" = user ]; then
	cmdline="$cmdline bench.net_mode=user"
else
	cmdline="$cmdline bench.net_mode=tap bench.net_ip=10.88.0.2 bench.net_host=10.88.0.1"
fi
vh=on
[ "$mode" = own ] && vh=off
i=$((1 - warm))
while [ $i -le "$runs" ]; do
	for side in $sides; do
		case "$side.$mode" in
		microvm.user) LAB_VMM_ARGS="-machine pcie=on -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=" ;;
		microvm.*) LAB_VMM_ARGS="-machine pcie=on -netdev tap,id=n0,ifname=$tap,script=no,downscript=no,vhost=$vh -device virtio-net-pci,netdev=n0,romfile=" ;;
		vireo.user) LAB_VMM_ARGS="--net user" ;;
		vireo.*) LAB_VMM_ARGS="--net tap=$tap,vhost=$vh" ;;
		*) lab_fail "unknown side '$side' (microvm or vireo)" ;;
		esac
		if [ "$mode" != user ]; then
			# Both VMMs create the tap: give the host's end its address
			# once it appears.
			( n=0
			  while [ ! -e "/sys/class/net/$tap" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
			  ip addr add 10.88.0.1/24 dev "$tap" && ip link set "$tap" up ) &
			waiter=$!
		fi
		lab_boot "$side" "$cmdline" 300 >/dev/null ||
			{ tail -n 30 "$LAB_TMP/$side.out"; lab_fail "$side run $i: no VIREO-BOOT-OK within 300 s"; }
		# Not a bare wait: that would wait for the iperf3 server too.
		[ -n "${waiter:-}" ] && wait "$waiter" 2>/dev/null
		waiter=
		line=$(tr -d '\r' <"$LAB_TMP/$side.out" | grep '^NET ' | head -1)
		if [ "$LAB_GUEST_EXIT" != 0 ] || [ -z "$line" ]; then
			tail -n 30 "$LAB_TMP/$side.out"
			lab_fail "$side run $i: the inner net scenario exited '${LAB_GUEST_EXIT:-never}' (${line:-no NET line})"
		fi
		[ $i -ge 1 ] && lab_data "side=$side run=$i ${line#NET }"
		echo "$side ($mode) run $i: ${line#NET }"
		n=0
		while [ -e "/sys/class/net/$tap" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
	done
	i=$((i + 1))
done
kill $server 2>/dev/null
