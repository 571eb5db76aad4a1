/*
 * 16550A UART model (COM1 at 0x3f8, IRQ 4).  The register model is pure
 * (no I/O): transmitted bytes go to a tx callback, the interrupt line level
 * to an irq callback; received bytes are pushed with ns16550_rx_push().
 * Every call takes the device lock, so vCPU threads and the event loop may
 * call concurrently.  Callbacks run under the lock and must not call back.
 */
#ifndef VIREO_VMM_DEV_NS16550_H
#define VIREO_VMM_DEV_NS16550_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NS16550_COM1_BASE 0x3f8
#define NS16550_COM1_IRQ  4
#define NS16550_NREGS     8
#define NS16550_RX_FIFO   64

struct ns16550_ops {
	void (*tx)(void *opaque, uint8_t byte);
	void (*irq)(void *opaque, int level);
	/* The guest drained the receive FIFO after it had been full. */
	void (*rx_space)(void *opaque);
};

struct ns16550 {
	pthread_mutex_t lock;
	uint8_t ier, iir_fifo, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	bool thr_ipending;
	bool rx_was_full;
	int irq_level;
	uint8_t rx[NS16550_RX_FIFO];
	unsigned rx_head, rx_count;
	const struct ns16550_ops *ops;
	void *opaque;
};

void ns16550_init(struct ns16550 *s, const struct ns16550_ops *ops, void *opaque);
void ns16550_destroy(struct ns16550 *s);
/* Register access at offset 0..7 (one byte). */
uint8_t ns16550_read(struct ns16550 *s, unsigned offset);
void ns16550_write(struct ns16550 *s, unsigned offset, uint8_t val);
/* Queue received bytes; returns how many fitted. */
size_t ns16550_rx_push(struct ns16550 *s, const uint8_t *buf, size_t len);
size_t ns16550_rx_space(struct ns16550 *s);
/* bus_io_fn adapter (opaque = struct ns16550 *). */
void ns16550_bus_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		    bool is_write);

#endif
