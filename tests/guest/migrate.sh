#!/usr/bin/env bash
# Live migration (PUT /migrate, --incoming): the savewrite guest updates
# 16 MiB in rounds; after round 2 the source (its API socket, without the
# sandbox: it connects to the target) migrates it to a target started
# with the same command line plus --incoming (sandboxed and filtered as
# root, the defaults), while it writes.  The source exits 0 saying
# "migrated", GET /migrate said "completed" before; the target (no disk,
# no net: it builds the VM while the stream comes in) carries on
# from the round it was at (no new start) and ends with every word checked
# and the expected checksum.
#   migrate.sh VMM GUEST CPUS tcp|unix
# Also, with 1 vCPU (the failure cases): a migration cancelled part-way,
# one that does not converge (auto-converge throttles the vCPUs, then it
# gives up) and one whose target is killed leave the source running, which then
# finishes correctly; a garbage stream, a wrong version and a truncated
# stream on --incoming are one clear error each, the guest never running;
# during a migration save and snapshot answer 409, GET /metrics answers,
# and PUT /vm/poweroff cancels it and stops the source.
set -u
vmm=$1 guest=$2 cpus=$3 transport=$4
. "$(dirname "$0")/lib-api.sh"
api_init
wait_secs=120
want=$(savewrite_checksum)
uri() {
	if [ "$transport" = tcp ]; then echo "tcp:127.0.0.1:$(free_port)"; else echo "unix:$dir/$1.sock"; fi
}
boot=(--debug-exit --memory 64M --cpus "$cpus" --cmdline "cpus=$cpus" --kernel "$guest")
targs=()   # the target's further options
# start_pair N ROUND [VAR=VALUE...]: a target (targetN, --incoming $u, u a
# new uri()) waiting for a migration, then a source (sourceN, the API on
# $sock, its environment plus VAR=VALUE...) at round ROUND; sets u, tpid
# and spid.
start_pair() {
	local n=$1 round=$2
	shift 2
	u=$(uri "target$n")
	"$vmm" "${boot[@]}" "${targs[@]}" --incoming "$u" --verbose </dev/null \
		>"$dir/target$n.out" 2>"$dir/target$n.err" &
	tpid=$!; pids+=("$tpid")
	wait_for "$dir/target$n.err" "waiting for a migration" "$tpid"
	env "$@" "$vmm" "${boot[@]}" --sandbox=off --api-socket "$sock" </dev/null \
		>"$dir/source$n.out" 2>"$dir/source$n.err" &
	spid=$!; pids+=("$spid")
	wait_for "$dir/source$n.out" "^round $round$" "$spid"
}
# wait_state STATE: GET /migrate until it says so
wait_state() {
	for _ in $(seq 600); do
		call -q GET /migrate
		grep -q "\"state\":\"$1\"" <<<"$body" && { echo "GET /migrate -> $body"; return 0; }
		sleep 0.1
	done
	fail "GET /migrate never said $1: $body"
}

# 1. The migration while the guest writes.
start_pair "" 2
call GET /migrate; expect 200
grep -q '"state":"none"' <<<"$body" || fail "a migration before any"
call PUT /migrate "{\"uri\": \"$u\", \"downtime_ms\": 300}"; expect 202
call PUT /migrate "{\"uri\": \"$u\"}"
[ "$code" = 409 ] || [ "$code" = 000 ] || fail "a second PUT /migrate: $code"
finish source 0 $spid
grep -q "migrated to $u" "$dir/source.err" || fail "the source does not say it migrated"
grep -q "checksum" "$dir/source.out" && fail "the source finished the guest"
finish target 0 $tpid
grep -q "savewrite: start" "$dir/target.out" && fail "the target started the guest again"
went_on 'round ' "$dir/source.out" "$dir/target.out"
grep -q "^checksum $want over 16384 words: ok$" "$dir/target.out" ||
	fail "target: expected 'checksum $want over 16384 words: ok'"
grep -q "migrated in" "$dir/target.err" || fail "the target does not say it runs"
# No disk, no net: the target builds the VM while the stream comes in.
grep -q "the VM is built while the stream comes in" "$dir/target.err" ||
	fail "the target did not build the VM while the stream came in"
echo "migrated: source ended at '$last', target went on at '$first'; $(grep -o 'downtime [0-9]* ms' "$dir/source.err")"
[ "$cpus" = 1 ] && [ "$transport" = tcp ] || exit 0

# 2. Cancel part-way (bandwidth capped: 1 MB/s): the source runs on and
#    finishes; the target (its API meanwhile: GET /vm "incoming", GET
#    /migrate active and in, others 409) says the stream was cut and
#    never runs.
targs=(--api-socket "$dir/t2.sock")
start_pair "2" 2
targs=()
call PUT /migrate "{\"uri\": \"$u\", \"bandwidth_mbps\": 8}"; expect 202
sleep 1
call GET /migrate; expect 200
grep -q '"state":"active"' <<<"$body" || fail "not active after 1 s"
# The target, its VM built while the stream comes in, says so.
call -u "$dir/t2.sock" GET /vm; expect 200
[ "$(json "$body" state)" = incoming ] || fail "target2's GET /vm: $body"
call -u "$dir/t2.sock" GET /migrate; expect 200
[ "$(json "$body" state)" = active ] && [ "$(json "$body" direction)" = in ] &&
	[ "$(json "$body" bytes_received)" -gt 0 ] || fail "target2's GET /migrate: $body"
