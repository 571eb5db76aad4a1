/* Multi-vCPU start-up: the BSP wakes every AP with INIT/SIPI through the
 * LAPIC; each AP reports on COM1; the BSP waits for all of them. */
#include "guest.h"

extern char ap_tramp[];
extern uint32_t ap_cr3;
extern uint64_t ap_stack;

static volatile uint32_t reported;
static volatile uint32_t serial_lock;
static uint8_t ap_stacks[8][4096] __attribute__((aligned(16)));

static void lock(void) { while (__atomic_exchange_n(&serial_lock, 1, __ATOMIC_ACQUIRE)) cpu_relax(); }
static void unlock(void) { __atomic_store_n(&serial_lock, 0, __ATOMIC_RELEASE); }

void ap_main(void)
{
	uint32_t id = lapic_id();

	lock();
	serial_puts("AP ");
	serial_put_dec(id);
	serial_puts(" up\n");
	unlock();
	__atomic_add_fetch(&reported, 1, __ATOMIC_SEQ_CST);
}

int guest_main(void *bp)
{
	const uint8_t *zp = bp;
	uint32_t cmd = *(const uint32_t *)(zp + 0x228);
	const char *c = (const char *)(uint64_t)cmd;
	unsigned ncpus = 2;

	/* "cpus=N" on the command line */
	for (; *c; c++)
		if (c[0] == 'c' && c[1] == 'p' && c[2] == 'u' && c[3] == 's' && c[4] == '=')
			ncpus = (unsigned)(c[5] - '0');
	serial_puts("BSP ");
	serial_put_dec(lapic_id());
	serial_puts(" up\n");
	lapic_enable();
	ap_cr3 = (uint32_t)read_cr3();
	for (unsigned i = 1; i < ncpus && i <= 8; i++) {
		uint32_t want = reported + 1;
		ap_stack = (uint64_t)(ap_stacks[i - 1] + 4096);
		lapic_start_ap(i, (uint8_t)((uint64_t)ap_tramp >> 12));
		for (unsigned long spin = 0; reported < want; spin++) {
			if (spin > 50000000UL) {
				serial_puts("AP did not start\n");
				return 1;
			}
			cpu_relax();
		}
	}
	lock();
	serial_puts("all ");
	serial_put_dec(reported + 1);
	serial_puts(" CPUs reported\n");
	unlock();
	return 0;
}
