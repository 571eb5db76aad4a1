# SIGTERM ends a running VM cleanly: vireo-vmm exits 143 (128 + SIGTERM)
# within a few seconds and leaves nothing running. Two vCPUs, so a boot
# that meets the lab emulator's own fault (lib.sh, lab_emulator_fault) is
# said so and run once more, as lab_boot does.
# lab-timeout: 270
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
out=$LAB_TMP/vireo.out

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
		if [ $i -ge 1200 ]; then
			kill -9 $pid
			wait $pid
			why="no marker after 120 s"
			return 1
		fi
		sleep 0.1
	done
	kill -TERM $pid
	i=0
	while kill -0 $pid 2>/dev/null; do
		i=$((i + 1))
		if [ $i -ge 100 ]; then
			kill -9 $pid
			wait $pid
			why="vireo-vmm still running 10 s after SIGTERM"
			return 1
		fi
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
	if [ $try -eq 1 ] && lab_emulator_fault "$out" "$LAB_TMP/vireo.trace"; then
		echo "LAB-WARN $LAB_NAME: lab emulator fault (a vCPU of vireo resumed with the outer host's state); booting again"
		cp "$out" "$LAB_TMP/vireo.emulator-fault.out"
		try=2
		continue
	fi
	tr -d '\r' <"$out" | tail -5
	lab_fail "$why"
done
lab_trace_off "$LAB_TMP/vireo.trace"
