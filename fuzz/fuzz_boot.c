/* The kernel loaders (bzImage header, ELF program headers and notes, PVH,
 * zero page) on arbitrary files: never a crash, never a write outside
 * guest RAM (ASan watches the mapping's edges). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vireo/util.h>

#include "layout.h"
#include "memory.h"
#include "x86/boot.h"

#define FUZZ_RAM (32 * MiB)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	struct gmem m;
	struct boot_entry e;
	struct boot_request req = { .cmdline = "console=ttyS0", .rsdp_gpa = 0xe0000 };
	char path[64];
	int fd;

	if (!ram) {
		vlog_set_level((enum vlog_level)-1);   /* loaders report every bad input */
		ram = malloc(FUZZ_RAM);   /* malloc: ASan redzones catch overruns */
		if (!ram)
			abort();
	}
	memory_layout(&m, FUZZ_RAM);
	m.region[0].hva = ram;
	fd = memfd_create("kernel", MFD_CLOEXEC);
	if (fd < 0 || vio_write_full(fd, data, size))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	req.kernel = path;
	if (boot_load(&m, &req, &e) == 0) {
		if (!gmem_ptr(&m, e.rip, 1))
			abort();   /* a successful load must enter inside RAM */
	}
	close(fd);
	return 0;
}
