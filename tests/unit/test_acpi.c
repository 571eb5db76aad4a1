/*
 * ACPI table builder (acpi.c, acpi_dsdt.c; the AML writer and the PM block
 * have their own tests).  The strongest check runs the ACPICA
 * disassembler (iasl -d, from acpica-tools) on the generated tables and
 * recompiles the DSDT.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "x86/acpi.h"

#define BUF_LEN  (256 * 1024)
#define BUF_GPA  0xe0000ULL
#define GUARD    64

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static uint64_t rd(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static uint32_t g_ids[512];

static struct acpi_cfg make_cfg(unsigned ncpus)
{
	struct acpi_cfg c;

	memset(&c, 0, sizeof(c));
	for (unsigned i = 0; i < ncpus && i < 512; i++)
		g_ids[i] = i;
	c.ncpus = ncpus;
	c.apic_ids = g_ids;
	c.lapic_addr = 0xfee00000;
	c.ioapic_addr = 0xfec00000;
	c.ioapic_id = 0;
	c.pm_io_base = 0x600;
	c.sci_irq = 9;
	c.has_i8042 = true;
	c.ecam_base = 0xb0000000;
	c.ecam_size = 256ULL << 20;
	c.pci_bus_start = 0;
	c.pci_bus_end = 255;
	c.pci_mmio32_base = 0xc0000000;
	c.pci_mmio32_size = 0x3eb00000;   /* up to 0xfeb00000 */
	c.pci_mmio64_base = 0x8000000000ULL;
	c.pci_mmio64_size = 0x8000000000ULL;
	c.pci_io_base = 0x1000;
	c.pci_io_size = 0xf000;
	c.pci_intx_gsi[0] = 16;
	c.pci_intx_gsi[1] = 17;
	c.pci_intx_gsi[2] = 18;
	c.pci_intx_gsi[3] = 19;
	c.com1 = true;
	c.com2 = true;
	memcpy(c.oem_id, "VIREO", 6);
	return c;
}

/* The parsed result of a build: every table found from the RSDP. */
struct tables {
	const uint8_t *base;
	size_t used;
	const uint8_t *rsdp, *xsdt, *fadt, *facs, *dsdt, *madt, *mcfg;
	unsigned nxsdt;
};

static const uint8_t *at_gpa(const struct tables *t, uint64_t gpa,
			     size_t len)
{
	assert_true(gpa >= BUF_GPA);
	assert_true(gpa - BUF_GPA + len <= t->used);
	return t->base + (gpa - BUF_GPA);
}

/* Check a table with a standard header: length in range, checksum 0. */
static const uint8_t *check_table(const struct tables *t, uint64_t gpa,
				  const char *sig)
{
	const uint8_t *p = at_gpa(t, gpa, 36);
	uint32_t len = (uint32_t)rd(p + 4, 4);

	assert_memory_equal(p, sig, 4);
	assert_true(len >= 36);
	at_gpa(t, gpa, len);
	assert_int_equal(sum(p, len), 0);
	assert_true(gpa % 8 == 0);
	return p;
}

