#!/usr/bin/env bash
# Ours -> QEMU: internal snapshots taken, applied and deleted by vireo-img
# leave images that pass `qemu-img check` (no leaks) and whose snapshots read
# back through QEMU (`convert -l`) as they were when taken.
. "$(dirname "$0")/common.sh"

size=$((3 * 1024 * 1024))
mkraw a.raw $size 4
W1=("0 4 4096 65536 0xa1" "1000000 1 200000 200000 0xa2")
W2=("512 2 512 1048576 0xb1" "2000000 3 70000 100000 0xb2")
cp a.raw b.raw; for w in "${W1[@]}"; do raw_write b.raw $w; done
cp b.raw c.raw; for w in "${W2[@]}"; do raw_write c.raw $w; done

snap_names() { "$QEMU_IMG" info --output=json "$1" | python3 -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin).get("snapshots", [])))'; }

for cs in 512 65536; do
	for comp in "" -c; do
		t="cluster_size=$cs${comp:+ compressed}"
		rm -f img.qcow2 out.raw
		must "$t convert" "$VIREO_IMG" convert $comp -f raw -O qcow2 -o cluster_size=$cs a.raw img.qcow2 || continue
		must "$t snapshot -c s1" "$VIREO_IMG" snapshot -c s1 img.qcow2 || continue
		for w in "${W1[@]}"; do bench_write "$VIREO_IMG" img.qcow2 $w; done
		must "$t snapshot -c s2" "$VIREO_IMG" snapshot -c s2 img.qcow2 || continue
		for w in "${W2[@]}"; do bench_write "$VIREO_IMG" img.qcow2 $w; done
		qemu_check img.qcow2 "$t two snapshots"
		echo "$t: snapshots seen by qemu: $(snap_names img.qcow2)"
		qemu_raw img.qcow2 out.raw -l s1 && same_raw a.raw out.raw "$t s1: qemu-img read"
		qemu_raw img.qcow2 out.raw -l s2 && same_raw b.raw out.raw "$t s2: qemu-img read"
		qemu_raw img.qcow2 out.raw && same_raw c.raw out.raw "$t current: qemu-img read"
		vireo_check img.qcow2 "$t two snapshots"
		vireo_raw img.qcow2 out.raw -l s1 && same_raw a.raw out.raw "$t s1: vireo-img read"
		# Apply s1: the active image reads as a.raw again, s2 still intact.
		if must "$t snapshot -a s1" "$VIREO_IMG" snapshot -a s1 img.qcow2; then
			qemu_check img.qcow2 "$t after apply"
			qemu_raw img.qcow2 out.raw && same_raw a.raw out.raw "$t after apply: qemu-img read"
			qemu_raw img.qcow2 out.raw -l s2 && same_raw b.raw out.raw "$t after apply s2: qemu-img read"
		fi
		# Delete s2: no leaked cluster may remain.
		if must "$t snapshot -d s2" "$VIREO_IMG" snapshot -d s2 img.qcow2; then
			qemu_check img.qcow2 "$t after delete"
			echo "$t: snapshots seen by qemu: $(snap_names img.qcow2)"
			qemu_raw img.qcow2 out.raw && same_raw a.raw out.raw "$t after delete: qemu-img read"
		fi
		# Snapshot list through vireo-img names both tools' view.
		if vimg snapshot -l img.qcow2; then
			grep -qw s1 "$TEST_DIR/LAST.out" && ! grep -qw s2 "$TEST_DIR/LAST.out" &&
				echo "$t: vireo-img snapshot -l lists s1 only" || fail "$t: vireo-img snapshot -l: $(tr '\n' ' ' <"$TEST_DIR/LAST.out")"
		else
			fail "$t: vireo-img snapshot -l failed"
		fi
	done
done
finish
