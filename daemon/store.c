/*
 * The store (store.h) on SQLite.  The database runs in WAL mode: a change
 * is one transaction, committed before the caller hears of it, so that a
 * kill -9 of vireod at any moment loses no committed definition and leaves
 * no half-written one.
 *
 * The commit is in the WAL file once SQLite's write() returns, so the
 * kernel has it whatever becomes of vireod: synchronous=NORMAL (the
 * default, STORE_SYNC_NORMAL) keeps that promise and syncs the WAL only
 * at checkpoints.  What it does not promise is a crash of the host: the
 * last changes before a power cut may be lost (whole: the WAL's frame
 * checksums drop a torn commit), as with a file written without fsync.
 * synchronous=FULL (vireod --state-sync full) adds an fdatasync of the WAL
 * to every commit, for hosts that want that too; it was the default until
 * define+undefine was measured: the sync was most of vireod's part of a
 * define (1-4 ms on ext4, against ~0.3 ms for the rest of the request).
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#define STORE_SCHEMA_VERSION 3

struct store {
	sqlite3 *db;
	pthread_mutex_t lock;
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS vms ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  uuid TEXT UNIQUE NOT NULL,"
	"  def TEXT NOT NULL,"
	"  created INTEGER NOT NULL DEFAULT (strftime('%s','now'))"
	");"
	/* Version 2: storage pools. */
	"CREATE TABLE IF NOT EXISTS pools ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  path TEXT UNIQUE NOT NULL,"
	"  def TEXT NOT NULL,"
	"  created INTEGER NOT NULL DEFAULT (strftime('%s','now'))"
	");"
	/* Version 3: virtual networks (network.c). */
	"CREATE TABLE IF NOT EXISTS networks ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  bridge TEXT UNIQUE NOT NULL,"
	"  def TEXT NOT NULL,"
	"  created INTEGER NOT NULL DEFAULT (strftime('%s','now'))"
	");";

int store_open(const char *dir, enum store_sync sync, struct store **out, char *err,
	       size_t errlen)
{
	struct store *st;
	char path[4096];
	char *msg = NULL;
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/vireod.db", dir) >= sizeof(path)) {
		snprintf(err, errlen, "state directory path too long");
		return -ENAMETOOLONG;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "cannot make %s: %s", dir, strerror(e));
		return -e;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&st->lock, NULL);
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 5000);
	rc = sqlite3_exec(st->db,
			  sync == STORE_SYNC_FULL ?
			  "PRAGMA journal_mode=WAL;"
			  "PRAGMA synchronous=FULL;"
			  "PRAGMA foreign_keys=ON;" :
			  "PRAGMA journal_mode=WAL;"
			  "PRAGMA synchronous=NORMAL;"
			  "PRAGMA foreign_keys=ON;", NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(st->db, schema, NULL, NULL, &msg);
	if (rc == SQLITE_OK) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d;", STORE_SCHEMA_VERSION);
		rc = sqlite3_exec(st->db, pragma, NULL, NULL, &msg);
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		goto fail;
	}
	*out = st;
	return 0;
fail:
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
	return -EIO;
}

