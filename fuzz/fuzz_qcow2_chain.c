/*
 * libFuzzer target for qcow2 backing chains: reads that fall through to the
 * backing file, copy-on-write from it, block status over the chain, copy-up
 * (stream), rebase -u, and at the end one of: plain close, commit into the
 * backing file (then empty the overlay), or flatten (copy everything up and
 * drop the backing file); then the chain is reopened read-only, read back
 * and checked.
 *
 * Input:
 *   overlay image, SEP, backing image, program, flags byte, length byte
 * SEP is the 8 bytes "\0VCHAIN\n" (first occurrence; without one the
 * backing file is empty).  The program is the length byte % 65 bytes
 * before the flags byte, 4 per operation:
 *   op % 16, offset (2 bytes, in 512-byte units, wrapped to the disk),
 *   length ((byte + 1) * 512); op / 16 shifts reads and writes by
 *   (op / 16) * 33 bytes so unaligned requests happen too.
 * Flags: bits 0-1 the end (0/3 close, 1 commit, 2 flatten), bit 2
 * require_backing_fmt, bit 3 writethrough, bit 4 a small metadata cache.
 *
 * The two images are the only files of a private directory made once per
 * process (top.qcow2 and base); the overlay is opened by path with
 * confine_backing and that directory as the only allowed one, so a fuzzed
 * backing name reaches nothing but these two files (itself: a loop).  The
 * target aborts if a chain ever holds another file.
 *
 * Oracles, used only while the overlay (and a qcow2 backing file) check
 * clean, since a corrupt image may legitimately read back anything:
 * a range that block status says is unallocated in the overlay reads as
 * the backing file does (zeros past its end, or where it says zero); a
 * write reads back and leaves the rest of its clusters as they were;
 * copy-up, commit + empty and flatten keep what the disk reads; what was
 * read before close reads the same after reopening.
 *
 * Seeds: fuzz/corpus/qcow2_chain/ (fuzz/gen_chain_seeds.py; regress-* are
 * inputs that found library bugs, kept by hand).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vireo/img.h>
#include <vireo/util.h>

#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LEN (128u * 1024)   /* one operation */
#define CMP_LEN (256u * 1024)   /* what the end compares */

static const uint8_t sep[8] = { 0, 'V', 'C', 'H', 'A', 'I', 'N', '\n' };

static char dir[64], top_path[96], base_path[96];
static const char *allowed[2];
static uint8_t buf[MAX_LEN], buf2[MAX_LEN], before[MAX_LEN + 2 * 65536];
static uint8_t view1[CMP_LEN], view2[CMP_LEN];

struct run {
	struct vimg *top;
	bool clean;             /* oracles apply */
	bool renamed;           /* the backing name may have changed */
	uint8_t flags;
};

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_qcow2_chain: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	abort(); } } while (0)

static void cleanup(void)
{
	unlink(top_path);
	unlink(base_path);
	rmdir(dir);
}

static int setup(void)
{
	const char *t = getenv("TMPDIR");

	if (dir[0])
		return 0;
	snprintf(dir, sizeof(dir), "%s/fuzz-chain-XXXXXX", t && t[0] && strlen(t) < 40 ? t : "/tmp");
	if (!mkdtemp(dir)) {
		dir[0] = 0;
		return -1;
	}
	snprintf(top_path, sizeof(top_path), "%s/top.qcow2", dir);
	snprintf(base_path, sizeof(base_path), "%s/base", dir);
	allowed[0] = dir;
	allowed[1] = NULL;
	atexit(cleanup);
	return 0;
}

/* Every file of the chain is one of ours (top.qcow2 on top only). */
static void check_chain(struct vimg *img)
{
	struct stat ts, bs, st;
	int depth = 0;

	CHECK(stat(top_path, &ts) == 0 && stat(base_path, &bs) == 0);
	for (; img; img = vimg_backing(img), depth++) {
		CHECK(stat(vimg_filename(img), &st) == 0);
		CHECK(st.st_dev == ts.st_dev);
		CHECK(depth == 0 ? st.st_ino == ts.st_ino : st.st_ino == bs.st_ino);
		CHECK(depth <= 1);
	}
}

