#!/usr/bin/env bash
# Build a Debian 12 (bookworm) server guest from Debian's archive, into
# build/debian (or --out DIR / $VIREO_DEBIAN_OUT), cached there:
#
#   debian-12.qcow2   the root filesystem: ext4 on the whole disk (no
#                     partition table; root=/dev/vda), label debian-root,
#                     as a compressed (zstd) qcow2 base image written by
#                     vireo-img convert; put overlays on it, never boot it
#   vmlinuz           the image's kernel (linux-image-cloud-amd64)
#   initrd.img        its initramfs, made in the image by initramfs-tools,
#                     with virtio_pci, virtio_blk, virtio_net and ext4
#   manifest.txt      kernel release, sizes, checksums, installed packages
#   stamp             the hash of the inputs the outputs were built from
#
# The guest: systemd, udev, systemd-networkd (DHCP on en*/eth*) with
# systemd-resolved, openssh-server (keys only; host keys made on first
# boot), cloud-init with the NoCloud datasource only (no network config from
# cloud-init), sudo. Root has no password: log in over ssh with the key a
# NoCloud seed disk gives (scripts/cloud-init-seed.sh). A getty runs on
# ttyS0 when the kernel line says console=ttyS0. See docs/debian-guest.md.
#
#   sudo bash scripts/debian-image.sh [--out DIR] [--size SIZE] [--force]
#
# Runs as root (mmdebstrap --mode=root; no fakechroot). Packages come from
# the apt sources this machine uses (/etc/apt/sources.list and
# /etc/apt/sources.list.d/*.sources / *.list). Needs mmdebstrap, e2fsprogs
# (scripts/packages.txt) and build/release/cli/vireo-img (or $VIREO_IMG;
# build it with: bash scripts/build.sh release).
#
# Cache: nothing is done when the outputs exist and the hash of the inputs
# (this script, the package list, the apt sources and the versions apt
# offers now for the kernel, systemd, openssh-server and cloud-init) is the
# one in the stamp; run 'apt-get update' first to pick up new versions.
# --force rebuilds anyway. Downloaded .deb files are kept in DIR/debs (or
# $VIREO_DEB_CACHE) so a rebuild downloads only what changed.
set -euo pipefail
shopt -s inherit_errexit

DI_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DI_SELF=$DI_TOP/scripts/$(basename "${BASH_SOURCE[0]}")
DI_SUITE=bookworm
DI_IMAGE=debian-12.qcow2
DI_LABEL=debian-root

# What goes in on top of --variant=minbase (Essential: yes and apt), without
# Recommends.
DI_PACKAGES="systemd systemd-sysv udev dbus libpam-systemd systemd-resolved
linux-image-cloud-amd64 initramfs-tools zstd e2fsprogs kmod
openssh-server cloud-init iproute2 netbase sudo"
# Modules the initramfs must have to find the root disk and the network.
DI_INITRD_MODULES="virtio_pci virtio_blk virtio_net ext4"
# Versions that decide whether the cache is stale (besides the files).
DI_KEY_PACKAGES="linux-image-cloud-amd64 systemd openssh-server cloud-init"

di_log() { echo "debian-image: $*" >&2; }
di_die() { echo "debian-image: $*" >&2; exit 1; }
di_usage() { sed -n '/^#   sudo bash/s/^#   //p' "$DI_SELF" >&2; exit 2; }

# di_candidate PKG: the version apt would install now.
di_candidate() {
	local v
	v=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
	if [ -z "$v" ] || [ "$v" = "(none)" ]; then
		di_die "Debian package '$1' is unknown to apt; run 'apt-get update' (and check /etc/apt/sources.list)"
	fi
	echo "$v"
}

# di_sources: the apt source files of this machine, one path a line.
di_sources() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -s "$f" ] && echo "$f"
	done
	return 0
}

# di_key: the hash of everything the image is built from.
di_key() {
	local p
	{
		sha256sum "$DI_SELF" | cut -d' ' -f1
		echo "$DI_PACKAGES $DI_INITRD_MODULES $DI_SIZE"
		for p in $DI_KEY_PACKAGES; do echo "$p=$(di_candidate "$p")"; done
		di_sources | while read -r p; do grep -v '^[[:space:]]*#' "$p"; done
	} | sha256sum | cut -d' ' -f1
}

