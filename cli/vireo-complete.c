/*
 * vireo's verbs as data, and `vireo __complete ...`: what the bash
 * completion (contrib/bash-completion/vireo) asks, so that it never drifts
 * from the verbs and options vireo takes.  The word after __complete:
 *
 *   verbs             every verb, one a line
 *   opts VERB         VERB's options (--json...), one a line
 *   args VERB         what VERB's arguments are, in order, one a line:
 *                     vm, pool, volume (of the pool named first), network,
 *                     snapshot (of the VM named first), file, dir,
 *                     word:W1|W2 (one of these words), new (a name to make:
 *                     nothing to offer), value (free text)
 *   optarg OPT        what OPT (without its dashes) takes: flag (nothing),
 *                     value, file, dir, pool, volume, word:W1|W2
 *   vms | pools | networks | volumes POOL | snapshots VM
 *                     names from vireod (--connect and the rest as for any
 *                     verb), one a line; only names made of [A-Za-z0-9._-]
 *                     are printed (the completion offers nothing else, so a
 *                     hostile vireod cannot put shell syntax on the line)
 *
 * Exit status: 0, 2 (unknown question), or call()'s for the names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "vireo.h"

struct verb_info {
	const char *verb;
	const char *opts;   /* the options after the verb (space-separated, no dashes) */
	const char *args;   /* the positional arguments' kinds (space-separated) */
};

/* Every verb, in vireo --help's order.  parse_vopts() takes the options
 * of the verbs it parses from here (vireo_verb_opts()); the net-* verbs
 * and migrate parse their own (vireo-net.c, vireo-migrate.c), which
 * tests/daemon/completion.sh checks against this table. */
static const struct verb_info verbs[] = {
	{ "list", "all json name", "" },
	{ "define", "", "file" },
	{ "undefine", "force", "vm" },
	{ "start", "", "vm" },
	{ "shutdown", "timeout", "vm" },
	{ "destroy", "", "vm" },
	{ "suspend", "", "vm" },
	{ "resume", "", "vm" },
	{ "dominfo", "json", "vm" },
	{ "dumpdef", "", "vm" },
	{ "edit", "", "vm" },
	{ "autostart", "disable", "vm" },
	{ "console", "log readonly", "vm" },
	{ "reboot", "", "vm" },
	{ "save", "", "vm dir" },
	{ "restore", "", "dir" },
	{ "clone", "linked full", "vm new" },
	{ "snapshot-create-as", "", "vm new" },
	{ "snapshot-list", "json", "vm" },
	{ "snapshot-revert", "", "vm snapshot" },
	{ "snapshot-delete", "", "vm snapshot" },
	{ "migrate", "live listen downtime bandwidth target-ca target-token-file", "vm value" },
	{ "events", "all", "" },
	{ "pool-define-as", "target", "new word:dir dir" },
	{ "pool-list", "json", "" },
	{ "pool-undefine", "", "pool" },
	{ "vol-create-as", "format backing-vol", "pool new value" },
	{ "vol-list", "json", "pool" },
	{ "vol-delete", "pool", "volume" },
	{ "vol-clone", "", "pool volume new" },
	{ "vol-resize", "shrink", "pool volume value" },
	{ "vol-upload", "", "pool volume file" },
	{ "vol-download", "", "pool volume file" },
	{ "net-define", "", "file" },
	{ "net-undefine", "force", "network" },
	{ "net-start", "", "network" },
	{ "net-destroy", "force", "network" },
	{ "net-list", "all json", "" },
	{ "net-info", "json", "network" },
	{ "net-dumpdef", "", "network" },
	{ "net-autostart", "disable", "network" },
	{ "version", "", "" },
};

/* What an option takes (those not here are flags). */
static const struct { const char *opt, *kind; } optargs[] = {
	{ "timeout", "value" },
	{ "format", "word:qcow2|raw" },
	{ "backing-vol", "volume" },
	{ "pool", "pool" },
	{ "target", "dir" },
	{ "listen", "value" },
	{ "downtime", "value" },
	{ "bandwidth", "value" },
	{ "target-ca", "file" },
	{ "target-token-file", "file" },
};

static const struct verb_info *find_verb(const char *verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(verbs[i].verb, verb))
			return &verbs[i];
	return NULL;
}

const char *vireo_verb_opts(const char *verb)
{
	const struct verb_info *v = find_verb(verb);

	return v ? v->opts : "";
}

/* Print the space-separated words of @list one a line, with @prefix. */
static void print_words(const char *prefix, const char *list)
{
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, " ");
		if (n)
			printf("%s%.*s\n", prefix, (int)n, p);
		p += n;
		p += strspn(p, " ");
	}
}

static bool safe_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n <= 255 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "0123456789._-") == n && s[0] != '-';
}

/* GET @path: an array of objects; print each one's "name". */
static int print_names(const char *path)
{
	char *r = NULL;
	int rc = call("GET", path, NULL, &r);

	if (rc)
		return rc;
	json_object *a = json_tokener_parse(r);
	free(r);
	if (!json_object_is_type(a, json_type_array)) {
		json_object_put(a);
		return EXIT_REFUSED;
	}
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *o = json_object_array_get_idx(a, i);
		const char *n = json_object_is_type(o, json_type_object) ? str_field(o, "name") : NULL;
		if (safe_name(n))
			printf("%s\n", n);
	}
	json_object_put(a);
	return EXIT_OK;
}

int vireo_complete_static(int argc, char **argv)
{
	const char *q = argc > 0 ? argv[0] : "";

	if (!strcmp(q, "verbs") && argc == 1) {
		for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
			printf("%s\n", verbs[i].verb);
		return EXIT_OK;
	}
	if ((!strcmp(q, "opts") || !strcmp(q, "args")) && argc == 2) {
		const struct verb_info *v = find_verb(argv[1]);
		if (!v)
			return EXIT_USAGE;
		print_words(!strcmp(q, "opts") ? "--" : "", !strcmp(q, "opts") ? v->opts : v->args);
		return EXIT_OK;
	}
	if (!strcmp(q, "optarg") && argc == 2) {
		const char *o = argv[1];
		while (*o == '-')
			o++;
		for (size_t i = 0; i < sizeof(optargs) / sizeof(optargs[0]); i++) {
			if (!strcmp(optargs[i].opt, o)) {
				printf("%s\n", optargs[i].kind);
				return EXIT_OK;
			}
		}
		printf("flag\n");
		return EXIT_OK;
	}
	return -1;
}

int vireo_complete_names(int argc, char **argv)
{
	const char *q = argc > 0 ? argv[0] : "";
	char path[300];

	if (!strcmp(q, "vms") && argc == 1)
		return print_names("/vms");
	if (!strcmp(q, "pools") && argc == 1)
		return print_names("/pools");
	if (!strcmp(q, "networks") && argc == 1)
		return print_names("/networks");
	if ((!strcmp(q, "volumes") || !strcmp(q, "snapshots")) && argc == 2) {
		if (!safe_name(argv[1]) || strlen(argv[1]) > 127)
			return EXIT_USAGE;
		snprintf(path, sizeof(path), !strcmp(q, "volumes") ? "/pools/%s/volumes" :
			 "/vms/%s/snapshots", argv[1]);
		return print_names(path);
	}
	return EXIT_USAGE;
}