static struct vimg *open_top(const struct run *rn, bool readonly, bool no_backing,
			     const struct vimg *holder)
{
	struct vimg_open_opts o = {
		.format = "qcow2", .readonly = readonly, .no_backing = no_backing,
		.no_repair = readonly, .confine_backing = true, .backing_dirs = allowed,
		.require_backing_fmt = rn->flags & 4, .writethrough = !readonly && (rn->flags & 8),
		.cache_size = rn->flags & 16 ? 16 * 1024 : 0, .lock_holder = holder,
	};
	struct vimg *img;
	char err[512];

	if (vimg_open(top_path, &o, &img, err, sizeof(err)) < 0)
		return NULL;
	check_chain(img);
	return img;
}

/* Does @img (and a qcow2 file below it) check without corruption? */
static bool checks_clean(struct vimg *img)
{
	struct vimg_check res;

	for (; img; img = vimg_backing(img)) {
		if (vimg_get_format(img) != VIMG_FMT_QCOW2)
			continue;
		if (vimg_check(img, 0, &res, NULL) < 0 || res.corruptions || res.check_errors)
			return false;
	}
	return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Clamp [off, off+len) to the disk; 0 if nothing is left. */
static size_t clamp(struct vimg *img, uint64_t *off, size_t len)
{
	uint64_t vsize = vimg_size(img);

	if (!vsize)
		return 0;
	*off %= vsize;
	if (len > vsize - *off)
		len = (size_t)(vsize - *off);
	return len;
}

/* Read [off, off+len) of what the backing file shows the overlay. */
static int read_below(struct vimg *top, uint8_t *p, size_t len, uint64_t off)
{
	struct vimg *b = vimg_backing(top);
	size_t n = 0;

	if (b && off < vimg_size(b)) {
		n = (size_t)(vimg_size(b) - off < len ? vimg_size(b) - off : len);
		if (vimg_pread(b, p, n, off) < 0)
			return -1;
	}
	memset(p + n, 0, len - n);
	return 0;
}

/*
 * Walk [off, off+len) with block status and hold each extent's data
 * against where block status says it comes from.
 */
static void status_walk(struct run *rn, uint64_t off, size_t len)
{
	struct vimg *top = rn->top;
	uint64_t end = off + len;

	for (int i = 0; off < end && i < 32; i++) {
		struct vimg_extent e;
		size_t n;

		if (vimg_block_status(top, off, end - off, i & 1, &e) < 0 || !e.len)
			return;
		CHECK(e.off == off && e.len <= end - off);
		n = (size_t)e.len;
		if (rn->clean && vimg_pread(top, buf, n, off) == 0) {
			if (e.flags & VIMG_BS_ZERO)
				CHECK(all_zero(buf, n));
			else if (!(e.flags & VIMG_BS_DATA) && (i & 1))
				CHECK(e.depth == -1 && all_zero(buf, n));
			if (e.depth >= 1 || (!(i & 1) && !(e.flags & (VIMG_BS_DATA | VIMG_BS_ZERO)))) {
				/* Not from the overlay: what the backing file reads. */
				if (read_below(top, buf2, n, off) == 0)
					CHECK(!memcmp(buf, buf2, n));
			}
		}
		off += e.len;
	}
}

/* Write @len bytes at @off and check them and the rest of their clusters. */
static void write_checked(struct run *rn, uint64_t off, size_t len, uint8_t pat)
{
	struct vimg *top = rn->top;
	uint64_t cs = vimg_cluster_size(top), c0, c1;
	size_t span;

	c0 = off - off % cs;
	c1 = off + len + cs - 1;
	c1 -= c1 % cs;
	if (c1 > vimg_size(top))
		c1 = vimg_size(top);
	span = (size_t)(c1 - c0);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(pat + i / 512);
	if (!rn->clean || span > sizeof(before) || vimg_pread(top, before, span, c0) < 0) {
		(void)vimg_pwrite(top, buf, len, off);
		return;
	}
	if (vimg_pwrite(top, buf, len, off) < 0 || vimg_pread(top, view1, span, c0) < 0)
		return;
	CHECK(!memcmp(view1 + (off - c0), buf, len));
	CHECK(!memcmp(view1, before, (size_t)(off - c0)));
	CHECK(!memcmp(view1 + (off - c0) + len, before + (off - c0) + len,
		      span - (size_t)(off - c0) - len));
}

/* Copy [off, off+len) up into the overlay where it is not allocated;
 * false if that failed. */
static bool copy_up(struct run *rn, uint64_t off, size_t len)
{
	struct vimg *top = rn->top;
	uint64_t end = off + len;

	if (vimg_pread(top, before, len, off) < 0)
		return false;
	while (off < end) {
		struct vimg_extent e;
		if (vimg_block_status(top, off, end - off, false, &e) < 0 || !e.len)
			return false;
		if (!(e.flags & (VIMG_BS_DATA | VIMG_BS_ZERO))) {
			if (vimg_pread(top, buf, (size_t)e.len, off) < 0 ||
			    vimg_pwrite(top, buf, (size_t)e.len, off) < 0)
				return false;
		}
		off += e.len;
	}
	off = end - len;
	if (rn->clean && vimg_pread(top, buf, len, off) == 0)
		CHECK(!memcmp(buf, before, len));
	return true;
}

static void run_op(struct run *rn, const uint8_t *p)
{
	static const char *const names[] = { "base", "", "top.qcow2", "../base",
					     "/etc/passwd", "/proc/self/fd/0",
					     "./base", "base/" };
	struct vimg *top = rn->top;
	uint64_t off = ((uint64_t)p[1] | (uint64_t)p[2] << 8) * 512 + (p[0] >> 4) * 33;
	size_t len = ((size_t)p[3] + 1) * 512;
	struct vimg_snapshot *snaps = NULL;
	int n = 0, fd;
	uint64_t h, run;

	len = clamp(top, &off, len);
	switch (p[0] % 16) {
	case 0: /* partial-cluster writes: copy-on-write from the backing file */
	case 1:
		if (len)
			write_checked(rn, off, len, p[0] ^ p[3]);
		break;
	case 2:
		if (len)
			(void)vimg_discard(top, off, len);
		break;
	case 3:
		if (len)
			(void)vimg_pwrite_zeroes(top, off, len);
		break;
	case 4: /* reads falling through, held against block status */
	case 5:
		if (len)
			status_walk(rn, off, len);
		break;
	case 6:
		if (len)
			(void)copy_up(rn, off, len);
		break;
	case 7:
		(void)vimg_flush(top);
		break;
	case 8:
		(void)vimg_snapshot_create(top, p[1] & 1 ? "a" : "b");
		break;
	case 9:
	case 10:
		if (vimg_snapshot_list(top, &snaps, &n) == 0 && n > 0) {
			const char *id = snaps[p[1] % n].id;
			if (p[0] % 16 == 9)
				(void)vimg_snapshot_apply(top, id);
			else
				(void)vimg_snapshot_delete(top, id);
		}
		free(snaps);
		break;
	case 11: { /* grow or shrink by up to 2 MiB; past the backing's end */
		uint64_t d = ((uint64_t)p[1] << 8 | p[2]) * 32;
		uint64_t vs = vimg_size(top);
		(void)vimg_resize(top, p[3] & 1 ? vs + d : (vs > d ? vs - d : 512));
		break;
	}
	case 12: { /* compressed write of a whole cluster */
		uint64_t cs = vimg_cluster_size(top);
		off -= off % cs;
		if (cs <= MAX_LEN && off + cs <= vimg_size(top)) {
			memset(buf, p[3], (size_t)cs);
			(void)vimg_pwrite_compressed(top, buf, (size_t)cs, off);
		}
		break;
	}
	case 13: /* direct mapping, as a VMM's I/O path uses it */
		if (len && vimg_map(top, off, len, p[3] & 1, &fd, &h, &run) == 0)
			CHECK(run > 0 && run <= len);
		break;
	case 14: /* rebase -u: only the name changes (reopened at the end) */
		rn->renamed = true;
		(void)vimg_set_backing(top, names[p[1] % 8], p[2] & 1 ? "raw" :
				       p[2] & 2 ? "qcow2" : NULL);
		break;
	case 15:
		if (len)
			(void)vimg_pread(top, buf, len, off);
		break;
	}
}

/* Read what the disk shows (the first CMP_LEN bytes) into @v. */
static size_t read_view(struct vimg *img, uint8_t *v)
{
	uint64_t off = 0;
	size_t len = clamp(img, &off, CMP_LEN);

	if (len && vimg_pread(img, v, len, 0) < 0)
		return SIZE_MAX;
	return len;
}

/* commit: write what the overlay holds into the backing file, then empty
 * the overlay; the disk must read the same. */
static void commit(struct run *rn, size_t vlen)
{
	struct vimg_open_opts bo = { .readonly = false, .no_backing = true,
				     .confine_backing = true, .backing_dirs = allowed };
	struct vimg *base, *top;
	enum vimg_format bfmt;
	uint64_t size, off = 0;
	char err[512];
	bool ok = true;

	if (!vimg_backing(rn->top))
		return;
	bfmt = vimg_get_format(vimg_backing(rn->top));
	bo.format = vimg_format_name(bfmt);
	vimg_close(rn->top);
	rn->top = NULL;
	if (vimg_open(base_path, &bo, &base, err, sizeof(err)) < 0)
		return;
	top = open_top(rn, true, false, base);
	if (!top) {
		vimg_close(base);
		return;
	}
	size = vimg_size(top);
	if (vimg_size(base) < size && vimg_resize(base, size) < 0)
		ok = false;
	while (ok && off < size) {
		struct vimg_extent e;
		uint64_t n = size - off < MAX_LEN ? size - off : MAX_LEN;
		if (vimg_block_status(top, off, n, true, &e) < 0 || !e.len) {
			ok = false;
			break;
		}
		if (e.depth == 0) {
			if ((e.flags & VIMG_BS_ZERO) && !(e.flags & VIMG_BS_DATA))
				ok = vimg_pwrite_zeroes(base, off, e.len) == 0;
			else
				ok = vimg_pread(top, buf, (size_t)e.len, off) == 0 &&
				     vimg_pwrite(base, buf, (size_t)e.len, off) == 0;
		}
		off += e.len;
	}
	if (vimg_close(base) < 0)
		ok = false;
	vimg_close(top);
	if (!ok)
		return;
	top = open_top(rn, false, true, NULL);
	if (!top)
		return;
	ok = vimg_make_empty(top) == 0;
	vimg_close(top);
	if (ok && rn->clean && vlen != SIZE_MAX && (top = open_top(rn, true, false, NULL))) {
		/* The backing file is now the disk (the overlay may have grown
		 * past it: zeros there). */
		size_t len = read_view(top, view2);
		if (len == vlen)
			CHECK(!memcmp(view1, view2, len));
		vimg_close(top);
	}
}

/* flatten: copy everything up, then drop the backing file. */
static void flatten(struct run *rn)
{
	uint64_t size = vimg_size(rn->top), off;

	for (off = 0; off < size;) {
		size_t n = (size_t)(size - off < MAX_LEN ? size - off : MAX_LEN);
		if (!copy_up(rn, off, n))
			return;
		off += n;
		if (off >= 4 * CMP_LEN && off < size)
			return;   /* too big to copy in one run */
	}
	rn->renamed = true;   /* reads as before only if the copies all landed */
	if (vimg_set_backing(rn->top, NULL, NULL) == 0)
		rn->renamed = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run rn = { 0 };
	struct vimg_check res;
	const uint8_t *prog, *s;
	size_t plen, body, olen, vlen;
	struct vimg *img;
	uint8_t end;

	if (size < 2 || setup() < 0)
		return 0;
	plen = data[size - 1] % 65;
	rn.flags = data[size - 2];
	body = size - 2;
	if (plen > body)
		plen = body;
	plen -= plen % 4;
	body -= plen;
	prog = data + body;
	s = memmem(data, body, sep, sizeof(sep));
	olen = s ? (size_t)(s - data) : body;
	if (put_file(top_path, data, olen) < 0 ||
	    put_file(base_path, s ? s + sizeof(sep) : data, s ? body - olen - sizeof(sep) : 0) < 0)
		return 0;

	/* A dirty overlay is repaired here. */
	rn.top = open_top(&rn, false, false, NULL);
	if (!rn.top)
		return 0;
	rn.clean = checks_clean(rn.top);
	for (size_t i = 0; i + 4 <= plen; i += 4)
		run_op(&rn, prog + i);
	end = rn.flags & 3;
	if (end == 2)
		flatten(&rn);
	if (rn.clean)
		rn.clean = !rn.renamed && checks_clean(rn.top);
	vlen = rn.clean ? read_view(rn.top, view1) : SIZE_MAX;
	if (end == 1) {
		commit(&rn, vlen);
	} else {
		(void)vimg_check(rn.top, VIMG_FIX_LEAKS | VIMG_FIX_ERRORS, &res, NULL);
		vimg_close(rn.top);
		rn.top = NULL;
		/* What was written must open and read back the same. */
		img = open_top(&rn, true, false, NULL);
		if (img) {
			size_t len = read_view(img, view2);
			if (vlen != SIZE_MAX && len != SIZE_MAX && len == vlen)
				CHECK(!memcmp(view1, view2, len));
			(void)vimg_check(img, 0, &res, NULL);
			vimg_close(img);
		}
	}
	vimg_close(rn.top);
	return 0;
}
