# The project's meson tests that need /dev/kvm (suites guest and kvm: the
# tiny guests, kvm-probe), run where /dev/kvm is: in the outer VM, on the
# host's own files (run.sh --host-fs shares the host's / at $LAB_HOST), so
# the same build, scripts and tools are used as on a host with /dev/kvm.
# tests/run-all.sh runs this when the host has no usable /dev/kvm, then
# counts each test from the meson log it leaves in the build directory.
# Env: KVM_TESTS_BUILD  build directory, relative to the checkout (build/asan)
#      KVM_TESTS_LOGBASE meson's --logbase (lab-kvm: meson-logs/lab-kvm.json)
#      KVM_TESTS_ARGS   more meson test arguments (e.g. a test name)
# lab-timeout: 2400
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
[ -n "${LAB_HOST:-}" ] && [ -d "$LAB_HOST/usr/bin" ] ||
	lab_fail "no host file system here (give run.sh --host-fs)"
[ -n "${LAB_HOST_TOP:-}" ] || lab_fail "LAB_HOST_TOP is not set (run.sh sets it with --host-fs)"
build=$LAB_HOST_TOP/${KVM_TESTS_BUILD:-build/asan}
logbase=${KVM_TESTS_LOGBASE:-lab-kvm}
[ -f "$LAB_HOST/$build/build.ninja" ] || lab_fail "no meson build at $build"
rm -f "$LAB_HOST/$build/meson-logs/$logbase.json" "$LAB_HOST/$build/meson-logs/$logbase.txt"
# Emulation is slow: each test gets several times its own time bound.
set -- meson test -C "$build" --no-rebuild --suite guest --suite kvm \
	--logbase "$logbase" --num-processes "$(nproc)" --timeout-multiplier 6 \
	--print-errorlogs ${KVM_TESTS_ARGS:-}
envs="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if [ "$LAB_HOST" = / ]; then
	# Direct mode: this is the host.
	# shellcheck disable=SC2086
	env -i $envs "$@"
	rc=$?
else
	# The outer VM's own /proc, /sys, /dev (with its /dev/kvm) and a fresh
	# /tmp over the host's, in the host's tree, then chroot into it.
	# A checkout under /tmp (CI's fresh clones) is kept visible through
	# the fresh /tmp: bound aside first, then bound back at its path.
	h=$LAB_HOST
	case "$LAB_HOST_TOP" in
	/tmp/*)
		mkdir -p /lab-top
		mount -o bind "$h$LAB_HOST_TOP" /lab-top || lab_fail "binding $LAB_HOST_TOP aside failed" ;;
	esac
	mount -t proc proc "$h/proc" &&
		mount -t sysfs sysfs "$h/sys" &&
		mount -o rbind /dev "$h/dev" &&
		mount -t tmpfs -o mode=1777 tmpfs "$h/tmp" ||
		lab_fail "mounting /proc, /sys, /dev or /tmp inside $h failed"
	case "$LAB_HOST_TOP" in
	/tmp/*)
		mkdir -p "$h$LAB_HOST_TOP" && mount -o bind /lab-top "$h$LAB_HOST_TOP" ||
			lab_fail "binding $LAB_HOST_TOP back under the fresh /tmp failed" ;;
	esac
	[ -f "$h/$build/meson-private/build.dat" ] || lab_fail "no $build/meson-private/build.dat inside the chroot"
	[ -c "$h/dev/kvm" ] || lab_fail "no /dev/kvm inside the chroot"
	# shellcheck disable=SC2086
	chroot "$h" /usr/bin/env -i $envs "$@"
	rc=$?
	umount -l "$h/tmp" 2>/dev/null
fi
[ -f "$LAB_HOST/$build/meson-logs/$logbase.json" ] ||
	lab_fail "meson test left no $build/meson-logs/$logbase.json (status $rc)"
n=$(grep -c . "$LAB_HOST/$build/meson-logs/$logbase.json")
lab_data "tests=$n status=$rc"
[ "$rc" -eq 0 ] || lab_fail "meson test: status $rc (each test's result is counted from $logbase.json)"
exit 0
