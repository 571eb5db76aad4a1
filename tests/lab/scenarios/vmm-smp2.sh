# Two vCPUs: the guest's /proc/cpuinfo shows 2 processors (ACPI MADT, INIT/SIPI).
# lab-timeout: 150
# lab-sample: yes
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
s=$(printf '%s\n' 'echo "CPUS $(grep -c ^processor /proc/cpuinfo)"' 'echo "ONLINE $(cat /sys/devices/system/cpu/online)"' | base64 | tr -d '\n')
LAB_VMM_ARGS="--cpus 2" lab_boot vireo "$LAB_INNER_CMDLINE vireo.sh=$s" 120 ||
	lab_fail "no VIREO-BOOT-OK with --cpus 2"
lab_expect "$LAB_TMP/vireo.out" '^CPUS 2' "guest /proc/cpuinfo does not show 2 processors"
lab_expect "$LAB_TMP/vireo.out" '^ONLINE 0-1' "CPU 1 not online"
lab_expect "$LAB_TMP/vireo.out" '^MARKER-EXIT 0$' "vireo-vmm did not exit 0"
