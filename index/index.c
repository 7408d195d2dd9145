/*
 * index.c - the sqlite catalogue (see index.h for the data it records).
 *
 * What this file does:
 *   - opens (creating if needed) one database file in WAL mode with a busy
 *     timeout, so the mount daemon and CLI commands can share it;
 *   - creates and migrates the schema, versioned by PRAGMA user_version;
 *   - prepares every statement once at open and reuses it (the daemon runs
 *     some of them per block fetched), resetting and clearing bindings after
 *     each use;
 *   - serializes all use of its single connection with a pthread mutex.
 * What it does not do: network I/O, FUSE, reading or writing block files,
 * deciding what to evict (it only records presence, sizes and access times),
 * or validating trees in depth (fetch/ does that; we re-check only what could
 * corrupt the database or crash us).
 *
 * Connection mode: SQLITE_OPEN_NOMUTEX ("multi-thread" mode). Every use of
 * the connection already happens under ix->lock, and that lock must exist
 * regardless: a FULLMUTEX connection would make single API calls atomic, but
 * not our sequences of them (bind/step/column reads, BEGIN..COMMIT, reading
 * sqlite3_errmsg after a failure). A second, per-call sqlite mutex would be
 * pure overhead on the hot block_add/blocks_get paths.
 *
 * Busy handling: the busy timeout (5 s) waits for other processes' locks.
 * Write transactions start with BEGIN IMMEDIATE so they never need to
 * upgrade a read lock mid-transaction (an upgrade failure is SQLITE_BUSY that
 * the busy handler cannot resolve). A statement that still reports BUSY
 * outside a transaction is retried a bounded number of times; if the
 * database stays locked past that, the caller gets -EIO, never -EBUSY.
 */
#include "index/index.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index/ix_internal.h"
#include "util/log.h"

/* Extra attempts after the busy timeout expired: bounds a wait to ~30 s. */
#define IX_BUSY_RETRIES 12

/*
 * Schema migrations: ix_migrations[v] upgrades a database from user_version
 * v to v+1. Never edit a released entry; append a new one (e.g. "ALTER TABLE
 * blobs ADD COLUMN ...") and bump IX_SCHEMA_VERSION.
 */
