#include <elf.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vireo/util.h>

#include "../hold.h"
#include "../layout.h"
#include "boot.h"
#include "kunpack.h"

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

#define XLF_KERNEL_64 0x1

/* Do h's len bytes start with a Linux boot sector and setup header? */
static bool boot_is_bzimage(const uint8_t *h, size_t len)
{
	return len >= 0x264 && le16(h + 0x1fe) == 0xaa55 && !memcmp(h + 0x202, "HdrS", 4);
}

int boot_bzimage_check(const uint8_t *h, size_t len, uint64_t file_size,
		       struct bzimage_info *bi, char *msg, size_t msglen)
{
	unsigned setup_sects;
	uint32_t syssize;

	memset(bi, 0, sizeof(*bi));
	if (!boot_is_bzimage(h, len)) {
		snprintf(msg, msglen, "not a bzImage (no Linux boot header)");
		return -ENOEXEC;
	}
	bi->version = le16(h + 0x206);
	if (bi->version < 0x20c) {
		snprintf(msg, msglen, "boot protocol %u.%02u is too old (2.12 or later needed)",
			 bi->version >> 8, bi->version & 0xff);
		return -ENOTSUP;
	}
	bi->xloadflags = le16(h + 0x236);
	if (!(bi->xloadflags & XLF_KERNEL_64)) {
		snprintf(msg, msglen, "kernel has no 64-bit entry point (xloadflags 0x%x)",
			 bi->xloadflags);
		return -ENOTSUP;
	}
	setup_sects = h[0x1f1] ? h[0x1f1] : 4;
	bi->setup_size = (setup_sects + 1) * 512;
	syssize = le32(h + 0x1f4);
	/* syssize is rounded up to 16 bytes: allow that much slack. */
	if (file_size <= bi->setup_size ||
	    file_size - bi->setup_size + 15 < (uint64_t)syssize * 16) {
		snprintf(msg, msglen, "truncated bzImage: %llu bytes, header needs %llu",
			 (unsigned long long)file_size,
			 (unsigned long long)bi->setup_size + (uint64_t)syssize * 16);
		return -EIO;
	}
	bi->pm_size = file_size - bi->setup_size;
	bi->pref_address = le64(h + 0x258);
	bi->init_size = le32(h + 0x260);
	bi->cmdline_max = le32(h + 0x238);
	bi->initrd_addr_max = le32(h + 0x22c);
	if (!bi->pref_address)
		bi->pref_address = LAYOUT_KERNEL_DEF;
	if (bi->init_size < bi->pm_size)
		bi->init_size = (uint32_t)VIREO_MIN(bi->pm_size, UINT32_MAX);
	bi->hdr_len = 0x202 + h[0x201] - BOOT_HDR_OFF;
	if (bi->hdr_len > 0x290 - BOOT_HDR_OFF)
		bi->hdr_len = 0x290 - BOOT_HDR_OFF;
	if (BOOT_HDR_OFF + bi->hdr_len > len)
		bi->hdr_len = (uint32_t)(len - BOOT_HDR_OFF);
	return 0;
}

/* n e820 entries at p, one every stride bytes: 20 in the zero page, 24 in
 * the PVH memory map (whose last 4 bytes, reserved, stay zero). */
static void boot_e820_put(uint8_t *p, size_t stride, const struct e820_entry *e820, unsigned n)
{
	for (unsigned i = 0; i < n; i++, p += stride) {
		put64(p, e820[i].addr);
		put64(p + 8, e820[i].size);
		put32(p + 16, e820[i].type);
	}
}

