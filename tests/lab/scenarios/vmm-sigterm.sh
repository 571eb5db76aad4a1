# SIGTERM ends a running VM cleanly: vireo-vmm exits 143 (128 + SIGTERM)
# within a few seconds and leaves nothing running.
# lab-timeout: 150
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
out=$LAB_TMP/out
vireo-vmm --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" \
	--cmdline "$LAB_INNER_CMDLINE vireo.notimer" --memory 256M --cpus 2 \
	</dev/null >"$out" 2>&1 &
pid=$!
i=0
until grep -q VIREO-BOOT-OK "$out"; do
	i=$((i + 1)); [ $i -lt 1200 ] || { kill -9 $pid; lab_fail "no marker after 120 s"; }
	sleep 0.1
done
kill -TERM $pid
i=0
while kill -0 $pid 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || { kill -9 $pid; lab_fail "vireo-vmm still running 10 s after SIGTERM"; }
	sleep 0.1
done
wait $pid
rc=$?
[ $rc -eq 143 ] || lab_fail "vireo-vmm exited $rc after SIGTERM (want 143)"
