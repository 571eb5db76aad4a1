/* vireo-img: create, inspect, check and change disk images, with the verbs
 * and flags of qemu-img.  This file: dispatch, create, info, check,
 * snapshot, resize and shared helpers; img-copy.c: convert, commit, rebase,
 * compare, map, bench. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "img-cli.h"
#include "json-out.h"

static const char usage_text[] =
"Usage: vireo-img COMMAND [options]\n"
"Disk image tool for raw and qcow2 images, with qemu-img's verbs and flags.\n"
"\n"
"Commands:\n"
"  create [-q] [-f fmt] [-b backing [-F backing_fmt]] [-o options] [-u] file [size]\n"
"  info [-f fmt] [--output=human|json] [--backing-chain] [-U] file\n"
"  check [-q] [-f fmt] [--output=human|json] [-r leaks|all] [-T cache] [-U] file\n"
"  convert [-q] [-p] [-c] [-n] [-f fmt] [-O out_fmt] [-o options] [-B backing] [-S size] [-U] src... dst\n"
"  snapshot [-q] [-f fmt] [-l | -c name | -a name | -d name] [-U] file\n"
"  resize [-q] [-f fmt] [--shrink] file [+|-]size\n"
"  commit [-q] [-p] [-f fmt] [-b base] [-d] file\n"
"  rebase [-q] [-p] [-f fmt] [-u] -b backing [-F backing_fmt] file\n"
"  map [-f fmt] [--output=human|json] [--start-offset=N] [--max-length=N] [-U] file\n"
"  compare [-q] [-p] [-s] [-f fmt] [-F fmt] [-U] file1 file2\n"
"  bench [-q] [-c count] [-d depth] [-f fmt] [-n] [-o offset] [--pattern=N]\n"
"        [-s size] [-S step] [-t cache] [-w] [--flush-interval=N] [-U] file\n"
"\n"
"Create options (-o, comma separated): size, compat (0.10|1.1), cluster_size,\n"
"  refcount_bits, lazy_refcounts (on|off), compression_type (zlib|zstd),\n"
"  extended_l2 (on|off), backing_file, backing_fmt, preallocation (off|metadata).\n"
"Sizes take the suffixes k, M, G, T (powers of 1024).\n"
"Backing files must name their format (-F); --probe-backing (any command)\n"
"  detects the format of those that do not instead of refusing them.\n"
"--confine-backing (any command) refuses backing files outside the image's\n"
"  directory (for images from an untrusted source).\n"
"check exits 0 (clean), 1 (check failed), 2 (corruptions), 3 (leaks only),\n"
"63 (format has nothing to check); compare exits 0 (same), 1 (differ), 2 (error).\n"
"See vireo-img(1).\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

bool cli_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	const uint64_t *w;
	size_t i = 0;

	for (; i < len && ((uintptr_t)(p + i) & 7); i++)
		if (p[i])
			return false;
	w = (const uint64_t *)(const void *)(p + i);
	for (; i + 32 <= len; i += 32, w += 4)
		if (w[0] | w[1] | w[2] | w[3])
			return false;
	for (; i < len; i++)
		if (p[i])
			return false;
	return true;
}

char *cli_human_size(uint64_t v, char *buf, size_t len)
{
	static const char *const suf[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	int e, i;

	frexp((double)v / (1000.0 / 1024.0), &e);
	i = (e - 1) / 10;
	if (i < 0)
		i = 0;
	if (i > 6)
		i = 6;
	snprintf(buf, len, "%0.3g %s", (double)v / (double)(1ull << (i * 10)), suf[i]);
	return buf;
}

void cli_progress(bool on, uint64_t done, uint64_t total)
{
	if (!on)
		return;
	printf("    (%.2f/100%%)\r", total ? 100.0 * (double)done / (double)total : 100.0);
	fflush(stdout);
}

bool cli_probe_backing;
bool cli_force_share;
bool cli_confine_backing;

void cli_open_failed(const char *path, int r, const char *err)
{
	verr("Could not open '%s': %s%s", path, err,
	     r == -EBUSY ? "; is it in use by a VM? (-U inspects it read-only anyway)" : "");
}

struct vimg *cli_open(const char *path, const char *fmt, bool readonly,
		      bool no_backing)
{
	return cli_open_cache(path, fmt, readonly, no_backing, false);
}

struct vimg *cli_open_cache(const char *path, const char *fmt, bool readonly,
			    bool no_backing, bool unsafe)
{
	struct vimg_open_opts o = { .format = fmt, .readonly = readonly,
				    .no_backing = no_backing, .unsafe = unsafe,
				    .require_backing_fmt = !cli_probe_backing,
				    .confine_backing = cli_confine_backing,
				    .force_share = cli_force_share && readonly };
	struct vimg *img;
	char err[1024];
	int r = vimg_open(path, &o, &img, err, sizeof(err));

	if (r < 0) {
		cli_open_failed(path, r, err);
		return NULL;
	}
	return img;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

int cli_parse_create_opts(const char *s, struct vimg_create_opts *o)
{
	char *dup = strdup(s), *save = NULL, *tok;
	int r = 0;

	for (tok = strtok_r(dup, ",", &save); tok && !r; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		const char *v = eq ? eq + 1 : "on";
		uint64_t n;
		if (eq)
			*eq = 0;
		if (!strcmp(tok, "size")) {
			r = vsize_parse(v, 1, &o->size);
		} else if (!strcmp(tok, "cluster_size")) {
			r = vsize_parse(v, 1, &n);
			o->cluster_size = (uint32_t)n;
			if (!r && n > (2u << 20))
				r = -ERANGE;
		} else if (!strcmp(tok, "refcount_bits")) {
			r = vparse_u64(v, 1, 64, &n);
			o->refcount_bits = (int)n;
		} else if (!strcmp(tok, "compat")) {
			if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
				o->version = 2;
			else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
				o->version = 3;
			else
				r = -EINVAL;
		} else if (!strcmp(tok, "lazy_refcounts")) {
			r = parse_bool(v, &o->lazy_refcounts);
		} else if (!strcmp(tok, "extended_l2")) {
			r = parse_bool(v, &o->extended_l2);
		} else if (!strcmp(tok, "compression_type")) {
			if (!strcmp(v, "zlib"))
				o->compression = 0;
			else if (!strcmp(v, "zstd"))
				o->compression = 1;
			else
				r = -EINVAL;
		} else if (!strcmp(tok, "backing_file")) {
			o->backing = strdup(v);
		} else if (!strcmp(tok, "backing_fmt")) {
			o->backing_fmt = strdup(v);
		} else if (!strcmp(tok, "preallocation")) {
			if (!strcmp(v, "metadata"))
				o->preallocate_metadata = true;
			else if (!strcmp(v, "falloc") || !strcmp(v, "full"))
				vwarn("preallocation=%s is not implemented: creating a sparse image", v);
			else if (strcmp(v, "off"))
				r = -ENOTSUP;
		} else {
			verr("Invalid option '%s': known are size, compat, cluster_size, refcount_bits, lazy_refcounts, compression_type, extended_l2, backing_file, backing_fmt, preallocation",
			     tok);
			r = -EINVAL;
			break;
		}
		if (r < 0)
			verr("Invalid value '%s' for option '%s'", v, tok);
	}
	free(dup);
	return r;
}

static enum vimg_format fmt_of(const char *s)
{
	if (!s || !strcmp(s, "raw"))
		return VIMG_FMT_RAW;
	if (!strcmp(s, "qcow2"))
		return VIMG_FMT_QCOW2;
	return VIMG_FMT_NONE;
}

static int cmd_create(int argc, char **argv)
{
	struct vimg_create_opts o = { 0 };
	const char *fmt = "raw", *path;
	bool quiet = false;
	char err[1024];
	int c, r;

	static const struct option lo[] = { { "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "hqf:b:F:o:u", lo, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case 'f': fmt = optarg; break;
		case 'b': o.backing = optarg; break;
		case 'F': o.backing_fmt = optarg; break;
		case 'u': break;
		case 'o':
			if (!strcmp(optarg, "help") || !strcmp(optarg, "?")) {
				usage(stdout);
				return 0;
			}
			if (cli_parse_create_opts(optarg, &o) < 0)
				return 1;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(vlog_file()); return 1;
		}
	}
	if (optind >= argc) {
		verr("Expecting image file name");
		return 1;
	}
	path = argv[optind++];
	if (optind < argc) {
		if (vsize_parse(argv[optind], 1, &o.size) < 0) {
			verr("Invalid image size '%s': use a number with an optional k, M, G, T suffix",
			     argv[optind]);
			return 1;
		}
		optind++;
	}
	if (optind < argc) {
		verr("Unexpected argument '%s'", argv[optind]);
		return 1;
	}
	o.format = fmt_of(fmt);
	if (o.format == VIMG_FMT_NONE) {
		verr("Unknown file format '%s' (use raw or qcow2)", fmt);
		return 1;
	}
	if (!o.size && !o.backing) {
		verr("Image creation needs a size parameter");
		return 1;
	}
	if (o.backing && !o.backing_fmt && o.format == VIMG_FMT_QCOW2 &&
	    !cli_probe_backing) {
		verr("Backing file specified without backing format: give -F raw|qcow2 "
		     "(or --probe-backing to detect and record it)");
		return 1;
	}
	if (o.backing && o.format == VIMG_FMT_QCOW2 && (!o.backing_fmt || !o.size)) {
		/* Probe like qemu-img does, but record what was found; and take
		 * the size from the backing file here, so that the Formatting
		 * line shows it. */
		struct vimg_open_opts bo = { .readonly = true, .no_backing = true,
					     .format = o.backing_fmt };
		struct vimg *b;
		char *bp = NULL;
		const char *slash = strrchr(path, '/');
		if (o.backing[0] != '/' && slash &&
		    asprintf(&bp, "%.*s/%s", (int)(slash - path), path, o.backing) < 0)
			return 1;
		if (vimg_open(bp ? bp : o.backing, &bo, &b, err, sizeof(err)) == 0) {
			if (!o.backing_fmt)
				o.backing_fmt = vimg_format_name(vimg_get_format(b));
			if (!o.size)
				o.size = vimg_size(b);
			vimg_close(b);
		}
		free(bp);
	}
	if (!quiet) {
		if (o.format == VIMG_FMT_QCOW2)
			printf("Formatting '%s', fmt=qcow2 cluster_size=%u extended_l2=%s compression_type=%s size=%" PRIu64 "%s%s%s%s lazy_refcounts=%s refcount_bits=%d\n",
			       path, o.cluster_size ? o.cluster_size : 65536,
			       o.extended_l2 ? "on" : "off", o.compression ? "zstd" : "zlib",
			       o.size, o.backing ? " backing_file=" : "", o.backing ? o.backing : "",
			       o.backing_fmt ? " backing_fmt=" : "", o.backing_fmt ? o.backing_fmt : "",
			       o.lazy_refcounts ? "on" : "off",
			       o.refcount_bits ? o.refcount_bits : 16);
		else
			printf("Formatting '%s', fmt=raw size=%" PRIu64 "\n", path, o.size);
	}
	r = vimg_create(path, &o, err, sizeof(err));
	if (r < 0) {
		verr("%s: %s", path, err);
		return 1;
	}
	return 0;
}