void boot_params_fill(uint8_t *zp, const uint8_t *hdr, const struct bzimage_info *bi,
		      uint64_t cmdline_gpa, uint32_t cmdline_max,
		      uint64_t initrd_gpa, uint64_t initrd_size,
		      const struct e820_entry *e820, unsigned n_e820,
		      uint64_t rsdp_gpa)
{
	uint8_t *h = zp + BOOT_HDR_OFF;

	memset(zp, 0, BOOT_PARAMS_SIZE);
	if (hdr && bi) {
		memcpy(h, hdr + BOOT_HDR_OFF, bi->hdr_len);
	} else {
		/* ELF vmlinux entered at startup_64: a minimal header. */
		put16(zp + 0x1fe, 0xaa55);
		memcpy(zp + 0x202, "HdrS", 4);
		put16(zp + 0x206, 0x20f);
		put32(zp + 0x230, 0x1000000);    /* kernel_alignment */
	}
	put16(zp + 0x1fa, 0xffff);                /* vid_mode: normal */
	zp[0x210] = 0xff;                          /* type_of_loader: undefined */
	zp[0x211] |= 0x01 | 0x80;                  /* LOADED_HIGH | CAN_USE_HEAP */
	put16(zp + 0x224, 0xfe00);                 /* heap_end_ptr */
	put32(zp + 0x228, (uint32_t)cmdline_gpa);
	put32(zp + 0x238, cmdline_max);
	put32(zp + 0x218, (uint32_t)initrd_gpa);
	put32(zp + 0x21c, (uint32_t)initrd_size);
	put32(zp + 0x0c0, (uint32_t)(initrd_gpa >> 32));   /* ext_ramdisk_image */
	put32(zp + 0x0c4, (uint32_t)(initrd_size >> 32));  /* ext_ramdisk_size */
	put32(zp + 0x0c8, (uint32_t)(cmdline_gpa >> 32));  /* ext_cmd_line_ptr */
	put64(zp + 0x070, rsdp_gpa);               /* acpi_rsdp_addr (2.14+) */
	if (n_e820 > BOOT_E820_MAX)
		n_e820 = BOOT_E820_MAX;
	zp[0x1e8] = (uint8_t)n_e820;
	boot_e820_put(zp + 0x2d0, 20, e820, n_e820);
}

/* --- file helpers ------------------------------------------------------- */

