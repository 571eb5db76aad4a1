#!/usr/bin/env bash
# Save, restore and live migration of a VM with user-mode networking
# (--net user, libslirp): the virtio guest ("netsave") sends one frame a
# round on virtio-net's transmit queue, each answered with an MSI-X
# interrupt (libslirp drops the frames: their EtherType is none it
# knows).  The VM has a hostfwd rule on a free port of the host's
# loopback, which accepts connections while it runs.  Saved after round
# 3, the VM ends and the port with it; restored in a new vireo-vmm
# (sandboxed, the defaults as root) without --net, the net comes back
# from the save with its hostfwd rule (the port accepts again) and
# libslirp's state, and the guest's remaining rounds go through the
# restored queue.  Refused: a save whose libslirp state version was
# changed (one error line, status 1).  Then a live migration (no hostfwd:
# source and target share the host) carries the same, after a sandboxed
# target without the source's --net has refused the stream (the source
# runs on).
#   save-restore-user-net.sh VMM GUEST (virtio.elf)
set -u
vmm=$(readlink -f "$1") guest=$(readlink -f "$2")
. "$(dirname "$0")/lib-api.sh"
need_kvm
api_init
save=$dir/save
# Whether a TCP connection to 127.0.0.1:PORT is accepted.
connects() {
	python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
' "$1"
}
port=$(free_port)

# 1. The net guest on a user net with a hostfwd rule, saved after round 3.
#    No --debug-exit: the VM stays up once the guest is done.
"$vmm" --sandbox=off --net "user,hostfwd=tcp:127.0.0.1:$port-:7,id=u0" \
	--cmdline netsave --api-socket "$sock" --kernel "$guest" \
	</dev/null >"$dir/first.out" 2>"$dir/first.err" &
pid=$!
wait_for "$dir/first.out" "^net round 3$"
connects "$port" || fail "the hostfwd port $port does not accept before the save"
call PUT /vm/save "{\"dir\": \"$save\", \"exit\": true}"; expect 204
finish first 0
grep -q "virtio-net save ok" "$dir/first.out" && fail "the guest finished before the save"
connects "$port" && fail "port $port still accepts after the saved VM ended"

# 2. Refused: libslirp's state in another version (the section's
#    checksum made right again).
cp -r "$save" "$dir/badver"
python3 - "$dir/badver/state" <<'PY' || fail "cannot rewrite the state file"
import struct, sys, zlib
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
off, found = 24, False
while off + 24 <= len(b):
    typ, idx, ln, crc, res = struct.unpack_from("<IIQII", b, off)
    pay = off + 24
    if typ == 9:
        ver = struct.unpack_from("<I", b, pay)[0]
        struct.pack_into("<I", b, pay, ver + 100)
        struct.pack_into("<I", b, off + 16, zlib.crc32(bytes(b[pay:pay + ln])))
        found = True
    if typ == 0:
        break
    off = pay + ln
open(p, "wb").write(b)
sys.exit(0 if found else 1)
PY
"$vmm" --restore "$dir/badver" </dev/null >"$dir/badver.out" 2>"$dir/badver.err"
rc=$?
[ $rc -eq 1 ] || fail "another libslirp state version: status $rc, expected 1"
grep -q "libslirp state version" "$dir/badver.err" || fail "another libslirp state version: no reason"
[ "$(grep -c . "$dir/badver.err")" -eq 1 ] || fail "another libslirp state version: not one error line"

# 3. Restored without --net: the net and its hostfwd rule come from the
#    save; the guest goes on through the same queue.
"$vmm" --restore "$save" --api-socket "$sock" </dev/null >"$dir/second.out" 2>"$dir/second.err" &
pid=$!
wait_for "$dir/second.out" "virtio-net save ok"
grep -q "virtio-net save: start\|virtio device at" "$dir/second.out" &&
	fail "the restored guest started again"
went_on 'net round ' "$dir/first.out" "$dir/second.out"
grep -q "^net round 8$" "$dir/second.out" || fail "not every round after the restore"
connects "$port" || fail "the restored VM's hostfwd port $port does not accept"
call GET /vm; expect 200
kill -TERM $pid
finish second 143
echo "restore ok: saved at '$last', restored at '$first', hostfwd port $port accepts"

# 4. A live migration carries libslirp's state the same way.  First a
#    sandboxed target started without the source's --net (its network
#    namespace is made before the stream): it refuses the stream, saying
#    so, and the source runs on.
tsock=$dir/target-api.sock
boot=(--net user,id=u0 --cmdline netsave --kernel "$guest")
"$vmm" --cmdline netsave --kernel "$guest" --incoming "unix:$dir/mig0.sock" \
	</dev/null >"$dir/target0.out" 2>"$dir/target0.err" &
tpid=$!; pids+=("$tpid")
wait_for "$dir/target0.err" "waiting for a migration" $tpid
"$vmm" "${boot[@]}" --sandbox=off --api-socket "$sock" </dev/null >"$dir/source.out" 2>"$dir/source.err" &
pid=$!
wait_for "$dir/source.out" "^net round 2$"
call PUT /migrate "{\"uri\": \"unix:$dir/mig0.sock\"}"; expect 202
finish target0 1 $tpid
grep -q "error: --incoming unix:$dir/mig0.sock: the source's VM has 1 network device(s) (user-mode), this command line 0: give the target the source's --net options" \
	"$dir/target0.err" || fail "target0 does not say why it refused: $(tail -1 "$dir/target0.err")"
for _ in $(seq 300); do
	call -q GET /migrate
	grep -q '"state":"failed"' <<<"$body" && break
	sleep 0.1
done
grep -q '"state":"failed"' <<<"$body" || fail "GET /migrate never said failed: $body"
kill -0 $pid || fail "the source ended with the failed migration"
echo "ok: a target without the source's --net refused the stream, the source runs on"
"$vmm" "${boot[@]}" --incoming "unix:$dir/mig.sock" --api-socket "$tsock" \
	</dev/null >"$dir/target.out" 2>"$dir/target.err" &
tpid=$!; pids+=("$tpid")
wait_for "$dir/target.err" "waiting for a migration" $tpid
call PUT /migrate "{\"uri\": \"unix:$dir/mig.sock\"}"; expect 202
finish source 0
grep -q "virtio-net save ok" "$dir/source.out" && fail "the source finished the guest"
wait_for "$dir/target.out" "virtio-net save ok" $tpid
went_on 'net round ' "$dir/source.out" "$dir/target.out"
kill -TERM $tpid
finish target 143 $tpid
echo "ok: migrated at '$last', the target went on at '$first'"
