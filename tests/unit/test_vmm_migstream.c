/* vmm/migstream.c: the live migration stream's framing and the target's
 * parser; a valid stream lands in guest RAM, every corruption is refused
 * with a message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "migstream.h"

#define MEM (4u << 20)
#define UNTOUCHED 0x5000u   /* a page no PAGES record of good_stream() writes */

static uint8_t ram[MEM];
static unsigned configs;
static uint64_t refuse_above;   /* ops->config refuses larger RAM */

static void *t_config(void *opaque, const struct vstate_config *cfg, char *err, size_t errlen)
{
	(void)opaque;
	configs++;
	if (cfg->memory_file_size > MEM || cfg->memory_file_size > refuse_above) {
		snprintf(err, errlen, "no room for %llu bytes",
			 (unsigned long long)cfg->memory_file_size);
		return NULL;
	}
	/* Zeroed, as the contract says, but for a marker page that no
	 * PAGES record writes: a ZERO record must leave it alone (the
	 * target does not touch, and so allocate, pages that are zero). */
	memset(ram, 0, sizeof(ram));
	memset(ram + UNTOUCHED, 0xee, MIG_PAGE);
	return ram;
}

static const struct mig_rx_ops ops = { .config = t_config };

static struct vstate_config good_config(void)
{
	struct vstate_config c;

	memset(&c, 0, sizeof(c));
	c.memory = MEM;
	c.cpus = 1;
	c.nr_regions = 1;
	c.region[0] = (struct vstate_region){ .gpa = 0, .size = MEM, .file_offset = 0 };
	c.memory_file_size = MEM;
	return c;
}

/* A stream being written. */
struct sbuf {
	uint8_t *b;
	size_t len;
};

static void put(struct sbuf *s, const void *p, size_t n)
{
	s->b = realloc(s->b, s->len + n);
	assert_non_null(s->b);
	memcpy(s->b + s->len, p, n);
	s->len += n;
}

static void rec(struct sbuf *s, enum mig_rec type, const void *p, uint32_t n)
{
	struct mig_rec_hdr h;

	mig_rec_hdr_make(&h, type, p, n);
	put(s, &h, sizeof(h));
	if (n)
		put(s, p, n);
}

static void hdr(struct sbuf *s, uint32_t version)
{
	struct mig_hdr h = { .version = version };

	memcpy(h.magic, MIG_MAGIC, 8);
	put(s, &h, sizeof(h));
}

static void state_file(struct vstate_writer *w, const struct vstate_config *c)
{
	static struct vstate_vcpu v;
	static struct vstate_vm vm;
	static struct vstate_devices d;

	vstate_writer_init(w);
	vstate_add(w, VSTATE_SEC_CONFIG, 0, c, sizeof(*c));
	vstate_add(w, VSTATE_SEC_VCPU, 0, &v, sizeof(v));
	vstate_add(w, VSTATE_SEC_VM, 0, &vm, sizeof(vm));
	vstate_add(w, VSTATE_SEC_DEVICES, 0, &d, sizeof(d));
	assert_int_equal(vstate_finish(w), 0);
}

/* A run of @count pages at @gpa, each filled with its page number. */
static void pages(struct sbuf *s, uint64_t gpa, uint32_t count)
{
	size_t n = sizeof(struct mig_pages_hdr) + (size_t)count * MIG_PAGE;
	uint8_t *p = calloc(1, n);
	struct mig_pages_hdr ph = { .gpa = gpa, .count = count };

	assert_non_null(p);
	memcpy(p, &ph, sizeof(ph));
	for (uint32_t i = 0; i < count; i++)
		memset(p + sizeof(ph) + (size_t)i * MIG_PAGE, (int)((gpa / MIG_PAGE + i) & 0xff),
		       MIG_PAGE);
	rec(s, MIG_REC_PAGES, p, (uint32_t)n);
	free(p);
}

static void zero(struct sbuf *s, uint64_t gpa, uint32_t count)
{
	struct mig_pages_hdr ph = { .gpa = gpa, .count = count };

	rec(s, MIG_REC_ZERO, &ph, sizeof(ph));
}

/* A valid stream: config, two rounds of pages, a zero run, state, end. */
static struct sbuf good_stream(void)
{
	struct sbuf s = { NULL, 0 };
	struct vstate_config c = good_config();
	struct vstate_writer w;

