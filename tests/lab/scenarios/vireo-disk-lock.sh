# Disk image locking between VMMs: while a vireo-vmm runs with an image as a
# writable disk (exclusive lock), a second vireo-vmm opening the same image
# writable, or read-only, is refused at start-up: non-zero exit and an error
# that names the file. Two read-only users may share an image (shared locks):
# checked with a second read-only VMM next to a read-only first one, which
# must boot. After the writer has gone, the image opens again (the refusals
# came from the lock, not from the image).
# lab-timeout: 240
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
img=$LAB_TMP/shared.img
head -c 4194304 /dev/zero >"$img" || lab_fail "cannot create $img"
# vireo-vmm itself is started (no wrapper function or subshell), so that $pid
# and signals reach the VMM.
boot="--kernel $LAB_INNER_KERNEL --initrd $LAB_INNER_INITRD --memory 256M --cpus 1"

# dl_first OPTS: a first VMM with the image, idling; waits for its guest to run.
dl_first() {
	out=$LAB_TMP/first.out
	: >"$out"
	# shellcheck disable=SC2086
	vireo-vmm $boot --cmdline "$LAB_INNER_CMDLINE vireo.notimer vireo.run=idle vireo.idle=100" \
		--disk "path=$img$1" </dev/null >"$out" 2>&1 &
	pid=$!
	_i=0
	until tr -d '\r' <"$out" | grep -q '^idle: ready'; do
		kill -0 $pid 2>/dev/null || { tr -d '\r' <"$out"; lab_fail "the first VMM (disk $img$1) exited before its guest was up"; }
		_i=$((_i + 1))
		[ $_i -lt 1200 ] || { kill -9 $pid; lab_fail "the first VMM's guest was not up within 120 s"; }
		sleep 0.1
	done
}

# dl_stop_first: SIGTERM to the first VMM; it must exit (128+15) within 10 s.
dl_stop_first() {
	kill -TERM $pid
	_i=0
	while kill -0 $pid 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
	kill -0 $pid 2>/dev/null && { kill -9 $pid; lab_fail "the first VMM did not stop within 10 s of SIGTERM"; }
	wait $pid
}

# dl_refused OPTS WHAT: a second VMM with the image must fail at once.
dl_refused() {
	# shellcheck disable=SC2086
	timeout -s KILL 30 vireo-vmm $boot --cmdline "$LAB_INNER_CMDLINE vireo.run=poweroff" \
		--disk "path=$img$1" </dev/null >"$LAB_TMP/second.out" 2>&1
	_rc=$?
	echo "second VMM ($2): exit $_rc: $(grep -v '^ *$' "$LAB_TMP/second.out" | head -3)"
	[ $_rc -ne 0 ] || { dl_stop_first; lab_fail "a second VMM opened $img $2 while the first had it writable (exit 0)"; }
	[ $_rc -ne 137 ] || { dl_stop_first; lab_fail "a second VMM with $img $2 was not refused (killed after 30 s)"; }
	grep -q "$img" "$LAB_TMP/second.out" || { dl_stop_first; lab_fail "the refusal ($2) does not name $img"; }
	grep -qi 'in use\|lock' "$LAB_TMP/second.out" || { dl_stop_first; lab_fail "the refusal ($2) does not say the image is in use"; }
	! grep -q VIREO-BOOT-OK "$LAB_TMP/second.out" || { dl_stop_first; lab_fail "the refused VMM ($2) booted its guest"; }
}

# 1. A writer holds the image: a second writer and a second reader are refused.
dl_first ""
dl_refused "" "writable"
dl_refused ",readonly=on" "read-only"
kill -0 $pid 2>/dev/null || lab_fail "the first VMM stopped while the others were refused"
dl_stop_first
rc=$?
echo "first VMM (writable) stopped: exit $rc"
[ $rc = 143 ] || lab_fail "the first VMM exited $rc on SIGTERM (want 143)"

# 2. A reader holds it: a second reader boots its guest and powers off (0).
dl_first ",readonly=on"
# shellcheck disable=SC2086
timeout -s KILL 120 vireo-vmm $boot --cmdline "$LAB_INNER_CMDLINE vireo.notimer vireo.run=poweroff" \
	--disk "path=$img,readonly=on" </dev/null >"$LAB_TMP/second.out" 2>&1
rc=$?
tr -d '\r' <"$LAB_TMP/second.out" | tail -5
[ $rc = 0 ] || { dl_stop_first; lab_fail "a second read-only VMM next to a read-only first one exited $rc (want 0: shared locks)"; }
lab_expect "$LAB_TMP/second.out" '^VIREO-SCENARIO-EXIT 0' "the second read-only VMM's guest did not run"
# ... but a writer is refused while that reader runs.
dl_refused "" "writable, next to a reader"
dl_stop_first
echo "vireo-disk-lock: writer excludes writer and reader; readers share; reader excludes writer"
