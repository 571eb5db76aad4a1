/*
 * The ACPI fixed-hardware PM register block (see acpi.h for the layout):
 *
 *   +0  PM1_STS  16 bits, write 1 to clear
 *   +2  PM1_EN   16 bits
 *   +4  PM1_CNT  16 bits: SCI_EN (always 1), SLP_TYP, SLP_EN (write only)
 *   +8  PM_TMR   32 bits read only, 24-bit counter at 3.579545 MHz
 *   +12 RESET    8 bits, write only: ACPI_RESET_VALUE resets
 *
 * The guest may access any byte range inside the block with size 1, 2 or
 * 4; registers are handled byte by byte so odd accesses behave like the
 * byte lanes of real hardware.  The SCI is level triggered:
 * level = (PM1_STS & PM1_EN) != 0.
 *
 * Not generated: TMR_STS (the timer carry event; Linux does not use it)
 * and wake events (no sleep states other than S5).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acpi.h"

#define PM1_STS_OFF     0
#define PM1_EN_OFF      2
#define PM1_CNT_OFF     4
#define PM_TMR_OFF      8
#define PM_RESET_OFF    12

#define PM1_TMR         (1u << 0)
#define PM1_GBL         (1u << 5)
#define PM1_PWRBTN      (1u << 8)
#define PM1_SLPBTN      (1u << 9)
#define PM1_RTC         (1u << 10)
#define PM1_PCIEXP_WAKE (1u << 14)
#define PM1_WAK         (1u << 15)

#define PM1_STS_MASK    (PM1_TMR | (1u << 4) | PM1_GBL | PM1_PWRBTN | \
			 PM1_SLPBTN | PM1_RTC | PM1_PCIEXP_WAKE | PM1_WAK)
#define PM1_EN_MASK     (PM1_TMR | PM1_GBL | PM1_PWRBTN | PM1_SLPBTN | \
			 PM1_RTC | PM1_PCIEXP_WAKE)

#define PM1_CNT_SCI_EN      (1u << 0)
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_TYP     (7u << PM1_CNT_SLP_TYP_SHIFT)
#define PM1_CNT_SLP_EN      (1u << 13)
#define PM1_CNT_MASK        (PM1_CNT_SCI_EN | (1u << 1) | PM1_CNT_SLP_TYP)

#define PM_TMR_HZ       3579545ULL
#define NSEC_PER_SEC    1000000000ULL

struct acpi_pm {
	void (*set_sci)(void *opaque, int level);
	void *opaque;
	uint16_t sts, en, cnt;
	int sci_level;
	uint64_t t0_ns;                  /* CLOCK_MONOTONIC at creation */
};

static uint64_t acpi_pm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static uint32_t acpi_pm_timer(const struct acpi_pm *pm)
{
	uint64_t ns = acpi_pm_now_ns() - pm->t0_ns;
	/* Split so the multiplication cannot overflow for any uptime. */
	uint64_t ticks = (ns / NSEC_PER_SEC) * PM_TMR_HZ +
			 (ns % NSEC_PER_SEC) * PM_TMR_HZ / NSEC_PER_SEC;

	return (uint32_t)(ticks & 0xffffff);
}

static void acpi_pm_update_sci(struct acpi_pm *pm)
{
	int level = (pm->sts & pm->en) != 0;

	if (level == pm->sci_level)
		return;
	pm->sci_level = level;
	if (pm->set_sci)
		pm->set_sci(pm->opaque, level);
}

struct acpi_pm *acpi_pm_new(void (*set_sci)(void *opaque, int level),
			    void *opaque)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	pm->set_sci = set_sci;
	pm->opaque = opaque;
	pm->cnt = PM1_CNT_SCI_EN;
	pm->t0_ns = acpi_pm_now_ns();
	return pm;
}

void acpi_pm_free(struct acpi_pm *pm)
{
	free(pm);
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
	if (!pm)
		return;
	pm->sts |= PM1_PWRBTN;
	acpi_pm_update_sci(pm);
}

static void acpi_pm_read(struct acpi_pm *pm, uint16_t offset, uint8_t *data,
			 unsigned size)
{
	uint8_t regs[ACPI_PM_IO_LEN] = { 0 };
	uint32_t tmr = acpi_pm_timer(pm);

	regs[PM1_STS_OFF] = (uint8_t)pm->sts;
	regs[PM1_STS_OFF + 1] = (uint8_t)(pm->sts >> 8);
	regs[PM1_EN_OFF] = (uint8_t)pm->en;
	regs[PM1_EN_OFF + 1] = (uint8_t)(pm->en >> 8);
	regs[PM1_CNT_OFF] = (uint8_t)pm->cnt;
	regs[PM1_CNT_OFF + 1] = (uint8_t)(pm->cnt >> 8);
	for (int i = 0; i < 4; i++)
		regs[PM_TMR_OFF + i] = (uint8_t)(tmr >> (8 * i));
	/* The reset register and reserved bytes read as 0. */
	memcpy(data, regs + offset, size);
}

