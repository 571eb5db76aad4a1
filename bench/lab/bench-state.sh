# Benchmark (lab): VM state, per VMM, the inner fixture with 1 vCPU and no
# devices but COM1 (the same guest under both):
#   microvm  QEMU -M microvm: saved with the monitor's
#            `migrate "exec:cat > FILE"`, restored with -incoming
#            "exec:cat FILE"; migrated with `migrate -d tcp:...` to a
#            second QEMU started with -incoming tcp:...
#   vireo    vireo-vmm: PUT /vm/save, --restore (and --restore-prefault);
#            PUT /migrate to a second vireo-vmm started with --incoming
# The guest (a vireo.sh= script) fills 70% of its RAM with non-zero data in
# its tmpfs, optionally starts a writer that rewrites 64 MiB of it over and
# over (the "busy" migrations), then prints "tick N" 50 times a second.
#
# Restore, for 256 MiB and 2 GiB guests: one save per side and size (its
# time reported as save_ms), then BENCH_RUNS restores alternately, each
# timed from starting the VMM to the guest's first tick after it (the
# guest running again; 20 ms resolution, the same for both):
#   restore_ms    vireo-vmm --restore (guest RAM mapped from the file,
#                 faulted in on demand) / QEMU -incoming (reads it all)
#   resident_ms   vireo-vmm --restore --restore-prefault (all of guest RAM
#                 read first), for the time until all memory is resident;
#                 QEMU's restore_ms is that already
# Live migration over loopback TCP, 256 MiB and 1 GiB, idle and busy
# guests, downtime limit 300 ms and auto-converge on both: total time and
# downtime as each VMM reports them (QEMU's `info migrate`, vireo-vmm's
# "migrated to" line); for vireo-vmm also the source's split of the
# downtime and, in each first run, the target's start-up steps
# (--verbose).
# Reports "LAB-DATA side=NAME run=I KEY=VALUE...": restore256 restore2048
# resident256 resident2048 save256 save2048 (first run only: one save),
# mig{256,1024}{idle,busy}_total and _down (for a QEMU run whose target
# never ran its guest, _stuck=1 instead).
# Env: BENCH_SIDES, BENCH_RUNS (default 5), BENCH_PARTS (default
# "restore migrate"), BENCH_MIG_SIZES (MiB, default "256 1024"),
# BENCH_MIG_KINDS (0 idle, 1 busy; default "0 1").
# lab-timeout: 5400
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
sides=${BENCH_SIDES:-microvm vireo}
runs=${BENCH_RUNS:-5}
parts=${BENCH_PARTS:-restore migrate}
T=$LAB_TMP
chmod 0777 "$T"

now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

# guest_sh FILL_MIB BUSY: the guest's script, base64 for vireo.sh=.
guest_sh() {
	base64 -w0 <<EOF
yes 0123456789abcdef | head -c $(($1 * 1048576)) >/tmp/fill
echo BENCH-FILLED
if [ $2 = 1 ]; then
	head -c 67108864 /tmp/fill >/tmp/src
	( while :; do cp /tmp/src /tmp/dst; done ) &
fi
i=0
while :; do i=\$((i + 1)); echo "tick \$i"; usleep 20000; done
EOF
}

