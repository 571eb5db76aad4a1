/* qcow2 compressed clusters: deflate (zlib) and zstd, read and write. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "qcow2.h"

int qcow2_decompress(int type, const void *src, size_t slen, void *dst,
		     size_t dlen)
{
	if (type == 0) {
		z_stream z;
		int r;

		memset(&z, 0, sizeof(z));
		if (inflateInit2(&z, -15) != Z_OK)
			return -ENOMEM;
		z.next_in = (Bytef *)(uintptr_t)src;
		z.avail_in = (uInt)slen;
		z.next_out = dst;
		z.avail_out = (uInt)dlen;
		r = inflate(&z, Z_FINISH);
		inflateEnd(&z);
		if ((r != Z_STREAM_END && r != Z_BUF_ERROR && r != Z_OK) || z.avail_out)
			return -EIO;
		return 0;
	}
	if (type == 1) {
		ZSTD_DCtx *d = ZSTD_createDCtx();
		ZSTD_inBuffer in = { src, slen, 0 };
		ZSTD_outBuffer out = { dst, dlen, 0 };
		int ret = 0;

		if (!d)
			return -ENOMEM;
		while (out.pos < out.size) {
			size_t r = ZSTD_decompressStream(d, &out, &in);
			if (ZSTD_isError(r)) {
				ret = -EIO;
				break;
			}
			if (in.pos == in.size && out.pos < out.size) {
				ret = -EIO;
				break;
			}
		}
		ZSTD_freeDCtx(d);
		return ret;
	}
	return -ENOTSUP;
}

long qcow2_compress(int type, const void *src, size_t slen, void *dst,
		    size_t dcap)
{
	if (type == 0) {
		z_stream z;
		long n;

		memset(&z, 0, sizeof(z));
		if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		z.next_in = (Bytef *)(uintptr_t)src;
		z.avail_in = (uInt)slen;
		z.next_out = dst;
		z.avail_out = (uInt)dcap;
		n = deflate(&z, Z_FINISH) == Z_STREAM_END ? (long)(dcap - z.avail_out) : 0;
		deflateEnd(&z);
		return n;
	}
	if (type == 1) {
		size_t r = ZSTD_compress(dst, dcap, src, slen, 1);
		if (ZSTD_isError(r))
			return 0;
		return (long)r;
	}
	return -ENOTSUP;
}

int qcow2_read_compressed(struct qcow2 *q, uint64_t e, uint8_t *out)
{
	uint32_t x = 62 - (q->cluster_bits - 8);
	uint64_t hoff = e & ((1ull << x) - 1);
	uint64_t nsec = ((e & ~(QCOW2_OFLAG_COPIED | QCOW2_OFLAG_COMPRESSED)) >> x) + 1;
	uint64_t clen = nsec * 512 - (hoff & 511);
	int r;

	if (hoff == 0 || hoff >= q->file_end)
		return vimg_fail(q->img, -EIO,
			"compressed cluster at host offset %llu is outside the file; run 'vireo-img check'",
			(unsigned long long)hoff);
	if (clen > 2ull * q->cluster_size)
		clen = 2ull * q->cluster_size;
	if (hoff + clen > q->file_end)
		clen = q->file_end - hoff;
	r = vio_pread_zfill(q->fd, q->cbuf2, clen, (off_t)hoff);
	if (r < 0)
		return vimg_fail(q->img, r, "read: %s", strerror(-r));
	r = qcow2_decompress(q->compression, q->cbuf2, clen, out, q->cluster_size);
	if (r < 0)
		return vimg_fail(q->img, r,
			"compressed cluster at host offset %llu does not decompress (%s)",
			(unsigned long long)hoff, q->compression ? "zstd" : "zlib");
	return 0;
}

/* Store one cluster already compressed into cdata (clen bytes; 0 means it
 * did not compress: write buf plainly). */
static int store_compressed(struct qcow2 *q, const void *buf, const uint8_t *cdata,
			    long clen, uint64_t off);

int qcow2_write_compressed(struct qcow2 *q, const void *buf, uint64_t off)
{
	long clen;

	if (q->extl2)
		return vimg_fail(q->img, -ENOTSUP,
			"compressed writes to images with subclusters are not supported");
	clen = qcow2_compress(q->compression, buf, q->cluster_size, q->cbuf,
			      q->cluster_size - 1);
	return store_compressed(q, buf, q->cbuf, clen < 0 ? 0 : clen, off);
}

/*
 * A pool of compression threads kept for the life of the image: a batch is
 * posted, the caller works on it too, and waits only until every item is
 * done, so idle or late-scheduled workers never delay it.
 */
struct qcow2_cpool {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	const uint8_t *src;
	uint8_t *dst;
	long *lens;
	uint32_t cs;
	int type;
	size_t n, next, finished;
	bool stop;
	int nthreads;
	pthread_t th[8];
};

/* Take and run items of the current batch; called with mu held. */
static void cpool_run(struct qcow2_cpool *p)
{
	while (p->next < p->n) {
		size_t i = p->next++;
		pthread_mutex_unlock(&p->mu);
		long l = qcow2_compress(p->type, p->src + i * p->cs, p->cs,
					p->dst + i * p->cs, p->cs - 1);
		pthread_mutex_lock(&p->mu);
		p->lens[i] = l;
		if (++p->finished == p->n)
			pthread_cond_broadcast(&p->done);
	}
}

