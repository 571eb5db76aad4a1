/* Intel 8042 keyboard controller at ports 0x60 and 0x64: no keyboard, just
 * enough for Linux's probe (self test, command byte) and the reset line
 * (command 0xfe, or output-port bit 0 cleared), which calls reset(). */
#ifndef VIREO_VMM_DEV_I8042_H
#define VIREO_VMM_DEV_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define I8042_BASE 0x60
#define I8042_NREGS 5     /* 0x60..0x64 */

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

#endif
