/* Host-side bzImage payload unpacking (vmm/x86/kunpack.c) on arbitrary
 * bytes: the payload decoders (LZ4 legacy blocks, zstd, gzip, xz) with the
 * trailer's size, and the input taken as a decompressed kernel stream (ELF
 * program headers, segment moves, KASLR relocation table). Never a crash,
 * never a read or write outside the buffers (ASan). The first byte picks
 * the load address, init size and virtual offset. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x86/kunpack.h"

#define FUZZ_MAX_OUT (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t loads[4] = { 0x1000000, 0x100000, 0x200000, 0x40000000 };
	uint8_t head[4096], sel;
	struct kunpack_plan pl;
	char msg[160];
	uint64_t out_len, load, init_size, delta;
	const uint8_t *p;
	size_t len;

	if (size < 2)
		return 0;
	sel = data[0];
	p = data + 1;
	len = size - 1;
	load = loads[sel & 3];
	init_size = (uint64_t)((sel >> 2) & 7) << 20;
	delta = (uint64_t)(sel >> 5) * 0x200000;

	/* 1. As a compressed payload. */
	if (kunpack_format(p, len) != KUNPACK_UNKNOWN) {
		kunpack_decompress(p, len, head, sizeof(head), 1, 1, msg, sizeof(msg));
		out_len = kunpack_out_len(p, len);
		if (out_len && out_len <= FUZZ_MAX_OUT) {
			uint8_t *out = malloc(out_len);
			if (!out)
				abort();
			kunpack_decompress(p, len, out, out_len, 0, 1 + (sel & 1), msg, sizeof(msg));
			free(out);
		}
	}

	/* 2. As a decompressed stream (ELF + relocations). */
	if (kunpack_plan(p, len < 4096 ? len : 4096, len, load, init_size, &pl, msg,
			 sizeof(msg)) == 0 && pl.span <= FUZZ_MAX_OUT) {
		uint8_t *buf = malloc(pl.span);
		if (!buf)
			abort();
		memset(buf, 0, pl.span);
		memcpy(buf, p, len);
		kunpack_place(buf, &pl, delta, msg, sizeof(msg));
		free(buf);
	}
	return 0;
}
