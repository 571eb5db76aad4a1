/* Reports the initrd the loader placed (from boot_params) and checks its
 * first bytes; exit 0 when the initrd starts with "VIREO-INITRD". */
#include "guest.h"

int guest_main(void *bp)
{
	const uint8_t *zp = bp;
	uint64_t addr = *(const uint32_t *)(zp + 0x218) |
			(uint64_t)*(const uint32_t *)(zp + 0x0c0) << 32;
	uint64_t size = *(const uint32_t *)(zp + 0x21c);
	const char *want = "VIREO-INITRD", *p = (const char *)addr;

	serial_puts("initrd at ");
	serial_put_hex(addr);
	serial_puts(" size ");
	serial_put_dec(size);
	serial_puts("\n");
	if (!addr || (addr & 4095))
		return 1;
	for (int i = 0; want[i]; i++)
		if (p[i] != want[i])
			return 2;
	serial_puts("initrd contents ok\n");
	return 0;
}
