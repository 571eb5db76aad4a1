#!/usr/bin/env bash
# Build the guest fixtures from Debian's packages only, into build/fixtures
# (or $VIREO_FIXTURES), cached there:
#
#   vmlinuz                 the stock Debian cloud kernel (bzImage)
#   kver                    its release string (e.g. 6.1.0-56-cloud-amd64)
#   modules/<kver>/...      its modules, as shipped
#   busybox                 busybox from busybox-static
#   inner-initramfs.cpio.gz the inner fixture: tests/lab/inner/init as /init,
#                           busybox, the virtio modules in dependency order,
#                           tests/lab/inner/*.sh as /scenarios/*.sh and the
#                           tools listed in tests/lab/inner/packages
#
# The kernel is resolved from the metapackage linux-image-cloud-amd64 (its
# Depends names the image package); override with VIREO_KERNEL_PKG. Packages
# are fetched with `apt-get download` into build/fixtures/debs and unpacked
# with `dpkg-deb -x`; nothing is installed on the host. If VIREO_DEB_CACHE
# names a directory, .deb files are looked up there first and downloads go
# there (a cache shared between checkouts).
#
#   bash scripts/fixtures.sh [--force]
#
# Sourcing this file defines the fx_* helpers without building anything;
# tests/lab/run.sh uses them for the outer initramfs.
set -euo pipefail
shopt -s inherit_errexit

FX_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FX_DIR=${VIREO_FIXTURES:-$FX_TOP/build/fixtures}
FX_DEBS=$FX_DIR/debs

# The inner guest's modules, as names; fx_modules_ordered adds what they
# depend on and puts every module after its dependencies.
FX_INNER_MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev
virtio_pci virtio_mmio virtio_blk failover net_failover virtio_net
virtio_console virtio_rng virtio_balloon vsock vmw_vsock_virtio_transport_common
vmw_vsock_virtio_transport"

fx_log() { echo "fixtures: $*" >&2; }
fx_die() { echo "fixtures: $*" >&2; exit 1; }

# fx_candidate PKG: the version apt would fetch.
fx_candidate() {
	local v
	v=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
	if [ -z "$v" ] || [ "$v" = "(none)" ]; then
		fx_die "Debian package '$1' is unknown to apt; run 'apt-get update' (and check /etc/apt/sources.list)"
	fi
	echo "$v"
}

# fx_kernel_pkg: the image package behind linux-image-cloud-amd64.
fx_kernel_pkg() {
	if [ -n "${VIREO_KERNEL_PKG:-}" ]; then
		echo "$VIREO_KERNEL_PKG"
		return
	fi
	local p
	p=$(apt-cache show --no-all-versions linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^Depends: //p' | tr ',' '\n' | sed 's/^ *//; s/ .*//' |
		grep -m1 '^linux-image-.*-cloud-amd64$' || true)
	[ -n "$p" ] || fx_die "cannot resolve linux-image-cloud-amd64 to an image package; run 'apt-get update' or set VIREO_KERNEL_PKG"
	echo "$p"
}

# fx_deb PKG: print the path of PKG's .deb (candidate version), downloading
# it if no cache has it. Works offline when some version is already cached.
fx_deb() {
	local pkg=$1 ver file d dl
	mkdir -p "$FX_DEBS"
	ver=$(fx_candidate "$pkg")
	file="${pkg}_${ver//:/%3a}"
	for d in "$FX_DEBS" ${VIREO_DEB_CACHE:+"$VIREO_DEB_CACHE"}; do
		for f in "$d/$file"_*.deb; do
			[ -f "$f" ] || continue
			if [ "$d" != "$FX_DEBS" ]; then
				ln -f "$f" "$FX_DEBS/" 2>/dev/null || cp "$f" "$FX_DEBS/"
			fi
			echo "$FX_DEBS/$(basename "$f")"
			return
		done
	done
	dl=$FX_DEBS
	if [ -n "${VIREO_DEB_CACHE:-}" ] && mkdir -p "$VIREO_DEB_CACHE" 2>/dev/null &&
		[ -w "$VIREO_DEB_CACHE" ]; then
		dl=$VIREO_DEB_CACHE
	fi
	fx_log "downloading $pkg=$ver"
	local aptopt=()
	[ "$(id -u)" -eq 0 ] && aptopt=(-o APT::Sandbox::User=root)
	if (cd "$dl" && apt-get -q "${aptopt[@]}" download "$pkg=$ver" >/dev/null); then
		for f in "$dl/$file"_*.deb; do
			[ -f "$f" ] || continue
			[ "$dl" = "$FX_DEBS" ] || ln -f "$f" "$FX_DEBS/" 2>/dev/null || cp "$f" "$FX_DEBS/"
			echo "$FX_DEBS/$(basename "$f")"
			return
		done
	fi
	# Offline: fall back to any cached version of the package.
	f=$(ls -t "$FX_DEBS/${pkg}"_*.deb 2>/dev/null | head -1 || true)
	[ -n "$f" ] || fx_die "could not download Debian package '$pkg' ($ver); check the network and apt sources"
	fx_log "warning: using cached $(basename "$f") (download of $ver failed)"
	echo "$f"
}

