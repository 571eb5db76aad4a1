# Helpers for lab scenarios (POSIX sh: busybox ash in the outer VM, the
# host's sh in direct mode). A scenario is tests/lab/scenarios/NAME.sh; it
# starts with `. "$LAB_SCENARIOS/lib.sh"`, may declare its time bound with a
# line "# lab-timeout: SECONDS" (default 120), and passes by exiting 0.
#
# The harness provides:
#   LAB_NAME          the scenario's name
#   LAB_MODE          outer (inside the lab's outer VM) or direct (on a host
#                     with vmx/svm)
#   LAB_TMP           a fresh scratch directory (also the working directory)
#   LAB_REASON        write a one-line failure reason here (lab_fail does)
#   LAB_SCENARIOS     the folder holding the scenarios and this file
#   LAB_INNER_KERNEL  the inner fixture's kernel (bzImage)
#   LAB_INNER_INITRD  the inner fixture's initramfs
#   PATH              includes the project's release binaries (vireo-vmm,
#                     kvm-probe, lab-marker-time, ...) and qemu-system-x86_64

# lab_fail REASON...: record why the scenario failed and stop it. If a VMM
# run of this scenario reported an error (vireo-vmm's "error:" line, e.g.
# a vCPU's triple fault), the first one is added to the reason: the output
# shown with a failure is only its tail, after the register dumps. So is
# the first shutdown exit the outer kernel recorded (lab_trace_on): where
# a triple fault happened, which the reset vCPU's own dump no longer shows.
lab_fail() {
	_why="$*"
	_said=$(cat "$LAB_TMP"/*.out 2>/dev/null | tr -d '\r' |
		grep -a -m1 -E '^vireo-vmm(\[[^]]*\])?: error: ' | cut -c1-200)
	[ -n "$_said" ] && _why="$_why; $_said"
	# The RIP of a triple fault, from the outer kernel's record (lab_trace_on).
	_sd=$(cat "$LAB_TMP"/*.trace 2>/dev/null |
		sed -n 's/.*kvm_exit: \(vcpu [0-9]* reason shutdown rip 0x[0-9a-f]*\).*/\1/p' | head -1)
	[ -n "$_sd" ] && _why="$_why; outer kvm_exit: $_sd"
	echo "$_why" >"$LAB_REASON"
	echo "FAIL: $_why"
	exit 1
}

# lab_data WORDS...: a data line the harness passes back to the host
# (printed there as "DATA <name> WORDS..."); benchmarks use these.
lab_data() {
	echo "LAB-DATA $*"
}

lab_need_kvm() {
	[ -c /dev/kvm ] || lab_fail "no /dev/kvm in the $LAB_MODE environment (kvm modules not loaded?)"
}

# The inner guest's kernel command line: console on the first serial port,
# quiet (console output is slow under emulation), and a panic ends the VM.
LAB_INNER_CMDLINE="console=ttyS0 quiet panic=-1"

# lab_vmm_exec VMM CMDLINE: replace this shell with VMM running the inner
# fixture, console on stdin/stdout. VMM is
#   microvm  QEMU's microvm machine with KVM (the reference VMM)
#   vireo    vireo-vmm (the option names are the lab's assumption about its
#            command line; keep them in step with vmm/, see README.md)
# CMDLINE is the guest kernel command line (start from $LAB_INNER_CMDLINE).
# Extra VMM options may be given in $LAB_VMM_ARGS (split at blanks); guest
# RAM is $LAB_INNER_MEM MiB (default 256) and the initramfs $LAB_INNER_INITRD
# on both.
lab_vmm_exec() {
	_vmm=$1 _cmdline=$2 _mem=${LAB_INNER_MEM:-256}
	case "$_vmm" in
	microvm)
		# rtc=on: with KVM microvm has no CMOS RTC by default, and the
		# Debian kernel's rtc_cmos probe of the missing one costs ~10 s
		# of boot in the lab (measured: marker 9 s with, 20 s without).
		# shellcheck disable=SC2086
		exec qemu-system-x86_64 -M microvm,rtc=on -accel kvm -cpu host -smp 1 -m "$_mem" \
			-nodefaults -no-user-config -display none -serial stdio -no-reboot \
			-kernel "$LAB_INNER_KERNEL" -initrd "$LAB_INNER_INITRD" \
			-append "$_cmdline" $LAB_VMM_ARGS ;;
	vireo)
		# shellcheck disable=SC2086
		exec vireo-vmm --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" \
			--cmdline "$_cmdline" --memory "${_mem}M" --cpus 1 --boot-timer $LAB_VMM_ARGS ;;
	*)
		lab_fail "unknown VMM '$_vmm' (microvm or vireo)" ;;
	esac
}

