# lab-timeout: 20
# Harness self-test (tests/lab/stall-retry-test.sh): as emulator-retry, but
# the retry meets the lab emulator's fault again, which fails the scenario
# (no third try); it is still counted as retried.
. "$LAB_SCENARIOS/lib.sh"
vr=$(lab_svm_run)
[ -n "$vr" ] || lab_fail "no __svm_vcpu_run in /proc/kallsyms (outer mode only)"
printf '  walk rip %s: pml4e table at gpa 0x1613c2000: outside guest RAM\n' \
	"$(lab_svm_run_plus "$vr" 0x9c)" >"$LAB_TMP/fake.out"
: >"$LAB_TMP/fake.trace"
lab_emulator_retry fake 256 1 || lab_fail "the first run's fault was not retried"
lab_emulator_retry fake 256 2
lab_fail "the retry's fault did not fail the scenario"
