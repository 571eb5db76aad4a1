/*
 * A tiny virtio driver: finds a virtio PCI function, reads its virtio
 * capabilities, negotiates VERSION_1 and sets up one queue with an MSI-X
 * vector.  By default it drives virtio-blk: writes, reads back and checks
 * sectors, reads the serial and probes the error statuses ("ro" on the
 * command line: the disk is read-only and the write must fail; prints
 * "virtio-blk ok").  "rng": reads random bytes from virtio-rng ("virtio-rng
 * ok").  "hvc": writes a line through virtio-console ("virtio-console ok").
 * "intx": a virtio-blk read with MSI-X left off, so the interrupt comes as
 * INTx through the IOAPIC and the ISR register ("virtio-intx ok").
 * "save": rounds of a sector write and read-back, each answered with an
 * MSI-X interrupt, "io round N" after each and a pause between them, so
 * that the VM can be saved and restored part-way; at the end every
 * round's sector is read again ("virtio-blk save ok").
 * "migblk": rounds of 256 KiB disk reads (the device writes guest RAM,
 * the vCPU only reads it) into two buffers in turn, each round from
 * another offset of a disk whose every 8-byte word holds its own offset
 * times K; after a round's read the other buffer, read the round before,
 * is checked.  A page the device wrote after a migration copied it, and
 * not copied again, shows as "FAIL: stale disk data"; "blk round N" every
 * 50 rounds, "virtio-blk migrate ok" at the end.  With "hold" as well,
 * the guest then says "holding" and waits for a byte on the serial port
 * before it ends: a test can ask the VMM things before the VM is gone.
 * "netsave" and "balloonsave": the same for virtio-net (frames sent) and
 * virtio-balloon (pages inflated); see test_netsave and test_balloonsave.
 * "netrx": frames received, each buffer checked while off the ring; see
 * test_netrx.
 */
#include "guest.h"

#define QSIZE 8
#define VEC 0x41

static uint8_t ring[3 * 4096] __attribute__((aligned(4096)));
static uint8_t hdr[16] __attribute__((aligned(16)));
static uint8_t buf[512] __attribute__((aligned(16)));
static volatile uint8_t status;
static volatile int irqs;
static uint16_t avail_idx;
static uint64_t notify_addr;

static uint64_t isr_addr;
static volatile int intx_irqs, isr_queue_bits;

void msi_entry(void);
void msi_handler(void);
void intx_entry(void);
void intx_handler(void);
void intx_handler(void)
{
	uint8_t v = *(volatile uint8_t *)isr_addr;   /* read clears, lowers INTx */

	intx_irqs++;
	isr_queue_bits += v & 1;
	lapic_eoi();
}

__asm__(".text\n.globl intx_entry\nintx_entry:\n"
	"push %rax; push %rcx; push %rdx; push %rsi; push %rdi;"
	"push %r8; push %r9; push %r10; push %r11\n"
	"call intx_handler\n"
	"pop %r11; pop %r10; pop %r9; pop %r8; pop %rdi; pop %rsi;"
	"pop %rdx; pop %rcx; pop %rax\n"
	"iretq\n");
void msi_handler(void)
{
	irqs++;
	lapic_eoi();
}

__asm__(".text\n.globl msi_entry\nmsi_entry:\n"
	"push %rax; push %rcx; push %rdx; push %rsi; push %rdi;"
	"push %r8; push %r9; push %r10; push %r11\n"
	"call msi_handler\n"
	"pop %r11; pop %r10; pop %r9; pop %r8; pop %rdi; pop %rsi;"
	"pop %rdx; pop %rcx; pop %rax\n"
	"iretq\n");

static int has_word(const char *s, const char *w)
{
	for (; *s; s++) {
		const char *a = s, *b = w;
		while (*a && *b && *a == *b) { a++; b++; }
		if (!*b)
			return 1;
	}
	return 0;
}

static uint32_t cfg32(unsigned slot, unsigned off)
{
	outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
	return inl(0xcfc);
}

static uint8_t cfg8(unsigned slot, unsigned off)
{
	return (uint8_t)(cfg32(slot, off) >> (8 * (off & 3)));
}

static void cfg_w16(unsigned slot, unsigned off, uint16_t v)
{
	outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
	outw((uint16_t)(0xcfc + (off & 2)), v);
}

