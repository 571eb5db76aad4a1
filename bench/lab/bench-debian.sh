# Benchmark (lab): the Debian 12 server guest's first boot (docs/debian-guest.md),
# the same image, kernel, initrd and seed under each VMM, alternately:
#   microvm  QEMU -M microvm,pcie=on,rtc=on with virtio-blk-pci disks,
#            virtio-net-pci on -netdev user (hostfwd for ssh), virtio-rng-pci
#   vireo    vireo-vmm with the same devices (--disk, --net user, --rng)
# 1 vCPU, 1 GiB each, a fresh overlay on the base for every run (so each is
# a first boot: cloud-init makes host keys and installs the seeded key).
# Per run: the wall time from starting the VMM to the first successful ssh
# login (polled once a second), and systemd's own figure for reaching its
# default target (systemd-analyze: kernel + userspace). Reports
# "LAB-DATA side=NAME run=I ssh=S systemd=S kernel=S busy=S wait=S":
# kernel is systemd-analyze's kernel part; busy and wait are the guest's
# CPU seconds at the login from /proc/stat (busy: user, nice, system,
# irq, softirq; wait: idle, iowait). The first measured run of each side
# also prints systemd-analyze blame's top lines. Env: BENCH_SIDES, BENCH_RUNS
# (default 5), BENCH_WARMUP (default 0).
# lab-needs: debian
# lab-timeout: 3600
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
sides=${BENCH_SIDES:-microvm vireo}
runs=${BENCH_RUNS:-5}
warm=${BENCH_WARMUP:-0}
img=$LAB_HOST$LAB_HOST_TOP/build/debian
prep=$LAB_HOST$LAB_HOST_TOP/build/lab/debian
base=$LAB_TMP/base
mkdir -p "$base"
cp "$img/debian-12.qcow2" "$img/vmlinuz" "$img/initrd.img" "$base/" || lab_fail "no Debian image in $img"
cp "$prep/id_ed25519" "$LAB_TMP/key" && chmod 600 "$LAB_TMP/key" || lab_fail "no key in $prep"
cp "$prep/seed-deb1.img" "$LAB_TMP/seed.img" || lab_fail "no seed in $prep"
export HOME=$LAB_TMP
up() { cut -d' ' -f1 /proc/uptime; }
gssh() {
	timeout 60 ssh -i "$LAB_TMP/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o LogLevel=ERROR -o ConnectTimeout=20 -o BatchMode=yes -p 2201 root@127.0.0.1 "$@"
}
cmdline="root=/dev/vda rw console=ttyS0 quiet"

