/* Host-side unpacking of a bzImage payload (vmm/x86/kunpack.c): a synthetic
 * kernel stream (ELF64 with vmlinux's layout quirks + a KASLR relocation
 * table) compressed in each format the kernel's build uses. */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <sys/mman.h>
#include <unistd.h>

#include "layout.h"
#include "memory.h"
#include "x86/boot.h"
#include "x86/kunpack.h"

#define LOAD      0x1000000ULL
#define VBASE     (KUNPACK_KERNEL_MAP + LOAD)   /* linked virtual address of offset 0 */
#define HEAD      0x200000ULL                    /* stream bytes below the kernel */

/* Segments: {stream offset, offset from LOAD, file size}. Like vmlinux, the
 * third (per-CPU-like) one sits further into the file than its place in
 * memory, so it and the fourth must move down. */
static const struct kunpack_seg segs[4] = {
	{ 0x200000, 0x000000, 0x180000 },
	{ 0x400000, 0x200000, 0x040000 },
	{ 0x600000, 0x240000, 0x010000 },
	{ 0x620000, 0x260000, 0x7e0000 },   /* ends at 0xa40000 from LOAD */
};
#define IMAGE_END 0xa40000ULL
#define ELF_END   (0x620000ULL + 0x7e0000ULL)

/* Offsets (from LOAD) of relocated values. */
#define R64_AT  0x001008ULL
#define R32_AT  0x200010ULL
#define RINV_AT 0x9f0000ULL
#define R64_VAL 0xffffffff81234560ULL
#define R32_VAL 0x81000abcU
#define RINV_VAL 0x01000000U

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Byte at stream offset o (segment contents are a pattern of their index). */
static uint8_t pattern(unsigned seg, uint64_t i) { return (uint8_t)(seg * 37 + i * 7 + (i >> 9)); }

/* Build the stream; *len gets its length. nrel: relocation entries per set. */
static uint8_t *make_stream(size_t *len, int with_relocs, uint32_t bad_reloc)
{
	size_t n = ELF_END + (with_relocs ? 6 * 4 : 0);
	uint8_t *s = calloc(1, n);
	Elf64_Ehdr *e = (Elf64_Ehdr *)s;
	uint8_t *r;

	assert_non_null(s);
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_entry = LOAD + 0x40;
	e->e_phoff = sizeof(*e);
	e->e_phentsize = sizeof(Elf64_Phdr);
	e->e_phnum = 5;
	for (unsigned i = 0; i < 4; i++) {
		Elf64_Phdr *ph = (Elf64_Phdr *)(s + e->e_phoff) + i;
		ph->p_type = PT_LOAD;
		ph->p_offset = segs[i].off;
		ph->p_paddr = LOAD + segs[i].dst;
		ph->p_vaddr = i == 2 ? 0 : VBASE + segs[i].dst;
		ph->p_filesz = segs[i].filesz;
		ph->p_memsz = segs[i].filesz;
		for (uint64_t j = 0; j < segs[i].filesz; j++)
			s[segs[i].off + j] = pattern(i, j);
	}
	((Elf64_Phdr *)(s + e->e_phoff))[4].p_type = PT_NOTE;
	/* The values the relocations adjust (in segments 0, 1 and 3). */
	put64(s + segs[0].off + R64_AT, R64_VAL);
	put32(s + segs[1].off + (R32_AT - segs[1].dst), R32_VAL);
	put32(s + segs[3].off + (RINV_AT - segs[3].dst), RINV_VAL);
	if (with_relocs) {
		/* From the end: 32-bit, 0, inverse 32-bit, 0, 64-bit, 0. */
		r = s + n - 4;
		put32(r, bad_reloc ? bad_reloc : (uint32_t)(VBASE + R32_AT)); r -= 4;
		put32(r, 0); r -= 4;
		put32(r, (uint32_t)(VBASE + RINV_AT)); r -= 4;
		put32(r, 0); r -= 4;
		put32(r, (uint32_t)(VBASE + R64_AT)); r -= 4;
		put32(r, 0);
	}
	*len = n;
	return s;
}

/* Compress: payload = compressed stream + 4-byte size (as the kernel's
 * build appends it; gzip's own trailer already is that). */
