# The inner fixture with its console on this terminal and no vireo.run, so
# its init starts a shell: what scripts/boot.sh shows. Run through
# `tests/lab/run.sh --shell` (on the host when it has vmx/svm, else inside
# the lab's outer VM). BOOT_VMM picks the VMM: vireo (default) or microvm.
. "$LAB_SCENARIOS/lib.sh"
if [ ! -c /dev/kvm ]; then
	echo "boot: no /dev/kvm here ($LAB_MODE); cannot start the guest"
	exit 1
fi
echo "boot: starting the guest under ${BOOT_VMM:-vireo}; in its shell, 'poweroff' ends it"
lab_vmm_exec "${BOOT_VMM:-vireo}" "$LAB_INNER_CMDLINE"
