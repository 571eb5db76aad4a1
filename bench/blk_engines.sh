#!/usr/bin/env bash
# Build and run bench/blk_engines.c (raw backend engines against a plain
# pread/pwrite loop).  Usage: bench/blk_engines.sh [SCRATCH_FILE]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/bench
mkdir -p "$out"
cc -O2 -std=gnu11 -D_GNU_SOURCE -DVIREO_HAVE_URING=1 -I"$top/include" -I"$top/vmm/virtio" \
	"$top/bench/blk_engines.c" "$top/vmm/virtio/blk_raw.c" "$top/vmm/virtio/blk_backend.c" \
	"$top/lib/util/log.c" "$top/lib/util/vio.c" "$top/lib/util/size.c" \
	-o "$out/blk_engines" -luring -lpthread
exec "$out/blk_engines" "$@"
