#!/usr/bin/env bash
# Command-line details found in review: check -T takes a cache mode as
# qemu-img's does (and ignores it), and create with a backing file and no
# size prints the backing file's size in its Formatting line.
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
finish
