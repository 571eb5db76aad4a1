/*
 * vireo-img: the one JSON writer behind every --output=json.  Strings are
 * escaped here (quotes, backslashes, control characters, DEL; bytes that
 * are not valid UTF-8 become U+FFFD), so names taken from an image (backing
 * file, backing format, snapshot names) cannot change the document's
 * structure.  Output is indented by four spaces per level, as qemu-img's;
 * a container begun with compact=true is written on one line.
 */
#ifndef VIREO_IMG_JSON_OUT_H
#define VIREO_IMG_JSON_OUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JW_MAX_DEPTH 8

struct jw {
	FILE *f;
	int depth;
	bool first[JW_MAX_DEPTH];      /* nothing written in this container yet */
	bool compact[JW_MAX_DEPTH];
	char close[JW_MAX_DEPTH];
};

void jw_init(struct jw *w, FILE *f);
/* @key is the member name inside an object, NULL inside an array or at the
 * top. */
void jw_object(struct jw *w, const char *key, bool compact);
void jw_array(struct jw *w, const char *key, bool compact);
void jw_end(struct jw *w);          /* closes the innermost container */
void jw_str(struct jw *w, const char *key, const char *v);
void jw_u64(struct jw *w, const char *key, uint64_t v);
void jw_int(struct jw *w, const char *key, long long v);
void jw_bool(struct jw *w, const char *key, bool v);
/* Write @s as a JSON string (with the quotes) to @f. */
void jw_escape(FILE *f, const char *s);

#endif
