# --on-reboot restart: the guest's reboot builds a fresh VM that boots the
# fixture again (a second marker); SIGTERM then ends it with status 143.
# lab-timeout: 180
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
s=$(printf '%s\n' 'echo REBOOTING' 'reboot -f' 'sleep 10' | base64 | tr -d '\n')
out=$LAB_TMP/out
vireo-vmm --on-reboot restart --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" \
	--cmdline "$LAB_INNER_CMDLINE vireo.notimer vireo.sh=$s" --memory 256M \
	</dev/null >"$out" 2>&1 &
pid=$!
i=0
until [ "$(grep -c VIREO-BOOT-OK "$out")" -ge 2 ]; do
	i=$((i + 1)); [ $i -lt 1500 ] || { kill -9 $pid; tr -d '\r' <"$out" | tail; lab_fail "no second boot after 150 s"; }
	kill -0 $pid 2>/dev/null || { tr -d '\r' <"$out" | tail; lab_fail "vireo-vmm exited instead of restarting"; }
	sleep 0.1
done
lab_expect "$out" 'guest rebooted: starting it again' "no restart message"
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ] || lab_fail "vireo-vmm exited $rc after SIGTERM (want 143)"