# fx_extract DEB DIR: unpack DEB into a fresh DIR.
fx_extract() {
	rm -rf "$2"
	mkdir -p "$2"
	dpkg-deb -x "$1" "$2"
}

# fx_stage PKG: unpack PKG into $FX_DIR/pkgs/PKG (once per version) and print
# that directory.
fx_stage() {
	local deb dir
	deb=$(fx_deb "$1")
	dir=$FX_DIR/pkgs/$1
	if [ "$(cat "$dir.stamp" 2>/dev/null)" != "$(basename "$deb")" ]; then
		fx_extract "$deb" "$dir"
		basename "$deb" >"$dir.stamp"
	fi
	echo "$dir"
}

# fx_modules_ordered MODDIR NAME...: print the paths (relative to MODDIR) of
# the named modules and everything they depend on, each after its
# dependencies (busybox insmod does not resolve dependencies). Names may use
# - or _. Reads each module's depends= from its .modinfo section.
fx_modules_ordered() {
	local moddir=$1
	shift
	declare -A path=() done_=()
	local f n
	while IFS= read -r f; do
		n=$(basename "$f" .ko)
		path[${n//-/_}]=${f#"$moddir"/}
	done < <(find "$moddir" -name '*.ko')
	_fx_mod_visit() {
		local m=${1//-/_} deps d
		[ -n "${done_[$m]:-}" ] && return 0
		[ -n "${path[$m]:-}" ] || fx_die "module '$1' is not in $moddir (is it built in or renamed in this kernel?)"
		done_[$m]=1
		deps=$(tr '\0' '\n' <"$moddir/${path[$m]}" | sed -n 's/^depends=//p' | head -1)
		for d in ${deps//,/ }; do
			_fx_mod_visit "$d"
		done
		echo "${path[$m]}"
	}
	for n in "$@"; do
		_fx_mod_visit "$n"
	done
}

# fx_install_modules MODDIR ROOT NAME...: copy the modules with their
# dependencies into ROOT/lib/modules/ and write their load order, one file
# name a line, to ROOT/etc/modules.order.
fx_install_modules() {
	local moddir=$1 root=$2 m
	shift 2
	mkdir -p "$root/lib/modules" "$root/etc"
	: >"$root/etc/modules.order"
	local list
	list=$(fx_modules_ordered "$moddir" "$@")
	for m in $list; do
		cp "$moddir/$m" "$root/lib/modules/"
		basename "$m" >>"$root/etc/modules.order"
	done
}

# fx_copy_with_libs ROOT FILE [DEST]: copy an executable into ROOT (at DEST,
# default its own path) with the shared libraries ldd finds for it, each at
# its own path (so the stock loader finds them). Libraries are looked up in
# $FX_LIBPATH (colon-separated; staged packages) before the host's.
fx_copy_with_libs() {
	local root=$1 file=$2 dest=${3:-$2} out lib
	mkdir -p "$root/$(dirname "$dest")"
	cp -L "$file" "$root/$dest"
	out=$(LD_LIBRARY_PATH=${FX_LIBPATH:-} ldd "$file" 2>&1) || return 0 # static
	if grep -q 'not found' <<<"$out"; then
		fx_die "$file needs $(grep 'not found' <<<"$out" | awk '{print $1}' | tr '\n' ' ')which is neither on this host nor in a staged package; stage the Debian package that ships it (dpkg -S, apt-file) with fx_stage"
	fi
	for lib in $(awk '/=>/ {print $3} !/=>/ && $1 ~ /^\// {print $1}' <<<"$out"); do
		local to=$lib
		# A library from a staged package keeps its path inside the package.
		case "$lib" in "$FX_DIR/pkgs/"*) to=${lib#"$FX_DIR/pkgs/"}; to=/${to#*/} ;; esac
		[ -e "$root/$to" ] && continue
		mkdir -p "$root/$(dirname "$to")"
		cp -L "$lib" "$root/$to"
	done
}

# fx_lib_depends PKG: the lib* packages PKG depends on (first alternative).
fx_lib_depends() {
	apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n 's/^\(Pre-\)\?Depends: //p' |
		tr ',' '\n' | sed 's/^ *//; s/[ |].*//; s/:any$//' | grep '^lib' || true
}

# fx_add_deb_bins ROOT PKG PATH...: put programs from a Debian package into
# an initramfs root, with their shared libraries. PATH is the program's path
# inside the package (e.g. usr/bin/fio). The package's lib* dependencies are
# staged (recursively) so libraries missing on this host are found too.
fx_add_deb_bins() {
	local root=$1 pkg=$2 dir p dep
	shift 2
	dir=$(fx_stage "$pkg")
	local todo=("$pkg") seen=" " libpath=""
	while [ ${#todo[@]} -gt 0 ]; do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		case "$seen" in *" $p "*) continue ;; esac
		seen="$seen$p "
		[ "$p" = "$pkg" ] || dir=$(fx_stage "$p")
		local sub
		for sub in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu; do
			[ -d "$FX_DIR/pkgs/$p/$sub" ] && libpath="$libpath${libpath:+:}$FX_DIR/pkgs/$p/$sub"
		done
		for dep in $(fx_lib_depends "$p"); do
			# libc and friends come from the host.
			case "$dep" in libc6|libgcc-s1|libstdc++6) continue ;; esac
			todo+=("$dep")
		done
	done
	for p in "$@"; do
		[ -f "$FX_DIR/pkgs/$pkg/$p" ] || fx_die "package $pkg has no file $p"
		FX_LIBPATH=$libpath fx_copy_with_libs "$root" "$FX_DIR/pkgs/$pkg/$p" "/$p"
	done
}

# fx_busybox_root ROOT: busybox with a link per applet, the usual folders and
# a console device node (when we may create one).
fx_busybox_root() {
	local root=$1 a
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,mnt,etc,root}
	cp "$FX_DIR/busybox" "$root/bin/busybox"
	for a in $("$FX_DIR/busybox" --list-full); do
		[ -e "$root/$a" ] || ln -s /bin/busybox "$root/$a"
	done
	# Without these (no right to mknod) the inits reopen their stdio on
	# /dev/console once devtmpfs is mounted.
	mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
	mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true
}

# fx_cpio ROOT: write ROOT as an uncompressed newc archive on stdout, files
# owned by root.
fx_cpio() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0)
}

# fx_inputs_hash FILE...: one hash of the named files' contents.
fx_inputs_hash() {
	cat "$@" | sha256sum | cut -d' ' -f1
}

# fx_build [--force]: build everything above if its inputs changed.
fx_build() {
	local force=0
	[ "${1:-}" = "--force" ] && force=1
	mkdir -p "$FX_DIR"
	local kpkg kdeb bbdeb inner key
	kpkg=$(fx_kernel_pkg)
	kdeb=$(fx_deb "$kpkg")
	bbdeb=$(fx_deb busybox-static)
	inner=$FX_TOP/tests/lab/inner
	key=$( (basename "$kdeb"; basename "$bbdeb"; echo "$FX_INNER_MODULES";
		fx_inputs_hash "${BASH_SOURCE[0]}" "$inner"/*) | sha256sum | cut -d' ' -f1)
	if [ $force -eq 0 ] && [ "$(cat "$FX_DIR/stamp" 2>/dev/null)" = "$key" ] &&
		[ -f "$FX_DIR/inner-initramfs.cpio.gz" ]; then
		return 0
	fi
	rm -f "$FX_DIR/stamp"

	# Kernel: bzImage and modules.
	if [ "$(cat "$FX_DIR/kernel.stamp" 2>/dev/null)" != "$(basename "$kdeb")" ]; then
		fx_log "unpacking $(basename "$kdeb")"
		local kx=$FX_DIR/kernel-deb
		fx_extract "$kdeb" "$kx"
		local kver
		kver=$(ls "$kx/lib/modules")
		[ -f "$kx/boot/vmlinuz-$kver" ] || fx_die "no boot/vmlinuz-$kver in $(basename "$kdeb")"
		rm -rf "$FX_DIR/modules"
		mkdir -p "$FX_DIR/modules"
		mv "$kx/lib/modules/$kver" "$FX_DIR/modules/$kver"
		mv "$kx/boot/vmlinuz-$kver" "$FX_DIR/vmlinuz"
		mv "$kx/boot/config-$kver" "$FX_DIR/config"
		echo "$kver" >"$FX_DIR/kver"
		rm -rf "$kx"
		basename "$kdeb" >"$FX_DIR/kernel.stamp"
	fi
	# busybox
	local bx=$FX_DIR/busybox-deb
	fx_extract "$bbdeb" "$bx"
	cp "$bx/bin/busybox" "$FX_DIR/busybox"
	rm -rf "$bx"

	# Inner initramfs.
	fx_log "building inner-initramfs.cpio.gz"
	local root=$FX_DIR/inner-root kver
	kver=$(cat "$FX_DIR/kver")
	rm -rf "$root"
	fx_busybox_root "$root"
	# shellcheck disable=SC2086
	fx_install_modules "$FX_DIR/modules/$kver" "$root" $FX_INNER_MODULES
	install -m 755 "$inner/init" "$root/init"
	mkdir -p "$root/scenarios"
	cp "$inner"/*.sh "$root/scenarios/" 2>/dev/null || true
	# Extra tools for scenarios: lines "PACKAGE path/in/package ..."
	if [ -f "$inner/packages" ]; then
		local line
		while read -r line; do
			case "$line" in '' | '#'*) continue ;; esac
			# shellcheck disable=SC2086
			fx_add_deb_bins "$root" $line
		done <"$inner/packages"
	fi
	fx_cpio "$root" | gzip -6 >"$FX_DIR/inner-initramfs.cpio.gz.tmp"
	mv "$FX_DIR/inner-initramfs.cpio.gz.tmp" "$FX_DIR/inner-initramfs.cpio.gz"
	echo "$key" >"$FX_DIR/stamp"
	fx_log "ready in $FX_DIR (kernel $kver)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	fx_build "$@"
fi
