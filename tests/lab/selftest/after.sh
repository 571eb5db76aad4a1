# lab-timeout: 20
# Harness self-test (tests/lab/stall-retry-test.sh): runs after stall-once.
. "$LAB_SCENARIOS/lib.sh"
echo "after scenario ran"
