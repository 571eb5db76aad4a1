#!/usr/bin/env bash
# Ours -> QEMU: images created and written by vireo-img with every cluster
# size from 512 B to 2 MiB pass `qemu-img check` and read back byte for byte
# through `qemu-img convert -O raw`.
. "$(dirname "$0")/common.sh"

size=$((6 * 1024 * 1024 + 3 * 512))   # not a multiple of any cluster size > 512
mkraw src.raw $size 1

for cs in 512 1024 2048 4096 8192 16384 32768 65536 131072 262144 524288 1048576 2097152; do
	t="cluster_size=$cs"
	rm -f empty.qcow2 img.qcow2 out.raw
	# An empty image from `create`.
	if must "$t create" "$VIREO_IMG" create -f qcow2 -o cluster_size=$cs empty.qcow2 $size; then
		qemu_check empty.qcow2 "$t empty"
		[ "$(qemu_info_field empty.qcow2 virtual-size)" = $size ] || fail "$t empty: virtual size $(qemu_info_field empty.qcow2 virtual-size), want $size"
		[ "$(qemu_info_field empty.qcow2 cluster-size)" = $cs ] || fail "$t empty: cluster size $(qemu_info_field empty.qcow2 cluster-size), want $cs"
		qemu_raw empty.qcow2 out.raw && cmp -s out.raw <(head -c $size /dev/zero) || fail "$t empty: does not read as zeros"
	fi
	# Data written by `convert` from a raw file with known patterns.
	if must "$t convert" "$VIREO_IMG" convert -f raw -O qcow2 -o cluster_size=$cs src.raw img.qcow2; then
		qemu_check img.qcow2 "$t data"
		[ "$(qemu_info_field img.qcow2 cluster-size)" = $cs ] || fail "$t data: cluster size $(qemu_info_field img.qcow2 cluster-size), want $cs"
		qemu_raw img.qcow2 out.raw && same_raw src.raw out.raw "$t data: qemu-img read"
		vireo_check img.qcow2 "$t data"
		vireo_raw img.qcow2 out.raw && same_raw src.raw out.raw "$t data: vireo-img read"
	fi
done
finish
