#include <string.h>

#include "i8042.h"

#define I8042_STATUS_OBF   0x01
#define I8042_STATUS_SYS   0x04
#define I8042_STATUS_CMD   0x08

void i8042_init(struct i8042 *k, void (*reset)(void *), void *opaque)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->ctr = 0x61;    /* kbd irq, system flag, translation */
	k->reset = reset;
	k->opaque = opaque;
}

static void i8042_put(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->out_full = true;
}

static void i8042_command(struct i8042 *k, uint8_t c)
{
	switch (c) {
	case 0x20: i8042_put(k, k->ctr); break;          /* read CTR */
	case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4:
		k->cmd = c;                               /* takes a data byte */
		break;
	case 0xaa: i8042_put(k, 0x55); break;            /* self test */
	case 0xab: case 0xa9: i8042_put(k, 0x00); break; /* port tests */
	case 0xfe:                                       /* pulse reset line */
		if (k->reset)
			k->reset(k->opaque);
		break;
	default: break;
	}
}

void i8042_bus_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		  bool is_write)
{
	struct i8042 *k = opaque;

	if (len != 1 || (offset != 0 && offset != 4)) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&k->lock);
	if (offset == 4) {
		if (is_write)
			i8042_command(k, data[0]);
		else
			data[0] = I8042_STATUS_SYS | (k->out_full ? I8042_STATUS_OBF : 0);
	} else if (is_write) {
		uint8_t c = k->cmd;
		k->cmd = 0;
		if (c == 0x60)
			k->ctr = data[0];
		else if (c == 0xd1 && !(data[0] & 1) && k->reset)
			k->reset(k->opaque);    /* output port bit 0 low = reset */
		else if (c == 0xd2 || c == 0xd3)
			i8042_put(k, data[0]);
		else if (c == 0 || c == 0xd4)
			i8042_put(k, 0xfe);     /* no device: resend */
	} else {
		data[0] = k->out;
		k->out_full = false;
	}
	pthread_mutex_unlock(&k->lock);
}
