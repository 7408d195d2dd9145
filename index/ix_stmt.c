/*
 * ix_stmt.c - the index's one-statement helpers: statements prepared per
 * call (ix_prep, ix_run1, ix_run_item) and typed parameter lists
 * (ix_internal.h IX_ARGS) that bind, step and reset or finalize a statement
 * in one call, so each query is written once, not as a run of binds.
 * Callers hold ix->lock. It does not open the database or own the prepared
 * set (index.c).
 */
#include <sqlite3.h>

#include "index/ix_internal.h"

void ix_bind_args(sqlite3_stmt *st, const struct ix_arg *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int at = (int)i + 1;

		if (a[i].type == 'i')
			sqlite3_bind_int64(st, at, a[i].v.i);
		else if (a[i].type == 'o')
			ix_bind_opt(st, at, a[i].v.t);
		else
			ix_bind_text(st, at, a[i].v.t);
	}
}

int ix_exec_args(struct mfs_ix *ix, enum ix_st which, const char *what,
		 const struct ix_arg *a, size_t n)
{
	ix_bind_args(ix->st[which], a, n);
	return ix_exec(ix, which, what);
}

int ix_run_sql(struct mfs_ix *ix, const char *what, const char *sql, const struct ix_arg *a,
	       size_t n)
{
	sqlite3_stmt *st;
	int ret = ix_prep(ix, sql, &st);

	if (ret)
		return ret;
	ix_bind_args(st, a, n);
	return ix_run1(ix, st, what);
}

/* Prepares one statement; caller holds the lock. */
int ix_prep(struct mfs_ix *ix, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(ix->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : ix_fail(ix, rc, sql);
}

/* Steps a one-shot statement that returns no rows, then finalizes it. */
int ix_run1(struct mfs_ix *ix, sqlite3_stmt *st, const char *what)
{
	int rc = ix_step(ix, st), ret = 0;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = ix_fail(ix, rc, what);
	sqlite3_finalize(st);
	return ret;
}

/* Steps a one-shot statement once for one item of a batch (a row is an
 * error here) and resets it for the next item's bindings. */
int ix_run_item(struct mfs_ix *ix, sqlite3_stmt *st, const char *what)
{
	int rc = ix_step(ix, st), ret = 0;

	if (rc != SQLITE_DONE)
		ret = ix_fail(ix, rc, what);
	sqlite3_reset(st);
	return ret;
}
