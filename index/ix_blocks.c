/*
 * ix_blocks.c - the index's blobs and blocks: which blocks of a blob are
 * present, sizes, verification, access times, settings, totals and the
 * lists eviction and `cache` commands walk.
 * What it does not do: read or write block files (cache/), pins.
 */
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
	ret = ix_exec_args(ix, ST_BLOB_INS, "insert blob",
			   IX_ARGS(IX_T(cid), IX_I(size), IX_I(*block_size)));
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
	/* Idempotent: eviction may race with a verification drop. */
	ret = ix_exec_args(ix, ST_BLOCK_DEL, "delete block", IX_ARGS(IX_T(cid), IX_I(idx)));
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
	ret = ix_exec_args(ix, ST_BLOCKS_DROP, "drop blocks", IX_ARGS(IX_T(cid)));
	if (ret)
		goto out;
	ret = ix_exec_args(ix, ST_BLOB_VERIFIED, "clear verified", IX_ARGS(IX_T(cid), IX_I(0)));
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
	ret = ix_exec_args(ix, ST_BLOB_VERIFIED, "set verified", IX_ARGS(IX_T(cid), IX_I(ok)));
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
	int ret;

	if (!ix || ix_cids_check(content_ids, n))
		return -EINVAL;
	if (!n)
		return 0;
	pthread_mutex_lock(&ix->lock);
	ret = ix_begin(ix);
	if (ret)
		goto out;
	for (size_t i = 0; i < n && !ret; i++) {
		ix_cid_norm(content_ids[i], cid);
		/* Unknown ids are ignored: the blob may have been evicted
		 * between the read and this batch. */
		ret = ix_exec_args(ix, ST_TOUCH, "touch blob", IX_ARGS(IX_T(cid), IX_I(when_ms)));
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
	ret = ix_exec_args(ix, ST_SET_PUT, "store setting", IX_ARGS(IX_T(key), IX_T(value)));
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
		ix_bind_args(st, IX_ARGS(IX_T(cid), IX_I(idx[i])));
		ret = ix_run_item(ix, st, "delete block");
	}
	sqlite3_finalize(st);
	/* Blocks that come back must be hashed again. */
	if (!ret)
		ret = ix_exec_args(ix, ST_BLOB_VERIFIED, "clear verified",
				   IX_ARGS(IX_T(cid), IX_I(0)));
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
