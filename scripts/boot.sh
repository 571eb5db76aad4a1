#!/usr/bin/env bash
# Boot the fixture Linux guest to a shell on this terminal.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$top/build/release/vmm/vireo-vmm" ]; then
	echo "boot: not yet: vireo-vmm does not exist yet (issue 3); nothing to boot." >&2
	exit 3
fi
