#!/usr/bin/env bash
# vireod's TCP listener: HTTPS only, a bearer token on every request.
# A self-signed certificate made here with openssl; no VM is started.
#  - --listen without the TLS files and the token is refused at start-up,
#    and so are a world-readable token file and a token that is too short;
#  - vireo over tls: with --ca and the token (file or VIREO_TOKEN) works:
#    version, define, list, the event stream; the Unix socket still works
#    without a token; vireo loads libssl only for a tls: target;
#  - no token, a wrong token, a token with a byte more or less, another
#    scheme: 401, and a refused POST /vms defines nothing;
#  - plain HTTP to the TLS port gets no HTTP answer;
#  - a client that does not trust the certificate (no --ca, another CA)
#    fails before sending anything.
#   tls.sh VIREOD VIREO VMM
set -u
vireod=$(realpath "$1") vireo=$(realpath "$2") vmm=$(realpath "$3")
. "$(dirname "$0")/lib.sh"
need_cmds openssl curl python3
make_tmp tls
vireod_args=(--no-autostart)
# req CURL_ARGS...: an HTTPS request trusting our certificate; $code, $body
req() {
	code=$(curl -sS --max-time 20 --cacert "$T/cert.pem" -o "$T/body" -w '%{http_code}' "$@" 2>"$T/cerr")
	body=$(cat "$T/body" 2>/dev/null)
	echo "curl $* -> $code $body"
}

tls_setup
make_cert other.pem other-key.pem other

# --- refused at start-up
vireod_fg "$T" --listen 127.0.0.1:$port >"$T/o" 2>&1; rc=$?
echo "vireod --listen (no TLS) -> $rc: $(cat "$T/o")"
[ $rc = 2 ] || fail "--listen without TLS: exit status $rc, expected 2"
grep -q 'needs TLS and a token' "$T/o" || fail "no clear reason for refusing --listen"
vireod_fg "$T" --listen 127.0.0.1:$port --tls-cert cert.pem --tls-key key.pem >"$T/o" 2>&1
rc=$?; [ $rc = 2 ] || fail "--listen without --token-file: exit status $rc, expected 2"
vireod_fg "$T" --tls-cert cert.pem --tls-key key.pem --token-file token >"$T/o" 2>&1
rc=$?; [ $rc = 2 ] || fail "--tls-cert without --listen: exit status $rc, expected 2"
cp token open-token; chmod 644 open-token
vireod_fg "$T" --listen 127.0.0.1:$port --tls-cert cert.pem --tls-key key.pem \
	--token-file open-token >"$T/o" 2>&1; rc=$?
echo "vireod (world-readable token) -> $rc: $(cat "$T/o")"
[ $rc = 1 ] && grep -q 'readable or writable by others' "$T/o" || fail "a world-readable token file was taken"
echo short >short-token; chmod 600 short-token
vireod_fg "$T" --listen 127.0.0.1:$port --tls-cert cert.pem --tls-key key.pem \
	--token-file short-token >"$T/o" 2>&1; rc=$?
[ $rc = 1 ] && grep -q '16 to 512 characters' "$T/o" || fail "a 5-character token was taken"
vireod_fg "$T" --listen 127.0.0.1:$port --tls-cert key.pem --tls-key cert.pem \
	--token-file token >"$T/o" 2>&1; rc=$?
[ $rc = 1 ] || fail "a key given as the certificate was taken (exit status $rc)"

# --- the listener
start_daemon --listen 127.0.0.1:$port --tls-cert cert.pem --tls-key key.pem --token-file token
grep -q "listening on 127.0.0.1:$port too (HTTPS" "$T/vireod.log" || fail "no TCP listener in the log"

at=tls:127.0.0.1:$port
v -c $at --ca cert.pem --token-file token version; expect_rc 0; has '^vireo .*, vireod '
v -c tls:localhost:$port --ca cert.pem --token-file token version; expect_rc 0
# libssl is vireo's dlopen, for tls: only (the Unix socket starts faster)
LD_DEBUG=libs "$vireo" -c $at --ca cert.pem --token-file token version 2>&1 |
	grep -q 'calling init: .*libssl\.so' || fail "vireo did not load libssl for tls:"
LD_DEBUG=libs "$vireo" -c "$T/sock" version 2>&1 | grep -q 'libssl\.so' &&
	fail "vireo loaded libssl for the Unix socket"
