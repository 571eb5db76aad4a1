# lab-timeout: 20
# Harness self-test (tests/lab/stall-retry-test.sh): a run that met the lab
# emulator's fault (a synthetic vireo-vmm dump with RIP at the outer VMRUN
# resume point and CR3 outside guest RAM) is retried once, the retry is
# clean, the scenario passes and is counted as retried.
. "$LAB_SCENARIOS/lib.sh"
vr=$(lab_svm_run)
[ -n "$vr" ] || lab_fail "no __svm_vcpu_run in /proc/kallsyms (outer mode only)"
printf '  walk rip %s: pml4e table at gpa 0x1613c2000: outside guest RAM\n' \
	"$(lab_svm_run_plus "$vr" 0x9c)" >"$LAB_TMP/fake.out"
: >"$LAB_TMP/fake.trace"
lab_emulator_retry fake 256 1 || lab_fail "the first run's fault was not retried"
: >"$LAB_TMP/fake.out"
if lab_emulator_retry fake 256 2; then
	lab_fail "a clean retry was retried again"
fi