static void w8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static void w16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static void w32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static uint8_t r8(uint64_t a) { return *(volatile uint8_t *)a; }
static uint16_t r16(uint64_t a) { return *(volatile uint16_t *)a; }
static uint32_t r32(uint64_t a) { return *(volatile uint32_t *)a; }
static void w64(uint64_t a, uint64_t v) { w32(a, (uint32_t)v); w32(a + 4, (uint32_t)(v >> 32)); }

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = ring + 16 * i;

	*(uint64_t *)d = addr;
	*(uint32_t *)(d + 8) = len;
	*(uint16_t *)(d + 12) = flags;
	*(uint16_t *)(d + 14) = next;
}

static uint16_t used_idx(void)
{
	return *(volatile uint16_t *)(ring + 8192 + 2);
}

/* One request; returns the status byte (0xff: no answer). */
static int64_t submit(void);

static int request(uint32_t type, uint64_t sector, uint32_t len, int data_in)
{
	*(uint32_t *)hdr = type;
	*(uint32_t *)(hdr + 4) = 0;
	*(uint64_t *)(hdr + 8) = sector;
	status = 0xff;
	desc(0, (uint64_t)hdr, 16, 1, 1);
	if (len) {
		desc(1, (uint64_t)buf, len, (uint16_t)(1 | (data_in ? 2 : 0)), 2);
		desc(2, (uint64_t)&status, 1, 2, 0);
	} else {
		desc(1, (uint64_t)&status, 1, 2, 0);
	}
	return submit() < 0 ? 0xff : status;
}


static int fail(const char *what)
{
	serial_puts("FAIL: ");
	serial_puts(what);
	serial_puts("\n");
	return 1;
}

struct vdev {
	unsigned slot, msix;
	uint64_t bar, common, isr, dev, notify;
	uint32_t mult;
};

static int vdev_find(struct vdev *v, uint16_t id)
{
	unsigned p;

	for (v->slot = 0; v->slot < 32; v->slot++)
		if (cfg32(v->slot, 0) == ((uint32_t)id << 16 | 0x1af4u))
			break;
	if (v->slot == 32)
		return fail("no virtio PCI function of that type");
	serial_puts("virtio device at slot ");
	serial_put_dec(v->slot);
	serial_puts(", revision ");
	serial_put_dec(cfg8(v->slot, 8));
	serial_puts("\n");
	v->bar = (cfg32(v->slot, 0x20) & ~0xfULL) | (uint64_t)cfg32(v->slot, 0x24) << 32;
	for (p = cfg8(v->slot, 0x34); p; p = cfg8(v->slot, p + 1)) {
		if (cfg8(v->slot, p) == 0x11)
			v->msix = p;
		if (cfg8(v->slot, p) != 0x09 || cfg8(v->slot, p + 4) != 4)
			continue;
		switch (cfg8(v->slot, p + 3)) {
		case 1: v->common = v->bar + cfg32(v->slot, p + 8); break;
		case 2: v->notify = v->bar + cfg32(v->slot, p + 8);
			v->mult = cfg32(v->slot, p + 16); break;
		case 3: v->isr = v->bar + cfg32(v->slot, p + 8); break;
		case 4: v->dev = v->bar + cfg32(v->slot, p + 8); break;
		}
	}
	if (!v->common || !v->notify || !v->isr || !v->dev || !v->msix)
		return fail("missing virtio or MSI-X capability");
	return 0;
}

/* Reset, negotiate VERSION_1 only, then FEATURES_OK. */
static int vdev_features(struct vdev *v)
{
	uint64_t c = v->common;

	w8(c + 0x14, 0);
	if (r8(c + 0x14) != 0)
		return fail("reset");
	w8(c + 0x14, 1);
	w8(c + 0x14, 3);
	w32(c + 0x00, 1);
	if (!(r32(c + 0x04) & 1))
		return fail("no VERSION_1");
	w32(c + 0x08, 0);
	w32(c + 0x0c, 0);
	w32(c + 0x08, 1);
	w32(c + 0x0c, 1);
	w8(c + 0x14, 3 | 8);
	if (!(r8(c + 0x14) & 8))
		return fail("FEATURES_OK refused");
	return 0;
}

/* Queue q on the shared ring, DRIVER_OK; with MSI-X vector 0 to this
 * CPU, else INTx (the PCI interrupt line) through the IOAPIC. */
