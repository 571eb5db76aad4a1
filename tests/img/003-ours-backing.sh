#!/usr/bin/env bash
# Ours -> QEMU: backing chains made by vireo-img (create -b, writes into the
# overlays with `bench -w`, convert -B) pass `qemu-img check`, carry the
# backing file name and format QEMU expects, allocate only what was written
# and read back as the full image through QEMU.
. "$(dirname "$0")/common.sh"

size=$((4 * 1024 * 1024))
mkraw base.raw $size 3
# Writes into each overlay ("offset count size step pattern"), partial
# clusters and cluster-crossing ones included.
MW=("512 3 1000 70001 0x11" "1048576 4 65536 131072 0x22" "3000000 1 300000 300000 0x33")
TW=("1024 2 1024 4096 0x44" "2097152 1 4096 4096 0x55" "4193792 1 512 512 0x66")
cp base.raw mid.raw
for w in "${MW[@]}"; do raw_write mid.raw $w; done
cp mid.raw top.raw
for w in "${TW[@]}"; do raw_write top.raw $w; done

for cs in 512 65536 2097152; do
	t="cluster_size=$cs"
	rm -f base.qcow2 mid.qcow2 top.qcow2 full.qcow2 out.raw
	must "$t base" "$VIREO_IMG" convert -f raw -O qcow2 -o cluster_size=$cs base.raw base.qcow2 || continue
	# An empty overlay reads as its backing file.
	must "$t create mid" "$VIREO_IMG" create -f qcow2 -o cluster_size=$cs -b base.qcow2 -F qcow2 mid.qcow2 || continue
	qemu_check mid.qcow2 "$t empty overlay"
	[ "$(qemu_info_field mid.qcow2 backing-filename)" = base.qcow2 ] || fail "$t: overlay backing name '$(qemu_info_field mid.qcow2 backing-filename)'"
	[ "$(qemu_info_field mid.qcow2 backing-filename-format)" = qcow2 ] || fail "$t: overlay backing format '$(qemu_info_field mid.qcow2 backing-filename-format)'"
	[ "$(qemu_info_field mid.qcow2 virtual-size)" = $size ] || fail "$t: overlay size not taken from backing file"
	qemu_raw mid.qcow2 out.raw && same_raw base.raw out.raw "$t empty overlay: qemu-img read"
	# Three levels, each overlay written in a few places only.
	for w in "${MW[@]}"; do bench_write "$VIREO_IMG" mid.qcow2 $w; done
	must "$t create top" "$VIREO_IMG" create -f qcow2 -o cluster_size=$cs -b mid.qcow2 -F qcow2 top.qcow2 || continue
	for w in "${TW[@]}"; do bench_write "$VIREO_IMG" top.qcow2 $w; done
	for i in base mid top; do
		qemu_check $i.qcow2 "$t $i"
	done
	# The overlay holds exactly the clusters written to it.
	want=$(python3 -c '
import sys
cs = int(sys.argv[1]); seen = set()
for w in sys.argv[2:]:
    off, count, size, step, _ = [int(x, 0) for x in w.split()]
    for i in range(count):
        a = off + i * step
        seen.update(range(a // cs, (a + size - 1) // cs + 1))
print(len(seen))' $cs "${TW[@]}")
	got=$("$QEMU_IMG" check --output=json top.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin).get("allocated-clusters"))')
	[ "$got" = "$want" ] || fail "$t: top.qcow2 has $got allocated clusters, want $want (only the written ones)"
	qemu_raw mid.qcow2 out.raw && same_raw mid.raw out.raw "$t mid: qemu-img read"
	qemu_raw top.qcow2 out.raw && same_raw top.raw out.raw "$t top: qemu-img read"
	vireo_check top.qcow2 "$t top"
	vireo_raw top.qcow2 out.raw && same_raw top.raw out.raw "$t top: vireo-img read"
	# convert -B: a full copy of top.raw on top of base.
	if must "$t convert -B" "$VIREO_IMG" convert -f raw -O qcow2 -o cluster_size=$cs -B base.qcow2 -F qcow2 top.raw full.qcow2; then
		qemu_check full.qcow2 "$t convert -B"
		[ "$(qemu_info_field full.qcow2 backing-filename)" = base.qcow2 ] || fail "$t: convert -B backing name '$(qemu_info_field full.qcow2 backing-filename)'"
		qemu_raw full.qcow2 out.raw && same_raw top.raw out.raw "$t convert -B: qemu-img read"
	fi
done
finish