static const char *const ix_migrations[IX_SCHEMA_VERSION] = {
	/* 0 -> 1: initial schema */
	"CREATE TABLE repos ("
	"  id INTEGER PRIMARY KEY,"
	"  type INTEGER NOT NULL,"
	"  repo_id TEXT NOT NULL,"
	"  private INTEGER NOT NULL DEFAULT 0,"
	"  gated TEXT NOT NULL DEFAULT 'false',"
	/* NULL until repo_put: a repo row created implicitly by a ref or
	 * commit has never had its metadata checked. */
	"  checked_at INTEGER,"
	"  UNIQUE(type, repo_id));"
	"CREATE TABLE refs ("
	"  repo INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL," /* '' = the default branch */
	"  commit_sha TEXT NOT NULL,"
	"  resolved_at INTEGER NOT NULL,"
	"  PRIMARY KEY(repo, name)) WITHOUT ROWID;"
	"CREATE TABLE commits ("
	"  id INTEGER PRIMARY KEY,"
	"  repo INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
	"  sha TEXT NOT NULL,"
	"  date INTEGER NOT NULL DEFAULT 0,"
	"  listed INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE(repo, sha));"
	/* Whole trees are loaded at once (core/ builds them in memory), so
	 * the (commit, path) key is the only access path we need. */
	"CREATE TABLE entries ("
	"  commit_id INTEGER NOT NULL REFERENCES commits(id) ON DELETE CASCADE,"
	"  path TEXT NOT NULL,"
	"  kind INTEGER NOT NULL CHECK(kind IN (1, 2)),"
	"  size INTEGER NOT NULL,"
	"  oid TEXT,"
	"  sha256 TEXT,"
	"  xet_hash TEXT,"
	"  PRIMARY KEY(commit_id, path)) WITHOUT ROWID;"
	"CREATE TABLE blobs ("
	"  content_id TEXT PRIMARY KEY NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  block_size INTEGER NOT NULL CHECK(block_size > 0),"
	"  complete INTEGER NOT NULL DEFAULT 0,"
	"  verified INTEGER NOT NULL DEFAULT 0,"
	"  last_access INTEGER NOT NULL DEFAULT 0,"
	"  pinned INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
	/* Eviction walks unpinned blobs oldest first. */
	"CREATE INDEX blobs_lru ON blobs(pinned, last_access);"
	"CREATE TABLE blocks ("
	"  content_id TEXT NOT NULL REFERENCES blobs(content_id) ON DELETE CASCADE,"
	"  idx INTEGER NOT NULL,"
	"  stored_len INTEGER NOT NULL,"
	"  PRIMARY KEY(content_id, idx)) WITHOUT ROWID;"
	/* Block indexes beyond the blob's end would make 'complete' lie and
	 * leak space nobody accounts for: refuse them in the database itself. */
	"CREATE TRIGGER blocks_range BEFORE INSERT ON blocks"
	"  WHEN NEW.idx < 0 OR NEW.idx >= (SELECT (size + block_size - 1) / block_size"
	"                                FROM blobs WHERE content_id = NEW.content_id)"
	"  BEGIN SELECT RAISE(ABORT, 'block index out of range'); END;"
	/* 'complete' is kept by triggers so no caller can forget it. REPLACE
	 * does not fire the delete trigger (recursive_triggers is off), which
	 * is right: the block is present again right after. */
	"CREATE TRIGGER blocks_added AFTER INSERT ON blocks BEGIN"
	"  UPDATE blobs SET complete = ((SELECT count(*) FROM blocks"
	"      WHERE content_id = NEW.content_id) >= (size + block_size - 1) / block_size)"
	"    WHERE content_id = NEW.content_id;"
	"  END;"
	"CREATE TRIGGER blocks_deleted AFTER DELETE ON blocks BEGIN"
	"  UPDATE blobs SET complete = 0 WHERE content_id = OLD.content_id AND complete;"
	"  END;"
	"CREATE TABLE settings ("
	"  key TEXT PRIMARY KEY NOT NULL,"
	"  value TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE pins ("
	"  repo INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
	"  rev TEXT NOT NULL,"
	"  commit_sha TEXT,"
	"  globs TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY(repo, rev)) WITHOUT ROWID;",
	/* 1 -> 2: pins resolved to commits, cumulative counters for status.
	 * IF NOT EXISTS: caches made before this migration existed created
	 * these tables at open time. */
	"CREATE TABLE IF NOT EXISTS pin_commits ("
	"  repo INTEGER NOT NULL,"
	"  rev TEXT NOT NULL,"
	"  commit_sha TEXT NOT NULL,"
	"  FOREIGN KEY(repo, rev) REFERENCES pins(repo, rev) ON DELETE CASCADE,"
	"  PRIMARY KEY(repo, rev, commit_sha)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS counters ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  value INTEGER NOT NULL) WITHOUT ROWID;",
	/* 2 -> 3: content id -> the listed files holding it (`modelfs serve`
	 * answers peers by hash and checks every holder's visibility). */
	("CREATE INDEX IF NOT EXISTS entries_sha256 ON entries(sha256) WHERE sha256 IS NOT NULL;"
	 "CREATE INDEX IF NOT EXISTS entries_oid ON entries(oid) WHERE sha256 IS NULL;"),
};


