/*
 * A tiny virtio driver: finds the virtio-blk PCI function, reads its
 * virtio capabilities, negotiates VERSION_1, sets up one queue with an
 * MSI-X vector, then writes, reads back and checks sectors, reads the
 * serial and probes the error statuses.  "ro" on the command line: the
 * disk is read-only and the write must fail.  Prints "virtio-blk ok".
 */
#include "guest.h"

#define QSIZE 8
#define VEC 0x41

static uint8_t ring[3 * 4096] __attribute__((aligned(4096)));
static uint8_t hdr[16] __attribute__((aligned(16)));
static uint8_t buf[512] __attribute__((aligned(16)));
static volatile uint8_t status;
static volatile int irqs;
static uint16_t avail_idx;
static uint64_t notify_addr;

void msi_entry(void);
void msi_handler(void);
void msi_handler(void)
{
	irqs++;
	lapic_eoi();
}

__asm__(".text\n.globl msi_entry\nmsi_entry:\n"
	"push %rax; push %rcx; push %rdx; push %rsi; push %rdi;"
	"push %r8; push %r9; push %r10; push %r11\n"
	"call msi_handler\n"
	"pop %r11; pop %r10; pop %r9; pop %r8; pop %rdi; pop %rsi;"
	"pop %rdx; pop %rcx; pop %rax\n"
	"iretq\n");

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

static uint32_t cfg32(unsigned slot, unsigned off)
{
	outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
	return inl(0xcfc);
}

static uint8_t cfg8(unsigned slot, unsigned off)
{
	return (uint8_t)(cfg32(slot, off) >> (8 * (off & 3)));
}

static void cfg_w16(unsigned slot, unsigned off, uint16_t v)
{
	outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
	outw((uint16_t)(0xcfc + (off & 2)), v);
}

static void w8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static void w16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static void w32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static uint8_t r8(uint64_t a) { return *(volatile uint8_t *)a; }
static uint16_t r16(uint64_t a) { return *(volatile uint16_t *)a; }
static uint32_t r32(uint64_t a) { return *(volatile uint32_t *)a; }
static void w64(uint64_t a, uint64_t v) { w32(a, (uint32_t)v); w32(a + 4, (uint32_t)(v >> 32)); }

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = ring + 16 * i;

	*(uint64_t *)d = addr;
	*(uint32_t *)(d + 8) = len;
	*(uint16_t *)(d + 12) = flags;
	*(uint16_t *)(d + 14) = next;
}

static uint16_t used_idx(void)
{
	return *(volatile uint16_t *)(ring + 8192 + 2);
}

/* One request; returns the status byte (0xff: no answer). */
static int request(uint32_t type, uint64_t sector, uint32_t len, int data_in)
{
	uint16_t want = (uint16_t)(avail_idx + 1);

	*(uint32_t *)hdr = type;
	*(uint32_t *)(hdr + 4) = 0;
	*(uint64_t *)(hdr + 8) = sector;
	status = 0xff;
	desc(0, (uint64_t)hdr, 16, 1, 1);
	if (len) {
		desc(1, (uint64_t)buf, len, (uint16_t)(1 | (data_in ? 2 : 0)), 2);
		desc(2, (uint64_t)&status, 1, 2, 0);
	} else {
		desc(1, (uint64_t)&status, 1, 2, 0);
	}
	*(volatile uint16_t *)(ring + 4096 + 4 + 2 * (avail_idx % QSIZE)) = 0;
	__asm__ volatile("" ::: "memory");
	*(volatile uint16_t *)(ring + 4096 + 2) = want;
	avail_idx = want;
	__asm__ volatile("mfence" ::: "memory");
	w16(notify_addr, 0);
	for (unsigned i = 0; i < 50000000 && used_idx() != want; i++)
		cpu_relax();
	return used_idx() == want ? status : 0xff;
}

static int fail(const char *what)
{
	serial_puts("FAIL: ");
	serial_puts(what);
	serial_puts("\n");
	return 1;
}

