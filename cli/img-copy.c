/* vireo-img verbs that move data: convert, commit, rebase, compare, map,
 * bench. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "img-cli.h"
#include "json-out.h"

#define CHUNK (2u << 20)

/* A page-aligned buffer, or NULL (said) when there is no memory: callers
 * fail the verb, they never exit (vireo_img_main() runs in-process too). */
static void *xalloc(size_t n)
{
	void *p = aligned_alloc(4096, VIREO_ALIGN_UP(n, 4096));

	if (!p)
		verr("out of memory (%zu bytes)", n);
	return p;
}

/* Write buf[0..len) at off, skipping zero blocks of @gran bytes (sparse),
 * coalescing non-zero runs into single writes. */
static int write_sparse(struct vimg *dst, const uint8_t *buf, size_t len,
			uint64_t off, uint32_t gran, bool compress, bool need_zero)
{
	size_t i = 0;
	int r;

	if (compress) {
		/* Runs of non-zero clusters go down in one call, which
		 * compresses them on several threads. */
		while (i < len) {
			size_t n = VIREO_MIN((size_t)gran, len - i), j;
			if (cli_is_zero(buf + i, n)) {
				if (need_zero && (r = vimg_pwrite_zeroes(dst, off + i, n)) < 0)
					return r;
				i += n;
				continue;
			}
			j = i + n;
			while (j < len && !cli_is_zero(buf + j, VIREO_MIN((size_t)gran, len - j)))
				j += VIREO_MIN((size_t)gran, len - j);
			r = vimg_pwrite_compressed(dst, buf + i, j - i, off + i);
			if (r < 0)
				return r;
			i = j;
		}
		return 0;
	}
	if (!gran)   /* -S 0: no sparse detection, everything is written */
		return vimg_pwrite(dst, buf, len, off);
	while (i < len) {
		size_t n = VIREO_MIN((size_t)gran - (size_t)((off + i) % gran), len - i), j;
		if (cli_is_zero(buf + i, n)) {
			j = i + n;
			while (j < len) {
				size_t m = VIREO_MIN((size_t)gran, len - j);
				if (!cli_is_zero(buf + j, m))
					break;
				j += m;
			}
			if (need_zero && (r = vimg_pwrite_zeroes(dst, off + i, j - i)) < 0)
				return r;
			i = j;
			continue;
		}
		j = i + n;
		while (j < len) {
			size_t m = VIREO_MIN((size_t)gran, len - j);
			if (cli_is_zero(buf + j, m))
				break;
			j += m;
		}
		r = vimg_pwrite(dst, buf + i, j - i, off + i);
		if (r < 0)
			return r;
		i = j;
	}
	return 0;
}

/*
 * -l takes either a bare snapshot name/ID or "snapshot.id=ID[,snapshot.name=NAME]"
 * (either key alone too), as qemu-img does.  *dup keeps the parsed copy.
 */
static int convert_snapshot_opt(const char *arg, char **dup, const char **id,
				const char **name)
{
	char *save = NULL, *tok;

	free(*dup);
	*dup = NULL;
	*id = *name = NULL;
	if (strncmp(arg, "snapshot.", 9)) {
		*id = arg;
		return 0;
	}
	*dup = strdup(arg);
	if (!*dup) {
		verr("out of memory");
		return -1;
	}
	for (tok = strtok_r(*dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strncmp(tok, "snapshot.id=", 12)) {
			*id = tok + 12;
		} else if (!strncmp(tok, "snapshot.name=", 14)) {
			*name = tok + 14;
		} else {
			verr("Invalid snapshot option '%s' in -l '%s' (use snapshot.id=ID,snapshot.name=NAME)",
			     tok, arg);
			return -1;
		}
	}
	return 0;
}

/* What convert was asked to do (its options). */
struct convert_opts {
	const char *fmt, *ofmt, *oopts, *obacking, *obacking_fmt;
	const char *snap_id, *snap_name;
	bool progress, compress, no_create, unsafe;
	uint64_t sparse;
};

static int convert_run(int argc, char **argv, const struct convert_opts *o);

