# Inner scenario: stay up doing nothing for vireo.idle=SECONDS (default 60),
# e.g. to wait for the ACPI power button; exits 0 if nothing stopped it.
# Before idling it reports what the power button needs: the ACPI "Power
# Button" input device, its event node, acpid, and the SCI line.
secs=60
for arg in $(cat /proc/cmdline); do
	case "$arg" in vireo.idle=*) secs=${arg#vireo.idle=} ;; esac
done
btn=$(grep -A4 'Name="Power Button"' /proc/bus/input/devices | sed -n 's/^H: Handlers=//p' | head -1)
echo "idle: power button handlers: ${btn:-none}"
echo "idle: acpid: $(pidof acpid || echo none)"
echo "idle: sci: $(grep -m1 ' acpi$' /proc/interrupts | tr -s ' ')"
echo "idle: ready, up for $secs s"
sleep "$secs"
echo "idle: done after $secs s"