	hdr(&s, MIG_VERSION);
	rec(&s, MIG_REC_CONFIG, &c, sizeof(c));
	for (uint64_t p = 0; p < MEM / MIG_PAGE; p += MIG_MAX_PAGES)
		zero(&s, p * MIG_PAGE, MIG_MAX_PAGES);
	pages(&s, 0x1000, 3);
	pages(&s, MEM - 2 * MIG_PAGE, 2);
	rec(&s, MIG_REC_SYNC, NULL, 0);   /* the end of a round */
	zero(&s, 0x2000, 1);      /* a later round: page 2 became zero */
	pages(&s, 0x3000, 1);     /* and page 3 was sent again */
	state_file(&w, &c);
	rec(&s, MIG_REC_STATE, w.buf, (uint32_t)w.len);
	vstate_writer_free(&w);
	rec(&s, MIG_REC_END, NULL, 0);
	return s;
}

static int parse(const struct sbuf *s, struct mig_rx *rx, char *err)
{
	err[0] = 0;
	mig_rx_init(rx, &ops, NULL);
	return mig_parse_buffer(rx, s->b, s->len, err, 256);
}

static void test_good(void **state)
{
	struct sbuf s = good_stream();
	struct mig_rx rx;
	char err[256];

	(void)state;
	configs = 0;
	refuse_above = UINT64_MAX;
	if (parse(&s, &rx, err))
		fail_msg("%s", err);
	assert_true(mig_rx_done(&rx));
	assert_int_equal(configs, 1);
	assert_int_equal(ram[0], 0);
	assert_int_equal(ram[0x1000], 1);
	assert_int_equal(ram[0x1fff], 1);
	assert_int_equal(ram[0x2000], 0);
	assert_int_equal(ram[0x3000], 3);
	assert_int_equal(ram[0x4000], 0);
	assert_int_equal(ram[UNTOUCHED], 0xee);
	assert_int_equal(ram[UNTOUCHED + MIG_PAGE - 1], 0xee);
	assert_int_equal(ram[MEM - 2 * MIG_PAGE], (MEM / MIG_PAGE - 2) & 0xff);
	assert_int_equal(ram[MEM - 1], (MEM / MIG_PAGE - 1) & 0xff);
	assert_int_equal(rx.pages, 3 + 2 + 1);
	assert_int_equal(rx.zero_pages, MEM / MIG_PAGE + 1);
	assert_int_equal(rx.syncs, 1);
	assert_non_null(rx.st.config);
	assert_non_null(rx.st.vcpu[0]);
	assert_int_equal(rx.st.config->memory, MEM);
	mig_rx_free(&rx);
	free(s.b);
}

/* Every prefix of a valid stream is refused, each with a message. */
static void test_truncated(void **state)
{
	struct sbuf s = good_stream(), t;
	struct mig_rx rx;
	char err[256];

	(void)state;
	for (size_t n = 0; n < s.len; n += (n < 200 || s.len - n < 9000) ? 1 : 4093) {
		t.b = s.b;
		t.len = n;
		assert_int_equal(parse(&t, &rx, err), -EINVAL);
		assert_true(err[0] != 0);
		mig_rx_free(&rx);
	}
	free(s.b);
}

/* Flip @bit of byte @off, expect @msg. */
static void flip(size_t off, unsigned bit, const char *msg)
{
	struct sbuf s = good_stream();
	struct mig_rx rx;
	char err[256];

	s.b[off] ^= (uint8_t)(1u << bit);
	assert_int_equal(parse(&s, &rx, err), -EINVAL);
	if (!strstr(err, msg))
		fail_msg("byte %zu: '%s', expected '%s'", off, err, msg);
	mig_rx_free(&rx);
	free(s.b);
}

static void test_corrupt(void **state)
{
	size_t cfg = sizeof(struct mig_hdr), cfg_payload = cfg + sizeof(struct mig_rec_hdr);

	(void)state;
	refuse_above = UINT64_MAX;
	flip(0, 0, "wrong magic");
	flip(8, 3, "stream version 12, this vireo-vmm reads version 4");
	flip(12, 0, "reserved");
	flip(cfg, 4, "unknown type 17");
	flip(cfg, 1, "record 0: zero before the config");
	flip(cfg + 4, 0, "record 0 (config): wrong length");
	flip(cfg + 8, 0, "record 0 (config): checksum mismatch");
	flip(cfg + 12, 0, "reserved");
	flip(cfg_payload + 3, 0, "record 0 (config): checksum mismatch");
	/* the first ZERO record's page header */
	flip(cfg_payload + sizeof(struct vstate_config) + sizeof(struct mig_rec_hdr), 2,
	     "checksum mismatch");
}

