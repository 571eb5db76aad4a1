#!/usr/bin/env bash
# Make a cloud-init NoCloud seed disk: a small FAT volume labelled "cidata"
# holding meta-data and user-data, to attach as a second (raw, read-only)
# disk to the Debian guest of scripts/debian-image.sh (docs/debian-guest.md).
#
#   bash scripts/cloud-init-seed.sh --ssh-key FILE --hostname NAME
#        [--user NAME] [--no-root] [--instance-id ID] OUT.img
#
#   --ssh-key FILE     public keys, authorized_keys format (id_ed25519.pub)
#   --hostname NAME    the guest's host name (letters, digits, '-', '.')
#   --user NAME        make user NAME (sudo without password) with the keys
#                      instead of the image's default user "debian"
#   --no-root          keep root's ssh login disabled (cloud-init's default;
#                      without it root accepts the keys too)
#   --instance-id ID   default: iid-NAME-<hash of the seed's contents>; a new
#                      id makes cloud-init run its per-instance steps again
#
# meta-data: instance-id, local-hostname. user-data (#cloud-config): the host
# name, the keys for the user and root, ssh_pwauth false, no package update
# or upgrade. Built without root or loop devices: mkfs.vfat (dosfstools) and
# mcopy (mtools), see scripts/packages.txt. Exit status: 0 done, 1 a tool
# failed, 2 bad arguments.
set -euo pipefail

cs_log() { echo "cloud-init-seed: $*" >&2; }
cs_die() { echo "cloud-init-seed: $*" >&2; exit 1; }
cs_usage() {
	[ $# -eq 0 ] || echo "cloud-init-seed: $*" >&2
	echo "usage: cloud-init-seed.sh --ssh-key FILE --hostname NAME [--user NAME] [--no-root] [--instance-id ID] OUT.img" >&2
	exit 2
}

key_file='' hostname='' user='' root_login=1 iid='' out=''
while [ $# -gt 0 ]; do
	case "$1" in
	--ssh-key | --hostname | --user | --instance-id)
		[ $# -ge 2 ] || cs_usage "$1 needs a value"
		case "$1" in
		--ssh-key) key_file=$2 ;;
		--hostname) hostname=$2 ;;
		--user) user=$2 ;;
		--instance-id) iid=$2 ;;
		esac
		shift ;;
	--no-root) root_login=0 ;;
	-h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) cs_usage "unknown option '$1'" ;;
	*) [ -z "$out" ] || cs_usage "more than one output file ('$out', '$1')"; out=$1 ;;
	esac
	shift
done
[ -n "$key_file" ] || cs_usage "--ssh-key FILE is required"
[ -n "$hostname" ] || cs_usage "--hostname NAME is required"
[ -n "$out" ] || cs_usage "no output file (OUT.img)"

# Host name: RFC 1123 labels joined by dots, at most 253 characters.
label='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
if [ ${#hostname} -gt 253 ] || ! [[ $hostname =~ ^$label(\.$label)*$ ]]; then
	cs_usage "bad host name '$hostname': use letters, digits and '-' (not first or last), labels of at most 63 characters joined by '.'"
fi
if [ -n "$user" ] && ! [[ $user =~ ^[a-z_][a-z0-9_-]{0,31}$ ]]; then
	cs_usage "bad user name '$user': a lower-case letter or '_', then lower-case letters, digits, '_' or '-' (at most 32)"
fi
if [ "$user" = root ]; then
	cs_usage "--user root: root gets the keys anyway (unless --no-root)"
fi
if [ -n "$iid" ] && ! [[ $iid =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ ]]; then
	cs_usage "bad instance id '$iid': letters, digits, '.', '_' and '-'"
fi

# Keys: authorized_keys lines; a private key given by mistake is refused.
if [ ! -f "$key_file" ] || [ ! -r "$key_file" ]; then
	cs_usage "ssh key file '$key_file' does not exist or is not readable"
fi
if grep -q -- '-----BEGIN .*PRIVATE KEY-----' "$key_file"; then
	cs_usage "'$key_file' holds a private key; give the public one (.pub)"
fi
keys=()
while IFS= read -r line || [ -n "$line" ]; do
	line=${line%$'\r'}
	case "$line" in '' | '#'*) continue ;; esac
	if ! [[ $line =~ ^((ssh|ecdsa|sk-ssh|sk-ecdsa)-[A-Za-z0-9@.-]+)\ +[A-Za-z0-9+/]+=*(\ .*)?$ ]]; then
		cs_usage "'$key_file': not an ssh public key line: '${line:0:60}'"
	fi
	keys+=("$line")
done <"$key_file"
[ ${#keys[@]} -gt 0 ] || cs_usage "'$key_file' holds no ssh public key"

for t in mkfs.vfat mcopy; do
	command -v "$t" >/dev/null || cs_die "$t not found: run 'bash scripts/setup.sh' (dosfstools, mtools)"
done

# yaml_str S: S as a double-quoted YAML scalar (keys' comments may hold
# anything; the other values are already restricted above).
yaml_str() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cloud-init-seed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

{
	echo "#cloud-config"
	echo "hostname: $hostname"
	echo "preserve_hostname: false"
	echo "manage_etc_hosts: true"
	echo "ssh_pwauth: false"
	if [ $root_login -eq 1 ]; then echo "disable_root: false"; else echo "disable_root: true"; fi
	echo "package_update: false"
	echo "package_upgrade: false"
	echo "package_reboot_if_required: false"
	echo "users:"
	if [ -z "$user" ]; then
		echo "  - default"
	else
		echo "  - name: $user"
		echo "    shell: /bin/bash"
		echo "    lock_passwd: true"
		echo "    sudo: \"ALL=(ALL) NOPASSWD:ALL\""
		echo "    ssh_authorized_keys:"
		for k in "${keys[@]}"; do echo "      - $(yaml_str "$k")"; done
	fi
	# Top-level keys go to the default user (if any) and to root.
	if [ -z "$user" ] || [ $root_login -eq 1 ]; then
		echo "ssh_authorized_keys:"
		for k in "${keys[@]}"; do echo "  - $(yaml_str "$k")"; done
	fi
} >"$tmp/user-data"

[ -n "$iid" ] || iid="iid-$hostname-$(sha256sum "$tmp/user-data" | cut -c1-12)"
printf 'instance-id: %s\nlocal-hostname: %s\n' "$iid" "$hostname" >"$tmp/meta-data"

# 1 MiB FAT12; lower-case label as cloud-init looks it up (it also accepts
# CIDATA).
mkfs.vfat -C -n cidata "$tmp/seed.img" 1024 >"$tmp/mkfs.log" 2>&1 ||
	cs_die "mkfs.vfat failed: $(cat "$tmp/mkfs.log")"
MTOOLS_SKIP_CHECK=1 mcopy -i "$tmp/seed.img" "$tmp/meta-data" "$tmp/user-data" :: ||
	cs_die "mcopy into the FAT volume failed"
mkdir -p "$(dirname "$out")"
mv -f "$tmp/seed.img" "$out"
who=${user:-debian}
[ $root_login -eq 0 ] || who="$who and root"
cs_log "wrote $out (label cidata, instance-id $iid, ${#keys[@]} key(s) for $who)"
