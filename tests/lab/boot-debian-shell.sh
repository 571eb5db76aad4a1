# The Debian guest with its serial console on this terminal: what
# scripts/boot-debian.sh (scripts/dev.sh boot) shows. Run through
# `tests/lab/run.sh --host-fs --shell` (on the host when it has vmx/svm,
# else inside the lab's outer VM, where the host's / is at $LAB_HOST).
# BOOT_DEBIAN is build/debian in the host's file system.
. "$LAB_SCENARIOS/lib.sh"
if [ ! -c /dev/kvm ]; then
	echo "boot: no /dev/kvm here ($LAB_MODE); cannot start the guest"
	exit 1
fi
d=${LAB_HOST:-}$BOOT_DEBIAN
# The API socket: beside the disk on this host; in the outer VM on its own
# file system (not a socket on the shared one).
api=$d/vm1.api
[ "$LAB_MODE" = direct ] || api=/tmp/vm1.api
for f in vmlinuz initrd.img debian-12.qcow2 vm1.qcow2 vm1-seed.img id_ed25519; do
	[ -f "$d/$f" ] || { echo "boot: no $d/$f (scripts/boot-debian.sh makes it)"; exit 1; }
done
echo "boot: Debian 12 (vm1) under vireo-vmm; its console is here, Ctrl-A x quits."
echo "boot: log in with: ssh -i $BOOT_DEBIAN/id_ed25519 -p 2222 root@127.0.0.1"
[ "$LAB_MODE" = direct ] || echo "boot: (from a shell of the lab's outer VM: this host has no vmx/svm)"
echo "boot: power off: systemctl poweroff in the guest, or curl --unix-socket $api -X PUT http://localhost/vm/shutdown"
exec vireo-vmm --name vm1 --cpus 1 --memory 1G --rng \
	--api-socket "$api" \
	--kernel "$d/vmlinuz" --initrd "$d/initrd.img" \
	--cmdline "root=/dev/vda rw console=ttyS0" \
	--disk "path=$d/vm1.qcow2,format=qcow2" \
	--disk "path=$d/vm1-seed.img,format=raw,readonly=on" \
	--net "user,hostfwd=tcp:127.0.0.1:2222-:22"
