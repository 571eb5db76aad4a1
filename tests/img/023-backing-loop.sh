#!/usr/bin/env bash
# Backing-file loops (an image backed by itself, a two- and a three-image
# cycle) and an absurdly deep chain: every vireo-img verb that opens the
# chain fails with an error naming the loop/depth, exits non-zero, never
# crashes (no stack overflow) and writes nothing.
. "$(dirname "$0")/common.sh"

loop_verbs() {   # label regex image
	local label=$1 re=$2
	IMG=$3
	refuse "$label" "$re" info --backing-chain $IMG
	refuse "$label" "$re" convert -O raw $IMG out.raw
	# check looks at one image, not its chain: it may pass, must not crash.
	survive "$label" check $IMG
	refuse "$label" "$re" bench -c 1 -s 4096 $IMG
	refuse "$label" "$re" bench -w -c 1 -s 4096 $IMG
	rm -f out.raw
}
LOOP_RE='loop|cycle|recurs|itself|depth|deep|too many'

# qemu-img will not name an image as its own backing file: patch the name.
"$QEMU_IMG" create -q -f qcow2 -u -b zelf.qcow2 -F qcow2 self.qcow2 1M
python3 -c 'd = open("self.qcow2", "rb").read(); open("self.qcow2", "wb").write(d.replace(b"zelf.qcow2", b"self.qcow2"))'
loop_verbs "self loop" "$LOOP_RE" self.qcow2

"$QEMU_IMG" create -q -f qcow2 -u -b b.qcow2 -F qcow2 a.qcow2 1M
"$QEMU_IMG" create -q -f qcow2 -u -b a.qcow2 -F qcow2 b.qcow2 1M
loop_verbs "two-image loop" "$LOOP_RE" a.qcow2

"$QEMU_IMG" create -q -f qcow2 -u -b y.qcow2 -F qcow2 x.qcow2 1M
"$QEMU_IMG" create -q -f qcow2 -u -b z.qcow2 -F qcow2 y.qcow2 1M
"$QEMU_IMG" create -q -f qcow2 -u -b ./x.qcow2 -F qcow2 z.qcow2 1M
loop_verbs "three-image loop (differently spelt name)" "$LOOP_RE" x.qcow2

# 300 distinct images in a chain: a depth limit must stop it cleanly.
"$QEMU_IMG" create -q -f qcow2 d0.qcow2 1M
for i in $(seq 1 300); do
	"$QEMU_IMG" create -q -f qcow2 -u -b d$((i - 1)).qcow2 -F qcow2 d$i.qcow2 1M
done
IMG=d300.qcow2
survive "chain of 300" info --backing-chain $IMG
vimg convert -O raw d300.qcow2 out.raw
rc=$?
if [ $rc -eq 0 ]; then
	cmp -s out.raw <(head -c 1048576 /dev/zero) && echo "chain of 300: read as zeros" || fail "chain of 300: read wrong data"
elif [ $rc -lt 128 ]; then
	grep -qEi "$LOOP_RE|chain|backing" "$TEST_DIR/LAST.err" && echo "chain of 300: refused with a depth error" ||
		fail "chain of 300: refused without naming the problem: $(head -1 "$TEST_DIR/LAST.err")"
fi
finish
