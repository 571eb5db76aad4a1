# Inner scenario: /dev/vda is a qcow2 overlay (8 MiB) over a raw base whose
# bytes are the stream `yes BASE-PATTERN-0123456789`.  Read the base pattern
# through the overlay, write the stream `yes NEW-GUEST-DATA-qcow2` (4 KiB
# each) at the offsets the host scenario checks, sync, read them back;
# write and discard one whole cluster.
fail() {
	echo "blk-qcow2: FAIL: $*"
	dmesg | grep -i -E 'vda|virtio_blk|I/O error' | tail -10
	exit 1
}
base_at() {   # base_at OFFSET LEN: the base pattern's bytes there
	yes BASE-PATTERN-0123456789 | head -c $(($1 + $2)) | tail -c "$2"
}
[ -b /dev/vda ] || fail "no /dev/vda (virtio-blk not found)"
[ "$(cat /sys/block/vda/size)" = 16384 ] ||
	fail "/dev/vda has $(cat /sys/block/vda/size) sectors, want 16384 (the image's virtual size)"
cd /tmp || fail "no /tmp"
# The base pattern shows through the empty overlay (first sectors, a
# middle and the last 4 KiB).
for off in 0 1048576 5000192 8384512; do
	base_at $off 4096 >want
	dd if=/dev/vda bs=512 skip=$((off / 512)) count=8 2>/dev/null >got
	cmp -s want got || fail "bytes at $off are not the base pattern"
done
echo "blk-qcow2: base pattern read through the overlay"
yes NEW-GUEST-DATA-qcow2 | head -c 4096 >new
# 4 KiB at 4096 (inside cluster 0), at 1 MiB + 512 (unaligned in its
# cluster), across the cluster boundary at 2 MiB, and the last 4 KiB.
for off in 4096 1049088 2095104 8384512; do
	dd if=new of=/dev/vda bs=512 seek=$((off / 512)) conv=notrunc 2>/dev/null ||
		fail "write at $off"
done
sync
echo 3 >/proc/sys/vm/drop_caches
for off in 4096 1049088 2095104 8384512; do
	dd if=/dev/vda bs=512 skip=$((off / 512)) count=8 2>/dev/null >got
	cmp -s new got || fail "write at $off did not read back"
done
# Around the writes the base is still there.
for off in 0 1053184 2099200 6291456; do
	base_at $off 4096 >want
	dd if=/dev/vda bs=512 skip=$((off / 512)) count=8 2>/dev/null >got
	cmp -s want got || fail "bytes at $off changed (want the base pattern)"
done
# Discard a whole cluster the guest wrote (64 KiB at 3 MiB): it then reads
# as zeros (qcow2 v3 zero cluster; not the base below it).
yes NEW-GUEST-DATA-qcow2 | head -c 65536 >new64
dd if=new64 of=/dev/vda bs=65536 seek=48 conv=notrunc 2>/dev/null || fail "write at 3 MiB"
sync
blkdiscard -o 3145728 -l 65536 /dev/vda || fail "blkdiscard of 64 KiB at 3 MiB"
echo 3 >/proc/sys/vm/drop_caches
head -c 65536 /dev/zero >zero64
dd if=/dev/vda bs=65536 skip=48 count=1 2>/dev/null >got
cmp -s zero64 got || fail "the discarded cluster at 3 MiB does not read as zeros"
echo "blk-qcow2: ok: 4 writes read back, base around them intact, discard reads zeros"