# lab_svm_run: the address (16 hex digits) of the outer kernel's
# __svm_vcpu_run (kvm_amd), where VMRUN enters an inner vCPU; nothing
# outside the lab's outer VM.
lab_svm_run() {
	[ "$LAB_MODE" = outer ] || return 0
	awk '$3 == "__svm_vcpu_run" { print $1; exit }' /proc/kallsyms 2>/dev/null
}

# lab_emulator_fault FILE [TRACE]: true when the lab's emulated CPU resumed
# an inner vCPU with the outer host's own state instead of the guest's (seen
# about once in 50 two-vCPU boots, README.md "Inner guests with 8 vCPUs"; no
# guest puts itself there). The evidence is either
# - a vireo-vmm vCPU dump in FILE (the SIGQUIT one lab_boot asks for at its
#   deadline) with RIP within 512 bytes after the outer __svm_vcpu_run (just
#   after VMRUN) and a CR3 outside guest RAM, or
# - an exit in TRACE (lab_trace_off's record of the outer kernel's kvm_exit
#   events) taken at such a RIP: this catches the crashes too, where AMD KVM
#   resets the vCPU after its triple fault and the dump no longer shows it.
# Outer mode only: false everywhere else.
lab_emulator_fault() {
	_vr=$(lab_svm_run)
	[ -n "$_vr" ] || return 1
	tr -d '\r' <"$1" | awk -v vr="$_vr" -v trace="${2:-}" '
		function hex(s,   i, n) {
			n = 0
			s = tolower(s)
			for (i = 1; i <= length(s); i++)
				n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
			return n
		}
		function near(rip,   d) {
			sub(/^0x/, "", rip)
			while (length(rip) < 16)
				rip = "0" rip
			if (length(rip) != 16 || length(vr) != 16 ||
			    substr(rip, 1, 8) != substr(vr, 1, 8))
				return 0
			d = hex(substr(rip, 9)) - hex(substr(vr, 9))
			return d >= 0 && d < 512
		}
		/^  walk rip [0-9a-f]+: pml4e table at gpa 0x[0-9a-f]+: outside guest RAM$/ {
			rip = $3; sub(":", "", rip)
			if (near(rip)) found = 1
		}
		END {
			if (trace != "")
				while ((getline line < trace) > 0)
					if (line ~ /kvm_exit: / && match(line, / rip 0x[0-9a-f]+/) &&
					    near(substr(line, RSTART + 5, RLENGTH - 5)))
						found = 1
			exit !found
		}'
}