int cmd_convert(int argc, char **argv)
{
	struct convert_opts o = {
		.ofmt = "raw",
		.unsafe = true,   /* qemu-img convert defaults to cache=unsafe */
		.sparse = 4096,
	};
	char *snap_opts = NULL;
	int c, r;

	static const struct option lo[] = { { "force-share", 0, 0, 'U' },
		{ "help", 0, 0, 'h' }, { "target-is-zero", 0, 0, 'Z' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "hqpcnf:O:o:B:F:l:s:S:t:T:m:WUC", lo, NULL)) != -1) {
		switch (c) {
		case 'q': break;
		case 'p': o.progress = true; break;
		case 'c': o.compress = true; break;
		case 'n': o.no_create = true; break;
		case 'f': o.fmt = optarg; break;
		case 'O': o.ofmt = optarg; break;
		case 'o': o.oopts = optarg; break;
		case 'B': o.obacking = optarg; break;
		case 'F': o.obacking_fmt = optarg; break;
		case 's': o.snap_id = optarg; o.snap_name = NULL; break;
		case 'l':
			if (convert_snapshot_opt(optarg, &snap_opts, &o.snap_id, &o.snap_name) < 0)
				return 1;
			break;
		case 'S':
			if (vsize_parse(optarg, 1, &o.sparse) < 0) {
				verr("Invalid sparse size '%s'", optarg);
				free(snap_opts);
				return 1;
			}
			break;
		case 't': o.unsafe = !strcmp(optarg, "unsafe"); break;
		case 'T': case 'm': case 'W': case 'C': case 'Z': break;
		case 'U': cli_force_share = true; break;
		case 'h':
			printf("Usage: vireo-img convert [-p] [-c] [-n] [-f fmt] [-O fmt] [-o opts] [-B backing [-F fmt]] [-l snapshot.id=ID,snapshot.name=NAME | -l NAME | -s NAME] [-S size] src... dst\n");
			free(snap_opts);
			return 0;
		default:
			/* getopt has named the option; like qemu-img, fail. */
			verr("Try 'vireo-img convert --help' for the options");
			free(snap_opts);
			return 1;
		}
	}
	r = convert_run(argc, argv, &o);
	free(snap_opts);
	return r;
}

/* The options that cannot go together; 0 or 1 (printed). */
static int convert_check(const struct convert_opts *o, int nargs)
{
	if (nargs < 2)
		verr("Expecting at least one source and a destination");
	else if (strcmp(o->ofmt, "raw") && strcmp(o->ofmt, "qcow2"))
		verr("Unknown output format '%s' (use raw or qcow2)", o->ofmt);
	else if (o->compress && strcmp(o->ofmt, "qcow2"))
		verr("Compression needs the qcow2 output format (-O qcow2)");
	else if (o->obacking_fmt && !o->obacking)
		verr("-F %s needs a backing file (-B)", o->obacking_fmt);
	else if ((o->snap_id || o->snap_name) && nargs > 2)
		verr("A snapshot (-l/-s) can only be read from a single source image");
	else if (o->obacking && o->no_create)
		verr("-B and -n cannot be used together");
	else
		return 0;
	return 1;
}

/* The format of the output's backing file, as probed (its name is
 * relative to the output's directory). */
static const char *probe_backing_fmt(const char *dst_path, const char *backing)
{
	const char *slash = strrchr(dst_path, '/');
	enum vimg_format f;
	struct vimg *bk;
	char *bp = NULL;

	if (backing[0] != '/' && slash &&
	    asprintf(&bp, "%.*s/%s", (int)(slash - dst_path), dst_path, backing) < 0)
		bp = NULL;
	bk = cli_open(bp ? bp : backing, NULL, true, true);
	free(bp);
	if (!bk)
		return NULL;
	f = vimg_get_format(bk);
	vimg_close(bk);
	return vimg_format_name(f);
}

/* Create the output of @total bytes; 0 or 1 (printed).  @co keeps what
 * was asked (the copy looks at its backing). */
static int convert_create(const struct convert_opts *o, const char *dst_path,
			  uint64_t total, struct vimg_create_opts *co)
{
	char err[1024];

	co->format = !strcmp(o->ofmt, "qcow2") ? VIMG_FMT_QCOW2 : VIMG_FMT_RAW;
	if (o->oopts && cli_parse_create_opts(o->oopts, co) < 0)
		return 1;
	co->size = total;
	if (o->obacking)
		co->backing = o->obacking;
	if (o->obacking_fmt)
		co->backing_fmt = o->obacking_fmt;
	if (co->backing && co->format != VIMG_FMT_QCOW2) {
		verr("A backing file for the output needs -O qcow2");
		return 1;
	}
	if (co->backing && !co->backing_fmt) {
		co->backing_fmt = probe_backing_fmt(dst_path, co->backing);
		if (!co->backing_fmt)
			return 1;
	}
	if (vimg_create(dst_path, co, err, sizeof(err)) < 0) {
		verr("%s: %s", dst_path, err);
		return 1;
	}
	return 0;
}

/* Write at @off only the clusters of buf that differ from what the output
 * reads there (through its backing file). */
