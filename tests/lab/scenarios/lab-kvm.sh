# Lab self-test: /dev/kvm works in the lab (a tiny guest of ours runs, with
# port, MMIO and HLT exits checked by kvm-probe).
# lab-timeout: 60
# lab-sample: yes
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
if [ "$LAB_MODE" = outer ]; then
	grep -qw svm /proc/cpuinfo || lab_fail "the outer VM's CPU has no svm flag (is -cpu max given?)"
	grep -q '^kvm_amd ' /proc/modules || lab_fail "kvm_amd is not loaded in the outer VM"
fi
kvm-probe || lab_fail "kvm-probe failed (see its message above)"
