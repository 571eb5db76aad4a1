#!/usr/bin/env bash
# Pool volumes through vireod, no VM needed: vol-upload of random bytes
# and vol-download of them back (raw and qcow2), vol-clone (qcow2 copied
# with its data clusters only, the copy read back and compared with
# vireo-img compare), vol-resize (grow; shrink refused without --shrink),
# the refusals (data larger than the volume, unknown pools and volumes,
# names that would leave the pool's directory, also sent raw with curl), a
# volume a defined VM uses not deleted, the progress of an upload under
# way over the API (the volume busy meanwhile), and the progress lines of
# vol-upload, vol-download, vol-clone, clone --full and save: shown on a
# terminal (script(1) gives vireo a pty), never without one.
#   volumes.sh VIREOD VIREO VMM VIREO_IMG GUEST
set -u
vireod=$1 vireo=$2 vmm=$(realpath "$3") img=$4 guest=$(realpath "$5")
. "$(dirname "$0")/lib.sh"
make_tmp vol
export VIREO_SOCKET=$T/sock
fake=
cleanup_before() { [ -n "$fake" ] && kill $fake 2>/dev/null; }
# api METHOD PATH [BODY]: a raw request; the status in $code, the body in $out
api() {
	code=$(curl -s -o "$T/out" -w '%{http_code}' --unix-socket "$T/sock" -X "$1" \
		${3:+-H 'Content-Type: application/json' --data "$3"} "http://vireod$2")
	out=$(cat "$T/out")
	echo "$1 $2 -> $code $out"
}

start_daemon

v pool-define-as p dir "$T/images"; expect_rc 0
v vol-create-as p q.qcow2 16M; expect_rc 0
v vol-create-as p r.raw 8M --format raw; expect_rc 0
# 5 MiB and a bit of random bytes with a 2 MiB hole of zeros.
head -c $((3 * 1048576)) /dev/urandom >"$T/data"
head -c $((2 * 1048576)) /dev/zero >>"$T/data"
head -c 12345 /dev/urandom >>"$T/data"
n=$(stat -c %s "$T/data")

# --- upload and download, byte for byte
for vol in q.qcow2 r.raw; do
	v vol-upload p $vol "$T/data"; expect_rc 0; has "$n bytes uploaded"
	v vol-download p $vol "$T/back.$vol"; expect_rc 0; has "bytes downloaded"
	cmp -n "$n" "$T/data" "$T/back.$vol" || fail "$vol: the downloaded bytes differ"
	# past the upload: zeros, up to the capacity
	size=$(stat -c %s "$T/back.$vol")
	cmp -i "$n:0" -n $((size - n)) "$T/back.$vol" /dev/zero || fail "$vol: not zeros past the data"
done
[ "$(stat -c %s "$T/back.q.qcow2")" = $((16 * 1048576)) ] || fail "q.qcow2's download is not 16 MiB"
# a qcow2 volume gets guest-visible data, not a file to replace it
"$img" info "$T/images/q.qcow2" | grep -q 'file format: qcow2' || fail "q.qcow2 is no longer a qcow2"
"$img" compare -f qcow2 -F raw "$T/images/q.qcow2" "$T/back.q.qcow2" >/dev/null ||
	fail "q.qcow2 reads differently from its download"

# --- refusals of an upload
head -c $((8 * 1048576 + 1)) /dev/urandom >"$T/big"
v vol-upload p r.raw "$T/big"; expect_rc 1
has "the data \(8388609 bytes\) is larger than volume 'r.raw' \(8388608 bytes\)"
cmp -n "$n" "$T/data" "$T/images/r.raw" || fail "a refused upload changed r.raw"
v vol-upload p nope "$T/data"; expect_rc 1; has "pool 'p' has no volume 'nope'"
v vol-upload nopool r.raw "$T/data"; expect_rc 1; has "no pool named 'nopool'"
v vol-upload p r.raw "$T/missing"; expect_rc 2
v vol-upload p ../r.raw "$T/data"; expect_rc 2; has "not a valid volume name"
v vol-download p nope "$T/x"; expect_rc 1; has "pool 'p' has no volume 'nope'"
[ -e "$T/x" ] && fail "a refused download made its file"

