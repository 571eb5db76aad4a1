# A stock Debian kernel under vireo-vmm uses the virtio devices over PCI,
# all in one VM: two raw disks, a virtio console and virtio-rng. The guest
# (tests/lab/inner/virtio.sh) sees /dev/vda and /dev/vdb, writes known bytes
# to vda (checked here in the image afterwards: at the right offsets, and
# nothing else changed), finds vdb (readonly=on) read-only and its writes
# refused (checked here: the image is unchanged), writes a line to /dev/hvc0
# (it must show on the VMM's output) and reads 4096 varied bytes of /dev/hwrng.
# lab-timeout: 200
# lab-sample: yes
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
# The same 4096 bytes as vio_pattern in tests/lab/inner/virtio.sh.
vio_pattern() {
	i=0
	while [ $i -lt 256 ]; do printf 'VIREO-PAT-%05d\n' $i; i=$((i + 1)); done
}
img=$LAB_TMP/disk.img ro=$LAB_TMP/ro.img want=$LAB_TMP/want.img
# Random contents, so that a stray write of zeros (or of anything) shows.
head -c 16777216 /dev/urandom >"$img" || lab_fail "cannot create $img"
printf 'VIREO-LAB-DISK' | dd of="$img" conv=notrunc 2>/dev/null
head -c 4194304 /dev/urandom >"$ro" || lab_fail "cannot create $ro"
printf 'VIREO-RO-DISK' | dd of="$ro" conv=notrunc 2>/dev/null
cp "$img" "$want"
ro_sum=$(md5sum <"$ro")
vio_pattern >"$LAB_TMP/pattern"
export LAB_VMM_ARGS="--disk path=$img,id=data --disk path=$ro,readonly=on,id=ro,serial=VIREO-RO-SERIAL --virtio-console --rng"
lab_boot vireo "$LAB_INNER_CMDLINE vireo.run=virtio" 160 ||
	lab_fail "no VIREO-BOOT-OK under vireo-vmm with two --disk, --virtio-console, --rng"
lab_expect "$LAB_TMP/vireo.out" '^virtio: ok' "the inner virtio scenario did not report ok"
lab_expect "$LAB_TMP/vireo.out" '^virtio: hello through hvc0' "the line written to /dev/hvc0 did not reach the VMM's output"
[ "$LAB_GUEST_EXIT" = 0 ] ||
	lab_fail "inner scenario virtio exited with status '${LAB_GUEST_EXIT:-none}' (want 0)"

# The guest's writes, byte for byte where it made them.
dd if="$img" bs=512 skip=1 count=1 2>/dev/null | head -c 17 | grep -q '^VIREO-GUEST-WROTE$' ||
	lab_fail "the guest's write to sector 1 of /dev/vda is not in $img"
dd if="$img" bs=512 skip=2049 count=8 2>/dev/null | cmp - "$LAB_TMP/pattern" ||
	lab_fail "the pattern the guest wrote at sector 2049 of /dev/vda is not at byte 1049088 of $img"
head -c 512 "$LAB_TMP/pattern" >"$LAB_TMP/pattern512"
dd if="$img" bs=512 skip=32767 count=1 2>/dev/null | cmp - "$LAB_TMP/pattern512" ||
	lab_fail "the guest's write to the last sector of /dev/vda is not at the end of $img"
echo "vireo-virtio: at byte 1049088 of the image: $(dd if="$img" bs=1 skip=1049088 count=16 2>/dev/null | od -An -c | tr -s ' ')"
# ... and nothing else: the same writes applied to a copy of the original.
printf 'VIREO-GUEST-WROTE' | dd of="$want" bs=512 seek=1 conv=notrunc 2>/dev/null
dd if="$LAB_TMP/pattern" of="$want" bs=512 seek=2049 count=8 conv=notrunc 2>/dev/null
dd if="$LAB_TMP/pattern512" of="$want" bs=512 seek=32767 count=1 conv=notrunc 2>/dev/null
[ "$(wc -c <"$img")" = 16777216 ] || lab_fail "$img is $(wc -c <"$img") bytes after the run, want 16777216"
cmp "$img" "$want" || lab_fail "$img differs from the original plus the guest's three writes"
# The read-only disk, untouched.
[ "$(md5sum <"$ro")" = "$ro_sum" ] || lab_fail "the read-only image $ro changed"
grep -q '^virtio: vdb: getro=1; write refused' "$LAB_TMP/vireo.out" ||
	lab_fail "the guest did not report the refused write to vdb"
echo "vireo-virtio: image has exactly the guest's writes; read-only image unchanged ($ro_sum)"
echo "vireo-virtio: marker after $LAB_MARKER_MS ms"