static void walk(struct tables *t, const uint8_t *buf, long used,
		 uint64_t rsdp_gpa)
{
	const uint8_t *p;
	uint32_t len;

	memset(t, 0, sizeof(*t));
	assert_true(used > 0);
	t->base = buf;
	t->used = (size_t)used;
	assert_int_equal(rsdp_gpa, BUF_GPA);

	p = t->rsdp = at_gpa(t, rsdp_gpa, 36);
	assert_memory_equal(p, "RSD PTR ", 8);
	assert_int_equal(sum(p, 20), 0);
	assert_int_equal(p[15], 2);
	assert_int_equal(rd(p + 20, 4), 36);
	assert_int_equal(sum(p, 36), 0);

	t->xsdt = check_table(t, rd(p + 24, 8), "XSDT");
	len = (uint32_t)rd(t->xsdt + 4, 4);
	assert_int_equal((len - 36) % 8, 0);
	t->nxsdt = (len - 36) / 8;
	for (unsigned i = 0; i < t->nxsdt; i++) {
		uint64_t g = rd(t->xsdt + 36 + 8 * i, 8);
		const uint8_t *q = at_gpa(t, g, 36);

		if (!memcmp(q, "FACP", 4)) {
			assert_null(t->fadt);
			t->fadt = check_table(t, g, "FACP");
		} else if (!memcmp(q, "APIC", 4)) {
			assert_null(t->madt);
			t->madt = check_table(t, g, "APIC");
		} else if (!memcmp(q, "MCFG", 4)) {
			assert_null(t->mcfg);
			t->mcfg = check_table(t, g, "MCFG");
		} else {
			fail_msg("unexpected table %.4s in the XSDT", q);
		}
	}
	assert_non_null(t->fadt);
	assert_non_null(t->madt);
	assert_int_equal(rd(t->fadt + 4, 4), 276);
	assert_int_equal(t->fadt[8], 6);

	/* FACS in exactly one of FIRMWARE_CTRL / X_FIRMWARE_CTRL (below
	 * 4 GiB: the 32-bit one); DSDT in X_DSDT, with an equal 32-bit copy. */
	assert_int_equal(rd(t->fadt + 132, 8), 0);
	assert_int_not_equal(rd(t->fadt + 36, 4), 0);
	assert_int_equal(rd(t->fadt + 140, 8), rd(t->fadt + 40, 4));
	assert_true(rd(t->fadt + 36, 4) % 64 == 0);
	t->facs = at_gpa(t, rd(t->fadt + 36, 4), 64);
	assert_memory_equal(t->facs, "FACS", 4);
	assert_int_equal(rd(t->facs + 4, 4), 64);
	t->dsdt = check_table(t, rd(t->fadt + 140, 8), "DSDT");
}

static long build(const struct acpi_cfg *c, uint8_t *buf, struct tables *t)
{
	uint64_t rsdp = 0;
	long n = acpi_build(c, buf, BUF_LEN, BUF_GPA, &rsdp);

	if (n > 0 && t)
		walk(t, buf, n, rsdp);
	return n;
}

/* ------------------------------------------------------------------ */
/* tables                                                              */

static void test_chain_and_checksums(void **state)
{
	uint8_t *buf = malloc(BUF_LEN);
	struct acpi_cfg c = make_cfg(2);
	struct tables t;
	const uint8_t *f;

	(void)state;
	assert_true(build(&c, buf, &t) > 0);
	assert_int_equal(t.nxsdt, 3);
	assert_non_null(t.mcfg);

	f = t.fadt;
	assert_int_equal(rd(f + 46, 2), 9);             /* SCI_INT */
	assert_int_equal(rd(f + 48, 4), 0);             /* SMI_CMD */
	assert_int_equal(rd(f + 56, 4), 0x600);         /* PM1a_EVT */
	assert_int_equal(rd(f + 64, 4), 0x604);         /* PM1a_CNT */
	assert_int_equal(rd(f + 76, 4), 0x608);         /* PM_TMR */
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[91], 4);
	/* IAPC_BOOT_ARCH: legacy devices, 8042, no VGA */
	assert_int_equal(rd(f + 109, 2) & 0x7, 0x7);
	/* flags: reset register supported, not hardware reduced, fixed
	 * power button */
	assert_true(rd(f + 112, 4) & (1u << 10));
	assert_false(rd(f + 112, 4) & (1u << 20));
	assert_false(rd(f + 112, 4) & (1u << 4));
	/* RESET_REG: system I/O, 8 bits at pm + 0x0c, value 1 */
	assert_int_equal(f[116], 1);
	assert_int_equal(f[117], 8);
	assert_int_equal(rd(f + 120, 8), 0x60c);
	assert_int_equal(f[128], ACPI_RESET_VALUE);
	/* X_ blocks */
	assert_int_equal(f[148], 1);
	assert_int_equal(f[149], 32);
	assert_int_equal(rd(f + 152, 8), 0x600);
	assert_int_equal(f[173], 16);
	assert_int_equal(rd(f + 176, 8), 0x604);
	assert_int_equal(f[209], 32);
	assert_int_equal(rd(f + 212, 8), 0x608);
	assert_int_equal(t.dsdt[8], 2);                  /* 64-bit AML */
	free(buf);
}