# di_customize ROOT: run by mmdebstrap (--customize-hook) once the packages
# are installed, with /proc, /sys and /dev mounted in ROOT.
di_customize() {
	local root=$1 m
	di_log "configuring the image"
	# initramfs: the virtio and ext4 modules whatever MODULES= finds.
	for m in $DI_INITRD_MODULES; do
		grep -qx "$m" "$root/etc/initramfs-tools/modules" ||
			echo "$m" >>"$root/etc/initramfs-tools/modules"
	done
	# No swap partition to resume from: skip the probe (and its warning).
	echo "RESUME=none" >"$root/etc/initramfs-tools/conf.d/resume"
	chroot "$root" update-initramfs -u -k all

	# Root file system (the initramfs mounts it from root=).
	printf '%s\n' "# <file system>	<mount point>	<type>	<options>	<dump>	<pass>" \
		"LABEL=$DI_LABEL	/	ext4	rw,errors=remount-ro	0	1" >"$root/etc/fstab"
	echo debian >"$root/etc/hostname"
	printf '%s\n' "127.0.0.1	localhost" "127.0.1.1	debian" "::1	localhost ip6-localhost ip6-loopback" \
		"ff02::1	ip6-allnodes" "ff02::2	ip6-allrouters" >"$root/etc/hosts"
	echo "LANG=C.UTF-8" >"$root/etc/default/locale"

	# Network: systemd-networkd, DHCP on the wired NICs, DNS by resolved.
	mkdir -p "$root/etc/systemd/network"
	cat >"$root/etc/systemd/network/20-wired.network" <<-'EOF'
		# Vireo guest image: DHCP on the first (any wired) NIC.
		[Match]
		Name=en* eth*

		[Network]
		DHCP=yes
	EOF
	# Boot waits for one link at most 60 s, not for every link 120 s.
	mkdir -p "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
	cat >"$root/etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf" <<-'EOF'
		[Service]
		ExecStart=
		ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=60
	EOF
	chroot "$root" systemctl enable systemd-networkd.service systemd-resolved.service
	# No interactive first-boot questions on the console.
	if [ -e "$root/lib/systemd/system/systemd-firstboot.service" ]; then
		chroot "$root" systemctl mask systemd-firstboot.service
	fi

	# cloud-init: NoCloud (a seed disk labelled cidata) only; networkd
	# above owns the network; a whole-disk root has no partition to grow.
	cat >"$root/etc/cloud/cloud.cfg.d/90_vireo.cfg" <<-'EOF'
		# Vireo guest image: the seed disk is NoCloud (label cidata).
		datasource_list: [ NoCloud, None ]
		locale: C.UTF-8
		growpart:
		  mode: "off"
		grub_dpkg:
		  enabled: false
	EOF
	cat >"$root/etc/cloud/cloud.cfg.d/99-disable-network-config.cfg" <<-'EOF'
		# systemd-networkd's /etc/systemd/network/20-wired.network configures the NIC.
		network: {config: disabled}
	EOF

	# ssh: keys only; every guest makes its own host keys on first boot
	# (cloud-init does; ssh.service makes any still missing).
	mkdir -p "$root/etc/ssh/sshd_config.d"
	printf '%s\n' "# Vireo guest image: keys only." "PasswordAuthentication no" \
		"KbdInteractiveAuthentication no" "PermitRootLogin prohibit-password" \
		>"$root/etc/ssh/sshd_config.d/10-vireo.conf"
	rm -f "$root"/etc/ssh/ssh_host_*
	mkdir -p "$root/etc/systemd/system/ssh.service.d"
	cat >"$root/etc/systemd/system/ssh.service.d/hostkeys.conf" <<-'EOF'
		[Service]
		ExecStartPre=
		ExecStartPre=/usr/bin/ssh-keygen -A
		ExecStartPre=/usr/sbin/sshd -t
	EOF

	# Root: no password (locked); cloud-init installs the keys.
	chroot "$root" passwd -l root >/dev/null
	# Each guest gets its own machine id on first boot.
	: >"$root/etc/machine-id"
	rm -f "$root/var/lib/dbus/machine-id"
}

