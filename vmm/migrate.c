#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <vireo/util.h>

#include "filters.h"
#include "memory.h"
#include "migrate.h"
#include "migstream.h"
#include "sandbox.h"
#include "snapshot.h"
#include "state.h"
#include "virtio/blk.h"
#include "virtio/blk_backend.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"
#include "vm.h"

/* ---- source ------------------------------------------------------------------ */

/*
 * mig.lock is a leaf (vmm/README.md's lock order): it guards the job and
 * the status, and is never held across a send, a vm_call or a pause.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, quit;
	struct vm *vm;              /* the job's VM, NULL when idle */
	bool job;                   /* a job waits for the thread */
	struct migrate_params params;
	struct migrate_status st;
	int fd;                     /* the connection, -1 */
	atomic_bool cancel;
} mig = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .fd = -1 };

/* Records sent together: a round's scattered pages would otherwise cost
 * a sendmsg each (in the lab, most of the stop-and-copy's sending). */
#define MIG_BATCH_RECORDS 64u
#define MIG_BATCH_BYTES (1u << 20)
struct mig_batch {
	struct mig_rec_hdr h[MIG_BATCH_RECORDS];
	struct mig_pages_hdr ph[MIG_BATCH_RECORDS];
	struct iovec iov[3 * MIG_BATCH_RECORDS];
	unsigned n, niov;
	size_t bytes;
};

/* One job's working set. */
struct mig_job {
	struct vm *vm;
	int fd;
	/* Dirty pages per region not sent yet, and KVM's last log. */
	unsigned long *bitmap[GMEM_MAX_REGIONS], *log[GMEM_MAX_REGIONS];
	bool logging;
	bool devlog;                /* the VMM's own dirty log (gmem.h) is on */
	bool manual;                /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 on */
	uint64_t start_ns, sent, cap_bps;
	uint64_t left;              /* bytes of this pass not sent yet */
	/* Auto-converge: the vCPUs are paused this share of every
	 * MIG_THROTTLE_PERIOD_MS while pages are sent. */
	unsigned throttle;          /* percent, 0: not throttled */
	uint64_t throttle_next_ns;
	unsigned max_rounds;
	struct mig_batch batch;     /* PAGES and ZERO records not sent yet */
	char err[256];
};

#define MIG_THROTTLE_PERIOD_MS 100u
#define MIG_THROTTLE_STEP 20u
#define MIG_THROTTLE_MAX 80u

static int mig_fail(struct mig_job *j, int e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int mig_fail(struct mig_job *j, int e, const char *fmt, ...)
{
	va_list ap;

	if (j->err[0])
		return e;   /* the first reason stays */
	va_start(ap, fmt);
	vsnprintf(j->err, sizeof(j->err), fmt, ap);
	va_end(ap);
	return e;
}

static void mig_update(void (*fn)(struct migrate_status *s, void *arg), void *arg)
{
	pthread_mutex_lock(&mig.lock);
	fn(&mig.st, arg);
	pthread_mutex_unlock(&mig.lock);
}

static void mig_add_sent(struct migrate_status *s, void *arg)
{
	const struct mig_job *j = arg;

	s->bytes_sent = j->sent;
	s->bytes_remaining = j->left;
}

int migrate_connect(const char *uri, char *err, size_t errlen)
{
	int fd = -1;

	if (!strncmp(uri, "unix:", 5)) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };

		if (strlen(uri + 5) >= sizeof(a.sun_path)) {
			snprintf(err, errlen, "%s: path too long", uri);
			return -ENAMETOOLONG;
		}
		strcpy(a.sun_path, uri + 5);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			int e = errno;

			snprintf(err, errlen, "cannot connect to %s: %s", uri, strerror(e));
			if (fd >= 0)
				close(fd);
			return -e;
		}
	} else if (!strncmp(uri, "tcp:", 4)) {
		char host[256];
		const char *c = strrchr(uri + 4, ':');
		struct sockaddr_storage ss;
		socklen_t sl;
		unsigned long port;
		char *end;

		if (!c || c == uri + 4 || (size_t)(c - (uri + 4)) >= sizeof(host)) {
			snprintf(err, errlen, "%s: use tcp:ADDR:PORT", uri);
			return -EINVAL;
		}
		memcpy(host, uri + 4, (size_t)(c - (uri + 4)));
		host[c - (uri + 4)] = 0;
		port = strtoul(c + 1, &end, 10);
		if (!c[1] || *end || !port || port > 65535) {
			snprintf(err, errlen, "%s: port out of range", uri);
			return -EINVAL;
		}
		/* Numeric addresses only: no resolver behind the filter. */
		memset(&ss, 0, sizeof(ss));
		if (host[0] == '[' && host[strlen(host) - 1] == ']') {
			struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;

			host[strlen(host) - 1] = 0;
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons((uint16_t)port);
			if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
				goto bad_addr;
			sl = sizeof(*a6);
		} else {
			struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;

			a4->sin_family = AF_INET;
			a4->sin_port = htons((uint16_t)port);
			if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
				goto bad_addr;
			sl = sizeof(*a4);
		}
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) < 0) {
			int e = errno;

			snprintf(err, errlen, "cannot connect to %s: %s", uri, strerror(e));
			if (fd >= 0)
				close(fd);
			return -e;
		}
	} else {
		snprintf(err, errlen, "%s: use tcp:ADDR:PORT or unix:PATH", uri);
		return -EINVAL;
	}
	return fd;
bad_addr:
	snprintf(err, errlen, "%s: not a numeric IPv4 or [IPv6] address", uri);
	return -EINVAL;
}

/* TCP: each record and answer goes out as it is written (the small ones
 * at a round's end and at the switch-over would otherwise wait for a
 * delayed ACK); not TCP: nothing to do. */
static void mig_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static uint64_t mig_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleep @ns, in slices of at most 50 ms: a cancel is seen soon. */
static void mig_sleep(uint64_t ns)
{
	uint64_t end = vtime_ns() + ns, now;

	while ((now = vtime_ns()) < end && !atomic_load(&mig.cancel)) {
		uint64_t d = end - now < 50000000u ? end - now : 50000000u;
		struct timespec ts = { 0, (long)d };

		nanosleep(&ts, NULL);
	}
}

/* Auto-converge: once per period, park the vCPUs for the throttle's share
 * of it (not when the VM was paused already). */
static void mig_throttle(struct mig_job *j)
{
	uint64_t now = vtime_ns(), period = MIG_THROTTLE_PERIOD_MS * 1000000ull;

	if (!j->throttle || now < j->throttle_next_ns)
		return;
	if (vm_pause(j->vm, 1000) == 0) {
		mig_sleep(period * j->throttle / 100);
		vm_resume(j->vm);
	}
	j->throttle_next_ns = vtime_ns() + period * (100 - j->throttle) / 100;
}

/* Send @iov whole, within the bandwidth cap; a cancel or a failed send
 * fails it. */
