/* Memory writer: fills 16 MiB from 32 MiB with a pattern (one write per
 * 4 KiB page, then every word of the first pages) and checks it back. */
#include "guest.h"

int guest_main(void *bp)
{
	volatile uint64_t *base = (volatile uint64_t *)(32UL << 20);
	unsigned long pages = (16UL << 20) / 4096;

	for (unsigned long p = 0; p < pages; p++)
		base[p * 512] = 0x5a5a000000000000UL | p;
	for (unsigned long i = 0; i < pages; i++)
		base[i * 512 + 1] = i;   /* second word of each page */
	for (unsigned long p = 0; p < pages; p++)
		if (base[p * 512] != (0x5a5a000000000000UL | p)) {
			serial_puts("memory mismatch at page ");
			serial_put_dec(p);
			serial_puts("\n");
			return 1;
		}
	serial_puts("wrote and checked ");
	serial_put_dec(pages);
	serial_puts(" pages\n");
	return 0;
}