static int write_backing_diff(struct vimg *dst, const uint8_t *buf, uint64_t n,
			      uint64_t off)
{
	uint8_t *cur = xalloc(n);
	uint32_t cs = vimg_cluster_size(dst);
	int w = cur ? vimg_pread(dst, cur, n, off) : -ENOMEM;

	for (uint64_t k = 0; w == 0 && k < n;) {
		uint64_t step = VIREO_MIN((uint64_t)cs - ((off + k) % cs), n - k);
		if (memcmp(cur + k, buf + k, step))
			w = vimg_pwrite(dst, buf + k, step, off + k);
		k += step;
	}
	free(cur);
	return w;
}

/* One convert under way. */
struct convert {
	const struct convert_opts *o;
	struct vimg *dst;
	const char *dst_path;
	bool backing;          /* the output has a backing file */
	uint8_t *buf;
	uint32_t chunk, gran;
	uint64_t done, total;  /* output bytes */
};

/* Copy one extent of @n bytes at @off of @src (named @name). */
static int convert_extent(struct convert *c, struct vimg *src, const char *name,
			  const struct vimg_extent *ext, uint64_t off, uint64_t n)
{
	bool need_zero = c->o->no_create || c->backing;
	int w;

	if ((ext->flags & VIMG_BS_ZERO) && !(ext->flags & VIMG_BS_DATA)) {
		if (need_zero && vimg_pwrite_zeroes(c->dst, c->done, n) < 0) {
			verr("%s: %s", c->dst_path, vimg_errmsg(c->dst));
			return 1;
		}
		return 0;
	}
	if (vimg_pread(src, c->buf, n, off) < 0) {
		verr("error while reading '%s' at %" PRIu64 ": %s", name, off,
		     vimg_errmsg(src));
		return 1;
	}
	if (c->backing && !c->o->compress)
		w = write_backing_diff(c->dst, c->buf, n, c->done);
	else
		w = write_sparse(c->dst, c->buf, n, c->done, c->gran, c->o->compress,
				 need_zero);
	if (w < 0) {
		verr("error while writing '%s' at %" PRIu64 ": %s", c->dst_path,
		     c->done, vimg_errmsg(c->dst));
		return 1;
	}
	return 0;
}

/* Copy all of @src to the output after what is there; 0 or 1 (printed). */
static int convert_source(struct convert *c, struct vimg *src, const char *name)
{
	uint64_t size = vimg_size(src), off = 0;

	while (off < size) {
		struct vimg_extent ext;
		uint64_t n = VIREO_MIN((uint64_t)c->chunk, size - off);

		if (vimg_block_status(src, off, n, true, &ext) < 0) {
			verr("%s: %s", name, vimg_errmsg(src));
			return 1;
		}
		n = ext.len;
		/* Keep chunks on output-cluster boundaries (compression needs
		 * whole clusters; it also keeps writes aligned). */
		if (c->gran && (c->done + n) % c->gran && off + n < size) {
			uint64_t end = c->done + n;
			if (n > c->gran) {
				n = end - end % c->gran - c->done;
			} else {
				n = VIREO_MIN(end - end % c->gran + c->gran - c->done, size - off);
				ext.flags = VIMG_BS_DATA;
			}
		}
		if (convert_extent(c, src, name, &ext, off, n))
			return 1;
		off += n;
		c->done += n;
		cli_progress(c->o->progress, c->done, c->total);
	}
	return 0;
}

/* Open every source (at the snapshot asked for); 0 or 1 (printed). */
static int convert_open_sources(const struct convert_opts *o, char **names,
				int nsrc, struct vimg **src, uint64_t *total)
{
	for (int i = 0; i < nsrc; i++) {
		src[i] = cli_open(names[i], o->fmt, true, false);
		if (!src[i])
			return 1;
		if ((o->snap_id || o->snap_name) &&
		    vimg_snapshot_load(src[i], o->snap_id, o->snap_name) < 0) {
			verr("Failed to load snapshot: %s: %s", names[i],
			     vimg_errmsg(src[i]));
			return 1;
		}
		*total += vimg_size(src[i]);
	}
	return 0;
}

