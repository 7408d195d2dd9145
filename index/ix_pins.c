/*
 * ix_pins.c - the index's pins (repo, revision, file selection) and
 * named counters.
 * What it does not do: decide what a pin keeps (core/pin.c).
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

/* --- pins, eviction, cache statistics -------------------------------------
 *
 * These run from the CLI and from the evictor's background thread, never
 * per FUSE read, so each prepares its statement per call instead of adding
 * to the persistent set (keeps open() cheap and this section self-contained).
 */

int mfs_ix_pin_add(struct mfs_ix *ix, const struct mfs_repo *repo, const char *rev,
		   const char *commit, const char *globs, int64_t now_ms)
{
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
		ret = ix_run_sql(ix, "store pin",
				 "INSERT INTO pins(repo, rev, commit_sha, globs, created_at)"
				 " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(repo, rev) DO UPDATE SET"
				 " commit_sha = excluded.commit_sha, globs = excluded.globs",
				 IX_ARGS(IX_I(rid), IX_T(rev), IX_T(sha), IX_T(globs), IX_I(now_ms)));
	if (!ret)
		ret = ix_run_sql(ix, "store pinned commit",
				 "INSERT OR IGNORE INTO pin_commits(repo, rev, commit_sha)"
				 " VALUES(?1, ?2, ?3)", IX_ARGS(IX_I(rid), IX_T(rev), IX_T(sha)));
out:
	ret = ix_end(ix, ret);
	pthread_mutex_unlock(&ix->lock);
	return ret;
}

int mfs_ix_pin_del(struct mfs_ix *ix, const struct mfs_repo *repo, const char *rev)
{
	int64_t rid;
	int ret;

	if (!ix || ix_repo_check(repo) || ix_rev_check(rev))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_repo_rowid(ix, repo, false, &rid);
	if (!ret)
		ret = ix_run_sql(ix, "delete pin", "DELETE FROM pins WHERE repo = ?1 AND rev = ?2",
				 IX_ARGS(IX_I(rid), IX_T(rev)));
	if (!ret && sqlite3_changes(ix->db) == 0)
		ret = -ENOENT;
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

	if (!ix || ix_cids_check(content_ids, n))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_begin(ix);
	/* Cleared and re-set in one transaction: a concurrent evictor sees
	 * the old set or the new one, never a blob briefly unpinned. */
	if (!ret)
		ret = ix_run_sql(ix, "clear pins", "UPDATE blobs SET pinned = 0 WHERE pinned", NULL, 0);
	if (!ret)
		ret = ix_prep(ix, "UPDATE blobs SET pinned = 1 WHERE content_id = ?1", &st);
	for (size_t i = 0; !ret && i < n; i++) {
		ix_cid_norm(content_ids[i], cid);
		ix_bind_args(st, IX_ARGS(IX_T(cid)));
		ret = ix_run_item(ix, st, "pin blob");
	}
	sqlite3_finalize(st);
	ret = ix_end(ix, ret);
	pthread_mutex_unlock(&ix->lock);
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
		ix_bind_args(st, IX_ARGS(IX_T(names[i]), IX_I(deltas[i])));
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