static int vdev_start_irq(struct vdev *v, unsigned q, int msix)
{
	uint64_t c = v->common;

	lapic_enable();
	if (msix) {
		idt_set(VEC, msi_entry);
		w32(v->bar + 0x4000, 0xfee00000u | lapic_id() << 12);
		w32(v->bar + 0x4004, 0);
		w32(v->bar + 0x4008, VEC);
		w32(v->bar + 0x400c, 0);
		cfg_w16(v->slot, v->msix + 2, 0x8000);
	} else {
		outb(0x21, 0xff);   /* 8259s masked: the IOAPIC delivers */
		outb(0xa1, 0xff);
		isr_addr = v->isr;
		idt_set(VEC + 1, intx_entry);
		ioapic_route(cfg8(v->slot, 0x3c), VEC + 1, lapic_id());
	}

	w16(c + 0x16, (uint16_t)q);
	if (r16(c + 0x18) < QSIZE)
		return fail("queue too small");
	w16(c + 0x18, QSIZE);
	if (msix) {
		w16(c + 0x1a, 0);
		if (r16(c + 0x1a) != 0)
			return fail("MSI-X vector refused");
	}
	w64(c + 0x20, (uint64_t)ring);
	w64(c + 0x28, (uint64_t)ring + 4096);
	w64(c + 0x30, (uint64_t)ring + 8192);
	w16(c + 0x1c, 1);
	notify_addr = v->notify + (uint64_t)r16(c + 0x1e) * v->mult;
	w8(c + 0x14, 3 | 8 | 4);
	__asm__ volatile("sti");
	return 0;
}

static int vdev_start(struct vdev *v, unsigned q)
{
	return vdev_start_irq(v, q, 1);
}

/* Publish the chain at descriptor 0 and wait for it; returns the used
 * length, or -1 when the device did not answer. */
static int64_t submit(void)
{
	uint16_t want = (uint16_t)(avail_idx + 1);

	*(volatile uint16_t *)(ring + 4096 + 4 + 2 * (avail_idx % QSIZE)) = 0;
	__asm__ volatile("" ::: "memory");
	*(volatile uint16_t *)(ring + 4096 + 2) = want;
	avail_idx = want;
	__asm__ volatile("mfence" ::: "memory");
	w16(notify_addr, 0);
	for (unsigned i = 0; i < 50000000 && used_idx() != want; i++)
		cpu_relax();
	if (used_idx() != want)
		return -1;
	return *(volatile uint32_t *)(ring + 8192 + 4 + 8 * ((want - 1) % QSIZE) + 4);
}

static int wait_irq(void)
{
	for (unsigned i = 0; i < 10000000 && !irqs; i++)
		cpu_relax();
	serial_puts("interrupts: ");
	serial_puts(irqs ? "yes" : "none");
	serial_puts("\n");
	return irqs ? 0 : fail("no MSI-X interrupt");
}

static int test_rng(void)
{
	struct vdev v;
	int64_t n;
	unsigned nonzero = 0;

	if (vdev_find(&v, 0x1044) || vdev_features(&v) || vdev_start(&v, 0))
		return 1;
	for (unsigned i = 0; i < 512; i++)
		buf[i] = 0;
	desc(0, (uint64_t)buf, 512, 2, 0);
	n = submit();
	if (n <= 0 || n > 512)
		return fail("no random bytes");
	for (unsigned i = 0; i < (unsigned)n; i++)
		nonzero += buf[i] != 0;
	serial_puts("rng: ");
	serial_put_dec((uint64_t)n);
	serial_puts(" bytes\n");
	if (nonzero < (unsigned)n / 2)
		return fail("random bytes look like zeros");
	if (wait_irq())
		return 1;
	serial_puts("virtio-rng ok\n");
	return 0;
}

static int test_intx(void)
{
	struct vdev v;

	if (vdev_find(&v, 0x1042) || vdev_features(&v) || vdev_start_irq(&v, 0, 0))
		return 1;
	serial_puts("INTx line ");
	serial_put_dec(cfg8(v.slot, 0x3c));
	serial_puts("\n");
	if (request(0, 0, 512, 1) != 0)
		return fail("read sector 0");
	for (unsigned i = 0; i < 10000000 && !intx_irqs; i++)
		cpu_relax();
	serial_puts("intx interrupts: ");
	serial_put_dec((uint64_t)intx_irqs);
	serial_puts(", with the queue bit: ");
	serial_put_dec((uint64_t)isr_queue_bits);
	serial_puts("\n");
	if (!intx_irqs || !isr_queue_bits)
		return fail("no INTx interrupt with the ISR queue bit");
	if (irqs)
		return fail("an MSI-X interrupt although MSI-X is off");
	serial_puts("virtio-intx ok\n");
	return 0;
}