i=$((1 - warm))
while [ $i -le "$runs" ]; do
	for side in $sides; do
		rm -f "$LAB_TMP/ov.qcow2"
		# The overlay names its base by its full path (vireo-vmm is
		# told that directory is allowed with backing-dir=).
		vireo-img create -f qcow2 -b "$base/debian-12.qcow2" -F qcow2 "$LAB_TMP/ov.qcow2" >/dev/null ||
			lab_fail "cannot make the overlay"
		t0=$(up)
		case "$side" in
		microvm)
			qemu-system-x86_64 -M microvm,pcie=on,rtc=on -accel kvm -cpu host -smp 1 -m 1024 \
				-nodefaults -no-user-config -display none -serial stdio -no-reboot \
				-kernel "$base/vmlinuz" -initrd "$base/initrd.img" -append "$cmdline" \
				-drive "if=none,id=d0,file=$LAB_TMP/ov.qcow2,format=qcow2" \
				-device virtio-blk-pci,drive=d0 \
				-drive "if=none,id=d1,file=$LAB_TMP/seed.img,format=raw,readonly=on" \
				-device virtio-blk-pci,drive=d1 \
				-netdev user,id=n0,hostfwd=tcp:127.0.0.1:2201-:22 \
				-device virtio-net-pci,netdev=n0,romfile= \
				-device virtio-rng-pci \
				</dev/null >"$LAB_TMP/$side.out" 2>&1 & ;;
		vireo)
			vireo-vmm --name bench --cpus 1 --memory 1G --rng \
				--kernel "$base/vmlinuz" --initrd "$base/initrd.img" --cmdline "$cmdline" \
				--disk "path=$LAB_TMP/ov.qcow2,format=qcow2,backing-dir=$base" \
				--disk "path=$LAB_TMP/seed.img,format=raw,readonly=on" \
				--net "user,hostfwd=tcp:127.0.0.1:2201-:22" \
				</dev/null >"$LAB_TMP/$side.out" 2>&1 & ;;
		*) lab_fail "unknown side '$side' (microvm or vireo)" ;;
		esac
		pid=$!
		ok=0
		while kill -0 $pid 2>/dev/null; do
			if gssh true 2>/dev/null; then ok=1; break; fi
			awk -v a="$t0" -v b="$(up)" 'BEGIN { exit !(b - a > 900) }' && break
			sleep 1
		done
		t_ssh=$(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }')
		if [ $ok -ne 1 ]; then
			kill $pid 2>/dev/null; wait $pid 2>/dev/null
			tr -d '\r' <"$LAB_TMP/$side.out" | tail -n 20
			lab_fail "$side run $i: no ssh login within 900 s"
		fi
		# Where the guest's time went up to the login: its CPU time,
		# busy (user, nice, system, irq, softirq) and waiting (idle,
		# iowait), in seconds from /proc/stat's first line.
		# The login that just worked may be followed by a refused one
		# (cloud-init restarts sshd as the boot goes on): a few tries.
		cpu= n=0
		while [ -z "$cpu" ] && [ $n -lt 15 ]; do
			cpu=$(gssh head -1 /proc/stat 2>/dev/null | awk '$1 == "cpu" {
				hz = 100; printf "%.1f %.1f", ($2 + $3 + $4 + $7 + $8) / hz, ($5 + $6) / hz }')
			[ -n "$cpu" ] || sleep 1
			n=$((n + 1))
		done
		# systemd-analyze has its figure once the boot has finished (a
		# loaded lab may take minutes more than ssh did).
		sa= n=0
		while [ $n -lt 120 ]; do
			sa=$(gssh systemd-analyze 2>/dev/null | grep 'Startup finished' | head -1)
			[ -n "$sa" ] && break
			n=$((n + 1))
			sleep 5
		done
		[ $i -eq 1 ] && gssh systemd-analyze blame 2>/dev/null | head -n 12 | sed "s/^/$side blame: /"
		kill $pid 2>/dev/null; wait $pid 2>/dev/null
		# "Startup finished in 31.1s (kernel) + 4min 32.5s (userspace) = 5min 3.6s"
		total=$(echo "$sa" | sed -n 's/.*= *//p' | awk '{
			t = 0
			for (k = 1; k <= NF; k++) {
				v = $k
				if (v ~ /min$/) { sub(/min$/, "", v); t += v * 60 }
				else if (v ~ /ms$/) { sub(/ms$/, "", v); t += v / 1000 }
				else if (v ~ /s$/) { sub(/s$/, "", v); t += v }
			}
			printf "%.1f", t }')
		[ -n "$total" ] || lab_fail "$side run $i: no systemd-analyze figure ('$sa')"
		kern=$(echo "$sa" | sed -n 's/.*in *\(.*\) (kernel).*/\1/p' | awk '{
			v = $1; t = 0
			if (v ~ /ms$/) { sub(/ms$/, "", v); t = v / 1000 }
			else if (v ~ /s$/) { sub(/s$/, "", v); t = v }
			printf "%.1f", t }')
		set -- $cpu
		[ $# -eq 2 ] || lab_fail "$side run $i: no /proc/stat figures from the guest"
		[ $i -ge 1 ] && lab_data "side=$side run=$i ssh=$t_ssh systemd=$total kernel=${kern:-0} busy=$1 wait=$2"
		echo "$side run $i: ssh login after $t_ssh s; $sa"
	done
	i=$((i + 1))
done
