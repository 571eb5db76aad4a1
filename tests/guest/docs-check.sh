#!/usr/bin/env bash
# Every option --help lists is described in docs/vireo-vmm.1 and vice versa.
#   docs-check.sh VMM MANPAGE
set -u
vmm=$1 man=$2
help=$("$vmm" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
page=$(sed 's/\\-/-/g' "$man" | grep -oE -- '--[a-z][a-z-]+' | sort -u)
fail=0
for o in $help; do
	grep -qx -- "$o" <<<"$page" || { echo "--help lists $o but the man page does not"; fail=1; }
done
for o in $page; do
	grep -qx -- "$o" <<<"$help" || { echo "the man page lists $o but --help does not"; fail=1; }
done
[ $fail -eq 0 ] && echo "docs: $(wc -w <<<"$help") options in both"
exit $fail
