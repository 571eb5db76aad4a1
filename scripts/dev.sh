#!/usr/bin/env bash
# The two entry points the README gives:
#   scripts/dev.sh boot   install what is missing, build, build the Debian 12
#                         guest image if needed and boot it (serial console
#                         here, ssh on 127.0.0.1:2222); --fresh: a new disk
#   scripts/dev.sh boot --tiny
#                         the busybox fixture guest to a shell instead
#   scripts/dev.sh test   install what is missing, build and run every test
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
shift || true
case "$cmd" in
boot)
	bash "$top/scripts/setup.sh"
	bash "$top/scripts/build.sh" release
	if [ "${1:-}" = --tiny ]; then
		shift
		exec bash "$top/scripts/boot.sh" "$@"
	fi
	exec bash "$top/scripts/boot-debian.sh" "$@"
	;;
test)
	bash "$top/scripts/setup.sh"
	exec bash "$top/tests/run-all.sh" "$@"
	;;
*)
	echo "usage: scripts/dev.sh boot|test" >&2
	exit 2
	;;
esac
