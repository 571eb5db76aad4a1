# vireo-vmm unpacks the fixture's bzImage itself (--unpack host, the
# default) and the kernel runs where vireo-vmm put it: the guest's own view
# (_text in /proc/kallsyms, "Kernel code" in /proc/iomem; inner scenario
# kaslr) matches the physical address and KASLR virtual offset vireo-vmm
# reports, two boots land in different places, "nokaslr" gives the linked
# addresses, and --unpack guest (the bzImage's own decompressor) still boots.
# lab-timeout: 240
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm
LINKED_TEXT=ffffffff81000000

# boot_where NAME CMDLINE-EXTRA VMM-ARGS: boot with the kaslr inner scenario;
# sets text, phys (the guest's) and vphys, voff (vireo-vmm's report, if any).
boot_where() {
	LAB_VMM_ARGS="--verbose $3"
	lab_boot vireo "$LAB_INNER_CMDLINE $2 vireo.run=kaslr" 120 >/dev/null ||
		{ tail -n 20 "$LAB_TMP/vireo.out"; lab_fail "$1: no VIREO-BOOT-OK"; }
	tr -d '\r' <"$LAB_TMP/vireo.out" >"$LAB_TMP/$1.out"
	line=$(grep -m1 '^kaslr: ' "$LAB_TMP/$1.out") || lab_fail "$1: no kaslr line from the guest"
	case "$line" in *' ok') ;; *) lab_fail "$1: $line" ;; esac
	text=$(echo "$line" | sed -n 's/.*text=\([0-9a-f]*\).*/\1/p')
	phys=$(echo "$line" | sed -n 's/.*phys=\([0-9a-f]*\).*/\1/p')
	rep=$(grep -m1 'kernel: .* payload unpacked in' "$LAB_TMP/$1.out" || true)
	vphys=$(echo "$rep" | sed -n 's/.* at 0x\([0-9a-f]*\),.*/\1/p')
	voff=$(echo "$rep" | sed -n 's/.*virtual offset 0x\([0-9a-f]*\),.*/\1/p')
	echo "$1: guest text=$text phys=$phys; vireo-vmm: ${rep:-no unpack report}"
}

# The guest's addresses against vireo-vmm's report.
check_report() {
	[ -n "$vphys" ] && [ -n "$voff" ] || lab_fail "$1: vireo-vmm did not report unpacking the kernel"
	want_text=$(printf '%016x' $((0x$LINKED_TEXT + 0x$voff)))
	[ "$text" = "$want_text" ] ||
		lab_fail "$1: the guest's _text is $text, vireo-vmm's offset 0x$voff means $want_text"
	[ $((0x$phys)) -eq $((0x$vphys)) ] ||
		lab_fail "$1: the guest's kernel code starts at 0x$phys, vireo-vmm put it at 0x$vphys"
}

boot_where first "" ""
check_report first
t1=$text p1=$phys
boot_where second "" ""
check_report second
[ "$text/$phys" != "$t1/$p1" ] ||
	lab_fail "two boots put the kernel at the same place ($text, $phys): no randomization"

boot_where nokaslr nokaslr ""
check_report nokaslr
[ "$text" = "$LINKED_TEXT" ] || lab_fail "nokaslr: _text is $text, not the linked $LINKED_TEXT"
[ "$voff" = 0 ] || lab_fail "nokaslr: vireo-vmm chose a virtual offset 0x$voff"
[ $((0x$phys)) -eq $((0x1000000)) ] || lab_fail "nokaslr: kernel code at 0x$phys, not 0x1000000"

boot_where guest "" "--unpack guest"
[ -z "$vphys" ] || lab_fail "--unpack guest: vireo-vmm still unpacked the kernel"
echo "vmm-kaslr: ok"
