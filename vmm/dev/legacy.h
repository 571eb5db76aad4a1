/*
 * Small legacy devices: i8042 (enough for the reset line and the kernel's
 * probe), MC146818 RTC/CMOS (wall clock in BCD, 24-hour), the boot-timer
 * MMIO page (contract: a 32-bit write of 123 to 0xfeb00000 logs the time
 * since start) and the test-only debug-exit port.
 */
#ifndef VIREO_VMM_DEV_LEGACY_H
#define VIREO_VMM_DEV_LEGACY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct i8042 {
	pthread_mutex_t lock;
	uint8_t cmd;          /* pending command that takes a data byte */
	uint8_t ctr;          /* controller configuration byte */
	uint8_t out;          /* output buffer */
	bool out_full;
	void (*reset)(void *opaque);
	void *opaque;
};

void i8042_init(struct i8042 *k, void (*reset)(void *), void *opaque);
void i8042_bus_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		  bool is_write);   /* registered at 0x60 (len 5: 0x60..0x64) */

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

struct boot_timer {
	uint64_t start_ns;
};
void boot_timer_bus_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		       bool is_write);

#endif
