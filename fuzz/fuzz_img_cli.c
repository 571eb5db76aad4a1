/*
 * libFuzzer target for the vireo-img command line over hostile images: one
 * verb per input, run in-process through vireo_img_main() (cli/img-cli.h)
 * exactly as the tool parses it: info (human, JSON, --backing-chain),
 * check (read-only, -r leaks, -r all), map, snapshot -l/-c/-a/-d, compare
 * (with itself, a copy, or the backing file), convert to raw and qcow2
 * (compressed, from a snapshot), resize, rebase (-u and safe), commit,
 * create over the image, and bench.
 *
 * Input:
 *   image, [SEP, backing file,] option byte, selector byte
 * SEP is the 8 bytes "\0VCHAIN\n" (first occurrence), as fuzz_qcow2_chain
 * takes it, so that target's seeds work here too.  The selector picks the
 * verb (selector % 16), the option byte its flags (see run_verb): bits 0-1
 * the -f given (none: probe, qcow2, raw), bit 2 --probe-backing, bit 3
 * -U, bit 4 JSON output, bits 5-7 the verb's own choices.
 *
 * Files: a private directory made once per process holds the image as
 * top.qcow2, the backing file as base (absent without SEP) and whatever
 * the verb writes (copy.qcow2, out.raw, out.qcow2, ov.qcow2); every file is
 * removed before each input.  Every verb runs with --confine-backing, so
 * a backing name from the image reaches nothing outside that directory.
 *
 * Output: stdout is a memfd (dup2 once); the vlog messages and check's
 * report go to /dev/null (vlog_set_file).  A JSON output must parse with
 * json-c (strict, UTF-8 validated) as exactly one value; an image that
 * convert -O qcow2 wrote must check clean.  Otherwise the target aborts.
 *
 * FUZZ_IMG_CLI_VERBOSE=1 in the environment prints each command line and
 * its exit status, and lets the messages through to stderr.
 *
 * Seeds: fuzz/corpus/img_cli/ (the qcow2 and qcow2_chain seeds and the kept
 * crash images of tests/img/fuzz-crashes/ with the two bytes appended;
 * fuzz/gen_img_cli_seeds.py writes them).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "img-cli.h"

#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_img_cli: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	abort(); } } while (0)

static const uint8_t sep[8] = { 0, 'V', 'C', 'H', 'A', 'I', 'N', '\n' };
static const char *const work_files[] = {
	"top.qcow2", "base", "copy.qcow2", "out.raw", "out.qcow2", "ov.qcow2",
};

static char dir[64];
static char work_paths[VIREO_ARRAY_SIZE(work_files)][128];
static bool verbose;        /* FUZZ_IMG_CLI_VERBOSE=1: show each command */
static int out_fd = -1;     /* the memfd behind stdout */
static char *out_buf;
static size_t out_cap;

static void cleanup(void)
{
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(work_files); i++)
		unlink(work_paths[i]);
	rmdir(dir);
}

/* The path of a file of the directory, @name if it is none of them. */
static const char *work_path(const char *name)
{
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(work_files); i++)
		if (!strcmp(name, work_files[i]))
			return work_paths[i];
	return name;
}

static int setup(void)
{
	const char *t = getenv("TMPDIR");
	FILE *null;

	if (dir[0])
		return 0;
	snprintf(dir, sizeof(dir), "%s/fuzz-img-cli-XXXXXX",
		 t && t[0] && strlen(t) < 40 ? t : "/tmp");
	if (!mkdtemp(dir)) {
		dir[0] = 0;
		return -1;
	}
	atexit(cleanup);
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(work_files); i++)
		snprintf(work_paths[i], sizeof(work_paths[i]), "%s/%s", dir, work_files[i]);
	out_fd = memfd_create("fuzz-img-cli-stdout", MFD_CLOEXEC);
	if (out_fd < 0 || dup2(out_fd, STDOUT_FILENO) < 0)
		return -1;
	verbose = getenv("FUZZ_IMG_CLI_VERBOSE") != NULL;
	null = fopen("/dev/null", "w");
	if (!null)
		return -1;
	if (!verbose)
		vlog_set_file(null);
	opterr = 0;
	return 0;
}

/* What the last verb wrote to stdout (NUL-terminated); empties it. */
static const char *take_output(size_t *len)
{
	off_t n;

	fflush(stdout);
	n = lseek(out_fd, 0, SEEK_END);
	CHECK(n >= 0);
	if ((size_t)n + 1 > out_cap) {
		out_cap = (size_t)n + 1;
		out_buf = realloc(out_buf, out_cap);
		CHECK(out_buf);
	}
	CHECK(pread(out_fd, out_buf, (size_t)n, 0) == n);
	out_buf[n] = 0;
	*len = (size_t)n;
	CHECK(ftruncate(out_fd, 0) == 0 && lseek(out_fd, 0, SEEK_SET) == 0);
	return out_buf;
}

