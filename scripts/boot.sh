#!/usr/bin/env bash
# Boot the fixture Linux guest (Debian's cloud kernel + a busybox initramfs,
# see tests/lab/README.md) under vireo-vmm to a shell on this terminal.
# On a CPU with vmx/svm, vireo-vmm runs directly on this host's /dev/kvm;
# otherwise inside the lab's outer VM (QEMU TCG with nested KVM), with that
# VM's serial console on this terminal (Ctrl-A X leaves QEMU).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$top/build/release/vmm/vireo-vmm" ]; then
	echo "boot: no build/release/vmm/vireo-vmm: build it first (bash scripts/build.sh release)." >&2
	exit 3
fi
exec bash "$top/tests/lab/run.sh" --env BOOT_VMM=vireo --shell "$top/tests/lab/boot-shell.sh"
