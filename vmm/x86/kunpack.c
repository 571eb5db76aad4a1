/* Host-side unpacking of a bzImage's compressed kernel (see kunpack.h). */
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "kunpack.h"

#define KUNPACK_LZ4_MAGIC      0x184c2102u
#define KUNPACK_LZ4_BLOCK      (8u << 20)
#define KUNPACK_LZ4_MAX_BLOCKS 1024

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static int fail(char *msg, size_t msglen, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *msg, size_t msglen, int err, const char *fmt, ...)
{
	va_list ap;

	if (msg && msglen) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return err;
}

enum kunpack_fmt kunpack_format(const uint8_t *p, size_t len)
{
	static const uint8_t xz[6] = { 0xfd, '7', 'z', 'X', 'Z', 0 };

	if (len >= 8 && rd32(p) == KUNPACK_LZ4_MAGIC)
		return KUNPACK_LZ4;
	if (len >= 8 && rd32(p) == 0xfd2fb528u)
		return KUNPACK_ZSTD;
	if (len >= 8 && p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9e))
		return KUNPACK_GZIP;
	if (len >= 8 && !memcmp(p, xz, sizeof(xz)))
		return KUNPACK_XZ;
	return KUNPACK_UNKNOWN;
}

const char *kunpack_fmt_name(enum kunpack_fmt fmt)
{
	switch (fmt) {
	case KUNPACK_LZ4: return "LZ4";
	case KUNPACK_ZSTD: return "zstd";
	case KUNPACK_GZIP: return "gzip";
	case KUNPACK_XZ: return "xz";
	default: return "unknown";
	}
}

uint64_t kunpack_out_len(const uint8_t *p, size_t len)
{
	return len >= 8 ? rd32(p + len - 4) : 0;
}

/* --- LZ4 legacy: independent blocks, decoded by up to `threads` threads --- */

struct kunpack_lz4_job {
	const uint8_t *in[KUNPACK_LZ4_MAX_BLOCKS];
	uint32_t csize[KUNPACK_LZ4_MAX_BLOCKS];
	int produced[KUNPACK_LZ4_MAX_BLOCKS];
	unsigned nblocks;
	unsigned next;       /* next block to take (atomic) */
	uint8_t *out;
	size_t cap;
};

/* Each thread takes the next block not yet taken, until none is left; so
 * however many threads actually start, every block is decoded once. */
