/*
 * ACPI table builder: RSDP (v2), XSDT, FADT (rev 6), FACS, DSDT, MADT, MCFG.
 * Layouts follow the ACPI 6.x specification, chapter 5.2, and the PCI
 * Firmware specification for MCFG.  The DSDT's AML lives in acpi_dsdt.c.
 */
#include <errno.h>
#include <string.h>

#include "acpi.h"
#include "acpi_int.h"

#define ACPI_HDR_LEN     36
#define ACPI_RSDP_LEN    36
#define ACPI_FADT_LEN    276
#define ACPI_FACS_LEN    64
#define ACPI_XSDT_MAX    4            /* FADT, MADT, MCFG (+ spare) */

/* FADT fixed feature flags */
#define FADT_F_WBINVD          (1u << 0)
#define FADT_F_PROC_C1         (1u << 2)
#define FADT_F_SLP_BUTTON      (1u << 5)   /* no fixed sleep button */
#define FADT_F_FIX_RTC         (1u << 6)   /* no RTC wake status */
#define FADT_F_RESET_REG_SUP   (1u << 10)

/* IAPC_BOOT_ARCH */
#define BOOT_ARCH_LEGACY_DEVICES  (1u << 0)
#define BOOT_ARCH_8042            (1u << 1)
#define BOOT_ARCH_VGA_NOT_PRESENT (1u << 2)
#define BOOT_ARCH_PCIE_ASPM_CTRL  (1u << 4)

/* MADT */
#define MADT_PCAT_COMPAT       1u
#define MADT_LAPIC             0
#define MADT_IOAPIC            1
#define MADT_ISO               2
#define MADT_LAPIC_NMI         4
#define MADT_X2APIC            9
#define MADT_X2APIC_NMI        10
#define MADT_ENABLED           1u
#define MPS_ACTIVE_HIGH        0x1
#define MPS_ACTIVE_LOW         0x3
#define MPS_EDGE               (0x1 << 2)
#define MPS_LEVEL              (0x3 << 2)

/* Generic Address Structure address space ids */
#define GAS_SYSTEM_IO          1

/* A bounded writer over the caller's buffer. */
struct tw {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint64_t gpa;                 /* guest address of buf[0] */
	int err;
};

static void tw_put(struct tw *t, const void *p, size_t n)
{
	if (t->err)
		return;
	if (n > t->cap - t->len) {
		t->err = -ENOSPC;
		return;
	}
	if (p)
		memcpy(t->buf + t->len, p, n);
	else
		memset(t->buf + t->len, 0, n);
	t->len += n;
}

static void tw_le(struct tw *t, uint64_t v, unsigned n)
{
	uint8_t b[8];

	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	tw_put(t, b, n);
}

#define tw_u8(t, v)  tw_le(t, v, 1)
#define tw_u16(t, v) tw_le(t, v, 2)
#define tw_u32(t, v) tw_le(t, v, 4)
#define tw_u64(t, v) tw_le(t, v, 8)

/* Patch n little-endian bytes at off (already written). */
static void tw_patch(struct tw *t, size_t off, uint64_t v, unsigned n)
{
	if (t->err)
		return;
	for (unsigned i = 0; i < n; i++)
		t->buf[off + i] = (uint8_t)(v >> (8 * i));
}

/* Zero-pad until the guest address of the next byte is a multiple of a. */
static void tw_align(struct tw *t, unsigned a)
{
	uint64_t at = t->gpa + t->len;

	tw_put(t, NULL, (size_t)((a - at % a) % a));
}

static uint64_t tw_gpa(const struct tw *t, size_t off)
{
	return t->gpa + off;
}

static uint8_t acpi_sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static void acpi_oem_id(const struct acpi_cfg *cfg, char out[6])
{
	size_t n = strnlen(cfg->oem_id, sizeof(cfg->oem_id));

	if (n == 0) {
		memcpy(out, "VIREO ", 6);
		return;
	}
	memset(out, ' ', 6);
	memcpy(out, cfg->oem_id, n > 6 ? 6 : n);
}

