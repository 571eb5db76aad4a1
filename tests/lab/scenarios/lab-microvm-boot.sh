# Lab self-test: the inner fixture boots to its marker under a reference VMM
# (QEMU's microvm machine with KVM), runs its smoke scenario and powers off.
# lab-timeout: 150
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
lab_boot microvm "$LAB_INNER_CMDLINE vireo.run=smoke" 120 ||
	lab_fail "no VIREO-BOOT-OK from the inner fixture under QEMU microvm"
lab_expect "$LAB_TMP/microvm.out" '^smoke: ok:' "the inner smoke scenario did not report ok"
[ "$LAB_GUEST_EXIT" = 0 ] ||
	lab_fail "inner scenario smoke exited with status '${LAB_GUEST_EXIT:-none}' (want 0)"
echo "lab-microvm-boot: marker after $LAB_MARKER_MS ms"