static int mig_send(struct mig_job *j, struct iovec *iov, int n)
{
	size_t total = 0;

	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	while (n > 0) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w;

		if (atomic_load(&mig.cancel))
			return mig_fail(j, -ECANCELED, "cancelled");
		w = sendmsg(j->fd, &m, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;

			if (atomic_load(&mig.cancel))
				return mig_fail(j, -ECANCELED, "cancelled");
			return mig_fail(j, -e, "the connection to the target failed: %s",
					e == EAGAIN ? "no progress for 20 s" : strerror(e));
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	j->sent += total;
	mig_update(mig_add_sent, j);
	mig_throttle(j);
	if (j->cap_bps) {
		/* Sleep until the average rate is within the cap. */
		uint64_t due = j->start_ns + j->sent * 1000000000ull / j->cap_bps;
		uint64_t now = vtime_ns();

		if (due > now)
			mig_sleep(due - now);
	}
	return 0;
}

static int mig_send_record(struct mig_job *j, enum mig_rec type, const void *p, uint32_t len)
{
	struct mig_rec_hdr h;
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)p, len } };

	mig_rec_hdr_make(&h, type, p, len);
	return mig_send(j, iov, len ? 2 : 1);
}

/* Send the batch's records (one sendmsg, as mig_send goes). */
static int mig_flush(struct mig_job *j)
{
	struct mig_batch *b = &j->batch;
	int e = b->niov ? mig_send(j, b->iov, (int)b->niov) : 0;

	b->n = b->niov = 0;
	b->bytes = 0;
	return e;
}

/* A PAGES record of @ph->count pages from @data, or (@data NULL) a ZERO
 * record, into the batch; the batch goes once it is full.  Guest RAM is
 * read when it goes: a page written after the round's log was taken is
 * in the next round's. */
static int mig_batch_add(struct mig_job *j, const struct mig_pages_hdr *ph, const uint8_t *data)
{
	struct mig_batch *b = &j->batch;
	unsigned k = b->n++;
	size_t dlen = data ? (size_t)ph->count * MIG_PAGE : 0;

	b->ph[k] = *ph;
	mig_rec_hdr_make(&b->h[k], data ? MIG_REC_PAGES : MIG_REC_ZERO, &b->ph[k],
			 (uint32_t)(sizeof(*ph) + dlen));
	b->iov[b->niov++] = (struct iovec){ &b->h[k], sizeof(b->h[k]) };
	b->iov[b->niov++] = (struct iovec){ &b->ph[k], sizeof(b->ph[k]) };
	if (data)
		b->iov[b->niov++] = (struct iovec){ (void *)data, dlen };
	b->bytes += sizeof(b->h[k]) + sizeof(*ph) + dlen;
	return b->n == MIG_BATCH_RECORDS || b->bytes >= MIG_BATCH_BYTES ? mig_flush(j) : 0;
}

static bool mig_zero_page(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (unsigned i = 0; i < MIG_PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Pages [@first, @first + @count) of region @ri: runs of zero pages as
 * ZERO records, the rest as PAGES records sent straight from guest RAM
 * (a page the guest writes meanwhile is in the next round's dirty log). */
static int mig_send_run(struct mig_job *j, unsigned ri, uint64_t first, unsigned count,
			struct migrate_status *acc)
{
	const struct gmem_region *r = &j->vm->mem.region[ri];
	uint8_t *base = r->hva + first * MIG_PAGE;
	unsigned i = 0;
	bool zero = count && mig_zero_page(base);
	int e = 0;

	while (i < count && !e) {
		struct mig_pages_hdr ph;
		unsigned n = 1;
		bool next = false;

		/* The run: up to the first page of the other kind. */
		while (i + n < count && (next = mig_zero_page(base + (size_t)(i + n) * MIG_PAGE)) == zero)
			n++;
		ph = (struct mig_pages_hdr){ .gpa = r->gpa + (first + i) * MIG_PAGE, .count = n };
		j->left -= VIREO_MIN(j->left, (uint64_t)n * MIG_PAGE);
		e = mig_batch_add(j, &ph, zero ? NULL : base + (size_t)i * MIG_PAGE);
		if (zero)
			acc->zero_pages += n;
		else
			acc->pages += n;
		i += n;
		zero = next;
	}
	return e;
}

static uint64_t mig_region_pages(const struct gmem_region *r)
{
	return r->size / MIG_PAGE;
}

static uint64_t mig_count_dirty(struct mig_job *j);

/* Send the pages set in the bitmaps (all of them with @all). */
static int mig_send_dirty(struct mig_job *j, bool all, struct migrate_status *acc)
{
	j->left = all ? j->vm->mem.ram_size : mig_count_dirty(j) * MIG_PAGE;
	j->batch.n = j->batch.niov = 0;
	j->batch.bytes = 0;
	for (unsigned ri = 0; ri < j->vm->mem.nr_regions; ri++) {
		const struct gmem_region *r = &j->vm->mem.region[ri];
		uint64_t np = mig_region_pages(r), p = 0;

		while (p < np) {
			unsigned n = 0;
			int e;

			if (!all && !(j->bitmap[ri][p / 64] >> (p % 64))) {
				p += 64 - p % 64;   /* nothing more in this word */
				continue;
			}
			if (!all && !(j->bitmap[ri][p / 64] & (1ull << (p % 64)))) {
				p++;
				continue;
			}
			while (p + n < np && n < MIG_MAX_PAGES &&
			       (all || (j->bitmap[ri][(p + n) / 64] & (1ull << ((p + n) % 64)))))
				n++;
			e = mig_send_run(j, ri, p, n, acc);
			if (e)
				return e;
			p += n;
		}
	}
	return mig_flush(j);
}

/* ---- dirty logging, on the event loop (vm_call) ---- */

static int mig_set_logging(struct vm *vm, bool on)
{
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i, .guest_phys_addr = vm->mem.region[i].gpa,
			.memory_size = vm->mem.region[i].size,
			.userspace_addr = (uintptr_t)vm->mem.region[i].hva,
			.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return -errno;
	}
	return 0;
}

/* Manual protection: KVM_GET_DIRTY_LOG only reads the log, and the
 * pages are write-protected again by KVM_CLEAR_DIRTY_LOG (not all of the
 * slot at once under the mmu lock, as the plain form does). */
static bool mig_set_manual(struct vm *vm, bool on)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };

	cap.args[0] = on ? KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE : 0;
	return ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
}

static int mig_loop_log_on(struct vm *vm, void *arg)
{
	struct mig_job *j = arg;
	int r = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

	j->manual = r > 0 && (r & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) && mig_set_manual(vm, true);
	r = mig_set_logging(vm, true);
	if (r && j->manual)
		mig_set_manual(vm, false);
	return r;
}

static int mig_loop_log_off(struct vm *vm, void *arg)
{
	struct mig_job *j = arg;
	int r = mig_set_logging(vm, false);

	if (j->manual)
		mig_set_manual(vm, false);
	return r;
}

/* Add the pages dirtied since the last call to the bitmaps of those to
 * send (KVM clears its log and write-protects them again). */
static int mig_get_dirty(struct vm *vm, struct mig_job *j)
{
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		struct kvm_dirty_log d = { .slot = i, .dirty_bitmap = j->log[i] };
		uint64_t words = (vm->mem.region[i].size / MIG_PAGE + 63) / 64;

		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &d) < 0)
			return -errno;
		if (j->manual) {
			struct kvm_clear_dirty_log c = {
				.slot = i, .first_page = 0,
				.num_pages = (uint32_t)(vm->mem.region[i].size / MIG_PAGE),
				.dirty_bitmap = j->log[i],
			};

			if (ioctl(vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &c) < 0)
				return -errno;
		}
		for (uint64_t w = 0; w < words; w++)
			j->bitmap[i][w] |= j->log[i][w];
		if (j->devlog) {
			/* The devices' writes: taken (and cleared) before the
			 * pages are read, so a later write marks them again. */
			uint64_t *b = vm->mem.dirty->bits[i];

			for (uint64_t w = 0; w < words; w++)
				if (__atomic_load_n(&b[w], __ATOMIC_RELAXED))
					j->bitmap[i][w] |= __atomic_exchange_n(&b[w], 0,
									       __ATOMIC_ACQUIRE);
		}
	}
	return 0;
}