/* Standard 36-byte header; length and checksum are set by tw_end(). */
static size_t tw_header(struct tw *t, const struct acpi_cfg *cfg,
			const char sig[4], uint8_t rev)
{
	size_t start = t->len;
	char oem[6], table_id[8];

	acpi_oem_id(cfg, oem);
	memcpy(table_id, "VIREO", 5);
	memcpy(table_id + 5, sig, 3);
	tw_put(t, sig, 4);
	tw_u32(t, 0);                 /* length */
	tw_u8(t, rev);
	tw_u8(t, 0);                  /* checksum */
	tw_put(t, oem, 6);
	tw_put(t, table_id, 8);
	tw_u32(t, 1);                 /* OEM revision */
	tw_put(t, "VIRO", 4);         /* creator id */
	tw_u32(t, 1);                 /* creator revision */
	return start;
}

static void tw_end_len(struct tw *t, size_t start, size_t len)
{
	if (t->err)
		return;
	tw_patch(t, start + 4, len, 4);
	t->buf[start + 9] = 0;
	t->buf[start + 9] = (uint8_t)-acpi_sum(t->buf + start, len);
}

/* Finish the table that starts at start and ends at the current position. */
static void tw_end(struct tw *t, size_t start)
{
	tw_end_len(t, start, t->len - start);
}

static void tw_gas(struct tw *t, uint8_t space, uint8_t bits,
		   uint8_t access, uint64_t addr)
{
	tw_u8(t, space);
	tw_u8(t, bits);
	tw_u8(t, 0);                  /* bit offset */
	tw_u8(t, access);             /* 1 byte, 2 word, 3 dword, 4 qword */
	tw_u64(t, addr);
}

static bool acpi_io_overlap(uint32_t a, uint32_t alen, uint32_t b,
			    uint32_t blen)
{
	return a < b + blen && b < a + alen;
}

static bool acpi_gsi_ok(const struct acpi_cfg *cfg, uint64_t gsi)
{
	return gsi >= cfg->ioapic_gsi_base &&
	       gsi < (uint64_t)cfg->ioapic_gsi_base + ACPI_IOAPIC_PINS;
}

static int acpi_check_cpus(const struct acpi_cfg *cfg)
{
	if (cfg->ncpus == 0 || cfg->ncpus > ACPI_MAX_CPUS || !cfg->apic_ids)
		return -EINVAL;
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		if (cfg->apic_ids[i] == UINT32_MAX)
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (cfg->apic_ids[j] == cfg->apic_ids[i])
				return -EINVAL;
	}
	return 0;
}

static int acpi_check_pci(const struct acpi_cfg *cfg)
{
	uint64_t nbus;

	if (!cfg->ecam_size)
		return 0;
	if (cfg->pci_bus_end < cfg->pci_bus_start)
		return -EINVAL;
	nbus = (uint64_t)cfg->pci_bus_end - cfg->pci_bus_start + 1;
	if (cfg->ecam_size % (1u << 20) || cfg->ecam_base % (1u << 20) ||
	    (cfg->ecam_size >> 20) < nbus ||
	    cfg->ecam_base < ((uint64_t)cfg->pci_bus_start << 20) ||
	    cfg->ecam_base + cfg->ecam_size < cfg->ecam_base)
		return -EINVAL;
	if (cfg->pci_mmio32_size &&
	    (cfg->pci_mmio32_base + cfg->pci_mmio32_size > (1ULL << 32) ||
	     cfg->pci_mmio32_base + cfg->pci_mmio32_size <
		     cfg->pci_mmio32_base))
		return -EINVAL;
	if (cfg->pci_mmio64_size &&
	    (cfg->pci_mmio64_base + cfg->pci_mmio64_size - 1 <
	     cfg->pci_mmio64_base))
		return -EINVAL;
	if (cfg->pci_io_size &&
	    (cfg->pci_io_base < 0xd00 ||
	     (uint32_t)cfg->pci_io_base + cfg->pci_io_size > 0x10000))
		return -EINVAL;
	for (int i = 0; i < 4; i++)
		if (!acpi_gsi_ok(cfg, cfg->pci_intx_gsi[i]))
			return -EINVAL;
	return 0;
}

