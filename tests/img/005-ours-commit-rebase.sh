#!/usr/bin/env bash
# Ours -> QEMU: `vireo-img commit` (overlay into its backing file) and
# `vireo-img rebase` (safe mode to a new backing file, and -b "" to flatten)
# leave images that pass `qemu-img check` and read back as expected.
. "$(dirname "$0")/common.sh"

size=$((2 * 1024 * 1024))
mkraw base.raw $size 5
mkraw other.raw $size 6
TW=("4096 3 4096 131072 0x77" "1500000 1 100000 100000 0x78")
cp base.raw top.raw; for w in "${TW[@]}"; do raw_write top.raw $w; done

for cs in 4096 65536; do
	t="cluster_size=$cs"
	mk_chain() {
		rm -f base.qcow2 other.qcow2 top.qcow2 out.raw
		must "$t base" "$VIREO_IMG" convert -f raw -O qcow2 -o cluster_size=$cs base.raw base.qcow2 &&
		must "$t top" "$VIREO_IMG" create -f qcow2 -o cluster_size=$cs -b base.qcow2 -F qcow2 top.qcow2 || return 1
		for w in "${TW[@]}"; do bench_write "$VIREO_IMG" top.qcow2 $w || return 1; done
	}
	# commit: base.qcow2 becomes top.raw; top still reads the same.
	if mk_chain && must "$t commit" "$VIREO_IMG" commit top.qcow2; then
		qemu_check base.qcow2 "$t commit base"
		qemu_check top.qcow2 "$t commit top"
		qemu_raw base.qcow2 out.raw && same_raw top.raw out.raw "$t commit: base"
		qemu_raw top.qcow2 out.raw && same_raw top.raw out.raw "$t commit: top"
	fi
	# rebase -b "": top becomes standalone.
	if mk_chain && must "$t rebase flatten" "$VIREO_IMG" rebase -b "" top.qcow2; then
		qemu_check top.qcow2 "$t flatten"
		[ "$(qemu_info_field top.qcow2 backing-filename)" = None ] || fail "$t flatten: still has backing '$(qemu_info_field top.qcow2 backing-filename)'"
		mv base.qcow2 gone.qcow2
		qemu_raw top.qcow2 out.raw && same_raw top.raw out.raw "$t flatten: top without its old base"
	fi
	# rebase onto another base: contents must not change.
	if mk_chain && must "$t other" "$VIREO_IMG" convert -f raw -O qcow2 -o cluster_size=$cs other.raw other.qcow2 &&
		must "$t rebase" "$VIREO_IMG" rebase -b other.qcow2 -F qcow2 top.qcow2; then
		qemu_check top.qcow2 "$t rebase"
		[ "$(qemu_info_field top.qcow2 backing-filename)" = other.qcow2 ] || fail "$t rebase: backing '$(qemu_info_field top.qcow2 backing-filename)'"
		qemu_raw top.qcow2 out.raw && same_raw top.raw out.raw "$t rebase: top"
	fi
done
finish