static const char *const ix_sql[ST_COUNT] = {
	/* never-checked visibility counts as private; readable holders first */
	[ST_HOLDERS] = "SELECT r.type, r.repo_id, c.sha, e.path, e.size, e.sha256 IS NOT NULL,"
		       " r.private OR r.checked_at IS NULL AS hidden, r.gated"
		       " FROM entries e JOIN commits c ON c.id = e.commit_id"
		       " JOIN repos r ON r.id = c.repo"
		       " WHERE e.kind = 1 AND (e.sha256 = ?1 OR (e.sha256 IS NULL AND e.oid = ?1))"
		       " ORDER BY hidden, r.gated != 'false', c.id DESC LIMIT ?2",
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_REPO_ID] = "SELECT id FROM repos WHERE type = ?1 AND repo_id = ?2",
	[ST_REPO_INS] = "INSERT OR IGNORE INTO repos(type, repo_id) VALUES(?1, ?2)",
	[ST_REPO_PUT] = "INSERT INTO repos(type, repo_id, private, gated, checked_at)"
			" VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(type, repo_id) DO UPDATE SET"
			" private = excluded.private, gated = excluded.gated,"
			" checked_at = excluded.checked_at",
	[ST_REPO_GET] = "SELECT private, gated, checked_at FROM repos"
			" WHERE type = ?1 AND repo_id = ?2 AND checked_at IS NOT NULL",
	[ST_REF_PUT] = "INSERT INTO refs(repo, name, commit_sha, resolved_at)"
		       " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(repo, name) DO UPDATE SET"
		       " commit_sha = excluded.commit_sha, resolved_at = excluded.resolved_at",
	[ST_REF_GET] = "SELECT f.commit_sha, f.resolved_at FROM refs f"
		       " JOIN repos r ON r.id = f.repo"
		       " WHERE r.type = ?1 AND r.repo_id = ?2 AND f.name = ?3",
	[ST_COMMIT_PUT] = "INSERT INTO commits(repo, sha, date) VALUES(?1, ?2, ?3)"
			  " ON CONFLICT(repo, sha) DO UPDATE SET date = excluded.date",
	[ST_COMMIT_INS] = "INSERT OR IGNORE INTO commits(repo, sha) VALUES(?1, ?2)",
	[ST_COMMIT_ID] = "SELECT id FROM commits WHERE repo = ?1 AND sha = ?2",
	[ST_COMMIT_GET] = "SELECT c.date, c.listed FROM commits c"
			  " JOIN repos r ON r.id = c.repo"
			  " WHERE r.type = ?1 AND r.repo_id = ?2 AND c.sha = ?3",
	[ST_ENTRIES_DEL] = "DELETE FROM entries WHERE commit_id = ?1",
	[ST_ENTRY_INS] = "INSERT INTO entries(commit_id, path, kind, size, oid, sha256, xet_hash)"
			 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_COMMIT_LISTED] = "UPDATE commits SET listed = 1 WHERE id = ?1",
	/* One statement, so one read snapshot: a concurrent tree_put of the
	 * same commit is seen entirely or not at all. The LEFT JOIN yields a
	 * single NULL-path row for a listed but empty tree. */
	[ST_TREE_GET] = "SELECT e.path, e.kind, e.size, e.oid, e.sha256, e.xet_hash"
			" FROM repos r JOIN commits c ON c.repo = r.id"
			" LEFT JOIN entries e ON e.commit_id = c.id"
			" WHERE r.type = ?1 AND r.repo_id = ?2 AND c.sha = ?3 AND c.listed"
			" ORDER BY e.path",
	[ST_LIST_ORGS] = "SELECT DISTINCT substr(repo_id, 1, instr(repo_id, '/') - 1)"
			 " FROM repos WHERE type = ?1 ORDER BY 1",
	/* '0' sorts right after '/', so [org/, org0) is exactly the ids under
	 * org/ and the (type, repo_id) index serves the range. */
	[ST_LIST_REPOS] = "SELECT substr(repo_id, ?3) FROM repos WHERE type = ?1"
			  " AND repo_id >= ?2 || '/' AND repo_id < ?2 || '0' ORDER BY repo_id",
	[ST_LIST_REFS] = "SELECT f.name FROM refs f JOIN repos r ON r.id = f.repo"
			 " WHERE r.type = ?1 AND r.repo_id = ?2 AND f.name <> '' ORDER BY f.name",
	[ST_BLOB_INS] = "INSERT OR IGNORE INTO blobs(content_id, size, block_size, complete)"
			" VALUES(?1, ?2, ?3, ?2 = 0)",
	[ST_BLOB_BS] = "SELECT block_size FROM blobs WHERE content_id = ?1",
	[ST_BLOCKS_GET] = "SELECT idx FROM blocks WHERE content_id = ?1 AND idx < ?2",
	[ST_BLOCK_ADD] = "INSERT OR REPLACE INTO blocks(content_id, idx, stored_len)"
			 " VALUES(?1, ?2, ?3)",
	[ST_BLOCK_DEL] = "DELETE FROM blocks WHERE content_id = ?1 AND idx = ?2",
	[ST_BLOCKS_DROP] = "DELETE FROM blocks WHERE content_id = ?1",
	[ST_BLOB_VERIFIED] = "UPDATE blobs SET verified = ?2 WHERE content_id = ?1",
	[ST_BLOB_GET] = "SELECT size, block_size, verified, pinned FROM blobs"
			" WHERE content_id = ?1",
	/* max(): a late batch from a slower thread must not move time back. */
	[ST_TOUCH] = "UPDATE blobs SET last_access = max(last_access, ?2)"
		     " WHERE content_id = ?1",
	[ST_SET_PUT] = "INSERT OR REPLACE INTO settings(key, value) VALUES(?1, ?2)",
	[ST_SET_GET] = "SELECT value FROM settings WHERE key = ?1",
	/* One statement: all six numbers come from the same snapshot. */
	[ST_TOTALS] = "SELECT (SELECT count(*) FROM blobs), (SELECT count(*) FROM blocks),"
		      " (SELECT coalesce(sum(stored_len), 0) FROM blocks),"
		      " (SELECT coalesce(sum(size), 0) FROM blobs WHERE pinned),"
		      " (SELECT count(*) FROM repos), (SELECT count(*) FROM commits)",
};


