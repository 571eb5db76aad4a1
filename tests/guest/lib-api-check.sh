#!/usr/bin/env bash
# The helpers of lib-api.sh themselves, without a VM: call against a small
# HTTP server on a Unix socket (a failed call leaves no earlier body),
# wait_for and finish on ordinary processes (a match, a process that ends
# first, an exit status, a sanitizer report, the time bound), json.
#   lib-api-check.sh
set -u
. "$(dirname "$0")/lib-api.sh"
api_init
[ -d "$dir" ] && [ "$(stat -c %a "$dir")" = 777 ] || fail "api_init: no directory of mode 0777"
[ "$sock" = "$dir/api.sock" ] || fail "api_init: sock is '$sock'"

# A server that answers GET /ok with 200 and a JSON body, and PUT /echo
# with 201, the request's content type and body.
python3 - "$sock" >"$dir/server.out" 2>"$dir/server.err" <<'PY' &
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        self.send_response(code)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(200 if self.path == '/ok' else 404, b'{"ok": 1, "none": null}')
    def do_PUT(self):
        n = int(self.headers.get('Content-Length', 0))
        self.reply(201, self.headers.get('Content-Type', '').encode() + b' ' + self.rfile.read(n))
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    def get_request(self):
        r, _ = super().get_request()
        return r, ('local', 0)
S(sys.argv[1], H).serve_forever()
PY
server=$!
pids+=("$server")
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "the test server did not start"

call GET /ok; expect 200
[ "$body" = '{"ok": 1, "none": null}' ] || fail "GET /ok: body '$body'"
[ "$(json "$body" ok)" = 1 ] || fail "json: ok is '$(json "$body" ok)'"
[ "$(json "$body" none)" = null ] || fail "json: none is not null"
[ "$(json "$body" absent)" = null ] || fail "json: absent is not null"
out=$(call PUT /echo '{"a": 2}')
[ "$out" = 'PUT /echo {"a": 2} -> 201 application/json {"a": 2}' ] || fail "call printed '$out'"
[ -z "$(call -q GET /ok)" ] || fail "call -q printed something"
call_show=5
out=$(call GET /ok)
[ "$out" = 'GET /ok -> 200 {"ok"' ] || fail "call with call_show=5 printed '$out'"
call_show=
call GET /nothing; expect 404
# No server on the socket: status 000 and no body, not the last one.
call GET /ok; expect 200
call -u "$dir/none.sock" GET /ok
[ "$code" = 000 ] || fail "a call to no server: status $code"
[ -z "$body" ] || fail "a call to no server kept the earlier body '$body'"
out=$(expect 200) && fail "expect 200 passed on status $code"
grep -q "^FAIL: expected status 200, got 000$" <<<"$out" || fail "expect printed '$out'"

# wait_for: a line that comes; a process that ends first; the bound.
(sleep 0.3; echo "line one"; echo "ready now"; exec sleep 30) >"$dir/w.out" &
pid=$!
wait_for "$dir/w.out" "^ready" || fail "wait_for returned $?"
kill -KILL $pid
wait $pid 2>/dev/null
pid=
out=$( (true & p=$!; sleep 0.2; wait_for "$dir/w.out" "^never" $p) ) && fail "wait_for passed"
grep -q "ended before '^never'" <<<"$out" || fail "wait_for on an ended process printed '$out'"
out=$( (wait_secs=1; sleep 30 >/dev/null & p=$!; trap 'kill $p' EXIT; wait_for "$dir/w.out" "^never" $p) ) &&
	fail "wait_for passed"
grep -q "no '^never' in .*w.out after 1 s" <<<"$out" || fail "wait_for's bound printed '$out'"

# finish: the status; a sanitizer report; the bound (the process killed).
: >"$dir/a.err"
sh -c 'exit 3' &
pid=$!
other=$pid
pids+=("$pid")
finish a 3 || fail "finish a 3 returned $?"
[ -z "$pid" ] || fail "finish left pid=$pid"
for p in "${pids[@]}"; do [ "$p" != "$other" ] || fail "finish left $other in pids"; done
[ "${pids[*]}" = "$server" ] || fail "finish took another pid out of pids: '${pids[*]}'"
out=$( (sh -c 'exit 0' & finish a 1 $!) ) && fail "finish passed a wrong status"
grep -q "^FAIL: a: exit status 0, expected 1$" <<<"$out" || fail "finish printed '$out'"
echo "==12==ERROR: AddressSanitizer: heap-use-after-free" >"$dir/b.err"
out=$( (sh -c 'exit 0' & finish b 0 $!) ) && fail "finish passed a sanitizer report"
grep -q "^FAIL: b: sanitizer report$" <<<"$out" || fail "finish printed '$out'"
echo "x.c:1:2: runtime error: signed integer overflow" >"$dir/b.err"
out=$( (sh -c 'exit 0' & finish b 0 $!) ) && fail "finish passed a UBSan report"
rm "$dir/b.err"
out=$( (finish_secs=1; sleep 30 >/dev/null & p=$!; echo "$p" >"$dir/c.pid"; finish c 0 $p) ) &&
	fail "finish passed a process that runs on"
grep -q "^FAIL: c still runs after 1 s$" <<<"$out" || fail "finish printed '$out'"
sleep 0.2
kill -0 "$(cat "$dir/c.pid")" 2>/dev/null && fail "finish left the process running"

# need_kvm skips (77) without /dev/kvm, and fail shows the logs.
if [ ! -e /dev/kvm ]; then
	( need_kvm ); [ $? -eq 77 ] || fail "need_kvm without /dev/kvm did not skip"
fi
echo "a line of the log" >"$dir/log.out"
out=$( (fail "on purpose") ) && fail "fail did not fail"
grep -q "^== .*/log.out$" <<<"$out" && grep -q "^a line of the log$" <<<"$out" ||
	fail "fail did not show the logs: '$out'"
[[ "$(free_port)" =~ ^[0-9]+$ ]] || fail "free_port"
echo ok
