#!/usr/bin/env bash
# vireo console over vireod's TCP listener (TLS, bearer token), a tiny
# guest on /dev/kvm that echoes its input upper-cased:
#  - vireo -c tls:127.0.0.1:PORT console NAME: the guest's output is read,
#    the keys typed reach the guest (their echo comes back), Ctrl-]
#    detaches; a --readonly reader over TLS sees a writer's echo;
#  - the console slot is the same as on the Unix socket: a second writer
#    over TLS is refused while one is attached through the socket;
#  - the token is required: vireo with a wrong token is refused (exit
#    status 1, 401), and the upgrade asked for by hand (Python's ssl) with
#    no token or a wrong one gets 401 and no console, with the right one
#    101 and the guest's bytes;
#  - the console closes over TLS too when the VM ends.
#   tls-console.sh VIREOD VIREO VMM HELLO_GUEST
set -u
vireod=$(realpath "$1") vireo=$(realpath "$2") vmm=$(realpath "$3") hello=$(realpath "$4")
. "$(dirname "$0")/lib.sh"
need_kvm
need_cmds openssl python3
make_tmp tlscon 0755
mkfifo "$T/hold"
exec 9<>"$T/hold"
show_logs() { show_daemon_logs; dump -v "$T"/c-*; }

tls_setup
start_daemon --no-autostart --listen 127.0.0.1:$port --tls-cert cert.pem --tls-key key.pem \
	--token-file token
export VIREO_SOCKET=$T/sock
at=tls:127.0.0.1:$port
tv() { v -c $at --ca "$T/cert.pem" --token-file "$T/token" "$@"; }

printf '{"name": "echo", "cpus": 1, "memory": "64M", "kernel": "%s", "cmdline": "console=ttyS0 echo"}\n' \
	"$hello" >echo.json
tv define echo.json; expect_rc 0
tv start echo; expect_rc 0
for _ in $(seq 300); do
	"$vireo" console echo --log 2>/dev/null | grep -q "^echo ready$" && break
	sleep 0.1
done
"$vireo" console echo --log | grep -q "^echo ready$" || fail "the guest did not come up"

# --- a reader over TLS, then a writer over TLS: output read, input echoed
"$vireo" -c $at --ca cert.pem --token-file token console echo --readonly <"$T/hold" \
	>"$T/c-r1" 2>"$T/c-r1.err" &
bg+=($!)
wait_file "$T/c-r1.err" "Connected to echo, read-only"
# Ctrl-] once the read-only client has seen the echo (or after 30 s).
(sleep 0.5; printf 'tls-abc'
 for _ in $(seq 300); do grep -q "TLS-ABC" "$T/c-r1" && break; sleep 0.1; done
 sleep 0.3; printf '\035') |
	"$vireo" -c $at --ca cert.pem --token-file token console echo >"$T/c-w1" 2>"$T/c-w1.err"
rc=$?
echo "console over TLS -> $rc: $(cat -v "$T/c-w1" | tr '\n' ' ') | $(tr '\n' ' ' <"$T/c-w1.err")"
[ $rc = 0 ] || fail "vireo console over TLS: exit status $rc"
grep -q "Connected to echo (Ctrl" "$T/c-w1.err" || fail "the writer over TLS did not attach"
grep -q "TLS-ABC" "$T/c-w1" || fail "the keys sent over TLS did not reach the guest (no echo)"
grep -q "Detached" "$T/c-w1.err" || fail "Ctrl-] did not detach over TLS"
wait_file "$T/c-r1" "TLS-ABC" 5
"$vireo" console echo --log | grep -q "TLS-ABC" || fail "the echo is not in the console log"

# --- the TLS writer's slot is free again once it detached (within 10 s:
# vireod sees the TLS client go), and it is the socket's slot too: one writer
for i in $(seq 50); do
	"$vireo" console echo <"$T/hold" >"$T/c-w2" 2>"$T/c-w2.err" &
	w2=$!
	# attached, or refused (the process ends), within 5 s
	for _ in $(seq 50); do
		grep -q "Connected to echo (Ctrl" "$T/c-w2.err" && break
		kill -0 $w2 2>/dev/null || break
		sleep 0.1
	done
	grep -q "Connected to echo (Ctrl" "$T/c-w2.err" && break
	sleep 0.2
	kill $w2 2>/dev/null; wait $w2 2>/dev/null
done
grep -q "Connected to echo (Ctrl" "$T/c-w2.err" ||
	fail "the writer's slot is still taken after the TLS writer detached: $(cat "$T/c-w2.err")"
bg+=($w2)
echo "a writer on the socket after the TLS writer detached (try $i)"
tv console echo </dev/null; expect_rc 1; has "echo's console has a writer already"
kill $w2; wait $w2 2>/dev/null
sleep 0.3

# --- the token: required for the console as for every request
v -c $at --ca cert.pem console echo </dev/null; expect_rc 2; has "needs a token"
VIREO_TOKEN=wrong-token-wrong-token v -c $at --ca cert.pem console echo </dev/null
expect_rc 1; has "unauthorized"
python3 - 127.0.0.1 $port "$T/cert.pem" "$token" >"$T/c-raw" 2>&1 <<'PY' || fail "raw upgrades: $(cat "$T/c-raw")"
import socket, ssl, sys, time
host, port, ca, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)

def upgrade(auth):
    s = ctx.wrap_socket(socket.create_connection((host, port), timeout=20), server_hostname=host)
    hdr = ("Authorization: %s\r\n" % auth) if auth else ""
    s.sendall(("POST /vms/echo/console HTTP/1.1\r\nHost: x\r\n%sConnection: Upgrade\r\n"
               "Upgrade: vireo-console\r\nContent-Length: 0\r\n\r\n" % hdr).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(4096)
        if not d:
            break
        data += d
    return s, data

for name, auth in (("no token", None), ("wrong token", "Bearer x" + token),
                   ("another scheme", "Basic " + token)):
    s, data = upgrade(auth)
    status = data.split(b"\r\n", 1)[0]
    print(name, "->", status)
    if not status.startswith(b"HTTP/1.1 401"):
        sys.exit("%s: %r, expected 401" % (name, status))
    s.close()
s, data = upgrade("Bearer " + token)
head, _, rest = data.partition(b"\r\n\r\n")
print("right token ->", head.split(b"\r\n", 1)[0])
if not head.startswith(b"HTTP/1.1 101"):
    sys.exit("right token: %r, expected 101" % head)
s.sendall(b"raw-xyz")
got = rest
deadline = time.time() + 10
while b"RAW-XYZ" not in got and time.time() < deadline:
    d = s.recv(4096)
    if not d:
        break
    got += d
print("echo:", got[-40:])
if b"RAW-XYZ" not in got:
    sys.exit("no echo of the raw client's bytes")
s.close()
PY
cat "$T/c-raw"
grep -q "TCP: POST /vms/echo/console from 127.0.0.1 refused: no bearer token" "$T/vireod.log" ||
	fail "the refused console upgrade is not logged"

# --- the VM ends: the TLS reader is told
sleep 0.3
tv destroy echo; expect_rc 0
wait_file "$T/c-r1.err" "Console closed by vireod" 10

kill -TERM $dpid; wait $dpid; rc=$?; dpid=
[ $rc = 0 ] || fail "vireod ended with $rc after SIGTERM"
echo PASS
