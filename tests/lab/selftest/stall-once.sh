# lab-timeout: 5
# Harness self-test (tests/lab/stall-retry-test.sh): stalls the outer VM's
# batch if 'first' ran in this outer VM (the first outer VM of the run), not
# in a new one. It stops its own `timeout` parent, so no LAB-END ever comes:
# to the host that is an outer VM that stalled.
. "$LAB_SCENARIOS/lib.sh"
if [ ! -d /tmp/lab/first ]; then
	echo "stall-once: not stalling in this outer VM"
	exit 0
fi
echo "stall-once: stalling"
kill -STOP "$PPID"
sleep 1000
