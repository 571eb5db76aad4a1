#!/usr/bin/env bash
# Run lab scenarios: real Linux guests under a real /dev/kvm. See README.md.
#
#   tests/lab/run.sh --all                 every scenario in tests/lab/scenarios
#   tests/lab/run.sh NAME|FILE.sh ...      the named ones (FILE.sh: any scenario file)
#   tests/lab/run.sh --filter GLOB --all   those whose name matches GLOB
#   tests/lab/run.sh --list                names and time bounds
#   tests/lab/run.sh --shell FILE.sh       boot the lab and run FILE.sh on this
#                                          terminal, interactively (scripts/boot.sh)
# Options: --env KEY=VALUE (passed to scenarios), --file PATH (carried to the
# scenarios as $LAB_FILES/BASENAME, e.g. an extra initramfs archive),
# --verbose (stream scenario
# output), --timeout SECONDS (bound for each selected scenario instead of its
# "# lab-timeout:" line), --mode direct|outer (default: direct when /proc/cpuinfo has vmx or
# svm, else outer), --host-fs (outer mode: the host's / is shared into the
# outer VM with virtiofs and mounted at /host, so a scenario can run the
# host's own programs there under the outer VM's /dev/kvm; see README.md;
# on for a scenario that says "# lab-needs: debian").
# Env: LAB_SMP (outer vCPUs, default 2; a scenario's "# lab-smp: N" line
#      runs it in an outer VM with N), LAB_MEM (outer MiB, default 4096),
#      LAB_BOOT_SECONDS (time allowed for the outer boot, default 120),
#      LAB_WATCHDOG_GRACE (host-side stall detection, default 90),
#      LAB_SILENT_SECONDS (the outer VM is stalled when nothing, heartbeat
#      included, comes for this long; default 60),
#      LAB_STALL_RETRIES (new outer VMs after outer-VM faults: a stall or an
#      outer kernel panic; default 2).
#
# Prints one "RESULT PASS <name>" or "RESULT FAIL <name> <reason>" line per
# scenario (a failure is followed by the scenario's last console lines),
# "RETRIED <name> <why>" for each retry (a run the scenario repeated after
# the lab emulator's fault, or the scenario run again in a new outer VM) and
# "DATA <name> ..." for each data line a scenario reports. Exits 0 only when
# every scenario passed; a --filter that matches nothing is an error.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=../../scripts/fixtures.sh
. "$top/scripts/fixtures.sh"
LAB_DIR=$top/build/lab
REL=$top/build/release

# Modules of the outer VM, by name (dependencies are added and ordered).
LAB_OUTER_MODULES="irqbypass kvm kvm_amd tun tap vhost_iotlb vhost vhost_net
vsock vmw_vsock_virtio_transport_common vhost_vsock
virtio_pci fuse virtiofs bridge nf_tables nft_chain_nat nft_masq nft_ct"
# Firmware QEMU needs for -M microvm (from qemu-system-data / seabios).
LAB_QEMU_DATA="bios-microvm.bin linuxboot_dma.bin pvh.bin kvmvapic.bin"

die() { echo "lab: $*" >&2; exit 2; }
say() { echo "lab: $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

scenario_names() {
	local f n
	for f in "$here"/scenarios/*.sh; do
		n=$(basename "$f" .sh)
		[ "$n" = lib ] || echo "$n"
	done
}

scenario_timeout() {
	local t
	if [ -n "${timeout_override:-}" ]; then
		echo "$timeout_override"
		return
	fi
	t=$(sed -n 's/^# lab-timeout: *\([0-9][0-9]*\).*/\1/p' "$1" | head -1)
	echo "${t:-120}"
}

# ---- arguments -----------------------------------------------------------
all=0 list=0 filter="" verbose=0 hostfs=0 timeout_override="" mode=${LAB_MODE:-auto} shell_script=""
envs=() picks=() extra_files=()
passthru=()
while [ $# -gt 0 ]; do
	case "$1" in
	--env | --file | --timeout | --mode) [ $# -ge 2 ] && passthru+=("$1" "$2") ;;
	--verbose | --host-fs) passthru+=("$1") ;;
	esac
	case "$1" in
	--all) all=1 ;;
	--list) list=1 ;;
	--filter) [ $# -ge 2 ] || die "--filter needs a glob"; filter=$2; shift ;;
	--filter=*) filter=${1#--filter=} ;;
	--env) [ $# -ge 2 ] || die "--env needs KEY=VALUE"; envs+=("$2"); shift ;;
	--file)
		[ $# -ge 2 ] || die "--file needs a path"
		[ -f "$2" ] || die "--file '$2': no such file"
		extra_files+=("$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift ;;
	--verbose) verbose=1 ;;
	--host-fs) hostfs=1 ;;
	--timeout)
		[[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "bad --timeout '${2:-}': give whole seconds"
		timeout_override=$2; shift ;;
	--mode) [ $# -ge 2 ] || die "--mode needs direct or outer"; mode=$2; shift ;;
	--shell) [ $# -ge 2 ] || die "--shell needs a script"; shell_script=$2; shift ;;
	-h | --help) usage ;;
	-*) die "unknown option '$1' (see --help)" ;;
	*) picks+=("$1") ;;
	esac
	shift
