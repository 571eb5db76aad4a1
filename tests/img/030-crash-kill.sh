#!/usr/bin/env bash
# Crash consistency: a writer linked against the image library (crash_writer)
# is killed with SIGKILL at a random moment, 25 times in a row on the same
# image (each run re-opens the image the previous one left behind).  After
# every kill both `qemu-img check` and `vireo-img check` find no corruption
# (leaked clusters are allowed), and every write the writer logged as flushed
# reads back through QEMU.  At the end `vireo-img check -r all` leaves an
# image qemu-img finds clean.  Runs for 64 KiB and 4 KiB clusters.
. "$(dirname "$0")/common.sh"

WRITER=${IMG_CRASH_WRITER:-}
if [ -z "$WRITER" ]; then
	for c in "$TOP/build/asan/tests/img/crash_writer" "$TOP/build/debug/tests/img/crash_writer"; do
		[ -x "$c" ] && WRITER=$c && break
	done
fi
[ -x "$WRITER" ] || { echo "crash_writer not built (set IMG_CRASH_WRITER)" >&2; exit 77; }
ITER=${CRASH_ITERATIONS:-25}

for cs in 65536 4096; do
	t="cluster_size=$cs"
	rm -f img.qcow2 log out.raw
	must "$t create" "$QEMU_IMG" create -q -f qcow2 -o cluster_size=$cs img.qcow2 32M || continue
	bad=0
	for i in $(seq 1 "$ITER"); do
		"$WRITER" img.qcow2 log $((cs + i)) 2>writer.err &
		pid=$!
		# Kill after 50..650 ms (deterministic per iteration).
		sleep "0.$(printf '%03d' $(( (i * 137) % 600 + 50 )))"
		kill -KILL $pid 2>/dev/null
		wait $pid 2>/dev/null
		if ! grep -q '^W' log; then
			fail "$t iteration $i: the writer wrote nothing: $(head -1 writer.err)"
			bad=1; break
		fi
		if grep -q . writer.err; then
			fail "$t iteration $i: writer failed: $(head -1 writer.err)"
			bad=1; break
		fi
		"$QEMU_IMG" check img.qcow2 >qcheck.out 2>&1
		q=$?
		if [ $q -ne 0 ] && [ $q -ne 3 ]; then
			fail "$t iteration $i: qemu-img check exit $q: $(grep -m2 ERROR qcheck.out | tr '\n' ' ')"
			bad=1; break
		fi
		vimg check img.qcow2
		v=$?
		if [ $v -ne 0 ] && [ $v -ne 3 ]; then
			fail "$t iteration $i: vireo-img check exit $v: $(head -2 "$TEST_DIR/LAST.out" | tr '\n' ' ')"
			bad=1; break
		fi
		qemu_raw img.qcow2 out.raw || { bad=1; break; }
		if ! python3 "$IMG_TESTS/crash_verify.py" out.raw log >verify.out; then
			fail "$t iteration $i: flushed data lost: $(head -3 verify.out | tr '\n' ' ')"
			bad=1; break
		fi
	done
	[ $bad -eq 0 ] && echo "$t: $ITER kills: checks found no corruption, flushed writes intact"
	if [ $bad -eq 0 ] && must "$t repair" "$VIREO_IMG" check -r all img.qcow2; then
		qemu_check img.qcow2 "$t after repair"
		qemu_raw img.qcow2 out.raw && python3 "$IMG_TESTS/crash_verify.py" out.raw log >/dev/null &&
			echo "$t after repair: flushed writes intact" || fail "$t after repair: data lost"
	fi
done
finish
