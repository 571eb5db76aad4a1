# lab-timeout: 20
# Harness self-test (tests/lab/stall-retry-test.sh): crashes the outer kernel
# (sysrq c) if 'first' ran in this outer VM (the first outer VM of the run),
# not in a new one.
. "$LAB_SCENARIOS/lib.sh"
if [ ! -d /tmp/lab/first ]; then
	echo "panic-once: not crashing this outer VM"
	exit 0
fi
echo "panic-once: crashing the outer kernel"
echo 1 >/proc/sys/kernel/sysrq
echo c >/proc/sysrq-trigger
sleep 100