static int acpi_check(const struct acpi_cfg *cfg)
{
	int err;

	err = acpi_check_cpus(cfg);
	if (err)
		return err;
	if (cfg->lapic_addr >= (1ULL << 32) || cfg->ioapic_addr >= (1ULL << 32))
		return -EINVAL;
	/* SCI: an ISA IRQ, not the timer or cascade, not shared with the
	 * edge-triggered legacy devices we describe. */
	if (cfg->sci_irq == 0 || cfg->sci_irq == 2 || cfg->sci_irq > 15 ||
	    (cfg->com1 && cfg->sci_irq == 4) ||
	    (cfg->com2 && cfg->sci_irq == 3) ||
	    (cfg->has_i8042 && cfg->sci_irq == 1))
		return -EINVAL;
	if (cfg->pm_io_base == 0 ||
	    (uint32_t)cfg->pm_io_base + ACPI_PM_IO_LEN > 0x10000 ||
	    acpi_io_overlap(cfg->pm_io_base, ACPI_PM_IO_LEN, 0xcf8, 8))
		return -EINVAL;
	if (cfg->ecam_size && cfg->pci_io_size &&
	    acpi_io_overlap(cfg->pm_io_base, ACPI_PM_IO_LEN, cfg->pci_io_base,
			    cfg->pci_io_size))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(cfg->oem_id) && cfg->oem_id[i]; i++)
		if (cfg->oem_id[i] < 0x20 || cfg->oem_id[i] > 0x7e)
			return -EINVAL;
	return acpi_check_pci(cfg);
}