static int boot_open(const char *what, const char *path, uint64_t *size)
{
	struct stat st;
	int fd;

	*size = 0;
	fd = hold_open_file(path, O_RDONLY | O_CLOEXEC, 0);

	if (fd < 0) {
		int err = -errno;
		verr("cannot open %s '%s': %s", what, path, strerror(errno));
		return err;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		verr("%s '%s' is not a regular file", what, path);
		close(fd);
		return -EINVAL;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

static int boot_read_into(struct gmem *m, int fd, const char *path,
			  uint64_t gpa, uint64_t len, uint64_t off)
{
	uint8_t *p = gmem_ptr(m, gpa, len);
	int ret;

	if (!p) {
		verr("'%s': %llu bytes at guest address 0x%llx fall outside guest RAM; "
		     "give more --memory", path, (unsigned long long)len,
		     (unsigned long long)gpa);
		return -ENOSPC;
	}
	ret = vio_pread_full(fd, p, len, (off_t)off);
	if (ret)
		verr("cannot read '%s': %s", path, strerror(-ret));
	return ret;
}

static uint64_t boot_low_ram_end(const struct gmem *m)
{
	return m->region[0].size;
}

/* Place the initrd as high as allowed below max_end, above min_start. */
static int boot_load_initrd(struct gmem *m, const char *path, uint64_t min_start,
			    uint64_t max_end, uint64_t *gpa, uint64_t *size)
{
	uint64_t fsize = 0, at;
	int fd, ret;

	*gpa = *size = 0;
	if (!path)
		return 0;
	fd = boot_open("initrd", path, &fsize);
	if (fd < 0)
		return fd;
	max_end = VIREO_MIN(max_end, boot_low_ram_end(m));
	if (fsize == 0 || fsize > max_end ||
	    VIREO_ALIGN_DOWN(max_end - fsize, 4096) < min_start) {
		char b1[32], b2[32];
		verr("initrd '%s' (%s) does not fit in guest memory (%s free for it); "
		     "give more --memory", path, vsize_format(fsize, b1, sizeof(b1)),
		     vsize_format(max_end > min_start ? max_end - min_start : 0, b2, sizeof(b2)));
		close(fd);
		return fsize == 0 ? -EINVAL : -ENOSPC;
	}
	at = VIREO_ALIGN_DOWN(max_end - fsize, 4096);
	ret = boot_read_into(m, fd, path, at, fsize, 0);
	close(fd);
	if (ret)
		return ret;
	*gpa = at;
	*size = fsize;
	return 0;
}

static int boot_put_cmdline(struct gmem *m, const char *cmdline, uint32_t max,
			    const char *kernel)
{
	size_t len = strlen(cmdline);
	char *p;

	if (max == 0 || max > LAYOUT_CMDLINE_MAX - 1)
		max = LAYOUT_CMDLINE_MAX - 1;
	if (len > max) {
		verr("command line is %zu bytes, kernel '%s' accepts at most %u",
		     len, kernel, max);
		return -E2BIG;
	}
	p = gmem_ptr(m, LAYOUT_CMDLINE, len + 1);
	if (!p)
		return -ENOSPC;
	memcpy(p, cmdline, len + 1);
	return 0;
}

/* The zero page at LAYOUT_BOOT_PARAMS for a 64-bit Linux entry, with the
 * guest's memory map (hdr and bi as for boot_params_fill). Returns it for
 * the caller's own fields. */
static uint8_t *boot_zero_page(struct gmem *m, const struct boot_request *req,
			       const uint8_t *hdr, const struct bzimage_info *bi,
			       uint32_t cmdline_max, uint64_t initrd_gpa, uint64_t initrd_size)
{
	struct e820_entry e820[BOOT_E820_MAX];
	unsigned n = memory_e820(m, e820, BOOT_E820_MAX);
	uint8_t *zp = gmem_ptr(m, LAYOUT_BOOT_PARAMS, BOOT_PARAMS_SIZE);

	boot_params_fill(zp, hdr, bi, LAYOUT_CMDLINE, cmdline_max, initrd_gpa, initrd_size,
			 e820, n, req->rsdp_gpa);
	return zp;
}

/* --- bzImage -------------------------------------------------------------- */

/* The kernel file is of no use (what says why): one error line. */
static int boot_kernel_bad(const char *kernel, const char *what)
{
	verr("kernel '%s': %s", kernel, what);
	return -ENOEXEC;
}

/* The kernel needs size bytes of guest RAM from at: one error line. */
static int boot_kernel_no_room(const char *kernel, uint64_t size, uint64_t at)
{
	char b[32];

	verr("kernel '%s' needs %s from 0x%llx; give more --memory", kernel,
	     vsize_format(size, b, sizeof(b)), (unsigned long long)at);
	return -ENOSPC;
}

/* Is word (a whole option, or the name of a name=value option) on the
 * command line? */
static bool boot_cmdline_has(const char *cmdline, const char *word)
{
	size_t wl = strlen(word);
	const char *p = cmdline;

	while ((p = strstr(p, word))) {
		bool start = p == cmdline || p[-1] == ' ';
		char c = p[wl];
		if (start && (c == '\0' || c == ' ' || c == '=' || word[wl - 1] == '='))
			return true;
		p += wl;
	}
	return false;
}

static uint64_t boot_random(void)
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		return r;
	return vtime_ns() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
}

/* A bzImage's compressed kernel on its way into guest RAM. */
struct boot_unpack_job {
	uint64_t poff, plen;      /* the payload, from the protected-mode code */
	uint64_t out_len;         /* its decompressed size (its trailer) */
	uint64_t align;           /* the kernel's alignment: the KASLR step */
	const uint8_t *payload;   /* its copy in guest RAM */
	uint64_t limit;           /* the kernel ends below this */
	uint64_t initrd_gpa, initrd_size;
	struct kunpack_plan pl;
	uint64_t phys;            /* where the kernel proper starts */
	uint64_t delta;           /* its virtual offset (KASLR) */
};

/* The payload fields, then the format and the decompressed size (the
 * payload's first bytes and its 4-byte trailer), so that a payload this
 * code does not handle costs nothing: -ENOTSUP, u->why_not says why. */
static int boot_unpack_check(int fd, const uint8_t *hdr, const struct bzimage_info *bi,
			     struct boot_unpack_job *job, struct boot_unpack_info *u)
{
	uint8_t magic[8], trailer[4];
	enum kunpack_fmt fmt;

	if (bi->version < 0x208) {
		snprintf(u->why_not, sizeof(u->why_not),
			 "boot protocol before 2.08 has no payload fields");
		return -ENOTSUP;
	}
	job->poff = le32(hdr + 0x248);
	job->plen = le32(hdr + 0x24c);
	if (job->plen < 8 || job->poff > bi->pm_size || job->plen > bi->pm_size - job->poff) {
		snprintf(u->why_not, sizeof(u->why_not), "payload fields out of range");
		return -ENOTSUP;
	}
	job->align = le32(hdr + 0x230);
	if (job->align < 0x200000 || (job->align & (job->align - 1)))
		job->align = 0x200000;
	if (vio_pread_full(fd, magic, sizeof(magic), (off_t)(bi->setup_size + job->poff)) ||
	    vio_pread_full(fd, trailer, sizeof(trailer),
			   (off_t)(bi->setup_size + job->poff + job->plen - 4))) {
		snprintf(u->why_not, sizeof(u->why_not), "cannot read the payload");
		return -ENOTSUP;
	}
	fmt = kunpack_format(magic, sizeof(magic));
	job->out_len = le32(trailer);
	u->format = kunpack_fmt_name(fmt);
	if (fmt == KUNPACK_UNKNOWN || job->out_len < 4096 || job->out_len > KUNPACK_IMAGE_SPACE) {
		snprintf(u->why_not, sizeof(u->why_not), "%s compression or a size of %llu bytes",
			 u->format, (unsigned long long)job->out_len);
		return -ENOTSUP;
	}
	return 0;
}

/* The command line; the initrd as high as it may go, the compressed
 * payload right below it (in guest RAM, where the bzImage would have been
 * anyway, not in vireo-vmm's own memory); the kernel will go below both. */
static int boot_unpack_stage(struct gmem *m, const struct boot_request *req, int fd,
			     const struct bzimage_info *bi, struct boot_unpack_job *job)
{
	uint64_t scratch;
	int ret;

	ret = boot_put_cmdline(m, req->cmdline, bi->cmdline_max ? bi->cmdline_max : 255,
			       req->kernel);
	if (ret)
		return ret;
	ret = boot_load_initrd(m, req->initrd, bi->pref_address, (uint64_t)bi->initrd_addr_max + 1,
			       &job->initrd_gpa, &job->initrd_size);
	if (ret)
		return ret;
	job->limit = job->initrd_size ? job->initrd_gpa : boot_low_ram_end(m);
	if (job->limit < bi->pref_address + job->plen)
		return boot_kernel_no_room(req->kernel, job->plen, bi->pref_address);
	scratch = VIREO_ALIGN_DOWN(job->limit - job->plen, 4096);
	ret = boot_read_into(m, fd, req->kernel, scratch, job->plen, bi->setup_size + job->poff);
	if (ret)
		return ret;
	job->payload = gmem_ptr(m, scratch, job->plen);
	job->limit = scratch;
	return 0;
}

/* Decompress the stream's ELF headers and plan from them where the
 * segments go; the kernel (and the stream below it) must fit between the
 * linked address and the payload. */
static int boot_unpack_plan(const struct boot_request *req, const struct bzimage_info *bi,
			    struct boot_unpack_job *job, struct boot_unpack_info *u)
{
	const struct kunpack_plan *pl = &job->pl;
	uint8_t headbuf[4096];
	int64_t got;
	int ret;

	got = kunpack_decompress(job->payload, job->plen, headbuf, sizeof(headbuf), 1, 1,
				 u->why_not, sizeof(u->why_not));
	if (got < 0) {
		if (got == -ENOTSUP)
			return -ENOTSUP;
		return boot_kernel_bad(req->kernel, u->why_not);
	}
	ret = kunpack_plan(headbuf, (size_t)got, job->out_len, bi->pref_address, bi->init_size,
			   &job->pl, u->why_not, sizeof(u->why_not));
	if (ret)
		return ret;
	if (bi->pref_address < pl->head + LAYOUT_HIGH_RAM) {
		snprintf(u->why_not, sizeof(u->why_not), "the kernel's stream starts below 1 MiB");
		return -ENOTSUP;
	}
	if (bi->pref_address + pl->span - pl->head > job->limit)
		return boot_kernel_no_room(req->kernel, pl->span - pl->head + job->plen,
					   bi->pref_address);
	return 0;
}

/* Physical KASLR (unless mem= or memmap= limit the guest's RAM): any
 * aligned address from the linked one up to where the kernel (and the
 * stream below it) still fits under the payload. Virtual KASLR: an aligned
 * offset in the kernel's 1 GiB image space. */
static void boot_unpack_kaslr(const struct boot_request *req, const struct bzimage_info *bi,
			      bool kaslr, struct boot_unpack_job *job)
{
	const struct kunpack_plan *pl = &job->pl;
	bool phys_kaslr = kaslr && !boot_cmdline_has(req->cmdline, "mem=") &&
			  !boot_cmdline_has(req->cmdline, "memmap=");
	uint64_t nslots = (job->limit - (pl->span - pl->head) - bi->pref_address) / job->align + 1;

	job->phys = bi->pref_address;
	if (phys_kaslr)
		job->phys += (boot_random() % nslots) * job->align;
	job->delta = 0;
	if (kaslr && pl->has_relocs) {
		uint64_t need = VIREO_MAX((uint64_t)bi->init_size, pl->image_end);
		if (bi->pref_address + need < KUNPACK_IMAGE_SPACE) {
			uint64_t vslots = (KUNPACK_IMAGE_SPACE - bi->pref_address - need) /
					  job->align + 1;
			job->delta = (boot_random() % vslots) * job->align;
		}
	}
}

/* Decompress the whole stream so that the kernel starts at job->phys, move
 * its segments into place and apply its relocations for job->delta.
 * Returns the relocations applied, -ENOTSUP (u->why_not says why), or
 * -ENOEXEC after printing why the payload is corrupt. */
static long boot_unpack_place(struct gmem *m, const struct boot_request *req,
			      const struct boot_unpack_job *job, struct boot_unpack_info *u)
{
	uint8_t *base = gmem_ptr(m, job->phys - job->pl.head, job->pl.span);
	long ncpu, nrel;
	int64_t got;

	if (!base) {
		snprintf(u->why_not, sizeof(u->why_not), "guest RAM is not contiguous there");
		return -ENOTSUP;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	u->threads = (unsigned)VIREO_MAX(1, VIREO_MIN(ncpu, 4));
	got = kunpack_decompress(job->payload, job->plen, base, job->out_len, 0, u->threads,
				 u->why_not, sizeof(u->why_not));
	if (got < 0)
		return boot_kernel_bad(req->kernel, u->why_not);
	nrel = kunpack_place(base, &job->pl, job->delta, u->why_not, sizeof(u->why_not));
	if (nrel < 0)
		return boot_kernel_bad(req->kernel, u->why_not);
	return nrel;
}

/* Do what the bzImage's decompressor would do in the guest, here: decompress
 * the kernel proper straight into guest RAM at a random (KASLR) physical
 * address, move its segments into place, apply its relocations for a random
 * virtual offset, and set the entry to its 64-bit start. Returns 0, -ENOTSUP
 * (entry->unpack.why_not says why) to leave the job to the guest, or another
 * -errno after printing an error (a corrupt payload: the guest's
 * decompressor would fail on it too). Loads the command line and initrd. */
static int boot_unpack_bzimage(struct gmem *m, const struct boot_request *req,
			       int fd, const uint8_t *hdr,
			       const struct bzimage_info *bi, struct boot_entry *entry)
{
	struct boot_unpack_info *u = &entry->unpack;
	struct boot_unpack_job job;
	uint64_t t0 = vtime_ns();
	bool relocatable = hdr[0x234] != 0;
	bool kaslr = relocatable && !boot_cmdline_has(req->cmdline, "nokaslr");
	uint8_t *zp;
	long nrel;
	int ret;

	memset(&job, 0, sizeof(job));
	ret = boot_unpack_check(fd, hdr, bi, &job, u);
	if (ret)
		return ret;
	ret = boot_unpack_stage(m, req, fd, bi, &job);
	if (ret)
		return ret;
	ret = boot_unpack_plan(req, bi, &job, u);
	if (ret)
		return ret;
	boot_unpack_kaslr(req, bi, kaslr, &job);
	nrel = boot_unpack_place(m, req, &job, u);
	if (nrel < 0)
		return (int)nrel;
	/* Below the kernel and past its image the stream's leftovers (ELF
	 * headers, the relocation table) stay: free RAM to the guest, as the
	 * in-guest decompressor leaves its own. */
	zp = boot_zero_page(m, req, hdr, bi, bi->cmdline_max, job.initrd_gpa, job.initrd_size);
	if (kaslr)
		zp[0x211] |= 0x02;            /* KASLR_FLAG: the kernel was randomized */
	entry->mode = BOOT_MODE_LINUX64;
	entry->rip = job.phys + job.pl.entry_off;
	entry->arg = LAYOUT_BOOT_PARAMS;
	u->on_host = 1;
	u->phys = job.phys;
	u->virt_offset = job.delta;
	u->relocs = nrel;
	u->ms = (double)(vtime_ns() - t0) / 1e6;
	return 0;
}

static int boot_load_bzimage(struct gmem *m, const struct boot_request *req,
			     int fd, uint64_t fsize, const uint8_t *hdr, size_t hlen,
			     struct boot_entry *entry)
{
	struct bzimage_info bi;
	uint64_t load, initrd_gpa, initrd_size;
	char msg[160];
	uint8_t *zp;
	int ret;

	ret = boot_bzimage_check(hdr, hlen, fsize, &bi, msg, sizeof(msg));
	if (ret) {
		verr("kernel '%s': %s", req->kernel, msg);
		return ret;
	}
	if (req->unpack == BOOT_UNPACK_HOST) {
		ret = boot_unpack_bzimage(m, req, fd, hdr, &bi, entry);
		if (ret != -ENOTSUP)
			return ret;
		vdebug("kernel '%s': unpacked by its own decompressor in the guest (%s)",
		       req->kernel, entry->unpack.why_not);
	} else {
		snprintf(entry->unpack.why_not, sizeof(entry->unpack.why_not), "--unpack guest");
	}
	load = bi.pref_address;
	if (load < LAYOUT_HIGH_RAM || load + bi.init_size > boot_low_ram_end(m))
		return boot_kernel_no_room(req->kernel, bi.init_size, load);
	ret = boot_read_into(m, fd, req->kernel, load, bi.pm_size, bi.setup_size);
	if (ret)
		return ret;
	ret = boot_put_cmdline(m, req->cmdline, bi.cmdline_max ? bi.cmdline_max : 255,
			       req->kernel);
	if (ret)
		return ret;
	ret = boot_load_initrd(m, req->initrd, load + bi.init_size,
			       (uint64_t)bi.initrd_addr_max + 1, &initrd_gpa, &initrd_size);
	if (ret)
		return ret;
	zp = boot_zero_page(m, req, hdr, &bi, bi.cmdline_max, initrd_gpa, initrd_size);
	put32(zp + 0x214, (uint32_t)load);   /* code32_start */
	entry->mode = BOOT_MODE_LINUX64;
	entry->rip = load + 0x200;
	entry->arg = LAYOUT_BOOT_PARAMS;
	return 0;
}

/* --- ELF ---------------------------------------------------------------- */

/* What the loader takes from an ELF header, 32- or 64-bit. */
struct boot_elf_hdr {
	bool is64;
	uint64_t phoff, entry;
	unsigned phnum, phentsize;
};

/* One program header, 32- or 64-bit. */
struct boot_elf_seg {
	uint32_t type;
	uint64_t off, paddr, filesz, memsz;
};

/* Check the ELF header of h (hlen bytes of a file of fsize): little-endian,
 * for x86, its program headers inside the file. Fills eh. */
static int boot_elf_check(const char *kernel, const uint8_t *h, size_t hlen,
			  uint64_t fsize, struct boot_elf_hdr *eh)
{
	memset(eh, 0, sizeof(*eh));
	if (h[EI_DATA] != ELFDATA2LSB || (h[EI_CLASS] != ELFCLASS64 && h[EI_CLASS] != ELFCLASS32))
		return boot_kernel_bad(kernel, "unsupported ELF class or byte order");
	eh->is64 = h[EI_CLASS] == ELFCLASS64;
	if (eh->is64) {
		const Elf64_Ehdr *e = (const void *)h;
		if (hlen < sizeof(*e) || e->e_machine != EM_X86_64)
			return boot_kernel_bad(kernel, "ELF file is not for x86-64");
		eh->phoff = e->e_phoff; eh->phnum = e->e_phnum; eh->phentsize = e->e_phentsize;
		eh->entry = e->e_entry;
	} else {
		const Elf32_Ehdr *e = (const void *)h;
		if (hlen < sizeof(*e) || (e->e_machine != EM_386 && e->e_machine != EM_X86_64))
			return boot_kernel_bad(kernel, "ELF file is not for x86");
		eh->phoff = e->e_phoff; eh->phnum = e->e_phnum; eh->phentsize = e->e_phentsize;
		eh->entry = e->e_entry;
	}
	if (eh->phentsize != (eh->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)))
		return boot_kernel_bad(kernel, "bad ELF program header size");
	if (eh->phnum == 0 || eh->phnum > 64 || eh->phoff > fsize ||
	    (uint64_t)eh->phnum * eh->phentsize > fsize - eh->phoff)
		return boot_kernel_bad(kernel, "truncated or bad ELF program headers");
	return 0;
}

/* Program header i of the table ph. */
static void boot_elf_seg_get(const struct boot_elf_hdr *eh, const uint8_t *ph, unsigned i,
			     struct boot_elf_seg *s)
{
	if (eh->is64) {
		const Elf64_Phdr *p = (const void *)(ph + i * eh->phentsize);
		s->type = p->p_type; s->off = p->p_offset; s->paddr = p->p_paddr;
		s->filesz = p->p_filesz; s->memsz = p->p_memsz;
	} else {
		const Elf32_Phdr *p = (const void *)(ph + i * eh->phentsize);
		s->type = p->p_type; s->off = p->p_offset; s->paddr = p->p_paddr;
		s->filesz = p->p_filesz; s->memsz = p->p_memsz;
	}
}

/* Look in a PT_NOTE segment (its first 4 KiB) for Xen's PHYS32_ENTRY note,
 * the PVH entry point; set *pvh_entry if it is there. */
static void boot_elf_pvh_note(int fd, const struct boot_elf_seg *s, uint64_t *pvh_entry)
{
	uint8_t note[4096];
	size_t n = (size_t)VIREO_MIN(s->filesz, sizeof(note)), pos = 0;

	if (vio_pread_full(fd, note, n, (off_t)s->off))
		return;
	while (pos + 12 <= n) {
		uint32_t namesz = le32(note + pos), descsz = le32(note + pos + 4);
		uint32_t ntype = le32(note + pos + 8);
		size_t name_off = pos + 12;
		size_t desc_off = name_off + VIREO_ALIGN_UP((size_t)namesz, 4);
		if (namesz > n || descsz > n || desc_off + descsz > n)
			break;
		if (ntype == BOOT_XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 &&
		    !memcmp(note + name_off, "Xen", 4) && descsz >= 4)
			*pvh_entry = descsz >= 8 ? le64(note + desc_off) : le32(note + desc_off);
		pos = desc_off + VIREO_ALIGN_UP((size_t)descsz, 4);
	}
}

/* Copy a PT_LOAD segment to its physical address and zero the rest of its
 * memory size. */
static int boot_elf_load_seg(struct gmem *m, const char *kernel, int fd,
			     const struct boot_elf_seg *s)
{
	int ret;

	if (s->paddr + s->memsz < s->paddr || !gmem_ptr(m, s->paddr, s->memsz)) {
		char b[32];
		verr("kernel '%s': segment of %s at 0x%llx is outside guest RAM; "
		     "give more --memory", kernel,
		     vsize_format(s->memsz, b, sizeof(b)), (unsigned long long)s->paddr);
		return -ENOSPC;
	}
	ret = boot_read_into(m, fd, kernel, s->paddr, s->filesz, s->off);
	if (ret)
		return ret;
	memset((uint8_t *)gmem_ptr(m, s->paddr, s->memsz) + s->filesz, 0, s->memsz - s->filesz);
	return 0;
}

/* Read the program headers, load the PT_LOAD segments and look in the
 * PT_NOTE ones for a PVH entry. *highest: the end of the highest segment
 * loaded (0: none); *pvh_entry: 0 if there is none. */
static int boot_elf_load_segments(struct gmem *m, const char *kernel, int fd, uint64_t fsize,
				  const struct boot_elf_hdr *eh, uint64_t *highest,
				  uint64_t *pvh_entry)
{
	size_t phlen = (size_t)eh->phnum * eh->phentsize;
	uint8_t *ph;
	int ret = 0;

	*highest = *pvh_entry = 0;
	ph = malloc(phlen);
	if (!ph)
		return -ENOMEM;
	if (vio_pread_full(fd, ph, phlen, (off_t)eh->phoff)) {
		free(ph);
		return boot_kernel_bad(kernel, "cannot read ELF program headers");
	}
	for (unsigned i = 0; i < eh->phnum; i++) {
		struct boot_elf_seg s;

		boot_elf_seg_get(eh, ph, i, &s);
		if (s.type != PT_LOAD && s.type != PT_NOTE)
			continue;
		if (s.off > fsize || s.filesz > fsize - s.off || s.filesz > s.memsz) {
			ret = boot_kernel_bad(kernel, "ELF segment extends past the end of "
					      "the file (truncated?)");
			break;
		}
		if (s.type == PT_NOTE) {
			boot_elf_pvh_note(fd, &s, pvh_entry);
			continue;
		}
		if (!s.memsz)
			continue;
		ret = boot_elf_load_seg(m, kernel, fd, &s);
		if (ret)
			break;
		*highest = VIREO_MAX(*highest, s.paddr + s.memsz);
	}
	free(ph);
	return ret;
}

/* The PVH start_info at LAYOUT_PVH_INFO: the memory map, the command line,
 * the RSDP and the initrd as its one module. */
static void boot_pvh_info_fill(struct gmem *m, uint64_t rsdp_gpa,
			       uint64_t initrd_gpa, uint64_t initrd_size)
{
	struct e820_entry e820[32];
	unsigned n = memory_e820(m, e820, 32);
	uint8_t *si = gmem_ptr(m, LAYOUT_PVH_INFO, 0x1000);
	uint8_t *mod = si + 0x400;

	memset(si, 0, 0x1000);
	put32(si + 0, BOOT_PVH_MAGIC);
	put32(si + 4, 1);                         /* version */
	put32(si + 12, initrd_size ? 1 : 0);      /* nr_modules */
	put64(si + 16, LAYOUT_PVH_INFO + 0x400);  /* modlist_paddr */
	put64(si + 24, LAYOUT_CMDLINE);
	put64(si + 32, rsdp_gpa);
	put64(si + 40, LAYOUT_PVH_INFO + 0x40);   /* memmap_paddr */
	put32(si + 48, n);
	boot_e820_put(si + 0x40, 24, e820, n);
	put64(mod, initrd_gpa);
	put64(mod + 8, initrd_size);
}

/* Enter at the PVH entry with a start_info if the kernel has one, else at
 * e_entry in 64-bit mode with a zero page. */
static int boot_elf_set_entry(struct gmem *m, const struct boot_request *req,
			      const struct boot_elf_hdr *eh, uint64_t pvh_entry,
			      uint64_t initrd_gpa, uint64_t initrd_size,
			      struct boot_entry *entry)
{
	if (pvh_entry) {
		boot_pvh_info_fill(m, req->rsdp_gpa, initrd_gpa, initrd_size);
		entry->mode = BOOT_MODE_PVH32;
		entry->rip = pvh_entry;
		entry->arg = LAYOUT_PVH_INFO;
	} else {
		boot_zero_page(m, req, NULL, NULL, 2047, initrd_gpa, initrd_size);
		entry->mode = BOOT_MODE_LINUX64;
		entry->rip = eh->entry;
		entry->arg = LAYOUT_BOOT_PARAMS;
	}
	if (!gmem_ptr(m, entry->rip, 1))
		return boot_kernel_bad(req->kernel, "ELF entry point is outside guest RAM");
	return 0;
}

static int boot_load_elf(struct gmem *m, const struct boot_request *req,
			 int fd, uint64_t fsize, const uint8_t *h, size_t hlen,
			 struct boot_entry *entry)
{
	struct boot_elf_hdr eh;
	uint64_t pvh_entry, initrd_gpa, initrd_size, highest;
	int ret;

	ret = boot_elf_check(req->kernel, h, hlen, fsize, &eh);
	if (ret)
		return ret;
	ret = boot_elf_load_segments(m, req->kernel, fd, fsize, &eh, &highest, &pvh_entry);
	if (ret)
		return ret;
	if (highest == 0)
		return boot_kernel_bad(req->kernel, "ELF file has no loadable segment");
	if (!eh.is64 && !pvh_entry)
		return boot_kernel_bad(req->kernel, "32-bit ELF without a PVH entry note");

	ret = boot_put_cmdline(m, req->cmdline, 2047, req->kernel);
	if (ret)
		return ret;
	ret = boot_load_initrd(m, req->initrd, VIREO_MAX(highest, LAYOUT_HIGH_RAM),
			       LAYOUT_PCI_HOLE, &initrd_gpa, &initrd_size);
	if (ret)
		return ret;
	return boot_elf_set_entry(m, req, &eh, pvh_entry, initrd_gpa, initrd_size, entry);
}

int boot_load(struct gmem *m, const struct boot_request *req,
	      struct boot_entry *entry)
{
	uint8_t hdr[1024];
	uint64_t fsize = 0;
	size_t hlen;
	ssize_t n;
	int fd, ret;

	memset(entry, 0, sizeof(*entry));
	fd = boot_open("kernel", req->kernel, &fsize);
	if (fd < 0)
		return fd;
	n = pread(fd, hdr, sizeof(hdr), 0);
	if (n < 0) {
		ret = -errno;
		verr("cannot read kernel '%s': %s", req->kernel, strerror(errno));
		goto out;
	}
	hlen = (size_t)n;
	memset(hdr + hlen, 0, sizeof(hdr) - hlen);
	if (hlen >= SELFMAG && !memcmp(hdr, ELFMAG, SELFMAG))
		ret = boot_load_elf(m, req, fd, fsize, hdr, hlen, entry);
	else if (boot_is_bzimage(hdr, hlen))
		ret = boot_load_bzimage(m, req, fd, fsize, hdr, hlen, entry);
	else {
		verr("kernel '%s' is neither a bzImage nor an ELF file (%llu bytes)",
		     req->kernel, (unsigned long long)fsize);
		ret = -ENOEXEC;
	}
out:
	close(fd);
	return ret;
}