static int test_hvc(void)
{
	static const char line[] = "hello through virtio-console\n";
	struct vdev v;

	if (vdev_find(&v, 0x1043) || vdev_features(&v) || vdev_start(&v, 1))
		return 1;
	for (unsigned i = 0; i < sizeof(line) - 1; i++)
		buf[i] = (uint8_t)line[i];
	desc(0, (uint64_t)buf, sizeof(line) - 1, 0, 0);
	if (submit() != 0)
		return fail("console transmit");
	if (wait_irq())
		return 1;
	serial_puts("virtio-console ok\n");
	return 0;
}

#define SAVE_ROUNDS 12u

/* Sector 2 + r holds round r's pattern. */
static uint8_t save_pattern(unsigned r, unsigned i)
{
	return (uint8_t)(r * 31u + i * 7u + 1u);
}

/* One request that must succeed and interrupt. */
static int save_request(uint32_t type, uint64_t sector, const char *what)
{
	int before = irqs;

	if (request(type, sector, 512, type == 0) != 0)
		return fail(what);
	for (unsigned long i = 0; i < 100000000UL && irqs == before; i++)
		__asm__ volatile("" ::: "memory");
	if (irqs == before)
		return fail("no interrupt for a request");
	return 0;
}

static int test_save(void)
{
	struct vdev v;

	if (vdev_find(&v, 0x1042) || vdev_features(&v) || vdev_start(&v, 0))
		return 1;
	serial_puts("virtio-blk save: start\n");
	for (unsigned r = 1; r <= SAVE_ROUNDS; r++) {
		for (unsigned i = 0; i < 512; i++)
			buf[i] = save_pattern(r, i);
		if (save_request(1, 2 + r, "write"))
			return 1;
		for (unsigned i = 0; i < 512; i++)
			buf[i] = 0;
		if (save_request(0, 2 + r, "read"))
			return 1;
		for (unsigned i = 0; i < 512; i++)
			if (buf[i] != save_pattern(r, i))
				return fail("a sector read back differs");
		serial_puts("io round ");
		serial_put_dec(r);
		serial_puts("\n");
		for (unsigned long i = 0; i < 3000000UL; i++)
			__asm__ volatile("" ::: "memory");
	}
	for (unsigned r = 1; r <= SAVE_ROUNDS; r++) {
		if (save_request(0, 2 + r, "read again"))
			return 1;
		for (unsigned i = 0; i < 512; i++)
			if (buf[i] != save_pattern(r, i))
				return fail("a round's sector differs at the end");
	}
	serial_puts("virtio-blk save ok\n");
	return 0;
}

#define MB_BASE    (32UL << 20)        /* two 256 KiB buffers */
#define MB_BUF     (256u << 10)
#define MB_REQ     (64u << 10)         /* one request */
#define MB_ROUNDS  800u
#define MB_SECTORS 16384u              /* the 8 MiB disk */
#define MB_K       0x9e3779b97f4a7c15UL

static uint64_t mb_sector(unsigned r)
{
	return (uint64_t)r * 296u % (MB_SECTORS - MB_BUF / 512);
}

static int mb_read(unsigned r)
{
	uint64_t dst = MB_BASE + (uint64_t)(r & 1) * MB_BUF;

	for (unsigned k = 0; k < MB_BUF / MB_REQ; k++) {
		*(uint32_t *)hdr = 0;
		*(uint32_t *)(hdr + 4) = 0;
		*(uint64_t *)(hdr + 8) = mb_sector(r) + k * (MB_REQ / 512);
		status = 0xff;
		desc(0, (uint64_t)hdr, 16, 1, 1);
		desc(1, dst + (uint64_t)k * MB_REQ, MB_REQ, 1 | 2, 2);
		desc(2, (uint64_t)&status, 1, 2, 0);
		if (submit() < 0)
			return fail("no answer to a read");
		if (status != 0)
			return fail("a read failed");
	}
	return 0;
}