static int convert_run(int argc, char **argv, const struct convert_opts *o)
{
	struct vimg_create_opts co = { 0 };
	struct convert c = { .o = o };
	struct vimg **src;
	int nsrc, r;
	uint32_t cs;

	if (convert_check(o, argc - optind))
		return 1;
	nsrc = argc - optind - 1;
	c.dst_path = argv[argc - 1];
	src = calloc((size_t)nsrc, sizeof(*src));
	r = convert_open_sources(o, argv + optind, nsrc, src, &c.total);
	if (!r && !o->no_create)
		r = convert_create(o, c.dst_path, c.total, &co);
	if (!r) {
		c.dst = cli_open_cache(c.dst_path, o->ofmt, false, false, o->unsafe);
		r = c.dst ? 0 : 1;
	}
	if (r)
		goto out_src;
	if (vimg_size(c.dst) < c.total) {
		verr("Output image '%s' is too small (%" PRIu64 " bytes, need %" PRIu64 ")",
		     c.dst_path, vimg_size(c.dst), c.total);
		r = 1;
		goto out_dst;
	}
	c.backing = co.backing != NULL;
	cs = vimg_cluster_size(c.dst);
	c.gran = o->compress ? cs : o->sparse ? (uint32_t)VIREO_MIN(o->sparse, (uint64_t)cs) : 0;
	if (!o->compress && vimg_get_format(c.dst) == VIMG_FMT_RAW && o->sparse)
		c.gran = (uint32_t)VIREO_MIN(o->sparse, 65536);
	/* Compression runs on several threads per call: give them more. */
	c.chunk = o->compress ? 4 * CHUNK : CHUNK;
	c.buf = xalloc(c.chunk);
	if (!c.buf) {
		r = 1;
		goto out_dst;
	}
	cli_progress(o->progress, 0, c.total);
	for (int i = 0; i < nsrc && !r; i++)
		r = convert_source(&c, src[i], argv[optind + i]);
	if (o->progress)
		printf("\n");
	free(c.buf);
out_dst:
	if (vimg_close(c.dst) < 0 && !r) {
		verr("%s: flush failed", c.dst_path);
		r = 1;
	}
out_src:
	for (int i = 0; i < nsrc; i++)
		vimg_close(src[i]);
	free(src);
	return r;
}

int cmd_commit(int argc, char **argv)
{
	const char *fmt = NULL, *base_name = NULL;
	bool progress = false, keep = false, quiet = false;
	struct vimg *top, *base_ro, *base;
	int c, depth = 1, r = 0;
	uint64_t off = 0, size;
	uint8_t *buf;

	static const struct option lo[] = { { "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "hqpdf:b:t:r:", lo, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case 'p': progress = true; break;
		case 'd': keep = true; break;
		case 'f': fmt = optarg; break;
		case 'b': base_name = optarg; break;
		case 't': case 'r': break;
		case 'h': printf("Usage: vireo-img commit [-q] [-p] [-d] [-f fmt] [-b base] file\n"); return 0;
		default: return 1;
		}
	}
	if (optind != argc - 1) {
		verr("Expecting one image file name");
		return 1;
	}
	top = cli_open(argv[optind], fmt, true, false);
	if (!top)
		return 1;
	base_ro = vimg_backing(top);
	if (!base_ro) {
		verr("Image '%s' does not have a backing file", argv[optind]);
		vimg_close(top);
		return 1;
	}
	if (base_name) {
		struct stat want, st;
		if (stat(base_name, &want) < 0) {
			verr("Cannot find base '%s': %s", base_name, strerror(errno));
			vimg_close(top);
			return 1;
		}
		while (base_ro && !(stat(vimg_filename(base_ro), &st) == 0 &&
				     st.st_ino == want.st_ino && st.st_dev == want.st_dev)) {
			base_ro = vimg_backing(base_ro);
			depth++;
		}
		if (!base_ro) {
			verr("'%s' is not in the backing chain of '%s'", base_name, argv[optind]);
			vimg_close(top);
			return 1;
		}
		keep = keep || depth > 1;
	}
	/* The base is locked shared as part of top's chain: open it for
	 * writing (exclusive lock) only after closing top, then reopen top
	 * with the base counted as ours. */
	{
		char *bpath = strdup(vimg_filename(base_ro));
		const char *bfmt = vimg_format_name(vimg_get_format(base_ro));
		struct vimg_open_opts o = { .format = fmt, .readonly = true,
					    .require_backing_fmt = !cli_probe_backing,
					    .confine_backing = cli_confine_backing };
		char err[1024];
		vimg_close(top);
		top = NULL;
		base = bpath ? cli_open(bpath, bfmt, false, true) : NULL;
		free(bpath);
		if (!base)
			return 1;
		o.lock_holder = base;
		r = vimg_open(argv[optind], &o, &top, err, sizeof(err));
		if (r < 0) {
			cli_open_failed(argv[optind], r, err);
			vimg_close(base);
			return 1;
		}
	}
	size = vimg_size(top);
	if (vimg_size(base) < size && vimg_resize(base, size) < 0) {
		verr("Cannot grow base to %" PRIu64 " bytes: %s", size, vimg_errmsg(base));
		r = 1;
	}
	buf = xalloc(CHUNK);
	if (!buf)
		r = 1;
	while (!r && off < size) {
		struct vimg_extent e;
		if (vimg_block_status(top, off, VIREO_MIN((uint64_t)CHUNK, size - off), true, &e) < 0) {
			verr("%s", vimg_errmsg(top));
			r = 1;
			break;
		}
		if (e.depth >= 0 && e.depth < depth) {
			if ((e.flags & VIMG_BS_ZERO) && !(e.flags & VIMG_BS_DATA)) {
				if (vimg_pwrite_zeroes(base, off, e.len) < 0)
					r = 1;
			} else if (vimg_pread(top, buf, e.len, off) < 0) {
				verr("read: %s", vimg_errmsg(top));
				r = 1;
				break;
			} else if (vimg_pwrite(base, buf, e.len, off) < 0) {
				r = 1;
			}
			if (r)
				verr("write to base: %s", vimg_errmsg(base));
		}
		off += e.len;
		cli_progress(progress, off, size);
	}
	free(buf);
	if (progress)
		printf("\n");
	if (vimg_close(base) < 0 && !r) {
		verr("flush of base failed");
		r = 1;
	}
	vimg_close(top);
	if (!r && !keep) {
		top = cli_open(argv[optind], fmt, false, true);
		if (!top)
			return 1;
		if (vimg_get_format(top) == VIMG_FMT_QCOW2 && vimg_make_empty(top) < 0) {
			verr("Could not empty '%s': %s", argv[optind], vimg_errmsg(top));
			r = 1;
		}
		if (vimg_close(top) < 0)
			r = 1;
	}
	if (!r && !quiet)
		printf("Image committed.\n");
	return r;
}

