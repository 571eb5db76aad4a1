/* vireo-img: the JSON writer (see json-out.h). */
#include <inttypes.h>
#include <string.h>

#include "json-out.h"

/* Length of the valid UTF-8 sequence at @s (1 to 4), or 0 if it is not. */
static int utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	int n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;          /* overlong */
	else if (c == 0xed)
		hi = 0x9f;          /* surrogates */
	else if (c == 0xf0)
		lo = 0x90;          /* overlong */
	else if (c == 0xf4)
		hi = 0x8f;          /* past U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

void jw_escape(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		int n = utf8_len(s);
		switch (n ? *s : 0) {
		case 0:   fputs("\\ufffd", f); s++; continue;
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (*s < 0x20 || *s == 0x7f)
				fprintf(f, "\\u%04x", *s);
			else
				fwrite(s, 1, (size_t)n, f);
		}
		s += n;
	}
	fputc('"', f);
}

void jw_init(struct jw *w, FILE *f)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->first[0] = true;
}

/* Separator, newline and indentation before a value, then its key. */
static void jw_member(struct jw *w, const char *key)
{
	if (w->depth > 0) {
		bool compact = w->compact[w->depth];
		if (!w->first[w->depth])
			fputc(',', w->f);
		if (compact) {
			if (!w->first[w->depth])
				fputc(' ', w->f);
		} else {
			fputc('\n', w->f);
			for (int i = 0; i < w->depth; i++)
				fputs("    ", w->f);
		}
	}
	w->first[w->depth] = false;
	if (key) {
		jw_escape(w->f, key);
		fputs(": ", w->f);
	}
}

static void jw_open(struct jw *w, const char *key, bool compact, char open, char close)
{
	jw_member(w, key);
	fputc(open, w->f);
	if (w->depth + 1 >= JW_MAX_DEPTH)
		return;   /* callers never nest this deep */
	w->depth++;
	w->first[w->depth] = true;
	w->compact[w->depth] = compact || w->compact[w->depth - 1];
	w->close[w->depth] = close;
}

void jw_object(struct jw *w, const char *key, bool compact) { jw_open(w, key, compact, '{', '}'); }
void jw_array(struct jw *w, const char *key, bool compact) { jw_open(w, key, compact, '[', ']'); }

void jw_end(struct jw *w)
{
	if (w->depth == 0)
		return;
	if (!w->first[w->depth] && !w->compact[w->depth]) {
		fputc('\n', w->f);
		for (int i = 0; i < w->depth - 1; i++)
			fputs("    ", w->f);
	}
	fputc(w->close[w->depth], w->f);
	w->depth--;
	if (w->depth == 0)
		fputc('\n', w->f);
}

void jw_str(struct jw *w, const char *key, const char *v)
{
	jw_member(w, key);
	jw_escape(w->f, v);
}

void jw_u64(struct jw *w, const char *key, uint64_t v)
{
	jw_member(w, key);
	fprintf(w->f, "%" PRIu64, v);
}

void jw_int(struct jw *w, const char *key, long long v)
{
	jw_member(w, key);
	fprintf(w->f, "%lld", v);
}

void jw_bool(struct jw *w, const char *key, bool v)
{
	jw_member(w, key);
	fputs(v ? "true" : "false", w->f);
}
