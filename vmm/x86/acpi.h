/*
 * ACPI for vireo-vmm: the tables the guest reads (RSDP, XSDT, FADT, FACS,
 * DSDT, MADT, MCFG) and the fixed-hardware power-management registers the
 * FADT points at (PM1a event and control blocks, PM timer, reset register).
 *
 * Power management model: "fixed hardware" ACPI (not hardware-reduced).
 *  - PM1a_EVT_BLK at pm_io_base + 0 (4 bytes: PM1_STS then PM1_EN),
 *    PM1a_CNT_BLK at pm_io_base + 4 (2 bytes), PM_TMR_BLK at pm_io_base + 8
 *    (4 bytes, 24-bit 3.579545 MHz counter), reset register at
 *    pm_io_base + 0x0C (1 byte; writing ACPI_RESET_VALUE resets).
 *    The whole block spans ACPI_PM_IO_LEN ports.
 *  - SCI on cfg->sci_irq (ISA IRQ, level triggered, active high; the MADT
 *    carries the matching interrupt source override).
 *  - ACPI is always enabled (SMI_CMD = 0, SCI_EN reads as 1).
 *  - Power button: the fixed-feature power button (PWRBTN_STS/EN).
 *  - \_S5 makes the guest write SLP_TYP = ACPI_S5_SLP_TYP with SLP_EN.
 */
#ifndef VIREO_VMM_X86_ACPI_H
#define VIREO_VMM_X86_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_PM_IO_LEN    0x10
#define ACPI_RESET_VALUE  0x01
#define ACPI_S5_SLP_TYP   0x05

/* Added by the table builder (compatible with the original contract):
 * the largest ncpus acpi_build() accepts. */
#define ACPI_MAX_CPUS     4096

struct acpi_cfg {
	unsigned ncpus;
	const uint32_t *apic_ids;      /* ncpus entries; x2APIC entries used above 254 */
	uint64_t lapic_addr;           /* usually 0xfee00000 */
	uint64_t ioapic_addr;          /* usually 0xfec00000 */
	uint8_t ioapic_id;
	uint32_t ioapic_gsi_base;      /* usually 0 */

	uint16_t pm_io_base;           /* I/O port of the PM block, e.g. 0x600 */
	uint8_t sci_irq;               /* ISA IRQ of the SCI, e.g. 9 */
	bool has_i8042;                /* IAPC_BOOT_ARCH 8042 flag */

	/* PCI host bridge; ecam_size == 0 means no PCI in the tables.
	 * ecam_base is the address of bus pci_bus_start's configuration
	 * space (1 MiB per bus); ecam_size must be a multiple of 1 MiB that
	 * covers pci_bus_start..pci_bus_end.  The I/O window, when present,
	 * must lie in 0x0d00..0xffff (the builder always also passes
	 * 0x0000..0x0cf7 through to legacy devices; 0xcf8..0xcff are the
	 * bridge's own config ports).  INTx GSIs are level, active low. */
	uint64_t ecam_base;
	uint64_t ecam_size;            /* 1 MiB per bus */
	uint8_t pci_bus_start, pci_bus_end;
	uint64_t pci_mmio32_base, pci_mmio32_size;
	uint64_t pci_mmio64_base, pci_mmio64_size;   /* size 0: none */
	uint16_t pci_io_base, pci_io_size;           /* size 0: none */
	/* Legacy INTx: slot s pin p routes to GSI pci_intx_gsi[(s + p) % 4]. */
	uint32_t pci_intx_gsi[4];

	bool com1;                     /* 16550 at 0x3f8, IRQ 4 */
	bool com2;                     /* 16550 at 0x2f8, IRQ 3 */
	char oem_id[7];                /* 6 chars, space padded when shorter */
};

/*
 * Build every table into buf (host memory that the guest will see at guest
 * physical address buf_gpa; buf_len bytes available, 64 KiB is plenty).
 * Tables are packed with proper alignment, every checksum set, RSDP first at
 * buf_gpa (so buf_gpa in 0xe0000..0xfffff also satisfies the legacy scan).
 * On success returns the number of bytes used and stores the RSDP's guest
 * address in *rsdp_gpa; returns -EINVAL for a bad cfg, -ENOSPC if too small.
 *
 * (Added with the implementation.)  A cfg is bad when: ncpus is 0 or above
 * ACPI_MAX_CPUS, apic_ids is NULL, has duplicates or 0xffffffff; lapic or
 * ioapic address is not below 4 GiB; sci_irq is 0, 2, above 15, or the IRQ
 * of an enabled COM port / the 8042; the PM block is at port 0, runs past
 * 0xffff, or overlaps 0xcf8..0xcff or the PCI I/O window; oem_id has a
 * non-printable character; or, with ecam_size != 0, the PCI fields break
 * the rules in the struct (bus range, 1 MiB ECAM granularity, 32-bit window
 * below 4 GiB, INTx GSIs on the IOAPIC's 24 pins from ioapic_gsi_base).
 * buf_gpa must be 16-byte aligned; buf NULL is bad; rsdp_gpa may be NULL.
 * Nothing is written for a bad cfg.  A CPU gets a Processor Local APIC
 * entry (UID = its index) when its APIC id and index are below 255, an
 * x2APIC entry otherwise.  The DSDT has \_S5, \_SB.PCI0 (with _OSC),
 * \_SB.MRES (PNP0C02: PM ports and a below-4G ECAM), COM1/COM2, PS2K (8042)
 * and one ACPI0007 processor device per CPU (\_SB.Cnnn, _UID = index).
 */
long acpi_build(const struct acpi_cfg *cfg, void *buf, size_t buf_len,
		uint64_t buf_gpa, uint64_t *rsdp_gpa);

/* The PM register block, driven by the VMM's port I/O dispatch. */
enum acpi_pm_action {
	ACPI_PM_NONE = 0,
	ACPI_PM_POWEROFF,     /* guest entered S5 */
	ACPI_PM_RESET,        /* guest wrote the reset register */
};

struct acpi_pm;

/* set_sci(opaque, level) is called whenever the SCI line level changes. */
struct acpi_pm *acpi_pm_new(void (*set_sci)(void *opaque, int level),
			    void *opaque);
void acpi_pm_free(struct acpi_pm *pm);

/* Port access at offset (0 .. ACPI_PM_IO_LEN-1) from pm_io_base; size 1, 2
 * or 4; data in little-endian.  Reads fill data.  Returns the action the
 * VMM must take.  Bad offsets/sizes read as all-ones and are ignored. */
enum acpi_pm_action acpi_pm_io(struct acpi_pm *pm, uint16_t offset,
			       bool is_write, uint8_t *data, unsigned size);

/* Press the power button (sets PWRBTN_STS, raises the SCI if enabled). */
void acpi_pm_power_button(struct acpi_pm *pm);

/* Save and restore (vmm/snapshot.c): the registers, the SCI level and the
 * PM timer's count; a restored timer counts on from the saved count.
 * set_state does not call set_sci (the irqchip's state is restored). */
struct acpi_pm_state {
	uint16_t sts, en, cnt;
	int sci_level;
	uint32_t timer;
};
void acpi_pm_get_state(const struct acpi_pm *pm, struct acpi_pm_state *s);
void acpi_pm_set_state(struct acpi_pm *pm, const struct acpi_pm_state *s);

#endif
