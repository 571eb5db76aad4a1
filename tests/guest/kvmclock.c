/* kvmclock guest: turns the kvmclock on (MSR_KVM_SYSTEM_TIME_NEW, a
 * pvclock area) and, every 200 ms of its time, prints "clock round N ms M
 * tsc T": M the kvmclock in ms, T the TSC scaled to ms by the pvclock's
 * factors.  A save and restore in between shows on the guest's side: the
 * kvmclock advanced by the time the VM was away, the TSC went on from
 * where it was.  "clock ok" after 40 rounds; needs --debug-exit. */
#include "guest.h"

#define ROUNDS 40u
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01u

struct pvclock {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t mul;
	int8_t shift;
	uint8_t flags, pad[2];
};

static volatile struct pvclock pv __attribute__((aligned(64)));

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" :: "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
	return (uint64_t)hi << 32 | lo;
}

static uint64_t scale(uint64_t t, uint32_t mul, int8_t shift)
{
	if (shift < 0)
		t >>= -shift;
	else
		t <<= shift;
	return (uint64_t)(((unsigned __int128)t * mul) >> 32);
}

/* The kvmclock (ns), and the TSC scaled alike in *tsc_ns. */
static uint64_t kvmclock_ns(uint64_t *tsc_ns)
{
	uint32_t v;
	uint64_t t, tsc;

	do {
		v = pv.version;
		__asm__ volatile("" ::: "memory");
		tsc = rdtsc();
		t = pv.system_time + scale(tsc - pv.tsc_timestamp, pv.mul, pv.shift);
		if (tsc_ns)
			*tsc_ns = scale(tsc, pv.mul, pv.shift);
		__asm__ volatile("" ::: "memory");
	} while ((v & 1) || v != pv.version);
	return t;
}

int guest_main(void *bp)
{
	uint64_t next;

	(void)bp;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)&pv | 1);
	for (unsigned i = 0; i < 1000000 && !pv.version; i++)
		cpu_relax();
	if (!pv.version) {
		serial_puts("FAIL: the kvmclock area was never written\n");
		return 1;
	}
	serial_puts("kvmclock on\n");
	next = kvmclock_ns(0);
	for (unsigned r = 1; r <= ROUNDS; r++) {
		uint64_t now, tsc;

		next += 200000000u;
		while ((now = kvmclock_ns(&tsc)) < next)
			cpu_relax();
		serial_puts("clock round ");
		serial_put_dec(r);
		serial_puts(" ms ");
		serial_put_dec(now / 1000000u);
		serial_puts(" tsc ");
		serial_put_dec(tsc / 1000000u);
		serial_puts("\n");
	}
	serial_puts("clock ok\n");
	return 0;
}
