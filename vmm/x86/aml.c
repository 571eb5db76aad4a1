/* AML byte-code writer (see aml.h).  Encodings follow ACPI 6.x section 20. */
#include <errno.h>
#include <string.h>

#include "aml.h"

#define AML_ZERO_OP        0x00
#define AML_ONE_OP         0x01
#define AML_NAME_OP        0x08
#define AML_BYTE_PREFIX    0x0a
#define AML_WORD_PREFIX    0x0b
#define AML_DWORD_PREFIX   0x0c
#define AML_STRING_PREFIX  0x0d
#define AML_QWORD_PREFIX   0x0e
#define AML_SCOPE_OP       0x10
#define AML_BUFFER_OP      0x11
#define AML_PACKAGE_OP     0x12
#define AML_VARPACKAGE_OP  0x13
#define AML_METHOD_OP      0x14
#define AML_DUAL_NAME      0x2e
#define AML_MULTI_NAME     0x2f
#define AML_EXT_PREFIX     0x5b
#define AML_DEVICE_OP      0x82   /* after AML_EXT_PREFIX */
#define AML_ROOT_CHAR      0x5c
#define AML_PARENT_CHAR    0x5e
#define AML_RETURN_OP      0xa4
#define AML_ONES_OP        0xff

void aml_init(struct aml *a, void *buf, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->cap = buf ? cap : 0;
}

static void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

long aml_finish(struct aml *a)
{
	if (!a->err && a->depth)
		aml_fail(a, -EINVAL);     /* an object was never closed */
	return a->err ? a->err : (long)a->len;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		aml_fail(a, -ENOSPC);
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned n)
{
	uint8_t b[8];

	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, n);
}

unsigned aml_pkglen_encode(size_t body_len, uint8_t out[4])
{
	size_t total;
	unsigned n;

	/* The encoded length counts the PkgLength bytes too. */
	if (body_len > AML_PKGLEN_MAX - 4)
		return 0;
	if (body_len + 1 <= 0x3f) {
		out[0] = (uint8_t)(body_len + 1);
		return 1;
	}
	if (body_len + 2 <= 0xfff)
		n = 2;
	else if (body_len + 3 <= 0xfffff)
		n = 3;
	else
		n = 4;
	total = body_len + n;
	out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
	for (unsigned i = 1; i < n; i++)
		out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	return n;
}

/* Open an object whose PkgLength goes at the current position. */
static void aml_open(struct aml *a)
{
	if (a->err)
		return;
	if (a->depth >= AML_MAX_DEPTH) {
		aml_fail(a, -EINVAL);
		return;
	}
	a->open[a->depth++] = a->len;
}

void aml_end(struct aml *a)
{
	uint8_t pl[4];
	size_t start, body;
	unsigned n;

	if (a->err)
		return;
	if (!a->depth) {
		aml_fail(a, -EINVAL);
		return;
	}
	start = a->open[--a->depth];
	body = a->len - start;
	n = aml_pkglen_encode(body, pl);
	if (!n) {
		aml_fail(a, -ENOSPC);
		return;
	}
	if (n > a->cap - a->len) {
		aml_fail(a, -ENOSPC);
		return;
	}
	memmove(a->buf + start + n, a->buf + start, body);
	memcpy(a->buf + start, pl, n);
	a->len += n;
}

static bool aml_seg_char(char c, bool first)
{
	if ((c >= 'A' && c <= 'Z') || c == '_')
		return true;
	return !first && c >= '0' && c <= '9';
}

