# lab-timeout: 200
# Harness self-test (tests/lab/stall-retry-test.sh): silences the outer VM
# altogether if 'first' ran in this outer VM (the first outer VM of the
# run), not in a new one: every process but init and this one is stopped,
# the heartbeat included, so nothing reaches the host until its silence
# limit, long before this scenario's own bound.
. "$LAB_SCENARIOS/lib.sh"
if [ ! -d /tmp/lab/first ]; then
	echo "silent-once: not silencing this outer VM"
	exit 0
fi
echo "silent-once: stopping every process"
kill -STOP -1
sleep 1000
