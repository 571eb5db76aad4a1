#!/usr/bin/env bash
# Offsets from the image whose sum with a length wraps past 2^64 (L1
# table, refcount table, a snapshot's L1 table) are refused as past the
# end of the file, and a snapshot whose disk size its L1 table does not
# cover (or that is absurd) is refused by snapshot -a and convert -l
# instead of becoming the image's size; refused images are unchanged.
. "$(dirname "$0")/common.sh"

IMG=img.qcow2
mk() {
	rm -f $IMG
	"$QEMU_IMG" create -q -f qcow2 -o cluster_size=65536 $IMG 4M &&
	"$QEMU_IO" -f qcow2 -c "write -P 0xab 0 128k" $IMG >/dev/null &&
	"$QEMU_IMG" snapshot -c snap $IMG
}
# snap_set FIELD-OFFSET FORMAT VALUE: patch the first snapshot table entry.
snap_set() {
	python3 - $IMG "$1" "$2" "$3" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
f.seek(64)
so, = struct.unpack(">Q", f.read(8))
f.seek(so + int(sys.argv[2]))
f.write(struct.pack(sys.argv[3], int(sys.argv[4], 0)))
PY
}

# name | patch | what the error must mention (ERE, any case)
CASES=(
"l1-offset-wraps|\$QCOW2PY \$IMG set l1_size 8192; \$QCOW2PY \$IMG set l1_table_offset 0xffffffffffff0000|l1 table offset .* past the end"
"refcount-table-wraps|\$QCOW2PY \$IMG set refcount_table_offset 0xffffffffffff0000|refcount table offset .* past the end"
"snapshot-l1-wraps|snap_set 0 '>Q' 0xffffffffffff0000; snap_set 8 '>I' 8192|snapshot .*l1 table .* invalid"
)
for c in "${CASES[@]}"; do
	name=${c%%|*}
	rest=${c#*|}
	patch=${rest%%|*}
	re=${rest#*|}
	mk || { fail "$name: setup"; continue; }
	eval "$patch" || { fail "$name: patch"; continue; }
	refuse "$name" "$re" info -f qcow2 $IMG
	refuse "$name" "$re" check -f qcow2 $IMG
	refuse "$name" "$re" convert -f qcow2 -O raw $IMG out.raw
	refuse "$name" "$re" resize -f qcow2 $IMG +1M
	rm -f out.raw
done

# Snapshot disk sizes: 1 TiB with a one-entry L1 table (512 MiB), 2^60.
for ds in 0x10000000000 0x1000000000000000; do
	mk || fail "disk size $ds: setup"
	snap_set 48 '>Q' $ds
	refuse "snapshot disk size $ds" "snapshot .*(too small|absurd)" snapshot -a snap $IMG
	refuse "snapshot disk size $ds" "snapshot .*(too small|absurd)" convert -l snap -O raw $IMG out.raw
	must "info" "$VIREO_IMG" info $IMG && grep -q "^virtual size: 4 MiB" "$TEST_DIR/LAST.out" &&
		echo "snapshot disk size $ds: image size unchanged"
	rm -f out.raw
done
finish
