# virtio-vsock through vhost-vsock: an echo each way between a program in
# the outer VM (the lab host) and one in the guest, the same static
# tests/lab/vsock-echo (carried into the guest on a read-only disk). The
# guest listens on port 1234 and the host connects to CID 3; the host
# listens on 5678 and the guest connects to CID 2. While the guest runs, a
# second vireo-vmm asking for the same CID must exit 1 at once, saying so.
# Then the guest unbinds and rebinds its vsock driver (a driver reset: the
# VMM stops vhost-vsock and starts it again for the new driver, which gets
# a transport reset event) and both echoes run again on new ports.
# lab-timeout: 300
# lab-sample: yes
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
[ -e /dev/vhost-vsock ] || lab_fail "the lab host has no /dev/vhost-vsock (vhost_vsock module)"
ve=$(command -v vsock-echo) || lab_fail "no vsock-echo among the release binaries"
size=$(wc -c <"$ve")
cat >"$LAB_TMP/guest.sh" <<GUEST
mkdir -p /tmp
head -c $size /dev/vdb >/tmp/ve && chmod +x /tmp/ve || { echo "vsock-guest: cannot copy the helper"; exit 1; }
/tmp/ve listen 1234 >/tmp/listen.out 2>&1 &
lp=\$!
sleep 1
echo "VSOCK-GUEST-LISTENING"
/tmp/ve connect 2 5678 hello-from-the-guest || { echo "vsock-guest: guest->host echo failed"; exit 3; }
wait \$lp
st=\$?
cat /tmp/listen.out
[ \$st = 0 ] || { echo "vsock-guest: host->guest echo failed (\$st)"; exit 4; }
drv=/sys/bus/virtio/drivers/vmw_vsock_virtio_transport
dev=\$(ls \$drv | grep '^virtio' | head -1)
[ -n "\$dev" ] || { echo "vsock-guest: no device bound to the vsock driver"; exit 5; }
echo \$dev >\$drv/unbind && echo \$dev >\$drv/bind || { echo "vsock-guest: rebind failed"; exit 6; }
echo "vsock-guest: driver of \$dev reset"
/tmp/ve listen 1235 >/tmp/listen2.out 2>&1 &
lp=\$!
sleep 1
echo "VSOCK-GUEST-LISTENING-2"
/tmp/ve connect 2 5679 again-from-the-guest || { echo "vsock-guest: guest->host echo after the reset failed"; exit 7; }
wait \$lp
st=\$?
cat /tmp/listen2.out
[ \$st = 0 ] || { echo "vsock-guest: host->guest echo after the reset failed (\$st)"; exit 8; }
echo "vsock-guest: ok"
GUEST
dd if="$LAB_TMP/guest.sh" of="$LAB_TMP/script.img" bs=4096 conv=sync 2>/dev/null
dd if="$ve" of="$LAB_TMP/helper.img" bs=4096 conv=sync 2>/dev/null
vsock-echo listen 5678 >"$LAB_TMP/host-listen.out" 2>&1 &
hl=$!
export LAB_VMM_ARGS="--verbose --disk path=$LAB_TMP/script.img,format=raw --disk path=$LAB_TMP/helper.img,format=raw,readonly=on --vsock cid=3"
( lab_boot vireo "$LAB_INNER_CMDLINE vireo.run=/dev/vda" 180 >/dev/null 2>&1 ) &
bp=$!
i=0
until grep -q '^VSOCK-GUEST-LISTENING' "$LAB_TMP/vireo.out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 170 ] || { kill $hl 2>/dev/null; lab_fail "the guest never said it listens"; }
	kill -0 $bp 2>/dev/null || { kill $hl 2>/dev/null; tail -20 "$LAB_TMP/vireo.out"; lab_fail "vireo-vmm ended before the guest listened"; }
	sleep 1
done
# A second VM wanting the same CID.
vireo-vmm --kernel "$LAB_INNER_KERNEL" --memory 64M --vsock cid=3 >"$LAB_TMP/second.out" 2>&1
rc=$?
cat "$LAB_TMP/second.out"
[ $rc = 1 ] || lab_fail "a second vireo-vmm with CID 3 exited $rc (want 1)"
grep -q 'CID 3 is already used' "$LAB_TMP/second.out" || lab_fail "no clear message for a CID in use"
vsock-echo connect 3 1234 hello-from-the-lab-host >"$LAB_TMP/host-connect.out" 2>&1 ||
	{ cat "$LAB_TMP/host-connect.out"; lab_fail "host->guest echo over vsock failed"; }
cat "$LAB_TMP/host-connect.out"
wait $hl || lab_fail "the host's listener did not echo the guest's message"
cat "$LAB_TMP/host-listen.out"
# After the guest's driver reset.
vsock-echo listen 5679 >"$LAB_TMP/host-listen2.out" 2>&1 &
hl=$!
i=0
until grep -q '^VSOCK-GUEST-LISTENING-2' "$LAB_TMP/vireo.out" 2>/dev/null; do
	i=$((i + 1))
	if [ $i -ge 120 ] || ! kill -0 $bp 2>/dev/null; then
		kill $hl 2>/dev/null
		tr -d '\r' <"$LAB_TMP/vireo.out" | grep -E 'vsock' | tail -n 8
		lab_fail "the guest did not listen again after its driver reset"
	fi
	sleep 1
done
vsock-echo connect 3 1235 again-from-the-lab-host >"$LAB_TMP/host-connect2.out" 2>&1 ||
	{ cat "$LAB_TMP/host-connect2.out"; lab_fail "host->guest echo after the guest's driver reset failed"; }
cat "$LAB_TMP/host-connect2.out"
wait $bp
wait $hl || lab_fail "the host's listener did not echo the guest's message after the reset"
cat "$LAB_TMP/host-listen2.out"
tr -d '\r' <"$LAB_TMP/vireo.out" | grep -v '^MARKER' | tail -n 12
lab_expect "$LAB_TMP/vireo.out" '^vsock-echo: got hello-from-the-guest' "the guest did not get its echo from the host"
lab_expect "$LAB_TMP/vireo.out" '^vsock-echo: got again-from-the-guest' "the guest did not get its echo after its driver reset"
lab_expect "$LAB_TMP/vireo.out" '^vsock-guest: ok' "the inner vsock script did not report ok"
lab_expect "$LAB_TMP/vireo.out" '^VIREO-SCENARIO-EXIT 0' "the inner script did not exit 0"
grep -q 'guest driver error\|cannot start vhost-vsock' "$LAB_TMP/vireo.out" &&
	lab_fail "vireo-vmm reported a vsock device error"
lab_expect_sandboxed "$LAB_TMP/vireo.out"
echo "vsock: both directions echoed, before and after the guest's driver reset (sandboxed)"
