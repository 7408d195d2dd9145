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

#include "util/log.h"

/* Bumped when a migration is appended to ix_migrations. */
#define IX_SCHEMA_VERSION 3
#define IX_BUSY_TIMEOUT_MS 5000
/* Extra attempts after the busy timeout expired: bounds a wait to ~30 s. */
#define IX_BUSY_RETRIES 12
/* Longest revision name we store (git refs are far shorter in practice). */
#define IX_REV_MAX 255
#define IX_KEY_MAX 255
#define IX_GATED_MAX 15

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
	"CREATE INDEX IF NOT EXISTS entries_sha256 ON entries(sha256) WHERE sha256 IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS entries_oid ON entries(oid) WHERE sha256 IS NULL;",
};

enum ix_st {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_REPO_ID,
	ST_REPO_INS,
	ST_REPO_PUT,
	ST_REPO_GET,
	ST_REF_PUT,
	ST_REF_GET,
	ST_COMMIT_PUT,
	ST_COMMIT_INS,
	ST_COMMIT_ID,
	ST_COMMIT_GET,
	ST_ENTRIES_DEL,
	ST_ENTRY_INS,
	ST_COMMIT_LISTED,
	ST_TREE_GET,
	ST_LIST_ORGS,
	ST_LIST_REPOS,
	ST_LIST_REFS,
	ST_BLOB_INS,
	ST_BLOB_BS,
	ST_BLOCKS_GET,
	ST_BLOCK_ADD,
	ST_BLOCK_DEL,
	ST_BLOCKS_DROP,
	ST_BLOB_VERIFIED,
	ST_BLOB_GET,
	ST_TOUCH,
	ST_SET_PUT,
	ST_SET_GET,
	ST_TOTALS,
	ST_HOLDERS,
	ST_COUNT
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

struct mfs_ix {
	pthread_mutex_t lock;
	sqlite3 *db;                  /* protected by lock */
	sqlite3_stmt *st[ST_COUNT];   /* protected by lock */
	char *path;                   /* immutable after open; for log lines */
};

/* --- small helpers ------------------------------------------------------- */

/* Maps a failed sqlite call to a negative errno and logs sqlite's message.
 * Must be called before anything else touches the connection. */
static int ix_fail(struct mfs_ix *ix, int rc, const char *what)
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
static void ix_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* sqlite3_step with a bounded retry of SQLITE_BUSY. Retrying is only safe
 * outside an explicit transaction (sqlite's own rule); inside one we hold the
 * write lock from BEGIN IMMEDIATE, so BUSY cannot happen there anyway. */
static int ix_step(struct mfs_ix *ix, sqlite3_stmt *st)
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
static int ix_exec(struct mfs_ix *ix, enum ix_st which, const char *what)
{
	sqlite3_stmt *st = ix->st[which];
	int rc = ix_step(ix, st);
	int ret = 0;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = ix_fail(ix, rc, what);
	ix_done(st);
	return ret;
}

static int ix_begin(struct mfs_ix *ix)
{
	return ix_exec(ix, ST_BEGIN, "begin transaction");
}

static int ix_commit(struct mfs_ix *ix)
{
	return ix_exec(ix, ST_COMMIT, "commit");
}

/* Best effort: a failed statement may already have rolled back. */
static void ix_rollback(struct mfs_ix *ix)
{
	if (!sqlite3_get_autocommit(ix->db)) {
		sqlite3_step(ix->st[ST_ROLLBACK]);
		ix_done(ix->st[ST_ROLLBACK]);
	}
}

/* Ends the caller's write transaction: commits it if every step succeeded
 * (ret == 0), else rolls it back. Returns the outcome. */
static int ix_end(struct mfs_ix *ix, int ret)
{
	if (!ret)
		ret = ix_commit(ix);
	if (ret)
		ix_rollback(ix);
	return ret;
}

static int ix_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s, (int)strlen(s), SQLITE_STATIC);
}

/* Binds "" as NULL: optional hashes take no space when absent. */
static int ix_bind_opt(sqlite3_stmt *st, int i, const char *s)
{
	return s[0] ? ix_bind_text(st, i, s) : sqlite3_bind_null(st, i);
}

/* Copies a text column into dst[cap]; false if it does not fit (which for
 * our fixed-size fields means the row is not one we wrote). */
