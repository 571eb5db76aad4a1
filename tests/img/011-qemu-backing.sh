#!/usr/bin/env bash
# QEMU -> ours: backing chains made by qemu-img with different cluster sizes
# per layer, a backing file shorter than its overlay, a raw base and
# relative names read identically through vireo-img.
. "$(dirname "$0")/common.sh"

mkdir -p sub
must "base" "$QEMU_IMG" create -f qcow2 -o cluster_size=65536 sub/base.qcow2 4M
qio sub/base.qcow2 "write -P 0x11 0 4M" "write -P 0x12 100k 10k"
# mid: 512 B clusters, named relative to itself (sub/).
must "mid" "$QEMU_IMG" create -f qcow2 -o cluster_size=512 -b base.qcow2 -F qcow2 sub/mid.qcow2 6M
qio sub/mid.qcow2 "write -P 0x21 60k 10k" "write -z 1m 64k" "write -P 0x22 4090k 20k"
# top: 2 MiB clusters, larger than everything below it.
must "top" "$QEMU_IMG" create -f qcow2 -o cluster_size=2M -b sub/mid.qcow2 -F qcow2 top.qcow2 8M
qio top.qcow2 "write -P 0x31 512 512" "write -P 0x32 5m 4k" "discard 2m 2m"
for i in sub/base sub/mid top; do check_agree $i.qcow2 "$i"; done
read_agree sub/mid.qcow2 "mid"
read_agree top.qcow2 "top"

# A raw base file.
head -c 1048576 /dev/urandom >raw.base 2>/dev/null
must "ovl" "$QEMU_IMG" create -f qcow2 -b raw.base -F raw ovl.qcow2 2M
qio ovl.qcow2 "write -P 0x41 4k 4k" "write -P 0x42 1020k 8k"
check_agree ovl.qcow2 "raw base"
read_agree ovl.qcow2 "raw base"

# Backing file given by absolute path.
must "abs" "$QEMU_IMG" create -f qcow2 -b "$TEST_DIR/sub/base.qcow2" -F qcow2 abs.qcow2
qio abs.qcow2 "write -P 0x51 0 1k"
read_agree abs.qcow2 "absolute backing name"
finish
