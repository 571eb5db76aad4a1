#!/usr/bin/env bash
# /dev/kvm missing or not accessible: one line naming the problem, exit 1.
# Both cases run in a private mount namespace with an empty tmpfs on /dev,
# so they do not depend on this host's /dev/kvm (which may be 0666):
#   missing:       no /dev/kvm at all;
#   no permission: a /dev/kvm node of our own (KVM's char device 10:232),
#                  root's and mode 0600, opened by an unprivileged user.
# A vireo-vmm that gets past the open is killed after 20 s (and fails).
# Exits 77 (skip) when not root or unshare/setpriv/mknod are missing.
#   kvm-access.sh VMM GUEST
set -u
vmm=$(readlink -f "$1") guest=$(readlink -f "$2")
[ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v setpriv >/dev/null &&
	command -v mknod >/dev/null || exit 77
fail=0
# check WHAT OUT RC MESSAGE: exit 1 with exactly one line matching MESSAGE.
check() {
	echo "$2"
	[ "$3" -eq 1 ] || { echo "$1: exit $3, expected 1"; fail=1; }
	grep -q "$4" <<<"$2" || { echo "$1: no clear message (want '$4')"; fail=1; }
	[ "$(wc -l <<<"$2")" -eq 1 ] || { echo "$1: more than one line"; fail=1; }
}
out=$(unshare -m sh -c 'mount -t tmpfs tmpfs /dev && exec timeout -s KILL 20 "$0" --kernel "$1"' "$vmm" "$guest" 2>&1 </dev/null)
rc=$?
check "missing /dev/kvm" "$out" $rc '/dev/kvm does not exist'
# The test build's binary may sit in a root-only directory: copy it out.
tmp=$(mktemp -d); chmod 755 "$tmp"; cp "$vmm" "$guest" "$tmp/"
out=$(cd / && unshare -m sh -c 'mount -t tmpfs tmpfs /dev && mknod -m 0600 /dev/kvm c 10 232 &&
	[ "$(stat -c %a:%u /dev/kvm)" = 600:0 ] || { echo "kvm-access: cannot make a 0600 /dev/kvm"; exit 99; }
	exec timeout -s KILL 20 setpriv --reuid=65534 --regid=65534 --clear-groups "$0" --kernel "$1"' \
	"$tmp/$(basename "$vmm")" "$tmp/$(basename "$guest")" 2>&1 </dev/null)
rc=$?
rm -rf "$tmp"
check "no permission" "$out" $rc '/dev/kvm: permission denied'
exit $fail
