/*
 * Storage pools of vireod: directories whose files are volumes, made,
 * listed and deleted through Vireo's image library (lib/img).  A pool is a
 * name and a directory (in the store); its volumes are what the directory
 * holds.  A volume a defined VM uses, or one that another volume of the
 * pool has as its backing file, is not deleted.
 */
#ifndef VIREO_DAEMON_POOL_H
#define VIREO_DAEMON_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

#define POOL_NAME_MAX 63
#define VOL_NAME_MAX  127

/* Whether a defined VM uses @path as a disk (its name in @who; *running
 * set when that VM runs). */
typedef bool (*pool_in_use_fn)(const char *path, char *who, size_t wholen, bool *running);

void pools_init(struct store *st, pool_in_use_fn in_use);

bool pool_name_ok(const char *name);
/* A volume name: 1..127 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool vol_name_ok(const char *name);

/* The operations return an HTTP status, with a message in @err on error;
 * JSON answers are malloc'd into *resp. */
int pool_define(const char *body, size_t len, char **resp, char *err, size_t errlen);
int pool_undefine(const char *name, char *err, size_t errlen);
int pools_list(char **resp, char *err, size_t errlen);
int pool_volumes(const char *pool, char **resp, char *err, size_t errlen);
int pool_vol_create(const char *pool, const char *body, size_t len, char **resp,
		    char *err, size_t errlen);
int pool_vol_delete(const char *pool, const char *vol, char *err, size_t errlen);

/*
 * The long operations.  A volume under one (a clone's source and new
 * volume, an upload's or a download's volume) is busy: another operation
 * on it is refused (409) until it ends.  Their progress (bytes done of
 * total) answers GET .../progress while they run.
 */
#define VOL_MIN_SIZE    (1ULL << 20)
#define VOL_MAX_SIZE    (64ULL << 40)    /* 64 TiB */
/* A full copy of @src into a new volume @name of the same format (qcow2:
 * only the clusters that hold data are written). */
int pool_vol_clone(const char *pool, const char *src, const char *name, char **resp,
		   char *err, size_t errlen);
/* A new capacity (VOL_MIN_SIZE..VOL_MAX_SIZE, a multiple of 512); a smaller
 * one only with @shrink; never for the disk of a running VM. */
int pool_vol_resize(const char *pool, const char *vol, uint64_t size, bool shrink,
		    char *err, size_t errlen);
/* {"operation": "clone"|"upload"|"download", "done": N, "total": N}. */
int pool_vol_progress(const char *pool, const char *vol, char **resp, char *err, size_t errlen);

/* Upload (the request's body, streamed: at most the volume's capacity,
 * written from offset 0 through the image library) and download (the
 * guest-visible bytes of the volume). */
struct pool_xfer;
int pool_upload_begin(const char *pool, const char *vol, uint64_t len, struct pool_xfer **x,
		      char *err, size_t errlen);
/* 0, or an HTTP status with @err (the upload then fails). */
int pool_upload_write(struct pool_xfer *x, const void *buf, size_t n, char *err, size_t errlen);
/* Ends and frees @x: 204, or an error status (short data, a write error). */
int pool_upload_end(struct pool_xfer *x, char *err, size_t errlen);
int pool_download_begin(const char *pool, const char *vol, struct pool_xfer **x, uint64_t *size,
			char *err, size_t errlen);
/* Up to @n bytes at @off; the count, 0 at the end, -1 on error. */
ssize_t pool_download_read(struct pool_xfer *x, uint64_t off, void *buf, size_t n);
/* Ends and frees an upload or download (an unfinished upload is left as
 * far as it got). */
void pool_xfer_free(struct pool_xfer *x);

#endif
