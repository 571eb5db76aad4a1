/*
 * The DSDT's content: the objects a Linux guest looks for on a minimal
 * machine without firmware.
 *
 *   \_S5_                  sleep type for soft-off (ACPI_S5_SLP_TYP)
 *   \_SB_.PCI0             PCIe host bridge (PNP0A08, _CID PNP0A03) with
 *                          _SEG/_UID/_BBN, _CRS windows, _PRT for INTx
 *                          and _OSC granting native PCIe control
 *   \_SB_.MRES             motherboard resources (PNP0C02): the PM block
 *                          and the ECAM window, so the OS keeps off them
 *   \_SB_.COM1, COM2       16550 UARTs (PNP0501), when configured
 *   \_SB_.PS2K             8042 keyboard controller (PNP0303), when present
 *   \_SB_.Cnnn             one processor device (ACPI0007) per CPU, _UID
 *                          matching the MADT processor UID
 */
#include <errno.h>
#include <stdio.h>

#include "acpi_int.h"
#include "aml.h"

#define DSDT_RES_MAX 512

/* Emit Name(name, ResourceTemplate) from the bytes built in r. */
static void dsdt_name_res(struct aml *a, const char *name, struct aml *r)
{
	long n;

	aml_res_end(r);
	n = aml_finish(r);
	if (n < 0) {
		/* Our own templates are small; an overflow is a bug here. */
		if (!a->err)
			a->err = -EINVAL;
		return;
	}
	aml_name(a, name);
	aml_buffer(a, r->buf, (size_t)n);
}

static void dsdt_pci_crs(struct aml *a, const struct acpi_cfg *cfg)
{
	uint8_t buf[DSDT_RES_MAX];
	struct aml r;

	aml_init(&r, buf, sizeof(buf));
	aml_res_word_bus(&r, cfg->pci_bus_start, cfg->pci_bus_end);
	/* The bridge's own config ports, then legacy I/O passed through to
	 * the ISA-style devices below them. */
	aml_res_io(&r, 0x0cf8, 0x0cf8, 1, 8);
	aml_res_word_io(&r, 0x0000, 0x0cf7);
	if (cfg->pci_io_size)
		aml_res_word_io(&r, cfg->pci_io_base,
				(uint16_t)(cfg->pci_io_base +
					   cfg->pci_io_size - 1u));
	if (cfg->pci_mmio32_size)
		aml_res_dword_mem(&r, (uint32_t)cfg->pci_mmio32_base,
				  (uint32_t)(cfg->pci_mmio32_base +
					     cfg->pci_mmio32_size - 1),
				  AML_MEM_NONCACHEABLE);
	if (cfg->pci_mmio64_size)
		aml_res_qword_mem(&r, cfg->pci_mmio64_base,
				  cfg->pci_mmio64_base +
					  cfg->pci_mmio64_size - 1,
				  AML_MEM_CACHEABLE);
	dsdt_name_res(a, "_CRS", &r);
}

/* _PRT: slot s pin p -> GSI pci_intx_gsi[(s + p) % 4], for all 32 slots. */
static void dsdt_pci_prt(struct aml *a, const struct acpi_cfg *cfg)
{
	aml_name(a, "_PRT");
	aml_package_begin(a, 32 * 4);
	for (unsigned slot = 0; slot < 32; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			aml_package_begin(a, 4);
			aml_integer(a, (uint64_t)slot << 16 | 0xffff);
			aml_integer(a, pin);
			aml_integer(a, 0);            /* source: a GSI */
			aml_integer(a, cfg->pci_intx_gsi[(slot + pin) % 4]);
			aml_end(a);
		}
	}
	aml_end(a);
}

/* Or(name, bit, name) */
static void dsdt_or_bit(struct aml *a, const char *name, uint64_t bit)
{
	aml_op(a, AML_OP_OR);
	aml_namestring(a, name);
	aml_integer(a, bit);
	aml_namestring(a, name);
}

/*
 * _OSC for the PCI host bridge (PCI Firmware spec 4.5): grant the OS every
 * feature it asks for among native PCIe hotplug, PME, AER and the PCIe
 * capability structure (there is no SHPC), and flag an unknown revision
 * or UUID.  In ASL:
 *
 *   Method (_OSC, 4) {
 *     CreateDWordField (Arg3, 0, CDW1)
 *     If (Arg0 == ToUUID ("33db4d5b-1ff7-401c-9657-7441c03dd766")) {
 *       CreateDWordField (Arg3, 8, CDW3)
 *       If (Arg1 != 1) { CDW1 |= 0x08 }
 *       Local0 = CDW3 & 0x1d
 *       If (CDW3 != Local0) { CDW1 |= 0x10 }
 *       CDW3 = Local0
 *     } Else { CDW1 |= 0x04 }
 *     Return (Arg3)
 *   }
 */
#define OSC_GRANTED 0x1d