/* @s must be exactly one JSON value (whitespace around it). */
static void check_json(const char *s, size_t len, const char *what)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj;
	size_t used;

	CHECK(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, s, (int)len);
	if (!obj) {
		fprintf(stderr, "fuzz_img_cli: %s: not JSON (%s):\n%.4000s\n", what,
			json_tokener_error_desc(json_tokener_get_error(tok)), s);
		abort();
	}
	used = json_tokener_get_parse_end(tok);
	for (; used < len; used++)
		CHECK(s[used] == ' ' || s[used] == '\n' || s[used] == '\t' || s[used] == '\r');
	json_object_put(obj);
	json_tokener_free(tok);
}

/* Run one command line (NULL-terminated list after "vireo-img"). */
static int run(const char *const *args)
{
	char *argv[40];
	int argc = 0;

	argv[argc++] = (char *)"vireo-img";
	argv[argc++] = (char *)*args++;         /* the verb */
	argv[argc++] = (char *)"--confine-backing";
	for (; *args; args++) {
		/* File names become paths in the directory, but for a new
		 * backing name (which is relative to the image's directory). */
		bool keep = !strcmp(args[-1], "-b") && strcmp(argv[1], "commit");
		CHECK(argc < 38);
		argv[argc++] = (char *)(keep ? *args : work_path(*args));
	}
	argv[argc] = NULL;
	if (verbose) {
		int rc;
		for (int i = 0; i < argc; i++)
			fprintf(stderr, "%s%s", argv[i], i + 1 < argc ? " " : ": ");
		fflush(stderr);
		rc = vireo_img_main(argc, argv);
		fprintf(stderr, "exit %d\n", rc);
		return rc;
	}
	return vireo_img_main(argc, argv);
}

#define RUN(...) run((const char *const[]){ __VA_ARGS__, NULL })

