# A guest that never finishes: at lab_boot's deadline vireo-vmm is asked for
# its state (lab-marker-time -Q sends SIGQUIT) before the kill, and each
# vCPU's dump walks RIP and RSP through the real kernel's page tables to
# guest RAM. Here the guest's shell spins forever after the marker.
# lab-timeout: 120
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
s=$(printf '%s\n' 'echo SPINNING' 'while :; do :; done' | base64 | tr -d '\n')
LAB_VMM_ARGS="--cpus 2" lab_boot vireo "$LAB_INNER_CMDLINE vireo.notimer vireo.sh=$s" 40 >/dev/null 2>&1
f=$LAB_TMP/vireo.out
grep -a -E "state \\(SIGQUIT\\)|^  (rip|walk) " "$f"
lab_expect "$f" '^SPINNING' "the guest did not reach its spinning script"
lab_expect "$f" '^MARKER-TIMEOUT 40' "the run did not end at its deadline"
for c in 0 1; do
	lab_expect "$f" "vCPU $c state \\(SIGQUIT\\)" "vCPU $c printed no state at the deadline"
done
n=$(grep -c -E '^  walk (rip|rsp) [0-9a-f]{16}: (pml4e|pml5e) 0x[0-9a-f]+ .*-> gpa 0x[0-9a-f]+( \((2 MiB|1 GiB) page\))?$' "$f")
[ "$n" -ge 4 ] || { grep -a 'walk' "$f"; lab_fail "want RIP and RSP of both vCPUs walked to guest RAM, got $n such lines"; }
if grep -a -E '^  walk (rip|rsp) .*(outside guest RAM|not present)' "$f"; then
	lab_fail "a running vCPU's RIP or RSP did not walk to guest RAM"
fi
# The kernel's own addresses resolve too (an idle vCPU, or the spinning one between ticks).
lab_expect "$f" '^  walk (rip|rsp) ffff[0-9a-f]{12}: ' "no kernel address among the walks"
# lab_boot's check for the lab's own emulator fault (a vCPU resumed with the
# outer host's state, lib.sh) does not take this guest's dump for one, and
# does recognise one: RIP just after VMRUN in the outer kernel's
# __svm_vcpu_run, CR3 outside guest RAM (as in the hangs of 2026-12-05).
if lab_emulator_fault "$f"; then
	lab_fail "lab_emulator_fault took a healthy guest's dump for the emulator's fault"
fi
if [ "$LAB_MODE" = outer ]; then
	vr=$(lab_svm_run)
	[ -n "$vr" ] || lab_fail "no __svm_vcpu_run in the outer kernel's /proc/kallsyms"
	printf '  walk rip %s: pml4e table at gpa 0x1613c2000: outside guest RAM\n' \
		"$(lab_svm_run_plus "$vr" 0x9c)" >"$LAB_TMP/fault.txt"
	cat "$LAB_TMP/fault.txt"
	lab_emulator_fault "$LAB_TMP/fault.txt" ||
		lab_fail "lab_emulator_fault did not recognise a vCPU at __svm_vcpu_run+0x9c with CR3 outside RAM"
fi
