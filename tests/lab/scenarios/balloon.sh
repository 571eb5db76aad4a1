# virtio-balloon under a 1 GiB guest, vireo-vmm's RSS read in the outer VM.
# Boot 1 (free-page-reporting=on): the guest fills 900 MiB of tmpfs (less
# if its MemAvailable minus 64 MiB is less: the fixture's initramfs and the
# kernel take part of the 1 GiB, and a fill past that panics the guest out
# of memory), then deletes it; the freed pages are reported and the VMM's
# RSS must fall by at least 80% of the fill. Boot 2 (reporting off, so freed pages stay
# resident): after the same fill and delete, the target goes to 512 MiB
# (through the control API, PUT /vm/balloon on --api-socket):
# RSS must fall by at least 400 MiB and the guest's MemTotal by about 512
# MiB; back to target 0 (deflate), MemTotal comes back.
# lab-timeout: 600
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
export LAB_INNER_MEM=1024

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
wait_line() { # PATTERN SECONDS: wait for a console line
	_i=0
	until grep -q "$1" "$LAB_TMP/vireo.out" 2>/dev/null; do
		_i=$((_i + 1))
		if [ $_i -gt "$2" ] || ! kill -0 "$bp" 2>/dev/null; then
			tr -d '\r' <"$LAB_TMP/vireo.out" |
				grep -E 'balloon|BALLOON|Out of memory|Kernel panic|oom' | head -n 12
			return 1
		fi
		sleep 1
	done
}
# The process that holds guest RAM: sandboxed (the default as root), a
# vireo-vmm monitor has the VM as its child, also named vireo-vmm; the
# child is the one whose parent is a vireo-vmm too.
vmm_pid() {
	_i=0
	while [ $_i -lt 60 ]; do
		_all=$(pidof vireo-vmm 2>/dev/null)
		for _p in $_all; do
			_pp=$(awk '/^PPid:/ { print $2 }' "/proc/$_p/status" 2>/dev/null)
			case " $_all " in *" $_pp "*) echo "$_p"; return 0 ;; esac
		done
		set -- $_all
		[ $# -eq 1 ] && [ "$_i" -ge 3 ] && { echo "$1"; return 0; }
		_i=$((_i + 1)); sleep 1
	done
	return 1
}
guest_script() { # FILE MODE
	cat >"$1" <<GUEST
mem() { awk "/^\$1:/ { print \\\$2 }" /proc/meminfo; }
t0=\$(mem MemTotal)
echo "balloon-guest: MemTotal \$t0 kB MemAvailable \$(mem MemAvailable) kB"
mkdir -p /mnt/t && mount -t tmpfs -o size=960m tmpfs /mnt/t || exit 1
fill=\$((\$(mem MemAvailable) / 1024 - 64))
[ \$fill -gt 900 ] && fill=900
dd if=/dev/zero of=/mnt/t/fill bs=1048576 count=\$fill 2>/dev/null || { echo "balloon-guest: fill failed"; exit 2; }
echo "BALLOON-TOUCHED \$fill MiB MemAvailable \$(mem MemAvailable) kB"
sleep 6
rm /mnt/t/fill
echo "BALLOON-FREED"
if [ "$2" = reporting ]; then sleep 25; exit 0; fi
i=0
while [ \$i -lt 200 ]; do
	t=\$(mem MemTotal)
	[ \$((t0 - t)) -ge 520192 ] && break
	i=\$((i + 1)); sleep 1
done
echo "BALLOON-INFLATED MemTotal \$(mem MemTotal) kB MemAvailable \$(mem MemAvailable) kB"
i=0
while [ \$i -lt 200 ]; do
	t=\$(mem MemTotal)
	[ \$((t0 - t)) -le 20000 ] && break
	i=\$((i + 1)); sleep 1
done
echo "BALLOON-DEFLATED MemTotal \$(mem MemTotal) kB MemAvailable \$(mem MemAvailable) kB"
GUEST
	dd if="$1" of="$1.img" bs=4096 conv=sync 2>/dev/null
}

# ---- boot 1: free page reporting ----
guest_script "$LAB_TMP/g1.sh" reporting
export LAB_VMM_ARGS="--disk path=$LAB_TMP/g1.sh.img,format=raw --balloon=free-page-reporting=on"
( lab_boot vireo "$LAB_INNER_CMDLINE vireo.run=/dev/vda" 280 >/dev/null 2>&1 ) &
bp=$!
pid=$(vmm_pid) || lab_fail "no vireo-vmm process"
wait_line '^BALLOON-TOUCHED' 200 || lab_fail "the guest did not fill its tmpfs"
fill=$(tr -d '\r' <"$LAB_TMP/vireo.out" | sed -n 's/^BALLOON-TOUCHED \([0-9]*\) MiB.*/\1/p' | head -1)
[ -n "$fill" ] || lab_fail "the guest did not say how much it filled"
want=$((fill * 1024 * 8 / 10))
sleep 2
r1=$(rss_kb "$pid")
wait_line '^BALLOON-FREED' 30 || lab_fail "the guest did not free its 900 MiB"
best=$r1 i=0
while [ $i -lt 25 ]; do
	r=$(rss_kb "$pid")
	[ "$r" -gt 0 ] && [ "$r" -lt "$best" ] && best=$r
	[ $((r1 - best)) -ge $want ] && break
	i=$((i + 1)); sleep 1
