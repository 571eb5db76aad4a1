/* vireod's bearer tokens (bearer.h). */
#include "bearer.h"

#include <stdio.h>
#include <string.h>

int bearer_token_parse(const char *text, char *out, size_t outlen, char *err, size_t errlen)
{
	size_t n = strlen(text);

	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' ||
		     text[n - 1] == '\t'))
		n--;
	if (n < BEARER_TOKEN_MIN || n > BEARER_TOKEN_MAX || n >= outlen) {
		snprintf(err, errlen, "the token must be %d to %d characters (got %zu)", BEARER_TOKEN_MIN,
			 BEARER_TOKEN_MAX, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c <= 0x20 || c >= 0x7f) {
			snprintf(err, errlen, "the token must be one line of visible ASCII characters "
				 "(no spaces)");
			return -1;
		}
	}
	memcpy(out, text, n);
	out[n] = '\0';
	return (int)n;
}

bool bearer_ok(const char *header, const char *token, size_t token_len)
{
	static const char scheme[] = "Bearer ";
	unsigned char diff = 0;

	if (!header || strncmp(header, scheme, sizeof(scheme) - 1))
		return false;
	header += sizeof(scheme) - 1;
	size_t n = strlen(header);
	/* Every byte of the token is looked at whatever the given one is. */
	for (size_t i = 0; i < token_len; i++)
		diff |= (unsigned char)(token[i] ^ (i < n ? header[i] : 0));
	return diff == 0 && n == token_len;
}
