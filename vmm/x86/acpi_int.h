/* Internal to the ACPI table builder: shared between acpi.c and
 * acpi_dsdt.c.  Not part of the VMM contract (that is acpi.h). */
#ifndef VIREO_VMM_X86_ACPI_INT_H
#define VIREO_VMM_X86_ACPI_INT_H

#include <stddef.h>

#include "acpi.h"

/* The KVM in-kernel IOAPIC has 24 pins: the GSIs the tables may name are
 * ioapic_gsi_base .. ioapic_gsi_base + ACPI_IOAPIC_PINS - 1. */
#define ACPI_IOAPIC_PINS 24

/* Write the DSDT's AML body (everything after the 36-byte header) for a
 * cfg already checked by acpi_build().  Returns bytes written, -ENOSPC if
 * cap is too small, -EINVAL on an internal encoding error. */
long acpi_dsdt_body(const struct acpi_cfg *cfg, void *buf, size_t cap);

#endif
