# vireo-vmm boots the inner fixture (1 vCPU, 256 MiB) to its marker, the
# inner smoke scenario passes, the boot timer reports, and the guest's
# poweroff ends vireo-vmm with status 0.
# lab-timeout: 150
# lab-sample: yes
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
lab_boot vireo "$LAB_INNER_CMDLINE vireo.run=smoke" 120 ||
	lab_fail "no VIREO-BOOT-OK from the inner fixture under vireo-vmm"
lab_expect "$LAB_TMP/vireo.out" '^smoke: ok:' "the inner smoke scenario did not report ok"
lab_expect "$LAB_TMP/vireo.out" 'vireo-vmm: boot-timer: [0-9]+ ms since start' "no boot-timer line"
[ "$LAB_GUEST_EXIT" = 0 ] || lab_fail "inner smoke exited with '${LAB_GUEST_EXIT:-none}' (want 0)"
lab_expect "$LAB_TMP/vireo.out" '^MARKER-EXIT 0$' "vireo-vmm did not exit 0 after the guest's poweroff"
lab_data "vireo-marker-ms $LAB_MARKER_MS"
