/* Asynchronous requests: a small pool of worker threads per image runs
 * queued requests through the thread-safe synchronous calls (whose data I/O
 * proceeds in parallel for mapped clusters) and reports completion through
 * a callback, so a VMM can keep many requests in flight. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "img-priv.h"

struct aio_req {
	struct aio_req *next;
	enum vimg_aio_op op;
	void *buf;
	size_t len;
	uint64_t off;
	vimg_aio_cb cb;
	void *opaque;
};

struct vimg_aio {
	struct vimg *img;
	pthread_mutex_t mu;
	pthread_cond_t more, idle;
	struct aio_req *head, *tail;
	int nthreads, busy;
	bool stop;
	pthread_t *th;
};

static int run(struct vimg *img, struct aio_req *r)
{
	switch (r->op) {
	case VIMG_AIO_READ: return vimg_pread(img, r->buf, r->len, r->off);
	case VIMG_AIO_WRITE: return vimg_pwrite(img, r->buf, r->len, r->off);
	case VIMG_AIO_FLUSH: return vimg_flush(img);
	case VIMG_AIO_DISCARD: return vimg_discard(img, r->off, r->len);
	case VIMG_AIO_WRITE_ZEROES: return vimg_pwrite_zeroes(img, r->off, r->len);
	}
	return -EINVAL;
}

/* vireo-vmm's I/O-worker filter (vmm/filters.c); absent in other programs. */
extern void vireo_io_thread_start(void) __attribute__((weak));

static void *worker(void *arg)
{
	struct vimg_aio *a = arg;

	if (vireo_io_thread_start)
		vireo_io_thread_start();

	pthread_mutex_lock(&a->mu);
	for (;;) {
		struct aio_req *r;
		while (!a->head && !a->stop)
			pthread_cond_wait(&a->more, &a->mu);
		if (!a->head)
			break;
		r = a->head;
		a->head = r->next;
		if (!a->head)
			a->tail = NULL;
		a->busy++;
		pthread_mutex_unlock(&a->mu);
		r->cb(r->opaque, run(a->img, r));
		free(r);
		pthread_mutex_lock(&a->mu);
		if (--a->busy == 0 && !a->head)
			pthread_cond_broadcast(&a->idle);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int vimg_aio_start(struct vimg *img, int nthreads, struct vimg_aio **out)
{
	struct vimg_aio *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	if (nthreads < 1)
		nthreads = 4;
	if (nthreads > 64)
		nthreads = 64;
	a->img = img;
	a->th = calloc((size_t)nthreads, sizeof(*a->th));
	if (!a->th) {
		free(a);
		return -ENOMEM;
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->more, NULL);
	pthread_cond_init(&a->idle, NULL);
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&a->th[i], NULL, worker, a) != 0)
			break;
		a->nthreads++;
	}
	if (!a->nthreads) {
		vimg_aio_stop(a);
		return -EAGAIN;
	}
	*out = a;
	return 0;
}

int vimg_aio_submit(struct vimg_aio *a, enum vimg_aio_op op, void *buf,
		    size_t len, uint64_t off, vimg_aio_cb cb, void *opaque)
{
	struct aio_req *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	*r = (struct aio_req){ .op = op, .buf = buf, .len = len, .off = off,
			       .cb = cb, .opaque = opaque };
	pthread_mutex_lock(&a->mu);
	if (a->stop) {
		pthread_mutex_unlock(&a->mu);
		free(r);
		return -ESHUTDOWN;
	}
	if (a->tail)
		a->tail->next = r;
	else
		a->head = r;
	a->tail = r;
	pthread_cond_signal(&a->more);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

void vimg_aio_drain(struct vimg_aio *a)
{
	pthread_mutex_lock(&a->mu);
	while (a->head || a->busy)
		pthread_cond_wait(&a->idle, &a->mu);
	pthread_mutex_unlock(&a->mu);
}

void vimg_aio_stop(struct vimg_aio *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_broadcast(&a->more);
	pthread_mutex_unlock(&a->mu);
	for (int i = 0; i < a->nthreads; i++)
		pthread_join(a->th[i], NULL);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->more);
	pthread_cond_destroy(&a->idle);
	free(a->th);
	free(a);
}
