#!/usr/bin/env bash
# What the lab's Debian scenarios need from the host (run.sh runs this for
# a selected scenario with a "# lab-needs: debian" line, and shares the
# host's / with the outer VM for it):
#   build/debian/           the Debian 12 image, kernel and initrd
#                           (scripts/debian-image.sh; cached there)
#   build/lab/debian/id_ed25519[.pub]   a key pair made once
#   build/lab/debian/seed-deb1.img, seed-deb2.img   NoCloud seeds with
#                           host names deb1 and deb2 and that key
# Needs root (the image build), mmdebstrap, dosfstools, mtools and
# openssh-client (scripts/packages.txt).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$top/build/lab/debian
say() { echo "lab: $*"; }

bash "$top/scripts/debian-image.sh" >"$top/build/lab/debian-image.log" 2>&1 || {
	tail -n 20 "$top/build/lab/debian-image.log" >&2
	echo "lab: the Debian image build failed (bash scripts/debian-image.sh)" >&2
	exit 2
}
mkdir -p "$out"
if [ ! -f "$out/id_ed25519" ] || [ ! -f "$out/id_ed25519.pub" ]; then
	rm -f "$out/id_ed25519" "$out/id_ed25519.pub"
	ssh-keygen -q -t ed25519 -N '' -C vireo-lab -f "$out/id_ed25519"
fi
for h in deb1 deb2; do
	# The seed's contents decide its instance id: a stable key and host
	# name give the same seed, so this is cheap to repeat.
	bash "$top/scripts/cloud-init-seed.sh" --ssh-key "$out/id_ed25519.pub" \
		--hostname "$h" "$out/seed-$h.img.tmp" >/dev/null 2>&1 ||
		{ echo "lab: cannot make the seed for $h (scripts/cloud-init-seed.sh)" >&2; exit 2; }
	mv "$out/seed-$h.img.tmp" "$out/seed-$h.img"
done
say "Debian image and seeds ready in build/debian and build/lab/debian"
