#!/usr/bin/env bash
# The two entry points the README gives:
#   scripts/dev.sh boot   install what is missing, build, fetch the guest
#                         fixture and boot a Linux guest to a shell
#   scripts/dev.sh test   install what is missing, build and run every test
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
shift || true
case "$cmd" in
boot)
	bash "$top/scripts/setup.sh"
	bash "$top/scripts/build.sh" release
	exec bash "$top/scripts/boot.sh" "$@"
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