/* Tables placed above 4 GiB: only the 64-bit pointers are used. */
static void test_above_4g(void **state)
{
	const uint64_t gpa = 0x100000000ULL;
	uint8_t *buf = malloc(BUF_LEN);
	struct acpi_cfg c = make_cfg(2);
	uint64_t rsdp = 0, xsdt, fadt;
	long n;

	(void)state;
	n = acpi_build(&c, buf, BUF_LEN, gpa, &rsdp);
	assert_true(n > 0);
	assert_int_equal(rsdp, gpa);
	xsdt = rd(buf + 24, 8) - gpa;
	fadt = rd(buf + xsdt + 36, 8) - gpa;
	assert_true(fadt + 276 <= (uint64_t)n);
	assert_memory_equal(buf + fadt, "FACP", 4);
	assert_int_equal(rd(buf + fadt + 36, 4), 0);      /* FIRMWARE_CTRL */
	assert_int_equal(rd(buf + fadt + 40, 4), 0);      /* DSDT */
	assert_true(rd(buf + fadt + 132, 8) >= gpa);      /* X_FIRMWARE_CTRL */
	assert_memory_equal(buf + rd(buf + fadt + 132, 8) - gpa, "FACS", 4);
	assert_memory_equal(buf + rd(buf + fadt + 140, 8) - gpa, "DSDT", 4);
	assert_int_equal(sum(buf + fadt, 276), 0);
	free(buf);
}

static void test_oem_id_padding(void **state)
{
	uint8_t *buf = malloc(BUF_LEN);
	struct acpi_cfg c = make_cfg(1);
	struct tables t;

	(void)state;
	memcpy(c.oem_id, "AB", 3);
	assert_true(build(&c, buf, &t) > 0);
	assert_memory_equal(t.rsdp + 9, "AB    ", 6);
	assert_memory_equal(t.madt + 10, "AB    ", 6);
	c.oem_id[0] = 0x07;
	assert_int_equal(build(&c, buf, NULL), -EINVAL);
	free(buf);
}

/* Walk the MADT and compare it with cfg. */
static void check_madt(const struct tables *t, const struct acpi_cfg *c)
{
	const uint8_t *m = t->madt;
	uint32_t len = (uint32_t)rd(m + 4, 4);
	unsigned cpu = 0, ioapic = 0, iso0 = 0, isosci = 0, nmi = 0, x2nmi = 0;
	bool any_x2 = false;

	assert_int_equal(rd(m + 36, 4), c->lapic_addr);
	assert_int_equal(rd(m + 40, 4), 1);              /* PCAT_COMPAT */
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = m + off;

		assert_true(off + 2 <= len);
		assert_true(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_true(cpu < c->ncpus);
			assert_int_equal(e[2], cpu);
			assert_int_equal(e[3], c->apic_ids[cpu]);
			assert_int_equal(rd(e + 4, 4), 1);
			assert_true(c->apic_ids[cpu] < 255);
			cpu++;
			break;
		case 9:
			assert_int_equal(e[1], 16);
			assert_true(cpu < c->ncpus);
			assert_int_equal(rd(e + 4, 4), c->apic_ids[cpu]);
			assert_int_equal(rd(e + 8, 4), 1);
			assert_int_equal(rd(e + 12, 4), cpu);
			assert_true(c->apic_ids[cpu] >= 255 || cpu >= 255);
			any_x2 = true;
			cpu++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], c->ioapic_id);
			assert_int_equal(rd(e + 4, 4), c->ioapic_addr);
			assert_int_equal(rd(e + 8, 4), c->ioapic_gsi_base);
			ioapic++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);
			if (e[3] == 0) {
				assert_int_equal(rd(e + 4, 4), 2);
				assert_int_equal(rd(e + 8, 2), 0);
				iso0++;
			} else {
				assert_int_equal(e[3], c->sci_irq);
				assert_int_equal(rd(e + 4, 4), c->sci_irq);
				/* level (bits 2-3 = 3), active high (1) */
				assert_int_equal(rd(e + 8, 2), 0xd);
				isosci++;
			}
			break;
		case 4:
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);
			nmi++;
			break;
		case 10:
			assert_int_equal(e[1], 12);
			assert_int_equal(rd(e + 4, 4), 0xffffffff);
			assert_int_equal(e[8], 1);
			x2nmi++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(cpu, c->ncpus);
	assert_int_equal(ioapic, 1);
	assert_int_equal(iso0, 1);
	assert_int_equal(isosci, 1);
	assert_int_equal(nmi, 1);
	assert_int_equal(x2nmi, any_x2 ? 1 : 0);
}

