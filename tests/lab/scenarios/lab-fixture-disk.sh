# Lab self-test: the inner fixture takes its scenario from a disk
# (vireo.run=/dev/vda), here under
# QEMU microvm with a virtio-blk disk, and reports the script's exit status.
# lab-timeout: 150
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
cat >script.sh <<'SCRIPT'
echo "disk-script: ok, $(cat /sys/block/vda/size) sectors"
exit 7
SCRIPT
dd if=script.sh of=disk.img bs=4096 conv=sync 2>/dev/null || lab_fail "cannot write disk.img"
LAB_VMM_ARGS="-drive file=$LAB_TMP/disk.img,format=raw,if=none,id=d0 -device virtio-blk-device,drive=d0"
lab_boot microvm "$LAB_INNER_CMDLINE vireo.run=/dev/vda" 120 ||
	lab_fail "no VIREO-BOOT-OK from the fixture with a disk"
lab_expect "$LAB_TMP/microvm.out" '^disk-script: ok, 8 sectors' "the script on /dev/vda did not run"
[ "$LAB_GUEST_EXIT" = 7 ] || lab_fail "disk script exit status '${LAB_GUEST_EXIT:-none}' (want 7)"
