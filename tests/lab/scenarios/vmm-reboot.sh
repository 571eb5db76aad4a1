# A guest reboot ends vireo-vmm with status 3 (default --on-reboot exit).
# lab-timeout: 150
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
s=$(printf '%s\n' 'echo REBOOTING' 'reboot' 'sleep 100' | base64 | tr -d '\n')
timeout 60 vireo-vmm --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" \
	--cmdline "$LAB_INNER_CMDLINE vireo.notimer vireo.sh=$s" --memory 256M \
	</dev/null >"$LAB_TMP/out" 2>&1
rc=$?
tr -d '\r' <"$LAB_TMP/out" | tail -5
lab_expect "$LAB_TMP/out" REBOOTING "the guest did not run its reboot script"
[ $rc -eq 3 ] || lab_fail "vireo-vmm exited $rc after the guest's reboot (want 3)"