done
for e in "${envs[@]}"; do
	[[ "$e" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "bad --env '$e': give KEY=VALUE"
done
case "$mode" in
auto) if grep -qwE 'vmx|svm' /proc/cpuinfo; then mode=direct; else mode=outer; fi ;;
direct | outer) ;;
*) die "bad --mode '$mode': give direct or outer" ;;
esac

if [ $list -eq 1 ]; then
	for n in $(scenario_names); do
		printf '%-28s %4ss\n' "$n" "$(scenario_timeout "$here/scenarios/$n.sh")"
	done
	exit 0
fi

# Selected scenarios: parallel arrays of names and files.
names=() files=()
add_scenario() {
	local name=$1 file=$2 n
	for n in "${names[@]}"; do
		[ "$n" = "$name" ] && die "scenario '$name' given twice (or two files share that name)"
	done
	names+=("$name")
	files+=("$file")
}
if [ $all -eq 1 ]; then
	for n in $(scenario_names); do add_scenario "$n" "$here/scenarios/$n.sh"; done
fi
for p in "${picks[@]}"; do
	if [[ "$p" == *.sh ]]; then
		[ -f "$p" ] || die "no scenario file '$p'"
		add_scenario "$(basename "$p" .sh)" "$(cd "$(dirname "$p")" && pwd)/$(basename "$p")"
	else
		[ -f "$here/scenarios/$p.sh" ] || die "no scenario '$p' (see --list)"
		add_scenario "$p" "$here/scenarios/$p.sh"
	fi
done
if [ -n "$filter" ]; then
	kept_n=() kept_f=()
	for i in "${!names[@]}"; do
		# shellcheck disable=SC2053
		[[ "${names[$i]}" == $filter ]] && kept_n+=("${names[$i]}") && kept_f+=("${files[$i]}")
	done
	names=("${kept_n[@]}") files=("${kept_f[@]}")