int guest_main(void *bp)
{
	const char *cmdline = (const char *)(uint64_t)*(const uint32_t *)((uint8_t *)bp + 0x228);
	int ro = has_word(cmdline, "ro");
	unsigned slot, p, msix = 0;
	uint64_t bar, common = 0, isr = 0, dev = 0, notify = 0;
	uint32_t mult = 0, hi;
	static const char msg[] = "written by the tiny guest";
	int st;

	for (slot = 0; slot < 32; slot++)
		if (cfg32(slot, 0) == (0x1042u << 16 | 0x1af4u))
			break;
	if (slot == 32)
		return fail("no virtio-blk PCI function");
	serial_puts("virtio-blk at slot ");
	serial_put_dec(slot);
	serial_puts(", revision ");
	serial_put_dec(cfg8(slot, 8));
	serial_puts("\n");
	bar = (cfg32(slot, 0x20) & ~0xfULL) | (uint64_t)cfg32(slot, 0x24) << 32;
	for (p = cfg8(slot, 0x34); p; p = cfg8(slot, p + 1)) {
		if (cfg8(slot, p) == 0x11)
			msix = p;
		if (cfg8(slot, p) != 0x09 || cfg8(slot, p + 4) != 4)
			continue;
		switch (cfg8(slot, p + 3)) {
		case 1: common = bar + cfg32(slot, p + 8); break;
		case 2: notify = bar + cfg32(slot, p + 8); mult = cfg32(slot, p + 16); break;
		case 3: isr = bar + cfg32(slot, p + 8); break;
		case 4: dev = bar + cfg32(slot, p + 8); break;
		}
	}
	if (!common || !notify || !isr || !dev || !msix)
		return fail("missing virtio or MSI-X capability");

	w8(common + 0x14, 0);
	if (r8(common + 0x14) != 0)
		return fail("reset");
	w8(common + 0x14, 1);
	w8(common + 0x14, 3);
	w32(common + 0x00, 1);
	hi = r32(common + 0x04);
	if (!(hi & 1))
		return fail("no VERSION_1");
	w32(common + 0x08, 0);
	w32(common + 0x0c, 0);
	w32(common + 0x08, 1);
	w32(common + 0x0c, 1);
	w8(common + 0x14, 3 | 8);
	if (!(r8(common + 0x14) & 8))
		return fail("FEATURES_OK refused");
	serial_puts("capacity ");
	serial_put_dec(r32(dev) | (uint64_t)r32(dev + 4) << 32);
	serial_puts(" sectors\n");

	/* MSI-X vector 0 -> this CPU, vector VEC. */
	idt_set(VEC, msi_entry);
	lapic_enable();
	w32(bar + 0x4000, 0xfee00000u | lapic_id() << 12);
	w32(bar + 0x4004, 0);
	w32(bar + 0x4008, VEC);
	w32(bar + 0x400c, 0);
	cfg_w16(slot, msix + 2, 0x8000);

	w16(common + 0x16, 0);
	if (r16(common + 0x18) < QSIZE)
		return fail("queue too small");
	w16(common + 0x18, QSIZE);
	w16(common + 0x1a, 0);
	if (r16(common + 0x1a) != 0)
		return fail("MSI-X vector refused");
	w64(common + 0x20, (uint64_t)ring);
	w64(common + 0x28, (uint64_t)ring + 4096);
	w64(common + 0x30, (uint64_t)ring + 8192);
	w16(common + 0x1c, 1);
	notify_addr = notify + (uint64_t)r16(common + 0x1e) * mult;
	w8(common + 0x14, 3 | 8 | 4);
	__asm__ volatile("sti");

	for (unsigned i = 0; i < 512; i++)
		buf[i] = (uint8_t)(i < sizeof(msg) ? (unsigned)msg[i] : i);
	st = request(1, 1, 512, 0);
	if (ro) {
		if (st != 1)
			return fail("write to a read-only disk did not fail");
		serial_puts("write refused\n");
	} else if (st != 0) {
		return fail("write");
	}
	for (unsigned i = 0; i < 512; i++)
		buf[i] = 0;
	if (request(0, 1, 512, 1) != 0)
		return fail("read sector 1");
	if (!ro) {
		for (unsigned i = 0; i < 512; i++)
			if (buf[i] != (uint8_t)(i < sizeof(msg) ? (unsigned)msg[i] : i))
				return fail("sector 1 read back differs");
		serial_puts("sector 1 read back\n");
	}
	if (request(0, 0, 512, 1) != 0)
		return fail("read sector 0");
	buf[40] = 0;
	serial_puts("sector 0: ");
	serial_puts((const char *)buf);
	serial_puts("\n");
	if (request(8, 0, 20, 1) != 0)
		return fail("GET_ID");
	buf[20] = 0;
	serial_puts("serial: ");
	serial_puts((const char *)buf);
	serial_puts("\n");
	if (request(0, 1ULL << 40, 512, 1) != 1)
		return fail("read past the end did not fail");
	if (request(77, 0, 0, 0) != 2)
		return fail("unknown request type not UNSUPP");
	for (unsigned i = 0; i < 10000000 && !irqs; i++)
		cpu_relax();
	serial_puts("interrupts: ");
	serial_puts(irqs ? "yes" : "none");
	serial_puts("\n");
	if (!irqs)
		return fail("no MSI-X interrupt");
	(void)r8(isr);
	serial_puts("virtio-blk ok\n");
	return 0;
}
