#!/usr/bin/env bash
# Every --output=json of vireo-img (info, info --backing-chain, check, map)
# is valid JSON whatever the names in the image: a backing file name,
# backing format and snapshot name with quotes, backslashes, control
# characters, a newline and invalid UTF-8 come out escaped (invalid bytes
# as U+FFFD) and parse back to the same text.
. "$(dirname "$0")/common.sh"

SNAP=$'s"n\\a\x02m\xc3(e\xed\xa0\x80'
BACK=$'b"a\\c\x01k\xff\n}'
BFMT=$'raw","x":{"'
IMG=$'q"\\\x7f.qcow2'

must "create" "$VIREO_IMG" create -q -f qcow2 "$IMG" 1M || finish
must "snapshot" "$VIREO_IMG" snapshot -c "$SNAP" "$IMG" || finish
must "rebase" "$VIREO_IMG" rebase -u -b "$BACK" -F "$BFMT" "$IMG" || finish

# json_check LABEL PYTHON-EXPR: parse LAST.out, evaluate assertions on v.
json_check() {
	if python3 - "$TEST_DIR/LAST.out" "$2" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read()
v = json.loads(raw.decode("utf-8"))   # must be UTF-8 and JSON
R = "\ufffd"
assert eval("(" + sys.argv[2] + ")"), v
PY
	then echo "$1: valid JSON, names intact"
	else fail "$1: $(head -c 300 "$TEST_DIR/LAST.out")"
	fi
}

must "info" "$VIREO_IMG" info --output=json "$IMG" &&
	json_check "info" '
v["backing-filename"] == "b\"a\\c\x01k" + R + "\n}" and
v["backing-filename-format"] == "raw\",\"x\":{\"" and
v["snapshots"][0]["name"] == "s\"n\\a\x02m" + R + "(e" + 3 * R and
v["filename"] == "q\"\\\x7f.qcow2" and "x" not in v'
must "check" "$VIREO_IMG" check --output=json "$IMG" &&
	json_check "check" 'v["filename"] == "q\"\\\x7f.qcow2" and v["check-errors"] == 0'
must "rebase back" "$VIREO_IMG" rebase -u -b "" "$IMG"
"$QEMU_IMG" create -q -f raw base.raw 1M
"$QEMU_IMG" create -q -f qcow2 -b base.raw -F raw top.qcow2 2M
"$QEMU_IO" -f qcow2 -c "write -P 1 64k 64k" top.qcow2 >/dev/null
must "chain" "$VIREO_IMG" info --backing-chain --output=json top.qcow2 &&
	json_check "info --backing-chain" '[i["filename"] for i in v] == ["top.qcow2", "base.raw"]'
must "map" "$VIREO_IMG" map --output=json top.qcow2 &&
	json_check "map" 'v[0]["start"] == 0 and sum(e["length"] for e in v) == 2 << 20 and any(e["data"] and e["depth"] == 0 for e in v)'
finish
