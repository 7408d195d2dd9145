/*
 * ix_catalog.c - the index's catalogue: repos (visibility), refs, commits,
 * trees, the names readdir lists and the huggingface_hub cache view.
 * What it does not do: blobs and blocks (ix_blocks.c), pins (ix_pins.c).
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
	int ret;

	if (!ix || ix_repo_check(repo) || ix_rev_check(rev) || ix_hex_norm(commit, 40, sha))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_repo_rowid(ix, repo, true, &rid);
	if (ret)
		goto out;
	ret = ix_exec_args(ix, ST_REF_PUT, "store ref",
			   IX_ARGS(IX_I(rid), IX_T(rev), IX_T(sha), IX_I(resolved_at_ms)));
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
	int ret;

	if (!ix || ix_repo_check(repo) || ix_hex_norm(commit, 40, sha))
		return -EINVAL;
	pthread_mutex_lock(&ix->lock);
	ret = ix_repo_rowid(ix, repo, true, &rid);
	if (ret)
		goto out;
	ret = ix_exec_args(ix, ST_COMMIT_PUT, "store commit",
			   IX_ARGS(IX_I(rid), IX_T(sha), IX_I(date_s)));
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
	ret = ix_exec_args(ix, ST_COMMIT_INS, "insert commit", IX_ARGS(IX_I(rid), IX_T(sha)));
	if (ret)
		goto out;
	st = ix->st[ST_COMMIT_ID];
	ix_bind_args(st, IX_ARGS(IX_I(rid), IX_T(sha)));
	rc = ix_step(ix, st);
	if (rc == SQLITE_ROW)
		cid = sqlite3_column_int64(st, 0);
	else
		ret = ix_fail(ix, rc, "look up commit");
	ix_done(st);
	if (ret)
		goto out;

	ret = ix_exec_args(ix, ST_ENTRIES_DEL, "replace tree", IX_ARGS(IX_I(cid)));
	if (ret)
		goto out;
	st = ix->st[ST_ENTRY_INS];
	for (size_t i = 0; i < n; i++) {
		ix_bind_args(st, IX_ARGS(IX_I(cid), IX_T(e[i].path), IX_I(e[i].kind),
					 IX_I(e[i].size), IX_O(e[i].oid), IX_O(e[i].sha256),
					 IX_O(e[i].xet_hash)));
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
	ret = ix_exec_args(ix, ST_COMMIT_LISTED, "mark commit listed", IX_ARGS(IX_I(cid)));
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