static void test_madt_cpu_counts(void **state)
{
	static const unsigned counts[] = { 1, 2, 255, 300 };
	uint8_t *buf = malloc(BUF_LEN);

	(void)state;
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		struct acpi_cfg c = make_cfg(counts[k]);
		struct tables t;

		assert_true(build(&c, buf, &t) > 0);
		check_madt(&t, &c);
	}
	/* Sparse APIC ids: an id above 254 needs an x2APIC entry even for
	 * CPU 1; CPU 0 keeps its xAPIC entry. */
	{
		struct acpi_cfg c = make_cfg(2);
		struct tables t;

		g_ids[0] = 3;
		g_ids[1] = 1000;
		assert_true(build(&c, buf, &t) > 0);
		check_madt(&t, &c);
		assert_int_equal(t.madt[44], 0);
		assert_int_equal(t.madt[44 + 8], 9);
	}
	free(buf);
}

static void test_mcfg_iff_ecam(void **state)
{
	uint8_t *buf = malloc(BUF_LEN);
	struct acpi_cfg c = make_cfg(2);
	struct tables t;

	(void)state;
	assert_true(build(&c, buf, &t) > 0);
	assert_non_null(t.mcfg);
	assert_int_equal(rd(t.mcfg + 4, 4), 36 + 8 + 16);
	assert_int_equal(rd(t.mcfg + 44, 8), 0xb0000000);
	assert_int_equal(rd(t.mcfg + 52, 2), 0);
	assert_int_equal(t.mcfg[54], 0);
	assert_int_equal(t.mcfg[55], 255);

	/* A bridge whose first bus is 16: the MCFG base is bus 0's. */
	c.pci_bus_start = 16;
	c.pci_bus_end = 31;
	c.ecam_size = 16ULL << 20;
	assert_true(build(&c, buf, &t) > 0);
	assert_int_equal(rd(t.mcfg + 44, 8), 0xb0000000 - (16ULL << 20));
	assert_int_equal(t.mcfg[54], 16);
	assert_int_equal(t.mcfg[55], 31);

	c.ecam_size = 0;
	assert_true(build(&c, buf, &t) > 0);
	assert_null(t.mcfg);
	assert_int_equal(t.nxsdt, 2);
	free(buf);
}

static void test_bad_cfg(void **state)
{
	uint8_t *buf = malloc(BUF_LEN + GUARD);
	struct acpi_cfg c;
	uint64_t rsdp = 0x1234;

	(void)state;
#define BAD(stmt)                                                         \
	do {                                                              \
		c = make_cfg(2);                                          \
		stmt;                                                     \
		memset(buf, 0xa5, BUF_LEN + GUARD);                       \
		assert_int_equal(acpi_build(&c, buf, BUF_LEN, BUF_GPA,    \
					    &rsdp), -EINVAL);             \
		for (size_t i = 0; i < BUF_LEN + GUARD; i++)              \
			if (buf[i] != 0xa5)                               \
				fail_msg("byte %zu written on a bad cfg", \
					 i);                              \
	} while (0)
	BAD(c.ncpus = 0);
	BAD(c.ncpus = ACPI_MAX_CPUS + 1);
	BAD(c.apic_ids = NULL);
	BAD(g_ids[1] = g_ids[0]);
	BAD(g_ids[1] = 0xffffffff);
	BAD(c.sci_irq = 0);
	BAD(c.sci_irq = 2);
	BAD(c.sci_irq = 16);
	BAD(c.sci_irq = 4);                 /* COM1's IRQ */
	BAD(c.pm_io_base = 0);
	BAD(c.pm_io_base = 0xcf0);          /* overlaps 0xcf8 */
	BAD(c.pm_io_base = 0xfff8);         /* runs past 0xffff */
	BAD(c.pm_io_base = 0x1000);         /* inside the PCI I/O window */
	BAD(c.lapic_addr = 1ULL << 32);
	BAD(c.pci_bus_end = 0; c.pci_bus_start = 1);
	BAD(c.ecam_size = 3ULL << 19);
	BAD(c.ecam_size = 1ULL << 20);      /* too small for 256 buses */
	BAD(c.pci_mmio32_base = 0xf0000000);/* runs past 4 GiB */
	BAD(c.pci_mmio64_base = ~0ULL - 10);
	BAD(c.pci_io_base = 0xc00; c.pci_io_size = 0x100);
	BAD(c.pci_intx_gsi[2] = 24);        /* no such IOAPIC pin */
	BAD(c.oem_id[2] = '\n');
#undef BAD
	g_ids[1] = 1;
	c = make_cfg(2);
	assert_int_equal(acpi_build(NULL, buf, BUF_LEN, BUF_GPA, &rsdp),
			 -EINVAL);
	assert_int_equal(acpi_build(&c, NULL, BUF_LEN, BUF_GPA, &rsdp),
			 -EINVAL);
	assert_int_equal(acpi_build(&c, buf, BUF_LEN, BUF_GPA + 8, &rsdp),
			 -EINVAL);
	assert_int_equal(acpi_build(&c, buf, BUF_LEN, ~0ULL - 15, &rsdp),
			 -EINVAL);
	assert_int_equal(rsdp, 0x1234);
	free(buf);
}

