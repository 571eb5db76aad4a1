# Benchmark (lab): memory overhead of the VMM process, per VMM. The inner
# fixture boots (vireo.run=poweroff: marker, then power-off) with 256 MiB of
# guest RAM; while the VMM runs, every 0.1 s this samples
#   hwm  VmHWM of /proc/PID/status (peak resident set of the whole process)
#   ram  Rss of the guest RAM mapping in /proc/PID/smaps: the mapping whose
#        Size is the guest RAM size (up to 8 MiB more, for alignment), the
#        one with the largest Rss if several (guest RAM the guest touched)
# and keeps the largest of each (both only grow while the guest runs; the
# RAM mapping goes away as the VMM tears the VM down, so the last sample
# may miss it). overhead = hwm - ram: what the VMM itself costs.
# Env: BENCH_SIDES, BENCH_RUNS (default 5), BENCH_WARMUP (default 1).
# Reports "LAB-DATA side=NAME run=I overhead=KiB hwm=KiB ram=KiB".
# lab-timeout: 900
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
sides=${BENCH_SIDES:-microvm vireo}
runs=${BENCH_RUNS:-5}
warm=${BENCH_WARMUP:-1}
mem=${LAB_INNER_MEM:-256}

# sample PID: print "HWM RAM" in KiB, nothing once the process is gone.
sample() {
	_h=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null)
	[ -n "$_h" ] || return 0
	_r=$(awk -v want=$((mem * 1024)) '
		/^[0-9a-f]+-[0-9a-f]+ / { sz = -1; next }
		$1 == "Size:" { sz = $2; next }
		$1 == "Rss:" && sz >= want && sz <= want + 8192 && $2 > best { best = $2 }
		END { print best + 0 }' "/proc/$1/smaps" 2>/dev/null)
	[ -n "$_r" ] && echo "$_h $_r"
}

i=$((1 - warm))
while [ $i -le "$runs" ]; do
	for side in $sides; do
		out=$LAB_TMP/$side.out
		(lab_vmm_exec "$side" "$LAB_INNER_CMDLINE vireo.run=poweroff") </dev/null >"$out" 2>&1 &
		pid=$!
		hwm=0 ram=0 t=0
		# Until it exits: a zombie (not reaped before `wait`) still
		# answers kill -0, so look at its state.
		while [ $t -lt 1200 ]; do
			st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
			case "$st" in "" | Z | X) break ;; esac
			s=$(sample $pid)
			if [ -n "$s" ]; then
				set -- $s
				[ "$1" -gt $hwm ] && hwm=$1
				[ "$2" -gt $ram ] && ram=$2
				[ "$2" -gt 0 ] || cp "/proc/$pid/smaps" "$LAB_TMP/smaps.noram" 2>/dev/null
			fi
			sleep 0.1
			t=$((t + 1))
		done
		kill -9 $pid 2>/dev/null
		wait $pid
		rc=$?
		tr -d '\r' <"$out" | grep -q '^VIREO-BOOT-OK' ||
			{ tail -n 20 "$out"; lab_fail "$side run $i: no VIREO-BOOT-OK (exit status $rc)"; }
		[ $hwm -gt 0 ] || lab_fail "$side run $i: no sample of /proc/$pid"
		[ $ram -gt 0 ] || { grep -B1 '^Size: *[0-9]\{6,\} kB' "$LAB_TMP/smaps.noram"
			lab_fail "$side run $i: no $mem MiB guest RAM mapping in /proc/$pid/smaps"; }
		if [ $i -ge 1 ]; then
			lab_data "side=$side run=$i overhead=$((hwm - ram)) hwm=$hwm ram=$ram"
		fi
		echo "$side run $i: VmHWM $hwm KiB, guest RAM Rss $ram KiB, overhead $((hwm - ram)) KiB (exit $rc)"
	done
	i=$((i + 1))
done
