/* virtio-console (virtio 1.2, 5.3): one port, usable as console=hvc0. */
#ifndef VIREO_VMM_VIRTIO_CONSOLE_H
#define VIREO_VMM_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "virtio.h"

#define VIRTIO_CONSOLE_F_SIZE        0
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2
#define VIRTIO_CONSOLE_CFG_SIZE      12
#define VIRTIO_CONSOLE_QUEUE_SIZE    64u
#define VIRTIO_CONSOLE_INBUF         4096u
/* Budgets (virtio.h): guest output taken from one request (the rest of a
 * longer one is dropped and counted) and per wake-up of the event loop. */
#define VIRTIO_CONSOLE_CHAIN_MAX     (64u << 10)
#define VIRTIO_CONSOLE_WAKE_BUDGET   (256u << 10)

/* Where guest output goes (the VMM's stdio / file / nothing). */
struct virtio_console_backend {
	void (*write)(void *opaque, const void *buf, size_t len);
	/* Optional: the guest took buffered input; there is room again
	 * (called with the device lock held: do not call back in). */
	void (*rx_room)(void *opaque);
	void *opaque;
};

/* cols/rows 0 means the size is not offered. */
int virtio_console_create(const struct virtio_env *env,
			  const struct virtio_console_backend *be,
			  uint16_t cols, uint16_t rows,
			  struct virtio_dev **out);

/* Host input for the guest: buffers up to VIRTIO_CONSOLE_INBUF bytes and
 * passes them on as the guest provides receive buffers.  Returns the bytes
 * taken (fewer than len when the buffer is full: try again later, when
 * virtio_console_input_room() is non-zero).  Both take the device lock. */
size_t virtio_console_input(struct virtio_dev *d, const void *buf, size_t len);
size_t virtio_console_input_room(struct virtio_dev *d);

/* Guest output bytes dropped for running past VIRTIO_CONSOLE_CHAIN_MAX. */
uint64_t virtio_console_dropped(struct virtio_dev *d);

/* Terminal size changed (only with VIRTIO_CONSOLE_F_SIZE). */
void virtio_console_resize(struct virtio_dev *d, uint16_t cols, uint16_t rows);

#endif