/* Two words of every sector of round r's buffer. */
static int mb_check(unsigned r)
{
	const volatile uint64_t *b = (const volatile uint64_t *)(MB_BASE + (uint64_t)(r & 1) * MB_BUF);
	uint64_t off = mb_sector(r) * 512;

	for (unsigned i = 0; i < MB_BUF / 8; i += 32)
		if (b[i] != (off + 8ull * i) * MB_K) {
			serial_puts("round ");
			serial_put_dec(r);
			serial_puts(" word ");
			serial_put_dec(i);
			serial_puts(": ");
			return fail("stale disk data");
		}
	return 0;
}

static int test_migblk(int hold)
{
	struct vdev v;

	if (vdev_find(&v, 0x1042) || vdev_features(&v) || vdev_start(&v, 0))
		return 1;
	serial_puts("virtio-blk migrate: start\n");
	for (unsigned r = 1; r <= MB_ROUNDS; r++) {
		if (mb_read(r) || (r > 1 && mb_check(r - 1)))
			return 1;
		if (r % 50 == 0) {
			serial_puts("blk round ");
			serial_put_dec(r);
			serial_puts("\n");
		}
	}
	if (mb_check(MB_ROUNDS))
		return 1;
	serial_puts("virtio-blk migrate ok\n");
	if (hold) {
		serial_puts("holding\n");
		while (!(inb(COM1 + 5) & 1))   /* LSR: data ready */
			cpu_relax();
		(void)inb(COM1);
	}
	return 0;
}

/* "netsave": rounds of one transmitted frame each on virtio-net's queue 1
 * (VERSION_1 only: a 12-byte header, no offloads), a broadcast of
 * EtherType 0x88b5 whose payload names the round ("VIREO NET ROUND N"),
 * each answered with an MSI-X interrupt; "net round N" after each and a
 * pause between them, so that the VM can be saved and restored part-way
 * ("virtio-net save ok" at the end).  The host sees each round's frame
 * on the tap once: none lost, none sent again. */
#define NET_ROUNDS 8u
static uint8_t nbuf[128] __attribute__((aligned(16)));

static int wait_irq_after(int before, const char *what)
{
	for (unsigned long i = 0; i < 100000000UL && irqs == before; i++)
		__asm__ volatile("" ::: "memory");
	return irqs == before ? fail(what) : 0;
}

static void round_pause(void)
{
	for (unsigned long i = 0; i < 3000000UL; i++)
		__asm__ volatile("" ::: "memory");
}

static int test_netsave(void)
{
	static const char tag[] = "VIREO NET ROUND ";
	struct vdev v;

	if (vdev_find(&v, 0x1041) || vdev_features(&v) || vdev_start(&v, 1))
		return 1;
	serial_puts("virtio-net save: start\n");
	for (unsigned r = 1; r <= NET_ROUNDS; r++) {
		unsigned n = 12;
		int before = irqs;

		for (unsigned i = 0; i < sizeof(nbuf); i++)
			nbuf[i] = 0;
		for (unsigned i = 0; i < 6; i++)
			nbuf[n++] = 0xff;
		nbuf[n++] = 0x52; nbuf[n++] = 0x54; nbuf[n++] = 0x00;
		nbuf[n++] = 0x12; nbuf[n++] = 0x34; nbuf[n++] = 0x56;
		nbuf[n++] = 0x88; nbuf[n++] = 0xb5;
		for (unsigned i = 0; tag[i]; i++)
			nbuf[n++] = (uint8_t)tag[i];
		nbuf[n++] = (uint8_t)('0' + r);
		desc(0, (uint64_t)nbuf, 12 + 60, 0, 0);
		if (submit() < 0)
			return fail("a transmitted frame was not used");
		if (wait_irq_after(before, "no interrupt for a transmitted frame"))
			return 1;
		serial_puts("net round ");
		serial_put_dec(r);
		serial_puts("\n");
		round_pause();
	}
	serial_puts("virtio-net save ok\n");
	return 0;
}

/* "balloonsave": rounds of one page inflated through virtio-balloon's
 * queue 0, each answered with an MSI-X interrupt, the driver's "actual"
 * (config offset 4) set to the pages it holds; "balloon round N" after
 * each and a pause between them (then it idles, for the host to look).
 * Once answered, the buffer's page frame
 * number is overwritten with 0 (not balloonable RAM): a device that took
 * an old ring entry again would say so on the host. */