static void *kunpack_lz4_work(void *arg)
{
	struct kunpack_lz4_job *j = arg;
	unsigned b;

	while ((b = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->nblocks) {
		size_t at = (size_t)b * KUNPACK_LZ4_BLOCK;
		size_t room = j->cap - at;
		if (room > KUNPACK_LZ4_BLOCK)
			room = KUNPACK_LZ4_BLOCK;
		j->produced[b] = LZ4_decompress_safe((const char *)j->in[b], (char *)j->out + at,
						     (int)j->csize[b], (int)room);
	}
	return NULL;
}

static int64_t kunpack_lz4_legacy(const uint8_t *p, size_t len, uint8_t *out, size_t cap,
				  int prefix, unsigned threads, char *msg, size_t msglen)
{
	static struct kunpack_lz4_job job;   /* one kernel at a time: boot is single-threaded */
	pthread_t tid[8];
	size_t pos = 4, end = len - 4, total = 0;
	unsigned nstarted = 0;

	memset(&job, 0, sizeof(job));
	while (pos < end) {
		uint32_t cs;
		if (end - pos < 4)
			return fail(msg, msglen, -EINVAL, "LZ4 payload ends inside a block header");
		cs = rd32(p + pos);
		pos += 4;
		if (cs == KUNPACK_LZ4_MAGIC)
			continue;
		if (cs == 0 || cs > end - pos || cs > (uint32_t)LZ4_compressBound(KUNPACK_LZ4_BLOCK))
			return fail(msg, msglen, -EINVAL, "LZ4 block %u has a bad length (%u bytes)",
				    job.nblocks, cs);
		if (job.nblocks == KUNPACK_LZ4_MAX_BLOCKS)
			return fail(msg, msglen, -EINVAL, "LZ4 payload has over %u blocks",
				    KUNPACK_LZ4_MAX_BLOCKS);
		job.in[job.nblocks] = p + pos;
		job.csize[job.nblocks++] = cs;
		pos += cs;
	}
	if (!job.nblocks)
		return fail(msg, msglen, -EINVAL, "LZ4 payload has no blocks");
	if (prefix) {
		/* A prefix (the ELF headers): part of the first block only. */
		int n = LZ4_decompress_safe_partial((const char *)job.in[0], (char *)out,
						    (int)job.csize[0], (int)cap, (int)cap);
		if (n < 0)
			return fail(msg, msglen, -EINVAL, "LZ4 block 0 is corrupt");
		return n;
	}
	if ((uint64_t)(job.nblocks - 1) * KUNPACK_LZ4_BLOCK >= cap)
		return fail(msg, msglen, -EINVAL, "LZ4 payload has %u blocks, more than its %zu bytes need",
			    job.nblocks, cap);
	job.out = out;
	job.cap = cap;
	if (threads > 8)
		threads = 8;
	if (threads > job.nblocks)
		threads = job.nblocks;
	/* This thread works too; a helper that cannot start is not needed. */
	for (unsigned t = 1; t < threads; t++) {
		if (pthread_create(&tid[nstarted], NULL, kunpack_lz4_work, &job))
			break;
		nstarted++;
	}
	kunpack_lz4_work(&job);
	for (unsigned t = 0; t < nstarted; t++)
		pthread_join(tid[t], NULL);
	for (unsigned b = 0; b < job.nblocks; b++) {
		size_t room = cap - (size_t)b * KUNPACK_LZ4_BLOCK;
		size_t expect = room < KUNPACK_LZ4_BLOCK ? room : KUNPACK_LZ4_BLOCK;
		if (job.produced[b] < 0)
			return fail(msg, msglen, -EINVAL, "LZ4 block %u is corrupt", b);
		if (b + 1 < job.nblocks && (size_t)job.produced[b] != KUNPACK_LZ4_BLOCK)
			return fail(msg, msglen, -EINVAL, "LZ4 block %u decodes to %d bytes, not 8 MiB",
				    b, job.produced[b]);
		if (b + 1 == job.nblocks && (size_t)job.produced[b] != expect)
			return fail(msg, msglen, -EINVAL,
				    "LZ4 payload decodes to %zu bytes, its trailer says %zu",
				    (size_t)b * KUNPACK_LZ4_BLOCK + (size_t)job.produced[b], cap);
		total += (size_t)job.produced[b];
	}
	return (int64_t)total;
}

/* --- streaming formats --------------------------------------------------- */

static int64_t kunpack_zstd_stream(const uint8_t *p, size_t len, uint8_t *out, size_t lim,
				   char *msg, size_t msglen)
{
	ZSTD_DStream *z = ZSTD_createDStream();
	ZSTD_inBuffer in = { p, len, 0 };
	ZSTD_outBuffer ob = { out, lim, 0 };
	int64_t ret;

	if (!z)
		return -ENOMEM;
	for (;;) {
		size_t r = ZSTD_decompressStream(z, &ob, &in);
		if (ZSTD_isError(r)) {
			ret = fail(msg, msglen, -EINVAL, "zstd payload is corrupt: %s",
				   ZSTD_getErrorName(r));
			break;
		}
		if (r == 0 || ob.pos == ob.size || in.pos == in.size) {
			ret = (int64_t)ob.pos;
			break;
		}
	}
	ZSTD_freeDStream(z);
	return ret;
}

static int64_t kunpack_gzip_stream(const uint8_t *p, size_t len, uint8_t *out, size_t lim,
				   char *msg, size_t msglen)
{
	z_stream zs;
	int64_t ret;
	int r;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)(uintptr_t)p;
	zs.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
	zs.next_out = out;
	zs.avail_out = (uInt)(lim > UINT32_MAX ? UINT32_MAX : lim);
	r = inflate(&zs, Z_FINISH);
	if (r == Z_STREAM_END || ((r == Z_BUF_ERROR || r == Z_OK) && zs.avail_out == 0))
		ret = (int64_t)zs.total_out;
	else
		ret = fail(msg, msglen, -EINVAL, "gzip payload is corrupt (%s)",
			   zs.msg ? zs.msg : "truncated");
	inflateEnd(&zs);
	return ret;
}

