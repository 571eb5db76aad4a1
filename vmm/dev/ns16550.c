#include <string.h>

#include "ns16550.h"

#define UART_RBR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI  0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI  0x08

#define IIR_NONE 0x01
#define IIR_MSI  0x00
#define IIR_THRI 0x02
#define IIR_RDI  0x04
#define IIR_RLSI 0x06

#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02

static uint8_t uart_iir(const struct ns16550 *s)
{
	if ((s->ier & IER_RLSI) && (s->lsr & LSR_OE))
		return IIR_RLSI;
	if ((s->ier & IER_RDI) && s->rx_count)
		return IIR_RDI;
	if ((s->ier & IER_THRI) && s->thr_ipending)
		return IIR_THRI;
	return IIR_NONE;
}

static void uart_update_irq(struct ns16550 *s)
{
	int level = uart_iir(s) != IIR_NONE;

	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->ops && s->ops->irq)
			s->ops->irq(s->opaque, level);
	}
}

void ns16550_init(struct ns16550 *s, const struct ns16550_ops *ops, void *opaque)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->lsr = LSR_THRE | LSR_TEMT;
	s->msr = 0xb0;          /* DCD, DSR, CTS */
	s->ops = ops;
	s->opaque = opaque;
}

void ns16550_destroy(struct ns16550 *s)
{
	pthread_mutex_destroy(&s->lock);
}

static uint8_t uart_rx_pop(struct ns16550 *s)
{
	uint8_t c;

	if (!s->rx_count)
		return 0;
	c = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % NS16550_RX_FIFO;
	s->rx_count--;
	if (!s->rx_count && s->rx_was_full) {
		s->rx_was_full = false;
		if (s->ops && s->ops->rx_space)
			s->ops->rx_space(s->opaque);
	}
	return c;
}

static void uart_rx_put(struct ns16550 *s, uint8_t c)
{
	if (s->rx_count == NS16550_RX_FIFO) {
		s->lsr |= LSR_OE;
		return;
	}
	s->rx[(s->rx_head + s->rx_count) % NS16550_RX_FIFO] = c;
	s->rx_count++;
}

uint8_t ns16550_read(struct ns16550 *s, unsigned offset)
{
	uint8_t v = 0xff;

	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case UART_RBR:
		v = (s->lcr & LCR_DLAB) ? s->dll : uart_rx_pop(s);
		break;
	case UART_IER:
		v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
		break;
	case UART_IIR:
		v = uart_iir(s);
		if (v == IIR_THRI)
			s->thr_ipending = false;
		v |= s->iir_fifo;
		break;
	case UART_LCR: v = s->lcr; break;
	case UART_MCR: v = s->mcr; break;
	case UART_LSR:
		v = s->lsr | (s->rx_count ? LSR_DR : 0);
		s->lsr &= (uint8_t)~LSR_OE;
		break;
	case UART_MSR:
		if (s->mcr & MCR_LOOP) {
			/* Loopback: CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2. */
			v = (uint8_t)(((s->mcr & 0x02) << 3) | ((s->mcr & 0x01) << 5) |
				      ((s->mcr & 0x04) << 4) | ((s->mcr & 0x08) << 4));
		} else {
			v = s->msr;
		}
		break;
	case UART_SCR: v = s->scr; break;
	}
	uart_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return v;
}

void ns16550_write(struct ns16550 *s, unsigned offset, uint8_t val)
{
	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case UART_RBR:
		if (s->lcr & LCR_DLAB) {
			s->dll = val;
			break;
		}
		s->thr_ipending = false;
		if (s->mcr & MCR_LOOP)
			uart_rx_put(s, val);
		else if (s->ops && s->ops->tx)
			s->ops->tx(s->opaque, val);
		s->thr_ipending = true;     /* transmission is instantaneous */
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = val;
			break;
		}
		if ((val & IER_THRI) && !(s->ier & IER_THRI))
			s->thr_ipending = true;
		s->ier = val & 0x0f;
		break;
	case UART_IIR:  /* FCR */
		s->fcr = val;
		s->iir_fifo = (val & FCR_ENABLE) ? 0xc0 : 0;
		if (val & FCR_CLEAR_RX) {
			s->rx_count = 0;
			s->rx_head = 0;
		}
		break;
	case UART_LCR: s->lcr = val; break;
	case UART_MCR: s->mcr = val & 0x1f; break;
	case UART_LSR: break;
	case UART_MSR: break;
	case UART_SCR: s->scr = val; break;
	}
	uart_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t ns16550_rx_space(struct ns16550 *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = NS16550_RX_FIFO - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t ns16550_rx_push(struct ns16550 *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_count < NS16550_RX_FIFO)
		uart_rx_put(s, buf[n++]);
	if (s->rx_count == NS16550_RX_FIFO)
		s->rx_was_full = true;
	uart_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void ns16550_bus_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		    bool is_write)
{
	struct ns16550 *s = opaque;

	for (unsigned i = 0; i < len; i++) {
		if (offset + i >= NS16550_NREGS) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		if (is_write)
			ns16550_write(s, (unsigned)offset + i, data[i]);
		else
			data[i] = ns16550_read(s, (unsigned)offset + i);
	}
}
