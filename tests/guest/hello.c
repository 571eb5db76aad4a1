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
	if (has_word(cmdline, "spew")) {
		/* 64 KiB of console output, the way Linux's console writes it
		 * (status read, then the character). */
		for (int line = 0; line < 1024; line++)
			serial_puts("0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.\n");
		serial_puts("spew done\n");
		return 0;
	}
	if (has_word(cmdline, "dlab")) {
		/* With DLAB set, port 0x3f8 is the divisor latch: a write
		 * there is queued by KVM like a character and must still land
		 * before the read that follows it. */
		uint8_t dll;

		outb(COM1 + 3, 0x83);
		outb(COM1, 0x5a);
		dll = inb(COM1);
		outb(COM1, 0x01);
		outb(COM1 + 3, 0x03);
		serial_puts("divisor latch read back: ");
		serial_put_hex(dll);
		serial_puts(dll == 0x5a ? " (ok)\n" : " (wrong)\n");
		return dll == 0x5a ? 0 : 1;
	}
	if (has_word(cmdline, "blind")) {
		/* Characters written without reading the line status, then
		 * nothing that leaves KVM: they must come out all the same.
		 * First ~0.2 s of quiet (500M TSC cycles), so that vireo-vmm
		 * has queued COM1 and its timer has slowed down. */
		uint32_t lo, hi;
		uint64_t t0, t;

		__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
		t0 = ((uint64_t)hi << 32) | lo;
		do {
			__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
			t = ((uint64_t)hi << 32) | lo;
		} while (t - t0 < 500000000ull);
		for (const char *m = "written blind\n"; *m; m++)
			outb(COM1, (uint8_t)*m);
		for (;;)
			__asm__ volatile("cli; hlt");
	}
	if (has_word(cmdline, "boottimer"))
		mmio_write32(0xfeb00000, 123);
	if (has_word(cmdline, "reset"))
		outb(0x64, 0xfe);
	return 7;
}