/* The VMM's dirty log on (cleared first) or off. */
static void mig_devlog(struct mig_job *j, bool on)
{
	struct gmem_dirty *d = j->vm->mem.dirty;

	if (!d)
		return;
	if (on)
		for (unsigned i = 0; i < j->vm->mem.nr_regions; i++)
			memset(d->bits[i], 0, (mig_region_pages(&j->vm->mem.region[i]) + 63) / 64 * 8);
	__atomic_store_n(&d->on, on, __ATOMIC_SEQ_CST);
	j->devlog = on;
}

/* The pages in the bitmaps were sent. */
static void mig_clear_dirty(struct mig_job *j)
{
	for (unsigned i = 0; i < j->vm->mem.nr_regions; i++)
		memset(j->bitmap[i], 0, (j->vm->mem.region[i].size / MIG_PAGE + 63) / 64 * 8);
}

static int mig_loop_dirty(struct vm *vm, void *arg)
{
	return mig_get_dirty(vm, arg);
}

/*
 * Paused: the state, then the pages dirtied up to now (the disks' drain
 * may write guest RAM), on the event loop, which then stays held until
 * the migration thread has sent those pages (mig_final_release).  Paused
 * vCPUs do not stop the devices: a frame from a tap, say, is written into
 * guest RAM and a used ring by the loop.  Once the state is taken, no
 * device may write guest RAM before the last page is read, or the target
 * gets RAM that says a device did more than its state says (the guest
 * then finds buffers used that the device will use again).
 */
struct mig_final {
	struct mig_job *j;
	struct vstate_writer w;
	pthread_mutex_t lock;       /* a leaf */
	pthread_cond_t cond;
	bool released;
};

static int mig_loop_final(struct vm *vm, void *arg)
{
	struct mig_final *f = arg;
	int e = snapshot_state(vm, &f->w, f->j->err, sizeof(f->j->err));

	if (e)
		return e;
	if (f->j->logging) {
		e = mig_get_dirty(vm, f->j);
		if (e)
			return mig_fail(f->j, e, "KVM_GET_DIRTY_LOG: %s", strerror(-e));
	}
	/* Answer, and hold the loop until the pages are sent. */
	vm_call_answer(vm, 0);
	pthread_mutex_lock(&f->lock);
	while (!f->released)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* The migration thread: the loop may go on (idempotent). */
static void mig_final_release(struct mig_final *f)
{
	pthread_mutex_lock(&f->lock);
	f->released = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/*
 * Shared storage: the writable disks' locks go to the target at the
 * switch-over.  On the event loop, paused, the disks drained by
 * snapshot_state: @on false flushes each writable disk and releases its
 * lock (all or none: a failure takes back the ones released), @on true
 * takes them back (those it can; the first error is returned).
 */
struct mig_disks {
	struct mig_job *j;
	bool on;
	unsigned count;             /* writable disks handed over */
	char err[300];
};

static int mig_disks_lock(struct vm *vm, struct mig_disks *d, unsigned upto, bool on)
{
	int first = 0;

	d->count = 0;
	for (unsigned i = 0; i < vm->dev.nr_virtio && i < upto; i++) {
		struct virtio_dev *vd = virtio_pci_vdev(vm->dev.virtio[i]);
		struct blk_backend *be;
		char err[300];
		int e;

		if (vd->ops->device_id != VIRTIO_ID_BLOCK)
			continue;
		be = virtio_blk_backend(vd);
		if (!be || be->read_only || !be->ops->lock)
			continue;
		e = be->ops->lock(be, on, err, sizeof(err));
		if (!e) {
			d->count++;
			continue;
		}
		if (!first) {
			first = e;
			snprintf(d->err, sizeof(d->err), "%s", err);
		}
		if (!on) {
			mig_disks_lock(vm, d, i, true);
			return first;
		}
	}
	return first;
}

static int mig_loop_disks(struct vm *vm, void *arg)
{
	struct mig_disks *d = arg;

	return mig_disks_lock(vm, d, ~0u, d->on);
}

/* vm_call, again while another request (the API's) holds it. */
static int mig_call(struct vm *vm, int (*fn)(struct vm *vm, void *arg), void *arg)
{
	for (;;) {
		int e = vm_call(vm, fn, arg);
		struct timespec ts = { 0, 2000000 };

		if (e != -EBUSY || fn == NULL)
			return e;
		nanosleep(&ts, NULL);
	}
}

static uint64_t mig_count_dirty(struct mig_job *j)
{
	uint64_t n = 0;

	for (unsigned ri = 0; ri < j->vm->mem.nr_regions; ri++) {
		uint64_t words = (mig_region_pages(&j->vm->mem.region[ri]) + 63) / 64;

		for (uint64_t w = 0; w < words; w++)
			n += (uint64_t)__builtin_popcountll(j->bitmap[ri][w]);
	}
	return n;
}

struct mig_round_info {
	uint64_t remaining, rounds, dirty_rate, bandwidth, expected_ms, pages, zero_pages;
	unsigned throttle;
};

static void mig_set_round(struct migrate_status *s, void *arg)
{
	const struct mig_round_info *i = arg;

	s->bytes_remaining = i->remaining;
	s->rounds = i->rounds;
	s->dirty_rate = i->dirty_rate;
	s->bandwidth = i->bandwidth;
	s->expected_downtime_ms = i->expected_ms;
	s->pages = i->pages;
	s->zero_pages = i->zero_pages;
	s->throttle_percent = i->throttle;
}

/* Read @len bytes from the target within @timeout_ms: 0, -ECANCELED,
 * -ETIMEDOUT, -ECONNRESET (closed) or -errno. */
static int mig_recv(struct mig_job *j, void *buf, size_t len, uint64_t timeout_ms)
{
	size_t got = 0;
	uint64_t end = vtime_ns() + timeout_ms * 1000000ull;

	while (got < len) {
		struct pollfd p = { j->fd, POLLIN, 0 };
		uint64_t now = vtime_ns();
		ssize_t n;
		int r;

		if (atomic_load(&mig.cancel))
			return -ECANCELED;
		if (now >= end)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)((end - now) / 1000000u) + 1);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		n = recvfrom(j->fd, (uint8_t *)buf + got, len - got, 0, NULL, NULL);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return atomic_load(&mig.cancel) ? -ECANCELED : -errno;
		if (n > 0)
			got += (size_t)n;
	}
	return 0;
}

/* Wait for the target's 8-byte answer @want (READY, SYNCED), its reasons
 * for failing worded with @waiting (what the target did not do in time),
 * @before (when it closed the connection) and @wrong (another answer). */
static int mig_expect(struct mig_job *j, const char *want, const char *waiting,
		      const char *before, const char *wrong)
{
	char b[8];
	int e = mig_recv(j, b, sizeof(b), MIGRATE_READY_TIMEOUT_MS);

	if (e == -ECANCELED)
		return mig_fail(j, e, "cancelled");
	if (e == -ETIMEDOUT)
		return mig_fail(j, e, "the target did not %s within %u s", waiting,
				MIGRATE_READY_TIMEOUT_MS / 1000);
	if (e == -ECONNRESET)
		return mig_fail(j, e, "the target closed the connection%s (see its log)", before);
	if (e)
		return mig_fail(j, e, "the connection to the target failed: %s", strerror(-e));
	if (memcmp(b, want, sizeof(b)))
		return mig_fail(j, -EPROTO, "the target answered %s", wrong);
	return 0;
}

