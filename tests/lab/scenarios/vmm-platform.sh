# What the real kernel makes of vireo-vmm's platform (1 vCPU; vmm-smp2
# boots 2, which in the lab meet the emulator's own faults more often): the ACPI
# tables parse without errors, the 16550A, RTC, PCI host bridge (ECAM
# reserved in e820), kvm-clock and the TSC-deadline LAPIC timer are found,
# and no interrupt is reported as unhandled. The kernel's log is read with
# dmesg after boot, not printed on the console while it boots: in the lab,
# 2-vCPU boots that print the whole log on COM1 meet the emulated CPU's
# faults several times as often (docs/notes/lab.md).
# lab-timeout: 150
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
s=$(printf '%s\n' 'dmesg' 'cat /proc/interrupts' | base64 | tr -d '\n')
lab_boot vireo "$LAB_INNER_CMDLINE vireo.notimer vireo.sh=$s" 120 ||
	lab_fail "no VIREO-BOOT-OK"
f=$LAB_TMP/vireo.out
if grep -Eq 'ACPI (BIOS )?Error|ACPI Exception|nobody cared|irq [0-9]+: nobody|MMCONFIG .* not reserved' "$f"; then
	grep -E 'ACPI (BIOS )?Error|ACPI Exception|nobody cared|not reserved' "$f" | head -5
	lab_fail "the kernel complained about the platform (see above)"
fi
lab_expect "$f" 'ttyS0 at I/O 0x3f8 \(irq = 4.*is a 16550A' "COM1 not found as a 16550A on IRQ 4"
lab_expect "$f" 'rtc_cmos .*setting system clock to 20[0-9][0-9]-' "the RTC did not set the clock"
lab_expect "$f" 'PCI: MMCONFIG at \[mem 0xe0000000-0xe00fffff\] reserved' "ECAM not announced and reserved"
lab_expect "$f" 'pci 0000:00:00.0: \[1b36:0008\]' "the PCI host bridge was not enumerated"
lab_expect "$f" 'clocksource: Switched to clocksource kvm-clock' "not on kvm-clock"
lab_expect "$f" 'TSC deadline timer available' "no TSC-deadline timer"
lab_expect "$f" 'IO-APIC +4-edge +ttyS0' "COM1's interrupt does not go through the I/O APIC"
lab_expect "$f" 'IO-APIC +9-fasteoi +acpi' "the SCI is not a level interrupt on IRQ 9"