# di_build: build the image into $DI_OUT unless the stamp says it is current.
di_build() {
	[ "$(id -u)" -eq 0 ] || di_die "run as root (mmdebstrap --mode=root needs it): sudo bash $0"
	command -v mmdebstrap >/dev/null || di_die "mmdebstrap not found: run 'bash scripts/setup.sh' (scripts/packages.txt)"
	command -v mkfs.ext4 >/dev/null || di_die "mkfs.ext4 not found: run 'bash scripts/setup.sh' (e2fsprogs)"
	local vimg=${VIREO_IMG:-$DI_TOP/build/release/cli/vireo-img}
	[ -x "$vimg" ] || di_die "no vireo-img at $vimg: build it with 'bash scripts/build.sh release' (or set VIREO_IMG)"

	mkdir -p "$DI_OUT"
	exec 9>"$DI_OUT/.lock"
	flock -n 9 || di_die "another debian-image.sh is building in $DI_OUT"

	local key
	key=$(di_key)
	if [ "$DI_FORCE" -eq 0 ] && [ "$(cat "$DI_OUT/stamp" 2>/dev/null)" = "$key" ] &&
		[ -f "$DI_OUT/$DI_IMAGE" ] && [ -f "$DI_OUT/vmlinuz" ] && [ -f "$DI_OUT/initrd.img" ]; then
		di_log "up to date in $DI_OUT (stamp $key)"
		return 0
	fi

	local start=$SECONDS
	DI_TMP=$(mktemp -d "$DI_OUT/.build.XXXXXX")
	trap di_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	local root=$DI_TMP/root cache=${VIREO_DEB_CACHE:-$DI_OUT/debs}
	mkdir -p "$root" "$cache"

	local srcs=() f
	while read -r f; do srcs+=("$f"); done < <(di_sources)
	[ ${#srcs[@]} -gt 0 ] || di_die "no apt sources in /etc/apt/sources.list{,.d/}; cannot reach Debian's archive"

	di_log "[1/4] mmdebstrap $DI_SUITE (minbase + $(wc -w <<<"$DI_PACKAGES") packages) from ${srcs[*]}"
	# The sync-in/out hooks keep downloaded .deb files in $cache; the hooks'
	# $1 (the chroot) is mmdebstrap's to expand.
	# shellcheck disable=SC2016
	nice mmdebstrap --mode=root --variant=minbase --format=directory \
		--aptopt='APT::Install-Recommends "false"' \
		--aptopt='Acquire::Languages "none"' \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-include=/usr/share/locale/locale.alias' \
		--dpkgopt='path-exclude=/usr/share/lintian/*' \
		--include="$(tr -s ' \n' ',' <<<"$DI_PACKAGES" | sed 's/,$//')" \
		--skip=essential/unlink \
		--setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
		--setup-hook="sync-in $cache /var/cache/apt/archives/" \
		--customize-hook="sync-out /var/cache/apt/archives $cache" \
		--customize-hook="bash '$DI_SELF' --customize \"\$1\"" \
		"$DI_SUITE" "$root" "${srcs[@]}" ||
		di_die "mmdebstrap failed (network, apt sources or a package above); see its messages"
	rm -f "$root"/var/cache/apt/archives/*.deb "$cache"/lock
	rm -rf "$cache/partial"
	# systemd-resolved's stub, whatever mmdebstrap left for its own apt runs.
	ln -sfn ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"

	local kver
	kver=$(ls "$root/lib/modules")
	[ "$(echo "$kver" | wc -l)" -eq 1 ] || di_die "expected one kernel in the image, found: $kver"
	[ -f "$root/boot/vmlinuz-$kver" ] || di_die "no /boot/vmlinuz-$kver in the image"
	[ -f "$root/boot/initrd.img-$kver" ] || di_die "no /boot/initrd.img-$kver in the image (initramfs-tools did not run)"
	cp "$root/boot/vmlinuz-$kver" "$DI_TMP/vmlinuz"
	cp "$root/boot/initrd.img-$kver" "$DI_TMP/initrd.img"
	{
		echo "# Debian 12 guest image built by scripts/debian-image.sh"
		echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "stamp: $key"
		echo "kernel: $kver"
		echo "root: ext4 LABEL=$DI_LABEL, $DI_SIZE, whole disk (root=/dev/vda)"
		echo "packages:"
		dpkg-query --admindir="$root/var/lib/dpkg" -W -f='  ${Package} ${Version}\n'
	} >"$DI_TMP/manifest.txt"

	di_log "[2/4] mkfs.ext4 -d ($DI_SIZE, $(du -sm "$root" | cut -f1) MiB of files)"
	truncate -s "$DI_SIZE" "$DI_TMP/root.raw"
	nice mkfs.ext4 -q -F -L "$DI_LABEL" -d "$root" "$DI_TMP/root.raw" ||
		di_die "mkfs.ext4 -d failed"
	e2fsck -fn "$DI_TMP/root.raw" >/dev/null 2>&1 || di_die "e2fsck finds errors in the new file system"

	di_log "[3/4] vireo-img convert -c (zstd) to $DI_IMAGE"
	nice "$vimg" convert -q -c -f raw -O qcow2 -o compression_type=zstd \
		"$DI_TMP/root.raw" "$DI_TMP/$DI_IMAGE" || di_die "vireo-img convert failed"
	"$vimg" check -q "$DI_TMP/$DI_IMAGE" || di_die "vireo-img check finds the new image unclean"
	rm -f "$DI_TMP/root.raw"

	di_log "[4/4] installing into $DI_OUT"
	(cd "$DI_TMP" && sha256sum "$DI_IMAGE" vmlinuz initrd.img | sed 's/^/sha256: /') >>"$DI_TMP/manifest.txt"
	# Until the stamp is back the outputs count as stale (a failure
	# before this point leaves the previous build usable).
	rm -f "$DI_OUT/stamp"
	for f in "$DI_IMAGE" vmlinuz initrd.img manifest.txt; do
		mv -f "$DI_TMP/$f" "$DI_OUT/$f"
	done
	echo "$key" >"$DI_OUT/stamp"
	di_log "ready in $DI_OUT after $((SECONDS - start)) s: kernel $kver," \
		"$DI_IMAGE $(du -m "$DI_OUT/$DI_IMAGE" | cut -f1) MiB," \
		"initrd.img $(du -m "$DI_OUT/initrd.img" | cut -f1) MiB"
}

# di_cleanup: remove the scratch directory, never across a mount point
# (mmdebstrap unmounts /proc, /sys and /dev itself; a kill may leave them).
di_cleanup() {
	local rc=$?
	[ -n "${DI_TMP:-}" ] && [ -d "$DI_TMP" ] || exit $rc
	local m
	while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done < <(awk -v t="$DI_TMP/" 'index($2, t) == 1 {print $2}' /proc/self/mounts | sort -r)
	rm -rf --one-file-system "$DI_TMP" || di_log "could not remove $DI_TMP"
	[ $rc -eq 0 ] || di_log "failed; removed the scratch directory"
	exit $rc
}

DI_OUT=${VIREO_DEBIAN_OUT:-$DI_TOP/build/debian}
DI_SIZE=2G
DI_FORCE=0
if [ "${1:-}" = "--customize" ]; then
	if [ $# -ne 2 ] || [ ! -d "$2" ]; then
		di_die "--customize ROOT: internal hook for mmdebstrap"
	fi
	di_customize "$2"
	exit 0
fi
while [ $# -gt 0 ]; do
	case "$1" in
	--out) [ $# -ge 2 ] || di_usage; DI_OUT=$2; shift ;;
	--size) [ $# -ge 2 ] || di_usage; DI_SIZE=$2; shift ;;
	--force) DI_FORCE=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$DI_SELF" | sed '$d; s/^# \{0,1\}//' ; exit 0 ;;
	*) echo "debian-image: unknown argument '$1'" >&2; di_usage ;;
	esac
	shift
done
case "$DI_SIZE" in
[1-9]*[GM]) ;;
*) echo "debian-image: --size wants a size in M or G (e.g. 2G), not '$DI_SIZE'" >&2; exit 2 ;;
esac
DI_OUT=$(mkdir -p "$DI_OUT" && cd "$DI_OUT" && pwd)
di_build