int cmd_rebase(int argc, char **argv)
{
	const char *fmt = NULL, *bfmt = NULL, *backing = NULL;
	bool unsafe = false, progress = false, quiet = false;
	struct vimg *img, *nb = NULL;
	int c, r = 0;

	static const struct option lo[] = { { "help", 0, 0, 'h' },
		{ "force-share", 0, 0, 'U' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "hqpuf:F:b:t:T:U", lo, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case 'p': progress = true; break;
		case 'u': unsafe = true; break;
		case 'f': fmt = optarg; break;
		case 'F': bfmt = optarg; break;
		case 'b': backing = optarg; break;
		case 't': case 'T': break;
		case 'U': cli_force_share = true; break;
		case 'h': printf("Usage: vireo-img rebase [-q] [-p] [-u] [-f fmt] -b backing [-F fmt] file\n"); return 0;
		default: return 1;
		}
	}
	(void)quiet;
	if (optind != argc - 1 || !backing) {
		verr("Expecting -b backing and one image file name");
		return 1;
	}
	if (backing[0] && !bfmt && !cli_probe_backing) {
		verr("Backing file specified without backing format: give -F raw|qcow2 "
		     "(or --probe-backing to detect it)");
		return 1;
	}
	img = cli_open(argv[optind], fmt, false, unsafe);
	if (!img)
		return 1;
	if (backing[0] && !unsafe) {
		const char *slash = strrchr(argv[optind], '/');
		char *bp = NULL;
		if (backing[0] != '/' && slash &&
		    asprintf(&bp, "%.*s/%s", (int)(slash - argv[optind]), argv[optind], backing) < 0)
			bp = NULL;
		nb = cli_open(bp ? bp : backing, bfmt, true, false);
		free(bp);
		if (!nb) {
			vimg_close(img);
			return 1;
		}
		if (!bfmt)
			bfmt = vimg_format_name(vimg_get_format(nb));
	}
	if (!unsafe) {
		uint64_t size = vimg_size(img), off = 0;
		uint32_t cs = vimg_cluster_size(img);
		uint8_t *a = xalloc(CHUNK), *b = xalloc(CHUNK);
		if (!a || !b)
			r = 1;
		while (!r && off < size) {
			struct vimg_extent e;
			uint64_t n;
			if (vimg_block_status(img, off, VIREO_MIN((uint64_t)CHUNK, size - off), false, &e) < 0) {
				r = 1;
				break;
			}
			n = e.len;
			if (!(e.flags & (VIMG_BS_DATA | VIMG_BS_ZERO))) {
				/* Not allocated here: keep the old view if the new differs. */
				uint64_t nsz = nb ? vimg_size(nb) : 0, k;
				if (vimg_pread(img, a, n, off) < 0) {
					r = 1;
					break;
				}
				memset(b, 0, n);
				if (nb && off < nsz && vimg_pread(nb, b, VIREO_MIN(n, nsz - off), off) < 0) {
					verr("read of new backing: %s", vimg_errmsg(nb));
					r = 1;
					break;
				}
				for (k = 0; k < n && !r;) {
					uint64_t step = VIREO_MIN((uint64_t)cs - ((off + k) % cs), n - k);
					if (memcmp(a + k, b + k, step) &&
					    vimg_pwrite(img, a + k, step, off + k) < 0)
						r = 1;
					k += step;
				}
			}
			off += n;
			cli_progress(progress, off, size);
		}
		if (r)
			verr("%s", vimg_errmsg(img));
		free(a);
		free(b);
		if (progress)
			printf("\n");
	}
	if (!r && vimg_set_backing(img, backing, backing[0] ? bfmt : NULL) < 0) {
		verr("Could not change the backing file of '%s': %s", argv[optind], vimg_errmsg(img));
		r = 1;
	}
	if (nb)
		vimg_close(nb);
	if (vimg_close(img) < 0)
		r = 1;
	return r;
}

