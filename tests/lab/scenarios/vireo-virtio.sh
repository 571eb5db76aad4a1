# A stock Debian kernel under vireo-vmm uses the virtio devices over PCI:
# a raw disk (read, written, flushed; the write checked in the image on the
# host afterwards), a virtio console (a line written to /dev/hvc0 shows on
# the VMM's output) and virtio-rng (/dev/hwrng gives bytes).
# lab-timeout: 200
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
img=$LAB_TMP/disk.img
dd if=/dev/zero of="$img" bs=1024 count=16384 2>/dev/null || lab_fail "cannot create $img"
printf 'VIREO-LAB-DISK' | dd of="$img" conv=notrunc 2>/dev/null
export LAB_VMM_ARGS="--disk path=$img,id=data --virtio-console --rng"
lab_boot vireo "$LAB_INNER_CMDLINE vireo.run=virtio" 160 ||
	lab_fail "no VIREO-BOOT-OK under vireo-vmm with --disk/--virtio-console/--rng"
lab_expect "$LAB_TMP/vireo.out" '^virtio: ok' "the inner virtio scenario did not report ok"
lab_expect "$LAB_TMP/vireo.out" '^virtio: hello through hvc0' "the line written to /dev/hvc0 did not reach the VMM's output"
[ "$LAB_GUEST_EXIT" = 0 ] ||
	lab_fail "inner scenario virtio exited with status '${LAB_GUEST_EXIT:-none}' (want 0)"
dd if="$img" bs=512 skip=1 count=1 2>/dev/null | grep -q VIREO-GUEST-WROTE ||
	lab_fail "the guest's write to sector 1 of /dev/vda is not in $img"
echo "vireo-virtio: marker after $LAB_MARKER_MS ms"
