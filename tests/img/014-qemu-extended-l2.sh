#!/usr/bin/env bash
# QEMU -> ours: extended_l2=on images (32 subclusters per cluster) with
# subcluster writes, zero subclusters, discards, a backing file showing
# through unallocated subclusters, compressed clusters and snapshots, read
# identically through vireo-img; check verdicts agree.
. "$(dirname "$0")/common.sh"

must "base" "$QEMU_IMG" create -f qcow2 base.qcow2 8M
qio base.qcow2 "write -P 0x11 0 8M"
for cs in 16384 65536 2097152; do
	sub=$((cs / 32))
	t="extended_l2 cluster_size=$cs"
	rm -f img.qcow2 ovl.qcow2
	must "$t create" "$QEMU_IMG" create -f qcow2 -o extended_l2=on,cluster_size=$cs img.qcow2 16M || continue
	qio img.qcow2 "write -P 0x21 0 $sub" "write -P 0x22 $((3 * sub)) $((2 * sub))" \
		"write -P 0x23 $((cs + 100)) 1000" "write -z $((sub)) $sub" "write -P 0x24 4m 64k" \
		"discard $((4 * 1024 * 1024 + sub)) $sub" "write -c -P 0x25 $((6 * cs)) $cs"
	check_agree img.qcow2 "$t"
	read_agree img.qcow2 "$t"
	must "$t snapshot" "$QEMU_IMG" snapshot -c s img.qcow2
	qio img.qcow2 "write -P 0x26 $((sub / 2)) $sub"
	read_agree img.qcow2 "$t snapshot" -l s
	read_agree img.qcow2 "$t after snapshot"

	must "$t overlay" "$QEMU_IMG" create -f qcow2 -o extended_l2=on,cluster_size=$cs -b base.qcow2 -F qcow2 ovl.qcow2 || continue
	qio ovl.qcow2 "write -P 0x31 $sub $sub" "write -z $((4 * sub)) $((2 * sub))" \
		"write -P 0x32 $((2 * cs - 512)) 1024" "discard $((3 * cs)) $cs"
	check_agree ovl.qcow2 "$t overlay"
	read_agree ovl.qcow2 "$t overlay"
done
finish
