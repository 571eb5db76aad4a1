# lab-timeout: 20
# Harness self-test (tests/lab/stall-retry-test.sh): runs before stall-once.
. "$LAB_SCENARIOS/lib.sh"
echo "first scenario ran"