/* Wait for the target's READY. */
static int mig_wait_ready(struct mig_job *j)
{
	return mig_expect(j, MIG_READY, "say it was ready", " before it was ready",
			  "something else than READY");
}

/* After a round: a SYNC, then the target's answer once it has taken in
 * the round (what is still in the sockets' buffers would otherwise count
 * as sent, and land in the downtime). */
static int mig_sync(struct mig_job *j)
{
	int e = mig_send_record(j, MIG_REC_SYNC, NULL, 0);

	return e ? e : mig_expect(j, MIG_SYNCED, "take in a round", "",
				  "a round with something else");
}

/* After GO: the target's downtime (MIG_DONE), or false when it did not
 * send it in time or sent something else (the source's figure stands). */
static bool mig_target_downtime(struct mig_job *j, uint64_t *ms)
{
	uint8_t b[16];
	uint64_t v;

	if (mig_recv(j, b, sizeof(b), MIGRATE_DONE_TIMEOUT_MS) || memcmp(b, MIG_DONE, 8))
		return false;
	memcpy(&v, b + 8, sizeof(v));
	v = le64toh(v);
	if (v > 24ull * 3600 * 1000)   /* not a downtime: a bad clock or target */
		return false;
	*ms = v;
	return true;
}

/*
 * The migration failed after the disks were released: the target may
 * have opened them (it exits without GO once the connection closes).
 * Take the locks back, waiting for it up to MIGRATE_READY_TIMEOUT_MS;
 * the VM then runs on (the target never runs without GO).
 */
static void mig_retake_disks(struct mig_job *j, struct mig_disks *d)
{
	uint64_t end = vtime_ns() + MIGRATE_READY_TIMEOUT_MS * 1000000ull;
	int e;

	if (j->fd >= 0)
		shutdown(j->fd, SHUT_RDWR);
	d->on = true;
	while ((e = mig_call(j->vm, mig_loop_disks, d)) == -EBUSY && vtime_ns() < end) {
		struct timespec ts = { 0, 100000000 };

		nanosleep(&ts, NULL);
	}
	if (e)
		verr("migration: cannot take the disks back: %s: the VM runs on without "
		     "the lock", d->err);
	else
		vinfo("migration: took the locks of %u writable disk%s back", d->count,
		      d->count == 1 ? "" : "s");
}

/* A device whose data path runs in the host kernel (vhost-vsock, a
 * virtio-net on vhost-net): the kernel writes guest RAM behind both dirty
 * logs, so such a VM is not migrated live.  Its name, or NULL. */
static const char *mig_vhost_device(struct vm *vm)
{
	for (unsigned i = 0; i < vm->dev.nr_virtio; i++) {
		struct virtio_dev *vd = virtio_pci_vdev(vm->dev.virtio[i]);
		uint16_t id = vd->ops->device_id;

		if (id == VIRTIO_ID_VSOCK || (id == VIRTIO_ID_NET && virtio_net_vhost_active(vd)))
			return vd->name;
	}
	return NULL;
}

/*
 * One migration.  Returns 0 when the target took over (the VM is asked to
 * stop), else -errno with j->err set; the VM then runs as before.
 */
