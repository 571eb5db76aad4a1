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
# and reads $LAB_TMP/retries after the scenario: one line for each run the
# scenario retried (lab_emulator_retry writes it), counted as a retry.
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
	# An inner scenario's own reason (tests/lab/inner/*.sh print "NAME: FAIL: why").
	_inner=$(cat "$LAB_TMP"/*.out 2>/dev/null | tr -d '\r' |
		grep -a -m1 -E '^[a-z0-9-]+: FAIL: ' | cut -c1-200)
	[ -n "$_inner" ] && _why="$_why; guest said: $_inner"
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

# lab_svm_run_plus ADDR OFFSET: ADDR (lab_svm_run's 16 hex digits) plus
# OFFSET, added in the low 32 bits (no carry out of them: kernel text does
# not end that close short of a 4 GiB boundary), as 16 hex digits.
lab_svm_run_plus() {
	_sh=${1%????????}
	printf '%s%08x\n' "$_sh" $((0x${1#"$_sh"} + $2))
}

# lab_emulator_fault FILE [TRACE MEM_MIB]: true when the lab's emulated CPU
# resumed an inner vCPU with the outer host's own state instead of the
# guest's: RIP just after the outer kernel's VMRUN (within 512 bytes after
# its __svm_vcpu_run) *and* the outer host's CR3 (page tables outside guest
# RAM). No guest or VMM can put a vCPU there. The evidence is either
# - a vireo-vmm vCPU dump in FILE (the SIGQUIT one lab_boot asks for at its
#   deadline) whose RIP is at such an address and whose page walk found
#   the PML4 table (CR3) outside guest RAM, or
# - an exit in TRACE (lab_trace_off's record of the outer kernel's kvm_exit
#   events) taken at such a RIP that is a nested page fault on a walk of
#   the guest's page tables (EXITINFO1 bit 33) at a guest-physical address
#   outside the MEM_MIB (default 256) of guest RAM (vireo-vmm's layout:
#   RAM up to 3 GiB, the rest from 4 GiB; the same for the lab's QEMU
#   microvm guests, which stay below 3 GiB). This catches a triple fault
#   too, after which AMD KVM resets the vCPU and its dump no longer shows
#   where it was.
# Nothing else is taken for the emulator's fault: a triple fault at a
# kernel RIP, whatever page fault it was delivering, is a crash of the
# guest, and so fails the boot.
# Outer mode only: false everywhere else.
lab_emulator_fault() {
	_vr=$(lab_svm_run)
	[ -n "$_vr" ] || return 1
	tr -d '\r' <"$1" | awk -v vr="$_vr" -v trace="${2:-}" -v mib="${3:-256}" '
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
		# Guest RAM: [0, lo) and [4 GiB, top).
		function outside_ram(gpa,   m, lo, top) {
			m = mib * 1048576
			lo = m; top = 4294967296
			if (m > 3221225472) {
				lo = 3221225472; top += m - 3221225472
			}
			return gpa >= top || (gpa >= lo && gpa < 4294967296)
		}
		/^  walk rip [0-9a-f]+: pml4e table at gpa 0x[0-9a-f]+: outside guest RAM$/ {
			rip = $3; sub(":", "", rip)
			if (near(rip)) found = 1
		}
		END {
			if (trace != "")
				while ((getline line < trace) > 0) {
					# A nested page fault at the VMRUN resume point
					# on a page-table walk (EXITINFO1 bit 33) at a
					# GPA (EXITINFO2) outside guest RAM.
					if (line !~ /kvm_exit: .* reason npf rip 0x[0-9a-f]+ /)
						continue
					if (!match(line, / rip 0x[0-9a-f]+/) ||
					    !near(substr(line, RSTART + 5, RLENGTH - 5)))
						continue
					if (!match(line, / info1 0x[0-9a-f]+/) || RLENGTH != 25 ||
					    int(hex(substr(line, RSTART + 16, 1)) / 2) % 2 != 1)
						continue
					if (match(line, / info2 0x[0-9a-f]+/) &&
					    outside_ram(hex(substr(line, RSTART + 9, RLENGTH - 9))))
						found = 1
				}
			exit !found
		}'
}

# The outer kernel's kvm_exit tracepoint as a flight recorder for an inner
# boot (outer mode only). lab_trace_on VMM MEM_MIB keeps three kinds of
# exits:
# - shutdown: a triple fault, with the RIP it came at (vireo-vmm's dump
#   cannot show it: AMD KVM resets the vCPU first);
# - any exit at a RIP within 512 bytes after the outer __svm_vcpu_run;
# - for vireo (whose guest-physical layout is known: RAM up to 3 GiB, the
#   PCI hole, the rest from 4 GiB), a nested page fault taken while walking
#   the guest's page tables (EXITINFO1 bit 33) at a guest-physical address
#   outside RAM: a guest's page tables are in its RAM, the outer host's CR3
#   is not.
# The emulator's fault (lab_emulator_fault) is an exit of the second kind
# that is also one of the third; the record keeps each kind on its own to
# show with a failure. The filter
# drops every other exit in the kernel, so a boot's few thousand exits cost
# a filter check each and leave nothing in the buffer. lab_trace_off FILE
# writes the events kept since lab_trace_on to FILE (empty when none, or
# when tracing is not available). lab_trace_on returns 1 when tracing could
# not be set up.
LAB_TRACEFS=/sys/kernel/tracing
lab_trace_on() {
	_vr=$(lab_svm_run)
	[ -n "$_vr" ] || return 1
	_ev=$LAB_TRACEFS/events/kvm/kvm_exit
	[ -d "$_ev" ] || mount -t tracefs tracefs "$LAB_TRACEFS" 2>/dev/null
	[ -d "$_ev" ] || return 1
	_end=$(lab_svm_run_plus "$_vr" 512)
	_f="exit_reason == 127 || (guest_rip >= 0x$_vr && guest_rip < 0x$_end)"
	if [ "$1" = vireo ]; then
		_m=$(($2 << 20))
		_lo=$_m _top=$((1 << 32))
		[ $_m -gt $((3 << 30)) ] && _lo=$((3 << 30)) _top=$((_top + _m - (3 << 30)))
		_f="$_f || (exit_reason == 1024 && (info1 & 0x200000000) && ((info2 >= $_lo && info2 < $((3 << 30))) || info2 >= $_top))"
	fi
	# The event stays enabled from the first boot on (new filter and an
	# empty buffer per boot): enabling or disabling a tracepoint patches
	# the outer kernel's text (int3-based live patching, IPIs to every
	# CPU), which the emulated CPUs here are better spared per boot.
	echo "$_f" >"$_ev/filter" &&
		: >"$LAB_TRACEFS/trace" &&
		{ [ "$(cat "$_ev/enable")" = 1 ] || echo 1 >"$_ev/enable"; }
}
lab_trace_off() {
	: >"$1"
	[ "$LAB_MODE" = outer ] || return 0
	_ev=$LAB_TRACEFS/events/kvm/kvm_exit
	[ -f "$_ev/enable" ] && [ "$(cat "$_ev/enable")" = 1 ] || return 0
	grep -v '^#' "$LAB_TRACEFS/trace" >"$1" || :
}

# lab_emulator_retry NAME MEM_MIB TRY: after try TRY (1 or 2) of a VMM run
# (guest RAM MEM_MIB) whose output is $LAB_TMP/NAME.out and record
# $LAB_TMP/NAME.trace (lab_trace_off), true when that run met the lab
# emulator's own fault (lab_emulator_fault) and is to be run once more: it
# adds a line to $LAB_TMP/retries (the harness counts the scenario as
# retried; a file, since callers may send stdout away), says so on stdout
# and keeps both files as NAME.emulator-fault.*, so the caller runs it
# again. The fault in try 2 fails the scenario: no third try.
lab_emulator_retry() {
	lab_emulator_fault "$LAB_TMP/$1.out" "$LAB_TMP/$1.trace" "$2" || return 1
	if [ "$3" -gt 1 ]; then
		tr -d '\r' <"$LAB_TMP/$1.out" | tail -n 15
		lab_fail "lab emulator fault again when $1's run was retried (a vCPU resumed with the outer host's state; the first one is in $1.emulator-fault.out)"
	fi
	echo "lab emulator fault (a vCPU of $1 resumed with the outer host's state)" >>"$LAB_TMP/retries"
	echo "$LAB_NAME: lab emulator fault in $1's run (a vCPU resumed with the outer host's state); running it again"
	cp "$LAB_TMP/$1.out" "$LAB_TMP/$1.emulator-fault.out"
	cp "$LAB_TMP/$1.trace" "$LAB_TMP/$1.emulator-fault.trace"
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
	# Guest RAM in MiB, for lab_trace_on: LAB_INNER_MEM or vireo-vmm's
	# --memory in LAB_VMM_ARGS (M or G).
	_mem=${LAB_INNER_MEM:-256}
	_ma=$(echo " $LAB_VMM_ARGS" | sed -n 's/.* --memory[ =]\([0-9][0-9]*\)\([MG]\).*/\1 \2/p')
	case "$_ma" in
	*M) _mem=${_ma% M} ;;
	*G) _mem=$((${_ma% G} * 1024)) ;;
	esac
	# At the deadline vireo-vmm is asked for its state first (SIGQUIT:
	# every vCPU's registers and page walks), so a hang shows where it is.
	_q=
	[ "$_vmm" = vireo ] && _q=-Q
	# A boot that met the lab emulator's own fault (see lab_emulator_fault:
	# it failed, or crashed after its marker) is run once more; meeting it
	# again fails the scenario (lab_emulator_retry). The outer kernel
	# records shutdown exits and exits at its own VMRUN resume point for
	# the boot (lab_trace_on), the same for either VMM.
	_try=1
	while :; do
		lab_trace_on "$_vmm" "$_mem"
		# shellcheck disable=SC2016
		lab-marker-time -t "$_t" $_k $_q -- sh -c '. "$LAB_SCENARIOS/lib.sh" && lab_vmm_exec "$1" "$2"' \
			lab_vmm_exec "$_vmm" "$_cmdline" >"$LAB_TMP/$_vmm.out" 2>&1
		_rc=$?
		lab_trace_off "$LAB_TMP/$_vmm.trace"
		lab_emulator_retry "$_vmm" "$_mem" $_try || break
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
# lab_expect_sandboxed FILE: vireo-vmm, run with --verbose as root, said
# it entered its sandbox (an unprivileged user, no capabilities).
lab_expect_sandboxed() {
	grep -Eq 'sandbox: uid [1-9][0-9]* gid [1-9][0-9]*, empty root' "$1" ||
		lab_fail "vireo-vmm did not enter its sandbox (no 'sandbox: uid' line at --verbose)"
}

lab_expect() {
	grep -Eq "$2" "$1" || lab_fail "$3 (no line matching '$2')"
}

# lab_vireod [OPTIONS...]: start vireod in the background on $LAB_TMP's
# state, run dir and socket (pid in $LAB_VIREOD_PID, output in
# $LAB_TMP/vireod.out), point vireo at it (VIREO_SOCKET) and wait until it
# listens.
lab_vireod() {
	vireod --foreground --state-dir "$LAB_TMP/state" --run-dir "$LAB_TMP/run" \
		--socket "$LAB_TMP/sock" "$@" >"$LAB_TMP/vireod.out" 2>&1 &
	LAB_VIREOD_PID=$!
	export VIREO_SOCKET=$LAB_TMP/sock
	_n=0
	until [ -S "$LAB_TMP/sock" ]; do
		_n=$((_n + 1))
		[ $_n -gt 100 ] && { cat "$LAB_TMP/vireod.out"; lab_fail "vireod did not listen within 10 s"; }
		sleep 0.1
	done
}
