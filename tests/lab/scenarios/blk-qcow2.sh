# A guest in the lab writes through a qcow2 disk with a backing file; the
# result checks clean with qemu-img: the overlay (made by vireo-img over a
# raw base) holds the guest's writes (and a discarded cluster as zeros),
# converts to raw as the base with the new data where written, and the base
# file is unchanged.
# lab-timeout: 220
# lab-sample: yes
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
command -v qemu-img >/dev/null ||
	lab_fail "no qemu-img in the $LAB_MODE environment (package qemu-utils; run.sh puts it in the outer VM)"
yes BASE-PATTERN-0123456789 | head -c 8388608 >base.raw || lab_fail "cannot create base.raw"
sum_before=$(sha256sum <base.raw)
vireo-img create -f qcow2 -b base.raw -F raw overlay.qcow2 >vimg.out 2>&1 ||
	lab_fail "vireo-img create of the overlay failed: $(head -1 vimg.out)"
export LAB_VMM_ARGS="--disk path=$LAB_TMP/overlay.qcow2,format=qcow2,id=data"
lab_boot vireo "$LAB_INNER_CMDLINE vireo.run=blk-qcow2" 180 ||
	lab_fail "no VIREO-BOOT-OK under vireo-vmm with a qcow2 --disk"
lab_expect "$LAB_TMP/vireo.out" '^blk-qcow2: ok' "the inner blk-qcow2 scenario did not report ok"
[ "$LAB_GUEST_EXIT" = 0 ] ||
	lab_fail "inner scenario blk-qcow2 exited with status '${LAB_GUEST_EXIT:-none}' (want 0)"

[ "$(sha256sum <base.raw)" = "$sum_before" ] || lab_fail "the base file changed"
qemu-img check overlay.qcow2 >check.out 2>&1 ||
	lab_fail "qemu-img check of the overlay failed: $(tr '\n' ' ' <check.out)"
grep -q 'No errors were found' check.out || lab_fail "qemu-img check is not clean: $(tr '\n' ' ' <check.out)"
qemu-img info overlay.qcow2 >info.out 2>&1 || lab_fail "qemu-img info failed"
grep -q '^backing file: base.raw' info.out || lab_fail "overlay lost its backing file: $(tr '\n' ' ' <info.out)"
qemu-img convert -O raw overlay.qcow2 flat.raw >conv.out 2>&1 ||
	lab_fail "qemu-img convert failed: $(head -1 conv.out)"
# Expected: the base with the guest's 4 KiB writes at the same offsets.
cp base.raw want.raw
yes NEW-GUEST-DATA-qcow2 | head -c 4096 >new
for off in 4096 1049088 2095104 8384512; do
	dd if=new of=want.raw bs=512 seek=$((off / 512)) conv=notrunc 2>/dev/null
done
# ... and zeros in the cluster the guest wrote, then discarded.
dd if=/dev/zero of=want.raw bs=65536 seek=48 count=1 conv=notrunc 2>/dev/null
cmp flat.raw want.raw >cmp.out 2>&1 ||
	lab_fail "converted overlay is not base + guest writes: $(head -1 cmp.out)"
# The overlay holds data for exactly the clusters the guest wrote: 0, 16,
# 31 and 32 (the write across 2 MiB) and 127, 64 KiB each; the discarded
# cluster at 3 MiB is a zero cluster; the rest is the base's.
qemu-img map --output=json overlay.qcow2 >map.out 2>&1 || lab_fail "qemu-img map failed"
alloc=$(sed -n 's/.*"length": \([0-9]*\), "depth": 0, "present": true, "zero": false, "data": true.*/\1/p' map.out |
	awk '{ s += $1 } END { print s + 0 }')
[ "$alloc" = 327680 ] ||
	lab_fail "overlay holds $alloc bytes of data, want 327680 (5 clusters): $(tr '\n' ' ' <map.out)"
grep -q '"start": 3145728, "length": 65536, "depth": 0, "present": true, "zero": true, "data": false' map.out ||
	lab_fail "the discarded cluster at 3 MiB is not a zero cluster in the overlay: $(tr '\n' ' ' <map.out)"
grep -q '"depth": 1,' map.out || lab_fail "qemu-img map shows nothing coming from the base"
echo "blk-qcow2: ok (marker after $LAB_MARKER_MS ms, $alloc bytes in the overlay)"