static int mig_run(struct mig_job *j, const struct migrate_params *p, uint64_t *downtime_ms)
{
	struct vm *vm = j->vm;
	struct mig_hdr h = { .version = MIG_VERSION };
	struct iovec iov = { &h, sizeof(h) };
	struct vstate_config cfg;
	struct mig_round_info ri = { 0 };
	struct migrate_status acc = { 0 };
	struct mig_final f = { .j = j, .lock = PTHREAD_MUTEX_INITIALIZER,
			       .cond = PTHREAD_COND_INITIALIZER };
	struct mig_disks disks = { .j = j };
	uint64_t pause_ns, pause_rt, sent_ns, last_pages, limit_ns = vtime_ns() + MIGRATE_MAX_SECONDS * 1000000000ull;
	bool paused_here = false, released = false;
	int e;

	memcpy(h.magic, MIG_MAGIC, sizeof(h.magic));
	vstate_writer_init(&f.w);
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		j->bitmap[i] = calloc((mig_region_pages(&vm->mem.region[i]) + 63) / 64, 8);
		j->log[i] = calloc((mig_region_pages(&vm->mem.region[i]) + 63) / 64, 8);
		if (!j->bitmap[i] || !j->log[i])
			return mig_fail(j, -ENOMEM, "out of memory");
	}
	{
		const char *vh = mig_vhost_device(vm);

		if (vh)
			return mig_fail(j, -ENOTSUP, "%s runs its data path in the host kernel "
					"(vhost), whose writes to guest RAM are not tracked: "
					"live migration is not supported with it", vh);
	}
	if (memory_dirty_alloc(&vm->mem))
		return mig_fail(j, -ENOMEM, "out of memory");
	/* In the sandbox (a network namespace and a root of its own) the
	 * connector process opens the connection outside (sandbox.h). */
	e = sandbox_active() ? sandbox_connect(p->uri, j->err, sizeof(j->err))
			     : migrate_connect(p->uri, j->err, sizeof(j->err));
	if (e < 0)
		return e;
	{
		struct timeval tv = { .tv_sec = MIGRATE_SEND_TIMEOUT_S };

		setsockopt(e, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		mig_nodelay(e);
	}
	pthread_mutex_lock(&mig.lock);
	j->fd = mig.fd = e;
	pthread_mutex_unlock(&mig.lock);
	if (atomic_load(&mig.cancel))
		return mig_fail(j, -ECANCELED, "cancelled");
	snapshot_config(vm, &cfg);
	e = mig_send(j, &iov, 1);
	if (!e)
		e = mig_send_record(j, MIG_REC_CONFIG, &cfg, sizeof(cfg));
	if (e)
		return e;
	/* Pages the VMM's virtio devices write (used rings, a disk's reads,
	 * received frames) are not in KVM's log: they mark them in the VMM's
	 * own log (gmem.h), merged into every round's and the final count. */
	{
		bool devlog = true;

#ifdef VIREO_TEST_HOOKS
		/* Tests: show what goes wrong without it (migrate-blk.sh). */
		if (getenv("VIREO_TEST_MIGRATE_NO_DEVICE_LOG"))
			devlog = false;
#endif
		if (devlog)
			mig_devlog(j, true);
		e = mig_call(vm, mig_loop_log_on, j);
		if (e)
			return mig_fail(j, e, "cannot turn on dirty logging: %s", strerror(-e));
		j->logging = true;
		vdebug("migration: dirty log %s", j->manual ? "with manual protection "
		       "(KVM_CLEAR_DIRTY_LOG)" : "plain (KVM_GET_DIRTY_LOG clears it)");
		/* Round 1: everything. */
		uint64_t t0 = vtime_ns(), s0 = j->sent, t_sent;

		vdebug("migration: dirty logging on at %llu ms",
		       (unsigned long long)((t0 - j->start_ns) / 1000000u));
		e = mig_send_dirty(j, true, &acc);
		uint64_t prev_bytes = UINT64_MAX / 16;

		for (;;) {
			uint64_t t1, dirty, bytes;

			t_sent = vtime_ns();
			if (!e)
				e = mig_sync(j);
			if (e)
				return e;
			t1 = vtime_ns();
			ri.rounds++;
			if (t1 > t0 && j->sent > s0)
				ri.bandwidth = (j->sent - s0) * 1000000000ull / (t1 - t0);
			if (!ri.bandwidth)
				ri.bandwidth = 1;
			e = mig_call(vm, mig_loop_dirty, j);
			if (e)
				return mig_fail(j, e, "KVM_GET_DIRTY_LOG: %s", strerror(-e));
			dirty = mig_count_dirty(j);
			bytes = dirty * MIG_PAGE;
			ri.remaining = bytes;
			ri.dirty_rate = t1 > t0 ? bytes * 1000000000ull / (t1 - t0) : 0;
			ri.expected_ms = bytes * 1000ull / ri.bandwidth;
			ri.pages = acc.pages;
			ri.zero_pages = acc.zero_pages;
			mig_update(mig_set_round, &ri);
			vdebug("migration round %llu (at %llu ms, its last byte sent %llu ms "
			       "before the target took it in): %llu MiB sent, %llu dirty pages, "
			       "%llu MiB/s, expected downtime %llu ms", (unsigned long long)ri.rounds,
			       (unsigned long long)((t1 - j->start_ns) / 1000000u),
			       (unsigned long long)((t1 - t_sent) / 1000000u),
			       (unsigned long long)(j->sent >> 20),
			       (unsigned long long)dirty, (unsigned long long)(ri.bandwidth >> 20),
			       (unsigned long long)ri.expected_ms);
			if (ri.expected_ms <= p->downtime_ms)
				break;
			if (ri.rounds >= j->max_rounds || t1 >= limit_ns)
				return mig_fail(j, -ETIMEDOUT, "did not converge after %llu rounds "
						"(%llu s): the guest dirties %llu MiB/s, the link "
						"moves %llu MiB/s, %llu MiB left (downtime limit %u ms, "
						"vCPUs throttled %u%%)",
						(unsigned long long)ri.rounds,
						(unsigned long long)((t1 - j->start_ns) / 1000000000ull),
						(unsigned long long)(ri.dirty_rate >> 20),
						(unsigned long long)(ri.bandwidth >> 20),
						(unsigned long long)(bytes >> 20), p->downtime_ms,
						j->throttle);
			/* Auto-converge: from the second round on, a remaining set
			 * that does not shrink by a tenth throttles the vCPUs more. */
			if (ri.rounds >= 2 && bytes * 10 > prev_bytes * 9 &&
			    j->throttle < MIG_THROTTLE_MAX) {
				j->throttle += MIG_THROTTLE_STEP;
				ri.throttle = j->throttle;
				mig_update(mig_set_round, &ri);
				vinfo("migration: not converging (%llu MiB left after round %llu): "
				      "vCPUs throttled %u%%", (unsigned long long)(bytes >> 20),
				      (unsigned long long)ri.rounds, j->throttle);
			}
			prev_bytes = bytes;
			t0 = t1;
			s0 = j->sent;
			e = mig_send_dirty(j, false, &acc);
			mig_clear_dirty(j);
		}
	}
	/* Stop and copy: the vCPUs park, the state is taken, the rest goes. */
	vdebug("migration: stop and copy at %llu ms",
	       (unsigned long long)((vtime_ns() - j->start_ns) / 1000000u));
	j->throttle = 0;
	e = vm_pause(vm, 5000);
	if (e && e != -EALREADY)
		return mig_fail(j, e, "cannot pause the VM: %s", strerror(-e));
	paused_here = e == 0;
	pause_ns = vtime_ns();
	pause_rt = mig_realtime_ns();
	/* The loop stays held from the state's taking until the last page is
	 * read (mig_loop_final). */
	e = mig_call(vm, mig_loop_final, &f);
	if (e) {
		mig_fail(j, e, "cannot take the state: %s", strerror(-e));
		goto resume;
	}
#ifdef VIREO_TEST_HOOKS
	/* Tests: time for a device to write guest RAM, were the loop not held
	 * (migrate-net.sh). */
	if (getenv("VIREO_TEST_MIGRATE_FINAL_DELAY_MS"))
		mig_sleep((uint64_t)atoi(getenv("VIREO_TEST_MIGRATE_FINAL_DELAY_MS")) * 1000000ull);
#endif
	last_pages = mig_count_dirty(j);
	e = mig_send_dirty(j, false, &acc);
	mig_final_release(&f);
	if (!e)
		e = mig_send_record(j, MIG_REC_STATE, f.w.buf, (uint32_t)f.w.len);
	if (!e) {
		/* The target opens the disks once it has the END: the source
		 * lets go of them first (flushed), and takes them back if the
		 * migration fails from here on. */
		e = mig_call(vm, mig_loop_disks, &disks);
		if (e)
			mig_fail(j, e, "cannot hand the disks over: %s", disks.err);
		else if (disks.count) {
			released = true;
			vinfo("migration: released the locks of %u writable disk%s for the "
			      "target", disks.count, disks.count == 1 ? "" : "s");
		}
	}
	if (!e) {
		/* The target's downtime runs from here (CLOCK_REALTIME: one
		 * host, or clocks in step). */
		uint64_t stop = htole64(pause_rt);

		e = mig_send_record(j, MIG_REC_STOP, &stop, sizeof(stop));
	}
	if (!e)
		e = mig_send_record(j, MIG_REC_END, NULL, 0);
	sent_ns = vtime_ns();
	if (!e)
		e = mig_wait_ready(j);
	if (!e) {
		/* The point of no return: once GO is on its way the target
		 * runs the guest, and this copy must never run again. */
		struct iovec go = { (void *)MIG_GO, 8 };

		e = mig_send(j, &go, 1);
		if (!e) {
			uint64_t own = (vtime_ns() - pause_ns) / 1000000u;

			if (mig_target_downtime(j, downtime_ms)) {
				vinfo("migration: the target's vCPUs run %llu ms after the source's "
				      "stopped (%llu ms here up to GO: %llu pages and the state "
				      "sent in %llu ms, then the target's READY)",
				      (unsigned long long)*downtime_ms, (unsigned long long)own,
				      (unsigned long long)last_pages,
				      (unsigned long long)((sent_ns - pause_ns) / 1000000u));
			} else {
				*downtime_ms = own;
				vwarn("migration: the target did not report its downtime; %llu ms "
				      "measured here, from the pause up to GO",
				      (unsigned long long)own);
			}
			ri.remaining = 0;
			ri.pages = acc.pages;
			ri.zero_pages = acc.zero_pages;
			mig_update(mig_set_round, &ri);
			vstate_writer_free(&f.w);
			return 0;
		}
	}
resume:
	mig_final_release(&f);
	vstate_writer_free(&f.w);
	if (released)
		mig_retake_disks(j, &disks);
	if (paused_here)
		vm_resume(vm);
	return e;
}

struct mig_end {
	int e;
	uint64_t downtime_ms, total_ms;
	const char *err;
};

static void mig_set_end(struct migrate_status *s, void *arg)
{
	const struct mig_end *d = arg;

	s->total_ms = d->total_ms;
	if (!d->e) {
		s->state = MIGRATE_COMPLETED;
		s->downtime_ms = d->downtime_ms;
		s->bytes_remaining = 0;
	} else {
		s->state = d->e == -ECANCELED ? MIGRATE_CANCELLED : MIGRATE_FAILED;
		snprintf(s->error, sizeof(s->error), "%s", d->err);
	}
}