# --- clone: same format, same bytes, only the data
v vol-clone p q.qcow2 q2.qcow2; expect_rc 0; has "Vol q2.qcow2 cloned from q.qcow2"
"$img" info "$T/images/q2.qcow2" | grep -q 'file format: qcow2' || fail "the clone is not a qcow2"
"$img" compare "$T/images/q.qcow2" "$T/images/q2.qcow2" >/dev/null || fail "the clone's data differ"
# the 2 MiB of zeros and the 11 MiB never written stay unallocated
alloc=$(du -B1 "$T/images/q2.qcow2" | cut -f1)
[ "$alloc" -lt $((6 * 1048576)) ] || fail "the clone allocated $alloc bytes"
v vol-clone p r.raw r2.raw; expect_rc 0
cmp "$T/images/r.raw" "$T/images/r2.raw" || fail "the raw clone differs"
v vol-clone p q.qcow2 r.raw; expect_rc 1; has "pool 'p' already has a volume 'r.raw'"
v vol-clone p nope x; expect_rc 1; has "pool 'p' has no volume 'nope'"
v vol-clone p q.qcow2 ../x; expect_rc 2
v vol-list p --json; expect_rc 0; has '"name":"q2.qcow2"[^}]*"format":"qcow2","capacity":16777216'

# --- resize
v vol-resize p q2.qcow2 32M; expect_rc 0
v vol-resize p r2.raw 16M; expect_rc 0
v vol-list p --json; expect_rc 0
has '"name":"q2.qcow2"[^}]*"capacity":33554432'; has '"name":"r2.raw"[^}]*"capacity":16777216'
# grown: the same data, zeros after (compare without --strict says so)
"$img" compare "$T/images/q.qcow2" "$T/images/q2.qcow2" >/dev/null || fail "the grown clone's data differ"
v vol-resize p r2.raw 4M; expect_rc 1; has "shrink must be asked for"
v vol-resize p r2.raw 4M --shrink; expect_rc 0
[ "$(stat -c %s "$T/images/r2.raw")" = $((4 * 1048576)) ] || fail "r2.raw was not shrunk"
cmp -n $((3 * 1048576)) "$T/data" "$T/images/r2.raw" || fail "the shrink changed r2.raw's start"
v vol-resize p r2.raw 1000; expect_rc 1; has "capacity: a size from 1M to 64T"
v vol-resize p r2.raw lots; expect_rc 1; has "capacity: a byte count"
v vol-resize p nope 4M; expect_rc 1; has "pool 'p' has no volume 'nope'"

