/*
 * libFuzzer target: vireod's bearer token check (daemon/bearer.c), run on
 * the Authorization header of every request to its TCP listener, and the
 * token file's parser.
 *
 * Input: the first byte picks the token's length among the input's
 * prefix, the rest is split in a token file text and a header.  The token
 * parser accepts only 16 to 512 visible characters; the check accepts a
 * header exactly when it is "Bearer " followed by the token (compared
 * here with memcmp).  Seeds: fuzz/corpus/bearer/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bearer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char tok[BEARER_TOKEN_MAX + 1], err[200];

	if (size < 1)
		return 0;
	size_t split = data[0] % (size);
	char *text = strndup((const char *)data + 1, split);
	char *header = strndup((const char *)data + 1 + split, size - 1 - split);
	if (!text || !header)
		goto out;
	int n = bearer_token_parse(text, tok, sizeof(tok), err, sizeof(err));
	if (n < 0) {
		if (!err[0] || strchr(err, '\n'))
			abort();
		goto out;
	}
	if (n < BEARER_TOKEN_MIN || n > BEARER_TOKEN_MAX || strlen(tok) != (size_t)n)
		abort();
	for (int i = 0; i < n; i++)
		if (tok[i] <= ' ' || tok[i] >= 0x7f)
			abort();
	bool want = !strncmp(header, "Bearer ", 7) && strlen(header + 7) == (size_t)n &&
		    !memcmp(header + 7, tok, (size_t)n);
	if (bearer_ok(header, tok, (size_t)n) != want)
		abort();
	/* The header made of the token itself always passes. */
	char good[BEARER_TOKEN_MAX + 8];
	memcpy(good, "Bearer ", 7);
	memcpy(good + 7, tok, (size_t)n + 1);
	if (!bearer_ok(good, tok, (size_t)n) || bearer_ok(NULL, tok, (size_t)n))
		abort();
out:
	free(text);
	free(header);
	return 0;
}
