#!/usr/bin/env bash
# Refcount overflow: with refcount_bits=1 a cluster shared by two L2 entries
# would need refcount 2.  Both checkers must report it; vireo-img must refuse
# to take a snapshot (every cluster would need one more reference) with an
# error naming the overflow and leave the image unchanged, and must not
# crash on a 16-bit refcount at its maximum either.
. "$(dirname "$0")/common.sh"

IMG=img.qcow2
# 1-bit refcounts, cluster at guest 0 referenced again from guest 64k.
"$QEMU_IMG" create -q -f qcow2 -o cluster_size=65536,refcount_bits=1 $IMG 4M
"$QEMU_IO" -f qcow2 -c "write -P 0xab 0 64k" -c "write -P 0xcd 1m 64k" $IMG >/dev/null
host=$($QCOW2PY $IMG host 0)
$QCOW2PY $IMG l2 65536 $((host))       # no COPIED flag: shared
check_agree $IMG "refcount_bits=1 shared cluster"
read_agree $IMG "refcount_bits=1 shared cluster"

# A fresh 1-bit image: a snapshot needs refcount 2 everywhere.
rm -f $IMG
"$QEMU_IMG" create -q -f qcow2 -o cluster_size=65536,refcount_bits=1 $IMG 4M
"$QEMU_IO" -f qcow2 -c "write -P 0xab 0 64k" $IMG >/dev/null
# qemu-img itself answers this one by widening the refcounts (amend); any
# answer is fine if it is either a clean image with the snapshot or a
# refusal that leaves the image unchanged.
before=$(img_state $IMG)
vimg snapshot -c s $IMG
rc=$?
if [ $rc -eq 0 ]; then
	qemu_check $IMG "refcount_bits=1 snapshot taken"
	qemu_raw $IMG out.raw -l s
elif [ $rc -lt 128 ]; then
	if [ "$(img_state $IMG)" != "$before" ]; then
		fail "refcount_bits=1 snapshot refused but the image changed"
	elif ! grep -qEi 'overflow|refcount|reference count|range' "$TEST_DIR/LAST.err"; then
		fail "refcount_bits=1 snapshot refused without naming the problem: $(head -1 "$TEST_DIR/LAST.err")"
	else
		echo "refcount_bits=1 snapshot: refused, names the problem, image unchanged"
	fi
fi

# 16-bit refcount at its maximum on a data cluster: check reports it, a
# snapshot (needs +1) must refuse, not wrap to 0.
rm -f $IMG
"$QEMU_IMG" create -q -f qcow2 -o cluster_size=65536 $IMG 4M
"$QEMU_IO" -f qcow2 -c "write -P 0xab 0 64k" $IMG >/dev/null
host=$($QCOW2PY $IMG host 0)
$QCOW2PY $IMG refcount $host 0xffff
$QCOW2PY $IMG l2 0 $((host))            # shared, so refcount > 1 is "legal"
check_verdict_nonzero() {
	vimg check $IMG
	local rc=$?
	[ $rc -ne 0 ] && [ $rc -lt 128 ] && echo "$1: vireo-img check reports a problem" ||
		{ [ $rc -eq 0 ] && fail "$1: vireo-img check says clean"; }
}
check_verdict_nonzero "refcount 0xffff"
refuse "refcount 0xffff" 'overflow|refcount|reference count|range' snapshot -c s $IMG
finish