int cmd_compare(int argc, char **argv)
{
	const char *fmt1 = NULL, *fmt2 = NULL;
	bool strict = false, quiet = false, progress = false;
	struct vimg *a, *b;
	uint64_t sa, sb, common, off = 0;
	uint8_t *ba, *bb;
	int c, r = 0;

	static const struct option lo[] = { { "help", 0, 0, 'h' },
		{ "force-share", 0, 0, 'U' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "hqpsf:F:T:U", lo, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case 'p': progress = true; break;
		case 's': strict = true; break;
		case 'f': fmt1 = optarg; break;
		case 'F': fmt2 = optarg; break;
		case 'T': break;
		case 'U': cli_force_share = true; break;
		case 'h': printf("Usage: vireo-img compare [-q] [-s] [-f fmt] [-F fmt] file1 file2\n"); return 0;
		default: return 2;
		}
	}
	if (optind != argc - 2) {
		verr("Expecting two image file names");
		return 2;
	}
	a = cli_open(argv[optind], fmt1, true, false);
	if (!a)
		return 2;
	b = cli_open(argv[optind + 1], fmt2, true, false);
	if (!b) {
		vimg_close(a);
		return 2;
	}
	sa = vimg_size(a);
	sb = vimg_size(b);
	if (strict && sa != sb) {
		if (!quiet)
			printf("Strict mode: Image size mismatch!\n");
		r = 1;
		goto out;
	}
	common = VIREO_MIN(sa, sb);
	ba = xalloc(CHUNK);
	bb = xalloc(CHUNK);
	if (!ba || !bb)
		r = 2;
	while (!r && off < VIREO_MAX(sa, sb)) {
		struct vimg_extent ea, eb;
		struct vimg *big = sa > sb ? a : b;
		uint64_t n;
		if (off < common) {
			n = VIREO_MIN((uint64_t)CHUNK, common - off);
			if (vimg_block_status(a, off, n, true, &ea) < 0 ||
			    vimg_block_status(b, off, n, true, &eb) < 0) {
				r = 2;
				break;
			}
			n = VIREO_MIN(ea.len, eb.len);
			if ((ea.flags & VIMG_BS_ZERO) && !(ea.flags & VIMG_BS_DATA) &&
			    (eb.flags & VIMG_BS_ZERO) && !(eb.flags & VIMG_BS_DATA)) {
				off += n;
				continue;
			}
			if (vimg_pread(a, ba, n, off) < 0 || vimg_pread(b, bb, n, off) < 0) {
				verr("read error: %s / %s", vimg_errmsg(a), vimg_errmsg(b));
				r = 2;
				break;
			}
		} else {
			n = VIREO_MIN((uint64_t)CHUNK, VIREO_MAX(sa, sb) - off);
			if (vimg_pread(big, ba, n, off) < 0) {
				r = 2;
				break;
			}
			memset(bb, 0, n);
		}
		if (memcmp(ba, bb, n)) {
			uint64_t k = 0;
			while (ba[k] == bb[k])
				k++;
			if (!quiet)
				printf("Content mismatch at offset %" PRIu64 "!\n", (off + k) & ~(uint64_t)511);
			r = 1;
			break;
		}
		off += n;
		cli_progress(progress, off, VIREO_MAX(sa, sb));
	}
	free(ba);
	free(bb);
	if (!r && !quiet) {
		if (sa != sb)
			printf("Warning: Image size mismatch!\n");
		printf("Images are identical.\n");
	}
out:
	vimg_close(a);
	vimg_close(b);
	return r;
}