static int64_t kunpack_xz_stream(const uint8_t *p, size_t len, uint8_t *out, size_t lim,
				 char *msg, size_t msglen)
{
	lzma_stream xs = LZMA_STREAM_INIT;
	int64_t ret;
	lzma_ret r;

	if (lzma_stream_decoder(&xs, UINT64_MAX, 0) != LZMA_OK)
		return -ENOMEM;
	xs.next_in = p;
	xs.avail_in = len;
	xs.next_out = out;
	xs.avail_out = lim;
	r = lzma_code(&xs, LZMA_FINISH);
	if (r == LZMA_STREAM_END || (r == LZMA_OK && xs.avail_out == 0) ||
	    (r == LZMA_BUF_ERROR && xs.avail_out == 0))
		ret = (int64_t)xs.total_out;
	else
		ret = fail(msg, msglen, -EINVAL, "xz payload is corrupt (liblzma error %d)", (int)r);
	lzma_end(&xs);
	return ret;
}

int64_t kunpack_decompress(const uint8_t *p, size_t len, uint8_t *out, size_t outsize,
			   int prefix, unsigned threads, char *msg, size_t msglen)
{
	enum kunpack_fmt fmt = kunpack_format(p, len);
	int64_t n;

	switch (fmt) {
	case KUNPACK_LZ4:
		return kunpack_lz4_legacy(p, len, out, outsize, prefix, threads, msg, msglen);
	case KUNPACK_ZSTD:
		n = kunpack_zstd_stream(p, len - 4, out, outsize, msg, msglen);
		break;
	case KUNPACK_GZIP:
		n = kunpack_gzip_stream(p, len, out, outsize, msg, msglen);
		break;
	case KUNPACK_XZ:
		n = kunpack_xz_stream(p, len - 4, out, outsize, msg, msglen);
		break;
	default:
		return fail(msg, msglen, -ENOTSUP, "unknown compression");
	}
	if (n >= 0 && !prefix && (size_t)n != outsize)
		return fail(msg, msglen, -EINVAL, "%s payload decodes to %lld bytes, its trailer says %zu",
			    kunpack_fmt_name(fmt), (long long)n, outsize);
	return n;
}

/* --- layout ---------------------------------------------------------------- */

