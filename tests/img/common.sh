# Sourced by every numbered image test (tests/img/NNN-name.sh).
#
# Environment:
#   VIREO_IMG   path of the vireo-img under test (meson passes the built one;
#               point it at qemu-img to check that a test itself is right)
#   QEMU_IMG    qemu-img (default: qemu-img in PATH)
#   QEMU_IO     qemu-io  (default: qemu-io in PATH)
#   IMG_KEEP=1  keep the scratch directory for a failing test
#   TOOL_TIMEOUT  seconds one tool run may take before it counts as hung (300)
#
# Each test prints deterministic lines on stdout (compared with NNN-name.out by
# run.sh); diagnostics go to stderr.  A test also exits non-zero as soon as
# anything went wrong, so it fails even without an expectation file.
set -uo pipefail

IMG_TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$IMG_TESTS/../.." && pwd)
QEMU_IMG=${QEMU_IMG:-qemu-img}
QEMU_IO=${QEMU_IO:-qemu-io}
QCOW2PY="python3 $IMG_TESTS/qcow2.py"

if [ -z "${VIREO_IMG:-}" ]; then
	for c in "$TOP/build/asan/cli/vireo-img" "$TOP/build/debug/cli/vireo-img" \
		"$TOP/build/release/cli/vireo-img"; do
		[ -x "$c" ] && VIREO_IMG=$c && break
	done
fi
if [ -z "${VIREO_IMG:-}" ] || ! command -v "$VIREO_IMG" >/dev/null; then
	echo "vireo-img not found (set VIREO_IMG)" >&2
	exit 77
fi
for t in "$QEMU_IMG" "$QEMU_IO" python3; do
	command -v "$t" >/dev/null || { echo "$t not found (install qemu-utils, python3)" >&2; exit 77; }
done

# Sanitizer reports must make the run fail loudly, and without LSan noise
# from the qemu tools (they are not instrumented, so it does not apply).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}

TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vireo-img-test.XXXXXX")
FAILED=0
cleanup_test_dir() {
	if [ "$FAILED" -ne 0 ] && [ "${IMG_KEEP:-0}" = 1 ]; then
		echo "kept scratch directory $TEST_DIR" >&2
	else
		rm -rf "$TEST_DIR"
	fi
}
trap cleanup_test_dir EXIT
cd "$TEST_DIR" || exit 1

# fail MESSAGE: record a failure (printed on stdout, so the diff shows it).
fail() {
	echo "FAIL: $*"
	FAILED=1
}

# finish: last line of every test.
finish() {
	if [ "$FAILED" -ne 0 ]; then
		echo "test failed (scratch: $TEST_DIR)" >&2
		exit 1
	fi
	exit 0
}

# run_tool LABEL CMD...: run a command with stderr kept in $TEST_DIR/LAST.err,
# stdout in LAST.out; returns its exit status.  A signal death or a
# sanitizer report is a failure of the test whatever the caller expected.
run_tool() {
	local label=$1 rc
	shift
	timeout -s KILL "${TOOL_TIMEOUT:-300}" "$@" >"$TEST_DIR/LAST.out" 2>"$TEST_DIR/LAST.err"
	rc=$?
	if [ $rc -eq 137 ] && ! grep -q . "$TEST_DIR/LAST.err"; then
		fail "$label: hung (killed after ${TOOL_TIMEOUT:-300} s): $*"
	elif [ $rc -ge 128 ] || grep -qE 'Sanitizer|runtime error:' "$TEST_DIR/LAST.err"; then
		fail "$label: crashed (exit $rc): $*"
		sed 's/^/    /' "$TEST_DIR/LAST.err" | head -40 >&2
	fi
	return $rc
}

# vimg ARGS...: run vireo-img; ok/exit code as run_tool.
vimg() { run_tool "vireo-img $1" "$VIREO_IMG" "$@"; }
qimg() { run_tool "qemu-img $1" "$QEMU_IMG" "$@"; }

# must LABEL CMD...: the command must succeed.
must() {
	local label=$1
	shift
	local rc
	run_tool "$label" "$@"
	rc=$?
	if [ $rc -ne 0 ]; then
		fail "$label: exit $rc from: $*"
		sed 's/^/    /' "$TEST_DIR/LAST.err" | head -20 >&2
		return 1
	fi
	return 0
}

