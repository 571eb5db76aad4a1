# Inner scenario: the virtio devices vireo-vmm gives with two --disk options,
# --virtio-console and --rng, all in one VM (tests/lab/scenarios/vireo-virtio.sh):
#   vda  id=data, writable, 16 MiB of random bytes starting with VIREO-LAB-DISK
#   vdb  id=ro, readonly=on, serial=VIREO-RO-SERIAL, 4 MiB starting with VIREO-RO-DISK
# It writes known bytes to vda (the host then finds them in the image), checks
# that vdb refuses writes, writes a line to hvc0 and reads /dev/hwrng.
fail() {
	echo "virtio: FAIL: $*"
	for d in /sys/bus/pci/devices/*; do
		echo "virtio: pci $d: $(cat $d/vendor $d/device $d/class 2>/dev/null | tr '\n' ' ')driver=$(readlink $d/driver)"
	done
	grep -i -E 'virtio|msi' /proc/interrupts
	dmesg | grep -i -E 'virtio|vd[ab]' | tail -20
	exit 1
}
# vio_pattern: the 4096 bytes the host expects (256 lines of 16 bytes); the
# host side builds the same with the same code.
vio_pattern() {
	i=0
	while [ $i -lt 256 ]; do printf 'VIREO-PAT-%05d\n' $i; i=$((i + 1)); done
}
n=0
while { [ ! -b /dev/vda ] || [ ! -b /dev/vdb ]; } && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -b /dev/vda ] || fail "no /dev/vda (virtio-blk not found; have: $(ls /sys/block | tr '\n' ' '))"
[ -b /dev/vdb ] || fail "no /dev/vdb (second virtio-blk not found; have: $(ls /sys/block | tr '\n' ' '))"
[ "$(cat /sys/block/vda/size)" = 32768 ] || fail "/dev/vda has $(cat /sys/block/vda/size) sectors, want 32768"
[ "$(cat /sys/block/vdb/size)" = 8192 ] || fail "/dev/vdb has $(cat /sys/block/vdb/size) sectors, want 8192"
[ "$(head -c 14 /dev/vda)" = VIREO-LAB-DISK ] || fail "sector 0 of /dev/vda is not the data image's"
[ "$(head -c 13 /dev/vdb)" = VIREO-RO-DISK ] || fail "sector 0 of /dev/vdb is not the read-only image's"
[ "$(cat /sys/block/vda/serial 2>/dev/null)" = vireo-data ] ||
	fail "vda serial is '$(cat /sys/block/vda/serial 2>/dev/null)', want vireo-data (the default from id=data)"
[ "$(cat /sys/block/vdb/serial 2>/dev/null)" = VIREO-RO-SERIAL ] ||
	fail "vdb serial is '$(cat /sys/block/vdb/serial 2>/dev/null)', want VIREO-RO-SERIAL"

# vda: writable. Three writes: 17 bytes into sector 1 through the page cache,
# the 4096-byte pattern at byte 1049088 (sector 2049, not 4 KiB aligned) with
# O_DIRECT, and its first 512 bytes into the last sector (32767), direct too.
[ "$(blockdev --getro /dev/vda)" = 0 ] || fail "/dev/vda is read-only ($(blockdev --getro /dev/vda)), want writable"
printf 'VIREO-GUEST-WROTE' | dd of=/dev/vda bs=512 seek=1 conv=notrunc 2>/dev/null || fail "write to sector 1 of /dev/vda"
vio_pattern >/tmp/pattern
[ "$(wc -c </tmp/pattern)" = 4096 ] || fail "pattern is $(wc -c </tmp/pattern) bytes, want 4096"
dd if=/tmp/pattern of=/dev/vda bs=512 seek=2049 count=8 oflag=direct conv=notrunc 2>/tmp/dd.err ||
	fail "direct write of the pattern to /dev/vda: $(cat /tmp/dd.err)"
dd if=/tmp/pattern of=/dev/vda bs=512 seek=32767 count=1 oflag=direct conv=notrunc 2>/tmp/dd.err ||
	fail "direct write to the last sector of /dev/vda: $(cat /tmp/dd.err)"
sync
echo 3 >/proc/sys/vm/drop_caches
[ "$(dd if=/dev/vda bs=512 skip=1 count=1 2>/dev/null | head -c 17)" = VIREO-GUEST-WROTE ] ||
	fail "sector 1 did not read back"
dd if=/dev/vda bs=512 skip=2049 count=8 iflag=direct 2>/dev/null | cmp - /tmp/pattern ||
	fail "the pattern at sector 2049 did not read back"
echo "virtio: vda: wrote sector 1, sectors 2049-2056 and 32767; read back"
# Large direct reads: Linux fills an indirect table with seg_max + 2 entries
# (the whole queue size); the device must take it and the data must match
# what a buffered read of the same range gives.
dd if=/dev/vda bs=1M count=8 iflag=direct 2>/tmp/dd.err | md5sum >/tmp/big.direct ||
	fail "1 MiB direct reads of /dev/vda: $(cat /tmp/dd.err)"
dd if=/dev/vda bs=1M count=8 2>/dev/null | md5sum >/tmp/big.cached
cmp -s /tmp/big.direct /tmp/big.cached || fail "1 MiB direct reads of /dev/vda differ from buffered reads"
echo "virtio: vda: 8 x 1 MiB direct reads match"

# vdb: read-only. The kernel must see it read-only (VIRTIO_BLK_F_RO) and a
# write must fail; the host checks the image is unchanged.
ro=$(blockdev --getro /dev/vdb)
[ "$ro" = 1 ] || fail "blockdev --getro /dev/vdb says '$ro', want 1"
sum=$(md5sum </dev/vdb)
if dd if=/tmp/pattern of=/dev/vdb bs=512 count=8 oflag=direct conv=notrunc 2>/tmp/dd.err; then
	fail "a direct write to the read-only /dev/vdb succeeded"
fi
echo "virtio: vdb: getro=$ro; write refused: $(grep -v records /tmp/dd.err | head -1)"
echo 3 >/proc/sys/vm/drop_caches
[ "$(md5sum </dev/vdb)" = "$sum" ] || fail "/dev/vdb's content changed after the refused write"

# hvc0: the line must reach the VMM's output.
[ -c /dev/hvc0 ] || fail "no /dev/hvc0 (virtio-console not found)"
echo "virtio: hello through hvc0" >/dev/hvc0

# hwrng: 4096 bytes, and not one repeated byte (random bytes have nearly
# all 256 values; 200 is far below what 4096 random bytes give).
grep -q virtio /sys/class/misc/hw_random/rng_available 2>/dev/null || fail "no virtio hw_random ($(cat /sys/class/misc/hw_random/rng_available 2>/dev/null))"
grep -q virtio /sys/class/misc/hw_random/rng_current || fail "hw_random uses '$(cat /sys/class/misc/hw_random/rng_current)', not virtio"
head -c 4096 /dev/hwrng >/tmp/rng1
n=$(wc -c </tmp/rng1)
[ "$n" = 4096 ] || fail "/dev/hwrng gave $n bytes, want 4096"
vals=$(od -An -v -tu1 /tmp/rng1 | tr -s ' ' '\n' | grep . | sort -u | wc -l)
[ "$vals" -ge 200 ] || fail "4096 bytes from /dev/hwrng have only $vals distinct values"
head -c 4096 /dev/hwrng >/tmp/rng2
! cmp -s /tmp/rng1 /tmp/rng2 || fail "two reads of /dev/hwrng gave the same 4096 bytes"
echo "virtio: hwrng: 4096 bytes, $vals distinct values"
echo "virtio: ok: vda $(cat /sys/block/vda/size) sectors rw, vdb $(cat /sys/block/vdb/size) sectors ro, hvc0, hwrng"
