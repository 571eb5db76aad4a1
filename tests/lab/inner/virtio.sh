# Inner scenario: the virtio devices vireo-vmm gives with --disk (id=data,
# a 16 MiB image starting with VIREO-LAB-DISK), --virtio-console and --rng.
fail() {
	echo "virtio: FAIL: $*"
	for d in /sys/bus/pci/devices/*; do
		echo "virtio: pci $d: $(cat $d/vendor $d/device $d/class 2>/dev/null | tr '\n' ' ')driver=$(readlink $d/driver)"
	done
	grep -i -E 'virtio|msi' /proc/interrupts
	dmesg | grep -i -E 'virtio|vda' | tail -20
	exit 1
}
[ -b /dev/vda ] || fail "no /dev/vda (virtio-blk not found)"
[ "$(cat /sys/block/vda/size)" = 32768 ] || fail "/dev/vda has $(cat /sys/block/vda/size) sectors, want 32768"
[ "$(head -c 14 /dev/vda)" = VIREO-LAB-DISK ] || fail "sector 0 of /dev/vda is not the image's"
grep -q vireo-data /sys/block/vda/serial 2>/dev/null || echo "virtio: note: serial is '$(cat /sys/block/vda/serial 2>/dev/null)'"
printf 'VIREO-GUEST-WROTE' | dd of=/dev/vda bs=512 seek=1 conv=notrunc 2>/dev/null || fail "write to /dev/vda"
sync
echo 3 >/proc/sys/vm/drop_caches
[ "$(dd if=/dev/vda bs=512 skip=1 count=1 2>/dev/null | head -c 17)" = VIREO-GUEST-WROTE ] ||
	fail "sector 1 did not read back"
[ -c /dev/hvc0 ] || fail "no /dev/hvc0 (virtio-console not found)"
echo "virtio: hello through hvc0" >/dev/hvc0
grep -q virtio /sys/class/misc/hw_random/rng_available 2>/dev/null || fail "no virtio hw_random ($(cat /sys/class/misc/hw_random/rng_available 2>/dev/null))"
n=$(head -c 64 /dev/hwrng | wc -c)
[ "$n" = 64 ] || fail "/dev/hwrng gave $n bytes, want 64"
echo "virtio: ok: vda $(cat /sys/block/vda/size) sectors, hvc0, hwrng"