static bool ix_col_copy(sqlite3_stmt *st, int col, char *dst, size_t cap)
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
static int ix_hex_norm(const char *in, size_t want, char *out)
{
	if (!in || strnlen(in, want + 1) != want || !mfs_hex_valid(in, want))
		return -EINVAL;
	for (size_t i = 0; i < want; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[want] = '\0';
	return 0;
}

/* A content id is a git sha1 (40) or a sha256 (64). */
static int ix_cid_norm(const char *in, char out[65])
{
	size_t len;

	if (!in)
		return -EINVAL;
	len = strnlen(in, 65);
	if (len != 40 && len != 64)
		return -EINVAL;
	return ix_hex_norm(in, len, out);
}

static int ix_repo_check(const struct mfs_repo *r)
{
	if (!r || (r->type != MFS_REPO_MODEL && r->type != MFS_REPO_DATASET))
		return -EINVAL;
	if (strnlen(r->id, sizeof r->id) == sizeof r->id || !mfs_repo_id_valid(r->id))
		return -EINVAL;
	return 0;
}

static int ix_rev_check(const char *rev)
{
	if (!rev || strnlen(rev, IX_REV_MAX + 1) > IX_REV_MAX)
		return -EINVAL;
	for (const unsigned char *p = (const unsigned char *)rev; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	return 0;
}

static void ix_bind_repo(sqlite3_stmt *st, const struct mfs_repo *r)
{
	sqlite3_bind_int(st, 1, (int)r->type);
	ix_bind_text(st, 2, r->id);
}

/* Row id of a repo; with create, inserts a bare row first if needed.
 * -ENOENT if absent and !create. Caller holds the lock. */
static int ix_repo_rowid(struct mfs_ix *ix, const struct mfs_repo *r, bool create,
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

/* --- row collection -------------------------------------------------------
 *
 * Every list query steps a statement to its end under the lock, copying the
 * rows into a growable vector, and only hands them out (or to the caller's
 * callback) after the lock is released: a callback may then call back into
 * the index without deadlocking, and no slow caller holds up the daemon.
 */

/* Rows collected so far; owned by the function running the query. */
struct ix_vec {
	void *v;
	size_t n, cap;
};

/* What ix_fill_fn returns to drop the row just read (a row we did not
 * write, e.g. a field longer than ours): 0 keeps it, a negative errno stops
 * the whole query. */
#define IX_ROW_SKIP 1

/* Sets a zeroed element from the current row of st. */
typedef int (*ix_fill_fn)(struct mfs_ix *ix, sqlite3_stmt *st, void *elem, void *ctx);

/* How one kind of list query turns rows into elements. */
struct ix_rows {
	size_t size;                /* bytes per element */
	ix_fill_fn fill;
	void (*drop)(void *elem);   /* frees what an element owns; NULL if nothing */
	const char *what;           /* names the query in the error log line */
};

/* Grows a caller-owned array by one element of `size` bytes. */
static void *ix_grow(void **v, size_t *n, size_t *cap, size_t size)
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
static void ix_vec_free(const struct ix_rows *rows, struct ix_vec *vec)
{
	for (size_t i = 0; rows->drop && i < vec->n; i++)
		rows->drop((char *)vec->v + i * rows->size);
	free(vec->v);
	*vec = (struct ix_vec){ 0 };
}

/* Steps st to its end, appending one element per row that rows->fill
 * keeps. Caller holds the lock and resets or finalizes st afterwards. On
 * error nothing is left in vec (a failed element is freed with the rest). */
static int ix_collect(struct mfs_ix *ix, sqlite3_stmt *st, const struct ix_rows *rows,
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
static int ix_query_rows(struct mfs_ix *ix, int ret, sqlite3_stmt *st,
			 const struct ix_rows *rows, void *ctx, struct ix_vec *vec)
{
	if (!ret)
		ret = ix_collect(ix, st, rows, ctx, vec);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

/* A malloc'd copy of a text column ("" for NULL); NULL if out of memory. */
static char *ix_col_dup(sqlite3_stmt *st, int col)
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

static const struct ix_rows ix_name_rows = {
	sizeof(char *), ix_name_fill, ix_name_drop, NULL,
};

/* Runs a bound single-column query under the lock, collecting the names;
 * unlocks; then feeds the callback. Consumes the bindings of st. */
static int ix_names_run(struct mfs_ix *ix, sqlite3_stmt *st, const char *what,
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

/* --- repos and refs ------------------------------------------------------ */

int mfs_ix_repo_put(struct mfs_ix *ix, const struct mfs_repo *repo,
		    bool private_, const char *gated, int64_t checked_at_ms)
{
	sqlite3_stmt *st;
	int ret;

	if (!ix || ix_repo_check(repo))
		return -EINVAL;
	if (!gated)
		gated = "false";
	if (strnlen(gated, IX_GATED_MAX + 1) > IX_GATED_MAX)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_REPO_PUT];
	ix_bind_repo(st, repo);
	sqlite3_bind_int(st, 3, private_ ? 1 : 0);
	ix_bind_text(st, 4, gated);
	sqlite3_bind_int64(st, 5, checked_at_ms);
	ret = ix_exec(ix, ST_REPO_PUT, "store repo");
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_repo_get(struct mfs_ix *ix, const struct mfs_repo *repo,
		    bool *private_, char gated[16], int64_t *checked_at_ms)
{
	sqlite3_stmt *st;
	int ret = 0, rc;
	char g[IX_GATED_MAX + 1];

	if (!ix || ix_repo_check(repo))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_REPO_GET];
	ix_bind_repo(st, repo);
	rc = ix_step(ix, st);
	if (rc == SQLITE_DONE) {
		ret = -ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = ix_fail(ix, rc, "load repo");
		goto out;
	}
	if (!ix_col_copy(st, 1, g, sizeof g)) {
		ret = -EIO;
		goto out;
	}
	if (private_)
		*private_ = sqlite3_column_int(st, 0) != 0;
	if (gated)
		memcpy(gated, g, strlen(g) + 1);
	if (checked_at_ms)
		*checked_at_ms = sqlite3_column_int64(st, 2);
out:
	ix_done(st);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_ref_put(struct mfs_ix *ix, const struct mfs_repo *repo,
		   const char *rev, const char *commit, int64_t resolved_at_ms)
{
	char sha[41];
	int64_t rid;
	sqlite3_stmt *st;
	int ret;

	if (!ix || ix_repo_check(repo) || ix_rev_check(rev) || ix_hex_norm(commit, 40, sha))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_repo_rowid(ix, repo, true, &rid);
	if (ret)
		goto out;
	st = ix->st[ST_REF_PUT];
	sqlite3_bind_int64(st, 1, rid);
	ix_bind_text(st, 2, rev);
	ix_bind_text(st, 3, sha);
	sqlite3_bind_int64(st, 4, resolved_at_ms);
	ret = ix_exec(ix, ST_REF_PUT, "store ref");
out:
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_ref_get(struct mfs_ix *ix, const struct mfs_repo *repo,
		   const char *rev, char commit[41], int64_t *resolved_at_ms)
{
	sqlite3_stmt *st;
	char sha[41];
	int ret = 0, rc;

	if (!ix || ix_repo_check(repo) || ix_rev_check(rev))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_REF_GET];
	ix_bind_repo(st, repo);
	ix_bind_text(st, 3, rev);
	rc = ix_step(ix, st);
	if (rc == SQLITE_DONE) {
		ret = -ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = ix_fail(ix, rc, "load ref");
		goto out;
	}
	if (!ix_col_copy(st, 0, sha, sizeof sha)) {
		ret = -EIO;
		goto out;
	}
	if (commit)
		memcpy(commit, sha, sizeof sha);
	if (resolved_at_ms)
		*resolved_at_ms = sqlite3_column_int64(st, 1);
out:
	ix_done(st);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

/* --- commits and trees --------------------------------------------------- */

int mfs_ix_commit_put(struct mfs_ix *ix, const struct mfs_repo *repo,
		      const char *commit, int64_t date_s)
{
	char sha[41];
	int64_t rid;
	sqlite3_stmt *st;
	int ret;

	if (!ix || ix_repo_check(repo) || ix_hex_norm(commit, 40, sha))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_repo_rowid(ix, repo, true, &rid);
	if (ret)
		goto out;
	st = ix->st[ST_COMMIT_PUT];
	sqlite3_bind_int64(st, 1, rid);
	ix_bind_text(st, 2, sha);
	sqlite3_bind_int64(st, 3, date_s);
	ret = ix_exec(ix, ST_COMMIT_PUT, "store commit");
out:
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_commit_get(struct mfs_ix *ix, const struct mfs_repo *repo,
		      const char *commit, int64_t *date_s, bool *listed)
{
	char sha[41];
	sqlite3_stmt *st;
	int ret = 0, rc;

	if (!ix || ix_repo_check(repo) || ix_hex_norm(commit, 40, sha))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_COMMIT_GET];
	ix_bind_repo(st, repo);
	ix_bind_text(st, 3, sha);
	rc = ix_step(ix, st);
	if (rc == SQLITE_ROW) {
		if (date_s)
			*date_s = sqlite3_column_int64(st, 0);
		if (listed)
			*listed = sqlite3_column_int(st, 1) != 0;
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else {
		ret = ix_fail(ix, rc, "load commit");
	}
	ix_done(st);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

/* Cheap checks that keep garbage out of the database; full path rules are
 * fetch/'s job but re-checking costs little next to the insert itself. */
static bool ix_entry_ok(const struct mfs_entry *e)
{
	size_t o = strnlen(e->oid, sizeof e->oid);

	return e->path && mfs_path_valid(e->path, strlen(e->path)) &&
	       (e->kind == MFS_KIND_FILE || e->kind == MFS_KIND_DIR) &&
	       e->size <= MFS_SIZE_MAX && o < sizeof e->oid &&
	       (o == 0 || mfs_hex_valid(e->oid, 40)) &&
	       strnlen(e->sha256, sizeof e->sha256) < sizeof e->sha256 &&
	       strnlen(e->xet_hash, sizeof e->xet_hash) < sizeof e->xet_hash;
}

int mfs_ix_tree_put(struct mfs_ix *ix, const struct mfs_repo *repo,
		    const char *commit, const struct mfs_entry *e, size_t n)
{
	char sha[41];
	int64_t rid, cid = 0;
	sqlite3_stmt *st;
	int ret, rc;

	if (!ix || ix_repo_check(repo) || ix_hex_norm(commit, 40, sha) || (n && !e))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!ix_entry_ok(&e[i]))
			return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_begin(ix);
	if (ret)
		goto out;
	ret = ix_repo_rowid(ix, repo, true, &rid);
	if (ret)
		goto out;
	st = ix->st[ST_COMMIT_INS];
	sqlite3_bind_int64(st, 1, rid);
	ix_bind_text(st, 2, sha);
	ret = ix_exec(ix, ST_COMMIT_INS, "insert commit");
	if (ret)
		goto out;
	st = ix->st[ST_COMMIT_ID];
	sqlite3_bind_int64(st, 1, rid);
	ix_bind_text(st, 2, sha);
	rc = ix_step(ix, st);
	if (rc == SQLITE_ROW)
		cid = sqlite3_column_int64(st, 0);
	else
		ret = ix_fail(ix, rc, "look up commit");
	ix_done(st);
	if (ret)
		goto out;

	sqlite3_bind_int64(ix->st[ST_ENTRIES_DEL], 1, cid);
	ret = ix_exec(ix, ST_ENTRIES_DEL, "replace tree");
	if (ret)
		goto out;
	st = ix->st[ST_ENTRY_INS];
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, cid);
		ix_bind_text(st, 2, e[i].path);
		sqlite3_bind_int(st, 3, (int)e[i].kind);
		sqlite3_bind_int64(st, 4, (int64_t)e[i].size);
		ix_bind_opt(st, 5, e[i].oid);
		ix_bind_opt(st, 6, e[i].sha256);
		ix_bind_opt(st, 7, e[i].xet_hash);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			if ((rc & 0xff) == SQLITE_CONSTRAINT) {
				mfs_warn("index %s: tree of %s@%s lists '%s' twice",
					 ix->path, repo->id, sha, e[i].path);
				ret = -EINVAL;
			} else {
				ret = ix_fail(ix, rc, "store tree entry");
			}
			ix_done(st);
			goto out;
		}
		/* Only reset here: every column is rebound on the next row. */
		sqlite3_reset(st);
	}
	sqlite3_clear_bindings(st);
	sqlite3_bind_int64(ix->st[ST_COMMIT_LISTED], 1, cid);
	ret = ix_exec(ix, ST_COMMIT_LISTED, "mark commit listed");
out:
	ret = ix_end(ix, ret);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

static void ix_entry_drop(void *elem)
{
	free(((struct mfs_entry *)elem)->path);
}

/* ctx: a bool set on every row, so an empty but listed tree (one NULL-path
 * row) is told apart from a commit we never listed (no row). */
static int ix_entry_fill(struct mfs_ix *ix, sqlite3_stmt *st, void *elem, void *ctx)
{
	struct mfs_entry *x = elem;

	*(bool *)ctx = true;
	if (!sqlite3_column_text(st, 0)) /* listed, empty tree */
		return IX_ROW_SKIP;
	x->path = ix_col_dup(st, 0);
	if (!x->path)
		return -ENOMEM;
	x->kind = (enum mfs_kind)sqlite3_column_int(st, 1);
	x->size = (uint64_t)sqlite3_column_int64(st, 2);
	if (!ix_col_copy(st, 3, x->oid, sizeof x->oid) ||
	    !ix_col_copy(st, 4, x->sha256, sizeof x->sha256) ||
	    !ix_col_copy(st, 5, x->xet_hash, sizeof x->xet_hash)) {
		mfs_error("index %s: malformed entry row for '%s'", ix->path, x->path);
		return -EIO;
	}
	return 0;
}

static const struct ix_rows ix_entry_rows = {
	sizeof(struct mfs_entry), ix_entry_fill, ix_entry_drop, "load tree",
};

int mfs_ix_tree_get(struct mfs_ix *ix, const struct mfs_repo *repo,
		    const char *commit, struct mfs_entry **out, size_t *n)
{
	char sha[41];
	struct ix_vec l = { 0 };
	bool found = false;
	sqlite3_stmt *st;
	int ret;

	if (!ix || !out || !n || ix_repo_check(repo) || ix_hex_norm(commit, 40, sha))
		return -EINVAL;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_TREE_GET];
	ix_bind_repo(st, repo);
	ix_bind_text(st, 3, sha);
	ret = ix_collect(ix, st, &ix_entry_rows, &found, &l);
	if (!ret && !found)
		ret = -ENOENT;
	ix_done(st);
	pthread_mutex_unlock(&ix->lock);
	/* ix_collect left nothing on error; an empty tree is handed out as
	 * NULL, as it always was (its one NULL row may have grown l). */
	if (!l.n)
		ix_vec_free(&ix_entry_rows, &l);
	if (!ret) {
		*out = l.v;
		*n = l.n;
	}
	return ret;
}

static void ix_holder_drop(void *elem)
{
	free(((struct mfs_ix_holder *)elem)->path);
}

static int ix_holder_fill(struct mfs_ix *ix, sqlite3_stmt *st, void *elem, void *ctx)
{
	struct mfs_ix_holder *h = elem;
	const char *path = (const char *)sqlite3_column_text(st, 3);

	(void)ctx;
	h->repo.type = (enum mfs_repo_type)sqlite3_column_int(st, 0);
	if (!path || !ix_col_copy(st, 1, h->repo.id, sizeof h->repo.id) ||
	    !ix_col_copy(st, 2, h->commit, sizeof h->commit) ||
	    !ix_col_copy(st, 7, h->gated, sizeof h->gated)) {
		mfs_error("index %s: malformed holder row", ix->path);
		return IX_ROW_SKIP;
	}
	h->path = ix_col_dup(st, 3);
	if (!h->path)
		return -ENOMEM;
	h->size = (uint64_t)sqlite3_column_int64(st, 4);
	h->lfs = sqlite3_column_int(st, 5) != 0;
	h->private_ = sqlite3_column_int(st, 6) != 0;
	return 0;
}

static const struct ix_rows ix_holder_rows = {
	sizeof(struct mfs_ix_holder), ix_holder_fill, ix_holder_drop, "content holders",
};

int mfs_ix_content_holders(struct mfs_ix *ix, const char *content_id, size_t max,
			   struct mfs_ix_holder **out, size_t *n)
{
	char id[65];
	struct ix_vec l = { 0 };
	sqlite3_stmt *st;
	int ret;

	if (!ix || !out || !n || !content_id || max == 0 ||
	    ix_hex_norm(content_id, strlen(content_id) == 64 ? 64 : 40, id))
		return -EINVAL;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_HOLDERS];
	ix_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)(max > 1000 ? 1000 : max));
	ret = ix_collect(ix, st, &ix_holder_rows, NULL, &l);
	ix_done(st);
	pthread_mutex_unlock(&ix->lock);
	if (!ret) {
		*out = l.v;
		*n = l.n;
	}
	return ret;
}

void mfs_ix_holders_free(struct mfs_ix_holder *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].path);
	free(v);
}