# wait_line FILE PATTERN SECONDS PID
wait_line() {
	_n=0
	until [ -f "$1" ] && tr -d '\r' <"$1" | grep -q "$2"; do
		kill -0 "$4" 2>/dev/null || { tail -n 20 "$1"; lab_fail "the VMM ($1) ended before '$2'"; }
		_n=$((_n + 1))
		[ $_n -gt $(($3 * 10)) ] && { tail -n 20 "$1"; lab_fail "no '$2' in $1 after $3 s"; }
		sleep 0.1
	done
}
# wait_listen PORT SECONDS PID OUT: until a socket listens on
# 127.0.0.1:PORT (the migration target is ready; /proc/net/tcp, state 0A).
wait_listen() {
	_hex=$(printf '0100007F:%04X' "$1")
	_n=0
	until awk -v a="$_hex" '$2 == a && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp; do
		kill -0 "$3" 2>/dev/null || { tail -n 20 "$4"; lab_fail "the migration target ($4) ended before it listened"; }
		_n=$((_n + 1))
		[ $_n -gt $(($2 * 10)) ] && { tail -n 20 "$4"; lab_fail "the migration target ($4) did not listen on port $1 in $2 s"; }
		sleep 0.1
	done
}
api() {
	curl -s --max-time 600 --unix-socket "$1" -X "$2" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} \
		"http://localhost$4"
}
# QEMU's monitor: a FIFO as its stdin (fd 3 here), its answers in OUT.
qmon_start() {
	rm -f "$T/mon"
	mkfifo "$T/mon"
}
qmon() { echo "$*" >&3; }
# qmon_wait_mig OUT SECONDS PID: until `info migrate` says completed.
qmon_wait_mig() {
	_n=0
	while :; do
		qmon "info migrate"
		sleep 0.5
		tr -d '\r' <"$1" | grep -q 'Migration status: completed' && return 0
		tr -d '\r' <"$1" | grep -q 'Migration status: failed' && { tail -n 20 "$1"; lab_fail "QEMU's migration failed"; }
		_n=$((_n + 1))
		[ $_n -gt $(($2 * 2)) ] && { tail -n 30 "$1"; lab_fail "QEMU's migration not completed after $2 s"; }
		kill -0 "$3" 2>/dev/null || lab_fail "QEMU ended during its migration"
	done
}
# q_total OUT: the last `info migrate` total time in OUT (ms).
q_total() {
	tr -d '\r' <"$1" | sed -n 's/.*total time: *\([0-9]*\) ms.*/\1/p' | tail -1
}
# q_boot MEM_MIB CMDLINE OUT ARGS...: QEMU with the monitor on fd 3.
q_boot() {
	_m=$1 _c=$2 _o=$3
	shift 3
	qmon_start
	qemu-system-x86_64 -M microvm,rtc=on -accel kvm -cpu host -smp 1 -m "$_m" \
		-nodefaults -no-user-config -display none -no-reboot \
		-kernel "$LAB_INNER_KERNEL" -initrd "$LAB_INNER_INITRD" -append "$_c" \
		-serial "file:$_o.serial" -monitor stdio "$@" <"$T/mon" >"$_o" 2>&1 &
	qpid=$!
	exec 3>"$T/mon"
}
v_boot() {
	_m=$1 _c=$2 _o=$3
	shift 3
	vireo-vmm --kernel "$LAB_INNER_KERNEL" --initrd "$LAB_INNER_INITRD" --cmdline "$_c" \
		--memory "${_m}M" --cpus 1 "$@" </dev/null >"$_o" 2>&1 &
	vpid=$!
}
# marker_ms OUT: lab-marker-time's MARKER-MS in OUT.
marker_ms() {
	sed -n 's/^MARKER-MS \([0-9]*\).*/\1/p' "$1" | head -1
}

# ---- restore ----
if echo "$parts" | grep -q restore; then
	for m in 256 2048; do
		fill=$((m * 70 / 100))
		cmd="$LAB_INNER_CMDLINE vireo.notimer vireo.sh=$(guest_sh $fill 0)"
		for side in $sides; do
			out=$T/$side-save$m.out
			case $side in
			microvm)
				q_boot $m "$cmd" "$out"
				wait_line "$out.serial" 'tick 5' 900 $qpid
				qmon "migrate \"exec:cat > $T/q$m.img\""
				qmon_wait_mig "$out" 600 $qpid
				# its own figure: `info migrate`'s total time
				t0=0 t1=$(q_total "$out")
				qmon quit
				exec 3>&-
				wait $qpid ;;
			vireo)
				mkdir -p "$T/v$m" && chmod 0777 "$T/v$m"
				v_boot $m "$cmd" "$out" --api-socket "$T/api.sock"
				wait_line "$out" 'tick 5' 900 $vpid
				t0=$(now_ms)
				api "$T/api.sock" PUT "{\"dir\": \"$T/v$m\", \"exit\": true}" /vm/save
				t1=$(now_ms)
				wait $vpid || lab_fail "vireo-vmm's save with exit ended with status $?"
				;;
			esac
			eval "save_$side$m=$((t1 - t0))"
			echo "$side: ${m} MiB saved in $((t1 - t0)) ms"
		done
		ls -ls "$T/q$m.img" "$T/v$m" 2>/dev/null
		i=1
		while [ $i -le "$runs" ]; do
			for side in $sides; do
				case $side in
				microvm)
					lab-marker-time -t 600 -m tick -k -- qemu-system-x86_64 -M microvm,rtc=on -accel kvm \
						-cpu host -smp 1 -m $m -nodefaults -no-user-config -display none \
						-no-reboot -serial stdio -kernel "$LAB_INNER_KERNEL" \
						-initrd "$LAB_INNER_INITRD" -append "$cmd" \
						-incoming "exec:cat $T/q$m.img" >"$T/r.out" 2>&1
					r=$(marker_ms "$T/r.out") res=$r ;;
				vireo)
					lab-marker-time -t 600 -m tick -k -- vireo-vmm --restore "$T/v$m" >"$T/r.out" 2>&1
					r=$(marker_ms "$T/r.out")
					lab-marker-time -t 600 -m tick -k -- vireo-vmm --restore "$T/v$m" \
						--restore-prefault >"$T/p.out" 2>&1
					res=$(marker_ms "$T/p.out") ;;
				esac
				[ -n "$r" ] && [ -n "$res" ] || { tail -n 20 "$T/r.out"; lab_fail "$side: a ${m} MiB restore never ran the guest"; }
				eval "s=\$save_$side$m"
				extra=
				[ $i -eq 1 ] && extra="save$m=$s"
				lab_data "side=$side run=$i restore$m=$r resident$m=$res $extra"
			done
			i=$((i + 1))
		done
		rm -rf "$T/q$m.img" "$T/v$m"
	done
