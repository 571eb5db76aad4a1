#!/usr/bin/env bash
# Boot the Debian 12 server guest (docs/debian-guest.md) under vireo-vmm
# with its serial console on this terminal: what `scripts/dev.sh boot` runs.
#
#   bash scripts/boot-debian.sh [--fresh]
#
# Builds what is missing, in build/debian (cached there):
#   debian-12.qcow2, vmlinuz, initrd.img   scripts/debian-image.sh (root)
#   id_ed25519[.pub]   a key pair for logging in
#   vm1-seed.img       the NoCloud seed: host name vm1, that key for root
#                      and the user debian
#   vm1.qcow2          the VM's disk: an overlay on the base image, kept
#                      across boots (--fresh, or a rebuilt base, makes a
#                      new one)
# then boots 1 vCPU, 1 GiB, user-mode networking with the guest's ssh on
# 127.0.0.1:2222, a control API socket at build/debian/vm1.api. On a CPU
# with vmx/svm vireo-vmm runs here on /dev/kvm; otherwise inside the lab's
# outer VM (QEMU TCG with nested KVM, the host's files shared with it), and
# the ssh port is that VM's, not this host's.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
d=$top/build/debian
fresh=0
case "${1:-}" in
--fresh) fresh=1 ;;
"") ;;
*) echo "usage: scripts/boot-debian.sh [--fresh]" >&2; exit 2 ;;
esac
[ -x "$top/build/release/vmm/vireo-vmm" ] ||
	{ echo "boot: no build/release/vmm/vireo-vmm: build it first (bash scripts/build.sh release)." >&2; exit 3; }
if [ ! -f "$d/stamp" ]; then
	echo "boot: building the Debian 12 image from Debian's archive (the first time only: about 2-3 minutes, most of it downloading and unpacking packages)"
fi
bash "$top/scripts/debian-image.sh"
if [ ! -f "$d/id_ed25519" ]; then
	ssh-keygen -q -t ed25519 -N '' -C vireo-vm1 -f "$d/id_ed25519"
fi
bash "$top/scripts/cloud-init-seed.sh" --ssh-key "$d/id_ed25519.pub" --hostname vm1 "$d/vm1-seed.img" >/dev/null
if [ -f "$d/vm1.qcow2" ] && [ "$d/debian-12.qcow2" -nt "$d/vm1.qcow2" ]; then
	echo "boot: the base image was rebuilt: vm1.qcow2 starts afresh on it"
	fresh=1
fi
if [ $fresh -eq 1 ] || [ ! -f "$d/vm1.qcow2" ]; then
	rm -f "$d/vm1.qcow2"
	# The backing file by its name alone: found beside the overlay, here
	# and in the lab's outer VM (where build/debian is under /host).
	(cd "$d" && "$top/build/release/cli/vireo-img" create -f qcow2 -b debian-12.qcow2 -F qcow2 vm1.qcow2 >/dev/null)
fi
exec bash "$top/tests/lab/run.sh" --host-fs --env "BOOT_DEBIAN=$d" --shell "$top/tests/lab/boot-debian-shell.sh"