int store_sync_level(struct store *st)
{
	sqlite3_stmt *stmt = NULL;
	int level = -EIO;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "PRAGMA synchronous", -1, &stmt, NULL) == SQLITE_OK &&
	    sqlite3_step(stmt) == SQLITE_ROW)
		level = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return level;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* One statement as one transaction (SQLite's autocommit); returns the
 * step's result code and the number of rows changed. */
static int exec1(struct store *st, const char *sql, const char *const *params, int nparams,
		 int *changes)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
	for (int i = 0; rc == SQLITE_OK && i < nparams; i++)
		rc = sqlite3_bind_text(stmt, i + 1, params[i], -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc == SQLITE_CONSTRAINT)
		rc = sqlite3_extended_errcode(st->db);
	if (changes)
		*changes = sqlite3_changes(st->db);
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Add a row to @table (vms: key2 is the uuid; pools: the path). */
static int add_row(struct store *st, const char *table, const char *key2col,
		   const char *name, const char *key2, const char *def_json)
{
	char sql1[160], sql2[160];
	const char *p[] = { name, key2, def_json };
	sqlite3_stmt *stmt = NULL;
	int rc, ret = -EIO;

	snprintf(sql1, sizeof(sql1), "SELECT name = ?1 FROM %s WHERE name = ?1 OR %s = ?2",
		 table, key2col);
	snprintf(sql2, sizeof(sql2), "INSERT INTO %s (name, %s, def) VALUES (?, ?, ?)",
		 table, key2col);

	/* Which of the two keys is taken decides the answer, so look first,
	 * then insert, in one write transaction. */
	pthread_mutex_lock(&st->lock);
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	rc = sqlite3_prepare_v2(st->db, sql1, -1, &stmt, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(stmt, 2, key2, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		ret = sqlite3_column_int(stmt, 0) ? -EEXIST : -ENOTUNIQ;
		goto rollback;
	}
	if (rc != SQLITE_DONE)
		goto rollback;
	sqlite3_finalize(stmt);
	stmt = NULL;
	rc = sqlite3_prepare_v2(st->db, sql2, -1, &stmt, NULL);
	for (int i = 0; rc == SQLITE_OK && i < 3; i++)
		rc = sqlite3_bind_text(stmt, i + 1, p[i], -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc != SQLITE_DONE)
		goto rollback;
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto rollback;
	ret = 0;
	goto out;
rollback:
	sqlite3_finalize(stmt);
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
out:
	pthread_mutex_unlock(&st->lock);
	return ret;
}

int store_vm_add(struct store *st, const char *name, const char *uuid, const char *def_json)
{
	return add_row(st, "vms", "uuid", name, uuid, def_json);
}

int store_pool_add(struct store *st, const char *name, const char *path, const char *def_json)
{
	return add_row(st, "pools", "path", name, path, def_json);
}

int store_vm_update(struct store *st, const char *name, const char *def_json)
{
	const char *p[] = { def_json, name };
	int changes = 0;

	if (exec1(st, "UPDATE vms SET def = ? WHERE name = ?", p, 2, &changes) != SQLITE_DONE)
		return -EIO;
	return changes ? 0 : -ENOENT;
}

static int delete_row(struct store *st, const char *sql, const char *name)
{
	const char *p[] = { name };
	int changes = 0;

	if (exec1(st, sql, p, 1, &changes) != SQLITE_DONE)
		return -EIO;
	return changes ? 0 : -ENOENT;
}

int store_vm_delete(struct store *st, const char *name)
{
	return delete_row(st, "DELETE FROM vms WHERE name = ?", name);
}

int store_pool_delete(struct store *st, const char *name)
{
	return delete_row(st, "DELETE FROM pools WHERE name = ?", name);
}

static int get_row(struct store *st, const char *sql, const char *name, char **def_json)
{
	sqlite3_stmt *stmt = NULL;
	int rc, ret = -EIO;

	pthread_mutex_lock(&st->lock);
	rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(stmt, 0);
		*def_json = strdup(t ? t : "");
		ret = *def_json ? 0 : -ENOMEM;
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	}
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return ret;
}

int store_vm_get(struct store *st, const char *name, char **def_json)
{
	return get_row(st, "SELECT def FROM vms WHERE name = ?", name, def_json);
}

int store_pool_get(struct store *st, const char *name, char **def_json)
{
	return get_row(st, "SELECT def FROM pools WHERE name = ?", name, def_json);
}

static int list_rows(struct store *st, const char *sql,
		     int (*cb)(void *opaque, const char *name, const char *def_json),
		     void *opaque)
{
	sqlite3_stmt *stmt = NULL;
	int rc, ret = 0;

	/* Rows are copied out under the lock, then handed to @cb without it,
	 * so that @cb may call the store. */
	struct row { char *name, *def; } *rows = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&st->lock);
	rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct row *r = realloc(rows, ncap * sizeof(*r));
			if (!r) {
				ret = -ENOMEM;
				break;
			}
			rows = r;
			cap = ncap;
		}
		rows[n].name = strdup((const char *)sqlite3_column_text(stmt, 0));
		rows[n].def = strdup((const char *)sqlite3_column_text(stmt, 1));
		n++;
		if (!rows[n - 1].name || !rows[n - 1].def) {
			ret = -ENOMEM;
			break;
		}
		rc = SQLITE_OK;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = -EIO;
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	for (size_t i = 0; i < n; i++) {
		if (!ret)
			ret = cb(opaque, rows[i].name, rows[i].def);
		free(rows[i].name);
		free(rows[i].def);
	}
	free(rows);
	return ret;
}

int store_vm_list(struct store *st,
		  int (*cb)(void *opaque, const char *name, const char *def_json),
		  void *opaque)
{
	return list_rows(st, "SELECT name, def FROM vms ORDER BY name", cb, opaque);
}

int store_pool_list(struct store *st,
		    int (*cb)(void *opaque, const char *name, const char *def_json),
		    void *opaque)
{
	return list_rows(st, "SELECT name, def FROM pools ORDER BY name", cb, opaque);
}

int store_net_add(struct store *st, const char *name, const char *bridge, const char *def_json)
{
	return add_row(st, "networks", "bridge", name, bridge, def_json);
}

int store_net_update(struct store *st, const char *name, const char *def_json)
{
	const char *p[] = { def_json, name };
	int changes = 0;

	if (exec1(st, "UPDATE networks SET def = ? WHERE name = ?", p, 2, &changes) != SQLITE_DONE)
		return -EIO;
	return changes ? 0 : -ENOENT;
}

int store_net_delete(struct store *st, const char *name)
{
	return delete_row(st, "DELETE FROM networks WHERE name = ?", name);
}

int store_net_get(struct store *st, const char *name, char **def_json)
{
	return get_row(st, "SELECT def FROM networks WHERE name = ?", name, def_json);
}

int store_net_list(struct store *st,
		   int (*cb)(void *opaque, const char *name, const char *def_json),
		   void *opaque)
{
	return list_rows(st, "SELECT name, def FROM networks ORDER BY name", cb, opaque);
}
