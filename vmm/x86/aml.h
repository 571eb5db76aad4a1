/*
 * A small AML (ACPI Machine Language) byte-code writer, enough for a static
 * DSDT: names, integers, strings, packages, buffers, devices, scopes,
 * methods and resource templates.
 *
 * The writer fills a caller-provided buffer.  It never writes past the
 * buffer's capacity: on overflow (or too deep nesting, or a bad name) it
 * records an error, stops writing, and aml_finish() returns it.  So a
 * sequence of calls can be made without checking each one.
 *
 * Objects with a PkgLength (scope, device, method, package) are opened with
 * the *_begin() calls and closed with aml_end(); the length is computed and
 * inserted when the object is closed.
 */
#ifndef VIREO_VMM_X86_AML_H
#define VIREO_VMM_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

/* Largest value a PkgLength can encode (28 bits). */
#define AML_PKGLEN_MAX 0x0fffffffu

struct aml {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err;                          /* first error, 0 if none */
	unsigned depth;
	size_t open[AML_MAX_DEPTH];       /* where each open object's body starts */
};

void aml_init(struct aml *a, void *buf, size_t cap);
/* Returns the number of bytes written, or the first error (-ENOSPC when the
 * buffer was too small, -EINVAL for a bad name or unbalanced begin/end). */
long aml_finish(struct aml *a);

/*
 * Encode a PkgLength for a package whose total length *including the
 * PkgLength bytes themselves* is the smallest possible for a body of
 * body_len bytes.  Writes 1..4 bytes into out and returns how many, or 0
 * if body_len is too large to encode.
 */
unsigned aml_pkglen_encode(size_t body_len, uint8_t out[4]);

/* Raw bytes. */
void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);

/* A NameString: "\\_SB.PCI0", "^FOO", "_HID", "COM1"; segments shorter
 * than 4 characters are padded with '_'. */
void aml_namestring(struct aml *a, const char *name);

/* Data objects. */
void aml_integer(struct aml *a, uint64_t v);     /* smallest encoding */
void aml_string(struct aml *a, const char *s);   /* ASCII, no NUL inside */
void aml_eisaid(struct aml *a, const char *id);  /* "PNP0A08" -> DWord */
void aml_buffer(struct aml *a, const void *data, size_t n);

/* Name(name, <next object>) */
void aml_name(struct aml *a, const char *name);
/* Convenience: Name(name, integer) and Name(name, "string"). */
void aml_name_integer(struct aml *a, const char *name, uint64_t v);
void aml_name_string(struct aml *a, const char *name, const char *s);

/* Objects with a body; close each with aml_end(). */
void aml_scope_begin(struct aml *a, const char *name);
void aml_device_begin(struct aml *a, const char *name);
void aml_method_begin(struct aml *a, const char *name, unsigned nargs,
		      bool serialized);
void aml_package_begin(struct aml *a, unsigned nelems);
void aml_end(struct aml *a);

/* Return(<next object>) */
void aml_return(struct aml *a);

/*
 * Method code.  AML is prefix notation: emit an operator, then its
 * operands (objects, names, ArgN/LocalN or nested operators), then its
 * target where it has one (a name, LocalN, or aml_integer(a, 0) for none).
 */
enum aml_op {
	AML_OP_STORE = 0x70,              /* Store(src, dst) */
	AML_OP_AND = 0x7b,                /* And(a, b, target) */
	AML_OP_OR = 0x7d,                 /* Or(a, b, target) */
	AML_OP_CREATE_DWORD_FIELD = 0x8a, /* CreateDWordField(buf, byte, name) */
	AML_OP_LNOT = 0x92,               /* LNot(a) */
	AML_OP_LEQUAL = 0x93,             /* LEqual(a, b) */
};
void aml_op(struct aml *a, enum aml_op op);
void aml_arg(struct aml *a, unsigned n);     /* Arg0..Arg6 */
void aml_local(struct aml *a, unsigned n);   /* Local0..Local7 */
/* If(<next object>) { ... aml_end() } and Else { ... aml_end() } */
void aml_if_begin(struct aml *a);
void aml_else_begin(struct aml *a);
/* ToUUID("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx") as a 16-byte Buffer. */
void aml_uuid(struct aml *a, const char *uuid);

/*
 * Resource template items, written into a separate struct aml used as a
 * plain byte buffer; finish with aml_res_end() and emit the bytes with
 * aml_buffer().
 */
enum aml_res_mem_cache {
	AML_MEM_NONCACHEABLE = 0,
	AML_MEM_CACHEABLE = 1,
	AML_MEM_WRITECOMBINING = 2,
	AML_MEM_PREFETCHABLE = 3,
};

/* IO(Decode16, min, max, align, len) */
void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align,
		uint8_t len);
/* IRQ(edge/level, active high/low, exclusive/shared) {irq}; irq < 16. */
void aml_res_irq(struct aml *r, unsigned irq, bool level, bool active_low,
		 bool shared);
/* Memory32Fixed(ReadWrite, base, len) */
void aml_res_mem32_fixed(struct aml *r, uint32_t base, uint32_t len);
/* Address space descriptors of a producer (bridge window), min and max
 * fixed, positive decode, no translation. */
void aml_res_word_bus(struct aml *r, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *r, uint16_t min, uint16_t max);
void aml_res_dword_io(struct aml *r, uint32_t min, uint32_t max);
void aml_res_dword_mem(struct aml *r, uint32_t min, uint32_t max,
		       enum aml_res_mem_cache cache);
void aml_res_qword_mem(struct aml *r, uint64_t min, uint64_t max,
		       enum aml_res_mem_cache cache);
/* End tag (checksum 0: "treat as valid"). */
void aml_res_end(struct aml *r);

#endif