/* Every buffer shorter than needed gives -ENOSPC; the buffer is allocated
 * with the exact size so ASan catches any write past it, and a guard is
 * checked as well. */
static void test_too_small(void **state)
{
	uint8_t *big = malloc(BUF_LEN);
	struct acpi_cfg c = make_cfg(300);
	long need;

	(void)state;
	need = acpi_build(&c, big, BUF_LEN, BUF_GPA, NULL);
	assert_true(need > 0);
	for (long len = 0; len < need; len += (len < 4096 ? 1 : 7)) {
		uint8_t *b = malloc((size_t)len + GUARD);
		uint64_t rsdp = 99;

		memset(b, 0x5a, (size_t)len + GUARD);
		assert_int_equal(acpi_build(&c, b, (size_t)len, BUF_GPA, &rsdp),
				 -ENOSPC);
		assert_int_equal(rsdp, 99);
		for (size_t i = (size_t)len; i < (size_t)len + GUARD; i++)
			if (b[i] != 0x5a)
				fail_msg("len %ld: byte %zu written", len, i);
		free(b);
	}
	/* Exactly enough works and gives the same bytes. */
	{
		uint8_t *b = malloc((size_t)need);

		assert_int_equal(acpi_build(&c, b, (size_t)need, BUF_GPA,
					    NULL), need);
		assert_memory_equal(b, big, (size_t)need);
		free(b);
	}
	free(big);
}

/* ------------------------------------------------------------------ */
/* iasl                                                                */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = calloc(1, (size_t)n + 1);
	if (fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	fclose(f);
	return s;
}

