/*
 * Direct kernel boot: bzImage through the Linux/x86 64-bit boot protocol,
 * ELF vmlinux (PVH entry note -> 32-bit PVH entry, otherwise 64-bit entry
 * at e_entry with boot_params), and the zero page / PVH start_info.
 * Pure parsing (boot_bzimage_check, boot_elf_check, boot_params_fill) is
 * kept apart from file I/O so tests/unit can exercise it.
 */
#ifndef VIREO_VMM_X86_BOOT_H
#define VIREO_VMM_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "../gmem.h"
#include "../memory.h"

#define BOOT_HDR_OFF        0x1f1
#define BOOT_PARAMS_SIZE    4096
#define BOOT_E820_MAX       128
#define BOOT_XEN_ELFNOTE_PHYS32_ENTRY 18
#define BOOT_PVH_MAGIC      0x336ec578u

enum boot_mode {
	BOOT_MODE_LINUX64,   /* 64-bit, paging on, rsi = boot_params */
	BOOT_MODE_PVH32,     /* 32-bit flat protected mode, ebx = start_info */
};


/* What the bzImage header says (validated). */
struct bzimage_info {
	uint16_t version;
	uint32_t setup_size;     /* bytes of real-mode setup incl. boot sector */
	uint64_t pm_size;        /* bytes of protected-mode kernel in the file */
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t cmdline_max;    /* longest accepted command line (bytes) */
	uint32_t initrd_addr_max;
	uint32_t hdr_len;        /* bytes of setup header to copy from 0x1f1 */
	uint16_t xloadflags;
};

/* Validate a bzImage from its first len bytes (at least 1024 of them if the
 * file is that long) and the whole file size.  Returns 0, or -ENOEXEC (not a
 * bzImage), -ENOTSUP (too old / not 64-bit capable), -EIO (truncated); msg
 * gets a description. */
int boot_bzimage_check(const uint8_t *hdr, size_t len, uint64_t file_size,
		       struct bzimage_info *bi, char *msg, size_t msglen);

/* Fill the 4 KiB zero page: copy of the setup header (hdr may be NULL for
 * an ELF kernel), loader fields, command line, initrd, e820, RSDP. */
void boot_params_fill(uint8_t *zp, const uint8_t *hdr, const struct bzimage_info *bi,
		      uint64_t cmdline_gpa, uint32_t cmdline_max,
		      uint64_t initrd_gpa, uint64_t initrd_size,
		      const struct e820_entry *e820, unsigned n_e820,
		      uint64_t rsdp_gpa);

enum boot_unpack {
	BOOT_UNPACK_HOST = 0,  /* bzImage: decompress + KASLR in vireo-vmm when possible */
	BOOT_UNPACK_GUEST,     /* bzImage: leave it to the kernel's own decompressor */
};

struct boot_request {
	const char *kernel, *initrd, *cmdline;
	uint64_t rsdp_gpa;    /* 0 when no ACPI */
	enum boot_unpack unpack;
};

/* What boot_load did with a bzImage's compressed kernel (for --verbose and
 * the tests). */
struct boot_unpack_info {
	int on_host;             /* 1: unpacked by vireo-vmm */
	const char *format;      /* "LZ4", ... */
	uint64_t phys;           /* where the kernel proper starts */
	uint64_t virt_offset;    /* KASLR: virtual offset from the linked address */
	long relocs;             /* relocations applied */
	unsigned threads;
	double ms;               /* time spent decompressing and placing */
	char why_not[160];       /* why not on the host, if not */
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t arg;        /* rsi or ebx */
	struct boot_unpack_info unpack;
};


/* Load kernel (+ initrd, command line) into guest memory m and compute the
 * entry.  Prints one error line naming the file and problem on failure and
 * returns -errno. */
int boot_load(struct gmem *m, const struct boot_request *req,
	      struct boot_entry *entry);

#endif
