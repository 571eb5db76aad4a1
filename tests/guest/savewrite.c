/* Save/restore guest: rounds of updates across 16 MiB from 32 MiB (four
 * words in each 4 KiB page: guest RAM may be uncached here, so few
 * accesses), each word's value depending on every earlier round
 * (v = v * K + (i ^ r)),
 * "round N" on COM1 after each round and a pause between rounds, so that
 * the VM can be saved part-way.  With "cpus=2" on the command line an AP
 * updates the upper half.  At the end every word is checked against the
 * recurrence computed afresh, and a checksum of the area is printed:
 * a page lost or stale across a save and restore shows as a mismatch.
 * Needs --memory 64M or more and --debug-exit. */
#include "guest.h"

#define AREA_BASE  (32UL << 20)
#define AREA_PAGES ((16UL << 20) / 4096)
#define SLOTS      4u        /* words per page, 1 KiB apart */
#define ROUNDS     16u
#define K          0x9e3779b97f4a7c15UL

extern char ap_tramp[];
extern uint32_t ap_cr3;
extern uint64_t ap_stack;

static uint8_t ap_stack_page[4096] __attribute__((aligned(16)));
static volatile uint32_t ap_round;      /* rounds the AP has finished */

static inline unsigned long word(unsigned long page, unsigned slot)
{
	return page * 512 + slot * 128;
}

static void update(unsigned long from, unsigned long to, unsigned r)
{
	volatile uint64_t *w = (volatile uint64_t *)AREA_BASE;

	for (unsigned long p = from; p < to; p++)
		for (unsigned s = 0; s < SLOTS; s++) {
			unsigned long i = word(p, s);

			w[i] = w[i] * K + (i ^ r);
		}
}

/* Some ms: a loop in registers (no PAUSE, no RDTSC: either may exit to
 * the host, which is slow under nested virtualization). */
static void pause_between_rounds(void)
{
	for (unsigned long i = 0; i < 100000UL; i++)
		__asm__ volatile("" ::: "memory");
}

void ap_main(void)
{
	for (unsigned r = 1; r <= ROUNDS; r++) {
		update(AREA_PAGES / 2, AREA_PAGES, r);
		__atomic_store_n(&ap_round, r, __ATOMIC_RELEASE);
		pause_between_rounds();
	}
}

int guest_main(void *bp)
{
	const uint8_t *zp = bp;
	const char *c = (const char *)(uint64_t)*(const uint32_t *)(zp + 0x228);
	volatile uint64_t *w = (volatile uint64_t *)AREA_BASE;
	unsigned long end = AREA_PAGES;
	uint64_t sum = 0;
	int two = 0;

	for (; *c; c++)
		if (c[0] == 'c' && c[1] == 'p' && c[2] == 'u' && c[3] == 's' && c[4] == '=' &&
		    c[5] == '2')
			two = 1;
	serial_puts("savewrite: start\n");
	if (two) {
		lapic_enable();
		ap_cr3 = (uint32_t)read_cr3();
		ap_stack = (uint64_t)(ap_stack_page + sizeof(ap_stack_page));
		lapic_start_ap(1, (uint8_t)((uint64_t)ap_tramp >> 12));
		end = AREA_PAGES / 2;
	}
	for (unsigned r = 1; r <= ROUNDS; r++) {
		update(0, end, r);
		serial_puts("round ");
		serial_put_dec(r);
		serial_puts("\n");
		pause_between_rounds();
	}
	if (two) {
		for (unsigned long spin = 0; __atomic_load_n(&ap_round, __ATOMIC_ACQUIRE) < ROUNDS;
		     spin++) {
			if (spin > 4000000000UL) {
				serial_puts("the AP did not finish\n");
				return 1;
			}
			cpu_relax();
		}
	}
	for (unsigned long n = 0; n < AREA_PAGES * SLOTS; n++) {
		unsigned long i = word(n / SLOTS, n % SLOTS);
		uint64_t v = 0, m = w[i];

		for (unsigned r = 1; r <= ROUNDS; r++)
			v = v * K + (i ^ r);
		if (m != v) {
			serial_puts("mismatch at word ");
			serial_put_dec(i);
			serial_puts("\n");
			return 1;
		}
		sum += (m << (n & 31)) | ((n & 31) ? m >> (64 - (n & 31)) : 0);
	}
	serial_puts("checksum ");
	serial_put_hex(sum);
	serial_puts(" over ");
	serial_put_dec(AREA_PAGES * SLOTS);
	serial_puts(" words: ok\n");
	return 0;
}
