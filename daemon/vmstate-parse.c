/*
 * The pure parts of vmstate.c (vmstate.h): the request bodies, the save
 * tag file, path and snapshot-name checks and vireo-vmm's command line for
 * a console or a restore.  No I/O: fuzz/fuzz_vmstate.c runs them directly.
 */
#include "json-whole.h"
#include "vmstate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <vireo/util.h>

#include "vmdef.h"

static bool boot_only(const char *opt)
{
	static const char *const with_value[] = { "--kernel", "--initrd", "--cmdline", "--cpus",
						  "--memory", "--disk", "--net" };
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(with_value); i++)
		if (!strcmp(opt, with_value[i]))
			return true;
	return false;
}

int vm_argv_console_restore(char **argv, const char *restore_dir)
{
	size_t n = 0, out = 0;
	bool room = false;

	while (argv[n])
		n++;
	for (size_t i = 0; i + 1 < n; i++) {
		if (!strcmp(argv[i], "--console")) {
			char *s = strdup("stdio");
			if (!s)
				return -ENOMEM;
			free(argv[i + 1]);
			argv[i + 1] = s;
			i++;
		}
	}
	if (!restore_dir)
		return 0;
	/* A restore: the machine and its devices come from the save. */
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && i + 1 < n && boot_only(argv[i])) {
			free(argv[i]);
			free(argv[i + 1]);
			i++;
			room = true;
			continue;
		}
		if (i > 0 && (!strcmp(argv[i], "--rng") || !strcmp(argv[i], "--balloon"))) {
			free(argv[i]);
			continue;
		}
		argv[out++] = argv[i];
	}
	argv[out] = NULL;
	/* Two slots went with an option and its value: room for these two. */
	if (!room)
		return -EINVAL;
	argv[out] = strdup("--restore");
	argv[out + 1] = strdup(restore_dir);
	argv[out + 2] = NULL;
	if (!argv[out] || !argv[out + 1]) {
		free(argv[out]);
		free(argv[out + 1]);
		argv[out] = NULL;
		return -ENOMEM;
	}
	return 0;
}

int vmstate_body_fields(const char *body, size_t len, const char *const *keys,
			char vals[][VMSTATE_FIELD_MAX + 1], char *err, size_t errlen)
{
	for (size_t k = 0; keys[k]; k++)
		vals[k][0] = '\0';
	if (len > (size_t)VMDEF_MAX_JSON) {
		snprintf(err, errlen, "the body is larger than 64 KiB");
		return -1;
	}
	if (memchr(body, '\0', len)) {
		snprintf(err, errlen, "the body contains a NUL byte");
		return -1;
	}
	struct json_tokener *tok = json_tokener_new_ex(4);
	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	json_object *o = json_tokener_parse_ex(tok, body, (int)len);
	bool ok = o && json_tokener_get_error(tok) == json_tokener_success &&
		  json_rest_blank(tok, body, len) && json_object_is_type(o, json_type_object);
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(o);
		snprintf(err, errlen, "the body must be a JSON object");
		return -1;
	}
	int r = 0;
	json_object_object_foreach(o, key, v) {
		size_t k;
		for (k = 0; keys[k] && strcmp(keys[k], key); k++)
			;
		if (!keys[k]) {
			snprintf(err, errlen, "%.60s: unknown field", key);
			r = -1;
			break;
		}
		if (!json_object_is_type(v, json_type_string)) {
			snprintf(err, errlen, "%s: must be a string", key);
			r = -1;
			break;
		}
		const char *s = json_object_get_string(v);
		size_t n = (size_t)json_object_get_string_len(v);
		if (n == 0 || n > VMSTATE_FIELD_MAX || strlen(s) != n) {
			snprintf(err, errlen, "%s: must be 1 to %d characters (no NUL)", key,
				 VMSTATE_FIELD_MAX);
			r = -1;
			break;
		}
		memcpy(vals[k], s, n + 1);
	}
	json_object_put(o);
	return r;
}

int vmstate_parse_tag(const char *text, size_t len, char name[VMDEF_NAME_MAX + 1], char uuid[37])
{
	if (len == 0 || len > 4096 || memchr(text, '\0', len))
		return -1;
	struct json_tokener *tok = json_tokener_new_ex(4);
	if (!tok)
		return -1;
	json_object *o = json_tokener_parse_ex(tok, text, (int)len), *v, *u;
	bool ok = o && json_tokener_get_error(tok) == json_tokener_success &&
		  json_rest_blank(tok, text, len) && json_object_is_type(o, json_type_object) &&
		  json_object_object_get_ex(o, "vm", &v) && json_object_is_type(v, json_type_string) &&
		  json_object_object_get_ex(o, "uuid", &u) && json_object_is_type(u, json_type_string) &&
		  vmdef_name_ok(json_object_get_string(v)) && vmdef_uuid_ok(json_object_get_string(u));
	json_tokener_free(tok);
	if (ok) {
		snprintf(name, VMDEF_NAME_MAX + 1, "%s", json_object_get_string(v));
		snprintf(uuid, 37, "%s", json_object_get_string(u));
	}
	json_object_put(o);
	return ok ? 0 : -1;
}

bool vmstate_clean_abs_path(const char *p)
{
	if (p[0] != '/')
		return false;
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	for (const char *c = p; c; c = strchr(c + 1, '/')) {
		const char *seg = c + 1;
		size_t n = strcspn(seg, "/");
		if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
	}
	return true;
}

bool vmstate_snap_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > VMSTATE_SNAP_NAME_MAX ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}