static size_t acpi_build_fadt(struct tw *t, const struct acpi_cfg *cfg)
{
	size_t s = tw_header(t, cfg, "FACP", 6);
	uint16_t pm = cfg->pm_io_base;
	uint16_t boot_arch = BOOT_ARCH_VGA_NOT_PRESENT |
			     BOOT_ARCH_PCIE_ASPM_CTRL;

	if (cfg->com1 || cfg->com2 || cfg->has_i8042)
		boot_arch |= BOOT_ARCH_LEGACY_DEVICES;
	if (cfg->has_i8042)
		boot_arch |= BOOT_ARCH_8042;

	tw_u32(t, 0);                 /* FIRMWARE_CTRL, patched */
	tw_u32(t, 0);                 /* DSDT, patched */
	tw_u8(t, 0);                  /* reserved */
	tw_u8(t, 0);                  /* preferred PM profile: unspecified */
	tw_u16(t, cfg->sci_irq);
	tw_u32(t, 0);                 /* SMI_CMD: ACPI always enabled */
	tw_u8(t, 0);                  /* ACPI_ENABLE */
	tw_u8(t, 0);                  /* ACPI_DISABLE */
	tw_u8(t, 0);                  /* S4BIOS_REQ */
	tw_u8(t, 0);                  /* PSTATE_CNT */
	tw_u32(t, pm);                /* PM1a_EVT_BLK */
	tw_u32(t, 0);                 /* PM1b_EVT_BLK */
	tw_u32(t, pm + 4u);           /* PM1a_CNT_BLK */
	tw_u32(t, 0);                 /* PM1b_CNT_BLK */
	tw_u32(t, 0);                 /* PM2_CNT_BLK */
	tw_u32(t, pm + 8u);           /* PM_TMR_BLK */
	tw_u32(t, 0);                 /* GPE0_BLK */
	tw_u32(t, 0);                 /* GPE1_BLK */
	tw_u8(t, 4);                  /* PM1_EVT_LEN */
	tw_u8(t, 2);                  /* PM1_CNT_LEN */
	tw_u8(t, 0);                  /* PM2_CNT_LEN */
	tw_u8(t, 4);                  /* PM_TMR_LEN */
	tw_u8(t, 0);                  /* GPE0_BLK_LEN */
	tw_u8(t, 0);                  /* GPE1_BLK_LEN */
	tw_u8(t, 0);                  /* GPE1_BASE */
	tw_u8(t, 0);                  /* CST_CNT */
	tw_u16(t, 101);               /* P_LVL2_LAT: C2 not supported */
	tw_u16(t, 1001);              /* P_LVL3_LAT: C3 not supported */
	tw_u16(t, 0);                 /* FLUSH_SIZE */
	tw_u16(t, 0);                 /* FLUSH_STRIDE */
	tw_u8(t, 0);                  /* DUTY_OFFSET */
	tw_u8(t, 0);                  /* DUTY_WIDTH */
	tw_u8(t, 0);                  /* DAY_ALRM */
	tw_u8(t, 0);                  /* MON_ALRM */
	tw_u8(t, 0);                  /* CENTURY */
	tw_u16(t, boot_arch);
	tw_u8(t, 0);                  /* reserved */
	tw_u32(t, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON |
		  FADT_F_FIX_RTC | FADT_F_RESET_REG_SUP);
	tw_gas(t, GAS_SYSTEM_IO, 8, 1, pm + 0x0cu);   /* RESET_REG */
	tw_u8(t, ACPI_RESET_VALUE);
	tw_u16(t, 0);                 /* ARM_BOOT_ARCH */
	tw_u8(t, 0);                  /* FADT minor version: 6.0 */
	tw_u64(t, 0);                 /* X_FIRMWARE_CTRL, patched */
	tw_u64(t, 0);                 /* X_DSDT, patched */
	tw_gas(t, GAS_SYSTEM_IO, 32, 2, pm);          /* X_PM1a_EVT_BLK */
	tw_gas(t, 0, 0, 0, 0);                        /* X_PM1b_EVT_BLK */
	tw_gas(t, GAS_SYSTEM_IO, 16, 2, pm + 4u);     /* X_PM1a_CNT_BLK */
	tw_gas(t, 0, 0, 0, 0);                        /* X_PM1b_CNT_BLK */
	tw_gas(t, 0, 0, 0, 0);                        /* X_PM2_CNT_BLK */
	tw_gas(t, GAS_SYSTEM_IO, 32, 3, pm + 8u);     /* X_PM_TMR_BLK */
	tw_gas(t, 0, 0, 0, 0);                        /* X_GPE0_BLK */
	tw_gas(t, 0, 0, 0, 0);                        /* X_GPE1_BLK */
	tw_gas(t, 0, 0, 0, 0);                        /* SLEEP_CONTROL_REG */
	tw_gas(t, 0, 0, 0, 0);                        /* SLEEP_STATUS_REG */
	tw_put(t, "VIREOVMM", 8);                     /* hypervisor vendor */
	return s;
}

/* Point FADT's FACS and DSDT fields at their tables.  The FACS goes in
 * exactly one of FIRMWARE_CTRL / X_FIRMWARE_CTRL (the spec wants the other
 * zero; with both set Linux installs the FACS twice); the DSDT goes in
 * X_DSDT and, when it fits, in DSDT too. */
static void acpi_fadt_link(struct tw *t, size_t fadt, size_t facs,
			   size_t dsdt)
{
	uint64_t facs_gpa = tw_gpa(t, facs), dsdt_gpa = tw_gpa(t, dsdt);

	if (facs_gpa < (1ULL << 32))
		tw_patch(t, fadt + 36, facs_gpa, 4);
	else
		tw_patch(t, fadt + 132, facs_gpa, 8);
	if (dsdt_gpa < (1ULL << 32))
		tw_patch(t, fadt + 40, dsdt_gpa, 4);
	tw_patch(t, fadt + 140, dsdt_gpa, 8);
}