int cmd_map(int argc, char **argv)
{
	const char *fmt = NULL, *output = "human";
	uint64_t start = 0, maxlen = UINT64_MAX, off, end;
	struct vimg *img;
	bool json, have = false;
	struct jw w;
	struct vimg_extent cur = { 0 };
	int c, r = 0;

	static const struct option lo[] = { { "output", 1, 0, 'O' },
		{ "start-offset", 1, 0, 's' }, { "max-length", 1, 0, 'l' },
		{ "force-share", 0, 0, 'U' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "hf:U", lo, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'O': output = optarg; break;
		case 's':
			if (vsize_parse(optarg, 1, &start) < 0) {
				verr("Invalid start offset '%s'", optarg);
				return 1;
			}
			break;
		case 'l':
			if (vsize_parse(optarg, 1, &maxlen) < 0) {
				verr("Invalid max length '%s'", optarg);
				return 1;
			}
			break;
		case 'U': cli_force_share = true; break;
		case 'h': printf("Usage: vireo-img map [-f fmt] [--output=human|json] file\n"); return 0;
		default: return 1;
		}
	}
	if (optind != argc - 1) {
		verr("Expecting one image file name");
		return 1;
	}
	json = !strcmp(output, "json");
	img = cli_open(argv[optind], fmt, true, false);
	if (!img)
		return 1;
	end = vimg_size(img);
	if (maxlen != UINT64_MAX && start + maxlen < end)
		end = start + maxlen;
	if (!json)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	jw_init(&w, stdout);
	if (json)
		jw_array(&w, NULL, false);
	off = start;
	while (off <= end) {
		struct vimg_extent e = { 0 };
		int depth_chain = 0;
		bool flush = off == end;
		if (!flush) {
			if (vimg_block_status(img, off, VIREO_MIN(end - off, 1ull << 30), true, &e) < 0) {
				verr("%s", vimg_errmsg(img));
				r = 1;
				break;
			}
			if (e.depth < 0) {
				for (struct vimg *b = vimg_backing(img); b; b = vimg_backing(b))
					depth_chain++;
				e.depth = depth_chain;
				e.flags = VIMG_BS_ZERO | 0x100 |  /* not present */
					  (e.flags & VIMG_BS_OFFSET_VALID);
			}
			if (have && e.flags == cur.flags && e.depth == cur.depth &&
			    !(e.flags & VIMG_BS_COMPRESSED) && !(cur.flags & VIMG_BS_COMPRESSED) &&
			    (!(e.flags & VIMG_BS_OFFSET_VALID) || e.host_off == cur.host_off + cur.len)) {
				cur.len += e.len;
				off += e.len;
				continue;
			}
		}
		if (have) {
			bool present = !(cur.flags & 0x100);
			bool data = cur.flags & VIMG_BS_DATA;
			bool zero = (cur.flags & VIMG_BS_ZERO) && !data;
			if (json) {
				jw_object(&w, NULL, true);
				jw_u64(&w, "start", cur.off);
				jw_u64(&w, "length", cur.len);
				jw_int(&w, "depth", cur.depth);
				jw_bool(&w, "present", present);
				jw_bool(&w, "zero", zero);
				jw_bool(&w, "data", data);
				if (cur.flags & VIMG_BS_OFFSET_VALID)
					jw_u64(&w, "offset", cur.host_off);
				jw_end(&w);
			} else if (data && !(cur.flags & VIMG_BS_COMPRESSED)) {
				struct vimg *f = img;
				for (int d = 0; d < cur.depth && f; d++)
					f = vimg_backing(f);
				printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
				       cur.off, cur.len, cur.host_off, f ? vimg_filename(f) : "");
			}
		}
		if (flush)
			break;
		cur = e;
		have = true;
		off += e.len;
	}
	if (json)
		jw_end(&w);
	vimg_close(img);
	return r;
}

struct bench_job {
	struct vimg *img;
	uint64_t count, offset, size, step, isize, flush_every;
	int tid, nthreads, pattern, r;
	bool write;
};

/*
 * One worker: requests i = tid, tid + n, ... keep the overall order of
 * offsets that a single queue of depth n would issue.  As in qemu-img
 * bench, request 0 is at the -o offset and each later one is step bytes
 * further, wrapping modulo the image size: request i is at
 * (offset + i * step) mod size, so the whole image is covered.
 */
