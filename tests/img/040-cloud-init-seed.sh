#!/usr/bin/env bash
# scripts/cloud-init-seed.sh (the NoCloud seed disk of the Debian guest,
# docs/debian-guest.md): bad arguments exit 2 with a message naming the
# problem and write nothing; a good run writes a FAT volume labelled cidata
# whose meta-data and user-data carry the host name, the instance id and the
# keys, for the default user and root or for --user only. No network, no
# boot, no root.
. "$(dirname "$0")/common.sh"

SEED=(bash "$TOP/scripts/cloud-init-seed.sh")
for t in mkfs.vfat mcopy mtype mdir blkid ssh-keygen; do
	command -v "$t" >/dev/null || { echo "$t not found (bash scripts/setup.sh: dosfstools, mtools)" >&2; exit 77; }
done
export MTOOLS_SKIP_CHECK=1

ssh-keygen -q -t ed25519 -N '' -C 'tester@vireo' -f id_a
ssh-keygen -q -t ed25519 -N '' -C 'second "quoted" key' -f id_b
cat id_a.pub id_b.pub >two.pub
printf '# a comment\n\n' >>two.pub
: >empty.pub
echo "not a key" >junk.pub
key_a=$(cut -d' ' -f2 id_a.pub)
key_b=$(cut -d' ' -f2 id_b.pub)

# bad LABEL REGEX ARGS...: exit 2, a message matching REGEX, no file written.
bad() {
	local label=$1 re=$2 rc
	shift 2
	rm -f out.img
	run_tool "seed $label" "${SEED[@]}" "$@"
	rc=$?
	if [ $rc -ne 2 ]; then
		fail "$label: exit $rc, not 2: $(head -c 200 "$TEST_DIR/LAST.err")"
	elif ! grep -qEi -- "$re" "$TEST_DIR/LAST.err"; then
		fail "$label: message does not name the problem (/$re/): $(head -c 200 "$TEST_DIR/LAST.err")"
	elif [ -e out.img ]; then
		fail "$label: refused but wrote out.img"
	else
		echo "$label: exit 2, names the problem"
	fi
}
bad "no key option" "--ssh-key" --hostname vm out.img
bad "missing key file" "does not exist" --ssh-key nope.pub --hostname vm out.img
bad "private key" "private key" --ssh-key id_a --hostname vm out.img
bad "empty key file" "no ssh public key" --ssh-key empty.pub --hostname vm out.img
bad "junk key file" "not an ssh public key" --ssh-key junk.pub --hostname vm out.img
bad "no hostname" "--hostname" --ssh-key id_a.pub out.img
bad "hostname underscore" "bad host name" --ssh-key id_a.pub --hostname bad_name out.img
bad "hostname leading dash" "bad host name" --ssh-key id_a.pub --hostname -vm out.img
bad "hostname space" "bad host name" --ssh-key id_a.pub --hostname "vm 1" out.img
bad "hostname quote" "bad host name" --ssh-key id_a.pub --hostname 'vm"x' out.img
bad "hostname label too long" "bad host name" --ssh-key id_a.pub \
	--hostname "$(printf 'a%.0s' {1..64})" out.img
bad "bad user" "bad user name" --ssh-key id_a.pub --hostname vm --user 'Bob;' out.img
bad "user root" "root" --ssh-key id_a.pub --hostname vm --user root out.img
bad "bad instance id" "bad instance id" --ssh-key id_a.pub --hostname vm --instance-id 'a b' out.img
bad "no output" "output" --ssh-key id_a.pub --hostname vm
bad "two outputs" "more than one" --ssh-key id_a.pub --hostname vm a.img b.img
bad "unknown option" "unknown option" --ssh-key id_a.pub --hostname vm --bogus out.img

# fat_file IMG NAME: a file of the FAT volume (through mtools, no mount).
fat_file() { mtype -i "$1" "::$2"; }

