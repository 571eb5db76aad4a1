#!/usr/bin/env bash
# Checker agreement on damaged images: leaked clusters (exit 3), refcount
# too low / too high on a used cluster (exit 2): `vireo-img check` gives the
# same verdict as `qemu-img check`; `check -r leaks` / `-r all` repair them so
# that qemu-img check finds the image clean, and the guest data is unchanged.
. "$(dirname "$0")/common.sh"

mk() {
	rm -f img.qcow2
	"$QEMU_IMG" create -q -f qcow2 -o cluster_size=$1 img.qcow2 4M &&
	"$QEMU_IO" -f qcow2 -c "write -P 0x5e 0 256k" -c "write -P 0x6f 1m 128k" img.qcow2 >/dev/null
}

for cs in 4096 65536; do
	t="cluster_size=$cs"
	# Leak: unmap an allocated data cluster (the cluster at 1m becomes
	# unreferenced but keeps refcount 1).
	mk $cs || { fail "$t: setup"; continue; }
	$QCOW2PY img.qcow2 l2 $((1024 * 1024)) 0
	qemu_raw img.qcow2 want.raw
	check_agree img.qcow2 "$t leak"
	if must "$t check -r leaks" "$VIREO_IMG" check -r leaks img.qcow2; then
		qemu_check img.qcow2 "$t leak repaired"
		qemu_raw img.qcow2 out.raw && same_raw want.raw out.raw "$t leak repaired: data"
	fi

	# Refcount 0 on a used data cluster: corruption.
	mk $cs || { fail "$t: setup"; continue; }
	qemu_raw img.qcow2 want.raw
	host=$($QCOW2PY img.qcow2 host 0)
	$QCOW2PY img.qcow2 refcount $host 0
	check_agree img.qcow2 "$t refcount 0"
	# Leak repair alone must not report this image clean.
	if vimg check -r leaks img.qcow2; then
		fail "$t refcount 0: check -r leaks says clean"
	else
		echo "$t refcount 0: check -r leaks still reports a problem"
	fi
	if must "$t check -r all" "$VIREO_IMG" check -r all img.qcow2; then
		qemu_check img.qcow2 "$t refcount 0 repaired"
		qemu_raw img.qcow2 out.raw && same_raw want.raw out.raw "$t refcount 0 repaired: data"
	fi

	# Refcount 2 on a cluster whose L2 entry says "copied" (refcount 1).
	mk $cs || { fail "$t: setup"; continue; }
	qemu_raw img.qcow2 want.raw
	host=$($QCOW2PY img.qcow2 host $((1024 * 1024)))
	$QCOW2PY img.qcow2 refcount $host 2
	check_agree img.qcow2 "$t refcount 2"
	if must "$t check -r all" "$VIREO_IMG" check -r all img.qcow2; then
		qemu_check img.qcow2 "$t refcount 2 repaired"
		qemu_raw img.qcow2 out.raw && same_raw want.raw out.raw "$t refcount 2 repaired: data"
	fi
done
finish
