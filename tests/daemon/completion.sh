#!/usr/bin/env bash
# The bash completion of vireo (contrib/bash-completion/vireo) against a
# vireod in --foreground on a temporary socket (no VM is started):
#  - verbs ("vireo sta" -> start), global options, each verb's options;
#  - VM, pool, volume and network names from vireod, for the verbs and
#    the options (--pool, --backing-vol) that take them; -c on the line,
#    VIREO_CONNECT in front of the command or exported, are used;
#  - files for define, directories for restore, words for --format;
#  - every verb of vireo --help and of docs/vireo.1 is offered, and every
#    option offered is one the verb takes (no "unknown option");
#  - a vireod that answers names with shell syntax: nothing of it is
#    offered, nothing of it runs.
#   completion.sh VIREOD VIREO VMM COMPLETION_FILE MAN_PAGE
set -u
vireod=$(realpath "$1") vireo=$(realpath "$2") vmm=$(realpath "$3")
comp=$(realpath "$4") man=$(realpath "$5")
. "$(dirname "$0")/lib.sh"
need_cmds python3
make_tmp comp
fpid=
cleanup_before() { [ -n "$fpid" ] && { kill -KILL $fpid; wait $fpid; } 2>/dev/null; }
unset VIREO_CONNECT VIREO_SOCKET VIREO_TOKEN VIREO_TOKEN_FILE VIREO_CA
# complete WORD...: COMPREPLY for the line "vireo WORD..." (the last word
# is the one completed), sorted into $got (space-separated)
# as in an interactive shell: bash-completion's functions, then ours
bc=/usr/share/bash-completion/bash_completion
# shellcheck source=/dev/null
[ -r "$bc" ] && source "$bc"
# shellcheck source=/dev/null
source "$comp" || fail "cannot source $comp"
comp() {
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	# the words as bash splits them (at COMP_WORDBREAKS' : and = too)
	COMP_WORDS=()
	local w
	for w in "$@"; do
		[ -z "$w" ] && { COMP_WORDS+=(""); continue; }
		while [[ $w =~ ^([^:=]*)([:=]+)(.*)$ ]]; do
			[ -n "${BASH_REMATCH[1]}" ] && COMP_WORDS+=("${BASH_REMATCH[1]}")
			COMP_WORDS+=("${BASH_REMATCH[2]}")
			w=${BASH_REMATCH[3]}
		done
		[ -n "$w" ] && COMP_WORDS+=("$w")
	done
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_vireo vireo "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	got=$(printf "%s\n" "${COMPREPLY[@]}" | LC_ALL=C sort | tr '\n' ' ')
	got=${got% }
	echo "complete [$*] -> [$got]"
}
expect() { [ "$got" = "$1" ] || fail "expected [$1], got [$got]"; }

start_daemon --no-autostart
V() { "$vireo" -c "$T/sock" "$@" >/dev/null || fail "vireo $*"; }
for n in web1 web2 db; do
	printf '{"name": "%s", "cpus": 1, "memory": "32M", "kernel": "/nonexistent/kernel"}\n' $n >"$T/$n.json"
	V define "$T/$n.json"
done
V pool-define-as images dir "$T/images"
V pool-define-as isos dir "$T/isos"
V vol-create-as images base.qcow2 16M
V vol-create-as images data.raw 1M --format raw
printf '{"name": "lan", "mode": "nat", "address": "10.77.0.1/24"}\n' >"$T/lan.json"
V net-define "$T/lan.json"
export VIREO_SOCKET=$T/sock

# --- verbs and options
comp "$vireo" sta; expect "start"
comp "$vireo" net-d; expect "net-define net-destroy net-dumpdef"
comp "$vireo" --c; expect "--ca --connect"
comp "$vireo" -; expect "--ca --connect --help --token-file --version -c"
comp "$vireo" list --; expect "--all --json --name"
comp "$vireo" console web1 --; expect "--log --readonly"
comp "$vireo" -c "$T/sock" vol-create-as images v 1M --f; expect "--format"
comp "$vireo" vol-create-as images v 1M --format ""; expect "qcow2 raw"
# --- names from vireod
comp "$vireo" start w; expect "web1 web2"
comp "$vireo" start ""; expect "db web1 web2"
comp "$vireo" dominfo --json d; expect "db"
comp "$vireo" start web1 ""; expect ""
comp "$vireo" vol-list ""; expect "images isos"
comp "$vireo" pool-undefine i; expect "images isos"
comp "$vireo" vol-delete --pool images ""; expect "base.qcow2 data.raw"
comp "$vireo" vol-delete --pool ""; expect "images isos"
comp "$vireo" vol-create-as images new 0 --backing-vol b; expect "base.qcow2"
comp "$vireo" net-start ""; expect "lan"
comp "$vireo" net-list --all ""; expect ""
comp "$vireo" clone web1 ""; expect ""
# --- where vireod is: -c on the line, VIREO_CONNECT before the command, exported
unset VIREO_SOCKET
comp "$vireo" start w; expect ""
comp "$vireo" -c "$T/sock" start w; expect "web1 web2"
comp "$vireo" --connect "unix:$T/sock" start w; expect "web1 web2"
comp "$vireo" --connect="unix:$T/sock" start w; expect "web1 web2"
comp VIREO_CONNECT="unix:$T/sock" "$vireo" start w; expect "web1 web2"
VIREO_CONNECT=unix:$T/sock comp "$vireo" vol-list i; expect "images isos"
comp "$vireo" -c "$T/nonexistent" start w; expect ""
comp "$vireo" -c unix:"$T/so"; expect "$T/sock"   # bash puts it after the colon
export VIREO_SOCKET=$T/sock
# --- files and directories
mkdir "$T/saved" && touch "$T/vm-a.json" "$T/vm-b.json"
comp "$vireo" define "$T/vm-"; expect "$T/vm-a.json $T/vm-b.json"
comp "$vireo" net-define "$T/vm-a"; expect "$T/vm-a.json"
comp "$vireo" restore "$T/sav"; expect "$T/saved"
comp "$vireo" save web1 "$T/sav"; expect "$T/saved"
comp "$vireo" --token-file "$T/vm-b"; expect "$T/vm-b.json"