#define BALLOON_ROUNDS 8u
static uint8_t bpages[BALLOON_ROUNDS][4096] __attribute__((aligned(4096)));
static volatile uint32_t bpfn[4] __attribute__((aligned(16)));

static int test_balloonsave(void)
{
	struct vdev v;

	if (vdev_find(&v, 0x1045) || vdev_features(&v) || vdev_start(&v, 0))
		return 1;
	serial_puts("virtio-balloon save: start\n");
	for (unsigned r = 1; r <= BALLOON_ROUNDS; r++) {
		int before = irqs;

		bpfn[0] = (uint32_t)((uint64_t)bpages[r - 1] >> 12);
		desc(0, (uint64_t)bpfn, 4, 0, 0);
		if (submit() < 0)
			return fail("an inflate buffer was not used");
		if (wait_irq_after(before, "no interrupt for an inflate buffer"))
			return 1;
		bpfn[0] = 0;
		w32(v.dev + 4, r * 256);   /* 1 MiB a round, as GET /vm/balloon counts */
		serial_puts("balloon round ");
		serial_put_dec(r);
		serial_puts("\n");
		round_pause();
	}
	serial_puts("virtio-balloon save ok\n");
	/* The VM runs on (idle) for the host to look at the balloon. */
	for (;;)
		__asm__ volatile("sti; hlt");
	return 0;
}

/* "netrx": frames received on virtio-net's queue 0 (VERSION_1 only: a
 * 12-byte header) into 8 buffers of which 4 are on the ring at a time.
 * A buffer the device gives back is checked (a frame of EtherType 0x88b5
 * has a payload that starts "VIREO RX "), filled with a canary and left off
 * the ring while 4 others go round; before it goes on again its canary
 * must be whole.  A device that wrote a buffer the guest had not made
 * available (one it had given back, say, from an avail entry it had used
 * already) shows as "FAIL: a buffer off the ring was written", as a used
 * entry naming a buffer not on the ring, or as a used index that went
 * back.  "net rx N" every 50
 * frames; "virtio-net rx ok" after NETRX_FRAMES. */
#define NETRX_BUFS   8u
#define NETRX_ON     4u
#define NETRX_LEN    2048u
#define NETRX_FRAMES 600u
#define NETRX_CANARY 0xa5u
static uint8_t rxbuf[NETRX_BUFS][NETRX_LEN] __attribute__((aligned(4096)));

static void netrx_post(unsigned id)
{
	desc(id, (uint64_t)rxbuf[id], NETRX_LEN, 2, 0);
	*(volatile uint16_t *)(ring + 4096 + 4 + 2 * (avail_idx % QSIZE)) = (uint16_t)id;
	__asm__ volatile("" ::: "memory");
	avail_idx++;
	*(volatile uint16_t *)(ring + 4096 + 2) = avail_idx;
	__asm__ volatile("mfence" ::: "memory");
	w16(notify_addr, 0);
}