/* --- small helpers ------------------------------------------------------- */

/* Maps a failed sqlite call to a negative errno and logs sqlite's message.
 * Must be called before anything else touches the connection. */
int ix_fail(struct mfs_ix *ix, int rc, const char *what)
{
	int err;

	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		err = -ENOMEM;
		break;
	case SQLITE_FULL:
		/* The cache disk is full: callers evict on ENOSPC (DESIGN §4). */
		err = -ENOSPC;
		break;
	default:
		err = -EIO;
		break;
	}
	mfs_error("index %s: %s: %s (sqlite error %d)", ix->path, what,
		  sqlite3_errmsg(ix->db), sqlite3_extended_errcode(ix->db));
	return err;
}

/* Returns a statement to its pristine state for the next user. */
void ix_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* sqlite3_step with a bounded retry of SQLITE_BUSY. Retrying is only safe
 * outside an explicit transaction (sqlite's own rule); inside one we hold the
 * write lock from BEGIN IMMEDIATE, so BUSY cannot happen there anyway. */
int ix_step(struct mfs_ix *ix, sqlite3_stmt *st)
{
	int rc;

	for (int tries = 0;; tries++) {
		rc = sqlite3_step(st);
		if ((rc & 0xff) != SQLITE_BUSY)
			return rc;
		if (tries >= IX_BUSY_RETRIES || !sqlite3_get_autocommit(ix->db))
			return rc;
		/* sqlite returns BUSY without waiting in its busy handler when
		 * waiting could deadlock (another connection switching to WAL,
		 * recovering the WAL, upgrading a lock): back off ourselves,
		 * 10 ms doubling to 640 ms, so concurrent openers take turns. */
		struct timespec pause = { 0, (10L << (tries < 6 ? tries : 6)) * 1000000L };
		if (tries >= 3)
			mfs_warn("index %s: database locked by another process, retrying",
				 ix->path);
		sqlite3_reset(st);
		nanosleep(&pause, NULL);
	}
}

/* Runs a statement that returns no rows (or whose rows we ignore). */
int ix_exec(struct mfs_ix *ix, enum ix_st which, const char *what)
{
	sqlite3_stmt *st = ix->st[which];
	int rc = ix_step(ix, st);
	int ret = 0;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = ix_fail(ix, rc, what);
	ix_done(st);
	return ret;
}

int ix_begin(struct mfs_ix *ix)
{
	return ix_exec(ix, ST_BEGIN, "begin transaction");
}

int ix_commit(struct mfs_ix *ix)
{
	return ix_exec(ix, ST_COMMIT, "commit");
}

/* Best effort: a failed statement may already have rolled back. */
void ix_rollback(struct mfs_ix *ix)
{
	if (!sqlite3_get_autocommit(ix->db)) {
		sqlite3_step(ix->st[ST_ROLLBACK]);
		ix_done(ix->st[ST_ROLLBACK]);
	}
}

/* Ends the caller's write transaction: commits it if every step succeeded
 * (ret == 0), else rolls it back. Returns the outcome. */
int ix_end(struct mfs_ix *ix, int ret)
{
	if (!ret)
		ret = ix_commit(ix);
	if (ret)
		ix_rollback(ix);
	return ret;
}

int ix_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s, (int)strlen(s), SQLITE_STATIC);
}