# --- every verb of vireo --help and of the man page is offered
comp "$vireo" ""
offered=" $got "
help_verbs=$("$vireo" --help | sed -n 's/^  \([a-z][a-z-]*\)\( .*\)\?$/\1/p' | sort -u)
man_verbs=$(sed -n '/^\.SH COMMANDS/,/^\.SH /p' "$man" | grep -A1 '^\.TP' |
	sed -n 's/^\.BI\? "\?\([a-z\\-]*\).*/\1/p' | sed 's/\\-/-/g' | sort -u)
[ "$(wc -w <<<"$help_verbs")" -ge 30 ] || fail "too few verbs read from vireo --help: $help_verbs"
[ "$(wc -w <<<"$man_verbs")" -ge 30 ] || fail "too few verbs read from $man: $man_verbs"
for vb in $help_verbs $man_verbs; do
	[[ $offered == *" $vb "* ]] || fail "verb '$vb' (vireo --help, vireo(1)) is not offered"
done
for vb in $got; do
	grep -q "^$vb\$" <<<"$help_verbs" || fail "verb '$vb' is offered but not in vireo --help"
	grep -q "^$vb\$" <<<"$man_verbs" || fail "verb '$vb' is offered but not in vireo(1)"
done
echo "all $(wc -w <<<"$got") verbs offered, as in vireo --help and vireo(1)"
# --- every option offered is one the verb takes
n=0
for vb in $got; do
	for o in $("$vireo" __complete opts "$vb"); do
		k=$("$vireo" __complete optarg "$o")
		val=(); [ "$k" != flag ] && val=(x)
		"$vireo" -c "$T/nonexistent" "$vb" "$o" "${val[@]}" </dev/null >/dev/null 2>"$T/err"
		grep -q "unknown option" "$T/err" && fail "vireo $vb $o: $(cat "$T/err")"
		n=$((n + 1))
	done
	# and the check above can fail: a verb that takes options refuses others
	[ -z "$("$vireo" __complete opts "$vb")" ] && continue
	"$vireo" -c "$T/nonexistent" "$vb" --no-such-option </dev/null >/dev/null 2>"$T/err"
	grep -q "unknown option" "$T/err" || fail "vireo $vb --no-such-option: $(cat "$T/err")"
done
echo "all $n options offered are taken"
# --- vireo list --name: the names only
out=$("$vireo" list --all --name | tr '\n' ' ')
[ "$out" = "web1 web2 db " ] || [ "$(tr ' ' '\n' <<<"$out" | sort | tr '\n' ' ')" = " db web1 web2 " ] ||
	fail "list --all --name: '$out'"
[ -z "$("$vireo" list --name)" ] || fail "list --name lists VMs that do not run"
"$vireo" list --name --json >/dev/null 2>&1 && fail "list --name --json was taken"

# --- a hostile vireod: names with shell syntax are not offered and do not run
python3 - "$T/fake.sock" "$T" >"$T/fake.log" 2>&1 <<'PY' &
import json, os, socket, sys
path, tdir = sys.argv[1], sys.argv[2]
names = ["ok1", "$(touch %s/pwned1)" % tdir, "`touch %s/pwned2`" % tdir, "o k", "-rf",
         "ok2;touch %s/pwned3" % tdir, "*", "ok3\nok4"]
body = json.dumps([{"name": n} for n in names] + [{"nope": 1}, 7, None]).encode()
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
              b"Connection: close\r\n\r\n" % len(body) + body)
    c.close()
PY
fpid=$!
for _ in $(seq 100); do [ -S "$T/fake.sock" ] && break; sleep 0.1; done
comp "$vireo" -c "$T/fake.sock" start ""; expect "ok1"
comp "$vireo" -c "$T/fake.sock" start "\$("; expect ""
ls "$T"/pwned* 2>/dev/null && fail "a name from vireod ran"

kill -TERM $dpid; wait $dpid; rc=$?; dpid=
[ $rc = 0 ] || fail "vireod ended with $rc after SIGTERM"
echo PASS