static int test_netrx(void)
{
	static const char tag[] = "VIREO RX ";
	uint8_t on[NETRX_BUFS] = { 0 };
	unsigned idle[NETRX_BUFS], nidle = 0, got = 0;
	uint16_t seen;
	struct vdev v;

	if (vdev_find(&v, 0x1041) || vdev_features(&v) || vdev_start(&v, 0))
		return 1;
	seen = used_idx();
	for (unsigned id = 0; id < NETRX_BUFS; id++) {
		for (unsigned i = 0; i < NETRX_LEN; i++)
			rxbuf[id][i] = NETRX_CANARY;
		if (id < NETRX_ON) {
			on[id] = 1;
			netrx_post(id);
		} else {
			idle[nidle++] = id;
		}
	}
	serial_puts("virtio-net rx: start\n");
	while (got < NETRX_FRAMES) {
		const volatile uint8_t *e;
		const uint8_t *f;
		uint32_t id, len;

		uint16_t ahead = (uint16_t)(used_idx() - seen);

		if (!ahead) {
			cpu_relax();
			continue;
		}
		if (ahead > NETRX_ON)
			return fail("the used index went back, or past the buffers on the ring");
		e = ring + 8192 + 4 + 8 * (seen % QSIZE);
		id = *(const volatile uint32_t *)e;
		len = *(const volatile uint32_t *)(e + 4);
		seen++;
		if (id >= NETRX_BUFS || !on[id])
			return fail("a used entry names a buffer not on the ring");
		on[id] = 0;
		f = rxbuf[id] + 12;
		if (len < 12 + 14 || len > NETRX_LEN)
			return fail("a received frame's length is wrong");
		/* The host's own frames (IPv6 neighbour discovery) pass. */
		if (f[12] == 0x88 && f[13] == 0xb5)
			for (unsigned i = 0; i < sizeof(tag) - 1; i++)
				if (len < 12 + 14 + sizeof(tag) || f[14 + i] != (uint8_t)tag[i])
					return fail("a received frame's payload is not the test's");
		for (unsigned i = 0; i < NETRX_LEN; i++)
			rxbuf[id][i] = NETRX_CANARY;
		idle[nidle++] = id;
		/* The buffer idle longest goes on again. */
		id = idle[0];
		for (unsigned i = 1; i < nidle; i++)
			idle[i - 1] = idle[i];
		nidle--;
		for (unsigned i = 0; i < NETRX_LEN; i++)
			if (rxbuf[id][i] != NETRX_CANARY)
				return fail("a buffer off the ring was written");
		on[id] = 1;
		netrx_post(id);
		if (++got % 50 == 0) {
			serial_puts("net rx ");
			serial_put_dec(got);
			serial_puts("\n");
		}
	}
	serial_puts("virtio-net rx ok\n");
	return 0;
}

int guest_main(void *bp)
{
	const char *cmdline = (const char *)(uint64_t)*(const uint32_t *)((uint8_t *)bp + 0x228);
	int ro = has_word(cmdline, "ro");
	static const char msg[] = "written by the tiny guest";
	struct vdev v;
	int st;

	if (has_word(cmdline, "rng"))
		return test_rng();
	if (has_word(cmdline, "hvc"))
		return test_hvc();
	if (has_word(cmdline, "intx"))
		return test_intx();
	/* before "save": has_word finds it in these */
	if (has_word(cmdline, "netrx"))
		return test_netrx();
	if (has_word(cmdline, "netsave"))
		return test_netsave();
	if (has_word(cmdline, "balloonsave"))
		return test_balloonsave();
	if (has_word(cmdline, "save"))
		return test_save();
	if (has_word(cmdline, "migblk"))
		return test_migblk(has_word(cmdline, "hold"));

	if (vdev_find(&v, 0x1042) || vdev_features(&v))
		return 1;
	serial_puts("capacity ");
	serial_put_dec(r32(v.dev) | (uint64_t)r32(v.dev + 4) << 32);
	serial_puts(" sectors\n");

	if (vdev_start(&v, 0))
		return 1;

	for (unsigned i = 0; i < 512; i++)
		buf[i] = (uint8_t)(i < sizeof(msg) ? (unsigned)msg[i] : i);
	st = request(1, 1, 512, 0);
	if (ro) {
		if (st != 1)
			return fail("write to a read-only disk did not fail");
		serial_puts("write refused\n");
	} else if (st != 0) {
		return fail("write");
	}
	for (unsigned i = 0; i < 512; i++)
		buf[i] = 0;
	if (request(0, 1, 512, 1) != 0)
		return fail("read sector 1");
	if (!ro) {
		for (unsigned i = 0; i < 512; i++)
			if (buf[i] != (uint8_t)(i < sizeof(msg) ? (unsigned)msg[i] : i))
				return fail("sector 1 read back differs");
		serial_puts("sector 1 read back\n");
	}
	if (request(0, 0, 512, 1) != 0)
		return fail("read sector 0");
	buf[40] = 0;
	serial_puts("sector 0: ");
	serial_puts((const char *)buf);
	serial_puts("\n");
	if (request(8, 0, 20, 1) != 0)
		return fail("GET_ID");
	buf[20] = 0;
	serial_puts("serial: ");
	serial_puts((const char *)buf);
	serial_puts("\n");
	if (request(0, 1ULL << 40, 512, 1) != 1)
		return fail("read past the end did not fail");
	if (request(77, 0, 0, 0) != 2)
		return fail("unknown request type not UNSUPP");
	if (wait_irq())
		return 1;
	(void)r8(v.isr);
	serial_puts("virtio-blk ok\n");
	return 0;
}
