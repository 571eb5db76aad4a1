/* The in-kernel PIT's IRQ 0 arrives on I/O APIC pin 2, as the MADT's
 * interrupt source override says: three ticks of a 100 Hz periodic timer
 * wake the guest from HLT. */
#include "guest.h"

static volatile int ticks;

void pit_handler(void);
void pit_handler(void)
{
	ticks++;
	lapic_eoi();
}

void pit_entry(void);
__asm__(".text\n.globl pit_entry\npit_entry:\n"
	"push %rax; push %rcx; push %rdx; push %rsi; push %rdi;"
	"push %r8; push %r9; push %r10; push %r11\n"
	"call pit_handler\n"
	"pop %r11; pop %r10; pop %r9; pop %r8; pop %rdi; pop %rsi;"
	"pop %rdx; pop %rcx; pop %rax\n"
	"iretq\n");

int guest_main(void *bp)
{
	outb(0x21, 0xff);               /* 8259s masked: the IOAPIC only */
	outb(0xa1, 0xff);
	idt_set(0x32, pit_entry);
	lapic_enable();
	ioapic_route(2, 0x32, lapic_id());
	outb(0x43, 0x34);               /* channel 0, lo/hi, mode 2 */
	outb(0x40, 11932 & 0xff);       /* 1193182 Hz / 11932 = 100 Hz */
	outb(0x40, 11932 >> 8);
	for (int i = 0; i < 100000 && ticks < 3; i++)
		__asm__ volatile("sti; hlt; cli");
	serial_puts("pit ticks: ");
	serial_put_dec(ticks);
	serial_puts("\n");
	return ticks >= 3 ? 0 : 1;
}
