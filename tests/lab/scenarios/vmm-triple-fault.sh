# A real kernel's triple fault. With reboot=t, Linux reboots by loading an
# empty IDT and raising an exception the vCPU then cannot deliver: vireo-vmm
# must end with its triple-fault error and the vCPUs' dumps, and lab_boot
# must not take it for the lab emulator's fault (no second boot). In the
# lab the outer kernel's kvm_exit record (lib.sh, lab_trace_on) keeps the
# shutdown exit with the RIP it came at, which KVM's reset of the vCPU
# hides from the dump. Then lab_emulator_fault on synthetic records: it
# takes a nested page fault at the outer __svm_vcpu_run's VMRUN resume
# point on a page-table walk outside guest RAM (RIP and CR3 both the outer
# host's), and nothing that has only one of the two, nor a triple fault at
# a kernel RIP while delivering a page fault (which a bug of our own can
# cause as well as the emulator): such a boot fails.
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
[ ! -e "$LAB_TMP/vireo.emulator-fault.out" ] ||
	lab_fail "lab_boot booted again after the guest's own triple fault (taken for the emulator's fault)"
if lab_emulator_fault "$f" "$LAB_TMP/vireo.trace" 256; then
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
resume=0x$(lab_svm_run_plus "$vr" 0x9c)
# record NAME RIP INFO1 INFO2 [REASON [INTR_INFO ERROR_CODE]]: a synthetic
# record with one kvm_exit line in $LAB_TMP/NAME.trace, shown.
record() {
	printf ' vcpu1-489 [000] ..... 177.617146: kvm_exit: vcpu 1 reason %s rip %s info1 0x%s info2 0x%s intr_info 0x%s error_code 0x%s\n' \
		"${5:-npf}" "$2" "$3" "$4" "${6:-00000000}" "${7:-00000000}" >"$LAB_TMP/$1.trace"
	cat "$LAB_TMP/$1.trace"
}
# Taken: at the resume point, walking the guest's page tables (EXITINFO1
# bit 33) at a GPA outside the 256 MiB guest's RAM (the outer host's PML4).
record emulator "$resume" 0000000200000004 0000000106952ff8
lab_emulator_fault "$f" "$LAB_TMP/emulator.trace" 256 ||
	lab_fail "lab_emulator_fault did not recognise a page-table walk outside guest RAM at __svm_vcpu_run+0x9c"
# Not taken: only one of the two signs.
record resume-only "$resume" 0000000000000004 0000000106952ff8
record resume-in-ram "$resume" 0000000200000004 0000000001234ff8
record walk-only 0xffffffffac4c2277 0000000200000004 00000001613c2000
for r in resume-only resume-in-ram walk-only; do
	if lab_emulator_fault "$f" "$LAB_TMP/$r.trace" 256; then
		lab_fail "lab_emulator_fault took a record with one sign of the emulator's fault ($r) for one"
	fi
done
# Not taken, and the boot is not run again (lab_boot's own decision,
# lab_emulator_retry): a triple fault at a kernel RIP while delivering a
# page fault (EXITINTINFO 0x80000b0e) from an instruction fetch in kernel
# text (error code 0x10), or with the user or present bit set.
cp "$f" "$LAB_TMP/fetch.out"
for ec in 00000010 00000014 00000011; do
	record fetch 0xffffffffac4c2277 0000000000000000 0000000000000000 shutdown 80000b0e "$ec"
	if lab_emulator_retry fetch 256 1; then
		lab_fail "a triple fault at a kernel RIP delivering a page fault (error code 0x$ec) was taken for the emulator's fault"
	fi
done
