/* Triple fault: an empty IDT, then an exception. */
#include "guest.h"

int guest_main(void *bp)
{
	static struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr = { 0, 0 };

	serial_puts("about to triple fault\n");
	__asm__ volatile("lidt %0; ud2" :: "m"(idtr));
	serial_puts("survived\n");
	return 5;
}