fi
if [ ${#names[@]} -eq 0 ] && [ -z "$shell_script" ]; then
	[ -n "$filter" ] && die "no scenario matches '$filter' (see --list)"
	usage
fi
# Each selected scenario's time bound, in step with names[].
limits=()
for i in "${!names[@]}"; do limits+=("$(scenario_timeout "${files[$i]}")"); done

# A scenario may ask for its own number of outer vCPUs ("# lab-smp: N";
# default $LAB_SMP or 2): scenarios are run in one outer VM per number, by
# this script again for each group, the default group first.
scenario_smp() {
	local s
	s=$(sed -n 's/^# lab-smp: *\([1-9][0-9]*\).*/\1/p' "$1" | head -1)
	echo "${s:-${LAB_SMP:-2}}"
}
if [ -z "${LAB_SMP_GROUP:-}" ] && [ -z "$shell_script" ]; then
	smps=()
	for i in "${!names[@]}"; do smps+=("$(scenario_smp "${files[$i]}")"); done
	order=$(printf '%s\n' "${LAB_SMP:-2}" "${smps[@]}" | awk '!seen[$0]++')
	if [ "$(echo "$order" | wc -l)" -gt 1 ]; then
		rc=0 ran=0
		for s in $order; do
			group=()
			for i in "${!names[@]}"; do
				[ "${smps[$i]}" = "$s" ] && group+=("${files[$i]}")
			done
			[ ${#group[@]} -gt 0 ] || continue
			[ $ran -eq 0 ] || say "next: the scenarios that ask for $s outer vCPU(s)"
			ran=1
			LAB_SMP=$s LAB_SMP_GROUP=1 bash "${BASH_SOURCE[0]}" "${passthru[@]}" "${group[@]}" || rc=$?
		done
		exit $rc
	fi
	LAB_SMP=${smps[0]:-${LAB_SMP:-2}}
fi

# ---- build what the lab carries -------------------------------------------
mkdir -p "$LAB_DIR"
# One lab run per checkout at a time (they share build/lab).
exec 9>"$LAB_DIR/lock"
if ! flock -n 9; then
	say "another lab run in this checkout holds build/lab/lock; waiting for it"
	flock 9
fi
t_build=$(now)
bash "$top/scripts/build.sh" release || die "the release build failed (bash scripts/build.sh release)"
fx_build
for b in tests/lab/kvm-probe tests/lab/lab-marker-time; do
	[ -x "$REL/$b" ] || die "missing $REL/$b after the release build"
done
# A scenario with a "# lab-needs: debian" line boots the Debian guest: its
# image, key and seeds are made on the host (debian-prep.sh) and reached
# through the host's / (--host-fs) at $LAB_HOST_TOP.
for f in "${files[@]}"; do
	if grep -q '^# lab-needs: debian' "$f"; then
		bash "$here/debian-prep.sh" || die "the Debian guest's files are not ready (tests/lab/debian-prep.sh)"
		hostfs=1
		break
	fi
done

# The project's programs from the release build (ELF executables).
release_bins() {
	find "$REL" \( -name 'meson-*' -o -name '*.p' \) -prune -o -type f -perm -u+x -print |
		while read -r f; do
			if [ "$(head -c4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then echo "$f"; fi
		done | sort
}

# Outer initramfs, part 1 (cached): busybox, outer modules, the inner
# fixture, QEMU (reference VMM) with its libraries and firmware, qemu-img,
# curl, ssh, scp and dnsmasq.
build_outer_base() {
	local kver qemu key root f
	kver=$(cat "$FX_DIR/kver")
	qemu=$(command -v qemu-system-x86_64) ||
		die "qemu-system-x86_64 not found: run 'bash scripts/setup.sh' (package qemu-system-x86)"
	key=$( (cat "$FX_DIR/stamp"; echo "$LAB_OUTER_MODULES $LAB_QEMU_DATA";
		stat -L -c '%n %s %Y' "$qemu"; fx_inputs_hash "$here/outer/init" "$top/scripts/fixtures.sh";
		sed -n '/^build_outer_base()/,/^}/p' "${BASH_SOURCE[0]}") | sha256sum | cut -d' ' -f1)
	if [ "$(cat "$LAB_DIR/outer-base.stamp" 2>/dev/null)" = "$key" ] &&
		[ -f "$LAB_DIR/outer-base.cpio" ]; then
		return
	fi
	say "building the outer initramfs (base)"
	root=$LAB_DIR/outer-root
	rm -rf "$root"
	fx_busybox_root "$root"
	# shellcheck disable=SC2086
	fx_install_modules "$FX_DIR/modules/$kver" "$root" $LAB_OUTER_MODULES
	install -m 755 "$here/outer/init" "$root/init"
	mkdir -p "$root/lab/inner" "$root/usr/share/qemu"
	cp "$FX_DIR/vmlinuz" "$root/lab/inner/vmlinuz"
	cp "$FX_DIR/inner-initramfs.cpio.gz" "$root/lab/inner/initramfs.cpio.gz"
	fx_copy_with_libs "$root" "$qemu" /usr/bin/qemu-system-x86_64
	# qemu-img checks images the guests wrote (blk-qcow2).
	fx_copy_with_libs "$root" "$(command -v qemu-img ||
		die "qemu-img not found: run 'bash scripts/setup.sh' (package qemu-utils)")" /usr/bin/qemu-img
	# curl talks to vireo-vmm's control API (--api-socket) on its Unix socket.
	fx_copy_with_libs "$root" "$(command -v curl ||
		die "curl not found: run 'bash scripts/setup.sh' (package curl)")" /usr/bin/curl
	# ssh and scp reach the Debian guest (lab-needs: debian); ssh wants
	# its user in /etc/passwd.
	for f in ssh scp; do
		fx_copy_with_libs "$root" "$(command -v $f ||
			die "$f not found: run 'bash scripts/setup.sh' (package openssh-client)")" /usr/bin/$f
	done
	# dnsmasq serves vireod's virtual networks (vireod-net); it runs as
	# nobody.
	fx_copy_with_libs "$root" "$(command -v dnsmasq ||
		die "dnsmasq not found: run 'bash scripts/setup.sh' (package dnsmasq-base)")" /usr/sbin/dnsmasq
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
		>"$root/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
	for f in $LAB_QEMU_DATA; do
		[ -e "/usr/share/qemu/$f" ] || die "missing /usr/share/qemu/$f: run 'bash scripts/setup.sh' (package qemu-system-x86)"
		cp -L "/usr/share/qemu/$f" "$root/usr/share/qemu/$f"
	done
	fx_cpio "$root" >"$LAB_DIR/outer-base.cpio.tmp"
	mv "$LAB_DIR/outer-base.cpio.tmp" "$LAB_DIR/outer-base.cpio"
	echo "$key" >"$LAB_DIR/outer-base.stamp"
	rm -rf "$root"
}

# Outer initramfs, part 2 (each run): the project's binaries, the scenarios,
# the batch list and the environment.
build_overlay() {
	local root=$LAB_DIR/overlay-root b i e
	rm -rf "$root"
	mkdir -p "$root/lab/scenarios" "$root/vireo/bin" "$root/lab/files"
	for f in "${extra_files[@]}"; do cp -L "$f" "$root/lab/files/"; done
	for b in $(release_bins); do
		fx_copy_with_libs "$root" "$b" "/vireo/bin/$(basename "$b")"
	done
	cp "$here/scenarios/lib.sh" "$root/lab/scenarios/lib.sh"
	: >"$root/lab/batch"
	for i in "${batch[@]}"; do
		cp "${files[$i]}" "$root/lab/scenarios/${names[$i]}.sh"
		echo "${names[$i]} ${limits[$i]}" >>"$root/lab/batch"
	done
	: >"$root/lab/env"
	# --host-fs: where this checkout is in the host's file system.
	[ $hostfs -eq 1 ] && printf "LAB_HOST_TOP='%s'\n" "$top" >>"$root/lab/env"
	for e in "${envs[@]}"; do
		printf "%s='%s'\n" "${e%%=*}" "$(sed "s/'/'\\\\''/g" <<<"${e#*=}")" >>"$root/lab/env"
	done
	if [ -n "$shell_script" ]; then
		cp "$shell_script" "$root/lab/console.sh"
	fi
	fx_cpio "$root"
	rm -rf "$root"
}

# show PREFIX LINE...: print captured guest or kernel output, one prefixed
# line each, with bytes that are not printable ASCII as '.' and each line cut
# at 300 characters (a console may carry binary noise or very long lines).
show() {
	local prefix=$1
	shift
	[ $# -gt 0 ] || return 0
	printf '%s\n' "$@" | LC_ALL=C tr -c '[:print:]\n' '.' | cut -c1-300 |
		while IFS= read -r l; do printf '%s%s\n' "$prefix" "$l"; done
}

# ---- reading the results ---------------------------------------------------
# Reads the LAB-* protocol (see tests/lab/outer/init) on stdin for the
# scenarios batch[] (indexes into names[]); prints RESULT/RETRIED/DATA
# lines; sets npass/nfail and retried[]. $1: start time of the run, $2:
# what to say about scenarios that never ended. When the outer VM stalled
# or its kernel panicked and a retry is allowed (stalls <
# LAB_STALL_RETRIES), the scenarios it cut short are not failed but left
# in left[] for a new outer VM (the one it cut short counts as retried).
npass=0 nfail=0 stalls=0
batch=() left=()
declare -A retried=()
# retry NAME WHY: NAME was (or is about to be) run again.
retry() {
	retried[$1]=1
	echo "RETRIED $1 $2"
}
parse_results() {
	local t0=$1 line name status secs reason wall_begin="" current="" panicked=0 outer_up=0
	local partial="" deadline=0 i rs alive=0 last_line
	local silent=${LAB_SILENT_SECONDS:-60}
	local -A ended=() limit_of=()
	local -a ring=() logs=()
	for i in "${batch[@]}"; do limit_of[${names[$i]}]=${limits[$i]}; done
	left=()
	rm -f "$LAB_DIR/watchdog"
	local grace=${LAB_WATCHDOG_GRACE:-90} waiting="the outer VM's boot" bound=${LAB_BOOT_SECONDS:-120}
	[ "$mode" = outer ] && deadline=$(($(date +%s) + bound + grace))
	last_line=$(date +%s)
	while :; do
		# Host-side watchdog: a scenario has its own bound inside the outer
		# VM; if the outer VM itself stalls, no LAB-END ever comes, so give
		# up on it WATCHDOG_GRACE s after that bound instead of waiting for
		# the whole batch's. Once the outer VM's heartbeat (LAB-ALIVE every
		# 10 s) has been seen, SILENT s with no output at all is a stall too,
		# whatever the scenario's bound.
		line=""
		if IFS= read -r -t 5 line; then
			line=$partial$line partial=""
			last_line=$(date +%s)
		else
			rs=$?
			partial+=$line
			if [ $rs -gt 128 ]; then
				# No complete line for 5 s.
				local stall=""
				if [ "$deadline" -gt 0 ] && [ "$(date +%s)" -gt "$deadline" ]; then
					stall="nothing from $waiting $grace s after its $bound s bound"
				elif [ $alive -eq 1 ] && [ "$deadline" -gt 0 ] &&
					[ $(($(date +%s) - last_line)) -gt "$silent" ]; then
					stall="no output at all, heartbeat included, for $silent s during $waiting"
				fi
				if [ -n "$stall" ]; then
					echo "$stall" >"$LAB_DIR/watchdog"
					say "watchdog: $stall; stopping the outer VM"
					[ -s "$LAB_DIR/qemu.pid" ] && kill "$(cat "$LAB_DIR/qemu.pid")" 2>/dev/null
					deadline=0
				fi
				continue
			fi
			# End of input; a last line without a newline still counts.
			[ -n "$partial" ] || break
			line=$partial partial=""
		fi
		line=${line%$'\r'}
		if [ "$line" = LAB-ALIVE ]; then
			alive=1
			continue
		fi
		printf '%s\n' "$line" >>"$LAB_DIR/console.log"
		case "$line" in
		"LAB-OUTER-UP "*)
			outer_up=1 deadline=0
			read -r _ secs rest <<<"$line"
			say "outer VM up after $(since "$t0") s wall (guest uptime $secs s; ${rest})"
			;;
		"LAB-BEGIN "*)
			current=${line#LAB-BEGIN }
			wall_begin=$(now) ring=() logs=()
			bound=${limit_of[$current]:-120} waiting="scenario $current"
			deadline=$(($(date +%s) + bound + grace))
			;;
		"LAB-DATA "*) echo "DATA ${line#LAB-DATA }" ;;
		"LAB-LOG "*) logs+=("${line#LAB-LOG * }") ;;
		"LAB-OUT "*) [ $verbose -eq 1 ] && echo "  ${line#LAB-OUT }" ;;
		"LAB-END "*)
			read -r _ name status secs reason <<<"$line"
			ended[$name]=1
			if [ "$mode" = outer ]; then
				say "$name: $status in $(since "${wall_begin:-$t0}") s wall ($secs s in the outer VM)"
			else
				say "$name: $status in $secs s"
			fi
			if [ "$status" = PASS ]; then
				echo "RESULT PASS $name"
				npass=$((npass + 1))
			else
				echo "RESULT FAIL $name ${reason:-failed}"
				show "    $name| " "${logs[@]}"
				nfail=$((nfail + 1))
			fi
			current="" bound=60 waiting="the outer VM after $name"
			[ "$mode" = outer ] && deadline=$(($(date +%s) + bound + grace))
			;;
		"LAB-WARN "*) say "${line#LAB-WARN }" ;;
		"LAB-RETRY "*)
			read -r _ name reason <<<"$line"
			retry "$name" "$reason"
			;;
		*)
			[[ "$line" == *"Kernel panic"* ]] && panicked=1
			ring+=("$line")
			[ ${#ring[@]} -gt 20 ] && ring=("${ring[@]:1}")
			;;
		esac
	done
	local why=$2 rc retry=0
	rc=$(cat "$LAB_DIR/qemu.rc" 2>/dev/null || true)
	grep -q 'Kernel panic' "$LAB_DIR/outer-kernel.log" 2>/dev/null && panicked=1
	if [ -s "$LAB_DIR/watchdog" ]; then
		why="the outer VM stalled ($(cat "$LAB_DIR/watchdog"))"
		[ "$stalls" -lt "${LAB_STALL_RETRIES:-2}" ] && retry=1
	elif [ "$rc" = 137 ]; then
		why="the batch's time bound ran out"
	elif [ $panicked -eq 1 ]; then
		why="the outer kernel panicked"
		[ "$stalls" -lt "${LAB_STALL_RETRIES:-2}" ] && retry=1
	elif [ -n "$rc" ]; then
		why="the outer VM stopped (QEMU exit status $rc, see build/lab/qemu.err)"
	fi
	if [ $outer_up -eq 0 ] && [ "$mode" = outer ]; then
		say "the outer VM never came up ($why); its last console lines:"
		show "    outer| " "${ring[@]}"
	fi
	# The outer kernel's own messages (its console is a second serial port).
	local -a klog=()
	if [ "$mode" = outer ] && { [ -s "$LAB_DIR/watchdog" ] || [ $panicked -eq 1 ]; }; then
		# This outer VM's part of the log: from 3 lines before its first
		# report of trouble (40 lines), else its last 25 lines.
		mapfile -t klog < <(tr -d '\r' <"$LAB_DIR/outer-kernel.log" 2>/dev/null |
			awk '/^--- new outer VM/ { n = 0; hit = 0; next }
			     { l[++n] = $0 }
			     !hit && /Kernel panic|BUG:|soft lockup|Oops|general protection|RIP:/ { hit = n }
			     END { if (hit) { s = hit > 3 ? hit - 3 : 1; e = s + 39 } else { s = n > 25 ? n - 24 : 1; e = n }
				   for (i = s; i <= e && i <= n; i++) print l[i] }')
	fi
	if [ $retry -eq 1 ]; then
		say "$why while ${current:-no scenario} ran; the outer kernel's last messages (build/lab/outer-kernel.log):"
		show "    outer-kernel| " "${klog[@]}"
	fi
	for i in "${batch[@]}"; do
		name=${names[$i]}
		[ -n "${ended[$name]:-}" ] && continue
		if [ $retry -eq 1 ]; then
			left+=("$i")
			[ "$name" = "$current" ] && retry "$name" "$why while it ran; run again in a new outer VM"
			continue
		fi
		if [ "$name" = "$current" ]; then
			echo "RESULT FAIL $name $why while it ran"
			show "    $name| " "${ring[@]}"
			show "    $name| outer-kernel| " "${klog[@]}"
		else
			echo "RESULT FAIL $name $why before it ran"
		fi
		nfail=$((nfail + 1))
	done
}

# ---- direct mode: the host's own /dev/kvm ----------------------------------
run_direct() {
	local bindir=$LAB_DIR/direct-bin i name tmp rc limit t0 secs reason
	rm -rf "$bindir"
	mkdir -p "$bindir"
	for b in $(release_bins); do ln -s "$b" "$bindir/$(basename "$b")"; done
	mkdir -p "$LAB_DIR/direct/scenarios"
	rm -rf "$LAB_DIR/direct/files"
	mkdir -p "$LAB_DIR/direct/files"
	for f in "${extra_files[@]}"; do ln -s "$f" "$LAB_DIR/direct/files/"; done
	cp "$here/scenarios/lib.sh" "$LAB_DIR/direct/scenarios/"
	for i in "${!names[@]}"; do
		name=${names[$i]}
		cp "${files[$i]}" "$LAB_DIR/direct/scenarios/$name.sh"
		limit=${limits[$i]}
		tmp=$LAB_DIR/direct/run/$name
		rm -rf "$tmp"
		mkdir -p "$tmp"
		echo "LAB-BEGIN $name"
		t0=$(now)
		rc=0
		(cd "$tmp" && env "${envs[@]}" LAB_NAME="$name" LAB_MODE=direct LAB_TMP="$tmp" \
			LAB_HOST=/ LAB_HOST_TOP="$top" \
			LAB_REASON="$tmp/reason" LAB_SCENARIOS="$LAB_DIR/direct/scenarios" \
			LAB_FILES="$LAB_DIR/direct/files" \
			LAB_INNER_KERNEL="$FX_DIR/vmlinuz" LAB_INNER_INITRD="$FX_DIR/inner-initramfs.cpio.gz" \
			PATH="$bindir:$PATH" timeout -s KILL "$limit" sh "$LAB_DIR/direct/scenarios/$name.sh") \
			</dev/null >"$tmp/log" 2>&1 || rc=$?
		secs=$(since "$t0")
		tr -d '\r' <"$tmp/log" >"$tmp/log.txt"
		grep '^LAB-DATA ' "$tmp/log.txt" | sed "s/^LAB-DATA /LAB-DATA $name /" || true
		grep '^LAB-WARN ' "$tmp/log.txt" || true
		[ ! -f "$tmp/retries" ] || sed "s/^/LAB-RETRY $name /" "$tmp/retries"
		[ $verbose -eq 1 ] && sed "s/^/LAB-OUT $name /" "$tmp/log.txt"
		if [ $rc -eq 0 ]; then
			echo "LAB-END $name PASS $secs"
			continue
		fi
		if [ -s "$tmp/reason" ]; then reason=$(head -1 "$tmp/reason")
		elif [ $rc -eq 137 ]; then reason="timed out after ${limit}s"
		else reason="exit status $rc"; fi
		tail -n 20 "$tmp/log.txt" | sed "s/^/LAB-LOG $name /"
		echo "LAB-END $name FAIL $secs $reason"
	done
	echo LAB-DONE
}

# ---- outer mode: a TCG VM with nested SVM -----------------------------------
# outer_args LABMODE: the outer VM's QEMU command line, in the array qargs.
outer_args() {
	# Batch: the LAB-* protocol has the first serial port (lab.out=ttyS0) to
	# itself; the outer kernel's console is the second one, which run.sh
	# keeps in build/lab/outer-kernel.log (notices and worse, with stack
	# traces: a soft lockup there says where an outer CPU is stuck).
	local append="console=ttyS1 loglevel=6 softlockup_all_cpu_backtrace=1 panic=-1 lab.mode=$1 lab.out=ttyS0"
	# Interactive: one console, the outer kernel's warnings kept off it.
	[ "$1" = console ] && append="console=ttyS0 quiet loglevel=1 panic=-1 lab.mode=$1"
	[ $verbose -eq 1 ] && append="$append lab.verbose=1"
	[ $hostfs -eq 1 ] && append="$append lab.hostfs=1"
	qargs=(qemu-system-x86_64 -M q35 -accel tcg,thread=multi -cpu max
		-smp "${LAB_SMP:-2}" -m "${LAB_MEM:-4096}"
		-nodefaults -no-user-config -display none -no-reboot
		-kernel "$FX_DIR/vmlinuz" -initrd "$LAB_DIR/outer.cpio" -append "$append")
	# --host-fs: virtiofsd (started by start_hostfs) serves the host's / as
	# tag "hostfs"; vhost-user needs the guest RAM in shared memory.
	[ $hostfs -eq 1 ] && qargs+=(-chardev "socket,id=hostfs,path=$LAB_DIR/hostfs.sock"
		-device vhost-user-fs-pci,chardev=hostfs,tag=hostfs
		-object "memory-backend-memfd,id=ram,size=${LAB_MEM:-4096}M,share=on"
		-machine memory-backend=ram)
	return 0
}

# start_hostfs: for --host-fs, start virtiofsd on $LAB_DIR/hostfs.sock (it
# serves one VM and exits when that VM goes); sets hostfs_pid.
VIRTIOFSD=${VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
hostfs_pid=""
start_hostfs() {
	local n=0
	[ $hostfs -eq 1 ] || return 0
	[ -x "$VIRTIOFSD" ] || die "--host-fs: no $VIRTIOFSD (package qemu-system-common; run 'bash scripts/setup.sh')"
	rm -f "$LAB_DIR/hostfs.sock"
	"$VIRTIOFSD" --socket-path="$LAB_DIR/hostfs.sock" -o source=/ -o sandbox=chroot -o cache=auto \
		-o posix_lock -o flock -o log_level=err </dev/null >>"$LAB_DIR/virtiofsd.log" 2>&1 &
	hostfs_pid=$!
	while [ ! -S "$LAB_DIR/hostfs.sock" ]; do
		kill -0 "$hostfs_pid" 2>/dev/null || die "--host-fs: virtiofsd exited (see build/lab/virtiofsd.log)"
		n=$((n + 1))
		[ $n -lt 100 ] || die "--host-fs: virtiofsd made no socket in 10 s"
		sleep 0.1
	done
}
stop_hostfs() {
	[ -n "$hostfs_pid" ] || return 0
	kill "$hostfs_pid" 2>/dev/null || true
	wait "$hostfs_pid" 2>/dev/null || true
	hostfs_pid=""
}

prepare_outer() {
	build_outer_base
	build_overlay >"$LAB_DIR/overlay.cpio"
	cat "$LAB_DIR/outer-base.cpio" "$LAB_DIR/overlay.cpio" >"$LAB_DIR/outer.cpio"
}

if [ -n "$shell_script" ]; then
	[ -f "$shell_script" ] || die "no script '$shell_script'"
	if [ "$mode" = direct ]; then
		exec env "${envs[@]}" LAB_MODE=direct LAB_SCENARIOS="$here/scenarios" LAB_NAME=shell \
			LAB_TMP="$LAB_DIR" LAB_REASON=/dev/null \
			LAB_INNER_KERNEL="$FX_DIR/vmlinuz" LAB_INNER_INITRD="$FX_DIR/inner-initramfs.cpio.gz" \
			PATH="$REL/vmm:$REL/tests/lab:$PATH" sh "$shell_script"
	fi
	prepare_outer
	say "starting the lab's outer VM (about 10 s under emulation); Ctrl-A X quits QEMU"
	outer_args console
	start_hostfs
	rc=0
	"${qargs[@]}" -serial mon:stdio || rc=$?
	stop_hostfs
	exit $rc
fi

say "build and fixtures ready in $(since "$t_build") s; mode $mode; ${#names[@]} scenario(s): ${names[*]}"
t_run=$(now)
if [ "$mode" = direct ]; then
	rm -f "$LAB_DIR/qemu.rc"
	parse_results "$t_run" "the harness stopped" < <(run_direct)
else
	: >"$LAB_DIR/console.log"
	: >"$LAB_DIR/outer-kernel.log"
	batch=("${!names[@]}")
	prepare_outer
	say "outer initramfs ready ($(du -m "$LAB_DIR/outer.cpio" | cut -f1) MiB) in $(since "$t_run") s"
	while :; do
		total=${LAB_BOOT_SECONDS:-120}
		for i in "${batch[@]}"; do
			total=$((total + ${limits[$i]} + 10))
		done
		t_boot=$(now)
		rm -f "$LAB_DIR/qemu.rc" "$LAB_DIR/qemu.pid"
		start_hostfs
		say "booting the outer VM; the batch may take up to $total s"
		parse_results "$t_boot" "the outer VM stopped" \
			< <(outer_args batch; rc=0
				timeout -s KILL "$total" "${qargs[@]}" -serial stdio \
					-chardev "file,id=klog,path=$LAB_DIR/outer-kernel.log,append=on" -serial chardev:klog \
					2>"$LAB_DIR/qemu.err" </dev/null &
				echo $! >"$LAB_DIR/qemu.pid"
				wait $! || rc=$?
				echo "$rc" >"$LAB_DIR/qemu.rc")
		stop_hostfs
		if [ -s "$LAB_DIR/qemu.err" ]; then
			grep -v "TCG doesn't support requested feature" "$LAB_DIR/qemu.err" | sed 's/^/lab: qemu: /' || true
		fi
		[ ${#left[@]} -gt 0 ] || break
		# The outer VM stalled or its kernel panicked: a fault of the
		# emulated machine, not a scenario result
		# failure (the scenario's own bound runs inside the outer VM). Run
		# what it cut short, the stalled scenario included, in a new one.
		stalls=$((stalls + 1))
		batch=("${left[@]}")
		rest=""
		for i in "${batch[@]}"; do rest+=" ${names[$i]}"; done
		say "starting a new outer VM (outer-VM fault $stalls of at most ${LAB_STALL_RETRIES:-2}) for:$rest"
		# Same initramfs, with a later /lab/batch (the last copy of a file in
		# an initramfs wins) listing only those.
		mkdir -p "$LAB_DIR/rebatch-root/lab"
		for i in "${batch[@]}"; do echo "${names[$i]} ${limits[$i]}"; done >"$LAB_DIR/rebatch-root/lab/batch"
		{ cat "$LAB_DIR/outer-base.cpio" "$LAB_DIR/overlay.cpio"; fx_cpio "$LAB_DIR/rebatch-root"; } >"$LAB_DIR/outer.cpio"
		rm -rf "$LAB_DIR/rebatch-root"
		echo "--- new outer VM after an outer-VM fault (run.sh)" >>"$LAB_DIR/console.log"
		echo "--- new outer VM after an outer-VM fault (run.sh)" >>"$LAB_DIR/outer-kernel.log"
	done
fi
stalled=""
[ $stalls -eq 0 ] || stalled=" after $stalls outer-VM fault(s), retried in a new outer VM"
say "$npass passed, $nfail failed, ${#retried[@]} retried$stalled; lab time $(since "$t_run") s (console log: build/lab/console.log)"
[ $nfail -eq 0 ]
