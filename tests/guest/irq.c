/* Interrupts: COM1's THR-empty interrupt through the IOAPIC to vector 0x30;
 * the guest halts with interrupts on and the handler wakes it. */
#include "guest.h"

static volatile int got;

void irq_entry(void);
void irq_handler(void);
void irq_handler(void)
{
	(void)inb(COM1 + 2);        /* IIR read acknowledges THRE */
	outb(COM1 + 1, 0);          /* interrupts off at the UART */
	got++;
	lapic_eoi();
}

__asm__(".text\n.globl irq_entry\nirq_entry:\n"
	"push %rax; push %rcx; push %rdx; push %rsi; push %rdi;"
	"push %r8; push %r9; push %r10; push %r11\n"
	"call irq_handler\n"
	"pop %r11; pop %r10; pop %r9; pop %r8; pop %rdi; pop %rsi;"
	"pop %rdx; pop %rcx; pop %rax\n"
	"iretq\n");

int guest_main(void *bp)
{
	outb(0x21, 0xff);           /* mask the 8259s: use the IOAPIC */
	outb(0xa1, 0xff);
	idt_set(0x30, irq_entry);
	lapic_enable();
	ioapic_route(4, 0x30, lapic_id());
	serial_puts("waiting for the UART interrupt\n");
	outb(COM1 + 1, 0x02);       /* THRE interrupt on: fires at once */
	for (int i = 0; i < 1000 && !got; i++)
		__asm__ volatile("sti; hlt; cli");
	serial_puts(got ? "interrupt received\n" : "no interrupt\n");
	return got ? 0 : 1;
}
