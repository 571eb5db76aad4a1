/* Serial output, then exit through debug-exit with status 7 (or, with
 * "poweroff" on the command line, through ACPI S5). */
#include "guest.h"

static int has_word(const char *s, const char *w)
{
	for (; *s; s++) {
		const char *a = s, *b = w;
		while (*a && *b && *a == *b) { a++; b++; }
		if (!*b)
			return 1;
	}
	return 0;
}

int guest_main(void *bp)
{
	const uint8_t *zp = bp;
	uint32_t cmd = *(const uint32_t *)(zp + 0x228);
	const char *cmdline = (const char *)(uint64_t)cmd;

	serial_puts("hello from the tiny guest\n");
	serial_puts("cmdline: ");
	serial_puts(cmdline);
	serial_puts("\n");
	serial_puts("e820 entries: ");
	serial_put_dec(zp[0x1e8]);
	serial_puts("\n");
	if (has_word(cmdline, "poweroff")) {
		acpi_poweroff();
		serial_puts("still running after poweroff\n");
		return 99;
	}
	if (has_word(cmdline, "spin")) {
		serial_puts("spinning\n");
		for (;;)
			__asm__ volatile("sti; hlt");   /* wait forever, stopped from outside */
	}
	if (has_word(cmdline, "echo")) {
		/* Echo console input back, upper-cased, until a 'q'. */
		serial_puts("echo ready\n");
		for (;;) {
			char c;
			while (!(inb(COM1 + 5) & 1))
				cpu_relax();
			c = (char)inb(COM1);
			if (c == 'q')
				break;
			serial_putc(c >= 'a' && c <= 'z' ? (char)(c - 32) : c);
		}
		serial_puts("\necho done\n");
		return 0;
	}
	if (has_word(cmdline, "boottimer"))
		mmio_write32(0xfeb00000, 123);
	if (has_word(cmdline, "reset"))
		outb(0x64, 0xfe);
	return 7;
}
