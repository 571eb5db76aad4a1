# The ACPI power button shuts a real Linux guest down gracefully: the inner
# fixture idles (vireo.run=idle); without a press it keeps running (negative
# control, 5 s); SIGUSR2 to vireo-vmm presses the fixed-hardware power
# button, the guest takes the SCI (IRQ 9 "acpi" count rises), its ACPI
# button driver reports KEY_POWER, busybox acpid runs the fixture's handler
# (VIREO-POWER-BUTTON, sync, unmount, poweroff), and vireo-vmm exits 0 on
# the guest's ACPI S5 within 30 s. QEMU microvm's system_powerdown is run
# the same way as the reference (its guest must shut down the same way).
# lab-timeout: 300
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
cmdline="$LAB_INNER_CMDLINE vireo.notimer vireo.run=idle vireo.idle=150"

# pb_wait FILE PATTERN SECONDS: wait for a line matching PATTERN in FILE while
# $pid runs; 1 if it does not come in time, 2 if $pid exited first.
pb_wait() {
	_i=0
	until tr -d '\r' <"$1" | grep -Eq "$2"; do
		kill -0 "$pid" 2>/dev/null || return 2
		_i=$((_i + 1)); [ $_i -lt $(($3 * 10)) ] || return 1
		sleep 0.1
	done
}

# pb_exit SECONDS: wait for $pid to exit; its status in $rc, 1 if too slow.
pb_exit() {
	_i=0
	while kill -0 "$pid" 2>/dev/null; do
		_i=$((_i + 1)); [ $_i -lt $(($1 * 10)) ] || return 1
		sleep 0.1
	done
	wait "$pid"
	rc=$?
}

# pb_check VMM OUT [sci]: the guest's side of a press, as it printed it; with
# "sci", also that the press came as the fixed-hardware SCI (vireo-vmm; QEMU
# microvm is hardware-reduced ACPI and signals its button through a GED
# device's interrupt instead).
pb_check() {
	_o=$LAB_TMP/$1.clean
	tr -d '\r' <"$2" >"$_o"
	cat "$_o"
	lab_expect "$_o" '^VIREO-POWER-BUTTON ' "$1: the guest did not run its power-button handler"
	lab_expect "$_o" '^VIREO-POWER-OFF$' "$1: the guest's handler did not reach poweroff"
	! grep -q '^VIREO-SCENARIO-EXIT' "$_o" ||
		lab_fail "$1: the idle scenario ended on its own instead of the guest shutting down"
	[ "${3:-}" = sci ] || return 0
	# SCI: "idle: sci: 9: COUNT ... acpi" before, "VIREO-POWER-BUTTON sci: 9: COUNT ..." after.
	_before=$(sed -n 's/^idle: sci: *//p' "$_o" | awk '{print $1, $2}')
	_after=$(sed -n 's/^VIREO-POWER-BUTTON sci: *//p' "$_o" | awk '{print $1, $2}')
	echo "$1: acpi interrupt line before the press: '$_before', at the handler: '$_after'"
	if [ -z "$_before" ] || [ -z "$_after" ]; then
		lab_fail "$1: no 'acpi' line in the guest's /proc/interrupts"
	fi
	[ "${_after%% *}" = "${_before%% *}" ] || lab_fail "$1: acpi interrupt moved from ${_before%% *} to ${_after%% *}"
	[ "${_after#* }" -gt "${_before#* }" ] ||
		lab_fail "$1: the acpi interrupt count did not rise on the press (${_before#* } -> ${_after#* })"
}

# --- vireo-vmm ---------------------------------------------------------------
out=$LAB_TMP/vireo.out
vireo-vmm --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" \
	--cmdline "$cmdline" --memory 256M --cpus 1 </dev/null >"$out" 2>&1 &
pid=$!
pb_wait "$out" '^idle: ready' 120 || { kill -9 $pid; tr -d '\r' <"$out"; lab_fail "vireo: the idle scenario never became ready"; }
tr -d '\r' <"$out" | grep -q '^idle: power button handlers: .*event' ||
	{ kill -9 $pid; tr -d '\r' <"$out"; lab_fail "vireo: the guest has no Power Button input device with an event handler"; }
tr -d '\r' <"$out" | grep -q '^idle: acpid: [0-9]' ||
	{ kill -9 $pid; tr -d '\r' <"$out"; lab_fail "vireo: acpid is not running in the guest"; }
# Negative control: no press, the guest stays up and handles nothing.
sleep 5
kill -0 $pid 2>/dev/null || { tr -d '\r' <"$out"; lab_fail "vireo: the guest stopped within 5 s without a power-button press"; }
! tr -d '\r' <"$out" | grep -q 'VIREO-POWER-BUTTON' ||
	{ kill -9 $pid; lab_fail "vireo: power-button handler ran without a press"; }
echo "vireo: still running 5 s after ready without a press"
kill -USR2 $pid
pb_exit 30 || { kill -9 $pid; tr -d '\r' <"$out"; lab_fail "vireo: vireo-vmm still running 30 s after SIGUSR2"; }
pb_check vireo "$out" sci
[ "$rc" -eq 0 ] || lab_fail "vireo: vireo-vmm exited $rc after the guest's power-off (want 0)"
echo "vireo: vireo-vmm exited 0 after the press"

# --- QEMU microvm (reference): system_powerdown on its monitor ---------------
out=$LAB_TMP/microvm.out
mkfifo "$LAB_TMP/mon.in" "$LAB_TMP/mon.out"
(
	# shellcheck disable=SC2034 # read by lab_vmm_exec
	LAB_VMM_ARGS="-monitor pipe:$LAB_TMP/mon"
	lab_vmm_exec microvm "$cmdline"
) </dev/null >"$out" 2>&1 &
pid=$!
pb_wait "$out" '^idle: ready' 120 || { kill -9 $pid; tr -d '\r' <"$out"; lab_fail "microvm: the idle scenario never became ready"; }
sleep 5
kill -0 $pid 2>/dev/null || { tr -d '\r' <"$out"; lab_fail "microvm: the guest stopped within 5 s without a power-button press"; }
echo system_powerdown >"$LAB_TMP/mon.in"
pb_exit 30 || { kill -9 $pid; tr -d '\r' <"$out"; lab_fail "microvm: QEMU still running 30 s after system_powerdown"; }
pb_check microvm "$out"
[ "$rc" -eq 0 ] || lab_fail "microvm: QEMU exited $rc after the guest's power-off (want 0)"
echo "microvm: QEMU exited 0 after system_powerdown"