# --- the API refuses names that leave the pool, and bad bodies
api POST /pools/p/volumes/q.qcow2/clone '{"name":"../esc"}'; [ "$code" = 400 ] || fail "clone to ../esc: $code"
api POST /pools/p/volumes/..%2Fq.qcow2/clone '{"name":"x"}'; [ "$code" = 404 ] || fail "clone of ../: $code"
# text after the JSON object: the whole body is refused, nothing made
api POST /pools/p/volumes/q.qcow2/clone '{"name":"tail.qcow2"}x'
[ "$code" = 400 ] || fail "a body with text after its object: $code"
[ -e "$T/images/tail.qcow2" ] && fail "a refused clone made its volume"
api POST /pools/p/volumes/r2.raw/resize '{"capacity":"8M"} {}'
[ "$code" = 400 ] || fail "a body of two objects: $code"
api POST /pools/p/volumes/../resize '{"capacity":"4M"}'; [ "$code" = 404 ] || fail "resize of ..: $code"
api GET /pools/p/volumes/..%2F..%2Fetc%2Fpasswd/data; [ "$code" = 404 ] || fail "download of ../..: $code"
api GET /pools/p/volumes/.hidden/data; [ "$code" = 404 ] || fail "download of .hidden: $code"
api POST /pools/p/volumes/r2.raw/resize '{"capacity":"4M","size":1}'; [ "$code" = 400 ] || fail "unknown field: $code"
api POST /pools/p/volumes/r2.raw/resize '{"capacity":"4M","shrink":"yes"}'; [ "$code" = 400 ] || fail "shrink: $code"
api GET /pools/p/volumes/q.qcow2/progress; [ "$code" = 404 ] || fail "progress with nothing under way: $code"
code=$(curl -s -o "$T/out" -w '%{http_code}' --unix-socket "$T/sock" -X PUT -H 'Transfer-Encoding: chunked' \
	--data-binary @"$T/data" http://vireod/pools/p/volumes/r2.raw/data)
[ "$code" = 411 ] || fail "an upload without a length: $code"
ls "$T/images" | grep -qv -E '^(q|q2)\.qcow2$|^(r|r2)\.raw$' && fail "stray files in the pool: $(ls "$T/images")"
ls "$T" | grep -q esc && fail "a clone escaped the pool"

# --- a volume a defined VM uses is not deleted
printf '{"name": "vm1", "cpus": 1, "memory": "64M", "kernel": "%s", "disks": [{"path": "%s", "format": "raw"}]}\n' \
	"$guest" "$T/images/r2.raw" >"$T/vm1.json"
v define "$T/vm1.json"; expect_rc 0
v vol-delete --pool p r2.raw; expect_rc 1; has "volume 'r2.raw' is a disk of VM 'vm1'"
# a VM that does not run leaves its disk to resize and upload
v vol-resize p r2.raw 8M; expect_rc 0
v undefine vm1; expect_rc 0
v vol-delete --pool p r2.raw; expect_rc 0

# --- the progress line: on a terminal only
head -c $((48 * 1048576)) /dev/urandom >"$T/big"
v vol-create-as p big.raw 64M --format raw; expect_rc 0
v vol-upload p big.raw "$T/big"; expect_rc 0
grep -q 'Uploading' "$T/out" && fail "a progress line without a terminal"
script -qec "'$vireo' vol-upload p big.raw '$T/big'" /dev/null >"$T/tty" 2>&1 || fail "vol-upload on a pty failed: $(cat "$T/tty")"
grep -q 'Uploading \[#* *\] *[0-9]*% ' "$T/tty" || fail "no upload progress on a terminal: $(cat "$T/tty")"
script -qec "'$vireo' vol-download p big.raw '$T/big.back'" /dev/null >"$T/tty" 2>&1 || fail "vol-download on a pty failed"
grep -q 'Downloading \[#* *\] *100% ' "$T/tty" || fail "no download progress on a terminal: $(cat "$T/tty")"
cmp -n $((48 * 1048576)) "$T/big" "$T/big.back" || fail "big.raw's download differs"
v vol-clone p big.raw big2.raw; expect_rc 0
grep -q 'Cloning' "$T/out" && fail "a clone's progress line without a terminal"
cmp "$T/images/big.raw" "$T/images/big2.raw" || fail "big2.raw differs"

# --- the lines of operations vireod reports on (GET .../progress while
# the POST runs): a stand-in vireod whose POSTs take 1.2 s and whose
# progress is 3 of 4 MiB, so that the lines are there to see.
python3 - "$T/fake.sock" <<'PY' &
import json, socket, sys, threading, time
srv = socket.socket(socket.AF_UNIX)
srv.bind(sys.argv[1])
srv.listen(16)
def handle(c):
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(4096)
        if not d:
            return c.close()
        data += d
    head, _, rest = data.partition(b"\r\n\r\n")
    method, path = head.split(b"\r\n")[0].decode().split(" ")[:2]
    n = 0
    for h in head.split(b"\r\n")[1:]:
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(rest) < n:
        rest += c.recv(4096)
    status, body = "200 OK", ""
    if path.endswith("/progress"):
        body = json.dumps({"operation": "clone", "done": 3 << 20, "total": 4 << 20})
    elif method == "POST":
        time.sleep(1.2)
        if path.endswith("/save"):
            status = "204 No Content"
        else:
            status = "201 Created"
            body = json.dumps({"name": "new", "path": "/p/new", "uuid": "u", "disks": []})
    c.sendall(("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
               "Connection: close\r\n\r\n%s" % (status, len(body), body)).encode())
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
PY
fake=$!
for _ in $(seq 100); do [ -S "$T/fake.sock" ] && break; sleep 0.1; done
line='\[#{22} {8}\]  75% \(3/4 MiB\)'
for cmd in "vol-clone p a new:Cloning" "clone a new --full:Cloning" "save a $T/saved:Saving"; do
	args=${cmd%:*} label=${cmd##*:}
	VIREO_SOCKET=$T/fake.sock script -qec "'$vireo' $args" /dev/null >"$T/tty" 2>&1 ||
		fail "vireo $args on a pty: $(cat "$T/tty")"
	grep -qE "$label $line" "$T/tty" || fail "vireo $args: no progress line: $(cat -v "$T/tty")"
	VIREO_SOCKET=$T/fake.sock v $args; expect_rc 0
	grep -q "$label" <<<"$out" && fail "vireo $args: a progress line without a terminal"
done
# a linked clone has nothing to show
VIREO_SOCKET=$T/fake.sock script -qec "'$vireo' clone a new" /dev/null >"$T/tty" 2>&1
grep -q Cloning "$T/tty" && fail "a linked clone showed a progress line"
kill $fake; fake=

# --- an upload under way: its progress over the API, its volume busy.
# A client sends 1 MiB of 2, then waits for $T/go before the rest.
python3 - "$T/sock" "$T/go" >"$T/slow" 2>&1 <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"PUT /pools/p/volumes/big2.raw/data HTTP/1.1\r\nHost: vireod\r\n"
          b"Content-Length: 2097152\r\nConnection: close\r\n\r\n")
s.sendall(b"\x01" * 1048576)
for _ in range(300):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.1)
s.sendall(b"\x02" * 1048576)
print(s.recv(4096).split(b"\r\n")[0].decode())
PY
slow=$!
for _ in $(seq 100); do
	api GET /pools/p/volumes/big2.raw/progress >/dev/null
	[ "$code" = 200 ] && grep -q '"done":1048576' <<<"$out" && break
	sleep 0.1
