# vhost-vsock across a save and restore (issue 18), with a Linux guest
# (the inner fixture, 1 vCPU): the guest listens on vsock port 1240 over and
# over (tests/lab/vsock-echo, carried in on a read-only disk); the lab host
# echoes through it, then the VM is saved (PUT /vm/save with exit) and
# restored in a new vireo-vmm, which claims the same CID, starts
# vhost-vsock on the saved ring indices and sends the guest a transport
# reset: a new host->guest echo works, and the guest never booted again.
# A second VM holding CID 3 makes a restore fail with one line.
# lab-timeout: 480
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
[ -e /dev/vhost-vsock ] || lab_fail "the lab host has no /dev/vhost-vsock (vhost_vsock module)"
ve=$(command -v vsock-echo) || lab_fail "no vsock-echo among the release binaries"
T=$LAB_TMP
chmod 0777 "$T"
size=$(wc -c <"$ve")
cat >"$T/guest.sh" <<GUEST
head -c $size /dev/vdb >/tmp/ve && chmod +x /tmp/ve || { echo "vsock-guest: cannot copy the helper"; exit 1; }
echo "vsock-guest: boot \$(cat /proc/sys/kernel/random/boot_id)"
n=0
while :; do
	n=\$((n + 1))
	echo "VSOCK-GUEST-LISTENING \$n"
	/tmp/ve listen 1240
done
GUEST
dd if="$T/guest.sh" of="$T/script.img" bs=4096 conv=sync 2>/dev/null
dd if="$ve" of="$T/helper.img" bs=4096 conv=sync 2>/dev/null
vireo-vmm --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" --memory 256M --cpus 1 \
	--cmdline "$LAB_INNER_CMDLINE vireo.notimer vireo.run=/dev/vda" \
	--disk "path=$T/script.img,format=raw" --disk "path=$T/helper.img,format=raw,readonly=on" \
	--vsock cid=3 --api-socket "$T/a1.sock" </dev/null >"$T/s.out" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null' EXIT
# listening FILE N SECONDS: the guest's N-th listen has begun.
# (Bounded by the clock: each look costs more than its 0.1 s here.)
listening() {
	_end=$(($(date +%s) + $3))
	until grep -q "^VSOCK-GUEST-LISTENING $2" "$1" 2>/dev/null; do
		kill -0 $pid 2>/dev/null || { tail -n 30 "$1"; lab_fail "vireo-vmm ended before the guest's listen $2"; }
		[ "$(date +%s)" -gt $_end ] && { tail -n 30 "$1"; lab_fail "no listen $2 of the guest after $3 s"; }
		sleep 0.1
	done
	sleep 1
}
listening "$T/s.out" 1 150
vsock-echo connect 3 1240 before-the-save >"$T/c1.out" 2>&1 ||
	{ cat "$T/c1.out"; tail -n 30 "$T/s.out"; lab_fail "host->guest echo before the save failed"; }
listening "$T/s.out" 2 60
code=$(curl -s -o "$T/resp" -w '%{http_code}' --unix-socket "$T/a1.sock" -X PUT \
	-H 'Content-Type: application/json' --data-binary "{\"dir\": \"$T/save\", \"exit\": true}" http://localhost/vm/save)
[ "$code" = 204 ] || lab_fail "PUT /vm/save answered $code: $(cat "$T/resp")"
wait $pid
rc=$?
[ $rc = 0 ] || lab_fail "the saved VM ended with status $rc"
# Another VM holding CID 3: the restore fails with one line.
vireo-vmm --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" --memory 256M --vsock cid=3 \
	--cmdline "$LAB_INNER_CMDLINE vireo.notimer" </dev/null >"$T/holder.out" 2>&1 &
holder=$!
# It holds the CID from its start; its guest's boot marker says it is
# well past that (and that it did not fail).
_end=$(($(date +%s) + 120))
until grep -q 'VIREO-BOOT-OK' "$T/holder.out"; do
	kill -0 $holder 2>/dev/null || { cat "$T/holder.out"; lab_fail "the VM meant to hold CID 3 ended"; }
	[ "$(date +%s)" -gt $_end ] && { tail -n 20 "$T/holder.out"; lab_fail "the VM meant to hold CID 3 did not boot in 120 s"; }
	sleep 0.5
done
timeout 60 vireo-vmm --restore "$T/save" </dev/null >"$T/clash.out" 2>&1
rc=$?
kill -9 $holder 2>/dev/null
wait $holder 2>/dev/null
cat "$T/clash.out"
[ $rc = 1 ] || lab_fail "a restore whose CID another VM holds exited $rc (want 1)"
grep -q 'CID 3' "$T/clash.out" || lab_fail "no clear message naming CID 3"
vireo-vmm --restore "$T/save" --verbose </dev/null >"$T/r.out" 2>&1 &
pid=$!
sleep 3
kill -0 $pid 2>/dev/null || { cat "$T/r.out"; lab_fail "the restored VM ended"; }
i=0
until vsock-echo connect 3 1240 after-the-restore >"$T/c2.out" 2>&1; do
	i=$((i + 1))
	[ $i -ge 3 ] && { cat "$T/c2.out"; tail -n 40 "$T/r.out"; lab_fail "host->guest echo after the restore failed 3 times (30 s each)"; }
	sleep 1
done
cat "$T/c2.out"
grep -q 'vsock-guest: boot' "$T/r.out" && lab_fail "the restored guest booted again"
grep -q 'VIREO-BOOT-OK' "$T/r.out" && lab_fail "the restored guest booted again"
echo "vsock-save: ok: echo before the save and after the restore (attempt $((i + 1)))"