# qio IMG CMD...: run qemu-io commands on a qcow2 image (each arg one -c).
qio() {
	local img=$1 a args=()
	shift
	for a in "$@"; do args+=(-c "$a"); done
	must "qemu-io $img" "$QEMU_IO" -f qcow2 "${args[@]}" "$img" || return 1
	if grep -q 'error\|failed' "$TEST_DIR/LAST.out"; then
		fail "qemu-io reported an error: $(head -1 "$TEST_DIR/LAST.out")"
		return 1
	fi
}

# mkraw FILE SIZE SEED: a raw file with a deterministic mix of random data,
# single-byte patterns, all-zero clusters and partial clusters.  Pieces start
# and end at 512-byte multiples and at odd sector offsets so that they cross
# every cluster size between 512 B and 2 MiB.
mkraw() {
	python3 - "$@" <<'PY'
import random, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
with open(path, "wb") as f:
    f.truncate(size)
    off = 0
    while off < size:
        gap = r.choice([0, 512, 4096, 65536, 3 * 512, 1 << 20])
        off += gap
        if off >= size:
            break
        n = min(size - off, r.choice([512, 1024, 4096, 7 * 512, 65536, 200 * 512, 1 << 20]))
        kind = r.randrange(3)
        if kind == 0:
            data = bytes([r.randrange(1, 256)]) * n
        elif kind == 1:
            data = r.randbytes(n) if hasattr(r, "randbytes") else bytes(r.getrandbits(8) for _ in range(n))
        else:
            # compressible but not uniform: a counter pattern
            data = bytes((i * 7 + seed) & 0xFF for i in range(n))
        f.seek(off)
        f.write(data)
        off += n
PY
}

# same_raw A B LABEL: byte comparison; prints a line either way.
same_raw() {
	if cmp -s "$1" "$2"; then
		echo "$3: identical"
	else
		fail "$3: contents differ ($(cmp "$1" "$2" 2>&1 | head -1 | sed "s|$TEST_DIR/||g"))"
	fi
}

# qemu_check IMG LABEL: qemu-img check must say the image is clean.
qemu_check() {
	run_tool "qemu-img check" "$QEMU_IMG" check "$1"
	local rc=$?
	if [ $rc -eq 0 ]; then
		echo "$2: qemu-img check clean"
	else
		fail "$2: qemu-img check exit $rc: $(grep -v '^$' "$TEST_DIR/LAST.out" | head -3 | tr '\n' ' ')"
	fi
}

# vireo_check IMG LABEL: vireo-img check must say the image is clean.
vireo_check() {
	vimg check "$1"
	local rc=$?
	if [ $rc -eq 0 ]; then
		echo "$2: vireo-img check clean"
	else
		fail "$2: vireo-img check exit $rc: $(cat "$TEST_DIR/LAST.out" "$TEST_DIR/LAST.err" | grep -v '^$' | head -3 | tr '\n' ' ')"
	fi
}

# qemu_raw IMG OUT [extra qemu-img convert args]: read an image through QEMU.
qemu_raw() {
	local img=$1 out=$2
	shift 2
	must "qemu-img convert" "$QEMU_IMG" convert "$@" -O raw "$img" "$out"
}

# vireo_raw IMG OUT [extra args]: read an image through vireo-img.
vireo_raw() {
	local img=$1 out=$2
	shift 2
	must "vireo-img convert" "$VIREO_IMG" convert "$@" -O raw "$img" "$out"
}

# sum FILE...: checksums, to prove a refused image was not written.
sum() { sha256sum "$@" | cut -d' ' -f1 | tr '\n' ' '; }

# json_field IMG KEY: a field of `qemu-img info --output=json`.
qemu_info_field() {
	"$QEMU_IMG" info --output=json "$1" | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print(v)' "$2"
}

# bench_write TOOL IMG OFF COUNT SIZE STEP PATTERN: COUNT writes of SIZE bytes
# of byte PATTERN starting at OFF, STEP apart, through `TOOL bench -w`
# (qemu-img's write verb); keep STEP >= SIZE (the writes run in parallel).
bench_write() {
	local tool=$1 img=$2 off=$3 count=$4 bsz=$5 step=$6 pat=$7
	must "$(basename "$tool") bench -w" "$tool" bench -w -f qcow2 -c "$count" -s "$bsz" \
		-S "$step" -o "$off" --pattern="$pat" "$img"
}