static uint8_t *compress_lz4(const uint8_t *in, size_t n, size_t *plen)
{
	const size_t blk = 8u << 20;
	size_t cap = 8 + (n / blk + 1) * (4 + (size_t)LZ4_compressBound((int)blk));
	uint8_t *p = malloc(cap), *w = p;

	assert_non_null(p);
	put32(w, 0x184c2102); w += 4;
	for (size_t at = 0; at < n; at += blk) {
		size_t chunk = n - at < blk ? n - at : blk;
		int c = LZ4_compress_default((const char *)in + at, (char *)w + 4, (int)chunk,
					     LZ4_compressBound((int)blk));
		assert_true(c > 0);
		put32(w, (uint32_t)c);
		w += 4 + c;
	}
	put32(w, (uint32_t)n); w += 4;
	*plen = (size_t)(w - p);
	return p;
}

static uint8_t *compress_zstd(const uint8_t *in, size_t n, size_t *plen)
{
	size_t cap = ZSTD_compressBound(n) + 4, c;
	uint8_t *p = malloc(cap);

	assert_non_null(p);
	c = ZSTD_compress(p, cap, in, n, 3);
	assert_false(ZSTD_isError(c));
	put32(p + c, (uint32_t)n);
	*plen = c + 4;
	return p;
}

static uint8_t *compress_gzip(const uint8_t *in, size_t n, size_t *plen)
{
	z_stream z;
	size_t cap = n + n / 100 + 1024;
	uint8_t *p = malloc(cap);

	assert_non_null(p);
	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = p;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*plen = z.total_out;
	deflateEnd(&z);
	return p;
}

static uint8_t *compress_xz(const uint8_t *in, size_t n, size_t *plen)
{
	size_t cap = lzma_stream_buffer_bound(n) + 4, pos = 0;
	uint8_t *p = malloc(cap);

	assert_non_null(p);
	assert_int_equal(lzma_easy_buffer_encode(1, LZMA_CHECK_CRC32, NULL, in, n, p, &pos, cap),
			 LZMA_OK);
	put32(p + pos, (uint32_t)n);
	*plen = pos + 4;
	return p;
}

static void roundtrip(uint8_t *(*compress)(const uint8_t *, size_t, size_t *),
		      enum kunpack_fmt fmt, size_t extra_zeros)
{
	size_t n, plen;
	uint8_t *s = make_stream(&n, 1, 0), *p, *out, head[4096];
	char msg[160];

	if (extra_zeros) {
		/* Longer than two LZ4 blocks: the relocation table moves to the
		 * end, past zeros (a bss-like tail in the file). */
		size_t m = n + extra_zeros;
		uint8_t *t = calloc(1, m);
		assert_non_null(t);
		memcpy(t, s, ELF_END);
		memcpy(t + m - 24, s + ELF_END, 24);
		free(s);
		s = t;
		n = m;
	}
	p = compress(s, n, &plen);
	assert_int_equal(kunpack_format(p, plen), fmt);
	assert_int_equal(kunpack_out_len(p, plen), n);
	assert_int_equal(kunpack_decompress(p, plen, head, sizeof(head), 1, 1, msg, sizeof(msg)),
			 sizeof(head));
	assert_memory_equal(head, s, sizeof(head));
	out = malloc(n);
	assert_non_null(out);
	for (unsigned threads = 1; threads <= 3; threads++) {
		memset(out, 0xee, n);
		assert_int_equal(kunpack_decompress(p, plen, out, n, 0, threads, msg, sizeof(msg)), n);
		assert_memory_equal(out, s, n);
	}
	/* Truncated: the stream no longer decodes to what the trailer says. */
	{
		size_t cut = plen / 2;
		uint8_t *q = malloc(cut);
		assert_non_null(q);
		memcpy(q, p, cut - 4);
		put32(q + cut - 4, (uint32_t)n);
		assert_true(kunpack_decompress(q, cut, out, n, 0, 2, msg, sizeof(msg)) < 0);
		free(q);
	}
	free(out);
	free(p);
	free(s);
}

static void test_lz4(void **state) { roundtrip(compress_lz4, KUNPACK_LZ4, 0); }
static void test_lz4_blocks(void **state) { roundtrip(compress_lz4, KUNPACK_LZ4, 20u << 20); }
static void test_zstd(void **state) { roundtrip(compress_zstd, KUNPACK_ZSTD, 0); }
static void test_gzip(void **state) { roundtrip(compress_gzip, KUNPACK_GZIP, 0); }
static void test_xz(void **state) { roundtrip(compress_xz, KUNPACK_XZ, 0); }