void aml_namestring(struct aml *a, const char *name)
{
	uint8_t segs[255][4];
	unsigned nseg = 0;
	const char *p = name;

	if (a->err)
		return;
	if (!name) {
		aml_fail(a, -EINVAL);
		return;
	}
	if (*p == '\\') {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == '^') {
			aml_byte(a, AML_PARENT_CHAR);
			p++;
		}
	}
	while (*p) {
		unsigned k = 0;

		if (nseg == 255) {
			aml_fail(a, -EINVAL);
			return;
		}
		while (*p && *p != '.') {
			if (k == 4 || !aml_seg_char(*p, k == 0)) {
				aml_fail(a, -EINVAL);
				return;
			}
			segs[nseg][k++] = (uint8_t)*p++;
		}
		if (k == 0) {
			aml_fail(a, -EINVAL);      /* empty segment: "A..B" */
			return;
		}
		while (k < 4)
			segs[nseg][k++] = '_';
		nseg++;
		if (*p == '.') {
			p++;
			if (!*p) {
				aml_fail(a, -EINVAL);
				return;
			}
		}
	}
	if (nseg == 0) {
		aml_byte(a, 0x00);                 /* NullName */
	} else if (nseg == 2) {
		aml_byte(a, AML_DUAL_NAME);
	} else if (nseg > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, (uint8_t)nseg);
	}
	aml_bytes(a, segs, (size_t)nseg * 4);
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO_OP);
	} else if (v == 1) {
		aml_byte(a, AML_ONE_OP);
	} else if (v == UINT64_MAX) {
		aml_byte(a, AML_ONES_OP);
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_le(a, v, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_le(a, v, 2);
	} else if (v <= 0xffffffff) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		aml_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	if (!s) {
		aml_fail(a, -EINVAL);
		return;
	}
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p > 0x7f) {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static int aml_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = 0;

	if (!id || strlen(id) != 7) {
		aml_fail(a, -EINVAL);
		return;
	}
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	for (int i = 3; i < 7; i++) {
		if (aml_hex(id[i]) < 0) {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	/* Three 5-bit letters then four hex digits, stored big-endian. */
	uint8_t b[4] = {
		(uint8_t)(((id[0] - 0x40) << 2) | ((id[1] - 0x40) >> 3)),
		(uint8_t)((((id[1] - 0x40) & 7) << 5) | (id[2] - 0x40)),
		(uint8_t)((aml_hex(id[3]) << 4) | aml_hex(id[4])),
		(uint8_t)((aml_hex(id[5]) << 4) | aml_hex(id[6])),
	};
	v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	    (uint32_t)b[3] << 24;
	aml_byte(a, AML_DWORD_PREFIX);
	aml_le(a, v, 4);
}

void aml_buffer(struct aml *a, const void *data, size_t n)
{
	aml_byte(a, AML_BUFFER_OP);
	aml_open(a);
	aml_integer(a, n);
	aml_bytes(a, data, n);
	aml_end(a);
}

void aml_name(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, name);
}

void aml_name_integer(struct aml *a, const char *name, uint64_t v)
{
	aml_name(a, name);
	aml_integer(a, v);
}

void aml_name_string(struct aml *a, const char *name, const char *s)
{
	aml_name(a, name);
	aml_string(a, s);
}

void aml_scope_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_SCOPE_OP);
	aml_open(a);
	aml_namestring(a, name);
}

void aml_device_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_EXT_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	aml_open(a);
	aml_namestring(a, name);
}

void aml_method_begin(struct aml *a, const char *name, unsigned nargs,
		      bool serialized)
{
	if (nargs > 7) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, AML_METHOD_OP);
	aml_open(a);
	aml_namestring(a, name);
	aml_byte(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
}

void aml_package_begin(struct aml *a, unsigned nelems)
{
	if (nelems <= 0xff) {
		aml_byte(a, AML_PACKAGE_OP);
		aml_open(a);
		aml_byte(a, (uint8_t)nelems);
	} else {
		aml_byte(a, AML_VARPACKAGE_OP);
		aml_open(a);
		aml_integer(a, nelems);
	}
}

void aml_return(struct aml *a)
{
	aml_byte(a, AML_RETURN_OP);
}

void aml_op(struct aml *a, enum aml_op op)
{
	aml_byte(a, (uint8_t)op);
}

void aml_arg(struct aml *a, unsigned n)
{
	if (n > 6) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, (uint8_t)(0x68 + n));
}

void aml_local(struct aml *a, unsigned n)
{
	if (n > 7) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, (uint8_t)(0x60 + n));
}

void aml_if_begin(struct aml *a)
{
	aml_byte(a, 0xa0);
	aml_open(a);
}

void aml_else_begin(struct aml *a)
{
	aml_byte(a, 0xa1);
	aml_open(a);
}

