# Inner guest side of the block benchmark (bench/lab/bench-blk.sh): on
# /dev/vda, sequential write then read with dd (1 MiB blocks, O_DIRECT) and
# 4 KiB random read then write with fio (O_DIRECT, libaio, queue depth 16,
# bench.fio_seconds=S on the kernel command line, default 5), then one line
#   BLK seqwrite=MB/s seqread=MB/s randread=IOPS randwrite=IOPS
# (MB = 10^6 bytes). Carried in the fio archive as /scenarios/blk.sh.
dev=/dev/vda
secs=5 maxkb=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	bench.fio_seconds=*) secs=${arg#bench.fio_seconds=} ;;
	bench.max_kb=*) maxkb=${arg#bench.max_kb=} ;;
	esac
done
n=0
while [ ! -b $dev ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -b $dev ] || { echo "blk: no $dev (have: $(ls /sys/block))"; exit 1; }
command -v fio >/dev/null || { echo "blk: no fio in this initramfs"; exit 1; }
mib=$(($(cat /sys/block/vda/size) / 2048))
echo "blk: $dev is $mib MiB"
# bench.max_kb=N caps the guest's request size (max_sectors_kb), for both
# VMMs alike: a workaround when a VMM cannot take the driver's largest
# requests.
if [ -n "$maxkb" ]; then
	echo "$maxkb" >/sys/block/vda/queue/max_sectors_kb || exit 1
	echo "blk: requests capped at $(cat /sys/block/vda/queue/max_sectors_kb) KiB"
fi

# dd_rate ARGS...: run busybox dd, print MB/s (this busybox prints no
# timing line; /proc/uptime gives 10 ms steps, small against the seconds
# one pass over the disk takes).
dd_rate() {
	_t0=$(cut -d' ' -f1 /proc/uptime)
	dd "$@" 2>/dev/null || return 0
	_t1=$(cut -d' ' -f1 /proc/uptime)
	awk -v a="$_t0" -v b="$_t1" -v m="$mib" 'BEGIN {
		if (b > a) printf "%.1f\n", m * 1048576 / (b - a) / 1e6 }'
}
# fio_iops RW: 4 KiB random RW IOPS (terse v3: field 8 read, 49 write).
fio_iops() {
	fio --name=r --filename=$dev --direct=1 --rw="$1" --bs=4k --iodepth=16 \
		--ioengine=libaio --runtime="$secs" --time_based --output-format=terse \
		--terse-version=3 2>&1 | awk -F';' -v rw="$1" 'NF > 100 {
			printf "%.0f\n", (rw == "randread" ? $8 : $49) }'
}
sw=$(dd_rate if=/dev/zero of=$dev bs=1M count="$mib" oflag=direct)
sr=$(dd_rate if=$dev of=/dev/null bs=1M count="$mib" iflag=direct)
rr=$(fio_iops randread)
rw=$(fio_iops randwrite)
echo "BLK seqwrite=${sw:-none} seqread=${sr:-none} randread=${rr:-none} randwrite=${rw:-none}"
case "$sw$sr$rr$rw" in *none*) exit 1 ;; esac
exit 0