call -u "$dir/t2.sock" PUT /vm/pause; expect 409
call PUT /vm/pause; expect 409
call PUT /vm/save "{\"dir\": \"$dir/save\"}"; expect 409
call PUT /vm/snapshot '{"name": "s1"}'; expect 409
[ -e "$dir/save" ] && fail "a save during a migration"
call GET /metrics; expect 200
grep -q '^vireo_vcpu_exits_total{vcpu="0",reason="io"} [1-9]' <<<"$body" ||
	fail "GET /metrics during a migration: $body"
call DELETE /migrate; expect 204
wait_state cancelled
call DELETE /migrate; expect 409
finish target2 1 $tpid
grep -q "truncated stream" "$dir/target2.err" || fail "target2: no clear error"
grep -q "the VM is built while the stream comes in" "$dir/target2.err" ||
	fail "target2 did not build the VM while the stream came in"
[ -s "$dir/target2.out" ] && fail "target2: the guest ran"
finish source2 0 $spid
grep -q "^checksum $want over 16384 words: ok$" "$dir/source2.out" ||
	fail "source2 after a cancel: expected 'checksum $want over 16384 words: ok'"
grep -q "cancelled: the VM runs on" "$dir/source2.err" || fail "source2 does not say it runs on"

# 2a. PUT /vm/poweroff during a migration cancels it, then stops the
#    VM: the source exits 0 without finishing the guest, the target
#    says the stream was cut and never runs.
start_pair "5" 2
call PUT /migrate "{\"uri\": \"$u\", \"bandwidth_mbps\": 8}"; expect 202
sleep 1
call PUT /vm/poweroff; expect 204
finish source5 0 $spid
grep -q "PUT /vm/poweroff: cancelling the migration" "$dir/source5.err" ||
	fail "source5: the poweroff did not cancel the migration"
grep -q "migrated to" "$dir/source5.err" && fail "source5 migrated after a poweroff"
grep -q "checksum" "$dir/source5.out" && fail "source5 ran on after a poweroff"
finish target5 1 $tpid
[ -s "$dir/target5.out" ] && fail "target5: the guest ran"
echo "poweroff during a migration: $(grep -c error "$dir/target5.err") error line on the target"

# 2b. A guest dirtying faster than a capped link (10 MB/s) with a 1 ms
#    limit: the vCPUs are throttled, and (rounds limited to 3 by a test
#    hook) the migration gives up saying why; the source finishes.
start_pair "4" 1 VIREO_TEST_MIGRATE_ROUNDS=3
call PUT /migrate "{\"uri\": \"$u\", \"bandwidth_mbps\": 80, \"downtime_ms\": 1}"; expect 202
wait_state failed
grep -q "did not converge after 3 rounds" <<<"$body" || fail "no reason: $body"
finish target4 1 $tpid
[ -s "$dir/target4.out" ] && fail "target4: the guest ran"
finish source4 0 $spid
grep -q "^checksum $want over 16384 words: ok$" "$dir/source4.out" ||
	fail "source4 after giving up: expected the checksum"
grep "throttled" "$dir/source4.err" || true

# 3. The target killed part-way: the source runs on and finishes.
start_pair "3" 2
call PUT /migrate "{\"uri\": \"$u\", \"bandwidth_mbps\": 8}"; expect 202
sleep 1
kill -KILL $tpid
wait_state failed
grep -q "connection to the target failed" <<<"$body" || fail "no reason: $body"
finish source3 0 $spid
grep -q "^checksum $want over 16384 words: ok$" "$dir/source3.out" ||
	fail "source3 after a killed target: expected the checksum"
grep -q "failed: .*the VM runs on" "$dir/source3.err" || fail "source3 does not say why"

# 4. Malformed streams: one clear error line, status 1, no guest.
# refuse NAME PATTERN PYTHON-BYTES
refuse() {
	local u=unix:$dir/bad.sock
	"$vmm" "${boot[@]}" --incoming "$u" </dev/null >"$dir/$1.out" 2>"$dir/$1.err" &
	local p=$!; pids+=("$p")
	wait_for "$dir/$1.err" "waiting for a migration" $p
	python3 -c "
import socket, struct, sys, zlib
s = socket.socket(socket.AF_UNIX); s.connect('$dir/bad.sock')
try: s.sendall($3)
except OSError: pass
s.close()"
	finish "$1" 1 $p
	grep -q "error: --incoming $u: $2" "$dir/$1.err" || fail "$1: no '$2' in the error"
	[ "$(grep -c error "$dir/$1.err")" -eq 1 ] || fail "$1: not one error line"
	[ -s "$dir/$1.out" ] && fail "$1: the guest ran"
	echo "refused ($1): $(grep error "$dir/$1.err")"
}
refuse garbage "not a vireo migration stream" "b'GET / HTTP/1.0\r\n\r\n' * 10"
refuse version "stream version 9, this vireo-vmm reads version 4" \
	"b'VIREOMIG' + struct.pack('<II', 9, 0)"
refuse truncated "record header: the source closed the connection (truncated stream)" "b'VIREOMIG' + struct.pack('<II', 4, 0)"
refuse badrec "record 0: pages before the config" \
	"b'VIREOMIG' + struct.pack('<II', 4, 0) + struct.pack('<IIII', 2, 4112, 0, 0)"
refuse crc "record 0 (config): checksum mismatch" \
	"b'VIREOMIG' + struct.pack('<II', 4, 0) + struct.pack('<IIII', 1, 120, 1, 0) + bytes(120)"
echo "ok"