/* --- names for readdir --------------------------------------------------- */

int mfs_ix_list_orgs(struct mfs_ix *ix, enum mfs_repo_type t, mfs_ix_name_fn cb, void *ctx)
{
	sqlite3_stmt *st;

	if (!ix || !cb || (t != MFS_REPO_MODEL && t != MFS_REPO_DATASET))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_LIST_ORGS];
	sqlite3_bind_int(st, 1, (int)t);
	return ix_names_run(ix, st, "list orgs", cb, ctx);
}

int mfs_ix_list_repos(struct mfs_ix *ix, enum mfs_repo_type t, const char *org,
		      mfs_ix_name_fn cb, void *ctx)
{
	sqlite3_stmt *st;

	if (!ix || !cb || (t != MFS_REPO_MODEL && t != MFS_REPO_DATASET) || !org ||
	    !mfs_repo_name_valid(org))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_LIST_REPOS];
	sqlite3_bind_int(st, 1, (int)t);
	ix_bind_text(st, 2, org);
	/* substr() counts characters; ids are ASCII so bytes == characters. */
	sqlite3_bind_int(st, 3, (int)strlen(org) + 2);
	return ix_names_run(ix, st, "list repos", cb, ctx);
}

int mfs_ix_list_refs(struct mfs_ix *ix, const struct mfs_repo *repo,
		     mfs_ix_name_fn cb, void *ctx)
{
	sqlite3_stmt *st;

	if (!ix || !cb || ix_repo_check(repo))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_LIST_REFS];
	ix_bind_repo(st, repo);
	return ix_names_run(ix, st, "list refs", cb, ctx);
}

