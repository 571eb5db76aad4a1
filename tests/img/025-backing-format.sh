#!/usr/bin/env bash
# Backing files without a backing format are not probed unless asked
# (--probe-backing): an image names its backing file itself, and a raw
# file a guest wrote can carry a qcow2 header naming a backing file of its
# own.  info --backing-chain shows every file of a chain (file, format,
# virtual size), in JSON as a list.
. "$(dirname "$0")/common.sh"

"$QEMU_IMG" create -q -f raw base.raw 1M
"$QEMU_IMG" create -q -f qcow2 -b base.raw -F raw ovl.qcow2 2M
# Drop the backing format: make its header extension an unknown one.
python3 -c '
d = open("ovl.qcow2", "rb").read()
i = d.index(bytes.fromhex("e2792aca"))
open("ovl.qcow2", "wb").write(d[:i] + bytes.fromhex("e2792acb") + d[i + 4:])'
before=$(sum ovl.qcow2)

# info of the image alone opens no backing file: it shows what is named.
must "info" "$VIREO_IMG" info ovl.qcow2 && grep -q "^backing file: base.raw" "$TEST_DIR/LAST.out" &&
	! grep -q "^backing file format" "$TEST_DIR/LAST.out" &&
	echo "no backing format: info shows the backing file and no format"
for verb in "info --backing-chain" "convert -O raw" "bench -c 1 -s 4096" "compare base.raw"; do
	args=($verb)
	out=()
	[ "${args[0]}" = convert ] && out=(out.raw)
	vimg "${args[@]}" ovl.qcow2 "${out[@]}"
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "without a backing format" "$TEST_DIR/LAST.err" &&
	   grep -q "base.raw" "$TEST_DIR/LAST.err"; then
		echo "no backing format: vireo-img $verb refused it, naming the backing file"
	else
		fail "no backing format: vireo-img $verb: exit $rc: $(head -1 "$TEST_DIR/LAST.err")"
	fi
done
[ "$(sum ovl.qcow2)" = "$before" ] || fail "a refused image was changed"

# With --probe-backing (anywhere on the line) it is read as before.
must "probe info" "$VIREO_IMG" info --probe-backing --backing-chain ovl.qcow2 &&
	grep -q "^image: base.raw" "$TEST_DIR/LAST.out" &&
	echo "--probe-backing: info shows the probed chain"
must "probe convert" "$VIREO_IMG" convert -O raw ovl.qcow2 out.raw --probe-backing &&
	echo "--probe-backing: convert reads it"

# create and rebase want -F too, or --probe-backing (which records it).
vimg create -f qcow2 -b base.raw new.qcow2
[ $? -eq 1 ] && grep -q "backing format" "$TEST_DIR/LAST.err" && [ ! -e new.qcow2 ] &&
	echo "create -b without -F: refused" || fail "create -b without -F: $(head -1 "$TEST_DIR/LAST.err")"
must "create probe" "$VIREO_IMG" create -q --probe-backing -f qcow2 -b base.raw new.qcow2 &&
	[ "$(qemu_info_field new.qcow2 backing-filename-format)" = raw ] &&
	echo "create -b --probe-backing: records the format found"
vimg rebase -u -b base.raw ovl.qcow2
[ $? -eq 1 ] && grep -q "backing format" "$TEST_DIR/LAST.err" &&
	echo "rebase -b without -F: refused" || fail "rebase -b without -F: $(head -1 "$TEST_DIR/LAST.err")"
# The way to fix such an image.
must "rebase -u -F" "$VIREO_IMG" rebase -u -b base.raw -F raw ovl.qcow2 &&
	must "info fixed" "$VIREO_IMG" info ovl.qcow2 && echo "rebase -u -F: image usable again"

# The whole chain, human and JSON.
"$QEMU_IMG" create -q -f qcow2 -b ovl.qcow2 -F qcow2 top.qcow2 3M
must "chain" "$VIREO_IMG" info --backing-chain top.qcow2 &&
	grep -E "^(image|file format|virtual size|backing file):" "$TEST_DIR/LAST.out" | sed 's/ (.*//'
must "chain json" "$VIREO_IMG" info --backing-chain --output=json top.qcow2 &&
	python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
assert isinstance(v, list), v
for i in v:
    print("json:", i["filename"], i["format"], i["virtual-size"], i.get("backing-filename-format", "-"))
' "$TEST_DIR/LAST.out" || fail "chain json does not parse"
finish