# The outer kernel's kvm_exit tracepoint as a flight recorder for an inner
# boot (outer mode only). lab_trace_on keeps two kinds of exits: shutdown
# (a triple fault, whose RIP vireo-vmm's dump cannot show because AMD KVM
# resets the vCPU first), and any exit at a RIP within 512 bytes after the
# outer __svm_vcpu_run (the emulator's fault, lab_emulator_fault). The filter
# drops every other exit in the kernel, so a boot's few thousand exits cost
# a filter check each and leave nothing in the buffer. lab_trace_off FILE
# stops it and writes the events kept to FILE (empty when none, or when
# tracing is not available). Returns 1 when tracing could not be set up.
LAB_TRACEFS=/sys/kernel/tracing
lab_trace_on() {
	_vr=$(lab_svm_run)
	[ -n "$_vr" ] || return 1
	_ev=$LAB_TRACEFS/events/kvm/kvm_exit
	[ -d "$_ev" ] || mount -t tracefs tracefs "$LAB_TRACEFS" 2>/dev/null
	[ -d "$_ev" ] || return 1
	# 512 bytes on from the start, in the low half (no carry out of it:
	# kernel text does not end 512 bytes short of a 4 GiB boundary).
	_hi=${_vr%????????}
	_end=$_hi$(printf '%08x' $((0x${_vr#"$_hi"} + 512)))
	echo 0 >"$_ev/enable" &&
		echo "exit_reason == 127 || (guest_rip >= 0x$_vr && guest_rip < 0x$_end)" >"$_ev/filter" &&
		: >"$LAB_TRACEFS/trace" &&
		echo 1 >"$_ev/enable"
}
lab_trace_off() {
	: >"$1"
	[ "$LAB_MODE" = outer ] || return 0
	_ev=$LAB_TRACEFS/events/kvm/kvm_exit
	[ -f "$_ev/enable" ] && [ "$(cat "$_ev/enable")" = 1 ] || return 0
	echo 0 >"$_ev/enable"
	grep -v '^#' "$LAB_TRACEFS/trace" >"$1"
}

# lab_boot VMM CMDLINE [TIMEOUT] [-k]: boot the inner fixture under VMM (see
# lab_vmm_exec) and time it with lab-marker-time. TIMEOUT (default 120 s)
# bounds the whole run; -k kills the VMM as soon as the marker shows. The
# console output goes to $LAB_TMP/VMM.out and to stdout. Sets
#   LAB_MARKER_MS   milliseconds from VMM start to VIREO-BOOT-OK ("" if never)
#   LAB_GUEST_UPTIME_MS  the guest kernel's uptime in that line (10 ms steps)
#   LAB_GUEST_IDLE_MS    the guest's idle time in that line ("" if none)
#   LAB_GUEST_EXIT  the status in VIREO-SCENARIO-EXIT ("" if none came)
# Returns 0 when the marker showed.
lab_boot() {
	_vmm=$1 _cmdline=$2 _t=${3:-120} _k=${4:-}
	case "$_vmm" in
	microvm | vireo) ;;
	*) lab_fail "lab_boot: unknown VMM '$_vmm' (microvm or vireo)" ;;
	esac
	export LAB_VMM_ARGS
	# At the deadline vireo-vmm is asked for its state first (SIGQUIT:
	# every vCPU's registers and page walks), so a hang shows where it is.
	_q=
	[ "$_vmm" = vireo ] && _q=-Q
	# A boot that met the lab emulator's own fault (see lab_emulator_fault:
	# it failed, or crashed after its marker) is said so and run once more.
	# The outer kernel records shutdown exits and exits at its own VMRUN
	# resume point for the boot (lab_trace_on), the same for either VMM.
	_try=1
	while :; do
		lab_trace_on
		# shellcheck disable=SC2016
		lab-marker-time -t "$_t" $_k $_q -- sh -c '. "$LAB_SCENARIOS/lib.sh" && lab_vmm_exec "$1" "$2"' \
			lab_vmm_exec "$_vmm" "$_cmdline" >"$LAB_TMP/$_vmm.out" 2>&1
		_rc=$?
		lab_trace_off "$LAB_TMP/$_vmm.trace"
		[ $_try -eq 1 ] &&
			lab_emulator_fault "$LAB_TMP/$_vmm.out" "$LAB_TMP/$_vmm.trace" || break
		echo "LAB-WARN $LAB_NAME: lab emulator fault (a vCPU of $_vmm resumed with the outer host's state); booting again"
		cp "$LAB_TMP/$_vmm.out" "$LAB_TMP/$_vmm.emulator-fault.out"
		cp "$LAB_TMP/$_vmm.trace" "$LAB_TMP/$_vmm.emulator-fault.trace"
		_try=2
	done
	tr -d '\r' <"$LAB_TMP/$_vmm.out"
	if [ -s "$LAB_TMP/$_vmm.trace" ]; then
		echo "--- the outer kernel's kvm_exit events kept for this boot (shutdown, or at its VMRUN resume point):"
		head -n 8 "$LAB_TMP/$_vmm.trace"
	fi
	LAB_MARKER_MS=$(sed -n 's/^MARKER-MS //p' "$LAB_TMP/$_vmm.out" | head -1)
	LAB_GUEST_UPTIME_MS=$(tr -d '\r' <"$LAB_TMP/$_vmm.out" |
		sed -n 's/.*VIREO-BOOT-OK uptime=\([0-9.]*\).*/\1/p' | head -1 | awk '{ printf "%d", $1 * 1000 }')
	LAB_GUEST_IDLE_MS=$(tr -d '\r' <"$LAB_TMP/$_vmm.out" |
		sed -n 's/.*VIREO-BOOT-OK uptime=[0-9.]* idle=\([0-9.]*\).*/\1/p' | head -1 | awk '{ printf "%d", $1 * 1000 }')
	LAB_GUEST_EXIT=$(tr -d '\r' <"$LAB_TMP/$_vmm.out" |
		sed -n 's/^VIREO-SCENARIO-EXIT \([0-9][0-9]*\)$/\1/p' | head -1)
	return $_rc
}

# lab_expect FILE PATTERN WHAT: fail unless FILE has a line matching PATTERN
# (grep -E); WHAT says what was expected.
lab_expect() {
	grep -Eq "$2" "$1" || lab_fail "$3 (no line matching '$2')"
}
