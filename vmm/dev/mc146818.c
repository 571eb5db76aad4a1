#include <string.h>

#include "mc146818.h"

#define RTC_SEC     0x00
#define RTC_MIN     0x02
#define RTC_HOUR    0x04
#define RTC_WDAY    0x06
#define RTC_MDAY    0x07
#define RTC_MON     0x08
#define RTC_YEAR    0x09
#define RTC_REG_A   0x0a
#define RTC_REG_B   0x0b
#define RTC_REG_C   0x0c
#define RTC_REG_D   0x0d
#define RTC_CENTURY 0x32

void mc146818_init(struct mc146818 *r, time_t (*now)(void))
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->cmos[RTC_REG_A] = 0x26;
	r->cmos[RTC_REG_B] = 0x02;   /* 24-hour, BCD */
	r->cmos[RTC_REG_D] = 0x80;   /* valid RAM and time */
	r->now = now;
}

static uint8_t rtc_bcd(const struct mc146818 *r, unsigned v)
{
	if (r->cmos[RTC_REG_B] & 0x04)    /* binary mode */
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

uint8_t mc146818_read(struct mc146818 *r, uint8_t reg)
{
	time_t t;
	struct tm tm;

	reg &= 0x7f;
	switch (reg) {
	case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY:
	case RTC_MDAY: case RTC_MON: case RTC_YEAR: case RTC_CENTURY:
		t = r->now ? r->now() : time(NULL);
		gmtime_r(&t, &tm);
		switch (reg) {
		case RTC_SEC: return rtc_bcd(r, (unsigned)tm.tm_sec);
		case RTC_MIN: return rtc_bcd(r, (unsigned)tm.tm_min);
		case RTC_HOUR: return rtc_bcd(r, (unsigned)tm.tm_hour);
		case RTC_WDAY: return rtc_bcd(r, (unsigned)tm.tm_wday + 1);
		case RTC_MDAY: return rtc_bcd(r, (unsigned)tm.tm_mday);
		case RTC_MON: return rtc_bcd(r, (unsigned)tm.tm_mon + 1);
		case RTC_YEAR: return rtc_bcd(r, (unsigned)(tm.tm_year % 100));
		default: return rtc_bcd(r, (unsigned)(tm.tm_year + 1900) / 100);
		}
	case RTC_REG_A:
		return r->cmos[RTC_REG_A] & 0x7f;   /* never "update in progress" */
	case RTC_REG_C: {
		uint8_t v = r->cmos[RTC_REG_C];
		r->cmos[RTC_REG_C] = 0;
		return v;
	}
	default:
		return r->cmos[reg];
	}
}

void mc146818_bus_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		     bool is_write)
{
	struct mc146818 *r = opaque;

	if (len != 1) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (offset == 0) {
		if (is_write)
			r->index = data[0] & 0x7f;   /* bit 7 is the NMI mask */
		else
			data[0] = r->index;
	} else if (is_write) {
		/* Time writes are accepted and ignored: the clock follows the host. */
		if (r->index == RTC_REG_B)
			r->cmos[RTC_REG_B] = (data[0] & 0x06) | 0x02;
		else if (r->index > RTC_REG_D)
			r->cmos[r->index] = data[0];
	} else {
		data[0] = mc146818_read(r, r->index);
	}
	pthread_mutex_unlock(&r->lock);
}