int kunpack_plan(const uint8_t *h, size_t hl, uint64_t out_len, uint64_t load,
		 uint64_t init_size, struct kunpack_plan *pl, char *msg, size_t msglen)
{
	Elf64_Ehdr eh, *e = &eh;   /* copied: h need not be aligned */
	uint64_t end = 0, lo_dst = UINT64_MAX;
	uint64_t shend;

	memset(pl, 0, sizeof(*pl));
	if (hl < sizeof(eh))
		return fail(msg, msglen, -ENOTSUP, "the payload is not an x86-64 ELF kernel");
	memcpy(&eh, h, sizeof(eh));
	if (memcmp(h, ELFMAG, SELFMAG) || h[EI_CLASS] != ELFCLASS64 ||
	    h[EI_DATA] != ELFDATA2LSB || e->e_machine != EM_X86_64)
		return fail(msg, msglen, -ENOTSUP, "the payload is not an x86-64 ELF kernel");
	if (e->e_phentsize != sizeof(Elf64_Phdr) || e->e_phnum == 0 ||
	    e->e_phoff > hl || (uint64_t)e->e_phnum * sizeof(Elf64_Phdr) > hl - e->e_phoff)
		return fail(msg, msglen, -ENOTSUP, "the kernel's ELF program headers are not where expected");
	if (load < (1u << 20) || load >= (1ULL << 32) || init_size > (1ULL << 31))
		return fail(msg, msglen, -ENOTSUP, "load address 0x%llx or init size unusable",
			    (unsigned long long)load);
	for (unsigned i = 0; i < e->e_phnum; i++) {
		Elf64_Phdr ph;
		struct kunpack_seg *s;
		memcpy(&ph, h + e->e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		if (pl->nseg == KUNPACK_MAX_SEGS)
			return fail(msg, msglen, -ENOTSUP, "the kernel has over %d segments", KUNPACK_MAX_SEGS);
		if (ph.p_paddr < load || ph.p_paddr - load > KUNPACK_IMAGE_SPACE ||
		    ph.p_filesz > ph.p_memsz || ph.p_memsz > KUNPACK_IMAGE_SPACE ||
		    ph.p_offset > out_len || ph.p_filesz > out_len - ph.p_offset)
			return fail(msg, msglen, -ENOTSUP, "kernel segment %u (0x%llx bytes at 0x%llx) is out of range",
				    i, (unsigned long long)ph.p_filesz, (unsigned long long)ph.p_paddr);
		s = &pl->seg[pl->nseg];
		s->off = ph.p_offset;
		s->dst = ph.p_paddr - load;
		s->filesz = ph.p_filesz;
		if (pl->nseg && (s->off < s[-1].off + s[-1].filesz || s->dst < s[-1].dst + s[-1].filesz))
			return fail(msg, msglen, -ENOTSUP, "the kernel's segments are not in ascending order");
		lo_dst = s->dst < lo_dst ? s->dst : lo_dst;
		if (s->dst + ph.p_memsz > end)
			end = s->dst + ph.p_memsz;
		if (s->dst + s->filesz > pl->data_end)
			pl->data_end = s->dst + s->filesz;
		pl->nseg++;
	}
	if (!pl->nseg)
		return fail(msg, msglen, -ENOTSUP, "the kernel has no loadable segment");
	if (lo_dst != 0 || pl->seg[0].dst != 0)
		return fail(msg, msglen, -ENOTSUP, "the kernel's first segment is not at its load address");
	pl->head = pl->seg[0].off;
	/* Every segment moves down (or stays): its bytes are at least `head`
	 * past its destination, so moving them in order never overwrites a
	 * segment not yet moved. */
	for (unsigned i = 0; i < pl->nseg; i++) {
		if (pl->seg[i].off < pl->seg[i].dst + pl->head)
			return fail(msg, msglen, -ENOTSUP, "kernel segment %u would move up", i);
	}
	if (e->e_entry < load || e->e_entry - load >= end)
		return fail(msg, msglen, -ENOTSUP, "the kernel's entry point 0x%llx is outside it",
			    (unsigned long long)e->e_entry);
	pl->entry_off = e->e_entry - load;
	pl->image_end = end;
	pl->elf_end = pl->seg[pl->nseg - 1].off + pl->seg[pl->nseg - 1].filesz;
	shend = e->e_shoff + (uint64_t)e->e_shnum * e->e_shentsize;
	if (e->e_shoff && e->e_shoff <= out_len && shend <= out_len && shend > pl->elf_end)
		pl->elf_end = shend;
	pl->has_relocs = out_len >= pl->elf_end + 12;
	pl->out_len = out_len;
	pl->load = load;
	pl->span = out_len;
	if (pl->head + end > pl->span)
		pl->span = pl->head + end;
	if (pl->head + init_size > pl->span)
		pl->span = pl->head + init_size;
	return 0;
}

long kunpack_place(uint8_t *base, const struct kunpack_plan *pl, uint64_t delta,
		   char *msg, size_t msglen)
{
	uint8_t *img = base + pl->head;
	const uint8_t *lo = base + pl->elf_end, *r;
	uint64_t image_len = pl->data_end;
	long n = 0;

	for (unsigned i = 1; i < pl->nseg; i++) {
		const struct kunpack_seg *s = &pl->seg[i];
		if (s->off != pl->head + s->dst)
			memmove(img + s->dst, base + s->off, s->filesz);
	}
	if (!delta)
		return 0;
	if (!pl->has_relocs)
		return fail(msg, msglen, -EINVAL, "the kernel has no relocation table");
	/* From the end of the stream backwards: 32-bit relocations, a zero,
	 * inverse 32-bit ones, a zero, 64-bit ones, a zero. Each entry is the
	 * (sign-extended) linked virtual address of the value to adjust. */
	r = base + pl->out_len - 4;
	for (int set = 0; set < 3; set++) {
		for (;; r -= 4) {
			uint32_t v;
			uint64_t va, off;
			unsigned size = set == 2 ? 8 : 4;
			if (r < lo)
				return fail(msg, msglen, -EINVAL, "the relocation table runs past its start");
			v = rd32(r);
			if (!v)
				break;
			va = (uint64_t)(int64_t)(int32_t)v;
			off = va - KUNPACK_KERNEL_MAP - pl->load;
			if (va < KUNPACK_KERNEL_MAP + pl->load || off > image_len || image_len - off < size)
				return fail(msg, msglen, -EINVAL,
					    "relocation 0x%08x points outside the kernel", v);
			if (set == 0) {
				uint32_t x = rd32(img + off) + (uint32_t)delta;
				memcpy(img + off, &x, 4);
			} else if (set == 1) {
				uint32_t x = rd32(img + off) - (uint32_t)delta;
				memcpy(img + off, &x, 4);
			} else {
				uint64_t x = rd64(img + off) + delta;
				memcpy(img + off, &x, 8);
			}
			n++;
		}
		r -= 4;
	}
	return n;
}
