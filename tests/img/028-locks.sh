#!/usr/bin/env bash
# vireo-img and an image in use: while another process holds the image open
# for writing (qemu-io here: QEMU's lock bytes, which vireo-vmm and the
# image library take too),
# every verb that writes refuses with an error saying it is in use, and so
# does a read-only open (its shared lock conflicts) unless -U is given;
# the image is not changed.  A reader holding it (a read-only VM) lets
# vireo-img read but not write.  Backing files of an image in use are
# shared: commit into them is refused.
. "$(dirname "$0")/common.sh"

"$QEMU_IMG" create -q -f raw base.raw 4M
"$QEMU_IMG" create -q -f qcow2 -b base.raw -F raw vm.qcow2 4M
"$QEMU_IO" -f qcow2 -c "write -P 3 0 1M" vm.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c old vm.qcow2

# hold FILE rw|ro: qemu-io keeps FILE open (read-only with ro) until the
# returned pid dies; back once its lock byte for reading (100) is taken.
hold() {
	local ro=
	[ "$2" = ro ] && ro=-r
	"$QEMU_IO" $ro -f qcow2 -c "sleep 600000" "$1" >/dev/null 2>&1 &
	HOLDER=$!
	python3 - "$1" <<'PY' || fail "qemu-io did not lock $1"
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
for _ in range(500):
    fl = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, 0, 100, 1, 0))
    if struct.unpack("hhxxxxqqixxxx", fl)[0] != fcntl.F_UNLCK:
        sys.exit(0)
    time.sleep(0.02)
sys.exit(1)
PY
}
unhold() { kill "$HOLDER"; wait "$HOLDER" 2>/dev/null; }

# busy LABEL ARGS...: vireo-img must refuse, saying the image is in use.
busy() {
	local label=$1
	shift
	vimg "$@"
	local rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "in use" "$TEST_DIR/LAST.err"; then
		echo "$label: refused (in use)"
	else
		fail "$label: exit $rc: $(head -1 "$TEST_DIR/LAST.err")"
	fi
}

hold vm.qcow2 rw
before=$(sum vm.qcow2 base.raw)
busy "writer holds it: snapshot -c" snapshot -c new vm.qcow2
busy "writer holds it: snapshot -a" snapshot -a old vm.qcow2
busy "writer holds it: snapshot -d" snapshot -d old vm.qcow2
busy "writer holds it: resize" resize vm.qcow2 8M
busy "writer holds it: commit" commit vm.qcow2
busy "writer holds it: rebase" rebase -u -b "" vm.qcow2
busy "writer holds it: check -r all" check -r all vm.qcow2
busy "writer holds it: create over it" create -f qcow2 vm.qcow2 1M
busy "writer holds it: convert into it" convert -n -O qcow2 base.raw vm.qcow2
busy "writer holds it: info" info vm.qcow2
busy "writer holds it: snapshot -l" snapshot -l vm.qcow2
must "info -U" "$VIREO_IMG" info -U vm.qcow2 && echo "writer holds it: info -U works"
must "info --force-share" "$VIREO_IMG" info --force-share --backing-chain vm.qcow2 &&
	echo "writer holds it: info --force-share --backing-chain works"
must "check -U" "$VIREO_IMG" check -U vm.qcow2 && echo "writer holds it: check -U works"
must "snapshot -l -U" "$VIREO_IMG" snapshot -l -U vm.qcow2 && echo "writer holds it: snapshot -l -U works"
vimg check -U -r all vm.qcow2
[ $? -eq 1 ] && echo "writer holds it: check -U -r all refused" || fail "check -U -r all ran"
[ "$(sum vm.qcow2 base.raw)" = "$before" ] && echo "writer holds it: files unchanged" ||
	fail "a refused command changed the files"
unhold

# A read-only VM: reading is fine, writing is not.
hold vm.qcow2 ro
must "info (reader)" "$VIREO_IMG" info vm.qcow2 && echo "reader holds it: info works"
busy "reader holds it: resize" resize vm.qcow2 8M
unhold

# The backing file of an image in use is shared: commit into it refused.
"$QEMU_IMG" create -q -f qcow2 -b vm.qcow2 -F qcow2 top.qcow2
hold vm.qcow2 ro
busy "backing file in use: commit" commit top.qcow2
unhold

# Nobody holds it: everything works again.
must "resize" "$VIREO_IMG" resize vm.qcow2 8M && must "snapshot" "$VIREO_IMG" snapshot -c new vm.qcow2 &&
	must "commit" "$VIREO_IMG" commit top.qcow2 && echo "released: resize, snapshot, commit work"
qemu_check vm.qcow2 "released"
finish
