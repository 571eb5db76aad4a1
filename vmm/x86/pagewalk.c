#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pagewalk.h"

#define PW_ADDR_MASK 0x000ffffffffff000ULL  /* bits 12-51 of a table entry */
#define PW_PRESENT   0x1ULL
#define PW_PS        0x80ULL                /* large page (PDPTE, PDE) */

struct pw_text {
	char *buf;
	size_t len, used;
};

static void pw_add(struct pw_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pw_add(struct pw_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->len == 0 || t->used >= t->len - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	t->used += (size_t)n < t->len - t->used ? (size_t)n : t->len - t->used - 1;
}

enum pagewalk_result pagewalk(const struct gmem *m, uint64_t cr3, bool la57, uint64_t va,
			      uint64_t *gpa, char *text, size_t len)
{
	static const char *const names[5] = { "pml5e", "pml4e", "pdpte", "pde", "pte" };
	const unsigned levels = la57 ? 5 : 4;
	const unsigned vbits = 12 + 9 * levels;   /* 48 or 57 */
	struct pw_text t = { text, len, 0 };
	uint64_t table = cr3 & PW_ADDR_MASK;
	uint64_t top = va >> (vbits - 1);

	if (len)
		text[0] = '\0';
	/* Bits above the top one must copy it. */
	if (top != 0 && top != (~0ULL >> (vbits - 1))) {
		pw_add(&t, "not canonical for %u-level paging", levels);
		return PAGEWALK_NONCANONICAL;
	}
	for (unsigned l = 0; l < levels; l++) {
		const unsigned below = levels - 1 - l;          /* levels under this one */
		const unsigned shift = 12 + 9 * below;
		const char *name = names[5 - levels + l];
		uint64_t at = table + ((va >> shift) & 511) * 8;
		const uint8_t *p = gmem_ptr(m, at, 8);
		uint64_t e;

		if (!p) {
			pw_add(&t, "%s%s table at gpa 0x%llx: outside guest RAM", t.used ? " " : "",
			       name, (unsigned long long)(at & ~0xfffULL));
			return PAGEWALK_OUTSIDE_RAM;
		}
		memcpy(&e, p, sizeof(e));
		pw_add(&t, "%s%s 0x%llx", t.used ? " " : "", name, (unsigned long long)e);
		if (!(e & PW_PRESENT)) {
			pw_add(&t, " (not present)");
			return PAGEWALK_NOT_PRESENT;
		}
		if (below == 0 || ((below == 1 || below == 2) && (e & PW_PS))) {
			uint64_t size = 1ULL << shift;
			uint64_t pa = ((e & PW_ADDR_MASK) & ~(size - 1)) | (va & (size - 1));
			bool in_ram = gmem_ptr(m, pa, 1) != NULL;

			*gpa = pa;
			pw_add(&t, " -> gpa 0x%llx%s%s", (unsigned long long)pa,
			       below == 2 ? " (1 GiB page)" : below == 1 ? " (2 MiB page)" : "",
			       in_ram ? "" : ", outside guest RAM");
			return in_ram ? PAGEWALK_OK : PAGEWALK_OUTSIDE_RAM;
		}
		table = e & PW_ADDR_MASK;
	}
	return PAGEWALK_NOT_PRESENT;   /* not reached: the last level returns */
}