printf '{"name": "tlsvm", "cpus": 1, "memory": "32M", "kernel": "/nonexistent/kernel"}\n' >vm.json
VIREO_CONNECT=$at VIREO_CA=$T/cert.pem VIREO_TOKEN=$token v define vm.json; expect_rc 0
has 'VM tlsvm defined'
VIREO_CONNECT=$at VIREO_CA=$T/cert.pem VIREO_TOKEN=$token v list --all; expect_rc 0
has 'tlsvm +shut off'
VIREO_CONNECT=$at VIREO_CA=$T/cert.pem VIREO_TOKEN_FILE=$T/token v dominfo tlsvm; expect_rc 0
has '^Memory: +32 MiB$'
VIREO_CONNECT=$at VIREO_CA=$T/cert.pem VIREO_TOKEN=$token timeout 3 "$vireo" events --all >ev 2>&1
grep -q '"tlsvm"' ev || fail "no event of tlsvm over TLS: $(cat ev)"
# the Unix socket: no token needed
VIREO_SOCKET=$T/sock v list --all; expect_rc 0; has 'tlsvm'
v -c unix:$T/sock dominfo tlsvm; expect_rc 0
# a volume's bytes both ways over TLS (streamed, with the token)
VIREO_SOCKET=$T/sock v pool-define-as tp dir "$T/tpool"; expect_rc 0
VIREO_SOCKET=$T/sock v vol-create-as tp t.raw 2M --format raw; expect_rc 0
head -c 1500000 /dev/urandom >"$T/tdata"
VIREO_CONNECT=$at VIREO_CA=$T/cert.pem VIREO_TOKEN=$token v vol-upload tp t.raw "$T/tdata"; expect_rc 0
VIREO_CONNECT=$at VIREO_CA=$T/cert.pem VIREO_TOKEN=$token v vol-download tp t.raw "$T/tback"; expect_rc 0
cmp -n 1500000 "$T/tdata" "$T/tback" || fail "a volume's bytes differ after TLS upload and download"
head -c 4096 /dev/urandom >"$T/tdata2"
VIREO_CONNECT=$at VIREO_CA=$T/cert.pem VIREO_TOKEN=not-the-token-at-all v vol-upload tp t.raw "$T/tdata2"
expect_rc 1; has 'unauthorized'
cmp -n 4096 "$T/tdata" "$T/tpool/t.raw" || fail "an upload with a wrong token wrote"

# --- 401 without the right token
req https://127.0.0.1:$port/vms
[ "$code" = 401 ] || fail "no token: $code, expected 401"
grep -q 'unauthorized' <<<"$body" || fail "no reason in the 401 answer"
req -H "Authorization: Bearer wrong$token" https://127.0.0.1:$port/vms
[ "$code" = 401 ] || fail "wrong token: $code"
req -H "Authorization: Bearer ${token%?}" https://127.0.0.1:$port/vms
[ "$code" = 401 ] || fail "a token one byte short: $code"
req -H "Authorization: Bearer ${token}x" https://127.0.0.1:$port/vms
[ "$code" = 401 ] || fail "a token one byte long: $code"
req -H "Authorization: Basic $token" https://127.0.0.1:$port/vms
[ "$code" = 401 ] || fail "another scheme: $code"
req -H "Authorization: Bearer $token" https://127.0.0.1:$port/vms
[ "$code" = 200 ] && grep -q tlsvm <<<"$body" || fail "the right token: $code"
req -X POST -H "Authorization: Bearer x$token" -H 'Content-Type: application/json' \
	--data "{\"name\": \"sneaky\", \"kernel\": \"/k\"}" https://127.0.0.1:$port/vms
[ "$code" = 401 ] || fail "POST /vms with a wrong token: $code"
VIREO_SOCKET=$T/sock v list --all; grep -q sneaky <<<"$out" && fail "a refused request defined a VM"
req -X DELETE -H "Authorization: Bearer nope" https://127.0.0.1:$port/vms/tlsvm
[ "$code" = 401 ] || fail "DELETE with a wrong token: $code"
# every route the daemon serves, without a token
n=0
while read -r method path; do
	url=$(sed 's/{name}/tlsvm/; s/{pool}/p/; s/{volume}/v/' <<<"$path")
	code=$(curl -sS --max-time 20 --cacert cert.pem -o /dev/null -w '%{http_code}' -X "$method" \
		https://127.0.0.1:$port$url 2>/dev/null)
	[ "$code" = 401 ] || fail "$method $url without a token: $code, expected 401"
	n=$((n + 1))
done < <("$vireod" --list-routes)
echo "all $n routes answer 401 without a token"
VIREO_SOCKET=$T/sock v dominfo tlsvm; expect_rc 0
VIREO_CONNECT=$at VIREO_CA=$T/cert.pem VIREO_TOKEN=not-the-token-at-all v list --all; expect_rc 1
has 'unauthorized'
VIREO_CONNECT=$at VIREO_CA=$T/cert.pem VIREO_TOKEN=not-the-token-at-all v events; expect_rc 1
has '401'
VIREO_CONNECT=$at VIREO_CA=$T/cert.pem v version; expect_rc 2; has 'needs a token'
grep -q 'refused: wrong token' "$T/vireod.log" || fail "refusals are not logged"

# --- plain HTTP to the TLS port: no HTTP answer
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' \
	-H "Authorization: Bearer $token" http://127.0.0.1:$port/vms 2>/dev/null)
echo "plain HTTP -> '$code'"
[ "$code" = 000 ] || fail "plain HTTP to the TLS port got HTTP $code"

# --- clients that do not trust the certificate
v -c $at --token-file token version; expect_rc 3; has 'not trusted'
v -c $at --ca other.pem --token-file token version; expect_rc 3; has 'not trusted'
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' --cacert other.pem \
	-H "Authorization: Bearer $token" https://127.0.0.1:$port/vms 2>/dev/null)
[ "$code" = 000 ] || fail "curl trusting another CA got HTTP $code"

# --- the connect syntax
v -c tls:127.0.0.1 --token-file token version; expect_rc 2; has 'use tls:HOST:PORT'
v -c tls:127.0.0.1:99999 --token-file token version; expect_rc 2

kill -TERM $dpid; wait $dpid; rc=$?; dpid=
[ $rc = 0 ] || fail "vireod ended with $rc after SIGTERM"
echo PASS
