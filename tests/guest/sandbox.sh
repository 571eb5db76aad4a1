#!/usr/bin/env bash
# The sandbox and the system call filters, with the tiny guests on this
# host's /dev/kvm (test build: the VIREO_TEST_SANDBOX hooks).
#   sandbox.sh VMM GUEST
# 1. A vCPU thread making a forbidden call (hook vcpu-syscall) kills
#    vireo-vmm with SIGSYS: sandboxed (the monitor dies of it too) and not;
#    with --seccomp=log it runs on and the guest finishes.
# 2. Sandboxed (as root), the process cannot open /etc/shadow nor
#    /dev/kvm by path (hook report), runs as 65534, and from outside:
#    no capabilities, no_new_privs, a filter on every thread, namespaces
#    other than ours, PID 1 of its own; the monitor dropped the same way;
#    SIGTERM through the monitor ends it with 143.  --user by number and
#    by name.
# 3. Not root: --sandbox is refused; the default runs filtered with
#    no_new_privs.
set -u
vmm=$(readlink -f "$1") guest=$(readlink -f "$2")
dir=$(mktemp -d)
chmod 755 "$dir"
pid=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; rm -rf "$dir"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
[ "$(id -u)" = 0 ] || { echo "not root: sandbox cases skipped"; exit 77; }

# 1. SIGSYS.
for sb in on off; do
	VIREO_TEST_SANDBOX=vcpu-syscall timeout -k 5 60 "$vmm" --sandbox=$sb --debug-exit \
		--kernel "$guest" </dev/null >"$dir/out" 2>"$dir/err"
	rc=$?
	[ $rc -eq $((128 + 31)) ] || bad "--sandbox=$sb: forbidden call from a vCPU: exit $rc, want 159 (SIGSYS)"
	grep -q 'test hook: socket' "$dir/err" && bad "--sandbox=$sb: the forbidden call returned"
done
VIREO_TEST_SANDBOX=vcpu-syscall timeout -k 5 60 "$vmm" --seccomp=log --debug-exit \
	--kernel "$guest" </dev/null >"$dir/out" 2>"$dir/err"
rc=$?
[ $rc -eq 7 ] || bad "--seccomp=log: exit $rc, want 7 (the guest's)"
grep -q 'test hook: socket() from a vCPU thread returned' "$dir/err" ||
	bad "--seccomp=log: the hook's call did not return"
echo "SIGSYS: ok"

# 2. Sandboxed, looked at from outside while the guest spins.
VIREO_TEST_SANDBOX=report "$vmm" --cpus 2 --kernel "$guest" --cmdline spin \
	</dev/null >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 600); do
	grep -q spinning "$dir/out" && break
	sleep 0.1
done
grep -q spinning "$dir/out" || { bad "the guest did not start"; cat "$dir/err"; exit 1; }
grep -Eq 'test hook: open /etc/shadow: (No such file|Permission denied)' "$dir/err" ||
	bad "/etc/shadow: $(grep -m1 'shadow' "$dir/err")"
grep -Eq 'test hook: open /dev/kvm: (No such file|Permission denied)' "$dir/err" ||
	bad "/dev/kvm by path: $(grep -m1 'open /dev/kvm' "$dir/err")"
grep -q 'test hook: uid 65534 65534 65534 gid 65534 65534 65534 pid 1$' "$dir/err" ||
	bad "ids: $(grep -m1 'test hook: uid' "$dir/err")"
child=$(cut -d' ' -f1 "/proc/$pid/task/$pid/children")
field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s ' \t' ' '; }
for p in "$child" "$pid"; do
	[ -n "$p" ] && [ -r "/proc/$p/status" ] || { bad "no process '$p'"; continue; }
	[ "$(field "$p" Uid)" = "65534 65534 65534 65534" ] || bad "$p: Uid $(field "$p" Uid)"
	[ "$(field "$p" Gid)" = "65534 65534 65534 65534" ] || bad "$p: Gid $(field "$p" Gid)"
	for c in CapInh CapPrm CapEff CapBnd CapAmb; do
		[ "$(field "$p" $c)" = 0000000000000000 ] || bad "$p: $c $(field "$p" $c)"
	done
	[ "$(field "$p" NoNewPrivs)" = 1 ] || bad "$p: NoNewPrivs $(field "$p" NoNewPrivs)"
	[ "$(field "$p" Seccomp)" = 2 ] || bad "$p: Seccomp $(field "$p" Seccomp)"
done
nthreads=$(ls /proc/"$child"/task | wc -l)
for t in /proc/"$child"/task/*; do
	[ "$(sed -n 's/^Seccomp:[[:space:]]*//p' "$t/status")" = 2 ] ||
		bad "thread $(cat "$t/comm") has no filter"
done
for ns in mnt pid net ipc uts; do
	[ "$(readlink "/proc/$child/ns/$ns")" != "$(readlink "/proc/self/ns/$ns")" ] ||
		bad "the VM's process shares our $ns namespace"
done
[ "$(field "$child" NSpid | awk '{print $NF}')" = 1 ] || bad "NSpid $(field "$child" NSpid)"
kill -TERM $pid
wait $pid
rc=$?
pid=
[ $rc -eq 143 ] || bad "SIGTERM through the monitor: exit $rc, want 143"
echo "sandboxed: checked ($nthreads threads, all filtered)"

# --user, by number and by name.
for u in 1234:4321 nobody; do
	want="uid 1234 1234 1234 gid 4321 4321 4321"
	[ $u = nobody ] && want="uid $(id -u nobody) $(id -u nobody) $(id -u nobody) gid $(id -g nobody) $(id -g nobody) $(id -g nobody)"
	VIREO_TEST_SANDBOX=report timeout -k 5 60 "$vmm" --user $u --debug-exit --kernel "$guest" \
		</dev/null >"$dir/out" 2>"$dir/err"
	rc=$?
	[ $rc -eq 7 ] || bad "--user $u: exit $rc, want 7"
	grep -q "test hook: $want pid 1\$" "$dir/err" || bad "--user $u: $(grep -m1 'test hook: uid' "$dir/err")"
done
echo "--user: ok"

# 3. Not root.
cp "$vmm" "$guest" "$dir/"
chmod 755 "$dir"/*
v=$dir/$(basename "$vmm") g=$dir/$(basename "$guest")
if command -v setpriv >/dev/null; then
	out=$(cd / && setpriv --reuid=65534 --regid=65534 --clear-groups "$v" --sandbox --kernel "$g" 2>&1 </dev/null)
	rc=$?
	[ $rc -eq 1 ] && grep -q -- '--sandbox needs root' <<<"$out" ||
		bad "--sandbox without root: exit $rc: $out"
fi
grep -q "Sanitizer\|runtime error" "$dir/err" && bad "sanitizer report"
[ $fail -eq 0 ] && echo "sandbox: ok"
exit $fail
