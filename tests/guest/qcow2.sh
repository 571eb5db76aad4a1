#!/usr/bin/env bash
# The tiny virtio-blk guest on a qcow2 overlay over a raw base: it reads
# sector 0 (from the base, through the backing chain) and writes sector 1
# (into the overlay).  Afterwards qemu-img must find the overlay clean, its
# raw contents must be the base with sector 1 replaced, the overlay must
# own only what was written, and the base must be unchanged.
#   qcow2.sh VMM VIREO_IMG GUEST
set -u
vmm=$(realpath "$1") vimg=$(realpath "$2") guest=$(realpath "$3")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
bad() { echo "qcow2: $*"; fail=1; }
command -v qemu-img >/dev/null || { echo "qcow2: qemu-img is missing (package qemu-utils, see scripts/packages.txt)"; exit 1; }

# Base: sector 0 holds the text the guest prints, sector s >= 2 is filled
# with byte (s % 251) + 1.  Expected: the same with the guest's sector 1
# (its message, then byte i at offset i).
python3 - "$dir/base.raw" "$dir/expect.raw" <<'EOF' || exit 1
import sys
size = 1 << 20
base = bytearray(size)
text = b"VIREO TEST DISK SECTOR 0"
base[0:len(text)] = text
for s in range(2, size // 512):
    base[s * 512:(s + 1) * 512] = bytes([s % 251 + 1]) * 512
open(sys.argv[1], "wb").write(base)
msg = b"written by the tiny guest\0"
sec1 = bytes(msg[i] if i < len(msg) else i & 0xff for i in range(512))
base[512:1024] = sec1
open(sys.argv[2], "wb").write(base)
EOF
sum_before=$(sha256sum <"$dir/base.raw")
(cd "$dir" && "$vimg" create -f qcow2 -b base.raw -F raw top.qcow2 >/dev/null) ||
	{ echo "qcow2: vireo-img create failed"; exit 1; }

timeout -k 5 120 "$vmm" --debug-exit --disk "path=$dir/top.qcow2,format=qcow2" \
	--kernel "$guest" </dev/null >"$dir/out" 2>"$dir/err"
rc=$?
[ $rc -eq 0 ] || bad "vireo-vmm exit status $rc, expected 0"
for re in 'capacity 2048 sectors' 'sector 1 read back' \
	'sector 0: VIREO TEST DISK SECTOR 0' 'virtio-blk ok'; do
	grep -q "$re" "$dir/out" || bad "guest output has no line '$re'"
done
grep -q "Sanitizer\|runtime error" "$dir/err" && bad "sanitizer report"

qemu-img check "$dir/top.qcow2" >"$dir/check" 2>&1 ||
	bad "qemu-img check failed: $(tr '\n' ' ' <"$dir/check")"
grep -q 'No errors were found' "$dir/check" || bad "qemu-img check is not clean"
qemu-img convert -O raw "$dir/top.qcow2" "$dir/flat.raw" ||
	bad "qemu-img convert failed"
cmp "$dir/flat.raw" "$dir/expect.raw" >"$dir/cmp" 2>&1 ||
	bad "converted overlay differs from base + guest write: $(cat "$dir/cmp")"
# The overlay owns the first cluster (written); the rest is the base's.
qemu-img map --output=json "$dir/top.qcow2" >"$dir/map" 2>&1 || bad "qemu-img map failed"
python3 - "$dir/map" <<'EOF' || bad "overlay allocation wrong: $(tr '\n' ' ' <"$dir/map")"
import json, sys
m = json.load(open(sys.argv[1]))
def depth(off):
    for e in m:
        if e["start"] <= off < e["start"] + e["length"]:
            return e["depth"]
sys.exit(0 if depth(512) == 0 and depth(65536) == 1 and depth((1 << 20) - 512) == 1 else 1)
EOF
[ "$(sha256sum <"$dir/base.raw")" = "$sum_before" ] || bad "the base image changed"
[ $fail -eq 0 ] || { head -20 "$dir/out" "$dir/err"; exit 1; }
echo "qcow2: ok"