/* Binds "" as NULL: optional hashes take no space when absent. */
int ix_bind_opt(sqlite3_stmt *st, int i, const char *s)
{
	return s[0] ? ix_bind_text(st, i, s) : sqlite3_bind_null(st, i);
}

/* Copies a text column into dst[cap]; false if it does not fit (which for
 * our fixed-size fields means the row is not one we wrote). */
bool ix_col_copy(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	size_t len = (size_t)sqlite3_column_bytes(st, col);

	if (!s) {
		dst[0] = '\0';
		return true;
	}
	if (len >= cap)
		return false;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return true;
}

/* Validates a hex id of exactly `want` digits and lowercases it into out,
 * so "ABC.." and "abc.." name the same commit or blob. */
int ix_hex_norm(const char *in, size_t want, char *out)
{
	if (!in || strnlen(in, want + 1) != want || !mfs_hex_valid(in, want))
		return -EINVAL;
	for (size_t i = 0; i < want; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[want] = '\0';
	return 0;
}

/* A content id is a git sha1 (40) or a sha256 (64). */
int ix_cid_norm(const char *in, char out[65])
{
	size_t len;

	if (!in)
		return -EINVAL;
	len = strnlen(in, 65);
	if (len != 40 && len != 64)
		return -EINVAL;
	return ix_hex_norm(in, len, out);
}

/* A batch of content ids is checked whole before any is used, so a bad id
 * cannot half-apply it. */
int ix_cids_check(const char *const *ids, size_t n)
{
	char cid[65];

	if (n && !ids)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (ix_cid_norm(ids[i], cid))
			return -EINVAL;
	return 0;
}

int ix_repo_check(const struct mfs_repo *r)
{
	if (!r || (r->type != MFS_REPO_MODEL && r->type != MFS_REPO_DATASET))
		return -EINVAL;
	if (strnlen(r->id, sizeof r->id) == sizeof r->id || !mfs_repo_id_valid(r->id))
		return -EINVAL;
	return 0;
}

int ix_rev_check(const char *rev)
{
	if (!rev || strnlen(rev, IX_REV_MAX + 1) > IX_REV_MAX)
		return -EINVAL;
	for (const unsigned char *p = (const unsigned char *)rev; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	return 0;
}

void ix_bind_repo(sqlite3_stmt *st, const struct mfs_repo *r)
{
	sqlite3_bind_int(st, 1, (int)r->type);
	ix_bind_text(st, 2, r->id);
}

/* Row id of a repo; with create, inserts a bare row first if needed.
 * -ENOENT if absent and !create. Caller holds the lock. */
int ix_repo_rowid(struct mfs_ix *ix, const struct mfs_repo *r, bool create,
			 int64_t *id)
{
	sqlite3_stmt *st = ix->st[ST_REPO_ID];
	int ret = 0, rc;

	ix_bind_repo(st, r);
	rc = ix_step(ix, st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		goto out;
	}
	if (rc != SQLITE_DONE) {
		ret = ix_fail(ix, rc, "look up repo");
		goto out;
	}
	if (!create) {
		ret = -ENOENT;
		goto out;
	}
	ix_done(st);
	/* INSERT OR IGNORE then SELECT again: another process may insert the
	 * same repo between our two statements, and that is fine. */
	ix_bind_repo(ix->st[ST_REPO_INS], r);
	ret = ix_exec(ix, ST_REPO_INS, "insert repo");
	if (ret)
		goto out;
	ix_bind_repo(st, r);
	rc = ix_step(ix, st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	else
		ret = rc == SQLITE_DONE ? -EIO : ix_fail(ix, rc, "look up repo");
out:
	ix_done(st);
	return ret;
}


/* Grows a caller-owned array by one element of `size` bytes. */
void *ix_grow(void **v, size_t *n, size_t *cap, size_t size)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		void *nv = realloc(*v, c * size);

		if (!nv)
			return NULL;
		*v = nv;
		*cap = c;
	}
	return (char *)*v + (*n)++ * size;
}

/* Frees every element (with rows->drop) and the vector itself. */
void ix_vec_free(const struct ix_rows *rows, struct ix_vec *vec)
{
	for (size_t i = 0; rows->drop && i < vec->n; i++)
		rows->drop((char *)vec->v + i * rows->size);
	free(vec->v);
	*vec = (struct ix_vec){ 0 };
}

/* Steps st to its end, appending one element per row that rows->fill
 * keeps. Caller holds the lock and resets or finalizes st afterwards. On
 * error nothing is left in vec (a failed element is freed with the rest). */
int ix_collect(struct mfs_ix *ix, sqlite3_stmt *st, const struct ix_rows *rows,
		      void *ctx, struct ix_vec *vec)
{
	int ret = 0, rc;

	while ((rc = ix_step(ix, st)) == SQLITE_ROW) {
		void *e = ix_grow(&vec->v, &vec->n, &vec->cap, rows->size);

		if (!e) {
			ret = -ENOMEM;
			break;
		}
		memset(e, 0, rows->size);
		ret = rows->fill(ix, st, e, ctx);
		if (ret == IX_ROW_SKIP) {
			vec->n--;
			ret = 0;
			continue;
		}
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = ix_fail(ix, rc, rows->what);
	if (ret)
		ix_vec_free(rows, vec);
	return ret;
}

/* The end of every one-shot list query: unless ret already reports that
 * preparing st failed, collects its rows; then finalizes st and releases
 * the lock the caller took. */
int ix_query_rows(struct mfs_ix *ix, int ret, sqlite3_stmt *st,
			 const struct ix_rows *rows, void *ctx, struct ix_vec *vec)
{
	if (!ret)
		ret = ix_collect(ix, st, rows, ctx, vec);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

/* A malloc'd copy of a text column ("" for NULL); NULL if out of memory. */
char *ix_col_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	size_t len = (size_t)sqlite3_column_bytes(st, col);
	char *copy = malloc(len + 1);

	if (!copy)
		return NULL;
	if (len)
		memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

static void ix_name_drop(void *elem)
{
	free(*(char **)elem);
}

static int ix_name_fill(struct mfs_ix *ix, sqlite3_stmt *st, void *elem, void *ctx)
{
	const unsigned char *s = sqlite3_column_text(st, 0);

	(void)ix;
	(void)ctx;
	/* An org-less id ("noslash") has no org: skip, don't list "". */
	if (!s || !s[0])
		return IX_ROW_SKIP;
	*(char **)elem = ix_col_dup(st, 0);
	return *(char **)elem ? 0 : -ENOMEM;
}

const struct ix_rows ix_name_rows = {
	sizeof(char *), ix_name_fill, ix_name_drop, NULL,
};

/* Runs a bound single-column query under the lock, collecting the names;
 * unlocks; then feeds the callback. Consumes the bindings of st. */
int ix_names_run(struct mfs_ix *ix, sqlite3_stmt *st, const char *what,
			mfs_ix_name_fn cb, void *ctx)
{
	struct ix_rows rows = ix_name_rows;
	struct ix_vec l = { 0 };
	char **names;
	int ret;

	rows.what = what;
	ret = ix_collect(ix, st, &rows, NULL, &l);
	ix_done(st);
	pthread_mutex_unlock(&ix->lock);
	names = l.v;
	for (size_t i = 0; !ret && i < l.n; i++)
		ret = cb(ctx, names[i]);
	ix_vec_free(&rows, &l);
	return ret;
}


/* --- open / close -------------------------------------------------------- */

/* Runs one pragma-like SQL text and returns its first column (if any) in
 * buf. Used only during open, before statements are prepared. */
static int ix_pragma(struct mfs_ix *ix, const char *sql, char *buf, size_t cap)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(ix->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		ret = ix_fail(ix, rc, sql);
		goto out;
	}
	rc = ix_step(ix, st);
	if (rc == SQLITE_ROW && buf && !ix_col_copy(st, 0, buf, cap))
		buf[0] = '\0';
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = ix_fail(ix, rc, sql);
out:
	sqlite3_finalize(st);
	return ret;
}

static int ix_user_version(struct mfs_ix *ix, int *v)
{
	char buf[32];
	int ret = ix_pragma(ix, "PRAGMA user_version", buf, sizeof buf);

	if (!ret)
		*v = atoi(buf);
	return ret;
}

/* Brings the schema to IX_SCHEMA_VERSION. The version is re-read inside the
 * write transaction so two processes opening a fresh file at the same time
 * do not both create the tables. */
static int ix_migrate(struct mfs_ix *ix)
{
	char sql[64];
	char *msg = NULL;
	int v, rc, ret;

	ret = ix_user_version(ix, &v);
	if (ret)
		return ret;
	if (v == IX_SCHEMA_VERSION)
		return 0;
	ret = ix_pragma(ix, "BEGIN IMMEDIATE", NULL, 0);
	if (ret)
		return ret;
	ret = ix_user_version(ix, &v);
	if (ret)
		goto out;
	if (v > IX_SCHEMA_VERSION || v < 0) {
		/* Written by a newer modelfs: rebuilding would destroy its
		 * data, so this is not -EIO (which callers treat as "rebuild"). */
		mfs_error("index %s: schema version %d is newer than this modelfs "
			  "supports (%d); use a newer modelfs or another cache dir",
			  ix->path, v, IX_SCHEMA_VERSION);
		ret = -ENOTSUP;
		goto out;
	}
	for (; v < IX_SCHEMA_VERSION; v++) {
		rc = sqlite3_exec(ix->db, ix_migrations[v], NULL, NULL, &msg);
		if (rc != SQLITE_OK) {
			mfs_error("index %s: schema migration %d -> %d failed: %s",
				  ix->path, v, v + 1, msg ? msg : sqlite3_errstr(rc));
			sqlite3_free(msg);
			ret = -EIO;
			goto out;
		}
		/* PRAGMA arguments cannot be bound; v is our own integer. */
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
		ret = ix_pragma(ix, sql, NULL, 0);
		if (ret)
			goto out;
	}
	ret = ix_pragma(ix, "COMMIT", NULL, 0);
	if (!ret)
		mfs_debug("index %s: schema at version %d", ix->path, IX_SCHEMA_VERSION);
out:
	if (ret && !sqlite3_get_autocommit(ix->db))
		sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

void mfs_ix_close(struct mfs_ix *ix)
{
	if (!ix)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(ix->st[i]);
	if (ix->db && sqlite3_close(ix->db) != SQLITE_OK)
		mfs_error("index %s: close: %s", ix->path, sqlite3_errmsg(ix->db));
	pthread_mutex_destroy(&ix->lock);
	free(ix->path);
	free(ix);
}

int mfs_ix_open(const char *db_path, struct mfs_ix **out)
{
	struct mfs_ix *ix = NULL;
	char mode[16];
	int rc, ret = 0;

	if (!db_path || !db_path[0] || !out)
		return -EINVAL;
	*out = NULL;
	if (!sqlite3_threadsafe()) {
		/* NOMUTEX relies on sqlite's internal (non-connection) mutexes. */
		mfs_error("index: sqlite was built without thread support");
		return -ENOTSUP;
	}
	ix = calloc(1, sizeof *ix);
	if (!ix)
		return -ENOMEM;
	ix->path = strdup(db_path);
	if (!ix->path) {
		free(ix);
		return -ENOMEM;
	}
	pthread_mutex_init(&ix->lock, NULL);

	rc = sqlite3_open_v2(db_path, &ix->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		int sys = ix->db ? sqlite3_system_errno(ix->db) : 0;

		if (!ix->db) {
			ret = -ENOMEM;
			goto out;
		}
		/* A missing directory or a permission problem is not something
		 * rebuilding the database fixes: pass the real errno on. */
		ret = ix_fail(ix, rc, "open");
		if ((rc & 0xff) == SQLITE_CANTOPEN && sys > 0)
			ret = -sys;
		goto out;
	}
	sqlite3_extended_result_codes(ix->db, 1);
	/* Before the first statement that touches the file, so even switching
	 * to WAL waits for another process's lock instead of failing. */
	sqlite3_busy_timeout(ix->db, IX_BUSY_TIMEOUT_MS);

	/* The first real read of the file: a garbage file fails here. */
	rc = sqlite3_exec(ix->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int prc = rc & 0xff;

		if (prc == SQLITE_NOTADB || prc == SQLITE_CORRUPT) {
			mfs_error("index %s: not a usable database (%s); it must be "
				  "removed and rebuilt", db_path, sqlite3_errmsg(ix->db));
			ret = -EIO;
		} else {
			ret = ix_fail(ix, rc, "read database header");
		}
		goto out;
	}
	ret = ix_pragma(ix, "PRAGMA journal_mode = WAL", mode, sizeof mode);
	if (ret)
		goto out;
	if (strcmp(mode, "wal") != 0)
		/* e.g. a filesystem without shared memory for the -shm file:
		 * still correct, just readers and the writer block each other. */
		mfs_warn("index %s: WAL unavailable, journal mode is '%s'", db_path, mode);
	/* NORMAL is durable across application crashes in WAL mode and loses
	 * at most the last transactions on power loss; the index can be
	 * rebuilt from the block files, so that trade is right. */
	ret = ix_pragma(ix, "PRAGMA synchronous = NORMAL", NULL, 0);
	if (!ret)
		ret = ix_pragma(ix, "PRAGMA foreign_keys = ON", NULL, 0);
	if (!ret)
		ret = ix_migrate(ix);
	if (ret)
		goto out;

	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(ix->db, ix_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&ix->st[i], NULL);
		if (rc != SQLITE_OK) {
			ret = ix_fail(ix, rc, ix_sql[i]);
			goto out;
		}
	}
	*out = ix;
out:
	if (ret)
		mfs_ix_close(ix);
	return ret;
}
