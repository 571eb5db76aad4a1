# A login shell on the guest's virtio console, driven from the host through
# vireo-vmm's console back end: with --virtio-console and --console stdio,
# the guest's hvc0 and ttyS0 both write to vireo-vmm's standard output and
# its standard input goes to hvc0. The guest runs busybox getty + login on
# /dev/hvc0 (tests/lab/inner/hvc-login.sh); this side waits for "login:",
# types root, waits for the shell's prompt, types a command whose output
# (tty name, uid, an arithmetic result) can only come from running it on
# hvc0, then "exit", and the guest powers off.
# lab-timeout: 180
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
out=$LAB_TMP/vireo.out
mkfifo "$LAB_TMP/in" || lab_fail "mkfifo failed"
vireo-vmm --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" \
	--cmdline "$LAB_INNER_CMDLINE vireo.notimer vireo.run=hvc-login" --memory 256M --cpus 1 \
	--virtio-console --console stdio <"$LAB_TMP/in" >"$out" 2>&1 &
pid=$!
# Hold the FIFO open for writing for the whole run (no EOF on vireo-vmm's input).
exec 3>"$LAB_TMP/in"

# hl_wait PATTERN SECONDS: wait for PATTERN (grep -E) in the output, prompts
# (no newline) included; fails the scenario if it does not come.
hl_wait() {
	_i=0
	until tr -d '\r' <"$out" | grep -Eq "$1"; do
		kill -0 "$pid" 2>/dev/null || { tr -d '\r' <"$out"; lab_fail "vireo-vmm exited before '$1' showed"; }
		_i=$((_i + 1))
		[ $_i -lt $(($2 * 10)) ] || { kill -9 "$pid"; tr -d '\r' <"$out"; lab_fail "no '$1' within $2 s"; }
		sleep 0.1
	done
}

hl_wait '^hvc-login: getty on hvc0' 120
hl_wait 'login: ?$' 30
# Nothing typed yet, so no shell yet: the prompt must not show before login.
! tr -d '\r' <"$out" | grep -q 'hvc-shell# ' || lab_fail "a shell prompt showed before the login"
printf 'root\n' >&3
hl_wait 'hvc-shell# ' 30
# Its output differs from its echo: $(tty), $(id -u) and $((6*7)) expand only when run.
# shellcheck disable=SC2016 # expanded by the guest's shell, not here
printf 'echo "VIREO-HVC-CMD $(tty) uid=$(id -u) $((6*7))"\n' >&3
hl_wait '^VIREO-HVC-CMD ' 30
tr -d '\r' <"$out" | grep -q '^VIREO-HVC-CMD /dev/hvc0 uid=0 42$' ||
	lab_fail "the command on hvc0 printed '$(tr -d '\r' <"$out" | grep '^VIREO-HVC-CMD ')', want 'VIREO-HVC-CMD /dev/hvc0 uid=0 42'"
printf 'exit\n' >&3
hl_wait '^hvc-login: the session on hvc0 ended' 30
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; lab_fail "vireo-vmm still running 30 s after the shell on hvc0 exited"; }
wait "$pid"
rc=$?
exec 3>&-
tr -d '\r' <"$out"
[ "$rc" = 0 ] || lab_fail "vireo-vmm exited $rc after the guest powered off (want 0)"
lab_expect "$out" '^VIREO-SCENARIO-EXIT 0' "the inner hvc-login scenario did not exit 0"
echo "vireo-hvc-login: logged in on hvc0, ran a command, logged out"
