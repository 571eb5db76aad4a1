#!/usr/bin/env bash
# QEMU -> ours: zlib and zstd compressed images (qemu-img convert -c and
# qemu-io compressed writes, partly overwritten) read identically through
# vireo-img; check verdicts agree.
. "$(dirname "$0")/common.sh"

mkraw src.raw $((4 * 1024 * 1024)) 13
for ct in zlib zstd; do
	for cs in 4096 65536 2097152; do
		t="$ct cluster_size=$cs"
		rm -f c.qcow2 w.qcow2
		must "$t convert -c" "$QEMU_IMG" convert -c -f raw -O qcow2 -o cluster_size=$cs,compression_type=$ct src.raw c.qcow2 || continue
		check_agree c.qcow2 "$t converted"
		read_agree c.qcow2 "$t converted"
		# Overwrite parts of compressed clusters (copy-on-write of a
		# compressed cluster).
		qio c.qcow2 "write -P 0x99 1000 3000" "write -z 1m 512" "write -P 0x98 3m 70k"
		check_agree c.qcow2 "$t partly overwritten"
		read_agree c.qcow2 "$t partly overwritten"
		# Compressed writes by qemu-io into a fresh image.
		must "$t create" "$QEMU_IMG" create -f qcow2 -o cluster_size=$cs,compression_type=$ct w.qcow2 $((4 * cs)) || continue
		qio w.qcow2 "write -c -P 0x61 0 $cs" "write -c -P 0x62 $((2 * cs)) $cs" "write -P 0x63 $((cs + 512)) 512"
		check_agree w.qcow2 "$t qemu-io write -c"
		read_agree w.qcow2 "$t qemu-io write -c"
	done
done
finish
