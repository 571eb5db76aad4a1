# 2 GiB of guest RAM (RAM below the PCI hole only) is all visible to the guest.
# lab-timeout: 150
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
s=$(printf '%s\n' 'echo "MEMKB $(sed -n "s/^MemTotal: *\([0-9]*\) kB/\1/p" /proc/meminfo)"' | base64 | tr -d '\n')
LAB_VMM_ARGS="--memory 2G" lab_boot vireo "$LAB_INNER_CMDLINE vireo.sh=$s" 120 ||
	lab_fail "no VIREO-BOOT-OK with --memory 2G"
kb=$(sed -n 's/^MEMKB \([0-9]*\).*/\1/p' "$LAB_TMP/vireo.out" | head -1)
[ -n "$kb" ] || lab_fail "guest did not report MemTotal"
# The kernel keeps some for itself: expect more than 1.8 GiB.
[ "$kb" -gt 1887436 ] || lab_fail "guest MemTotal is $kb kB with --memory 2G"
lab_expect "$LAB_TMP/vireo.out" '^MARKER-EXIT 0$' "vireo-vmm did not exit 0"