fi

# ---- live migration ----
if echo "$parts" | grep -q migrate; then
	port=4600
	for m in ${BENCH_MIG_SIZES:-256 1024}; do
		fill=$((m * 70 / 100))
		for busy in ${BENCH_MIG_KINDS:-0 1}; do
			kind=idle
			[ $busy = 1 ] && kind=busy
			cmd="$LAB_INNER_CMDLINE vireo.notimer vireo.sh=$(guest_sh $fill $busy)"
			i=1
			while [ $i -le "$runs" ]; do
				for side in $sides; do
					port=$((port + 1))
					src=$T/$side-src.out dst=$T/$side-dst.out
					case $side in
					microvm)
						qemu-system-x86_64 -M microvm,rtc=on -accel kvm -cpu host -smp 1 -m $m \
							-nodefaults -no-user-config -display none -no-reboot \
							-kernel "$LAB_INNER_KERNEL" -initrd "$LAB_INNER_INITRD" -append "$cmd" \
							-serial "file:$dst.serial" -monitor none \
							-incoming "tcp:127.0.0.1:$port" </dev/null >"$dst" 2>&1 &
						tpid=$!
						wait_listen $port 120 $tpid "$dst"
						q_boot $m "$cmd" "$src"
						wait_line "$src.serial" 'tick 5' 900 $qpid
						qmon "migrate_set_parameter downtime-limit 300"
						qmon "migrate_set_capability auto-converge on"
						qmon "migrate -d tcp:127.0.0.1:$port"
						qmon_wait_mig "$src" 900 $qpid
						total=$(q_total "$src")
						down=$(tr -d '\r' <"$src" | grep -v expected |
							sed -n 's/.*downtime: *\([0-9]*\) ms.*/\1/p' | tail -1)
						# The target's guest runs on.  In the lab it now and
						# then does not (QEMU's target alive and silent, its
						# guest printing nothing for 60 s after a migration
						# its source called completed): that run's figures
						# are left out, and counted as stuck.
						if ! (wait_line "$dst.serial" "tick" 60 $tpid); then
							tr -d '\r' <"$dst" | tail -n 20 | sed 's/^/  QEMU target: /'
							echo "microvm: $m MiB $kind migration, run $i: the target's guest never ran (source: total $total ms, downtime $down ms): left out"
							lab_data "side=$side run=$i mig$m${kind}_stuck=1"
							total=stuck
						fi
						qmon quit
						exec 3>&-
						wait $qpid
						kill $tpid; wait $tpid ;;
					vireo)
						v_boot $m "$cmd" "$dst" --incoming "tcp:127.0.0.1:$port" --verbose
						tpid=$vpid
						wait_listen $port 120 $tpid "$dst"
						v_boot $m "$cmd" "$src" --sandbox=off --api-socket "$T/api.sock"
						spid=$vpid
						wait_line "$src" 'tick 5' 900 $spid
						api "$T/api.sock" PUT "{\"uri\": \"tcp:127.0.0.1:$port\", \"downtime_ms\": 300}" /migrate >/dev/null
						wait $spid || { tail -n 20 "$src"; lab_fail "vireo-vmm's migration source ended with status $?"; }
						line=$(tr -d '\r' <"$src" | grep 'migrated to' | tail -1)
						down=$(echo "$line" | sed -n 's/.*downtime \([0-9]*\) ms.*/\1/p')
						total=$(echo "$line" | sed -n 's/.*, \([0-9]*\) ms in all.*/\1/p')
						wait_line "$dst" "tick" 60 $tpid
						# where its downtime went (the source's split)
						tr -d '\r' <"$src" | grep "vCPUs run" | sed 's/^.*migration: /vireo: /'
						# and the target's start-up steps (--verbose), once
						[ $i = 1 ] && tr -d '\r' <"$dst" | grep 'start-up:' | sed 's/^.*start-up: /vireo target: /'
						kill $tpid; wait $tpid ;;
					esac
					[ "$total" = stuck ] && continue
					[ -n "$total" ] && [ -n "$down" ] ||
						lab_fail "$side: no total time or downtime reported for a $m MiB $kind migration"
					echo "$side: $m MiB $kind migration: total $total ms, downtime $down ms"
					lab_data "side=$side run=$i mig$m${kind}_total=$total mig$m${kind}_down=$down"
				done
				i=$((i + 1))
			done
		done
	done
fi