static void *cpool_worker(void *arg)
{
	struct qcow2_cpool *p = arg;

	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		if (p->next < p->n)
			cpool_run(p);
		else
			pthread_cond_wait(&p->work, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

void qcow2_cpool_free(struct qcow2 *q)
{
	struct qcow2_cpool *p = q->cpool;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	free(p);
	q->cpool = NULL;
}

static struct qcow2_cpool *cpool_get(struct qcow2 *q)
{
	struct qcow2_cpool *p = q->cpool;
	long ncpu;

	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	for (long t = 1; t < VIREO_MIN(ncpu, 8); t++) {
		if (pthread_create(&p->th[p->nthreads], NULL, cpool_worker, p) != 0)
			break;
		p->nthreads++;
	}
	q->cpool = p;
	return p;
}

int qcow2_write_compressed_many(struct qcow2 *q, const uint8_t *buf, size_t n,
				uint64_t off)
{
	struct qcow2_cpool *p;
	uint8_t *dst;
	long *lens;
	int r = 0;

	if (q->extl2)
		return vimg_fail(q->img, -ENOTSUP,
			"compressed writes to images with subclusters are not supported");
	p = cpool_get(q);
	dst = malloc(n * q->cluster_size);
	lens = calloc(n, sizeof(long));
	if (!p || !dst || !lens) {
		free(dst);
		free(lens);
		return -ENOMEM;
	}
	pthread_mutex_lock(&p->mu);
	p->src = buf;
	p->dst = dst;
	p->lens = lens;
	p->cs = q->cluster_size;
	p->type = q->compression;
	p->n = n;
	p->next = 0;
	p->finished = 0;
	pthread_cond_broadcast(&p->work);
	cpool_run(p);
	while (p->finished < p->n)
		pthread_cond_wait(&p->done, &p->mu);
	p->n = p->next = p->finished = 0;
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < n && r == 0; i++)
		r = store_compressed(q, buf + i * q->cluster_size, dst + i * q->cluster_size,
				     lens[i] < 0 ? 0 : lens[i], off + i * q->cluster_size);
	free(dst);
	free(lens);
	return r;
}

static int store_compressed(struct qcow2 *q, const void *buf, const uint8_t *cdata,
			    long clen, uint64_t off)
{
	uint32_t cb = q->cluster_bits, x = 62 - (cb - 8);
	uint32_t l1i = (uint32_t)(off >> (cb + q->l2_bits));
	uint32_t l2i = (uint32_t)((off >> cb) & (q->l2_entries - 1));
	uint64_t cs = q->cluster_size, hoff, nsec, e, old;
	uint8_t *t;
	int r;

	if (clen <= 0)
		return qcow2_write(q, buf, cs, off);
	r = qcow2_mark_dirty(q);
	if (r < 0)
		return r;
	hoff = q->comp_cursor;
	if (hoff && (hoff & (cs - 1)) && (hoff & ~(cs - 1)) + cs - hoff >= (uint64_t)clen) {
		/* Fits in the tail of the current cluster. */
		r = qcow2_refcount_update(q, hoff >> cb, 1);
		if (r < 0)
			return r;
	} else if (hoff && (hoff & (cs - 1)) &&
		   (((hoff >> cb) + 1) << cb) == q->file_end) {
		/* Spill into a new cluster right after the current one. */
		uint64_t n;
		r = qcow2_alloc_clusters(q, 1, &n);
		if (r < 0)
			return r;
		if (n == ((hoff >> cb) + 1) << cb) {
			r = qcow2_refcount_update(q, hoff >> cb, 1);
			if (r < 0)
				return r;
		} else {
			hoff = n;
		}
	} else {
		r = qcow2_alloc_clusters(q, 1, &hoff);
		if (r < 0)
			return r;
	}
	r = qcow2_pwrite(q, cdata, (size_t)clen, hoff);
	if (r < 0)
		return r;
	q->comp_cursor = hoff + (uint64_t)clen;
	nsec = ((hoff + (uint64_t)clen - 1) >> 9) - (hoff >> 9);
	e = QCOW2_OFLAG_COMPRESSED | (nsec << x) | hoff;
	r = qcow2_l2_prepare(q, l1i, &t);
	if (r < 0)
		return r;
	old = qcow2_l2_entry(q, t, l2i);
	if (old & (QCOW2_OFFSET_MASK | QCOW2_OFLAG_COMPRESSED)) {
		/* Drop the old references (done after the next flush). */
		uint64_t first, last;
		if (old & QCOW2_OFLAG_COMPRESSED) {
			uint64_t ho = old & ((1ull << x) - 1);
			uint64_t ns = ((old & ~(QCOW2_OFLAG_COPIED | QCOW2_OFLAG_COMPRESSED)) >> x) + 1;
			first = ho >> cb;
			last = ((ho & ~511ull) + ns * 512 - 1) >> cb;
		} else {
			first = last = (old & QCOW2_OFFSET_MASK) >> cb;
		}
		for (uint64_t c = first; c <= last; c++) {
			r = qcow2_free_later(q, c << cb, 1);
			if (r < 0)
				return r;
		}
	}
	qcow2_l2_set(q, t, l2i, e);
	return 0;
}
