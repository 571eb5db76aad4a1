#!/usr/bin/env bash
# Build one flavour into build/<flavour>:
#   release  -O2, no sanitizers (what users and the lab run)
#   debug    -O0 -g
#   asan     AddressSanitizer + UndefinedBehaviorSanitizer, with tests (the test build)
#   tsan     ThreadSanitizer (clang): only the concurrency harness (suite stress)
#   fuzz     clang + libFuzzer targets (with ASan/UBSan)
# Warnings are errors when CI=true or WERROR=1.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
flavour=${1:-release}
dir="$top/build/$flavour"
werror=false
[ "${CI:-}" = "true" ] || [ "${WERROR:-0}" = "1" ] && werror=true
opts=(-Dwerror=$werror)
case "$flavour" in
release) opts+=(-Doptimization=2 -Ddebug=false -Db_ndebug=true -Dtests=disabled) ;;
debug)   opts+=(--buildtype=debug) ;;
asan)    opts+=(--buildtype=debug -Doptimization=1 -Db_sanitize=address,undefined -Db_lundef=false) ;;
tsan)    export CC=clang   # gcc refuses atomic_thread_fence under -fsanitize=thread
         opts+=(--buildtype=debug -Doptimization=1 -Db_sanitize=thread -Db_lundef=false) ;;
fuzz)    export CC=clang
         opts+=(--buildtype=debug -Doptimization=1 -Dfuzzing=true -Dc_args=-fsanitize=fuzzer-no-link -Db_sanitize=address,undefined -Db_lundef=false -Dtests=disabled) ;;
*) echo "build.sh: unknown flavour '$flavour' (release, debug, asan, tsan, fuzz)" >&2; exit 2 ;;
esac
if [ -f "$dir/build.ninja" ]; then
	meson configure "$dir" "${opts[@]}" >/dev/null
else
	meson setup "$dir" "$top" "${opts[@]}" >/dev/null
fi
targets=()
[ "$flavour" = tsan ] && targets=(tests/stress/stress-pci)
ninja -C "$dir" ${NINJA_ARGS:-} "${targets[@]}" >/dev/null || ninja -C "$dir" "${targets[@]}"