# raw_write FILE OFF COUNT SIZE STEP PATTERN: the same writes on a raw file
# (the expectation).
raw_write() {
	python3 - "$@" <<'PY'
import sys
path, off, count, size, step, pat = sys.argv[1], *[int(a, 0) for a in sys.argv[2:]]
with open(path, "r+b") as f:
    for i in range(count):
        f.seek(off + i * step)
        f.write(bytes([pat]) * size)
PY
}

# check_agree IMG LABEL: `vireo-img check` must give the same verdict (exit
# status: 0 clean, 2 corruptions, 3 leaks only) as `qemu-img check`.
check_agree() {
	local q v
	"$QEMU_IMG" check "$1" >"$TEST_DIR/QCHECK.out" 2>&1
	q=$?
	vimg check "$1"
	v=$?
	if [ "$q" = "$v" ]; then
		echo "$2: check agrees with qemu-img (exit $q)"
	else
		fail "$2: vireo-img check exit $v, qemu-img check exit $q"
		sed 's/^/    qemu-img: /' "$TEST_DIR/QCHECK.out" | head -8 >&2
		cat "$TEST_DIR/LAST.out" "$TEST_DIR/LAST.err" | sed 's/^/    vireo-img: /' | head -8 >&2
	fi
}

# read_agree IMG LABEL [convert args]: vireo-img and qemu-img read the same
# bytes from an image (its whole backing chain included).
read_agree() {
	local img=$1 label=$2
	shift 2
	rm -f "$TEST_DIR/RA.q" "$TEST_DIR/RA.v"
	qemu_raw "$img" "$TEST_DIR/RA.q" "$@" || return
	vireo_raw "$img" "$TEST_DIR/RA.v" "$@" || return
	same_raw "$TEST_DIR/RA.q" "$TEST_DIR/RA.v" "$label: vireo-img reads what qemu-img reads"
}

# img_state IMG: size and checksum of an image with the "corrupt" header bit
# masked (a tool may mark an image corrupt when it refuses to write it; it
# may not change anything else).  Huge files are reported by size only.
img_state() {
	python3 - "$1" <<'PY'
import hashlib, os, sys
p = sys.argv[1]
n = os.path.getsize(p)
if n > (1 << 30):
    print("size", n)
    sys.exit()
h = hashlib.sha256()
with open(p, "rb") as f:
    d = bytearray(f.read(4096))
    if len(d) >= 80:
        d[79] &= ~2
    h.update(d)
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print("size", n, h.hexdigest())
PY
}

# refuse LABEL REGEX ARGS...: `vireo-img ARGS` must exit non-zero (not
# crash), print an error matching REGEX (grep -Ei, stdout or stderr) and
# leave the image (last argument before any output file: $IMG) unchanged.
refuse() {
	local label=$1 re=$2 before after rc
	shift 2
	before=$(img_state "$IMG")
	vimg "$@"
	rc=$?
	after=$(img_state "$IMG")
	if [ $rc -eq 0 ]; then
		fail "$label: vireo-img $1 accepted it (exit 0)"
	elif [ $rc -ge 128 ]; then
		:   # already reported by run_tool
	elif ! grep -qEi -- "$re" "$TEST_DIR/LAST.err" "$TEST_DIR/LAST.out"; then
		fail "$label: vireo-img $1: error does not name the problem (/$re/): $(head -c 300 "$TEST_DIR/LAST.err" | tr '\n' ' ')"
	elif [ "$before" != "$after" ]; then
		fail "$label: vireo-img $1 refused but changed the image ($before -> $after)"
	else
		echo "$label: vireo-img $1 refused it, names the problem, image unchanged"
	fi
}

# survive LABEL ARGS...: `vireo-img ARGS` may succeed or fail but must not
# crash, and if it fails the image must be unchanged.
survive() {
	local label=$1 before after rc
	shift
	before=$(img_state "$IMG")
	vimg "$@"
	rc=$?
	after=$(img_state "$IMG")
	if [ $rc -ge 128 ]; then
		:
	elif [ $rc -ne 0 ] && [ "$before" != "$after" ]; then
		fail "$label: vireo-img $1 failed but changed the image ($before -> $after)"
	else
		echo "$label: vireo-img $1 did not crash"
	fi
}