static void acpi_build_facs(struct tw *t)
{
	tw_put(t, "FACS", 4);
	tw_u32(t, ACPI_FACS_LEN);
	tw_u32(t, 0);                 /* hardware signature */
	tw_u32(t, 0);                 /* firmware waking vector */
	tw_u32(t, 0);                 /* global lock */
	tw_u32(t, 0);                 /* flags: no S4BIOS, no 64-bit wake */
	tw_u64(t, 0);                 /* X firmware waking vector */
	tw_u8(t, 2);                  /* version */
	tw_put(t, NULL, 3);
	tw_u32(t, 0);                 /* OSPM flags */
	tw_put(t, NULL, 24);
}

static size_t acpi_build_dsdt(struct tw *t, const struct acpi_cfg *cfg)
{
	size_t s = tw_header(t, cfg, "DSDT", 2);   /* rev 2: 64-bit integers */
	long n;

	if (t->err)
		return s;
	n = acpi_dsdt_body(cfg, t->buf + t->len, t->cap - t->len);
	if (n < 0) {
		t->err = (int)n;
		return s;
	}
	t->len += (size_t)n;
	return s;
}

/* A CPU gets a Processor Local APIC entry when its id and its index (the
 * ACPI processor UID) both fit the 8-bit fields, an x2APIC entry if not. */
static bool acpi_cpu_x2apic(const struct acpi_cfg *cfg, unsigned i)
{
	return cfg->apic_ids[i] >= 0xff || i >= 0xff;
}

static size_t acpi_build_madt(struct tw *t, const struct acpi_cfg *cfg)
{
	size_t s = tw_header(t, cfg, "APIC", 4);
	uint32_t gsi0 = cfg->ioapic_gsi_base;
	bool any_x2apic = false;

	tw_u32(t, (uint32_t)cfg->lapic_addr);
	tw_u32(t, MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		if (acpi_cpu_x2apic(cfg, i)) {
			any_x2apic = true;
			tw_u8(t, MADT_X2APIC);
			tw_u8(t, 16);
			tw_u16(t, 0);
			tw_u32(t, cfg->apic_ids[i]);
			tw_u32(t, MADT_ENABLED);
			tw_u32(t, i);             /* processor UID */
		} else {
			tw_u8(t, MADT_LAPIC);
			tw_u8(t, 8);
			tw_u8(t, (uint8_t)i);     /* processor UID */
			tw_u8(t, (uint8_t)cfg->apic_ids[i]);
			tw_u32(t, MADT_ENABLED);
		}
	}
	tw_u8(t, MADT_IOAPIC);
	tw_u8(t, 12);
	tw_u8(t, cfg->ioapic_id);
	tw_u8(t, 0);
	tw_u32(t, (uint32_t)cfg->ioapic_addr);
	tw_u32(t, gsi0);

	/* ISA IRQ 0 (PIT) is wired to IOAPIC pin 2. */
	tw_u8(t, MADT_ISO);
	tw_u8(t, 10);
	tw_u8(t, 0);                  /* bus: ISA */
	tw_u8(t, 0);
	tw_u32(t, gsi0 + 2);
	tw_u16(t, 0);                 /* conforms to the bus: edge, high */

	/* The SCI: level triggered, active high. */
	tw_u8(t, MADT_ISO);
	tw_u8(t, 10);
	tw_u8(t, 0);
	tw_u8(t, cfg->sci_irq);
	tw_u32(t, gsi0 + cfg->sci_irq);
	tw_u16(t, MPS_ACTIVE_HIGH | MPS_LEVEL);

	/* LINT1 of every processor is the NMI. */
	tw_u8(t, MADT_LAPIC_NMI);
	tw_u8(t, 6);
	tw_u8(t, 0xff);               /* all processors */
	tw_u16(t, 0);                 /* conforms */
	tw_u8(t, 1);                  /* LINT1 */
	if (any_x2apic) {
		tw_u8(t, MADT_X2APIC_NMI);
		tw_u8(t, 12);
		tw_u16(t, 0);
		tw_u32(t, UINT32_MAX);    /* all processors */
		tw_u8(t, 1);
		tw_put(t, NULL, 3);
	}
	return s;
}