static void mig_job_run(struct vm *vm, const struct migrate_params *p)
{
	struct mig_job j = { .vm = vm, .fd = -1, .start_ns = vtime_ns() };
	struct mig_end d = { 0 };

	j.cap_bps = p->bandwidth_mbps * 1000000ull / 8;
	j.max_rounds = MIGRATE_MAX_ROUNDS;
#ifdef VIREO_TEST_HOOKS
	/* Tests: give up sooner (tests/guest/migrate.sh). */
	if (getenv("VIREO_TEST_MIGRATE_ROUNDS"))
		j.max_rounds = (unsigned)atoi(getenv("VIREO_TEST_MIGRATE_ROUNDS"));
#endif
	vinfo("migrating to %s (downtime limit %u ms%s)", p->uri, p->downtime_ms,
	      p->bandwidth_mbps ? ", bandwidth capped" : "");
	d.e = mig_run(&j, p, &d.downtime_ms);
	mig_devlog(&j, false);
	if (d.e && j.logging) {
		int e = mig_call(vm, mig_loop_log_off, &j);

		if (e)
			vwarn("migration: cannot turn dirty logging off: %s", strerror(-e));
	}
	d.total_ms = (vtime_ns() - j.start_ns) / 1000000u;
	d.err = j.err[0] ? j.err : strerror(-d.e);
	pthread_mutex_lock(&mig.lock);
	if (mig.fd >= 0)
		close(mig.fd);
	mig.fd = -1;
	pthread_mutex_unlock(&mig.lock);
	mig_update(mig_set_end, &d);
	if (!d.e) {
		vinfo("migrated to %s: downtime %llu ms, %llu ms in all, %llu MiB sent: exiting",
		      p->uri, (unsigned long long)d.downtime_ms, (unsigned long long)d.total_ms,
		      (unsigned long long)(j.sent >> 20));
		runstate_request_stop(&vm->rs, VM_STOP_SAVED, 0);
	} else if (d.e == -ECANCELED) {
		vinfo("migration to %s cancelled: the VM runs on", p->uri);
	} else {
		verr("migration to %s failed: %s: the VM runs on", p->uri, d.err);
	}
	for (unsigned i = 0; i < GMEM_MAX_REGIONS; i++) {
		free(j.bitmap[i]);
		free(j.log[i]);
	}
}

static void *mig_thread(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "migrate");
	filters_enter_or_die(VMM_ROLE_MIGRATE);
	pthread_mutex_lock(&mig.lock);
	for (;;) {
		struct migrate_params p;
		struct vm *vm;

		while (!mig.job && !mig.quit)
			pthread_cond_wait(&mig.cond, &mig.lock);
		if (mig.quit)
			break;
		p = mig.params;
		vm = mig.vm;
		pthread_mutex_unlock(&mig.lock);
		mig_job_run(vm, &p);
		pthread_mutex_lock(&mig.lock);
		mig.job = false;
		mig.vm = NULL;
		pthread_cond_broadcast(&mig.cond);
	}
	pthread_mutex_unlock(&mig.lock);
	return NULL;
}

int migrate_thread_start(void)
{
	int e = pthread_create(&mig.thread, NULL, mig_thread, NULL);

	if (e) {
		verr("cannot start the migration thread: %s", strerror(e));
		return -e;
	}
	mig.started = true;
	return 0;
}

void migrate_thread_stop(void)
{
	if (!mig.started)
		return;
	pthread_mutex_lock(&mig.lock);
	mig.quit = true;
	pthread_cond_broadcast(&mig.cond);
	pthread_mutex_unlock(&mig.lock);
	pthread_join(mig.thread, NULL);
	mig.started = false;
}

int migrate_start(struct vm *vm, const struct migrate_params *p)
{
	int r = 0;

	pthread_mutex_lock(&mig.lock);
	if (!mig.started || mig.quit)
		r = -ESHUTDOWN;
	else if (mig.job)
		r = -EBUSY;
	else {
		mig.params = *p;
		mig.vm = vm;
		mig.job = true;
		atomic_store(&mig.cancel, false);
		memset(&mig.st, 0, sizeof(mig.st));
		mig.st.state = MIGRATE_ACTIVE;
		snprintf(mig.st.uri, sizeof(mig.st.uri), "%s", p->uri);
		pthread_cond_broadcast(&mig.cond);
	}
	pthread_mutex_unlock(&mig.lock);
	return r;
}

int migrate_cancel(void)
{
	int r = -EALREADY;

	pthread_mutex_lock(&mig.lock);
	if (mig.job) {
		atomic_store(&mig.cancel, true);
		/* Wake a send or a wait on the connection. */
		if (mig.fd >= 0)
			shutdown(mig.fd, SHUT_RDWR);
		r = 0;
	}
	pthread_mutex_unlock(&mig.lock);
	return r;
}

void migrate_get(struct migrate_status *out)
{
	pthread_mutex_lock(&mig.lock);
	*out = mig.st;
	pthread_mutex_unlock(&mig.lock);
}

bool migrate_active(void)
{
	bool a;

	pthread_mutex_lock(&mig.lock);
	a = mig.job || (mig.st.incoming && mig.st.state == MIGRATE_ACTIVE);
	pthread_mutex_unlock(&mig.lock);
	return a;
}

void migrate_unbind(void)
{
	if (!mig.started)
		return;
	migrate_cancel();
	pthread_mutex_lock(&mig.lock);
	while (mig.job)
		pthread_cond_wait(&mig.cond, &mig.lock);
	pthread_mutex_unlock(&mig.lock);
}

/* ---- target ------------------------------------------------------------------ */

struct inc_mem {
	int fd;
	void *map;
	size_t len;
};

static struct {
	int lfd;         /* listening (or fd:N's descriptor), until the connection */
	int fd;          /* the connection, until GO */
	uint64_t start_ns;
	uint64_t end_ns;    /* the END came (monotonic) */
	uint64_t stop_rt;   /* the source's STOP (CLOCK_REALTIME), 0: none */
	uint64_t bytes;     /* the stream's */
	char uri[128];
	struct mig_rx rx;
	struct inc_mem m;   /* guest RAM as received */
	void *payload;      /* a record's, but PAGES' and STATE's */
	/* snapshot_incoming_early: the rest of the stream comes on a thread
	 * (migrate_incoming_receive) while the VM is built. */
	bool early, thread_on;
	pthread_t thread;
	int result;         /* the thread's: 0, or -1 with err */
	char err[300];
} inc = { .lfd = -1, .fd = -1, .m = { .fd = -1 } };

/* Listen on @uri (fd:N: check that descriptor): the listening socket, or
 * -1 with @err set. */
static int inc_listen(const char *uri, char *err, size_t errlen)
{
	int lfd = -1, fd, one = 1;

	if (!strncmp(uri, "fd:", 3)) {
		fd = atoi(uri + 3);
		if (fcntl(fd, F_GETFD) < 0) {
			snprintf(err, errlen, "descriptor %d is not open", fd);
			return -1;
		}
		return fd;
	}
	if (!strncmp(uri, "unix:", 5)) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		struct stat st;

		snprintf(a.sun_path, sizeof(a.sun_path), "%s", uri + 5);
		/* A stale socket is replaced; anything else is refused. */
		if (lstat(a.sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(a.sun_path);
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    chmod(a.sun_path, 0600) < 0 || listen(lfd, 1) < 0) {
			snprintf(err, errlen, "cannot listen on %s: %s", uri + 5, strerror(errno));
			if (lfd >= 0)
				close(lfd);
			return -1;
		}
	} else {
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
		struct addrinfo *ai = NULL;
		char host[256];
		const char *c = strrchr(uri + 4, ':');
		size_t hl = (size_t)(c - (uri + 4));
		int g;

		snprintf(host, sizeof(host), "%.*s", (int)hl, uri + 4);
		if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
			memmove(host, host + 1, hl - 2);
			host[hl - 2] = 0;
		}
		g = getaddrinfo(host, c + 1, &hints, &ai);
		if (g) {
			snprintf(err, errlen, "%s: %s", uri, gai_strerror(g));
			return -1;
		}
		lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd >= 0)
			setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (lfd < 0 || bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(lfd, 1) < 0) {
			snprintf(err, errlen, "cannot listen on %s: %s", uri + 4, strerror(errno));
			freeaddrinfo(ai);
			if (lfd >= 0)
				close(lfd);
			return -1;
		}
		freeaddrinfo(ai);
	}
	vinfo("waiting for a migration on %s", uri);
	return lfd;
}