done
echo "progress: $code $out"
[ "$out" = '{"operation":"upload","done":1048576,"total":2097152}' ] || fail "no upload progress: $code $out"
v vol-delete --pool p big2.raw; expect_rc 1; has "volume 'big2.raw' is busy \(upload under way\)"
v vol-resize p big2.raw 128M; expect_rc 1; has "busy"
touch "$T/go"
wait $slow
grep -q 'HTTP/1.1 204' "$T/slow" || fail "the slow upload: $(cat "$T/slow")"
api GET /pools/p/volumes/big2.raw/progress >/dev/null; [ "$code" = 404 ] || fail "progress after the upload: $code"
head -c 1048576 /dev/zero | tr '\0' '\1' >"$T/ones"
head -c 1048576 /dev/zero | tr '\0' '\2' >>"$T/ones"
cmp -n 2097152 "$T/ones" "$T/images/big2.raw" || fail "the slow upload's bytes differ"

# --- a client that goes away mid-upload leaves the volume free
python3 - "$T/sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"PUT /pools/p/volumes/big2.raw/data HTTP/1.1\r\nHost: vireod\r\n"
          b"Content-Length: 4194304\r\nConnection: close\r\n\r\n")
s.sendall(b"\x03" * 1500000)
s.close()
PY
for _ in $(seq 50); do
	api GET /pools/p/volumes/big2.raw/progress >/dev/null
	[ "$code" = 404 ] && break
	sleep 0.1
done
[ "$code" = 404 ] || fail "an abandoned upload still holds big2.raw: $code $out"
# an empty file: nothing written, no error
: >"$T/empty"
v vol-upload p big2.raw "$T/empty"; expect_rc 0
v vol-delete --pool p big2.raw; expect_rc 0

# vireod ends cleanly, with no sanitizer report (an asan build checks leaks)
kill -TERM $dpid
for _ in $(seq 300); do kill -0 $dpid 2>/dev/null || break; sleep 0.1; done
kill -0 $dpid 2>/dev/null && fail "vireod still runs 30 s after SIGTERM"
wait $dpid; drc=$? dpid=
[ $drc = 0 ] || fail "vireod exit status $drc after SIGTERM"
grep -qE 'Sanitizer|runtime error' "$T/vireod.log" && fail "a sanitizer report from vireod"
echo "PASS"
