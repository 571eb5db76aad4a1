#include <string.h>

#include "bus.h"
#include "guest_io.h"
#include "layout.h"

void guest_io_run(struct bus *pio, struct bus *mmio, const uint8_t *data, size_t size,
		 uint8_t *ram, size_t ram_len)
{
	for (size_t i = 0; i + GUEST_IO_RECORD <= size; i += GUEST_IO_RECORD) {
		const uint8_t *r = data + i;
		unsigned len = r[5] % 9 ? r[5] % 9 : 1;
		bool wr = r[0] & 1;
		uint8_t buf[8] = { 0 };
		uint32_t addr;

		memcpy(&addr, r + 1, 4);
		memcpy(buf, r + 6, 4);
		if ((r[0] & 0x30) == 0x30) {
			if (ram)
				memcpy(ram + (addr & (ram_len - 4)), r + 6, 4);
		} else if (r[0] & 2) {
			uint64_t gpa = (r[0] & 4) ? LAYOUT_ECAM_BASE + (addr & 0xfffff)
				     : (r[0] & 8) ? LAYOUT_MMIO32_BASE + (addr & 0xfffff) : addr;
			bus_access(mmio, gpa, buf, len, wr);
		} else {
			uint16_t port = (r[0] & 4) ? (uint16_t)(0xcf8 + (addr & 7)) : (uint16_t)addr;
			bus_access(pio, port, buf, len > 4 ? 4 : len, wr);
		}
	}
}
