#!/usr/bin/env bash
# QEMU -> ours: images made and written by qemu-img/qemu-io (qcow2 v3 and
# v2, 512 B / 64 KiB / 2 MiB clusters, data, zero writes, discards,
# unaligned writes) read identically through vireo-img, and `vireo-img
# check` agrees with `qemu-img check`.
. "$(dirname "$0")/common.sh"

size=$((8 * 1024 * 1024))
for compat in 1.1 0.10; do
	for cs in 512 65536 2097152; do
		t="compat=$compat cluster_size=$cs"
		rm -f img.qcow2
		must "$t create" "$QEMU_IMG" create -f qcow2 -o compat=$compat,cluster_size=$cs img.qcow2 $size || continue
		check_agree img.qcow2 "$t empty"
		read_agree img.qcow2 "$t empty"
		qio img.qcow2 "write -P 0xab 0 64k" "write -P 0xcd 1000k 3k" "write -P 0x01 2047k 2k" \
			"write -P 0x5a 3m 1m" "write -z 3200k 8k" "discard 3500k 64k" \
			"write -P 0xee 8191k 1k" "write -P 0x3c 5000000 100000" || continue
		check_agree img.qcow2 "$t written"
		read_agree img.qcow2 "$t written"
	done
done
finish
