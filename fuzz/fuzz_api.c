/*
 * libFuzzer target: the control API's dispatcher (vmm/api.c), over the
 * method, path and body of a request, with fake VM operations.
 *
 * Input: one byte choosing what the fake operations return, then
 * METHOD '\n' PATH '\n' BODY (the body is the rest, NULs and all).
 * Seeds: fuzz/corpus/api/.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static int fz_ret;

static int fz_info(void *o, struct api_vm_info *out)
{
	(void)o;
	out->state = (enum api_state)((unsigned)-fz_ret % 3u);
	out->vcpus = 4;
	out->memory_mib = 1024;
	out->uptime_ms = 99;
	out->name = "fuzz";
	return fz_ret == -EIO ? fz_ret : 0;
}

static int fz_op(void *o)
{
	(void)o;
	return fz_ret;
}

static int fz_bset(void *o, uint64_t mib)
{
	(void)o;
	/* The dispatcher checks the range before asking the VM. */
	if (mib > (1ull << 26))
		abort();
	return fz_ret;
}

static int fz_bget(void *o, struct api_balloon_info *out)
{
	(void)o;
	out->target_mib = 1;
	out->actual_mib = 2;
	out->stats.valid = (uint32_t)-fz_ret;
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		out->stats.val[t] = ~0ull - t;
	out->stats.when_ns = (uint64_t)-fz_ret;
	out->now_ns = 5;
	return fz_ret;
}

static int fz_save(void *o, const char *dir, bool exit_after, char *msg, size_t msglen)
{
	(void)o;
	(void)exit_after;
	/* The dispatcher checks the path before asking the VM. */
	if (!dir[0] || strlen(dir) > 4000)
		abort();
	if (fz_ret && (fz_ret & 1))
		snprintf(msg, msglen, "fuzz: %s", dir);
	return fz_ret;
}

static int fz_mstart(void *o, const struct migrate_params *p, char *msg, size_t msglen)
{
	(void)o;
	/* The dispatcher checks the URI before asking the VM. */
	if (!p->uri[0] || strlen(p->uri) >= sizeof(p->uri) || !p->downtime_ms)
		abort();
	if (fz_ret && (fz_ret & 1))
		snprintf(msg, msglen, "fuzz: %s", p->uri);
	return fz_ret;
}

static int fz_mget(void *o, struct migrate_status *out)
{
	(void)o;
	memset(out, 0, sizeof(*out));
	out->state = (enum migrate_state)((unsigned)-fz_ret % 5);
	snprintf(out->uri, sizeof(out->uri), "tcp:127.0.0.1:1");
	snprintf(out->error, sizeof(out->error), "fuzz");
	return fz_ret == -EIO ? fz_ret : 0;
}

static int fz_mcancel(void *o)
{
	(void)o;
	return fz_ret;
}

static int fz_snapshot(void *o, const char *name, const char *dir, char *msg, size_t msglen)
{
	(void)o;
	/* The dispatcher checks the name and the path before asking the VM. */
	if (!name[0] || strlen(name) > 64 || strchr(name, '/') || (dir && (!dir[0] || strlen(dir) > 4000)))
		abort();
	if (fz_ret && (fz_ret & 1))
		snprintf(msg, msglen, "fuzz: %s", name);
	return fz_ret;
}

static int fz_metrics(void *o, struct api_metrics *m)
{
	(void)o;
	if (fz_ret)
		return fz_ret;
	m->nr_vcpus = 3;
	m->vcpu = calloc(3, sizeof(*m->vcpu));
	if (!m->vcpu)
		return -ENOMEM;
	for (unsigned e = 0; e < API_EXIT_NR; e++)
		m->vcpu[2].exits[e] = ~0ull - e;
	m->vcpu[1].run_ns = ~0ull;
	/* Ids without a NUL, every byte: the text is escaped and bounded. */
	m->nr_disks = API_METRICS_DEVS;
	for (unsigned i = 0; i < API_METRICS_DEVS; i++)
		for (unsigned j = 0; j < API_METRICS_ID; j++)
			m->disk[i].id[j] = (char)(i * 7 + j * 13 + 1);
	m->nr_nets = 1;
	memcpy(m->net[0].id, "n\"\\\n", 5);
	m->balloon = true;
	return 0;
}

static const struct api_ops fz_ops = {
	fz_info, fz_op, fz_op, fz_op, fz_bset, fz_bget, fz_save, fz_snapshot, fz_op, fz_metrics,
	fz_mstart, fz_mget, fz_mcancel,
};

static const int fz_rets[] = {
	0, -EALREADY, -ESHUTDOWN, -EBUSY, -ENODEV, -ERANGE, -EIO, -ETIMEDOUT, -ENOTSUP,
	-ENOENT, -EEXIST, -EINPROGRESS,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_ctx ctx = { &fz_ops, NULL };
	const char *nl1, *nl2;
	char *method, *path, *body;
	unsigned status = 0;
	char *resp = NULL;
	size_t blen;

	if (size < 1)
		return 0;
	fz_ret = fz_rets[data[0] % (sizeof(fz_rets) / sizeof(fz_rets[0]))];
	data++;
	size--;
	nl1 = memchr(data, '\n', size);
	if (!nl1)
		return 0;
	nl2 = memchr(nl1 + 1, '\n', size - (size_t)(nl1 + 1 - (const char *)data));
	if (!nl2)
		return 0;
	method = strndup((const char *)data, (size_t)(nl1 - (const char *)data));
	path = strndup(nl1 + 1, (size_t)(nl2 - nl1 - 1));
	blen = size - (size_t)(nl2 + 1 - (const char *)data);
	/* The body in a buffer of its own size, so reads past it are caught. */
	body = malloc(blen ? blen : 1);
	if (method && path && body) {
		memcpy(body, nl2 + 1, blen);
		api_handle(&ctx, method, path, body, blen, &status, &resp);
		if (status < 200 || status > 599 || (status != 204 && !resp))
			abort();
		if (resp && !strcmp(api_content_type(path, status), "application/json") &&
		    (resp[0] != '{' || resp[strlen(resp) - 1] != '}'))
			abort();
		/* Prometheus text: whole lines, each a comment or a sample,
		 * nothing unprintable in them (the ids are escaped). */
		if (resp && strcmp(api_content_type(path, status), "application/json")) {
			for (const char *l = resp; *l; l = strchr(l, '\n') + 1) {
				const char *e = strchr(l, '\n');

				if (!e || (l[0] != '#' && strncmp(l, "vireo_", 6)))
					abort();
				for (const char *c = l; c < e; c++)
					if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
						abort();
			}
		}
		free(resp);
		/* A body over the cap that was not kept. */
		if (blen & 1) {
			api_handle(&ctx, method, path, NULL, API_BODY_MAX + blen, &status, &resp);
			if (status != 404 && status != 405 && status != 413)
				abort();
			free(resp);
		}
	}
	free(method);
	free(path);
	free(body);
	return 0;
}