/* Streams made wrong with their checksums right. */
static void test_semantics(void **state)
{
	struct vstate_config c = good_config(), c2;
	struct vstate_writer w;
	struct mig_rx rx;
	char err[256];
	struct {
		const char *msg;
		int step;
	} cases[] = {
		{ "outside guest RAM", 0 }, { "bad page run", 1 }, { "bad page run", 2 },
		{ "config repeated", 3 }, { "end before the state", 4 },
		{ "its configuration differs", 5 }, { "after the state", 6 },
		{ "bytes after the end", 7 }, { "memory regions", 8 }, { "no room", 9 },
		{ "state: ", 10 }, { "wrong length", 11 }, { "2 pages in 4112 bytes", 12 },
		{ "(sync): wrong length", 13 }, { "sync after the state", 14 },
	};

	(void)state;
	for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct sbuf s = { NULL, 0 };
		struct mig_pages_hdr ph = { 0 };
		uint8_t junk[64] = { 0 };

		refuse_above = cases[k].step == 9 ? MEM / 2 : UINT64_MAX;
		c2 = c;
		hdr(&s, MIG_VERSION);
		if (cases[k].step == 8)
			c2.region[0].size = MEM / 2;
		rec(&s, MIG_REC_CONFIG, &c2, sizeof(c2));
		switch (cases[k].step) {
		case 0: zero(&s, MEM - MIG_PAGE, 2); break;
		case 1: zero(&s, 0x1001, 1); break;
		case 2: zero(&s, 0, 0); break;
		case 3: rec(&s, MIG_REC_CONFIG, &c, sizeof(c)); break;
		case 4: rec(&s, MIG_REC_END, NULL, 0); break;
		case 10: rec(&s, MIG_REC_STATE, junk, sizeof(junk)); break;
		case 11: rec(&s, MIG_REC_ZERO, junk, 8); break;
		case 13: rec(&s, MIG_REC_SYNC, junk, 4); break;
		case 12:
			{
				uint8_t p[sizeof(ph) + MIG_PAGE];

				memset(p, 1, sizeof(p));
				ph.count = 1;
				ph.gpa = 0;
				memcpy(p, &ph, sizeof(ph));
				/* one page announced as two */
				((struct mig_pages_hdr *)p)->count = 2;
				rec(&s, MIG_REC_PAGES, p, sizeof(p));
			}
			break;
		default: break;
		}
		if ((cases[k].step >= 5 && cases[k].step <= 7) || cases[k].step == 14) {
			struct vstate_config c3 = c;

			if (cases[k].step == 5)
				c3.flags = VSTATE_CFG_DEBUG_EXIT;
			state_file(&w, &c3);
			rec(&s, MIG_REC_STATE, w.buf, (uint32_t)w.len);
			vstate_writer_free(&w);
			if (cases[k].step == 6)
				zero(&s, 0, 1);
			if (cases[k].step == 14)
				rec(&s, MIG_REC_SYNC, NULL, 0);
			if (cases[k].step == 7) {
				rec(&s, MIG_REC_END, NULL, 0);
				put(&s, junk, 3);
			}
		}
		assert_int_equal(parse(&s, &rx, err), -EINVAL);
		if (!strstr(err, cases[k].msg))
			fail_msg("case %u: '%s', expected '%s'", k, err, cases[k].msg);
		mig_rx_free(&rx);
		free(s.b);
	}
}

/* The STOP record (the source's pause time): once, after the state,
 * before the end, 8 bytes, not 0. */
