# Benchmark (lab): boot-to-marker wall time of the inner fixture, per VMM.
# Env: BENCH_SIDES  VMMs in run order, e.g. "microvm vireo" (see lab_boot;
#                   vireo-unpack-guest: vireo-vmm --unpack guest)
#      BENCH_RUNS   measured runs per side (default 5)
#      BENCH_WARMUP unmeasured runs per side first (default 1)
#      BENCH_CMDLINE guest kernel command line (default: the lab's,
#                   "$LAB_INNER_CMDLINE", which is quiet)
#      BENCH_SCRUB_MIB before every run, write this many MiB of zeros through
#                   tmpfs and free them (default 1024; 0 = off): see
#                   "Scrubbing" in bench/README.md
# Each round runs every side once, in order (A B A B ...). Reports
# "LAB-DATA side=NAME run=I ms=MS kernel=MS pre=MS idle=MS" per measured run:
# wall time to the marker, the guest's uptime in the marker line, their
# difference (time before the guest's clock) and the guest's idle time. bench/bench.py drives it.
# lab-timeout: 900
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
sides=${BENCH_SIDES:-microvm}
runs=${BENCH_RUNS:-5}
warm=${BENCH_WARMUP:-1}
for side in $sides; do
	case "$side" in
	microvm) command -v qemu-system-x86_64 >/dev/null || lab_fail "no qemu-system-x86_64 here" ;;
	vireo | vireo-unpack-guest)
		command -v vireo-vmm >/dev/null || lab_fail "no vireo-vmm here (build it first)" ;;
	*) lab_fail "unknown side '$side' (microvm, vireo or vireo-unpack-guest)" ;;
	esac
done
scrub=${BENCH_SCRUB_MIB:-1024}
# Rewrite free memory the previous guest used, outside the timed span, so
# that no run pays for stale emulator translations of its predecessor's code.
scrub_memory() {
	[ "$scrub" -gt 0 ] || return 0
	dd if=/dev/zero of=/dev/shm/bench-scrub bs=1M count="$scrub" 2>/dev/null
	rm -f /dev/shm/bench-scrub
}
i=$((1 - warm))
while [ $i -le "$runs" ]; do
	for side in $sides; do
		scrub_memory
		vmm=$side LAB_VMM_ARGS=""
		[ "$side" = vireo-unpack-guest ] && vmm=vireo LAB_VMM_ARGS="--unpack guest"
		lab_boot "$vmm" "${BENCH_CMDLINE:-$LAB_INNER_CMDLINE} vireo.run=poweroff" 120 -k >/dev/null ||
			{ tail -n 20 "$LAB_TMP/$vmm.out"; lab_fail "$side run $i: no VIREO-BOOT-OK within 120 s"; }
		if [ $i -ge 1 ]; then
			up=${LAB_GUEST_UPTIME_MS:-}
			[ -n "$up" ] || lab_fail "$side run $i: no uptime in the marker line"
			lab_data "side=$side run=$i ms=$LAB_MARKER_MS kernel=$up pre=$((LAB_MARKER_MS - up)) idle=${LAB_GUEST_IDLE_MS:-0}"
		fi
		echo "$side run $i: $LAB_MARKER_MS ms"
	done
	i=$((i + 1))
done
