/* The guest page walk of register dumps (vmm/x86/pagewalk.c): guest RAM,
 * CR3 and the address are all the guest's.  Input: [cr3:8][va:8][flags:1]
 * [guest RAM, at gpa 0...].  The walk must read only inside RAM, always
 * terminate its text, and report a translation only when it says OK. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x86/pagewalk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gmem m = { 0 };
	uint64_t cr3, va, gpa = ~0ULL;
	uint8_t *ram;
	char text[96];
	size_t len;
	enum pagewalk_result r;

	if (size < 17)
		return 0;
	memcpy(&cr3, data, 8);
	memcpy(&va, data + 8, 8);
	len = size - 17;
	/* An exact-size copy, so ASan sees any read past the end of RAM. */
	ram = malloc(len ? len : 1);
	if (!ram)
		return 0;
	memcpy(ram, data + 17, len);
	if (len) {
		m.region[0].gpa = (data[16] & 2) ? 0x100000 : 0;
		m.region[0].size = len;
		m.region[0].hva = ram;
		m.nr_regions = 1;
		m.ram_size = len;
	}
	/* Text sizes from 0 up: truncation must be safe at every length. */
	r = pagewalk(&m, cr3, data[16] & 1, va, &gpa, (data[16] & 4) ? text : NULL,
		     (data[16] & 4) ? (size_t)(data[16] >> 3) % sizeof(text) : 0);
	if ((data[16] & 4) && (data[16] >> 3) % sizeof(text) &&
	    strlen(text) >= (size_t)(data[16] >> 3) % sizeof(text))
		abort();
	if (r == PAGEWALK_OK && (gpa == ~0ULL || !gmem_ptr(&m, gpa, 1)))
		abort();
	free(ram);
	return 0;
}
