#include "guest.h"

void serial_putc(char c)
{
	for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		cpu_relax();
	outb(COM1, (uint8_t)c);
}

void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

void serial_put_hex(uint64_t v)
{
	static const char d[] = "0123456789abcdef";
	serial_puts("0x");
	for (int i = 60; i >= 0; i -= 4)
		serial_putc(d[(v >> i) & 15]);
}

void serial_put_dec(uint64_t v)
{
	char buf[24];
	int n = 0;
	do {
		buf[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		serial_putc(buf[--n]);
}

void acpi_poweroff(void)
{
	outw(0x604, (uint16_t)((5 << 10) | (1 << 13)));   /* SLP_TYP=5, SLP_EN */
}

uint32_t lapic_id(void)
{
	return mmio_read32(LAPIC_BASE + 0x20) >> 24;
}

void lapic_enable(void)
{
	mmio_write32(LAPIC_BASE + 0xf0, 0x1ff);   /* software enable, spurious 0xff */
}

void lapic_eoi(void)
{
	mmio_write32(LAPIC_BASE + 0xb0, 0);
}

void delay(unsigned loops)
{
	for (volatile unsigned i = 0; i < loops; i++)
		cpu_relax();
}

static void lapic_icr(uint32_t apic_id, uint32_t low)
{
	mmio_write32(LAPIC_BASE + 0x310, apic_id << 24);
	mmio_write32(LAPIC_BASE + 0x300, low);
	while (mmio_read32(LAPIC_BASE + 0x300) & (1u << 12))
		cpu_relax();
}

void lapic_start_ap(uint32_t apic_id, uint8_t vector_page)
{
	lapic_icr(apic_id, 0x4500);               /* INIT, level assert */
	delay(100);
	lapic_icr(apic_id, 0x4600 | vector_page); /* SIPI */
	delay(100);
	lapic_icr(apic_id, 0x4600 | vector_page); /* second SIPI, as the MP spec says */
}

void ioapic_route(unsigned pin, uint8_t vector, uint32_t dest_apic)
{
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin + 1);
	mmio_write32(IOAPIC_BASE + 0x10, dest_apic << 24);
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin);
	mmio_write32(IOAPIC_BASE + 0x10, vector);  /* fixed, physical, edge, unmasked */
}

struct idt_entry {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));

static struct idt_entry idt[256] __attribute__((aligned(16)));
static struct gdt_desc { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr;

void idt_set(uint8_t vector, void (*handler)(void))
{
	uint64_t a = (uint64_t)handler;
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	idt[vector] = (struct idt_entry){ (uint16_t)a, cs, 0, 0x8e, (uint16_t)(a >> 16),
					  (uint32_t)(a >> 32), 0 };
	idtr.limit = sizeof(idt) - 1;
	idtr.base = (uint64_t)idt;
	__asm__ volatile("lidt %0" :: "m"(idtr));
}

__attribute__((weak)) void ap_main(void)
{
}