/* Replace byte lane `lane` (0 or 1) of a 16-bit register. */
static uint16_t acpi_pm_lane(uint16_t reg, unsigned lane, uint8_t b)
{
	unsigned sh = 8 * lane;

	return (uint16_t)((reg & ~(0xffu << sh)) | ((unsigned)b << sh));
}

static enum acpi_pm_action acpi_pm_write(struct acpi_pm *pm, uint16_t offset,
					 const uint8_t *data, unsigned size)
{
	enum acpi_pm_action act = ACPI_PM_NONE;
	bool slp_en = false;

	for (unsigned i = 0; i < size; i++) {
		unsigned off = offset + i;
		uint8_t b = data[i];

		switch (off) {
		case PM1_STS_OFF:
		case PM1_STS_OFF + 1:
			pm->sts &= (uint16_t)~((unsigned)b << (8 * (off & 1)));
			break;
		case PM1_EN_OFF:
		case PM1_EN_OFF + 1:
			pm->en = acpi_pm_lane(pm->en, off & 1, b) & PM1_EN_MASK;
			break;
		case PM1_CNT_OFF:
		case PM1_CNT_OFF + 1: {
			uint16_t v = acpi_pm_lane(pm->cnt, off & 1, b);

			if (v & PM1_CNT_SLP_EN)
				slp_en = true;
			pm->cnt = (uint16_t)((v & PM1_CNT_MASK) |
					     PM1_CNT_SCI_EN);
			break;
		}
		case PM_RESET_OFF:
			if (b == ACPI_RESET_VALUE)
				act = ACPI_PM_RESET;
			break;
		default:
			break;          /* timer and reserved: read only */
		}
	}
	/* Sleep is entered when SLP_EN is written, with the SLP_TYP that is
	 * in the register after the whole access.  Only S5 exists. */
	if (slp_en && act == ACPI_PM_NONE &&
	    ((pm->cnt & PM1_CNT_SLP_TYP) >> PM1_CNT_SLP_TYP_SHIFT) ==
		    ACPI_S5_SLP_TYP)
		act = ACPI_PM_POWEROFF;
	acpi_pm_update_sci(pm);
	return act;
}

enum acpi_pm_action acpi_pm_io(struct acpi_pm *pm, uint16_t offset,
			       bool is_write, uint8_t *data, unsigned size)
{
	bool ok = pm && data && (size == 1 || size == 2 || size == 4) &&
		  offset < ACPI_PM_IO_LEN &&
		  size <= (unsigned)(ACPI_PM_IO_LEN - offset);

	if (!ok) {
		/* Fill what the caller can hold (a port access is at most 4
		 * bytes; never more than 8). */
		if (!is_write && data)
			memset(data, 0xff, size < 8 ? size : 8);
		return ACPI_PM_NONE;
	}
	if (!is_write) {
		acpi_pm_read(pm, offset, data, size);
		return ACPI_PM_NONE;
	}
	return acpi_pm_write(pm, offset, data, size);
}

void acpi_pm_get_state(const struct acpi_pm *pm, struct acpi_pm_state *s)
{
	s->sts = pm->sts;
	s->en = pm->en;
	s->cnt = pm->cnt;
	s->sci_level = pm->sci_level;
	s->timer = acpi_pm_timer(pm);
}

void acpi_pm_set_state(struct acpi_pm *pm, const struct acpi_pm_state *s)
{
	uint64_t now = acpi_pm_now_ns();
	uint32_t ticks = s->timer & 0xffffff;
	/* Rounded up, so the first read gives the saved count again. */
	uint64_t ns = ((uint64_t)ticks * NSEC_PER_SEC + PM_TMR_HZ - 1) / PM_TMR_HZ;

	pm->sts = s->sts;
	pm->en = s->en;
	pm->cnt = s->cnt;
	pm->sci_level = s->sci_level ? 1 : 0;
	/* A host up for less than the 4.7 s of one timer period restarts
	 * the count from its boot instead. */
	pm->t0_ns = now >= ns ? now - ns : 0;
}
