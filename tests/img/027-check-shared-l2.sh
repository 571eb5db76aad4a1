#!/usr/bin/env bash
# Bounded check/repair work: an image whose L1 entries all name one L2
# table, with snapshots sharing that L1 table, is checked by walking the L2
# table once (it used to be walked once per L1 entry per tree: hours for a
# file of a few MB); an image whose snapshots ask for more table entries
# than its file can hold is refused with an error, by check and by the
# repair a dirty image gets when opened read-write.
. "$(dirname "$0")/common.sh"

# shared IMG NSNAP: every L1 entry of IMG (and of NSNAP snapshots) names
# the L2 table of guest offset 0.
shared() {
	local img=$1 nsnap=$2
	# snapshots of a small disk (one-entry L1 copies), then grown
	"$QEMU_IMG" create -q -f qcow2 -o refcount_bits=64 "$img" 64M
	"$QEMU_IO" -f qcow2 -c "write -P 7 0 64k" "$img" >/dev/null
	for i in $(seq 1 "$nsnap"); do "$QEMU_IMG" snapshot -c s$i "$img"; done
	"$QEMU_IMG" resize -q "$img" 32T
	python3 - "$img" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
h = f.read(104)
l1_size, = struct.unpack(">I", h[36:40])
l1_off, = struct.unpack(">Q", h[40:48])
nsnap, = struct.unpack(">I", h[60:64])
snap_off, = struct.unpack(">Q", h[64:72])
f.seek(l1_off)
l2 = struct.unpack(">Q", f.read(8))[0]
f.seek(l1_off)
f.write(struct.pack(">Q", l2) * l1_size)
# every snapshot now uses the active L1 table
off = snap_off
for i in range(nsnap):
    f.seek(off)
    e = f.read(40)
    idl, namel = struct.unpack(">HH", e[12:16])
    extra, = struct.unpack(">I", e[36:40])
    f.seek(off)
    f.write(struct.pack(">QI", l1_off, l1_size))
    off += (40 + extra + idl + namel + 7) & ~7
PY
}

TOOL_TIMEOUT=60
shared few.qcow2 2
start=$SECONDS
vimg check few.qcow2
rc=$?
[ $rc -eq 2 ] && echo "shared L2 table, 2 snapshots: check finds the corruption" ||
	fail "shared L2 table: check exit $rc: $(head -1 "$TEST_DIR/LAST.err")"
must "check -r all" "$VIREO_IMG" check -q -r all few.qcow2
vimg check few.qcow2
[ $? -eq 0 ] && echo "shared L2 table, 2 snapshots: check -r all repairs it" ||
	fail "after check -r all: $(head -3 "$TEST_DIR/LAST.err")"
[ $((SECONDS - start)) -lt 40 ] && echo "shared L2 table: done in time" ||
	fail "shared L2 table: took $((SECONDS - start)) s"

# 20 snapshots x 512 Ki entries: more than a small file can hold.
shared many.qcow2 20
before=$(sum many.qcow2)
vimg check many.qcow2
rc=$?
[ $rc -eq 1 ] && grep -q "refusing to check or repair" "$TEST_DIR/LAST.err" &&
	echo "20 snapshots sharing one L1 table: check refused" ||
	fail "20 snapshots: check exit $rc: $(head -1 "$TEST_DIR/LAST.err")"
# Dirty: opening it read-write would repair it, and refuses instead.
$QCOW2PY many.qcow2 set incompatible_features 1
before=$(sum many.qcow2)
vimg resize many.qcow2 +1M
rc=$?
[ $rc -eq 1 ] && grep -q "refusing to check or repair" "$TEST_DIR/LAST.err" && [ "$(sum many.qcow2)" = "$before" ] &&
	echo "20 snapshots, dirty: read-write open refused, image unchanged" ||
	fail "20 snapshots dirty: resize exit $rc: $(head -1 "$TEST_DIR/LAST.err")"
finish