/* --- blobs and blocks ---------------------------------------------------- */

int mfs_ix_blob_ensure(struct mfs_ix *ix, const char *content_id, uint64_t size,
		       uint32_t *block_size)
{
	char cid[65];
	sqlite3_stmt *st;
	int ret, rc;

	if (!ix || ix_cid_norm(content_id, cid) || size > MFS_SIZE_MAX || !block_size ||
	    *block_size == 0)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_BLOB_INS];
	ix_bind_text(st, 1, cid);
	sqlite3_bind_int64(st, 2, (int64_t)size);
	sqlite3_bind_int64(st, 3, *block_size);
	ret = ix_exec(ix, ST_BLOB_INS, "insert blob");
	if (ret)
		goto out;
	/* Blob rows are never deleted through this API, so the row read here
	 * is the one just inserted or the one that was already there. */
	st = ix->st[ST_BLOB_BS];
	ix_bind_text(st, 1, cid);
	rc = ix_step(ix, st);
	if (rc == SQLITE_ROW) {
		int64_t bs = sqlite3_column_int64(st, 0);

		if (bs <= 0 || bs > UINT32_MAX) {
			mfs_error("index %s: blob %s has block size %" PRId64,
				  ix->path, cid, bs);
			ret = -EIO;
		} else {
			*block_size = (uint32_t)bs;
		}
	} else {
		ret = rc == SQLITE_DONE ? -EIO : ix_fail(ix, rc, "load blob");
	}
	ix_done(st);
