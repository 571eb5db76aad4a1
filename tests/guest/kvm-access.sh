#!/usr/bin/env bash
# /dev/kvm missing or not accessible: one line naming the problem, exit 1.
# Uses a private mount namespace (an empty /dev) and an unprivileged user;
# exits 77 (skip) when not root or unshare/setpriv are missing.
#   kvm-access.sh VMM GUEST
set -u
vmm=$(readlink -f "$1") guest=$(readlink -f "$2")
[ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v setpriv >/dev/null || exit 77
fail=0
out=$(unshare -m sh -c 'mount -t tmpfs tmpfs /dev && exec "$0" --kernel "$1"' "$vmm" "$guest" 2>&1 </dev/null)
rc=$?
echo "$out"
[ $rc -eq 1 ] || { echo "missing /dev/kvm: exit $rc, expected 1"; fail=1; }
grep -q '/dev/kvm does not exist' <<<"$out" || { echo "missing /dev/kvm: no clear message"; fail=1; }
[ "$(wc -l <<<"$out")" -eq 1 ] || { echo "missing /dev/kvm: more than one line"; fail=1; }
# The test build's binary may sit in a root-only directory: copy it out.
tmp=$(mktemp -d); chmod 755 "$tmp"; cp "$vmm" "$guest" "$tmp/"
out=$(cd / && setpriv --reuid=65534 --regid=65534 --clear-groups "$tmp/$(basename "$vmm")" \
	--kernel "$tmp/$(basename "$guest")" 2>&1 </dev/null)
rc=$?
rm -rf "$tmp"
echo "$out"
if [ -r /dev/kvm ] && [ "$(stat -c %a /dev/kvm)" = 666 ]; then
	echo "(/dev/kvm is world-accessible here: permission case not testable)"
else
	[ $rc -eq 1 ] || { echo "no permission: exit $rc, expected 1"; fail=1; }
	grep -q '/dev/kvm: permission denied' <<<"$out" || { echo "no permission: no clear message"; fail=1; }
fi
exit $fail