/* Take one connection on what inc_listen gave (fd:N: that descriptor). */
static int inc_accept(const char *uri, int lfd, char *err, size_t errlen)
{
	int fd;

	if (!strncmp(uri, "fd:", 3))
		return lfd;
	do
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		snprintf(err, errlen, "accept on %s: %s", uri, strerror(errno));
	close(lfd);
	if (!strncmp(uri, "unix:", 5))
		unlink(uri + 5);
	return fd;
}

/* Read exactly @len bytes: 0, or -1 with @err set. */
static int inc_read(int fd, void *buf, size_t len, const char *what, char *err, size_t errlen)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (uint8_t *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s", what,
				 n == 0 ? "the source closed the connection (truncated stream)"
				 : errno == EAGAIN ? "nothing from the source for 60 s"
				 : strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

/* @fd's first @len bytes, mapped shared at a huge-page boundary. */
static void *inc_map_aligned(int fd, size_t len)
{
	uint8_t *p, *base = memory_reserve(len, &p);

	if (!base)
		return MAP_FAILED;
	if (mmap(p, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
		munmap(base, len + MEMORY_ALIGN);
		return MAP_FAILED;
	}
	/* The reservation around it goes. */
	if (p > base)
		munmap(base, (size_t)(p - base));
	munmap(p + len, MEMORY_ALIGN - (size_t)(p - base));
	return p;
}

static void *inc_config(void *opaque, const struct vstate_config *cfg, char *err, size_t errlen)
{
	struct inc_mem *m = opaque;
	void *p;

	m->fd = memfd_create("vireo-incoming", MFD_CLOEXEC);
	if (m->fd < 0 || ftruncate(m->fd, (off_t)cfg->memory_file_size) < 0) {
		snprintf(err, errlen, "cannot make room for %llu MiB of guest RAM: %s",
			 (unsigned long long)(cfg->memory_file_size >> 20), strerror(errno));
		return NULL;
	}
	/* At a 2 MiB boundary, as guest RAM is: snapshot_map_memory then
	 * moves it into place a page table at a time, not an entry at a time
	 * (14 ms for 256 MiB in the lab). */
	p = inc_map_aligned(m->fd, cfg->memory_file_size);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %llu MiB of guest RAM: %s",
			 (unsigned long long)(cfg->memory_file_size >> 20), strerror(errno));
		return NULL;
	}
	m->map = p;
	m->len = cfg->memory_file_size;
	return p;
}

static const struct mig_rx_ops inc_ops = { .config = inc_config };

int migrate_incoming_listen(const struct vmm_opts *o)
{
	char err[300] = "";

	if (!o->incoming || inc.lfd >= 0)
		return 0;
	inc.lfd = inc_listen(o->incoming, err, sizeof(err));
	if (inc.lfd < 0) {
		verr("--incoming %s: %s", o->incoming, err);
		return -EINVAL;
	}
	return 0;
}

void migrate_incoming_forget(void)
{
	if (inc.lfd >= 0)
		close(inc.lfd);
	inc.lfd = -1;
}

/* An early-built target's GET /migrate while the stream comes in. */
static void inc_progress(void)
{
	if (!inc.thread_on)
		return;
	pthread_mutex_lock(&mig.lock);
	mig.st.bytes_received = inc.bytes;
	pthread_mutex_unlock(&mig.lock);
}

/* Read records into inc.rx until the END, or (@upto_config) until the
 * CONFIG is in: 0, or -1 with @err set. */
