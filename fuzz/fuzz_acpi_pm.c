/*
 * libFuzzer target: the ACPI PM register block (vmm/x86/acpi_pm.c), which
 * the guest reaches through ports.  Input: records of
 * [op:1][offset:1][size:1][data:4]; op bit 0 write, bit 1 a power-button
 * press before the access.  Checked on every step: the action is a known
 * one and the SCI line follows PM1_STS & PM1_EN (acpi_pm.c).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x86/acpi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sci_level = -1;

static void set_sci(void *opaque, int level)
{
	(void)opaque;
	if (level != 0 && level != 1)
		abort();
	sci_level = level;
}

static uint16_t rd16(struct acpi_pm *pm, uint16_t off)
{
	uint8_t d[2];

	acpi_pm_io(pm, off, false, d, 2);
	return (uint16_t)(d[0] | d[1] << 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acpi_pm *pm = acpi_pm_new(set_sci, NULL);

	if (!pm)
		abort();
	sci_level = 0;
	for (size_t i = 0; i + 7 <= size; i += 7) {
		const uint8_t *r = data + i;
		unsigned sz = r[2] % 5;
		uint8_t buf[4];
		enum acpi_pm_action a;

		if (r[0] & 2)
			acpi_pm_power_button(pm);
		memcpy(buf, r + 3, 4);
		a = acpi_pm_io(pm, (uint16_t)(r[1] % (ACPI_PM_IO_LEN + 8)), r[0] & 1, buf, sz);
		if (a != ACPI_PM_NONE && a != ACPI_PM_POWEROFF && a != ACPI_PM_RESET)
			abort();
		/* The SCI line is the OR of the enabled status bits. */
		if (sci_level != ((rd16(pm, 0) & rd16(pm, 2)) != 0))
			abort();
	}
	acpi_pm_free(pm);
	return 0;
}
