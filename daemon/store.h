/*
 * vireod's persistent state: VM, pool and network definitions, kept in SQLite (WAL, one
 * transaction per change) at STATE_DIR/vireod.db.  Everything that touches
 * the database is in store.c, behind this interface, so that a replicated
 * store can take its place later.  Thread-safe: calls are serialised.
 */
#ifndef VIREO_DAEMON_STORE_H
#define VIREO_DAEMON_STORE_H

#include <stddef.h>

struct store;

/* When a committed change reaches the disk (vireod --state-sync). */
enum store_sync {
	/* Each change is in the WAL file (the kernel's page cache) before
	 * store_* returns, and fsync'd at checkpoints: a killed vireod
	 * loses nothing; a crash of the host may lose the last changes (a
	 * whole change, never half of one). */
	STORE_SYNC_NORMAL,
	/* Each commit also fdatasyncs the WAL first: a host crash loses
	 * nothing either.  About 1-4 ms a change on an ext4 SSD. */
	STORE_SYNC_FULL,
};

/* Open (creating if needed) the store in directory @dir.  0 or -errno,
 * with a message in @err. */
int store_open(const char *dir, enum store_sync sync, struct store **out, char *err,
	       size_t errlen);
/* SQLite's synchronous level on the store's connection (1 NORMAL, 2 FULL),
 * or -EIO. */
int store_sync_level(struct store *st);
void store_close(struct store *st);

/* Add a definition: 0, -EEXIST (the name is taken), -ENOTUNIQ (the uuid
 * is), -EIO. */
int store_vm_add(struct store *st, const char *name, const char *uuid, const char *def_json);
/* Replace the definition of an existing VM: 0, -ENOENT, -EIO. */
int store_vm_update(struct store *st, const char *name, const char *def_json);
/* Remove a definition: 0, -ENOENT, -EIO. */
int store_vm_delete(struct store *st, const char *name);
/* A definition (malloc'd JSON in *def_json): 0, -ENOENT, -EIO, -ENOMEM. */
int store_vm_get(struct store *st, const char *name, char **def_json);
/* Call @cb for every definition in name order; stops at the first non-zero
 * return of @cb and returns it; -EIO on a database error. */
int store_vm_list(struct store *st,
		  int (*cb)(void *opaque, const char *name, const char *def_json),
		  void *opaque);

/*
 * Storage pools: a name, its directory (unique) and its definition (JSON).
 * Same return values as the VM calls above (-ENOTUNIQ: the path is taken).
 */
int store_pool_add(struct store *st, const char *name, const char *path, const char *def_json);
int store_pool_delete(struct store *st, const char *name);
int store_pool_get(struct store *st, const char *name, char **def_json);
int store_pool_list(struct store *st,
		    int (*cb)(void *opaque, const char *name, const char *def_json),
		    void *opaque);

/*
 * Virtual networks: a name, its bridge (unique) and its definition (JSON).
 * Same return values as the VM calls (-ENOTUNIQ: the bridge is taken).
 */
int store_net_add(struct store *st, const char *name, const char *bridge, const char *def_json);
int store_net_update(struct store *st, const char *name, const char *def_json);
int store_net_delete(struct store *st, const char *name);
int store_net_get(struct store *st, const char *name, char **def_json);
int store_net_list(struct store *st,
		   int (*cb)(void *opaque, const char *name, const char *def_json),
		   void *opaque);

#endif
