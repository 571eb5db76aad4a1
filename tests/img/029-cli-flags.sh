#!/usr/bin/env bash
# Command-line details found in review: check -T takes a cache mode as
# qemu-img's does (and ignores it), and create with a backing file and no
# size prints the backing file's size in its Formatting line.  And
# --confine-backing (every verb) keeps the backing chain inside the image's
# directory.  convert -S 0 (no sparse detection) once divided by zero.
. "$(dirname "$0")/common.sh"

"$QEMU_IMG" create -q -f qcow2 base.qcow2 4M
must "check -T" "$VIREO_IMG" check -T none base.qcow2 && echo "check -T none: accepted"
must "check -T writeback" "$VIREO_IMG" check -q -T writeback -r leaks base.qcow2 &&
	echo "check -T writeback -r leaks: accepted"
must "create" "$VIREO_IMG" create -f qcow2 -b base.qcow2 -F qcow2 vm.qcow2 &&
	grep -o " size=[0-9]*" "$TEST_DIR/LAST.out" | sed 's/^ /create -b -F: Formatting line says /'
[ "$(qemu_info_field vm.qcow2 virtual-size)" = 4194304 ] && echo "create -b -F: image is 4194304 bytes"
must "create probe" "$VIREO_IMG" create --probe-backing -f qcow2 -b base.qcow2 vm2.qcow2 &&
	grep -o " size=[0-9]*" "$TEST_DIR/LAST.out" | sed 's/^ /create -b --probe-backing: Formatting line says /'

# --confine-backing: a backing file outside the image's directory (here via
# "..") is refused, one inside it is not, and the flag goes anywhere.
mkdir -p sub
"$QEMU_IMG" create -q -f raw outside.raw 1M
"$QEMU_IMG" create -q -f raw sub/inside.raw 1M
"$QEMU_IMG" create -q -f qcow2 -b ../outside.raw -F raw sub/escape.qcow2
"$QEMU_IMG" create -q -f qcow2 -b inside.raw -F raw sub/ok.qcow2
must "info escape" "$VIREO_IMG" info --backing-chain sub/escape.qcow2 &&
	echo "info --backing-chain: reads ../outside.raw"
vimg info --confine-backing --backing-chain sub/escape.qcow2
rc=$?
[ $rc -eq 1 ] && grep -q "outside the image's directory" "$TEST_DIR/LAST.err" &&
	echo "info --confine-backing: refuses ../outside.raw"
vimg map sub/escape.qcow2 --confine-backing
rc=$?
[ $rc -eq 1 ] && echo "map ... --confine-backing: refuses ../outside.raw"
must "info ok" "$VIREO_IMG" info --confine-backing --backing-chain sub/ok.qcow2 &&
	echo "info --confine-backing: follows inside.raw"
must "convert ok" "$VIREO_IMG" convert --confine-backing -O raw sub/ok.qcow2 out.raw &&
	echo "convert --confine-backing: follows inside.raw"

# -S 0: everything is written, nothing is left sparse (it once divided by
# zero on the first non-zero block: found by fuzz_img_cli).
printf 'Q\0\0\0' > four.raw
must "convert -S 0" "$VIREO_IMG" convert -S 0 -O raw four.raw four.out &&
	cmp -s four.raw four.out && echo "convert -S 0 -O raw: copy is identical"
"$QEMU_IMG" create -q -f qcow2 data.qcow2 1M
"$QEMU_IO" -c "write -P 0x5a 4k 8k" data.qcow2 >/dev/null
must "convert -S 0 qcow2" "$VIREO_IMG" convert -S 0 -O qcow2 data.qcow2 data2.qcow2 &&
	"$QEMU_IMG" compare -q data.qcow2 data2.qcow2 && echo "convert -S 0 -O qcow2: images are identical"
finish
