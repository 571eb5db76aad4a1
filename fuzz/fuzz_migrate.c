/*
 * libFuzzer target: the live migration stream's parser (vmm/migstream.c),
 * which vireo-vmm --incoming runs on everything the source sends before
 * it builds anything.
 *
 * Input: a stream.  It is parsed as given, then again with every record's
 * crc32 made right (so that mutations reach the checks behind the
 * checksums).  A refusal always says why; a stream the parser accepts has
 * a configuration in range whose guest RAM the parser asked for, and a
 * state that parses.  Guest RAM larger than 64 MiB is refused by the
 * fuzz target's own ops->config, as a target without the memory would.
 * Seeds: fuzz/corpus/migrate/ (fuzz/gen_migrate_seeds.py, around the
 * state files of fuzz/corpus/state/).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "migstream.h"

#define FZ_MEM (64u << 20)

static uint8_t *fz_ram;

static void *fz_config(void *opaque, const struct vstate_config *cfg, char *err, size_t errlen)
{
	(void)opaque;
	if (cfg->memory_file_size > FZ_MEM) {
		snprintf(err, errlen, "fuzz: no room for %llu bytes",
			 (unsigned long long)cfg->memory_file_size);
		return NULL;
	}
	if (!fz_ram) {
		/* Once: pages are only touched where records write. */
		void *p = mmap(NULL, FZ_MEM, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED)
			abort();
		fz_ram = p;
	}
	return fz_ram;
}

static const struct mig_rx_ops fz_ops = { .config = fz_config };

/* Walk the record headers as far as they go and set each crc32. */
static void fz_fix_crcs(uint8_t *buf, size_t size)
{
	size_t off = sizeof(struct mig_hdr);

	while (off <= size && size - off >= sizeof(struct mig_rec_hdr)) {
		struct mig_rec_hdr h;

		memcpy(&h, buf + off, sizeof(h));
		off += sizeof(h);
		if (h.len > size - off)
			return;
		h.crc = mig_rec_crc(h.type, buf + off, h.len);
		memcpy(buf + off - sizeof(h), &h, sizeof(h));
		off += h.len;
	}
}

static void fz_one(const uint8_t *buf, size_t size)
{
	struct mig_rx rx;
	char err[256];
	int r;

	err[0] = 0;
	mig_rx_init(&rx, &fz_ops, NULL);
	r = mig_parse_buffer(&rx, buf, size, err, sizeof(err));
	if (r) {
		if (!err[0] || r != -22)
			abort();   /* a refusal always says why, as -EINVAL */
	} else {
		const struct vstate_config *c = rx.st.config;

		if (!mig_rx_done(&rx) || !c || rx.mem != fz_ram ||
		    memcmp(c, &rx.config, sizeof(*c)) || c->memory_file_size > FZ_MEM ||
		    !rx.st.vcpu[0] || !rx.st.vm || !rx.st.devices)
			abort();
	}
	mig_rx_free(&rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;

	if (size > MIG_MAX_RECORD + (1u << 20))
		return 0;
	fz_one(data, size);
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	fz_fix_crcs(buf, size);
	fz_one(buf, size);
	free(buf);
	return 0;
}
