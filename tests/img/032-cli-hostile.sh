#!/usr/bin/env bash
# Every vireo-img verb over hostile images: the qcow2 fuzz corpora
# (fuzz/corpus/qcow2*/, including the inputs that found bugs) and the kept
# fuzz crashes.  No verb may crash or trip a sanitizer (run_tool fails the
# test then); a verb that fails must say why on stderr; a JSON output that
# is produced must parse.  Read-write verbs run on a copy.
. "$(dirname "$0")/common.sh"

n=0
bad=0
for f in "$TOP"/fuzz/corpus/qcow2/* "$TOP"/fuzz/corpus/qcow2_rw/* "$IMG_TESTS"/fuzz-crashes/*.qcow2; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	for verb in "info" "info --backing-chain --output=json" "check --output=json" \
		    "map --output=json" "snapshot -l" "convert -O raw IMG out.raw" \
		    "compare IMG IMG" "check -r all" "snapshot -c s1" "resize IMG +1M" \
		    "bench -w -c 4 -s 4096"; do
		cp "$f" img.qcow2
		args=()
		case "$verb" in
		*IMG*) for a in $verb; do [ "$a" = IMG ] && a=img.qcow2; args+=("$a"); done ;;
		*) args=($verb img.qcow2) ;;
		esac
		TOOL_TIMEOUT=60 vimg "${args[0]}" -f qcow2 "${args[@]:1}"
		rc=$?
		if [ $rc -ge 128 ]; then
			bad=1   # run_tool reported it
		elif [ $rc -ne 0 ] && [ $rc -ne 2 ] && [ $rc -ne 3 ] && ! grep -q . "$TEST_DIR/LAST.err"; then
			fail "$(basename "$f"): vireo-img $verb: exit $rc without a message"
		elif [ $rc -eq 0 ] && [[ $verb == *json* ]] &&
		     ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TEST_DIR/LAST.out" 2>/dev/null; then
			fail "$(basename "$f"): vireo-img $verb: output is not JSON"
		fi
		rm -f out.raw
	done
done
[ $n -gt 30 ] && [ $bad -eq 0 ] && echo "every verb over $((n / 10 * 10))+ hostile images: no crash, errors explained, JSON parses"
finish
