# Benchmark (lab): virtio-blk throughput seen by the inner guest, per VMM,
# on the same raw image file (BENCH_DISK_MIB, default 256 MiB, on the outer
# VM's tmpfs). Inside the guest bench/lab/inner/blk.sh runs dd (sequential
# 1 MiB, O_DIRECT) and fio (4 KiB random, O_DIRECT, libaio, depth 16).
#   microvm  QEMU -M microvm,pcie=on with virtio-blk-pci (the same transport
#            as vireo-vmm's), -drive cache=writeback,aio=io_uring: the host
#            page cache and io_uring, as vireo-vmm does (it has no O_DIRECT
#            mode, and tmpfs refuses O_DIRECT anyway)
#   vireo    vireo-vmm --disk path=IMG
# Needs the fio archive: bench.py passes build/fixtures/bench-fio.cpio with
# run.sh --file; it is appended to the inner initramfs (both VMMs boot the
# same concatenation). Guest RAM 512 MiB on both (the archive is ~80 MiB).
# Env: BENCH_SIDES, BENCH_RUNS (default 5), BENCH_WARMUP (default 0: the
# image is rewritten in full by every run anyway), BENCH_DISK_MIB,
# BENCH_FIO_SECONDS (default 5), BENCH_BLK_MAX_KB (cap the guest's request
# size, max_sectors_kb, on both sides; unset: the driver's own limit).
# Reports "LAB-DATA side=NAME run=I seqwrite=.. seqread=.. randread=.. randwrite=..".
# lab-timeout: 1500
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
sides=${BENCH_SIDES:-microvm vireo}
runs=${BENCH_RUNS:-5}
warm=${BENCH_WARMUP:-0}
mib=${BENCH_DISK_MIB:-256}
fio_secs=${BENCH_FIO_SECONDS:-5}
extra=${LAB_FILES:-/nonexistent}/bench-fio.cpio
[ -f "$extra" ] || lab_fail "no $extra (run through bench/bench.py blk, which builds and passes it)"

# One initramfs for both: the fixture's gzip archive, zero padding to a
# 4-byte boundary (the kernel wants each archive aligned), then fio's.
initrd=$LAB_TMP/initrd-fio.cpio
cp "$LAB_INNER_INITRD" "$initrd" || lab_fail "cannot copy $LAB_INNER_INITRD"
pad=$(((4 - $(wc -c <"$initrd") % 4) % 4))
[ $pad -eq 0 ] || head -c $pad /dev/zero >>"$initrd"
cat "$extra" >>"$initrd" || lab_fail "cannot append $extra (out of memory in the outer VM?)"
export LAB_INNER_INITRD=$initrd LAB_INNER_MEM=512

img=$LAB_TMP/disk.img
dd if=/dev/zero of="$img" bs=1M count="$mib" 2>/dev/null || lab_fail "cannot create a $mib MiB $img"
echo "disk: $img, $mib MiB on $(df -P "$LAB_TMP" | awk 'NR == 2 {print $1}')"

cmdline="$LAB_INNER_CMDLINE vireo.run=blk bench.fio_seconds=$fio_secs"
# BENCH_BLK_MAX_KB: cap the guest's request size on both sides (see blk.sh).
[ -z "${BENCH_BLK_MAX_KB:-}" ] || cmdline="$cmdline bench.max_kb=$BENCH_BLK_MAX_KB"
i=$((1 - warm))
while [ $i -le "$runs" ]; do
	for side in $sides; do
		case "$side" in
		microvm) LAB_VMM_ARGS="-machine pcie=on -drive file=$img,format=raw,if=none,id=d0,cache=writeback,aio=io_uring -device virtio-blk-pci,drive=d0" ;;
		vireo) LAB_VMM_ARGS="--disk path=$img" ;;
		*) lab_fail "unknown side '$side' (microvm or vireo)" ;;
		esac
		lab_boot "$side" "$cmdline" 300 >/dev/null ||
			{ tail -n 30 "$LAB_TMP/$side.out"; lab_fail "$side run $i: no VIREO-BOOT-OK within 300 s"; }
		line=$(tr -d '\r' <"$LAB_TMP/$side.out" | grep '^BLK ' | head -1)
		if [ "$LAB_GUEST_EXIT" != 0 ] || [ -z "$line" ]; then
			tail -n 30 "$LAB_TMP/$side.out"
			lab_fail "$side run $i: the inner blk scenario exited '${LAB_GUEST_EXIT:-never}' (${line:-no BLK line})"
		fi
		[ $i -ge 1 ] && lab_data "side=$side run=$i ${line#BLK }"
		echo "$side run $i: ${line#BLK }"
	done
	i=$((i + 1))
done