/* One verb over the files in place. */
static void run_verb(uint8_t sel, uint8_t opt)
{
	static const char *const fmts[] = { NULL, "qcow2", "raw", "qcow2" };
	const char *fmt = fmts[opt & 3];
	bool json = opt & 16;
	uint8_t v = opt >> 5;                    /* the verb's own choices */
	const char *out = json ? "--output=json" : "--output=human";
	const char *a[24];
	const char *what;
	int n = 0, rc;
	size_t len;
	const char *s;

	/* Each verb appends its words after these. */
#define ARG(x) (a[n++] = (x))
#define FMT() do { if (fmt) { ARG("-f"); ARG(fmt); } } while (0)
	switch (sel % 16) {
	case 0:
		what = "info";
		ARG("info"); FMT(); ARG(out);
		if (v & 1)
			ARG("--backing-chain");
		break;
	case 1:
		what = "check";
		ARG("check"); FMT(); ARG(out);
		if (v & 1)
			ARG("-q");
		break;
	case 2:
		what = "check -r";
		ARG("check"); FMT(); ARG(out); ARG("-r"); ARG(v & 1 ? "leaks" : "all");
		break;
	case 3:
		what = "map";
		ARG("map"); FMT(); ARG(out);
		if (v & 1)
			ARG("--start-offset=64k");
		if (v & 2)
			ARG("--max-length=1M");
		break;
	case 4:
		what = "snapshot -l";
		ARG("snapshot"); FMT(); ARG("-l");
		break;
	case 5:
		what = "snapshot";
		ARG("snapshot"); FMT();
		ARG(v & 3 ? (v & 3) == 1 ? "-a" : "-d" : "-c");
		ARG(v & 4 ? "1" : "s1");
		break;
	case 6:
		what = "compare";
		ARG("compare"); FMT();
		if (v & 1)
			ARG("-s");
		if (v & 2) {
			ARG("-F"); ARG("qcow2");
		}
		ARG("top.qcow2");
		if (v & 4) {
			ARG("base");
		} else {
			/* A second file of the same bytes (its own lock, its own
			 * directory entry): itself when the copy fails. */
			int src = open(work_path("top.qcow2"), O_RDONLY | O_CLOEXEC);
			int dst = open(work_path("copy.qcow2"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			char b[65536];
			ssize_t k;
			while (src >= 0 && dst >= 0 && (k = read(src, b, sizeof(b))) > 0)
				if (vio_write_full(dst, b, (size_t)k) < 0)
					break;
			if (src >= 0)
				close(src);
			if (dst >= 0)
				close(dst);
			ARG(json ? "top.qcow2" : "copy.qcow2");   /* no JSON here */
		}
		break;
	case 7:
		what = "convert -O raw";
		ARG("convert"); FMT(); ARG("-O"); ARG("raw");
		if (v & 1)
			ARG("-S0");
		if (v & 2) {
			ARG("-l"); ARG(v & 4 ? "snapshot.id=1" : "s1");
		}
		ARG("top.qcow2"); ARG("out.raw");
		break;
	case 8:
		what = "convert -O qcow2";
		ARG("convert"); FMT(); ARG("-O"); ARG("qcow2");
		if (v & 1)
			ARG("-c");
		if (v & 2) {
			ARG("-o"); ARG(v & 4 ? "cluster_size=4k,compat=0.10" : "cluster_size=512,extended_l2=on");
		}
		ARG("top.qcow2"); ARG("out.qcow2");
		a[n] = NULL;
		rc = run(a);
		(void)take_output(&len);
		if (rc == 0) {
			/* What our own writer made checks clean. */
			rc = RUN("check", "-f", "qcow2", "--output=json", "out.qcow2");
			s = take_output(&len);
			check_json(s, len, "check of convert's output");
			if (rc != 0) {
				fprintf(stderr, "fuzz_img_cli: convert -O qcow2 wrote an image that checks %d:\n%s\n",
					rc, s);
				abort();
			}
		}
		return;
	case 9:
		what = "resize";
		ARG("resize"); FMT();
		if (v & 1)
			ARG("--shrink");
		ARG("top.qcow2");
		ARG(v & 6 ? (v & 6) == 2 ? "+1M" : (v & 6) == 4 ? "-64k" : "3M" : "1k");
		break;
	case 10:
		what = "rebase";
		ARG("rebase"); FMT();
		if (v & 1)
			ARG("-u");
		ARG("-b"); ARG(v & 4 ? "" : "base");
		if (!(v & 4)) {
			ARG("-F"); ARG(v & 2 ? "raw" : "qcow2");
		}
		ARG("top.qcow2");
		break;
	case 11:
		what = "commit";
		ARG("commit"); FMT();
		if (v & 1)
			ARG("-d");
		if (v & 2) {
			ARG("-b"); ARG("base");
		}
		ARG("top.qcow2");
		break;
	case 12:
		/* An overlay of our own over the image, then read through it. */
		what = "create";
		if (RUN("create", "-q", "-f", "qcow2", "-b", "top.qcow2", "-F",
			fmt ? fmt : "qcow2", "ov.qcow2") != 0) {
			(void)take_output(&len);
			return;
		}
		(void)take_output(&len);
		if (v & 1) {
			ARG("map"); ARG(out);
		} else {
			ARG("info"); ARG(out); ARG("--backing-chain");
		}
		ARG("ov.qcow2");
		a[n] = NULL;
		(void)run(a);
		s = take_output(&len);
		if (json && len)
			check_json(s, len, what);
		return;
	case 13:
		what = "bench";
		ARG("bench"); FMT(); ARG("-q"); ARG("-c"); ARG("16"); ARG("-d"); ARG(v & 4 ? "2" : "1");
		ARG("-s"); ARG(v & 2 ? "512" : "4k");
		if (v & 1)
			ARG("-w");
		break;
	case 14:
		/* Several sources into one output. */
		what = "convert sources";
		ARG("convert"); FMT(); ARG("-O"); ARG(v & 1 ? "qcow2" : "raw");
		ARG("top.qcow2"); ARG("top.qcow2");
		ARG(v & 1 ? "out.qcow2" : "out.raw");
		break;
	default:
		what = "info -U";
		ARG("info"); ARG("-U"); FMT(); ARG(out); ARG("--backing-chain");
		break;
	}
	/* --probe-backing is taken out anywhere on the line; -U only where
	 * the verb has it (resize stops parsing at its first operand). */
	if (opt & 4)
		ARG("--probe-backing");
	if ((opt & 8) && strcmp(a[0], "resize") && strcmp(a[0], "commit") &&
	    strcmp(a[0], "create"))
		ARG("-U");
	{
		/* Verbs that take one file: it comes last. */
		static const char *const one[] = { "info", "check", "map", "snapshot", "bench" };
		for (size_t i = 0; i < VIREO_ARRAY_SIZE(one); i++)
			if (!strcmp(a[0], one[i]))
				ARG("top.qcow2");
	}
	a[n] = NULL;
#undef ARG
#undef FMT
	rc = run(a);
	s = take_output(&len);
	if (json && len && (!strcmp(a[0], "info") || !strcmp(a[0], "check") ||
			    !strcmp(a[0], "map")))
		check_json(s, len, what);
	if (json && rc == 0 && (!strcmp(a[0], "info") || !strcmp(a[0], "map")))
		CHECK(len > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *base = NULL;
	size_t top_len, base_len = 0;
	uint8_t sel, opt;

	if (size < 2 || setup() < 0)
		return 0;
	sel = data[size - 1];
	opt = data[size - 2];
	size -= 2;
	top_len = size;
	for (size_t i = 0; i + sizeof(sep) <= size; i++) {
		if (!memcmp(data + i, sep, sizeof(sep))) {
			top_len = i;
			base = data + i + sizeof(sep);
			base_len = size - i - sizeof(sep);
			break;
		}
	}
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(work_files); i++)
		unlink(work_paths[i]);
	if (put_file(work_path("top.qcow2"), data, top_len) < 0)
		return 0;
	if (base && put_file(work_path("base"), base, base_len) < 0)
		return 0;
	run_verb(sel, opt);
	return 0;
}
