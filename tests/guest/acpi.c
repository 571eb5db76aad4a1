/* ACPI tables as a guest sees them: the RSDP from boot_params and from the
 * legacy scan of 0xe0000-0xfffff, the XSDT, and the MADT's processors.
 * Prints "acpi cpus N" and returns 0 when everything checks out. */
#include "guest.h"

static int sum_ok(const uint8_t *p, uint32_t len)
{
	uint8_t s = 0;
	for (uint32_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s == 0;
}

static int sig_is(const uint8_t *p, const char *sig, int n)
{
	for (int i = 0; i < n; i++)
		if (p[i] != (uint8_t)sig[i])
			return 0;
	return 1;
}

int guest_main(void *bp)
{
	const uint8_t *zp = bp, *rsdp = 0, *xsdt, *madt = 0;
	uint64_t from_bp = *(const uint64_t *)(zp + 0x70);
	uint32_t n, cpus = 0;

	for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
		if (sig_is((const uint8_t *)a, "RSD PTR ", 8)) {
			rsdp = (const uint8_t *)a;
			break;
		}
	if (!rsdp || (uint64_t)rsdp != from_bp) {
		serial_puts("RSDP not found or not where boot_params says\n");
		return 1;
	}
	if (!sum_ok(rsdp, 20) || !sum_ok(rsdp, *(const uint32_t *)(rsdp + 20))) {
		serial_puts("RSDP checksum\n");
		return 2;
	}
	xsdt = (const uint8_t *)*(const uint64_t *)(rsdp + 24);
	if (!sig_is(xsdt, "XSDT", 4) || !sum_ok(xsdt, *(const uint32_t *)(xsdt + 4))) {
		serial_puts("XSDT bad\n");
		return 3;
	}
	n = (*(const uint32_t *)(xsdt + 4) - 36) / 8;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t = (const uint8_t *)*(const uint64_t *)(xsdt + 36 + 8 * i);
		serial_putc(t[0]); serial_putc(t[1]); serial_putc(t[2]); serial_putc(t[3]);
		serial_putc(' ');
		if (!sum_ok(t, *(const uint32_t *)(t + 4))) {
			serial_puts("bad checksum\n");
			return 4;
		}
		if (sig_is(t, "APIC", 4))
			madt = t;
	}
	serial_puts("\n");
	if (!madt)
		return 5;
	for (uint32_t off = 44; off + 2 <= *(const uint32_t *)(madt + 4); off += madt[off + 1]) {
		if (madt[off + 1] < 2)
			return 6;
		if ((madt[off] == 0 && (madt[off + 4] & 1)) ||
		    (madt[off] == 9 && (madt[off + 8] & 1)))
			cpus++;
	}
	serial_puts("acpi cpus ");
	serial_put_dec(cpus);
	serial_puts("\n");
	return 0;
}
