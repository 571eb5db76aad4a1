#!/usr/bin/env bash
# QEMU -> ours: internal snapshots made by qemu-img read identically through
# `vireo-img convert -l`, are listed by `vireo-img snapshot -l`, and check
# verdicts agree.
. "$(dirname "$0")/common.sh"

for cs in 512 65536; do
	t="cluster_size=$cs"
	rm -f img.qcow2
	must "$t create" "$QEMU_IMG" create -f qcow2 -o cluster_size=$cs img.qcow2 4M || continue
	qio img.qcow2 "write -P 0x10 0 1m" "write -P 0x11 2m 100k"
	must "$t snap1" "$QEMU_IMG" snapshot -c first img.qcow2
	qio img.qcow2 "write -P 0x20 512k 1m" "write -z 0 4k"
	must "$t snap2" "$QEMU_IMG" snapshot -c second img.qcow2
	qio img.qcow2 "write -P 0x30 3m 1m" "discard 2m 64k"
	must "$t snap3" "$QEMU_IMG" snapshot -c "third one" img.qcow2
	must "$t delete" "$QEMU_IMG" snapshot -d second img.qcow2
	qio img.qcow2 "write -P 0x40 1m 8k"
	check_agree img.qcow2 "$t"
	read_agree img.qcow2 "$t active"
	read_agree img.qcow2 "$t first" -l first
	read_agree img.qcow2 "$t third one" -l "third one"
	if vimg snapshot -l img.qcow2; then
		if grep -qw first "$TEST_DIR/LAST.out" && grep -q "third one" "$TEST_DIR/LAST.out" &&
			! grep -qw second "$TEST_DIR/LAST.out"; then
			echo "$t: vireo-img snapshot -l lists the two live snapshots"
		else
			fail "$t: vireo-img snapshot -l: $(tr '\n' ' ' <"$TEST_DIR/LAST.out")"
		fi
	else
		fail "$t: vireo-img snapshot -l exit non-zero"
	fi
	# A snapshot that does not exist is an error, not empty data.
	vimg convert -l nosuch -O raw img.qcow2 out.raw && fail "$t: convert -l nosuch succeeded" ||
		echo "$t: convert -l nosuch refused"
done
finish
