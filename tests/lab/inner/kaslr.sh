# Inner scenario: where the kernel runs (baked into the fixture as
# /scenarios/kaslr.sh; run with vireo.run=kaslr). Prints one line
#   kaslr: text=VIRTUAL phys=PHYSICAL ok
# VIRTUAL is the kernel's _text (from /proc/kallsyms), PHYSICAL the start of
# "Kernel code" in /proc/iomem. The lab scenario vmm-kaslr compares them
# with what vireo-vmm says it chose.
set -e
fail() { echo "kaslr: FAIL: $*"; exit 1; }
text=$(grep -m1 ' [tT] _text$' /proc/kallsyms | cut -d' ' -f1)
[ -n "$text" ] && [ "$text" != 0000000000000000 ] || fail "no _text address in /proc/kallsyms"
phys=$(grep -m1 'Kernel code' /proc/iomem | sed 's/^ *//; s/-.*//')
[ -n "$phys" ] && [ "$phys" != 00000000 ] || fail "no 'Kernel code' in /proc/iomem"
echo "kaslr: text=$text phys=$phys ok"