static size_t acpi_build_mcfg(struct tw *t, const struct acpi_cfg *cfg)
{
	size_t s = tw_header(t, cfg, "MCFG", 1);

	tw_u64(t, 0);                 /* reserved */
	/* The entry's base is where bus 0 would be. */
	tw_u64(t, cfg->ecam_base - ((uint64_t)cfg->pci_bus_start << 20));
	tw_u16(t, 0);                 /* segment */
	tw_u8(t, cfg->pci_bus_start);
	tw_u8(t, cfg->pci_bus_end);
	tw_u32(t, 0);
	return s;
}

static void acpi_build_rsdp(struct tw *t, const struct acpi_cfg *cfg,
			    uint64_t xsdt_gpa)
{
	size_t s = t->len;
	char oem[6];

	acpi_oem_id(cfg, oem);
	tw_put(t, "RSD PTR ", 8);
	tw_u8(t, 0);                  /* checksum of the first 20 bytes */
	tw_put(t, oem, 6);
	tw_u8(t, 2);                  /* revision: ACPI 2.0+ */
	tw_u32(t, 0);                 /* no RSDT: XSDT only */
	tw_u32(t, ACPI_RSDP_LEN);
	tw_u64(t, xsdt_gpa);
	tw_u8(t, 0);                  /* extended checksum */
	tw_put(t, NULL, 3);
	if (t->err)
		return;
	t->buf[s + 8] = (uint8_t)-acpi_sum(t->buf + s, 20);
	t->buf[s + 32] = (uint8_t)-acpi_sum(t->buf + s, ACPI_RSDP_LEN);
}

long acpi_build(const struct acpi_cfg *cfg, void *buf, size_t buf_len,
		uint64_t buf_gpa, uint64_t *rsdp_gpa)
{
	struct tw t = { .buf = buf, .cap = buf_len, .gpa = buf_gpa };
	size_t xsdt, xsdt_len, fadt, facs, dsdt, tables[ACPI_XSDT_MAX];
	unsigned ntables = 0;
	int err;

	if (!cfg || !buf || buf_gpa % 16 || buf_gpa + buf_len < buf_gpa)
		return -EINVAL;
	err = acpi_check(cfg);
	if (err)
		return err;

	/* The RSDP goes last into offset 0 once the XSDT address is known;
	 * reserve its room now. */
	tw_put(&t, NULL, ACPI_RSDP_LEN);
	tw_align(&t, 8);

	xsdt = tw_header(&t, cfg, "XSDT", 1);
	tw_put(&t, NULL, 8 * (cfg->ecam_size ? 3 : 2));
	xsdt_len = t.len - xsdt;
	tw_align(&t, 8);

	fadt = tables[ntables++] = acpi_build_fadt(&t, cfg);
	tw_end(&t, fadt);
	tw_align(&t, 64);

	facs = t.len;
	acpi_build_facs(&t);
	tw_align(&t, 8);

	dsdt = acpi_build_dsdt(&t, cfg);
	tw_end(&t, dsdt);
	tw_align(&t, 8);

	tables[ntables] = acpi_build_madt(&t, cfg);
	tw_end(&t, tables[ntables++]);
	tw_align(&t, 8);

	if (cfg->ecam_size) {
		tables[ntables] = acpi_build_mcfg(&t, cfg);
		tw_end(&t, tables[ntables++]);
	}
	if (t.err)
		return t.err;

	acpi_fadt_link(&t, fadt, facs, dsdt);
	tw_end_len(&t, fadt, ACPI_FADT_LEN);   /* checksum again after linking */
	for (unsigned i = 0; i < ntables; i++)
		tw_patch(&t, xsdt + ACPI_HDR_LEN + 8 * i,
			 tw_gpa(&t, tables[i]), 8);
	tw_end_len(&t, xsdt, xsdt_len);

	{
		size_t used = t.len;

		t.len = 0;
		acpi_build_rsdp(&t, cfg, tw_gpa(&t, xsdt));
		t.len = used;
	}
	if (t.err)
		return t.err;
	if (rsdp_gpa)
		*rsdp_gpa = buf_gpa;
	return (long)t.len;
}