static void dump(const char *dir, const char *name, const uint8_t *p,
		 size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void expect_in(const char *text, const char *what, const char *file)
{
	if (!strstr(text, what))
		fail_msg("%s: expected \"%s\" in the disassembly", file, what);
}

static unsigned count(const char *s, const char *what)
{
	unsigned n = 0;

	while ((s = strstr(s, what))) {
		n++;
		s += strlen(what);
	}
	return n;
}

static char *run(const char *dir, const char *cmd, int *status)
{
	char line[1024], log[512];

	snprintf(log, sizeof(log), "%s/iasl.log", dir);
	snprintf(line, sizeof(line), "cd '%s' && { %s; } >'%s' 2>&1", dir, cmd,
		 log);
	*status = system(line);
	return slurp(log);
}

static void test_iasl(void **state)
{
	uint8_t *buf = malloc(BUF_LEN);
	struct acpi_cfg c = make_cfg(2);
	struct tables t;
	char dir[] = "/tmp/vireo-acpi-XXXXXX", path[600], *s, *log;
	int st;

	(void)state;
	if (system("command -v iasl >/dev/null 2>&1") != 0)
		fail_msg("iasl not found: install acpica-tools "
			 "(bash scripts/setup.sh)");
	assert_true(build(&c, buf, &t) > 0);
	assert_non_null(mkdtemp(dir));
	dump(dir, "dsdt.dat", t.dsdt, rd(t.dsdt + 4, 4));
	dump(dir, "facp.dat", t.fadt, rd(t.fadt + 4, 4));
	dump(dir, "apic.dat", t.madt, rd(t.madt + 4, 4));
	dump(dir, "mcfg.dat", t.mcfg, rd(t.mcfg + 4, 4));
	dump(dir, "xsdt.dat", t.xsdt, rd(t.xsdt + 4, 4));
	dump(dir, "facs.dat", t.facs, 64);
	/* (iasl -d does not take a bare RSDP; the walk above checks it.) */

	log = run(dir, "iasl -d dsdt.dat facp.dat apic.dat mcfg.dat "
		       "xsdt.dat facs.dat", &st);
	assert_non_null(log);
	if (st != 0 || strstr(log, "rror") || strstr(log, "arning"))
		fail_msg("iasl -d failed (status %d):\n%s", st, log);
	free(log);

	snprintf(path, sizeof(path), "%s/dsdt.dsl", dir);
	s = slurp(path);
	assert_non_null(s);
	static const char *dsdt_want[] = {
		"Name (\\_S5, Package (0x04)", "Scope (\\_SB)", "Device (PCI0)",
		"EisaId (\"PNP0A08\")", "EisaId (\"PNP0A03\")", "Name (_SEG",
		"Name (_BBN", "Name (_CRS, ResourceTemplate ()",
		"WordBusNumber (ResourceProducer", "0x0CF8",
		"WordIO (ResourceProducer", "0x0CF7",
		"DWordMemory (ResourceProducer", "0xFEAFFFFF",
		"QWordMemory (ResourceProducer", "0x000000FFFFFFFFFF",
		"Name (_PRT, Package (0x80)", "0x001FFFFF",
		"Device (COM1)", "EisaId (\"PNP0501\")", "0x03F8",
		"Device (COM2)", "0x02F8", "IRQ (Edge, ActiveHigh, Exclusive, )",
		"Device (PS2K)", "EisaId (\"PNP0303\")",
		"Device (MRES)", "EisaId (\"PNP0C02\")",
		"Memory32Fixed (ReadWrite", "0xB0000000",
		"Device (C000)", "Device (C001)", "\"ACPI0007\"",
		"Method (_OSC, 4", "ToUUID (\"33db4d5b-1ff7-401c-9657-7441c03dd766\")",
	};
	for (size_t i = 0; i < sizeof(dsdt_want) / sizeof(dsdt_want[0]); i++)
		expect_in(s, dsdt_want[i], "dsdt.dsl");
	free(s);

	/* Field lines look like "[038h 0056   4]  PM1A Event Block Address :
	 * 00000600"; spaces are squeezed before comparing. */
	static const struct {
		const char *file, *want;
	} data_want[] = {
		{ "facp.dsl", "Reset Register : [Generic Address Structure]" },
		{ "facp.dsl", "Value to cause reset : 01" },
		{ "facp.dsl", "PM1A Event Block Address : 00000600" },
		{ "facp.dsl", "PM1A Control Block Address : 00000604" },
		{ "facp.dsl", "PM Timer Block Address : 00000608" },
		{ "facp.dsl", "SCI Interrupt : 0009" },
		{ "facp.dsl", "Hardware Reduced (V5) : 0" },
		{ "facp.dsl", "Control Method Power Button (V1) : 0" },
		{ "apic.dsl", "Subtable Type : 00 [Processor Local APIC]" },
		{ "apic.dsl", "Local Apic ID : 01" },
		{ "apic.dsl", "Subtable Type : 01 [I/O APIC]" },
		{ "apic.dsl", "Subtable Type : 02 [Interrupt Source Override]" },
		{ "apic.dsl", "Interrupt : 00000009" },
		{ "apic.dsl", "Subtable Type : 04 [Local APIC NMI]" },
		{ "mcfg.dsl", "Base Address : 00000000B0000000" },
		{ "xsdt.dsl", "ACPI Table Address 2 :" },
		{ "facs.dsl", "Signature : \"FACS\"" },
	};
	for (size_t i = 0; i < sizeof(data_want) / sizeof(data_want[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, data_want[i].file);
		s = slurp(path);
		assert_non_null(s);
		for (char *r = s, *q = s;; r++) {
			if (*r == ' ' && q > s && q[-1] == ' ')
				continue;
			*q++ = *r;
			if (!*r)
				break;
		}
		expect_in(s, data_want[i].want, data_want[i].file);
		free(s);
	}

	/* The disassembly compiles back without errors or warnings. */
	log = run(dir, "iasl -p recompiled dsdt.dsl", &st);
	assert_non_null(log);
	if (st != 0 || !strstr(log, "0 Errors") || !strstr(log, "0 Warnings"))
		fail_msg("iasl could not recompile the DSDT (status %d):\n%s",
			 st, log);
	free(log);
	log = run(dir, "iasl -p facp2 facp.dsl && iasl -p apic2 apic.dsl && "
		       "iasl -p mcfg2 mcfg.dsl", &st);
	assert_non_null(log);
	if (st != 0 || count(log, "0 Errors, 0 Warnings, 0 Remarks") != 3)
		fail_msg("iasl could not recompile a data table (status "
			 "%d):\n%s", st, log);
	free(log);
	/* Recompiled data tables are byte-identical to ours, except for the
	 * checksum and the compiler id/revision that iasl puts in. */
	{
		static const char *pairs[][2] = {
			{ "facp.dat", "facp2.aml" },
			{ "apic.dat", "apic2.aml" },
			{ "mcfg.dat", "mcfg2.aml" },
		};
		for (size_t i = 0; i < 3; i++) {
			char p1[600], p2[600];
			FILE *f1, *f2;
			int a, b;
			long pos = 0;

			snprintf(p1, sizeof(p1), "%s/%s", dir, pairs[i][0]);
			snprintf(p2, sizeof(p2), "%s/%s", dir, pairs[i][1]);
			f1 = fopen(p1, "rb");
			f2 = fopen(p2, "rb");
			assert_non_null(f1);
			assert_non_null(f2);
			do {
				a = fgetc(f1);
				b = fgetc(f2);
				if (a != b && pos != 9 && (pos < 28 || pos >= 36))
					fail_msg("%s differs from %s at %ld",
						 p1, p2, pos);
				pos++;
			} while (a != EOF || b != EOF);
			fclose(f1);
			fclose(f2);
		}
	}

	/* Run _OSC in ACPICA's interpreter (acpiexec): known UUID grants
	 * hotplug/PME/AER/caps (0x1d) and flags the masked SHPC bit; a bad
	 * revision or UUID is flagged. */
	{
		static const char *uuid = "5b 4d db 33 f7 1f 1c 40 96 57 74 41 "
					  "c0 3d d7 66";
		static const struct {
			const char *uuid_first, *rev, *in, *out;
		} osc[] = {
			{ "5b", "1", "01 00 00 00 1f 00 00 00 1f 00 00 00",
			  "0000: 11 00 00 00 1F 00 00 00 1D 00 00 00" },
			{ "5b", "1", "00 00 00 00 1f 00 00 00 1c 00 00 00",
			  "0000: 00 00 00 00 1F 00 00 00 1C 00 00 00" },
			{ "5b", "2", "00 00 00 00 1f 00 00 00 1d 00 00 00",
			  "0000: 08 00 00 00 1F 00 00 00 1D 00 00 00" },
			{ "5c", "1", "00 00 00 00 1f 00 00 00 1f 00 00 00",
			  "0000: 04 00 00 00 1F 00 00 00 1F 00 00 00" },
		};
		char cmd[512];

		for (size_t i = 0; i < sizeof(osc) / sizeof(osc[0]); i++) {
			snprintf(cmd, sizeof(cmd),
				 "timeout 60 acpiexec -b 'execute "
				 "\\_SB.PCI0._OSC (%s%s) %s 3 (%s)' dsdt.dat",
				 osc[i].uuid_first, uuid + 2, osc[i].rev,
				 osc[i].in);
			log = run(dir, cmd, &st);
			assert_non_null(log);
			if (st != 0 || !strstr(log, osc[i].out))
				fail_msg("_OSC case %zu: expected \"%s\" "
					 "(status %d):\n%s", i, osc[i].out,
					 st, log);
			free(log);
		}
	}

	if (!getenv("VIREO_KEEP_ACPI")) {
		snprintf(path, sizeof(path), "rm -rf '%s'", dir);
		assert_int_equal(system(path), 0);
	} else {
		print_message("tables kept in %s\n", dir);
	}
	free(buf);
}

/* A second shape, like the VMM's: one bus of ECAM, no 64-bit window, no
 * COM2 or 8042, APIC ids not equal to the index.  Every table disassembles
 * and the DSDT recompiles cleanly. */
static void test_iasl_minimal(void **state)
{
	uint8_t *buf = malloc(BUF_LEN);
	struct acpi_cfg c = make_cfg(4);
	struct tables t;
	char dir[] = "/tmp/vireo-acpi-XXXXXX", path[600], *s, *log;
	int st;

	(void)state;
	for (unsigned i = 0; i < 4; i++)
		g_ids[i] = 2 * i;
	c.ioapic_id = 4;
	c.has_i8042 = false;
	c.com2 = false;
	c.ecam_base = 0xe0000000;
	c.ecam_size = 1ULL << 20;
	c.pci_bus_end = 0;
	c.pci_mmio32_size = 0x20000000;
	c.pci_mmio64_size = 0;
	c.pci_io_base = 0xc000;
	c.pci_io_size = 0x4000;
	c.pci_intx_gsi[0] = 20;
	c.pci_intx_gsi[1] = 21;
	c.pci_intx_gsi[2] = 22;
	c.pci_intx_gsi[3] = 23;
	assert_true(build(&c, buf, &t) > 0);
	check_madt(&t, &c);
	assert_non_null(mkdtemp(dir));
	dump(dir, "dsdt.dat", t.dsdt, rd(t.dsdt + 4, 4));
	dump(dir, "facp.dat", t.fadt, rd(t.fadt + 4, 4));
	dump(dir, "apic.dat", t.madt, rd(t.madt + 4, 4));
	dump(dir, "mcfg.dat", t.mcfg, rd(t.mcfg + 4, 4));
	log = run(dir, "iasl -d dsdt.dat facp.dat apic.dat mcfg.dat && "
		       "iasl -p re dsdt.dsl", &st);
	assert_non_null(log);
	if (st != 0 || !strstr(log, "0 Errors, 0 Warnings"))
		fail_msg("iasl (status %d):\n%s", st, log);
	free(log);
	/* Evaluate _PRT and _S5 in ACPICA's interpreter: the routing rule
	 * slot s pin p -> pci_intx_gsi[(s + p) % 4] for all 32 slots, and
	 * the S5 sleep type. */
	log = run(dir, "timeout 60 acpiexec -b 'execute \\_SB.PCI0._PRT; "
		       "execute \\_S5' dsdt.dat", &st);
	assert_non_null(log);
	{
		const char *p = strstr(log, "Contains 128 Elements");
		unsigned long long v[512 + 4];
		unsigned n = 0;

		if (st != 0 || !p)
			fail_msg("acpiexec (status %d):\n%s", st, log);
		while (n < 516 && (p = strstr(p, "[Integer] = "))) {
			p += strlen("[Integer] = ");
			v[n++] = strtoull(p, NULL, 16);
		}
		assert_int_equal(n, 516);
		for (unsigned k = 0; k < 128; k++) {
			unsigned slot = k / 4, pin = k % 4;

			assert_int_equal(v[4 * k], (slot << 16) | 0xffff);
			assert_int_equal(v[4 * k + 1], pin);
			assert_int_equal(v[4 * k + 2], 0);
			assert_int_equal(v[4 * k + 3],
					 c.pci_intx_gsi[(slot + pin) % 4]);
		}
		assert_int_equal(v[512], ACPI_S5_SLP_TYP);
		assert_int_equal(v[513], ACPI_S5_SLP_TYP);
	}
	free(log);

	snprintf(path, sizeof(path), "%s/dsdt.dsl", dir);
	s = slurp(path);
	assert_non_null(s);
	expect_in(s, "Device (COM1)", "dsdt.dsl");
	expect_in(s, "0x001FFFFF,", "dsdt.dsl");      /* _PRT slot 31 */
	expect_in(s, "0xE0000000,", "dsdt.dsl");      /* MRES: ECAM */
	expect_in(s, "0xDFFFFFFF,", "dsdt.dsl");      /* MMIO32 max */
	expect_in(s, "0xC000,", "dsdt.dsl");          /* PCI I/O */
	if (strstr(s, "COM2") || strstr(s, "PS2K") || strstr(s, "QWordMemory"))
		fail_msg("dsdt.dsl has a device or window that is off");
	free(s);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_and_checksums),
		cmocka_unit_test(test_oem_id_padding),
		cmocka_unit_test(test_above_4g),
		cmocka_unit_test(test_madt_cpu_counts),
		cmocka_unit_test(test_mcfg_iff_ecam),
		cmocka_unit_test(test_bad_cfg),
		cmocka_unit_test(test_too_small),
		cmocka_unit_test(test_iasl),
		cmocka_unit_test(test_iasl_minimal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
