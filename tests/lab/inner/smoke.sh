# Inner scenario: the guest's basics work (baked into the fixture as
# /scenarios/smoke.sh; run with vireo.run=smoke).
set -e
fail() { echo "smoke: FAIL: $*"; exit 1; }
grep -q '^MemTotal:' /proc/meminfo || fail "no /proc/meminfo"
n=$(grep -c '^processor' /proc/cpuinfo)
[ "$n" -ge 1 ] || fail "no CPU in /proc/cpuinfo"
for m in virtio_pci virtio_blk virtio_net virtio_console; do
	grep -q "^$m " /proc/modules || fail "module $m is not loaded"
done
echo "smoke: ok: $n cpu(s), $(sed -n 's/^MemTotal: *//p' /proc/meminfo), kernel $(uname -r)"