static void *bench_worker(void *arg)
{
	struct bench_job *j = arg;
	uint8_t *buf = xalloc(j->size);
	uint64_t m = j->isize, st = j->step % m;
	uint64_t stride = (uint64_t)j->nthreads * st % m;
	uint64_t pos = (j->offset % m + (uint64_t)j->tid * st % m) % m;

	if (!buf) {
		j->r = -ENOMEM;
		return NULL;
	}
	memset(buf, j->pattern, j->size);
	for (uint64_t i = (uint64_t)j->tid; i < j->count; i += (uint64_t)j->nthreads) {
		if (i == 0)
			pos = j->offset;   /* the first request is not wrapped */
		else if (i >= (uint64_t)j->nthreads)
			pos = (pos + stride) % m;
		int r = j->write ? vimg_pwrite(j->img, buf, j->size, pos) :
				   vimg_pread(j->img, buf, j->size, pos);
		if (r < 0) {
			verr("request at %" PRIu64 " failed: %s", pos, vimg_errmsg(j->img));
			j->r = r;
			break;
		}
		if (j->write && j->flush_every && j->tid == 0 &&
		    (i / (uint64_t)j->nthreads + 1) % j->flush_every == 0 && vimg_flush(j->img) < 0) {
			j->r = -EIO;
			break;
		}
	}
	free(buf);
	return NULL;
}

int cmd_bench(int argc, char **argv)
{
	const char *fmt = NULL;
	uint64_t count = 75000, depth = 64, offset = 0, size = 4096, step = 0,
		 flush_every = 0, pattern = 0, t0, t1, pos, isize;
	bool write = false, quiet = false, no_drain = false;
	struct vimg *img;
	void *buf = NULL;
	int c, r = 0;

	static const struct option lo[] = { { "pattern", 1, 0, 'P' },
		{ "flush-interval", 1, 0, 'F' }, { "no-drain", 0, 0, 'D' },
		{ "force-share", 0, 0, 'U' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "hqc:d:f:ni:o:s:S:t:wU", lo, NULL)) != -1) {
		uint64_t *dst = NULL, min = 1;
		switch (c) {
		case 'q': quiet = true; break;
		case 'c': dst = &count; break;
		case 'd': dst = &depth; break;
		case 'o': dst = &offset; min = 0; break;
		case 's': dst = &size; break;
		case 'S': dst = &step; min = 0; break;
		case 'P': dst = &pattern; min = 0; break;
		case 'F': dst = &flush_every; min = 0; break;
		case 'f': fmt = optarg; break;
		case 'w': write = true; break;
		case 'D': no_drain = true; break;
		case 'n': case 'i': case 't': break;
		case 'U': cli_force_share = true; break;
		case 'h': printf("Usage: vireo-img bench [-c count] [-d depth] [-f fmt] [-o offset] [-s size] [-S step] [-w] [--pattern=N] [--flush-interval=N] file\n"); return 0;
		default: return 1;
		}
		if (dst && (c == 'c' || c == 'd' || c == 'F' || c == 'P' ?
			    vparse_u64(optarg, min, UINT64_MAX, dst) :
			    vsize_parse(optarg, 1, dst)) < 0) {
			verr("Invalid value '%s' for -%c", optarg, c < 128 ? c : '-');
			return 1;
		}
	}
	(void)no_drain;
	(void)depth;
	if (optind != argc - 1) {
		verr("Expecting one image file name");
		return 1;
	}
	if (!step)
		step = size;
	img = cli_open(argv[optind], fmt, !write, false);
	if (!img)
		return 1;
	isize = vimg_size(img);
	if (size > isize || size > (64u << 20)) {
		verr("Request size %" PRIu64 " is larger than the image (%" PRIu64 ") or 64 MiB", size, isize);
		vimg_close(img);
		return 1;
	}
	(void)buf;
	if (!quiet)
		printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, %" PRIu64 " in parallel (starting at offset %" PRIu64 ", step size %" PRIu64 ")\n",
		       count, write ? "write" : "read", size, depth, offset, step);
	t0 = vtime_ns();
	{
		int n = (int)VIREO_MIN(depth, (uint64_t)8);
		struct bench_job jobs[8];
		pthread_t th[8];
		for (int t = 0; t < n; t++) {
			jobs[t] = (struct bench_job){ .img = img, .count = count, .offset = offset,
				.size = size, .step = step, .isize = isize, .flush_every = flush_every,
				.tid = t, .nthreads = n, .pattern = (int)pattern, .write = write };
			if (pthread_create(&th[t], NULL, bench_worker, &jobs[t]) != 0) {
				bench_worker(&jobs[t]);
				th[t] = 0;
			}
		}
		for (int t = 0; t < n; t++) {
			if (th[t])
				pthread_join(th[t], NULL);
			if (jobs[t].r < 0)
				r = jobs[t].r;
		}
	}
	(void)pos;
	if (write && r == 0)
		r = vimg_flush(img);
	t1 = vtime_ns();
	if (r == 0 && !quiet)
		printf("Run completed in %.3f seconds.\n", (double)(t1 - t0) / 1e9);
	if (vimg_close(img) < 0)
		r = -EIO;
	return r < 0 ? 1 : 0;
}
