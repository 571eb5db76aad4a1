#!/usr/bin/env bash
# Images that crashed the library or made it leak once, kept as regressions
# (tests/img/fuzz-crashes/*.qcow2: inputs of the fuzz/fuzz_qcow2* targets;
# dup-backing-fmt-ext is a fuzz_qcow2_chain seed's overlay whose
# backing-format extension is repeated): every verb that reads them
# must fail or succeed cleanly, never crash under ASan/UBSan, and never
# change the file.
. "$(dirname "$0")/common.sh"

for f in "$IMG_TESTS"/fuzz-crashes/*.qcow2; do
	name=$(basename "$f" .qcow2)
	IMG=$name.qcow2
	cp "$f" "$IMG"
	survive "$name" info -f qcow2 "$IMG"
	survive "$name" check -f qcow2 "$IMG"
	survive "$name" convert -f qcow2 -O raw "$IMG" out.raw
	survive "$name" snapshot -l "$IMG"
	cmp -s "$f" "$IMG" || fail "$name: a read-only verb changed the file"
	rm -f out.raw
done
finish
