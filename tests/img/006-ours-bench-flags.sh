#!/usr/bin/env bash
# `vireo-img bench -w` is a work-alike of `qemu-img bench -w`: with the same
# flags (count, size, step, offset, pattern, including steps that wrap
# around the end of the image) it writes the same bytes, so images written
# by the two tools compare equal, and qemu-img check finds vireo's clean.
# bench/img.sh relies on this to compare the tools on the same work.
. "$(dirname "$0")/common.sh"

size=$((16 * 1024 * 1024))
for args in "-c 100 -s 4096" "-c 50 -s 65536 -S 131072 -o 512" \
	"-c 300 -s 4096 -S $((4096 * 7919))" "-c 40 -s 65536 -S $((65536 * 131))" \
	"-c 7 -s 1000 -S 3000001 -o 12345"; do
	rm -f q.qcow2 v.qcow2
	"$QEMU_IMG" create -q -f qcow2 q.qcow2 $size
	"$QEMU_IMG" create -q -f qcow2 v.qcow2 $size
	must "qemu-img bench $args" "$QEMU_IMG" bench -f qcow2 -w --pattern=0x6b $args q.qcow2 || continue
	must "vireo-img bench $args" "$VIREO_IMG" bench -f qcow2 -w --pattern=0x6b $args v.qcow2 || continue
	qemu_check v.qcow2 "bench -w $args"
	if "$QEMU_IMG" compare -q q.qcow2 v.qcow2; then
		echo "bench -w $args: same bytes written as qemu-img"
	else
		fail "bench -w $args: vireo-img wrote different places than qemu-img ($("$QEMU_IMG" compare q.qcow2 v.qcow2 2>&1 | head -1))"
	fi
done
finish
