/*
 * Host-side unpacking of a bzImage's compressed kernel.
 *
 * A bzImage carries the kernel proper (an ELF vmlinux followed by its table
 * of KASLR relocations) compressed, plus a small decompressor that runs in
 * the guest first: it decompresses, moves the ELF segments to their places,
 * picks random physical and virtual offsets (KASLR) and applies the
 * relocations, then jumps to the kernel's 64-bit entry. Under emulation or
 * nested paging that is hundreds of milliseconds of guest time. vireo-vmm
 * can do the same work before the guest starts (LZ4 blocks in parallel,
 * straight into guest RAM) and enter the kernel proper directly through the
 * 64-bit boot protocol, with KASLR chosen here.
 *
 * Pure functions over memory buffers, so tests/unit and the fuzz target can
 * drive them; boot.c maps the payload and the guest RAM.
 */
#ifndef VIREO_VMM_X86_KUNPACK_H
#define VIREO_VMM_X86_KUNPACK_H

#include <stddef.h>
#include <stdint.h>

enum kunpack_fmt {
	KUNPACK_UNKNOWN = 0,
	KUNPACK_LZ4,      /* LZ4 "legacy" frames: independent 8 MiB blocks */
	KUNPACK_ZSTD,
	KUNPACK_GZIP,
	KUNPACK_XZ,
};

/* The x86-64 kernel's virtual base (__START_KERNEL_map). */
#define KUNPACK_KERNEL_MAP  0xffffffff80000000ULL
/* Room for the kernel's virtual image with KASLR (KERNEL_IMAGE_SIZE). */
#define KUNPACK_IMAGE_SPACE 0x40000000ULL
#define KUNPACK_MAX_SEGS    16

enum kunpack_fmt kunpack_format(const uint8_t *payload, size_t len);
const char *kunpack_fmt_name(enum kunpack_fmt fmt);

/* The decompressed size the payload's 4-byte trailer announces (the kernel's
 * build appends it), or 0 if len < 8. */
uint64_t kunpack_out_len(const uint8_t *payload, size_t len);

/* Decompress payload (len bytes, trailer included) into out[0..outsize).
 * prefix: decode only the first outsize bytes (e.g. the ELF headers);
 * otherwise the whole stream, which must decode to exactly outsize bytes
 * (what the trailer says). threads: at most that many threads for LZ4's
 * blocks. Returns the bytes written, -ENOTSUP for an unknown format,
 * -EINVAL (msg says why) for corrupt data. */
int64_t kunpack_decompress(const uint8_t *payload, size_t len, uint8_t *out,
			   size_t outsize, int prefix, unsigned threads,
			   char *msg, size_t msglen);

struct kunpack_seg {
	uint64_t off;      /* where the segment's bytes are in the stream */
	uint64_t dst;      /* where they go, from the load address */
	uint64_t filesz;
};

/* Where things go, from the ELF headers at the start of the stream. The
 * stream is decompressed to load - head, so the first segment lands in
 * place and the others move down. */
struct kunpack_plan {
	uint64_t out_len;      /* decompressed bytes */
	uint64_t load;         /* the address the kernel is linked for (LOAD_PHYSICAL_ADDR) */
	uint64_t head;         /* stream bytes below the load address */
	uint64_t span;         /* bytes needed from load - head */
	uint64_t entry_off;    /* entry point, from the load address */
	uint64_t image_end;    /* end of the segments in memory, from the load address */
	uint64_t data_end;     /* end of their file data (what relocations may touch) */
	uint64_t elf_end;      /* end of the ELF file in the stream (relocations follow) */
	int has_relocs;        /* a relocation table follows the ELF file */
	unsigned nseg;
	struct kunpack_seg seg[KUNPACK_MAX_SEGS];
};

/* Plan from the stream's first headlen bytes (ELF header and program
 * headers within them). init_size: the bzImage's init_size (memory the
 * kernel needs from its load address). Returns 0, or -ENOTSUP (msg says
 * why) for a layout this unpacker does not handle: boot.c then leaves the
 * job to the bzImage's own decompressor. */
int kunpack_plan(const uint8_t *head, size_t headlen, uint64_t out_len,
		 uint64_t load, uint64_t init_size, struct kunpack_plan *pl,
		 char *msg, size_t msglen);

/* With the whole stream at base (base[0..pl->span) writable; the kernel
 * then starts at base + pl->head): move the segments into place and apply
 * the relocations for a virtual offset of delta bytes from the linked
 * address (0: none). Returns the number of relocations applied, or
 * -EINVAL (msg says why) for a bad table. */
long kunpack_place(uint8_t *base, const struct kunpack_plan *pl, uint64_t delta,
		   char *msg, size_t msglen);

#endif