static void dsdt_pci_osc(struct aml *a)
{
	aml_method_begin(a, "_OSC", 4, false);
	aml_op(a, AML_OP_CREATE_DWORD_FIELD);
	aml_arg(a, 3);
	aml_integer(a, 0);
	aml_namestring(a, "CDW1");

	aml_if_begin(a);
	aml_op(a, AML_OP_LEQUAL);
	aml_arg(a, 0);
	aml_uuid(a, "33db4d5b-1ff7-401c-9657-7441c03dd766");

	aml_op(a, AML_OP_CREATE_DWORD_FIELD);
	aml_arg(a, 3);
	aml_integer(a, 8);
	aml_namestring(a, "CDW3");

	aml_if_begin(a);
	aml_op(a, AML_OP_LNOT);
	aml_op(a, AML_OP_LEQUAL);
	aml_arg(a, 1);
	aml_integer(a, 1);
	dsdt_or_bit(a, "CDW1", 0x08);             /* unrecognized revision */
	aml_end(a);

	aml_op(a, AML_OP_AND);
	aml_namestring(a, "CDW3");
	aml_integer(a, OSC_GRANTED);
	aml_local(a, 0);

	aml_if_begin(a);
	aml_op(a, AML_OP_LNOT);
	aml_op(a, AML_OP_LEQUAL);
	aml_namestring(a, "CDW3");
	aml_local(a, 0);
	dsdt_or_bit(a, "CDW1", 0x10);             /* capabilities masked */
	aml_end(a);

	aml_op(a, AML_OP_STORE);
	aml_local(a, 0);
	aml_namestring(a, "CDW3");
	aml_end(a);                               /* If (UUID) */

	aml_else_begin(a);
	dsdt_or_bit(a, "CDW1", 0x04);             /* unrecognized UUID */
	aml_end(a);

	aml_return(a);
	aml_arg(a, 3);
	aml_end(a);                               /* Method */
}

static void dsdt_pci(struct aml *a, const struct acpi_cfg *cfg)
{
	aml_device_begin(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A08");
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A03");
	aml_name_integer(a, "_SEG", 0);
	aml_name_integer(a, "_UID", 0);
	aml_name_integer(a, "_BBN", cfg->pci_bus_start);
	dsdt_pci_crs(a, cfg);
	dsdt_pci_prt(a, cfg);
	dsdt_pci_osc(a);
	aml_end(a);
}

static void dsdt_motherboard(struct aml *a, const struct acpi_cfg *cfg)
{
	uint8_t buf[DSDT_RES_MAX];
	struct aml r;

	aml_init(&r, buf, sizeof(buf));
	aml_res_io(&r, cfg->pm_io_base, cfg->pm_io_base, 1, ACPI_PM_IO_LEN);
	/* ECAM below 4 GiB; above it the VMM's E820 reservation covers it. */
	if (cfg->ecam_size && cfg->ecam_base + cfg->ecam_size <= (1ULL << 32))
		aml_res_mem32_fixed(&r, (uint32_t)cfg->ecam_base,
				    (uint32_t)cfg->ecam_size);

	aml_device_begin(a, "MRES");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0C02");
	aml_name_integer(a, "_UID", 0);
	dsdt_name_res(a, "_CRS", &r);
	aml_end(a);
}

static void dsdt_uart(struct aml *a, const char *name, unsigned uid,
		      uint16_t port, unsigned irq)
{
	uint8_t buf[DSDT_RES_MAX];
	struct aml r;

	aml_init(&r, buf, sizeof(buf));
	aml_res_io(&r, port, port, 1, 8);
	aml_res_irq(&r, irq, false, false, false);

	aml_device_begin(a, name);
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name_integer(a, "_UID", uid);
	dsdt_name_res(a, "_CRS", &r);
	aml_end(a);
}

static void dsdt_i8042(struct aml *a)
{
	uint8_t buf[DSDT_RES_MAX];
	struct aml r;

	aml_init(&r, buf, sizeof(buf));
	aml_res_io(&r, 0x60, 0x60, 1, 1);
	aml_res_io(&r, 0x64, 0x64, 1, 1);
	aml_res_irq(&r, 1, false, false, false);

	aml_device_begin(a, "PS2K");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0303");
	dsdt_name_res(a, "_CRS", &r);
	aml_end(a);
}

static void dsdt_cpus(struct aml *a, const struct acpi_cfg *cfg)
{
	char name[8];

	for (unsigned i = 0; i < cfg->ncpus; i++) {
		snprintf(name, sizeof(name), "C%03X", i & 0xfff);
		aml_device_begin(a, name);
		aml_name_string(a, "_HID", "ACPI0007");
		aml_name_integer(a, "_UID", i);
		aml_end(a);
	}
}

long acpi_dsdt_body(const struct acpi_cfg *cfg, void *buf, size_t cap)
{
	struct aml a;

	aml_init(&a, buf, cap);

	/* \_S5_: SLP_TYPa, SLP_TYPb, reserved, reserved */
	aml_name(&a, "\\_S5");
	aml_package_begin(&a, 4);
	aml_integer(&a, ACPI_S5_SLP_TYP);
	aml_integer(&a, ACPI_S5_SLP_TYP);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_end(&a);

	aml_scope_begin(&a, "\\_SB");
	if (cfg->ecam_size)
		dsdt_pci(&a, cfg);
	dsdt_motherboard(&a, cfg);
	if (cfg->com1)
		dsdt_uart(&a, "COM1", 1, 0x3f8, 4);
	if (cfg->com2)
		dsdt_uart(&a, "COM2", 2, 0x2f8, 3);
	if (cfg->has_i8042)
		dsdt_i8042(&a);
	dsdt_cpus(&a, cfg);
	aml_end(&a);

	return aml_finish(&a);
}
