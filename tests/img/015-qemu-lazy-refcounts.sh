#!/usr/bin/env bash
# QEMU -> ours: lazy_refcounts=on images, clean and left dirty by a qemu-io
# that aborted after writing: vireo-img reads them identically, its check
# verdict agrees with qemu-img's, and `vireo-img check -r all` repairs the
# dirty image so that qemu-img check finds it clean with the data intact.
. "$(dirname "$0")/common.sh"

dirty_bit() { $QCOW2PY "$1" get incompatible_features | python3 -c 'import sys; print(int(sys.stdin.read()) & 1)'; }

must "create" "$QEMU_IMG" create -f qcow2 -o lazy_refcounts=on img.qcow2 8M
qio img.qcow2 "write -P 0x71 0 1m" "write -P 0x72 3m 64k"
check_agree img.qcow2 "clean"
read_agree img.qcow2 "clean"

# Crash after allocating writes: the dirty bit stays set and the refcounts
# are stale.
"$QEMU_IO" -f qcow2 -c "write -P 0x73 5m 256k" -c "write -P 0x74 100k 8k" -c abort img.qcow2 >/dev/null 2>&1
echo "after abort: dirty bit $(dirty_bit img.qcow2)"
read_agree img.qcow2 "dirty"
check_agree img.qcow2 "dirty"
qemu_raw img.qcow2 before.raw
if must "check -r all" "$VIREO_IMG" check -r all img.qcow2; then
	echo "after vireo-img check -r all: dirty bit $(dirty_bit img.qcow2)"
	qemu_check img.qcow2 "repaired"
	qemu_raw img.qcow2 after.raw && same_raw before.raw after.raw "repaired: data"
	python3 - <<'PY' && echo "repaired: holds the writes made before the abort" || fail "repaired: writes before the abort are missing"
d = open("after.raw", "rb").read()
assert d[5 << 20:(5 << 20) + (256 << 10)] == b"\x73" * (256 << 10)
assert d[100 << 10:(108 << 10)] == b"\x74" * (8 << 10)
PY
fi
finish
