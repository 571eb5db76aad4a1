/*
 * libFuzzer target: the pure parts of vireod's VM-state operations
 * (daemon/vmstate-parse.c): the request bodies of save, restore, clone
 * and snapshot creation, a save directory's tag file (a file anyone who
 * can write the directory controls), the path and snapshot-name checks,
 * and the rewrite of vireo-vmm's command line for the console and a
 * restore.
 *
 * Input: one byte choosing the parser, then its text (for the command
 * line: NUL-separated arguments, the last one the restore directory).
 * Seeds: fuzz/corpus/vmstate/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmdef.h"
#include "vmstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_body(const char *text, size_t len)
{
	static const char *const keys[] = { "name", "mode", "dir", NULL };
	static char vals[3][VMSTATE_FIELD_MAX + 1];
	char err[256];

	if (vmstate_body_fields(text, len, keys, vals, err, sizeof(err)) == 0) {
		for (int k = 0; k < 3; k++)
			if (strlen(vals[k]) > VMSTATE_FIELD_MAX)
				abort();
	} else if (!err[0]) {
		abort();   /* a refusal says why */
	}
}

static void fuzz_tag(const char *text, size_t len)
{
	char name[VMDEF_NAME_MAX + 1], uuid[37];

	if (vmstate_parse_tag(text, len, name, uuid) == 0 &&
	    (!vmdef_name_ok(name) || !vmdef_uuid_ok(uuid)))
		abort();
}

static void fuzz_argv(const char *text, size_t len)
{
	/* NUL-separated words: at most 64, the last the restore dir. */
	char **argv = calloc(66, sizeof(*argv));
	size_t n = 0;

	if (!argv)
		return;
	for (size_t off = 0; off < len && n < 64;) {
		size_t l = strnlen(text + off, len - off);
		argv[n] = strndup(text + off, l);
		if (!argv[n])
			break;
		n++;
		off += l + 1;
	}
	if (n < 2) {
		vmdef_argv_free(argv);
		return;
	}
	char *dir = argv[n - 1];
	argv[n - 1] = NULL;
	bool restore = dir[0] != '\0';
	/* A --console with no value after it is left as it is. */
	bool dangling = !strcmp(argv[n - 2], "--console");
	if (vm_argv_console_restore(argv, restore ? dir : NULL) == 0) {
		size_t m = 0;
		bool has_restore = false;
		for (; argv[m]; m++) {
			if (!dangling && m > 0 && !strcmp(argv[m - 1], "--console") &&
			    strcmp(argv[m], "stdio"))
				abort();
			/* gone with its value (unless it had none: last before --restore) */
			if (restore && m > 0 && !strcmp(argv[m], "--kernel") && argv[m + 1] &&
			    strcmp(argv[m + 1], "--restore"))
				abort();
			if (!strcmp(argv[m], "--restore"))
				has_restore = true;
		}
		if (m > 65 || (restore && (!has_restore || m < 2 || strcmp(argv[m - 2], "--restore") ||
					   strcmp(argv[m - 1], dir))))
			abort();
	}
	vmdef_argv_free(argv);
	free(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 70000)
		return 0;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	size_t len = size - 1;
	switch (data[0] % 4) {
	case 0: fuzz_body(text, len); break;
	case 1: fuzz_tag(text, len); break;
	case 2: fuzz_argv(text, len); break;
	case 3:
		vmstate_clean_abs_path(text);
		vmstate_snap_name_ok(text);
		break;
	}
	free(text);
	return 0;
}