static void test_unknown(void **state)
{
	uint8_t junk[64] = { 'B', 'Z', 'h' };
	uint8_t out[16];
	char msg[160];

	assert_int_equal(kunpack_format(junk, sizeof(junk)), KUNPACK_UNKNOWN);
	assert_int_equal(kunpack_decompress(junk, sizeof(junk), out, sizeof(out), 1, 1,
					    msg, sizeof(msg)), -ENOTSUP);
}

static void test_lz4_bad_block_length(void **state)
{
	size_t n, plen;
	uint8_t *s = make_stream(&n, 1, 0), *p = compress_lz4(s, n, &plen), *out = malloc(n);
	char msg[160];

	assert_non_null(out);
	put32(p + 4, 0x7fffffff);       /* first block claims more than there is */
	assert_int_equal(kunpack_decompress(p, plen, out, n, 0, 2, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "bad length"));
	free(out);
	free(p);
	free(s);
}

/* Plan and place: segments end up at their addresses, the relocations are
 * applied for the delta, nothing else changes. */
static void place(uint64_t delta)
{
	size_t n;
	uint8_t *s = make_stream(&n, 1, 0), *buf;
	struct kunpack_plan pl;
	char msg[160];
	uint8_t *img;

	assert_int_equal(kunpack_plan(s, 4096, n, LOAD, 0xd00000, &pl, msg, sizeof(msg)), 0);
	assert_int_equal(pl.nseg, 4);
	assert_int_equal(pl.head, HEAD);
	assert_int_equal(pl.entry_off, 0x40);
	assert_int_equal(pl.image_end, IMAGE_END);
	assert_int_equal(pl.elf_end, ELF_END);
	assert_true(pl.has_relocs);
	assert_int_equal(pl.span, HEAD + 0xd00000);   /* init_size is the largest need */
	buf = calloc(1, pl.span);
	assert_non_null(buf);
	memcpy(buf, s, n);
	assert_int_equal(kunpack_place(buf, &pl, delta, msg, sizeof(msg)), delta ? 3 : 0);
	img = buf + pl.head;
	for (unsigned i = 0; i < 4; i++) {
		for (uint64_t j = 0; j < segs[i].filesz; j += 61) {
			uint64_t at = segs[i].dst + j;
			if (at >= R64_AT && at < R64_AT + 8)
				continue;
			if ((at >= R32_AT && at < R32_AT + 4) || (at >= RINV_AT && at < RINV_AT + 4))
				continue;
			assert_int_equal(img[at], pattern(i, j));
		}
	}
	assert_int_equal(get64(img + R64_AT), R64_VAL + delta);
	assert_int_equal(get32(img + R32_AT), (uint32_t)(R32_VAL + delta));
	assert_int_equal(get32(img + RINV_AT), (uint32_t)(RINV_VAL - delta));
	free(buf);
	free(s);
}

static void test_place_no_kaslr(void **state) { place(0); }
static void test_place_kaslr(void **state) { place(0x12600000); }

static void test_bad_relocation(void **state)
{
	size_t n;
	/* Points below the kernel's linked address. */
	uint8_t *s = make_stream(&n, 1, (uint32_t)(VBASE - 0x1000)), *buf;
	struct kunpack_plan pl;
	char msg[160];

	assert_int_equal(kunpack_plan(s, 4096, n, LOAD, 0xc00000, &pl, msg, sizeof(msg)), 0);
	buf = calloc(1, pl.span);
	assert_non_null(buf);
	memcpy(buf, s, n);
	assert_int_equal(kunpack_place(buf, &pl, 0x200000, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "outside the kernel"));
	free(buf);
	free(s);
}

static void test_no_relocs(void **state)
{
	size_t n;
	uint8_t *s = make_stream(&n, 0, 0), *buf;
	struct kunpack_plan pl;
	char msg[160];

	assert_int_equal(kunpack_plan(s, 4096, n, LOAD, 0, &pl, msg, sizeof(msg)), 0);
	assert_false(pl.has_relocs);
	assert_int_equal(pl.span, n);   /* no init_size: the stream is the largest need */
	buf = calloc(1, pl.span);
	assert_non_null(buf);
	memcpy(buf, s, n);
	assert_int_equal(kunpack_place(buf, &pl, 0, msg, sizeof(msg)), 0);
	assert_int_equal(kunpack_place(buf, &pl, 0x200000, msg, sizeof(msg)), -EINVAL);
	free(buf);
	free(s);
}