out:
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_blocks_get(struct mfs_ix *ix, const char *content_id,
		      uint8_t *bitmap, uint32_t nblocks)
{
	char cid[65];
	sqlite3_stmt *st;
	int ret = 0, rc;

	if (!ix || ix_cid_norm(content_id, cid) || (nblocks && !bitmap))
		return -EINVAL;
	if (!nblocks)
		return 0;
	memset(bitmap, 0, ((size_t)nblocks + 7) / 8);
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_BLOCKS_GET];
	ix_bind_text(st, 1, cid);
	sqlite3_bind_int64(st, 2, nblocks);
	while ((rc = ix_step(ix, st)) == SQLITE_ROW) {
		int64_t i = sqlite3_column_int64(st, 0);

		if (i >= 0 && i < nblocks)
			bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
	}
	if (rc != SQLITE_DONE)
		ret = ix_fail(ix, rc, "load block bitmap");
	ix_done(st);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_block_add(struct mfs_ix *ix, const char *content_id, uint32_t idx,
		     uint64_t stored_len)
{
	char cid[65];
	sqlite3_stmt *st;
	int ret = 0, rc;

	if (!ix || ix_cid_norm(content_id, cid) || stored_len > INT64_MAX)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_BLOCK_ADD];
	ix_bind_text(st, 1, cid);
	sqlite3_bind_int64(st, 2, idx);
	sqlite3_bind_int64(st, 3, (int64_t)stored_len);
	rc = ix_step(ix, st);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		ret = -ENOENT; /* blob_ensure was never called for it */
	else if (rc == SQLITE_CONSTRAINT_TRIGGER)
		ret = -EINVAL; /* idx past the blob's end */
	else if (rc != SQLITE_DONE)
		ret = ix_fail(ix, rc, "store block");
	ix_done(st);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_block_del(struct mfs_ix *ix, const char *content_id, uint32_t idx)
{
	char cid[65];
	int ret;

	if (!ix || ix_cid_norm(content_id, cid))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ix_bind_text(ix->st[ST_BLOCK_DEL], 1, cid);
	sqlite3_bind_int64(ix->st[ST_BLOCK_DEL], 2, idx);
	/* Idempotent: eviction may race with a verification drop. */
	ret = ix_exec(ix, ST_BLOCK_DEL, "delete block");
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_blob_drop_blocks(struct mfs_ix *ix, const char *content_id)
{
	char cid[65];
	int ret;

	if (!ix || ix_cid_norm(content_id, cid))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	/* The blocks and the verified flag go together: a blob whose blocks
	 * will be fetched again must be hashed again. */
	ret = ix_begin(ix);
	if (ret)
		goto out;
	ix_bind_text(ix->st[ST_BLOCKS_DROP], 1, cid);
	ret = ix_exec(ix, ST_BLOCKS_DROP, "drop blocks");
	if (ret)
		goto out;
	ix_bind_text(ix->st[ST_BLOB_VERIFIED], 1, cid);
	sqlite3_bind_int(ix->st[ST_BLOB_VERIFIED], 2, 0);
	ret = ix_exec(ix, ST_BLOB_VERIFIED, "clear verified");
out:
	ret = ix_end(ix, ret);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_blob_set_verified(struct mfs_ix *ix, const char *content_id, bool ok)
{
	char cid[65];
	int ret;

	if (!ix || ix_cid_norm(content_id, cid))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ix_bind_text(ix->st[ST_BLOB_VERIFIED], 1, cid);
	sqlite3_bind_int(ix->st[ST_BLOB_VERIFIED], 2, ok ? 1 : 0);
	ret = ix_exec(ix, ST_BLOB_VERIFIED, "set verified");
	/* changes() counts matched rows, even if the value was unchanged. */
	if (!ret && sqlite3_changes(ix->db) == 0)
		ret = -ENOENT;
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_blob_get(struct mfs_ix *ix, const char *content_id, uint64_t *size,
		    uint32_t *block_size, bool *verified, bool *pinned)
{
	char cid[65];
	sqlite3_stmt *st;
	int ret = 0, rc;

	if (!ix || ix_cid_norm(content_id, cid))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_BLOB_GET];
	ix_bind_text(st, 1, cid);
	rc = ix_step(ix, st);
	if (rc == SQLITE_ROW) {
		if (size)
			*size = (uint64_t)sqlite3_column_int64(st, 0);
		if (block_size)
			*block_size = (uint32_t)sqlite3_column_int64(st, 1);
		if (verified)
			*verified = sqlite3_column_int(st, 2) != 0;
		if (pinned)
			*pinned = sqlite3_column_int(st, 3) != 0;
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else {
		ret = ix_fail(ix, rc, "load blob");
	}
	ix_done(st);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_touch(struct mfs_ix *ix, const char *const *content_ids, size_t n,
		 int64_t when_ms)
{
	char cid[65];
	sqlite3_stmt *st;
	int ret;

	if (!ix || (n && !content_ids))
		return -EINVAL;
	/* Validate everything first so a bad id cannot half-apply a batch. */
	for (size_t i = 0; i < n; i++)
		if (ix_cid_norm(content_ids[i], cid))
			return -EINVAL;
	if (!n)
		return 0;
	pthread_mutex_lock(&ix->lock);
	ret = ix_begin(ix);
	if (ret)
		goto out;
	st = ix->st[ST_TOUCH];
	for (size_t i = 0; i < n && !ret; i++) {
		ix_cid_norm(content_ids[i], cid);
		ix_bind_text(st, 1, cid);
		sqlite3_bind_int64(st, 2, when_ms);
		/* Unknown ids are ignored: the blob may have been evicted
		 * between the read and this batch. */
		ret = ix_exec(ix, ST_TOUCH, "touch blob");
	}
out:
	ret = ix_end(ix, ret);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

/* --- settings ------------------------------------------------------------ */

int mfs_ix_setting_put(struct mfs_ix *ix, const char *key, const char *value)
{
	int ret;

	if (!ix || !key || !key[0] || strnlen(key, IX_KEY_MAX + 1) > IX_KEY_MAX || !value)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ix_bind_text(ix->st[ST_SET_PUT], 1, key);
	ix_bind_text(ix->st[ST_SET_PUT], 2, value);
	ret = ix_exec(ix, ST_SET_PUT, "store setting");
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_setting_get(struct mfs_ix *ix, const char *key, char *value, size_t cap)
{
	sqlite3_stmt *st;
	int ret = 0, rc;

	if (!ix || !key || !key[0] || strnlen(key, IX_KEY_MAX + 1) > IX_KEY_MAX ||
	    !value || !cap)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_SET_GET];
	ix_bind_text(st, 1, key);
	rc = ix_step(ix, st);
	if (rc == SQLITE_ROW) {
		/* Never truncate silently: a cut-off number is a wrong number. */
		if (!ix_col_copy(st, 0, value, cap))
			ret = -ERANGE;
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else {
		ret = ix_fail(ix, rc, "load setting");
	}
	ix_done(st);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

/* --- totals -------------------------------------------------------------- */

int mfs_ix_totals(struct mfs_ix *ix, struct mfs_ix_totals *t)
{
	sqlite3_stmt *st;
	int ret = 0, rc;

	if (!ix || !t)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	st = ix->st[ST_TOTALS];
	rc = ix_step(ix, st);
	if (rc == SQLITE_ROW) {
		t->blobs = (uint64_t)sqlite3_column_int64(st, 0);
		t->blocks = (uint64_t)sqlite3_column_int64(st, 1);
		t->stored_bytes = (uint64_t)sqlite3_column_int64(st, 2);
		t->pinned_bytes = (uint64_t)sqlite3_column_int64(st, 3);
		t->repos = (uint64_t)sqlite3_column_int64(st, 4);
		t->commits = (uint64_t)sqlite3_column_int64(st, 5);
	} else {
		ret = ix_fail(ix, rc == SQLITE_DONE ? SQLITE_ERROR : rc, "totals");
	}
	ix_done(st);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

/* --- pins, eviction, cache statistics -------------------------------------
 *
 * These run from the CLI and from the evictor's background thread, never
 * per FUSE read, so each prepares its statement per call instead of adding
 * to the persistent set (keeps open() cheap and this section self-contained).
 */

/* Prepares one statement; caller holds the lock. */
static int ix_prep(struct mfs_ix *ix, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(ix->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : ix_fail(ix, rc, sql);
}

/* Steps a one-shot statement that returns no rows, then finalizes it. */
static int ix_run1(struct mfs_ix *ix, sqlite3_stmt *st, const char *what)
{
	int rc = ix_step(ix, st), ret = 0;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = ix_fail(ix, rc, what);
	sqlite3_finalize(st);
	return ret;
}

/* Steps a one-shot statement once for one item of a batch (a row is an
 * error here) and resets it for the next item's bindings. */
static int ix_run_item(struct mfs_ix *ix, sqlite3_stmt *st, const char *what)
{
	int rc = ix_step(ix, st), ret = 0;

	if (rc != SQLITE_DONE)
		ret = ix_fail(ix, rc, what);
	sqlite3_reset(st);
	return ret;
}

int mfs_ix_pin_add(struct mfs_ix *ix, const struct mfs_repo *repo, const char *rev,
		   const char *commit, const char *globs, int64_t now_ms)
{
	sqlite3_stmt *st = NULL;
	char sha[41];
	int64_t rid;
	int ret;

	if (!ix || ix_repo_check(repo) || ix_rev_check(rev) || ix_hex_norm(commit, 40, sha) ||
	    !globs)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_begin(ix);
	if (ret)
		goto out;
	ret = ix_repo_rowid(ix, repo, true, &rid);
	if (!ret)
		ret = ix_prep(ix, "INSERT INTO pins(repo, rev, commit_sha, globs, created_at)"
			      " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(repo, rev) DO UPDATE SET"
			      " commit_sha = excluded.commit_sha, globs = excluded.globs", &st);
	if (!ret) {
		sqlite3_bind_int64(st, 1, rid);
		ix_bind_text(st, 2, rev);
		ix_bind_text(st, 3, sha);
		ix_bind_text(st, 4, globs);
		sqlite3_bind_int64(st, 5, now_ms);
		ret = ix_run1(ix, st, "store pin");
	}
	if (!ret)
		ret = ix_prep(ix, "INSERT OR IGNORE INTO pin_commits(repo, rev, commit_sha)"
			      " VALUES(?1, ?2, ?3)", &st);
	if (!ret) {
		sqlite3_bind_int64(st, 1, rid);
		ix_bind_text(st, 2, rev);
		ix_bind_text(st, 3, sha);
		ret = ix_run1(ix, st, "store pinned commit");
	}
out:
	ret = ix_end(ix, ret);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_pin_del(struct mfs_ix *ix, const struct mfs_repo *repo, const char *rev)
{
	sqlite3_stmt *st = NULL;
	int64_t rid;
	int ret;

	if (!ix || ix_repo_check(repo) || ix_rev_check(rev))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_repo_rowid(ix, repo, false, &rid);
	if (!ret)
		ret = ix_prep(ix, "DELETE FROM pins WHERE repo = ?1 AND rev = ?2", &st);
	if (!ret) {
		sqlite3_bind_int64(st, 1, rid);
		ix_bind_text(st, 2, rev);
		ret = ix_run1(ix, st, "delete pin");
		if (!ret && sqlite3_changes(ix->db) == 0)
			ret = -ENOENT;
	}
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

struct ix_pin_row {
	struct mfs_ix_pin p;
	char rev[IX_REV_MAX + 1];
	char commit[41];
	char *globs;
};

static void ix_pin_drop(void *elem)
{
	free(((struct ix_pin_row *)elem)->globs);
}

static int ix_pin_fill(struct mfs_ix *ix, sqlite3_stmt *st, void *elem, void *ctx)
{
	struct ix_pin_row *r = elem;

	(void)ix;
	(void)ctx;
	r->p.repo.type = sqlite3_column_int(st, 0) ? MFS_REPO_DATASET : MFS_REPO_MODEL;
	if (!ix_col_copy(st, 1, r->p.repo.id, sizeof(r->p.repo.id)) ||
	    !ix_col_copy(st, 2, r->rev, sizeof(r->rev)) ||
	    !ix_col_copy(st, 3, r->commit, sizeof(r->commit)) ||
	    !(r->globs = ix_col_dup(st, 4)))
		return IX_ROW_SKIP; /* not a row we wrote (or out of memory) */
	r->p.created_ms = sqlite3_column_int64(st, 5);
	r->p.current = sqlite3_column_int(st, 6) != 0;
	return 0;
}

static const struct ix_rows ix_pin_rows = {
	sizeof(struct ix_pin_row), ix_pin_fill, ix_pin_drop, "list pins",
};

int mfs_ix_pins_list(struct mfs_ix *ix, mfs_ix_pin_fn cb, void *ctx)
{
	struct ix_vec l = { 0 };
	struct ix_pin_row *v;
	sqlite3_stmt *st = NULL;
	int ret;

	if (!ix || !cb)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_prep(ix, "SELECT r.type, r.repo_id, p.rev, c.commit_sha, p.globs, p.created_at,"
		      " c.commit_sha = p.commit_sha"
		      " FROM pins p JOIN repos r ON r.id = p.repo"
		      " JOIN pin_commits c ON c.repo = p.repo AND c.rev = p.rev"
		      " ORDER BY r.type, r.repo_id, p.rev, c.commit_sha", &st);
	ret = ix_query_rows(ix, ret, st, &ix_pin_rows, NULL, &l);
	v = l.v;
	/* The strings point into the rows only now that they stopped moving. */
	for (size_t i = 0; !ret && i < l.n; i++) {
		v[i].p.rev = v[i].rev;
		v[i].p.commit = v[i].commit;
		v[i].p.globs = v[i].globs;
		ret = cb(ctx, &v[i].p);
	}
	ix_vec_free(&ix_pin_rows, &l);
	return ret;
}

int mfs_ix_pins_apply(struct mfs_ix *ix, const char *const *content_ids, size_t n)
{
	sqlite3_stmt *st = NULL;
	char cid[65];
	int ret;

	if (!ix || (n && !content_ids))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (ix_cid_norm(content_ids[i], cid))
			return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_begin(ix);
	/* Cleared and re-set in one transaction: a concurrent evictor sees
	 * the old set or the new one, never a blob briefly unpinned. */
	if (!ret)
		ret = ix_prep(ix, "UPDATE blobs SET pinned = 0 WHERE pinned", &st);
	if (!ret)
		ret = ix_run1(ix, st, "clear pins");
	if (!ret)
		ret = ix_prep(ix, "UPDATE blobs SET pinned = 1 WHERE content_id = ?1", &st);
	for (size_t i = 0; !ret && i < n; i++) {
		ix_cid_norm(content_ids[i], cid);
		ix_bind_text(st, 1, cid);
		ret = ix_run_item(ix, st, "pin blob");
	}
	sqlite3_finalize(st);
	ret = ix_end(ix, ret);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

static int ix_lru_fill(struct mfs_ix *ix, sqlite3_stmt *st, void *elem, void *ctx)
{
	struct mfs_ix_lru *e = elem;

	(void)ix;
	(void)ctx;
	if (!ix_col_copy(st, 0, e->id, sizeof(e->id)))
		return IX_ROW_SKIP;
	e->last_access_ms = sqlite3_column_int64(st, 1);
	e->stored_bytes = (uint64_t)sqlite3_column_int64(st, 2);
	return 0;
}

static const struct ix_rows ix_lru_rows = {
	sizeof(struct mfs_ix_lru), ix_lru_fill, NULL, "list LRU blobs",
};

int mfs_ix_lru_list(struct mfs_ix *ix, size_t max, struct mfs_ix_lru **out, size_t *n)
{
	struct ix_vec l = { 0 };
	sqlite3_stmt *st = NULL;
	int ret;

	if (!ix || !out || !n)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_prep(ix, "SELECT b.content_id, b.last_access, sum(k.stored_len)"
		      " FROM blobs b JOIN blocks k ON k.content_id = b.content_id"
		      " WHERE NOT b.pinned GROUP BY b.content_id"
		      " ORDER BY b.last_access, b.content_id LIMIT ?1", &st);
	if (!ret)
		sqlite3_bind_int64(st, 1, (int64_t)(max > INT64_MAX ? INT64_MAX : max));
	ret = ix_query_rows(ix, ret, st, &ix_lru_rows, NULL, &l);
	if (!ret) {
		*out = l.v;
		*n = l.n;
	}
	return ret;
}

static int ix_block_fill(struct mfs_ix *ix, sqlite3_stmt *st, void *elem, void *ctx)
{
	struct mfs_ix_block *e = elem;

	(void)ix;
	(void)ctx;
	e->idx = (uint32_t)sqlite3_column_int64(st, 0);
	e->stored_len = (uint64_t)sqlite3_column_int64(st, 1);
	return 0;
}

static const struct ix_rows ix_block_rows = {
	sizeof(struct mfs_ix_block), ix_block_fill, NULL, "list blocks",
};

int mfs_ix_blob_blocks(struct mfs_ix *ix, const char *content_id,
		       struct mfs_ix_block **out, size_t *n)
{
	struct ix_vec l = { 0 };
	sqlite3_stmt *st = NULL;
	char cid[65];
	int ret;

	if (!ix || ix_cid_norm(content_id, cid) || !out || !n)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_prep(ix, "SELECT idx, stored_len FROM blocks WHERE content_id = ?1"
		      " ORDER BY idx", &st);
	if (!ret)
		ix_bind_text(st, 1, cid);
	ret = ix_query_rows(ix, ret, st, &ix_block_rows, NULL, &l);
	if (!ret) {
		*out = l.v;
		*n = l.n;
	}
	return ret;
}

int mfs_ix_blocks_del(struct mfs_ix *ix, const char *content_id,
		      const uint32_t *idx, size_t n)
{
	sqlite3_stmt *st = NULL;
	char cid[65];
	int ret;

	if (!ix || ix_cid_norm(content_id, cid) || (n && !idx))
		return -EINVAL;
	if (!n)
		return 0;
	pthread_mutex_lock(&ix->lock);
	ret = ix_begin(ix);
	if (!ret)
		ret = ix_prep(ix, "DELETE FROM blocks WHERE content_id = ?1 AND idx = ?2", &st);
	for (size_t i = 0; !ret && i < n; i++) {
		ix_bind_text(st, 1, cid);
		sqlite3_bind_int64(st, 2, idx[i]);
		ret = ix_run_item(ix, st, "delete block");
	}
	sqlite3_finalize(st);
	/* Blocks that come back must be hashed again. */
	if (!ret) {
		ix_bind_text(ix->st[ST_BLOB_VERIFIED], 1, cid);
		sqlite3_bind_int(ix->st[ST_BLOB_VERIFIED], 2, 0);
		ret = ix_exec(ix, ST_BLOB_VERIFIED, "clear verified");
	}
	ret = ix_end(ix, ret);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

/* Raw bytes held by a blob's present blocks (the last block is short). */
#define IX_CACHED_SQL \
	"coalesce((SELECT sum(min(b.block_size, b.size - k.idx * b.block_size))" \
	" FROM blocks k WHERE k.content_id = b.content_id), 0)"

static int ix_blob_fill(struct mfs_ix *ix, sqlite3_stmt *st, void *elem, void *ctx)
{
	struct mfs_ix_blob_info *e = elem;

	(void)ix;
	(void)ctx;
	if (!ix_col_copy(st, 0, e->id, sizeof(e->id)))
		return IX_ROW_SKIP;
	e->size = (uint64_t)sqlite3_column_int64(st, 1);
	e->block_size = (uint32_t)sqlite3_column_int64(st, 2);
	e->complete = sqlite3_column_int(st, 3) != 0;
	e->verified = sqlite3_column_int(st, 4) != 0;
	e->pinned = sqlite3_column_int(st, 5) != 0;
	e->last_access_ms = sqlite3_column_int64(st, 6);
	e->stored_bytes = (uint64_t)sqlite3_column_int64(st, 7);
	e->cached_bytes = (uint64_t)sqlite3_column_int64(st, 8);
	return 0;
}

static const struct ix_rows ix_blob_rows = {
	sizeof(struct mfs_ix_blob_info), ix_blob_fill, NULL, "list blobs",
};

int mfs_ix_blobs_list(struct mfs_ix *ix, bool complete_only,
		      struct mfs_ix_blob_info **out, size_t *n)
{
	struct ix_vec l = { 0 };
	sqlite3_stmt *st = NULL;
	int ret;

	if (!ix || !out || !n)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_prep(ix, "SELECT b.content_id, b.size, b.block_size, b.complete, b.verified,"
		      " b.pinned, b.last_access,"
		      " coalesce((SELECT sum(stored_len) FROM blocks k"
		      "   WHERE k.content_id = b.content_id), 0), " IX_CACHED_SQL
		      " FROM blobs b WHERE b.complete OR NOT ?1 ORDER BY b.content_id", &st);
	if (!ret)
		sqlite3_bind_int(st, 1, complete_only ? 1 : 0);
	ret = ix_query_rows(ix, ret, st, &ix_blob_rows, NULL, &l);
	if (!ret) {
		*out = l.v;
		*n = l.n;
	}
	return ret;
}

static int ix_commit_stat_fill(struct mfs_ix *ix, sqlite3_stmt *st, void *elem, void *ctx)
{
	struct mfs_ix_commit_stat *e = elem;
	const char *refs = (const char *)sqlite3_column_text(st, 9);

	(void)ix;
	(void)ctx;
	e->repo.type = sqlite3_column_int(st, 0) ? MFS_REPO_DATASET : MFS_REPO_MODEL;
	if (!ix_col_copy(st, 1, e->repo.id, sizeof(e->repo.id)) ||
	    !ix_col_copy(st, 2, e->commit, sizeof(e->commit)))
		return IX_ROW_SKIP;
	e->date_s = sqlite3_column_int64(st, 3);
	e->files = (uint64_t)sqlite3_column_int64(st, 4);
	e->size = (uint64_t)sqlite3_column_int64(st, 5);
	e->cached_bytes = (uint64_t)sqlite3_column_int64(st, 6);
	e->last_access_ms = sqlite3_column_int64(st, 7);
	e->pinned = sqlite3_column_int(st, 8) != 0;
	snprintf(e->refs, sizeof(e->refs), "%s", refs ? refs : "");
	return 0;
}

static const struct ix_rows ix_commit_stat_rows = {
	sizeof(struct mfs_ix_commit_stat), ix_commit_stat_fill, NULL, "commit statistics",
};

int mfs_ix_commit_stats(struct mfs_ix *ix, const struct mfs_repo *repo,
			struct mfs_ix_commit_stat **out, size_t *n)
{
	struct ix_vec l = { 0 };
	sqlite3_stmt *st = NULL;
	int ret;

	if (!ix || !out || !n || (repo && ix_repo_check(repo)))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_prep(ix, "WITH bl AS (SELECT b.content_id AS cid, b.last_access AS la, "
		      IX_CACHED_SQL " AS cached FROM blobs b)"
		      " SELECT r.type, r.repo_id, c.sha, c.date, count(e.path),"
		      " coalesce(sum(e.size), 0), coalesce(sum(bl.cached), 0),"
		      " coalesce(max(bl.la), 0),"
		      " EXISTS(SELECT 1 FROM pin_commits p WHERE p.repo = r.id"
		      "   AND p.commit_sha = c.sha),"
		      " (SELECT group_concat(CASE WHEN f.name = '' THEN '(default)'"
		      "   ELSE f.name END, ',') FROM refs f"
		      "   WHERE f.repo = r.id AND f.commit_sha = c.sha)"
		      " FROM commits c JOIN repos r ON r.id = c.repo"
		      " LEFT JOIN entries e ON e.commit_id = c.id AND e.kind = 1"
		      " LEFT JOIN bl ON bl.cid = coalesce(e.sha256, e.oid)"
		      " WHERE c.listed AND (?1 IS NULL OR (r.type = ?1 AND r.repo_id = ?2))"
		      " GROUP BY c.id ORDER BY r.type, r.repo_id, c.date, c.sha", &st);
	if (!ret && repo) {
		sqlite3_bind_int(st, 1, (int)repo->type);
		ix_bind_text(st, 2, repo->id);
	}
	ret = ix_query_rows(ix, ret, st, &ix_commit_stat_rows, NULL, &l);
	if (!ret) {
		*out = l.v;
		*n = l.n;
	}
	return ret;
}

int mfs_ix_counters_add(struct mfs_ix *ix, const char *const *names,
			const int64_t *deltas, size_t n)
{
	sqlite3_stmt *st = NULL;
	int ret;

	if (!ix || (n && (!names || !deltas)))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!names[i] || !names[i][0] || strnlen(names[i], IX_KEY_MAX + 1) > IX_KEY_MAX)
			return -EINVAL;
	if (!n)
		return 0;
	pthread_mutex_lock(&ix->lock);
	ret = ix_begin(ix);
	if (!ret)
		ret = ix_prep(ix, "INSERT INTO counters(name, value) VALUES(?1, ?2)"
			      " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
			      &st);
	for (size_t i = 0; !ret && i < n; i++) {
		if (!deltas[i])
			continue;
		ix_bind_text(st, 1, names[i]);
		sqlite3_bind_int64(st, 2, deltas[i]);
		ret = ix_run_item(ix, st, "add to counter");
	}
	sqlite3_finalize(st);
	ret = ix_end(ix, ret);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

struct ix_counter_row {
	char *name;
	int64_t value;
};

static void ix_counter_drop(void *elem)
{
	free(((struct ix_counter_row *)elem)->name);
}

static int ix_counter_fill(struct mfs_ix *ix, sqlite3_stmt *st, void *elem, void *ctx)
{
	struct ix_counter_row *r = elem;

	(void)ix;
	(void)ctx;
	r->value = sqlite3_column_int64(st, 1);
	r->name = ix_col_dup(st, 0);
	return r->name ? 0 : -ENOMEM;
}

static const struct ix_rows ix_counter_rows = {
	sizeof(struct ix_counter_row), ix_counter_fill, ix_counter_drop, "list counters",
};

int mfs_ix_counters_list(struct mfs_ix *ix, mfs_ix_counter_fn cb, void *ctx)
{
	struct ix_vec l = { 0 };
	struct ix_counter_row *v;
	sqlite3_stmt *st = NULL;
	int ret;

	if (!ix || !cb)
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_prep(ix, "SELECT name, value FROM counters ORDER BY name", &st);
	ret = ix_query_rows(ix, ret, st, &ix_counter_rows, NULL, &l);
	v = l.v;
	for (size_t i = 0; !ret && i < l.n; i++)
		ret = cb(ctx, v[i].name, v[i].value);
	ix_vec_free(&ix_counter_rows, &l);
	return ret;
}

/* --- the huggingface_hub cache view ----------------------------------------
 * Names fs/hfcache.c lists under models--<org>--<name>/: listed commits
 * (snapshots/) and the etags of their files (blobs/). Rare (readdir of those
 * directories, or a blob looked up by name), so prepared per call. */

static int ix_hf_names(struct mfs_ix *ix, const char *sql, const struct mfs_repo *repo,
		       const char *arg, const char *what, mfs_ix_name_fn cb, void *ctx)
{
	struct ix_rows rows = ix_name_rows;
	struct ix_vec l = { 0 };
	sqlite3_stmt *st = NULL;
	char **names;
	int ret;

	if (!ix || !cb || ix_repo_check(repo))
		return -EINVAL;
	rows.what = what;
	pthread_mutex_lock(&ix->lock);
	ret = ix_prep(ix, sql, &st);
	if (!ret) {
		ix_bind_repo(st, repo);
		if (arg)
			ix_bind_text(st, 3, arg);
	}
	ret = ix_query_rows(ix, ret, st, &rows, NULL, &l);
	names = l.v;
	for (size_t i = 0; !ret && i < l.n; i++)
		ret = cb(ctx, names[i]);
	ix_vec_free(&rows, &l);
	return ret;
}

int mfs_ix_list_commits(struct mfs_ix *ix, const struct mfs_repo *repo,
			mfs_ix_name_fn cb, void *ctx)
{
	/* with the commits refs name: huggingface_hub's scans reject a ref
	 * whose commit snapshots/ does not list */
	return ix_hf_names(ix, "SELECT c.sha FROM commits c JOIN repos r ON r.id = c.repo"
			   " WHERE r.type = ?1 AND r.repo_id = ?2 AND c.listed"
			   " UNION SELECT f.commit_sha FROM refs f JOIN repos r ON r.id = f.repo"
			   " WHERE r.type = ?1 AND r.repo_id = ?2 ORDER BY 1",
			   repo, NULL, "list commits", cb, ctx);
}

int mfs_ix_list_blob_ids(struct mfs_ix *ix, const struct mfs_repo *repo,
			 mfs_ix_name_fn cb, void *ctx)
{
	return ix_hf_names(ix, "SELECT DISTINCT coalesce(e.sha256, e.oid) FROM repos r"
			   " JOIN commits c ON c.repo = r.id JOIN entries e ON e.commit_id = c.id"
			   " WHERE r.type = ?1 AND r.repo_id = ?2 AND c.listed AND e.kind = 1"
			   " ORDER BY 1", repo, NULL, "list blob ids", cb, ctx);
}

int mfs_ix_blob_commits(struct mfs_ix *ix, const struct mfs_repo *repo,
			const char *content_id, mfs_ix_name_fn cb, void *ctx)
{
	char cid[65];

	if (ix_cid_norm(content_id, cid))
		return -EINVAL;
	return ix_hf_names(ix, "SELECT DISTINCT c.sha FROM repos r"
			   " JOIN commits c ON c.repo = r.id JOIN entries e ON e.commit_id = c.id"
			   " WHERE r.type = ?1 AND r.repo_id = ?2 AND c.listed AND e.kind = 1"
			   " AND coalesce(e.sha256, e.oid) = ?3 ORDER BY c.sha",
			   repo, cid, "find blob", cb, ctx);
}

int mfs_ix_xet_content(struct mfs_ix *ix, const char *xet_hash, char cid[65], uint64_t *size)
{
	sqlite3_stmt *st = NULL;
	int ret, rc;

	if (!ix || !xet_hash || !mfs_hex_valid(xet_hash, 64))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_prep(ix, "SELECT coalesce(nullif(sha256, ''), oid), size FROM entries"
		      " WHERE xet_hash = lower(?1) LIMIT 1", &st);
	if (!ret) {
		sqlite3_bind_text(st, 1, xet_hash, -1, SQLITE_TRANSIENT);
		rc = ix_step(ix, st);
		if (rc == SQLITE_ROW && ix_col_copy(st, 0, cid, 65))
			*size = (uint64_t)sqlite3_column_int64(st, 1);
		else
			ret = rc == SQLITE_ROW || rc == SQLITE_DONE ? -ENOENT
								     : ix_fail(ix, rc, "xet lookup");
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}
