#!/usr/bin/env bash
# Install the Debian packages listed in scripts/packages.txt that are missing.
# Idempotent and quiet when everything is already there.
#   --bench  instead, those only the benchmarks need (bench/packages.txt)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list="$here/packages.txt"
bench=false
case "${1:-}" in
"") ;;
--bench) bench=true; list="$here/../bench/packages.txt" ;;
*) echo "setup.sh: unknown option '$1' (--bench)" >&2; exit 2 ;;
esac
# libvirt's "default" NAT network (virbr0, dnsmasq, firewall rules) starts
# with libvirtd unless its autostart link is gone; the benchmarks use no
# network, so leave the host's network alone.
no_default_net() {
	$bench || return 0
	local link=/etc/libvirt/qemu/networks/autostart/default.xml
	if [ -L "$link" ] || [ -e "$link" ]; then
		$SUDO rm -f "$link"
		echo "setup: libvirt's default network no longer starts with libvirtd" >&2
	fi
}
mapfile -t want < <(grep -v -e '^#' -e '^[[:space:]]*$' "$list")
missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
[ ${#missing[@]} -eq 0 ] && { no_default_net; exit 0; }
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
no_default_net