/* Layouts left to the guest's own decompressor. */
static void test_plan_refuses(void **state)
{
	size_t n;
	uint8_t *s = make_stream(&n, 1, 0);
	Elf64_Ehdr *e = (Elf64_Ehdr *)s;
	Elf64_Phdr *ph = (Elf64_Phdr *)(s + e->e_phoff);
	struct kunpack_plan pl;
	char msg[160];

	/* A segment whose bytes would have to move up. */
	ph[1].p_offset = 0x300000;
	ph[1].p_paddr = LOAD + 0x200000;
	assert_int_equal(kunpack_plan(s, 4096, n, LOAD, 0, &pl, msg, sizeof(msg)), -ENOTSUP);
	ph[1].p_offset = segs[1].off;
	/* Out of order. */
	ph[1].p_paddr = LOAD + 0x100000;
	assert_int_equal(kunpack_plan(s, 4096, n, LOAD, 0, &pl, msg, sizeof(msg)), -ENOTSUP);
	ph[1].p_paddr = LOAD + segs[1].dst;
	/* Below the load address. */
	ph[0].p_paddr = LOAD - 0x1000;
	assert_int_equal(kunpack_plan(s, 4096, n, LOAD, 0, &pl, msg, sizeof(msg)), -ENOTSUP);
	ph[0].p_paddr = LOAD;
	/* Past the end of the stream. */
	ph[3].p_filesz = n;
	assert_int_equal(kunpack_plan(s, 4096, n, LOAD, 0, &pl, msg, sizeof(msg)), -ENOTSUP);
	ph[3].p_filesz = segs[3].filesz;
	/* Entry outside the kernel. */
	e->e_entry = LOAD + 0x10000000;
	assert_int_equal(kunpack_plan(s, 4096, n, LOAD, 0, &pl, msg, sizeof(msg)), -ENOTSUP);
	e->e_entry = LOAD + 0x40;
	/* Not x86-64. */
	e->e_machine = EM_386;
	assert_int_equal(kunpack_plan(s, 4096, n, LOAD, 0, &pl, msg, sizeof(msg)), -ENOTSUP);
	e->e_machine = EM_X86_64;
	/* Headers cut short. */
	assert_int_equal(kunpack_plan(s, 100, n, LOAD, 0, &pl, msg, sizeof(msg)), -ENOTSUP);
	assert_int_equal(kunpack_plan(s, 4096, n, LOAD, 0, &pl, msg, sizeof(msg)), 0);
	free(s);
}


/* --- boot_load end to end: a synthetic bzImage carrying the stream --- */

#define RAM_SIZE (64ULL << 20)
#define INIT_SIZE 0xd00000U

/* A bzImage (boot protocol 2.15 header, one setup sector) whose payload is
 * the LZ4-compressed stream; returns a memfd path in path. */
static int make_bzimage(char *path, size_t pathlen)
{
	size_t n, plen, pm_off = 0x100, setup = 1024;
	uint8_t *s = make_stream(&n, 1, 0), *p = compress_lz4(s, n, &plen), *f;
	size_t fsize = setup + pm_off + plen;
	int fd;

	f = calloc(1, fsize);
	assert_non_null(f);
	f[0x1f1] = 1;                              /* setup_sects */
	put32(f + 0x1f4, (uint32_t)((fsize - setup + 15) / 16));
	f[0x1fe] = 0x55; f[0x1ff] = 0xaa;
	f[0x201] = 0x66;                           /* header ends at 0x268 */
	memcpy(f + 0x202, "HdrS", 4);
	f[0x206] = 0x0f; f[0x207] = 0x02;          /* 2.15 */
	put32(f + 0x22c, 0x7fffffff);              /* initrd_addr_max */
	put32(f + 0x230, 0x200000);                /* kernel_alignment */
	f[0x234] = 1;                              /* relocatable_kernel */
	f[0x236] = 1;                              /* XLF_KERNEL_64 */
	put32(f + 0x238, 2047);                    /* cmdline_size */
	put32(f + 0x248, (uint32_t)pm_off);        /* payload_offset */
	put32(f + 0x24c, (uint32_t)plen);          /* payload_length */
	put64(f + 0x258, LOAD);                    /* pref_address */
	put32(f + 0x260, INIT_SIZE);
	memcpy(f + setup + pm_off, p, plen);
	fd = memfd_create("bzimage", 0);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, f, fsize), (ssize_t)fsize);
	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	free(f);
	free(p);
	free(s);
	return fd;
}