done
wait $bp
echo "balloon: reporting: filled $fill MiB; RSS $r1 kB after the fill, $best kB after the free (fell $(((r1 - best) / 1024)) MiB)"
lab_data "fill_mib=$fill reporting_rss_fall_mib=$(((r1 - best) / 1024)) rss_full_kb=$r1 rss_freed_kb=$best"
[ $((r1 - best)) -ge $want ] ||
	lab_fail "free page reporting: RSS fell $(((r1 - best) / 1024)) MiB, want >= $((want / 1024)) (80% of $fill)"
mv "$LAB_TMP/vireo.out" "$LAB_TMP/vireo-reporting.out"

# ---- boot 2: inflate to 512 MiB and deflate ----
guest_script "$LAB_TMP/g2.sh" inflate
sock=$LAB_TMP/api.sock
# balloon_api METHOD [JSON]: the control API's /vm/balloon; prints the body.
balloon_api() {
	if [ -n "${2:-}" ]; then
		curl -sS --max-time 30 --unix-socket "$sock" -X "$1" -d "$2" http://localhost/vm/balloon
	else
		curl -sS --max-time 30 --unix-socket "$sock" -X "$1" http://localhost/vm/balloon
	fi
}
export LAB_VMM_ARGS="--verbose --disk path=$LAB_TMP/g2.sh.img,format=raw --balloon=free-page-reporting=off --api-socket $sock"
( lab_boot vireo "$LAB_INNER_CMDLINE vireo.run=/dev/vda" 400 >/dev/null 2>&1 ) &
bp=$!
pid=$(vmm_pid) || lab_fail "no vireo-vmm process (boot 2)"
wait_line '^BALLOON-FREED' 220 || lab_fail "the guest did not fill and free (boot 2)"
sleep 3
r1=$(rss_kb "$pid")
balloon_api PUT '{"target_mib": 512}' || lab_fail "PUT /vm/balloon target 512 MiB failed"
best=$r1 i=0
while [ $i -lt 150 ]; do
	r=$(rss_kb "$pid")
	[ "$r" -gt 0 ] && [ "$r" -lt "$best" ] && best=$r
	[ $((r1 - best)) -ge 409600 ] && break
	i=$((i + 1)); sleep 1
done
wait_line '^BALLOON-INFLATED' 200 || lab_fail "the guest never reported after the inflate"
r2=$(rss_kb "$pid")
[ "$r2" -gt 0 ] && [ "$r2" -lt "$best" ] && best=$r2
st=$(balloon_api GET) || lab_fail "GET /vm/balloon failed"
echo "GET /vm/balloon: $st"
case "$st" in *'"target_mib":512'* | *'"target_mib": 512'*) ;;
	*) lab_fail "GET /vm/balloon does not say target 512 MiB: $st" ;; esac
# That GET asked the guest for fresh statistics: the next one shows them.
sleep 3
st=$(balloon_api GET) || lab_fail "GET /vm/balloon failed"
echo "GET /vm/balloon: $st"
case "$st" in *'"total_memory":'[1-9]*) ;;
	*) lab_fail "GET /vm/balloon shows no guest statistics (total_memory): $st" ;; esac
balloon_api PUT '{"target_mib": 0}' || lab_fail "PUT /vm/balloon target 0 failed"
wait_line '^BALLOON-DEFLATED' 200 || lab_fail "the guest never reported after the deflate"
wait $bp
tr -d '\r' <"$LAB_TMP/vireo.out" | grep -E 'balloon|BALLOON' | head -20
gmem() { # LINE-PREFIX FIELD: a kB value from the guest's lines
	tr -d '\r' <"$LAB_TMP/vireo.out" | sed -n "s/^$1.* $2 \([0-9]*\) kB.*/\1/p" | head -1
}
t0=$(gmem balloon-guest: MemTotal) a0=$(gmem balloon-guest: MemAvailable)
t1=$(gmem BALLOON-INFLATED MemTotal) a1=$(gmem BALLOON-INFLATED MemAvailable)
t2=$(gmem BALLOON-DEFLATED MemTotal) a2=$(gmem BALLOON-DEFLATED MemAvailable)
[ -n "$t0" ] && [ -n "$t1" ] && [ -n "$t2" ] || lab_fail "the guest's MemTotal lines are missing"
echo "balloon: inflate: RSS $r1 kB before, $best kB after target 512M (fell $(((r1 - best) / 1024)) MiB)"
echo "balloon: guest MemTotal $t0 -> $t1 (inflated) -> $t2 kB (deflated); MemAvailable $a0 -> $a1 -> $a2 kB"
lab_data "inflate_rss_fall_mib=$(((r1 - best) / 1024)) rss_before_kb=$r1 rss_inflated_kb=$best"
lab_data "memtotal_kb=$t0 inflated_memtotal_kb=$t1 deflated_memtotal_kb=$t2 memavail_kb=$a0 inflated_memavail_kb=$a1 deflated_memavail_kb=$a2"
[ $((r1 - best)) -ge 409600 ] ||
	lab_fail "inflating by 512 MiB: RSS fell $(((r1 - best) / 1024)) MiB, want >= 400"
# MemTotal: 512 MiB less (4 MiB of slack for the driver's last batch),
# then back.
[ $((t0 - t1)) -ge 520192 ] ||
	lab_fail "inflating by 512 MiB: the guest's MemTotal fell only $(((t0 - t1) / 1024)) MiB"
[ $((t0 - t2)) -le 20000 ] ||
	lab_fail "after the deflate the guest's MemTotal is still $(((t0 - t2) / 1024)) MiB short"
lab_expect "$LAB_TMP/vireo.out" '^VIREO-SCENARIO-EXIT 0' "the inner script did not exit 0"
lab_expect_sandboxed "$LAB_TMP/vireo.out"
echo "balloon: ok (sandboxed, the target set through the control API)"
