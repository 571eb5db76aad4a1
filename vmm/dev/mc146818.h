/* Motorola MC146818 real-time clock and CMOS RAM at ports 0x70/0x71: the
 * wall clock from a time source (BCD or binary, 24-hour), status registers
 * A-D and 114 bytes of NVRAM.  Time writes are ignored: the clock follows
 * the host. */
#ifndef VIREO_VMM_DEV_MC146818_H
#define VIREO_VMM_DEV_MC146818_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define MC146818_BASE 0x70
#define MC146818_NREGS 2

struct mc146818 {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
	time_t (*now)(void);  /* time source (tests substitute it) */
};

void mc146818_init(struct mc146818 *r, time_t (*now)(void));
/* Register read through the index; pure except for the time source. */
uint8_t mc146818_read(struct mc146818 *r, uint8_t reg);
void mc146818_bus_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		     bool is_write);   /* registered at 0x70 (len 2) */

#endif