static void boot_once(const char *cmdline, enum boot_unpack how, struct boot_entry *e,
		      uint8_t *ram)
{
	struct gmem m;
	char path[64];
	struct boot_request req = { .cmdline = cmdline, .unpack = how };
	int fd = make_bzimage(path, sizeof(path));

	assert_int_equal(memory_layout(&m, RAM_SIZE), 0);
	m.region[0].hva = ram;
	req.kernel = path;
	memset(ram, 0, RAM_SIZE);
	assert_int_equal(boot_load(&m, &req, e), 0);
	close(fd);
}

static void check_placed(const uint8_t *ram, const struct boot_entry *e)
{
	const uint8_t *img = ram + e->unpack.phys;
	uint64_t delta = e->unpack.virt_offset;

	assert_int_equal(e->mode, BOOT_MODE_LINUX64);
	assert_int_equal(e->rip, e->unpack.phys + 0x40);
	assert_int_equal(e->arg, LAYOUT_BOOT_PARAMS);
	assert_int_equal(e->unpack.phys % 0x200000, 0);
	assert_true(e->unpack.phys >= LOAD);
	assert_true(e->unpack.phys + INIT_SIZE <= RAM_SIZE);
	assert_int_equal(delta % 0x200000, 0);
	assert_true(LOAD + delta + INIT_SIZE <= KUNPACK_IMAGE_SPACE);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(img[segs[i].dst + 0x333], pattern(i, 0x333));
	assert_int_equal(get64(img + R64_AT), R64_VAL + delta);
	assert_int_equal(get32(img + R32_AT), (uint32_t)(R32_VAL + delta));
	assert_int_equal(get32(img + RINV_AT), (uint32_t)(RINV_VAL - delta));
}

static void test_boot_host(void **state)
{
	uint8_t *ram = malloc(RAM_SIZE);
	struct boot_entry e;
	uint64_t seen_phys = 0, seen_virt = 0;
	int moved = 0;

	assert_non_null(ram);
	/* Random placement: several boots, each consistent, not all alike. */
	for (int i = 0; i < 8; i++) {
		boot_once("console=ttyS0", BOOT_UNPACK_HOST, &e, ram);
		assert_true(e.unpack.on_host);
		assert_string_equal(e.unpack.format, "LZ4");
		assert_int_equal(e.unpack.relocs, e.unpack.virt_offset ? 3 : 0);
		check_placed(ram, &e);
		assert_true(ram[LAYOUT_BOOT_PARAMS + 0x211] & 0x02);   /* KASLR_FLAG */
		if (i && (e.unpack.phys != seen_phys || e.unpack.virt_offset != seen_virt))
			moved = 1;
		seen_phys = e.unpack.phys;
		seen_virt = e.unpack.virt_offset;
	}
	assert_true(moved);
	/* nokaslr: the linked addresses, no relocation, no flag. */
	boot_once("console=ttyS0 nokaslr", BOOT_UNPACK_HOST, &e, ram);
	assert_true(e.unpack.on_host);
	assert_int_equal(e.unpack.phys, LOAD);
	assert_int_equal(e.unpack.virt_offset, 0);
	assert_int_equal(e.unpack.relocs, 0);
	check_placed(ram, &e);
	assert_false(ram[LAYOUT_BOOT_PARAMS + 0x211] & 0x02);
	/* memmap=: the virtual offset may move, the physical address not. */
	for (int i = 0; i < 4; i++) {
		boot_once("memmap=1M$0x3000000", BOOT_UNPACK_HOST, &e, ram);
		assert_int_equal(e.unpack.phys, LOAD);
		check_placed(ram, &e);
	}
	/* --unpack guest: the bzImage as it is, entered at its 64-bit entry. */
	boot_once("console=ttyS0", BOOT_UNPACK_GUEST, &e, ram);
	assert_false(e.unpack.on_host);
	assert_int_equal(e.rip, LOAD + 0x200);
	assert_int_equal(get32(ram + LOAD + 0x100), 0x184c2102);   /* the payload, as loaded */
	free(ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lz4),
		cmocka_unit_test(test_lz4_blocks),
		cmocka_unit_test(test_zstd),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_xz),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_lz4_bad_block_length),
		cmocka_unit_test(test_place_no_kaslr),
		cmocka_unit_test(test_place_kaslr),
		cmocka_unit_test(test_bad_relocation),
		cmocka_unit_test(test_no_relocs),
		cmocka_unit_test(test_plan_refuses),
		cmocka_unit_test(test_boot_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