static int inc_records(bool upto_config, char *err, size_t errlen)
{
	struct mig_rx *rx = &inc.rx;
	int fd = inc.fd, r;

	while (!mig_rx_done(rx)) {
		struct mig_rec_hdr rh;
		int64_t n;
		void *buf = inc.payload;

		if (upto_config && rx->phase == MIG_RX_MEMORY)
			return 0;
		if (inc_read(fd, &rh, sizeof(rh), "record header", err, errlen))
			return -1;
		n = mig_rx_record_len(rx, &rh, err, errlen);
		if (n < 0)
			return -1;
		if (rh.type == MIG_REC_PAGES) {
			/* The page header, then the data straight into guest RAM. */
			struct mig_pages_hdr ph;
			uint8_t *dst;
			size_t len;

			if (inc_read(fd, &ph, sizeof(ph), "record", err, errlen) ||
			    mig_rx_pages_dst(rx, &rh, &ph, &dst, &len, err, errlen) ||
			    inc_read(fd, dst, len, "record", err, errlen))
				return -1;
			inc.bytes += sizeof(rh) + (uint64_t)n;
			inc_progress();
			continue;
		}
		if ((size_t)n > sizeof(struct vstate_config)) {
			buf = malloc((size_t)n);   /* the state */
			if (!buf) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
		}
		r = inc_read(fd, buf, (size_t)n, "record", err, errlen);
		inc.bytes += sizeof(rh) + (uint64_t)n;
		if (!r)
			r = mig_rx_record(rx, &rh, buf, err, errlen);
		if (buf != inc.payload)
			free(buf);
		if (r)
			return -1;
		if (rh.type == MIG_REC_SYNC && vio_write_full(fd, MIG_SYNCED, 8)) {
			snprintf(err, errlen, "cannot answer the source: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The stream is in (its END read). */
static void inc_ended(const char *uri)
{
	inc.end_ns = vtime_ns();
	inc.stop_rt = inc.rx.stop_ns;
	vinfo("--incoming %s: received %llu pages and %llu zero pages in %llu ms", uri,
	      (unsigned long long)inc.rx.pages, (unsigned long long)inc.rx.zero_pages,
	      (unsigned long long)((inc.end_ns - inc.start_ns) / 1000000u));
}

/* Drop what the stream left: its parser, buffers, guest RAM not handed
 * over and the connection. */
static void inc_drop(void)
{
	free(inc.payload);
	inc.payload = NULL;
	mig_rx_free(&inc.rx);
	if (inc.m.map)
		munmap(inc.m.map, inc.m.len);
	inc.m.map = NULL;
	if (inc.m.fd >= 0)
		close(inc.m.fd);
	inc.m.fd = -1;
	if (inc.fd >= 0)
		close(inc.fd);
	inc.fd = -1;
}

int migrate_incoming(struct vmm_opts *o)
{
	struct timeval tv = { .tv_sec = MIGRATE_RECV_TIMEOUT_S };
	struct mig_hdr h;
	char err[300] = "";
	int r;

	if (!o->incoming)
		return 0;
	if (migrate_incoming_listen(o))
		return -EINVAL;
	inc.fd = inc_accept(o->incoming, inc.lfd, err, sizeof(err));
	inc.lfd = -1;
	if (inc.fd < 0) {
		verr("--incoming %s: %s", o->incoming, err);
		return -EINVAL;
	}
	inc.start_ns = vtime_ns();
	inc.m.fd = -1;
	snprintf(inc.uri, sizeof(inc.uri), "%s", o->incoming);
	setsockopt(inc.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	mig_nodelay(inc.fd);
	mig_rx_init(&inc.rx, &inc_ops, &inc.m);
	/* Records but PAGES (read into guest RAM) and STATE (their own
	 * buffer): CONFIG is the largest. */
	inc.payload = malloc(sizeof(struct vstate_config));
	if (!inc.payload) {
		snprintf(err, sizeof(err), "out of memory");
		goto out;
	}
	if (inc_read(inc.fd, &h, sizeof(h), "stream header", err, sizeof(err)) ||
	    mig_rx_header(&inc.rx, &h, err, sizeof(err)))
		goto out;
	inc.bytes = sizeof(h);
	if (inc_records(true, err, sizeof(err)))
		goto out;
	/* The VM built while the rest comes (migrate_incoming_receive),
	 * when it can be (snapshot.h). */
	r = snapshot_incoming_early(o, &inc.rx.config, inc.m.fd);
	if (r > 0) {
		inc.m.fd = -1;   /* snapshot.c's now */
		inc.early = true;
		vdebug("--incoming %s: the VM is built while the stream comes in", o->incoming);
		return 0;
	}
	if (inc_records(false, err, sizeof(err)))
		goto out;
	inc_ended(o->incoming);
	r = snapshot_prepare_incoming(o, inc.rx.state, inc.rx.state_len, &inc.rx.st, inc.m.fd,
				      inc.m.map);
	inc.rx.state = NULL;   /* snapshot.c's now, and the memfd and its mapping */
	inc.m.map = NULL;
	inc.m.fd = -1;
	if (r) {
		inc_drop();
		return -EINVAL;
	}
	free(inc.payload);
	inc.payload = NULL;
	mig_rx_free(&inc.rx);
	return 0;
out:
	verr("--incoming %s: %s", o->incoming, err);
	inc_drop();
	return -EINVAL;
}

/* The rest of the stream, into inc.result and inc.err. */
static void inc_rest(void)
{
	inc.result = inc_records(false, inc.err, sizeof(inc.err));
	if (!inc.result)
		inc_ended(inc.uri);   /* its time, as the END came */
}

static void *inc_thread(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "incoming");
	inc_rest();
	return NULL;
}

int migrate_incoming_receive(void)
{
	int e;

	if (!inc.early)
		return 0;
	/* GET /migrate: active, in; GET /vm: incoming; the rest 409. */
	pthread_mutex_lock(&mig.lock);
	memset(&mig.st, 0, sizeof(mig.st));
	mig.st.state = MIGRATE_ACTIVE;
	mig.st.incoming = true;
	snprintf(mig.st.uri, sizeof(mig.st.uri), "%s", inc.uri);
	mig.st.bytes_received = inc.bytes;
	pthread_mutex_unlock(&mig.lock);
	inc.thread_on = true;   /* before the thread: inc_progress reads it */
	/* Under the builder's filter (inherited): reads, writes and
	 * memory, as the stream needs. */
	e = pthread_create(&inc.thread, NULL, inc_thread, NULL);
	if (e) {
		inc.thread_on = false;
		verr("--incoming %s: cannot start the thread receiving the stream: %s",
		     inc.uri, strerror(e));
		return -EINVAL;
	}
	return 0;
}

int migrate_incoming_received(struct vmm_opts *o)
{
	int r;

	if (!inc.early)
		return 0;
	inc.early = false;
	if (inc.thread_on)
		pthread_join(inc.thread, NULL);
	else
		inc_rest();
	inc.thread_on = false;
	if (inc.result) {
		verr("--incoming %s: %s", inc.uri, inc.err);
		pthread_mutex_lock(&mig.lock);
		mig.st.state = MIGRATE_FAILED;
		snprintf(mig.st.error, sizeof(mig.st.error), "%.*s", (int)sizeof(mig.st.error) - 1,
			 inc.err);
		pthread_mutex_unlock(&mig.lock);
		inc_drop();
		return -EINVAL;
	}
	/* (for the start-up's phases: the stream's end as against them) */
	vdebug("--incoming %s: the stream ended %.3f ms ago", inc.uri,
	       (double)(vtime_ns() - inc.end_ns) / 1e6);
	r = snapshot_incoming_state(o, inc.rx.state, inc.rx.state_len, &inc.rx.st, inc.m.map);
	inc.rx.state = NULL;   /* snapshot.c's now, and the mapping */
	inc.m.map = NULL;
	free(inc.payload);
	inc.payload = NULL;
	mig_rx_free(&inc.rx);
	if (r) {
		inc_drop();
		return -EINVAL;
	}
	return 0;
}

void migrate_incoming_abort(void)
{
	if (inc.thread_on) {
		shutdown(inc.fd, SHUT_RDWR);
		pthread_join(inc.thread, NULL);
		inc.thread_on = false;
	}
	inc.early = false;
	inc_drop();
}

int migrate_incoming_go(void)
{
	char b[8], err[200] = "";
	int fd = inc.fd;

	if (fd < 0)
		return 0;
	inc.fd = -1;
	if (vio_write_full(fd, MIG_READY, 8)) {
		verr("--incoming: cannot tell the source it is ready: %s", strerror(errno));
		close(fd);
		return -EIO;
	}
	if (inc_read(fd, b, sizeof(b), "waiting for GO", err, sizeof(err)) ||
	    memcmp(b, MIG_GO, sizeof(b))) {
		verr("--incoming: the source did not hand the VM over (%s): not running it",
		     err[0] ? err : "a wrong answer");
		close(fd);
		return -EIO;
	}
	/* Downtime: from the source's pause (its STOP record) to now, as
	 * the vCPUs start; without a usable STOP (an older source, clocks
	 * not in step), from the END, a lower bound. */
	uint64_t now_rt = mig_realtime_ns(), now = vtime_ns(), downtime;
	bool from_stop = inc.stop_rt && inc.stop_rt <= now_rt &&
			 now_rt - inc.stop_rt < 24ull * 3600 * 1000000000ull;
	uint8_t done[16];

	downtime = from_stop ? (now_rt - inc.stop_rt) / 1000000u : (now - inc.end_ns) / 1000000u;
	memcpy(done, MIG_DONE, 8);
	{
		uint64_t le = htole64(downtime);

		memcpy(done + 8, &le, 8);
	}
	if (vio_write_full(fd, done, sizeof(done)))
		vwarn("--incoming: cannot send the downtime to the source: %s", strerror(errno));
	close(fd);
	pthread_mutex_lock(&mig.lock);
	memset(&mig.st, 0, sizeof(mig.st));
	mig.st.state = MIGRATE_COMPLETED;
	mig.st.incoming = true;
	snprintf(mig.st.uri, sizeof(mig.st.uri), "%s", inc.uri);
	mig.st.downtime_ms = downtime;
	mig.st.total_ms = (now - inc.start_ns) / 1000000u;
	mig.st.bytes_received = inc.bytes;
	pthread_mutex_unlock(&mig.lock);
	vinfo("migrated in: the guest runs (%llu ms after the connection), downtime %llu ms%s",
	      (unsigned long long)((now - inc.start_ns) / 1000000u), (unsigned long long)downtime,
	      from_stop ? "" : " (from the end of the stream: the source sent no usable stop time)");
	return 0;
}
