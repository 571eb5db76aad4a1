/* json-c's tokener stops after the first JSON value and says nothing of
 * what follows it: a body such as {"a":1}xyz would be taken as {"a":1}.
 * The parsers of client bodies (api.c, migrate-parse.c, vmstate-parse.c)
 * ask json_rest_blank() as well, so that only whitespace may follow. */
#ifndef VIREO_DAEMON_JSON_WHOLE_H
#define VIREO_DAEMON_JSON_WHOLE_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/* After a successful json_tokener_parse_ex(tok, text, len): true when the
 * rest of text is JSON whitespace (or nothing). */
static inline bool json_rest_blank(struct json_tokener *tok, const char *text, size_t len)
{
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
			return false;
	return true;
}

#endif
