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

#include "store.h"

#define POOL_NAME_MAX 63
#define VOL_NAME_MAX  127

/* Whether a defined VM uses @path as a disk (its name in @who). */
typedef bool (*pool_in_use_fn)(const char *path, char *who, size_t wholen);

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

#endif