void aml_uuid(struct aml *a, const char *uuid)
{
	/* Byte order of ToUUID: the first three groups little-endian, the
	 * last two as written. */
	static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
					   8, 9, 10, 11, 12, 13, 14, 15 };
	uint8_t raw[16], out[16];
	unsigned k = 0;

	if (!uuid || strlen(uuid) != 36) {
		aml_fail(a, -EINVAL);
		return;
	}
	for (unsigned i = 0; i < 36;) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (uuid[i] != '-') {
				aml_fail(a, -EINVAL);
				return;
			}
			i++;
			continue;
		}
		hi = aml_hex(uuid[i] >= 'a' ? (char)(uuid[i] - 32) : uuid[i]);
		lo = aml_hex(uuid[i + 1] >= 'a' ? (char)(uuid[i + 1] - 32) :
			     uuid[i + 1]);
		if (hi < 0 || lo < 0) {
			aml_fail(a, -EINVAL);
			return;
		}
		raw[k++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	for (unsigned i = 0; i < 16; i++)
		out[i] = raw[order[i]];
	aml_buffer(a, out, sizeof(out));
}

/* ---- resource template items (ACPI 6.x section 6.4) ---- */

void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align,
		uint8_t len)
{
	aml_byte(r, 0x47);                  /* small item 0x08, length 7 */
	aml_byte(r, 0x01);                  /* 16-bit decode */
	aml_le(r, min, 2);
	aml_le(r, max, 2);
	aml_byte(r, align);
	aml_byte(r, len);
}

void aml_res_irq(struct aml *r, unsigned irq, bool level, bool active_low,
		 bool shared)
{
	if (irq > 15) {
		aml_fail(r, -EINVAL);
		return;
	}
	aml_byte(r, 0x23);                  /* small item 0x04, length 3 */
	aml_le(r, 1u << irq, 2);
	aml_byte(r, (uint8_t)((level ? 0 : 0x01) | (active_low ? 0x08 : 0) |
			      (shared ? 0x10 : 0)));
}

void aml_res_mem32_fixed(struct aml *r, uint32_t base, uint32_t len)
{
	aml_byte(r, 0x86);                  /* large item 0x06 */
	aml_le(r, 9, 2);
	aml_byte(r, 0x01);                  /* read-write */
	aml_le(r, base, 4);
	aml_le(r, len, 4);
}

/*
 * Common part of the address space descriptors: type (0 memory, 1 I/O,
 * 2 bus), general flags (producer, min/max fixed, positive decode) and the
 * type-specific flags, then granularity, min, max, translation, length,
 * each of width bytes.
 */
static void aml_res_addr(struct aml *r, uint8_t tag, unsigned width,
			 uint8_t type, uint8_t tflags, uint64_t min,
			 uint64_t max)
{
	if (max < min) {
		aml_fail(r, -EINVAL);
		return;
	}
	aml_byte(r, tag);
	aml_le(r, 3 + 5 * width, 2);
	aml_byte(r, type);
	aml_byte(r, 0x0c);                  /* MaxFixed | MinFixed, producer */
	aml_byte(r, tflags);
	aml_le(r, 0, width);                /* granularity */
	aml_le(r, min, width);
	aml_le(r, max, width);
	aml_le(r, 0, width);                /* translation offset */
	aml_le(r, max - min + 1, width);
}

void aml_res_word_bus(struct aml *r, uint16_t min, uint16_t max)
{
	aml_res_addr(r, 0x88, 2, 2, 0, min, max);
}

void aml_res_word_io(struct aml *r, uint16_t min, uint16_t max)
{
	aml_res_addr(r, 0x88, 2, 1, 0x03, min, max);   /* entire range */
}

void aml_res_dword_io(struct aml *r, uint32_t min, uint32_t max)
{
	aml_res_addr(r, 0x87, 4, 1, 0x03, min, max);
}

void aml_res_dword_mem(struct aml *r, uint32_t min, uint32_t max,
		       enum aml_res_mem_cache cache)
{
	aml_res_addr(r, 0x87, 4, 0, (uint8_t)(0x01 | (cache & 3) << 1), min,
		     max);
}

void aml_res_qword_mem(struct aml *r, uint64_t min, uint64_t max,
		       enum aml_res_mem_cache cache)
{
	/* The length of a full 64-bit range would wrap; refuse it. */
	if (min == 0 && max == UINT64_MAX) {
		aml_fail(r, -EINVAL);
		return;
	}
	aml_res_addr(r, 0x8a, 8, 0, (uint8_t)(0x01 | (cache & 3) << 1), min,
		     max);
}

void aml_res_end(struct aml *r)
{
	aml_byte(r, 0x79);
	aml_byte(r, 0x00);
}
