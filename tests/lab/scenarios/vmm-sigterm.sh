# SIGTERM ends a running VM cleanly: vireo-vmm exits 143 (128 + SIGTERM)
# within a few seconds and leaves nothing running. Two vCPUs, so a boot
# that meets the lab emulator's own fault (lib.sh, lab_emulator_fault) is
# run once more, as lab_boot does (lab_emulator_retry).
# lab-timeout: 270
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
out=$LAB_TMP/vireo.out

# give_up REASON: kill vireo-vmm, reap it, keep REASON in $why; returns 1.
give_up() {
	kill -9 $pid
	wait $pid
	why=$1
	return 1
}

# boot_and_term: 0 when vireo-vmm reached the marker and SIGTERM ended it
# with 143 in time; otherwise 1 with the reason in $why.
boot_and_term() {
	lab_trace_on vireo 256
	vireo-vmm --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" \
		--cmdline "$LAB_INNER_CMDLINE vireo.notimer" --memory 256M --cpus 2 \
		</dev/null >"$out" 2>&1 &
	pid=$!
	i=0
	until grep -q VIREO-BOOT-OK "$out"; do
		if ! kill -0 $pid 2>/dev/null; then
			wait $pid
			why="vireo-vmm exited $? before the marker"
			return 1
		fi
		i=$((i + 1))
		[ $i -lt 1200 ] || give_up "no marker after 120 s" || return 1
		sleep 0.1
	done
	kill -TERM $pid
	i=0
	while kill -0 $pid 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || give_up "vireo-vmm still running 10 s after SIGTERM" || return 1
		sleep 0.1
	done
	wait $pid
	rc=$?
	why="vireo-vmm exited $rc after SIGTERM (want 143)"
	[ $rc -eq 143 ]
}

try=1
until boot_and_term; do
	lab_trace_off "$LAB_TMP/vireo.trace"
	if lab_emulator_retry vireo 256 $try; then
		try=2
		continue
	fi
	tr -d '\r' <"$out" | tail -5
	lab_fail "$why"
done
lab_trace_off "$LAB_TMP/vireo.trace"
