#!/usr/bin/env bash
# Ours -> QEMU: compressed images written by `vireo-img convert -c` (zlib and
# zstd; small, default and 2 MiB clusters) pass `qemu-img check`, really hold
# compressed clusters, and read back identical through QEMU and vireo-img.
. "$(dirname "$0")/common.sh"

size=$((5 * 1024 * 1024))
mkraw src.raw $size 2

for ct in zlib zstd; do
	for cs in 4096 65536 2097152; do
		t="$ct cluster_size=$cs"
		rm -f img.qcow2 out.raw
		must "$t convert -c" "$VIREO_IMG" convert -c -f raw -O qcow2 \
			-o cluster_size=$cs,compression_type=$ct src.raw img.qcow2 || continue
		qemu_check img.qcow2 "$t"
		got=$(qemu_info_field img.qcow2 format-specific.data.compression-type)
		[ "$got" = $ct ] || fail "$t: header compression type '$got', want $ct"
		# Clusters must really be stored compressed.
		nc=$("$QEMU_IMG" check --output=json img.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin).get("compressed-clusters", 0))')
		if [ "${nc:-0}" -gt 0 ]; then
			echo "$t: has compressed clusters"
		else
			fail "$t: qemu-img check finds no compressed cluster"
		fi
		qemu_raw img.qcow2 out.raw && same_raw src.raw out.raw "$t: qemu-img read"
		vireo_check img.qcow2 "$t"
		vireo_raw img.qcow2 out.raw && same_raw src.raw out.raw "$t: vireo-img read"
	done
done
finish
