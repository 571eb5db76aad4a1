# A real kernel's triple fault. With reboot=t, Linux reboots by loading an
# empty IDT and raising an exception the vCPU then cannot deliver: vireo-vmm
# must end with its triple-fault error and the vCPUs' dumps. In the lab the
# outer kernel's kvm_exit record (lib.sh, lab_trace_on) keeps the shutdown
# exit with the RIP it came at, which KVM's reset of the vCPU hides from the
# dump; lab_emulator_fault must not take that record (or the dumps) for the
# emulator's own fault, and must take each of its three signs for one: an
# exit at the outer __svm_vcpu_run's VMRUN resume point, a page-table walk
# that met a guest-physical address outside guest RAM, and a triple fault
# delivering a page fault from an instruction fetch in the kernel's text
# (shapes as recorded in the lab on 2026-12-06).
# lab-timeout: 120
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
s=$(printf '%s\n' 'echo TRIPLE-FAULTING' 'reboot -f' 'sleep 100' | base64 | tr -d '\n')
lab_boot vireo "$LAB_INNER_CMDLINE reboot=t vireo.notimer vireo.sh=$s" 90 ||
	lab_fail "no VIREO-BOOT-OK"
f=$LAB_TMP/vireo.out
lab_expect "$f" '^TRIPLE-FAULTING' "the guest did not run its script"
lab_expect "$f" '^MARKER-EXIT 1$' "vireo-vmm did not exit 1"
lab_expect "$f" 'vireo-vmm: error: vCPU 0: triple fault \(KVM_EXIT_SHUTDOWN\): the guest crashed' \
	"no triple-fault error from vireo-vmm"
lab_expect "$f" '^  rip ' "no register dump"
if lab_emulator_fault "$f" "$LAB_TMP/vireo.trace"; then
	lab_fail "lab_emulator_fault took a guest's own triple fault for the emulator's fault"
fi
[ "$LAB_MODE" = outer ] || exit 0
t=$LAB_TMP/vireo.trace
cat "$t"
# One shutdown exit, at a RIP in the guest kernel's text (the instruction
# that raised the undeliverable exception).
n=$(grep -c -E 'kvm_exit: vcpu 0 reason shutdown rip 0xffffffff[89a-f][0-9a-f]{7} ' "$t")
[ "$n" -eq 1 ] || lab_fail "want 1 shutdown exit at a kernel RIP in the outer kernel's record, got $n"
n=$(grep -c -v 'reason shutdown' "$t")
[ "$n" -eq 0 ] || lab_fail "the outer kernel's record kept $n exits other than the shutdown from a healthy guest"
vr=$(lab_svm_run)
[ -n "$vr" ] || lab_fail "no __svm_vcpu_run in the outer kernel's /proc/kallsyms"
printf ' vireo-vmm-1-142 [001] d.... 61.000000: kvm_exit: vcpu 1 reason npf rip 0x%s info1 0x0000000000000004 info2 0x00000001613c2000 intr_info 0x00000000 error_code 0x00000000\n' \
	"$(lab_svm_run_plus "$vr" 0x9c)" >"$LAB_TMP/fault.trace"
cat "$LAB_TMP/fault.trace"
lab_emulator_fault "$LAB_TMP/vireo.out" "$LAB_TMP/fault.trace" ||
	lab_fail "lab_emulator_fault did not recognise an exit at __svm_vcpu_run+0x9c in the outer kernel's record"
printf ' vcpu1-489 [000] ..... 177.600000: kvm_exit: vcpu 1 reason npf rip 0xffffffffac4c2277 info1 0x0000000200000004 info2 0x00000001613c2000 intr_info 0x00000000 error_code 0x00000000\n' \
	>"$LAB_TMP/walk.trace"
cat "$LAB_TMP/walk.trace"
lab_emulator_fault "$LAB_TMP/vireo.out" "$LAB_TMP/walk.trace" ||
	lab_fail "lab_emulator_fault did not recognise a page-table walk outside guest RAM in the outer kernel's record"
for ec in 00000010 00000014 00000011; do
	printf ' vcpu1-489 [000] ..... 177.617146: kvm_exit: vcpu 1 reason shutdown rip 0xffffffffac4c2277 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x80000b0e error_code 0x%s\n' \
		"$ec" >"$LAB_TMP/fetch-$ec.trace"
done
cat "$LAB_TMP/fetch-00000010.trace"
lab_emulator_fault "$LAB_TMP/vireo.out" "$LAB_TMP/fetch-00000010.trace" ||
	lab_fail "lab_emulator_fault did not recognise a triple fault delivering a kernel fetch's page fault"
for ec in 00000014 00000011; do
	if lab_emulator_fault "$LAB_TMP/vireo.out" "$LAB_TMP/fetch-$ec.trace"; then
		lab_fail "lab_emulator_fault took a triple fault with page-fault error code 0x$ec (user or present) for the emulator's"
	fi
done