static void print_snapshots_human(struct vimg_snapshot *s, int n)
{
	char sz[32], date[64], clk[64];

	printf("ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n");
	for (int i = 0; i < n; i++) {
		time_t t = (time_t)s[i].date_sec;
		struct tm tm;
		uint64_t ms = s[i].vm_clock_nsec / 1000000;
		localtime_r(&t, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(clk, sizeof(clk), "%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 ".%03" PRIu64,
			 ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
		printf("%-10s%-17s%8s%20s%13s%11d\n", s[i].id, s[i].name,
		       cli_human_size(s[i].vm_state_size, sz, sizeof(sz)), date, clk, 0);
	}
}

/* Human output when w is NULL, else one JSON object. */
static int info_one(struct vimg *img, struct jw *w)
{
	struct vimg_info in;
	struct vimg_snapshot *snaps = NULL;
	int n = 0, r;
	char a[32], b[32];

	r = vimg_get_info(img, &in);
	if (r < 0) {
		verr("%s: %s", vimg_filename(img), vimg_errmsg(img));
		return 1;
	}
	vimg_snapshot_list(img, &snaps, &n);
	if (!w) {
		printf("image: %s\nfile format: %s\n", vimg_filename(img), vimg_format_name(in.format));
		printf("virtual size: %s (%" PRIu64 " bytes)\n", cli_human_size(in.size, a, sizeof(a)), in.size);
		printf("disk size: %s\n", cli_human_size(in.actual_size, b, sizeof(b)));
		if (in.format == VIMG_FMT_QCOW2) {
			printf("cluster_size: %u\n", in.cluster_size);
			if (in.backing[0]) {
				printf("backing file: %s\n", in.backing);
				if (in.backing_fmt[0])
					printf("backing file format: %s\n", in.backing_fmt);
			}
			if (n) {
				printf("Snapshot list:\n");
				print_snapshots_human(snaps, n);
			}
			printf("Format specific information:\n");
			printf("    compat: %s\n", in.version >= 3 ? "1.1" : "0.10");
			if (in.version >= 3) {
				printf("    compression type: %s\n", in.compression ? "zstd" : "zlib");
				printf("    lazy refcounts: %s\n", in.lazy_refcounts ? "true" : "false");
			}
			printf("    refcount bits: %d\n", in.refcount_bits);
			printf("    corrupt: %s\n", in.corrupt ? "true" : "false");
			if (in.version >= 3)
				printf("    extended l2: %s\n", in.extended_l2 ? "true" : "false");
		}
		free(snaps);
		return 0;
	}
	jw_object(w, NULL, false);
	if (n) {
		jw_array(w, "snapshots", false);
		for (int i = 0; i < n; i++) {
			jw_object(w, NULL, false);
			jw_int(w, "icount", 0);
			jw_u64(w, "vm-clock-nsec", snaps[i].vm_clock_nsec % (uint64_t)1000000000);
			jw_str(w, "name", snaps[i].name);
			jw_u64(w, "date-sec", snaps[i].date_sec);
			jw_u64(w, "date-nsec", snaps[i].date_nsec);
			jw_u64(w, "vm-clock-sec", snaps[i].vm_clock_nsec / (uint64_t)1000000000);
			jw_str(w, "id", snaps[i].id);
			jw_u64(w, "vm-state-size", snaps[i].vm_state_size);
			jw_end(w);
		}
		jw_end(w);
	}
	jw_u64(w, "virtual-size", in.size);
	jw_str(w, "filename", vimg_filename(img));
	if (in.format == VIMG_FMT_QCOW2)
		jw_u64(w, "cluster-size", in.cluster_size);
	jw_str(w, "format", vimg_format_name(in.format));
	jw_u64(w, "actual-size", in.actual_size);
	if (in.format == VIMG_FMT_QCOW2) {
		jw_object(w, "format-specific", false);
		jw_str(w, "type", "qcow2");
		jw_object(w, "data", false);
		jw_str(w, "compat", in.version >= 3 ? "1.1" : "0.10");
		if (in.version >= 3) {
			jw_str(w, "compression-type", in.compression ? "zstd" : "zlib");
			jw_bool(w, "lazy-refcounts", in.lazy_refcounts);
		}
		jw_int(w, "refcount-bits", in.refcount_bits);
		jw_bool(w, "corrupt", in.corrupt);
		if (in.version >= 3)
			jw_bool(w, "extended-l2", in.extended_l2);
		jw_end(w);
		jw_end(w);
		if (in.backing[0]) {
			struct vimg *bk = vimg_backing(img);
			jw_str(w, "full-backing-filename", bk ? vimg_filename(bk) : in.backing);
			jw_str(w, "backing-filename", in.backing);
			if (in.backing_fmt[0])
				jw_str(w, "backing-filename-format", in.backing_fmt);
		}
	}
	jw_bool(w, "dirty-flag", in.dirty);
	jw_end(w);
	free(snaps);
	return 0;
}

static int cmd_info(int argc, char **argv)
{
	const char *fmt = NULL, *output = "human";
	bool chain = false, json;
	struct vimg *img;
	struct jw w;
	int c, r = 0;

	static const struct option lo[] = {
		{ "output", 1, 0, 'O' }, { "backing-chain", 0, 0, 'B' },
		{ "force-share", 0, 0, 'U' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "hf:U", lo, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'O': output = optarg; break;
		case 'B': chain = true; break;
		case 'U': cli_force_share = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(vlog_file()); return 1;
		}
	}
	if (optind != argc - 1) {
		verr("Expecting one image file name");
		return 1;
	}
	if (strcmp(output, "json") && strcmp(output, "human")) {
		verr("--output must be human or json, not '%s'", output);
		return 1;
	}
	json = !strcmp(output, "json");
	img = cli_open(argv[optind], fmt, true, !chain);
	if (!img)
		return 1;
	jw_init(&w, stdout);
	if (chain && json)
		jw_array(&w, NULL, false);
	for (struct vimg *cur = img; cur; cur = chain ? vimg_backing(cur) : NULL) {
		r |= info_one(cur, json ? &w : NULL);
		if (!json && chain && vimg_backing(cur))
			printf("\n");
	}
	if (chain && json)
		jw_end(&w);
	vimg_close(img);
	return r;
}

static int cmd_check(int argc, char **argv)
{
	const char *fmt = NULL, *output = "human";
	int fix = 0, c, r;
	bool quiet = false, json;
	struct vimg_check res;
	struct vimg *img;

	static const struct option lo[] = {
		{ "output", 1, 0, 'O' }, { "force-share", 0, 0, 'U' },
		{ "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "hqf:r:T:U", lo, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case 'f': fmt = optarg; break;
		case 'O': output = optarg; break;
		case 'r':
			if (!strcmp(optarg, "leaks"))
				fix = VIMG_FIX_LEAKS;
			else if (!strcmp(optarg, "all"))
				fix = VIMG_FIX_LEAKS | VIMG_FIX_ERRORS;
			else {
				verr("Unknown option value for -r (expecting 'leaks' or 'all'): %s", optarg);
				return 1;
			}
			break;
		case 'T': break;
		case 'U': cli_force_share = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(vlog_file()); return 1;
		}
	}
	if (optind != argc - 1) {
		verr("Expecting one image file name");
		return 1;
	}
	json = !strcmp(output, "json");
	{
		struct vimg_open_opts o = { .format = fmt, .readonly = !fix,
					    .no_backing = true, .no_repair = true,
					    .force_share = cli_force_share && !fix };
		char err[1024];
		int r2 = vimg_open(argv[optind], &o, &img, err, sizeof(err));
		if (r2 < 0) {
			cli_open_failed(argv[optind], r2, err);
			return 1;
		}
	}
	if (vimg_get_format(img) != VIMG_FMT_QCOW2) {
		verr("This image format does not support checks");
		vimg_close(img);
		return 63;
	}
	r = vimg_check(img, fix, &res, quiet || json ? NULL : vlog_file());
	if (r < 0) {
		verr("Check failed: %s", vimg_errmsg(img));
		vimg_close(img);
		return 1;
	}
	if (json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_object(&w, NULL, false);
		jw_u64(&w, "image-end-offset", res.image_end_offset);
		if (res.compressed_clusters)
			jw_u64(&w, "compressed-clusters", res.compressed_clusters);
		jw_u64(&w, "total-clusters", res.total_clusters);
		jw_u64(&w, "check-errors", res.check_errors);
		if (res.leaks)
			jw_u64(&w, "leaks", res.leaks);
		if (res.corruptions)
			jw_u64(&w, "corruptions", res.corruptions);
		if (res.leaks_fixed)
			jw_u64(&w, "leaks-fixed", res.leaks_fixed);
		if (res.corruptions_fixed)
			jw_u64(&w, "corruptions-fixed", res.corruptions_fixed);
		if (res.allocated_clusters)
			jw_u64(&w, "allocated-clusters", res.allocated_clusters);
		jw_str(&w, "filename", argv[optind]);
		jw_str(&w, "format", "qcow2");
		if (res.fragmented_clusters)
			jw_u64(&w, "fragmented-clusters", res.fragmented_clusters);
		jw_end(&w);
	} else if (!quiet) {
		if (res.leaks_fixed || res.corruptions_fixed) {
			printf("The following inconsistencies were found and repaired:\n\n");
			printf("    %" PRIu64 " leaked clusters\n    %" PRIu64 " corruptions\n\n",
			       res.leaks_fixed, res.corruptions_fixed);
			printf("Double checking the fixed image now...\n");
		}
		if (!res.corruptions && !res.leaks && !res.check_errors)
			printf("No errors were found on the image.\n");
		if (res.corruptions)
			printf("\n%" PRIu64 " errors were found on the image.\n"
			       "Data may be corrupted, or further writes to the image may corrupt it.\n",
			       res.corruptions);
		if (res.leaks)
			printf("\n%" PRIu64 " leaked clusters were found on the image.\n"
			       "This means waste of disk space, but no harm to data.\n", res.leaks);
		if (res.total_clusters && res.allocated_clusters)
			printf("%" PRIu64 "/%" PRIu64 " = %.2f%% allocated, %.2f%% fragmented, %.2f%% compressed clusters\n",
			       res.allocated_clusters, res.total_clusters,
			       100.0 * (double)res.allocated_clusters / (double)res.total_clusters,
			       100.0 * (double)res.fragmented_clusters / (double)res.allocated_clusters,
			       100.0 * (double)res.compressed_clusters / (double)res.allocated_clusters);
		printf("Image end offset: %" PRIu64 "\n", res.image_end_offset);
	}
	r = vimg_close(img);
	if (r < 0) {
		verr("%s: %s", argv[optind], strerror(-r));
		return 1;
	}
	if (res.check_errors)
		return 1;
	if (res.corruptions)
		return 2;
	if (res.leaks)
		return 3;
	return 0;
}

static int cmd_snapshot(int argc, char **argv)
{
	const char *fmt = NULL, *name = NULL;
	char action = 0;
	struct vimg *img;
	int c, r = 0;

	static const struct option lo[] = { { "force-share", 0, 0, 'U' },
		{ "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "hqf:lc:a:d:U", lo, NULL)) != -1) {
		switch (c) {
		case 'q': break;
		case 'U': cli_force_share = true; break;
		case 'f': fmt = optarg; break;
		case 'l': case 'c': case 'a': case 'd':
			if (action) {
				verr("Cannot mix snapshot actions -l, -c, -a, -d");
				return 1;
			}
			action = (char)c;
			name = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(vlog_file()); return 1;
		}
	}
	if (optind != argc - 1) {
		verr("Expecting one image file name");
		return 1;
	}
	if (!action)
		action = 'l';
	img = cli_open(argv[optind], fmt, action == 'l', true);
	if (!img)
		return 1;
	if (action == 'l') {
		struct vimg_snapshot *s;
		int n;
		vimg_snapshot_list(img, &s, &n);
		if (n) {
			printf("Snapshot list:\n");
			print_snapshots_human(s, n);
		}
		free(s);
	} else {
		if (action == 'c')
			r = vimg_snapshot_create(img, name);
		else if (action == 'a')
			r = vimg_snapshot_apply(img, name);
		else
			r = vimg_snapshot_delete(img, name);
		if (r < 0)
			verr("Could not %s snapshot '%s': %s",
			     action == 'c' ? "create" : action == 'a' ? "apply" : "delete",
			     name, vimg_errmsg(img));
	}
	if (vimg_close(img) < 0 && r == 0) {
		verr("%s: flush failed", argv[optind]);
		r = -EIO;
	}
	return r < 0 ? 1 : 0;
}

static int cmd_resize(int argc, char **argv)
{
	const char *fmt = NULL, *s;
	bool shrink = false, quiet = false;
	uint64_t n, size, cur;
	struct vimg *img;
	int c, r, sign = 0;

	static const struct option lo[] = { { "shrink", 0, 0, 'S' },
		{ "help", 0, 0, 'h' }, { "preallocation", 1, 0, 'P' }, { 0, 0, 0, 0 } };
	/* A leading '-' in "-1G" is a size, not an option: stop at the file. */
	while ((c = getopt_long(argc, argv, "+hqf:", lo, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case 'f': fmt = optarg; break;
		case 'S': shrink = true; break;
		case 'P': break;
		case 'h': usage(stdout); return 0;
		default: usage(vlog_file()); return 1;
		}
	}
	if (optind + 2 != argc) {
		verr("Expecting image file name and size");
		return 1;
	}
	s = argv[optind + 1];
	if (*s == '+' || *s == '-')
		sign = *s++ == '+' ? 1 : -1;
	if (vsize_parse(s, 1, &n) < 0) {
		verr("Invalid image size specified: '%s'", argv[optind + 1]);
		return 1;
	}
	img = cli_open(argv[optind], fmt, false, true);
	if (!img)
		return 1;
	cur = vimg_size(img);
	if (sign < 0 && n > cur) {
		verr("New image size %s would be negative", argv[optind + 1]);
		vimg_close(img);
		return 1;
	}
	size = sign > 0 ? cur + n : sign < 0 ? cur - n : n;
	if (size < cur && !shrink) {
		verr("Use the --shrink option to perform a shrink operation (from %" PRIu64 " to %" PRIu64 " bytes).",
		     cur, size);
		vimg_close(img);
		return 1;
	}
	r = vimg_resize(img, size);
	if (r < 0)
		verr("Could not resize '%s' to %" PRIu64 " bytes: %s", argv[optind], size,
		     vimg_errmsg(img));
	if (vimg_close(img) < 0 && r == 0)
		r = -EIO;
	if (r == 0 && !quiet)
		printf("Image resized.\n");
	return r < 0 ? 1 : 0;
}

int vireo_img_main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "create", cmd_create }, { "info", cmd_info }, { "check", cmd_check },
		{ "convert", cmd_convert }, { "snapshot", cmd_snapshot },
		{ "resize", cmd_resize }, { "commit", cmd_commit },
		{ "rebase", cmd_rebase }, { "map", cmd_map },
		{ "compare", cmd_compare }, { "bench", cmd_bench },
	};

	vlog_set_prog("vireo-img");
	/* Nothing is left from an earlier call in this process. */
	cli_probe_backing = false;
	cli_force_share = false;
	cli_confine_backing = false;
	optind = 0;   /* glibc: start getopt afresh */
	if (argc < 2) {
		usage(vlog_file());
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("vireo-img version 0.1.0\n");
		return 0;
	}
	/* --probe-backing and --confine-backing are accepted by every verb:
	 * take them out here. */
	{
		int j = 2;
		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--probe-backing"))
				cli_probe_backing = true;
			else if (!strcmp(argv[i], "--confine-backing"))
				cli_confine_backing = true;
			else
				argv[j++] = argv[i];
		}
		argv[j] = NULL;
		argc = j;
	}
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(cmds); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	verr("Command not found: %s (see 'vireo-img --help')", argv[1]);
	return 1;
}
