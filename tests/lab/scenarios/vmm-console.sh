# The serial console works both ways: a command typed into the guest's
# interactive shell runs and its output comes back; `poweroff` typed on
# the console ends vireo-vmm with status 0.
# lab-timeout: 150
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
out=$LAB_TMP/console.out
mkfifo "$LAB_TMP/in"
vireo-vmm --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" \
	--cmdline "$LAB_INNER_CMDLINE vireo.notimer" --memory 256M <"$LAB_TMP/in" >"$out" 2>&1 &
pid=$!
exec 3>"$LAB_TMP/in"
i=0
until grep -q 'interactive shell' "$out"; do
	i=$((i + 1)); [ $i -lt 1200 ] || { kill $pid; lab_fail "no interactive shell after 120 s"; }
	kill -0 $pid 2>/dev/null || lab_fail "vireo-vmm exited before the shell came"
	sleep 0.1
done
sleep 1
echo 'echo TYPED-$((6 * 7))' >&3
i=0
until grep -q 'TYPED-42' "$out"; do
	i=$((i + 1)); [ $i -lt 300 ] || { kill $pid; tr -d '\r' <"$out" | tail; lab_fail "typed command's output did not come back"; }
	sleep 0.1
done
echo 'poweroff' >&3
wait $pid
rc=$?
exec 3>&-
tr -d '\r' <"$out" | tail -5
[ $rc -eq 0 ] || lab_fail "vireo-vmm exited $rc after the guest's poweroff (want 0)"