# has LABEL FILE REGEX: FILE has a line matching REGEX (grep -E).
has() {
	if grep -qE -- "$3" "$2"; then echo "$1"; else fail "$1: no line /$3/ in $(basename "$2")"; fi
}
hasnt() {
	if grep -qE -- "$3" "$2"; then fail "$1: a line /$3/ in $(basename "$2")"; else echo "$1"; fi
}

# volume IMG: the seed is a vfat volume labelled cidata holding both files.
volume() {
	local type lbl
	type=$(blkid -p -o value -s TYPE "$1" 2>/dev/null)
	lbl=$(blkid -p -o value -s LABEL "$1" 2>/dev/null)
	if [ "$type" = vfat ] && [ "$lbl" = cidata ]; then
		echo "$1: vfat volume labelled cidata"
	else
		fail "$1: type '$type' label '$lbl', want vfat and cidata"
	fi
	if mdir -b -i "$1" :: >dir.txt 2>&1 && grep -qx '::/meta-data' dir.txt && grep -qx '::/user-data' dir.txt; then
		echo "$1: holds meta-data and user-data"
	else
		fail "$1: files: $(tr '\n' ' ' <dir.txt)"
	fi
	fat_file "$1" meta-data >meta.txt
	fat_file "$1" user-data >user.txt
}

# Default user and root, two keys.
must "seed default" "${SEED[@]}" --ssh-key two.pub --hostname vm-test.example out.img && echo "default user: exit 0"
volume out.img
has "meta-data: local-hostname" meta.txt '^local-hostname: vm-test\.example$'
has "meta-data: instance-id from the host name" meta.txt '^instance-id: iid-vm-test\.example-[0-9a-f]{12}$'
if [ "$(head -1 user.txt)" = "#cloud-config" ]; then
	echo "user-data: starts with #cloud-config"
else
	fail "user-data: first line '$(head -1 user.txt)'"
fi
has "user-data: hostname" user.txt '^hostname: vm-test\.example$'
has "user-data: no password logins" user.txt '^ssh_pwauth: false$'
has "user-data: no package update" user.txt '^package_update: false$'
has "user-data: no package upgrade" user.txt '^package_upgrade: false$'
has "user-data: root takes the keys" user.txt '^disable_root: false$'
has "user-data: the default user" user.txt '^  - default$'
has "user-data: first key" user.txt "^  - \"ssh-ed25519 ${key_a//+/\\+} tester@vireo\"$"
has "user-data: second key, quotes escaped" user.txt "^  - \"ssh-ed25519 ${key_b//+/\\+} second \\\\\"quoted\\\\\" key\"$"
hasnt "user-data: no comment line as a key" user.txt 'a comment'
iid1=$(grep '^instance-id' meta.txt)
must "seed again" "${SEED[@]}" --ssh-key two.pub --hostname vm-test.example again.img
fat_file again.img meta-data >meta2.txt
if [ "$(grep '^instance-id' meta2.txt)" = "$iid1" ]; then
	echo "same inputs: same instance-id"
else
	fail "same inputs, instance-id $iid1 then $(grep '^instance-id' meta2.txt)"
fi

# A named user, root left disabled, an explicit instance id.
must "seed user" "${SEED[@]}" --ssh-key id_a.pub --hostname vm2 --user alice --no-root \
	--instance-id vm2-0001 out.img && echo "--user alice --no-root: exit 0"
volume out.img
has "meta-data: given instance-id" meta.txt '^instance-id: vm2-0001$'
has "user-data: user alice" user.txt '^  - name: alice$'
has "user-data: alice may sudo" user.txt '^    sudo: "ALL=\(ALL\) NOPASSWD:ALL"$'
has "user-data: alice has the key" user.txt "^      - \"ssh-ed25519 ${key_a//+/\\+} tester@vireo\"$"
has "user-data: root disabled" user.txt '^disable_root: true$'
hasnt "user-data: no default user" user.txt '^  - default$'
hasnt "user-data: no top-level keys" user.txt '^ssh_authorized_keys:'
finish