static void test_stop(void **state)
{
	struct vstate_config c = good_config();
	struct vstate_writer w;
	struct mig_rx rx;
	char err[256];
	/* 0: good; then what each case breaks */
	const char *msg[] = { NULL, "stop time before the state", "stop time repeated",
			      "(stop): wrong length", "stop time 0" };

	(void)state;
	refuse_above = UINT64_MAX;
	for (unsigned k = 0; k < sizeof(msg) / sizeof(msg[0]); k++) {
		struct sbuf s = { NULL, 0 };
		uint64_t t = k == 4 ? 0 : 1765000000123456789ull;

		hdr(&s, MIG_VERSION);
		rec(&s, MIG_REC_CONFIG, &c, sizeof(c));
		if (k == 1)
			rec(&s, MIG_REC_STOP, &t, sizeof(t));
		zero(&s, 0, 1);
		state_file(&w, &c);
		rec(&s, MIG_REC_STATE, w.buf, (uint32_t)w.len);
		vstate_writer_free(&w);
		rec(&s, MIG_REC_STOP, &t, k == 3 ? 4 : sizeof(t));
		if (k == 2)
			rec(&s, MIG_REC_STOP, &t, sizeof(t));
		rec(&s, MIG_REC_END, NULL, 0);
		if (!msg[k]) {
			if (parse(&s, &rx, err))
				fail_msg("%s", err);
			assert_true(mig_rx_done(&rx));
			assert_true(rx.stop_ns == t);
		} else {
			assert_int_equal(parse(&s, &rx, err), -EINVAL);
			if (!strstr(err, msg[k]))
				fail_msg("case %u: '%s', expected '%s'", k, err, msg[k]);
		}
		mig_rx_free(&rx);
		free(s.b);
	}
}

/* The target's way: each PAGES record's page header checked with
 * mig_rx_pages_dst, its data read straight to where it says; the data is
 * not under the checksum (stream version 3), its header is. */
static void test_pages_dst(void **state)
{
	struct sbuf s = good_stream();
	struct mig_rx rx;
	char err[256];
	size_t off = sizeof(struct mig_hdr);
	unsigned split = 0;

	(void)state;
	refuse_above = UINT64_MAX;
	mig_rx_init(&rx, &ops, NULL);
	assert_int_equal(mig_rx_header(&rx, s.b, err, sizeof(err)), 0);
	while (!mig_rx_done(&rx)) {
		struct mig_rec_hdr h;
		int64_t n;

		assert_true(s.len - off >= sizeof(h));
		memcpy(&h, s.b + off, sizeof(h));
		off += sizeof(h);
		n = mig_rx_record_len(&rx, &h, err, sizeof(err));
		if (n < 0)
			fail_msg("%s", err);
		if (h.type == MIG_REC_PAGES) {
			uint8_t *dst;
			size_t len;
			struct mig_pages_hdr bad;

			/* a flipped page header is refused */
			memcpy(&bad, s.b + off, sizeof(bad));
			bad.gpa ^= MIG_PAGE;
			assert_int_equal(mig_rx_pages_dst(&rx, &h, &bad, &dst, &len, err,
							  sizeof(err)), -EINVAL);
			assert_non_null(strstr(err, "checksum mismatch"));
			/* a flipped data byte is not looked at */
			s.b[off + sizeof(bad) + 7] ^= 0x40;
			if (mig_rx_pages_dst(&rx, &h, s.b + off, &dst, &len, err, sizeof(err)))
				fail_msg("%s", err);
			assert_int_equal(len, (size_t)n - sizeof(bad));
			assert_true(dst >= ram && dst + len <= ram + MEM);
			memcpy(dst, s.b + off + sizeof(bad), len);
			split++;
		} else if (mig_rx_record(&rx, &h, s.b + off, err, sizeof(err))) {
			fail_msg("%s", err);
		}
		off += (size_t)n;
	}
	assert_int_equal(off, s.len);
	assert_int_equal(split, 3);
	assert_int_equal(rx.pages, 3 + 2 + 1);
	assert_int_equal(ram[0x1000], 1);
	assert_int_equal(ram[0x1007], 1 ^ 0x40);
	assert_int_equal(ram[0x2000], 0);        /* written, then a ZERO record */
	assert_int_equal(ram[UNTOUCHED], 0xee);  /* never written: left alone */
	assert_int_equal(ram[MEM - 1], (MEM / MIG_PAGE - 1) & 0xff);
	/* not a PAGES record: refused */
	{
		struct mig_rec_hdr h = { .type = MIG_REC_ZERO, .len = 16 };
		uint8_t *dst;
		size_t len;

		assert_int_equal(mig_rx_pages_dst(&rx, &h, s.b, &dst, &len, err, sizeof(err)),
				 -EINVAL);
	}
	mig_rx_free(&rx);
	free(s.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_semantics),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_pages_dst),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
