/* ACPI power button: enable PWRBTN_EN, route the SCI (IRQ 9, level, active
 * high) through the IOAPIC, wait in HLT; the handler checks PWRBTN_STS,
 * clears it and the guest powers off through S5 (exit status 0). */
#include "guest.h"

#define PM1_STS 0x600
#define PM1_EN  0x602
#define PWRBTN  (1u << 8)

static volatile int pressed;

static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }

void sci_handler(void);
void sci_handler(void)
{
	uint16_t sts = inw(PM1_STS);

	if (sts & PWRBTN) {
		outw(PM1_STS, PWRBTN);      /* write 1 to clear: SCI drops */
		pressed = 1;
	}
	lapic_eoi();
}

void sci_entry(void);
__asm__(".text\n.globl sci_entry\nsci_entry:\n"
	"push %rax; push %rcx; push %rdx; push %rsi; push %rdi;"
	"push %r8; push %r9; push %r10; push %r11\n"
	"call sci_handler\n"
	"pop %r11; pop %r10; pop %r9; pop %r8; pop %rdi; pop %rsi;"
	"pop %rdx; pop %rcx; pop %rax\n"
	"iretq\n");

int guest_main(void *bp)
{
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	idt_set(0x31, sci_entry);
	lapic_enable();
	/* Level triggered (bit 15), active high. */
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * 9 + 1);
	mmio_write32(IOAPIC_BASE + 0x10, lapic_id() << 24);
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * 9);
	mmio_write32(IOAPIC_BASE + 0x10, 0x31 | (1u << 15));
	outw(PM1_EN, PWRBTN);
	serial_puts("waiting for the power button\n");
	while (!pressed)
		__asm__ volatile("sti; hlt; cli");
	serial_puts("power button pressed: powering off\n");
	acpi_poweroff();
	return 9;
}
