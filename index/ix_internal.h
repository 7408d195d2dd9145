/*
 * ix_internal.h - what the files of the sqlite index share: the
 * connection struct, the prepared statements, the statement helpers (one
 * style: prepared at open and reused via ix_exec/ix_step/ix_done, or
 * prepared per call via ix_prep/ix_run1 for rare statements; parameters in
 * one typed list, IX_ARGS, where a statement is bound and run at once) and
 * the row collection used by every list query. Not for use outside index/.
 *
 * Files: index.c (open, schema and migrations, helpers), ix_catalog.c
 * (repos, refs, commits, trees, names, the hf cache view), ix_blocks.c
 * (blobs, blocks, settings, totals, eviction lists), ix_pins.c (pins and
 * counters), ix_stmt.c (one-statement helpers).
 */
#ifndef MFS_INDEX_IX_INTERNAL_H
#define MFS_INDEX_IX_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/index.h"

/* Bumped when a migration is appended to ix_migrations. */
#define IX_SCHEMA_VERSION 3
#define IX_BUSY_TIMEOUT_MS 5000
/* Longest revision name we store (git refs are far shorter in practice). */
#define IX_REV_MAX 255
#define IX_KEY_MAX 255
#define IX_GATED_MAX 15

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

struct mfs_ix {
	pthread_mutex_t lock;
	sqlite3 *db;                  /* protected by lock */
	sqlite3_stmt *st[ST_COUNT];   /* protected by lock */
	char *path;                   /* immutable after open; for log lines */
};

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

int ix_fail(struct mfs_ix *ix, int rc, const char *what);
void ix_done(sqlite3_stmt *st);
int ix_step(struct mfs_ix *ix, sqlite3_stmt *st);
int ix_exec(struct mfs_ix *ix, enum ix_st which, const char *what);
int ix_begin(struct mfs_ix *ix);
int ix_commit(struct mfs_ix *ix);
void ix_rollback(struct mfs_ix *ix);
int ix_end(struct mfs_ix *ix, int ret);
int ix_bind_text(sqlite3_stmt *st, int i, const char *s);
int ix_bind_opt(sqlite3_stmt *st, int i, const char *s);
bool ix_col_copy(sqlite3_stmt *st, int col, char *dst, size_t cap);
int ix_hex_norm(const char *in, size_t want, char *out);
int ix_cid_norm(const char *in, char out[65]);
int ix_cids_check(const char *const *ids, size_t n);
int ix_repo_check(const struct mfs_repo *r);
int ix_rev_check(const char *rev);
void ix_bind_repo(sqlite3_stmt *st, const struct mfs_repo *r);
int ix_repo_rowid(struct mfs_ix *ix, const struct mfs_repo *r, bool create,
			 int64_t *id);
void *ix_grow(void **v, size_t *n, size_t *cap, size_t size);
void ix_vec_free(const struct ix_rows *rows, struct ix_vec *vec);
int ix_collect(struct mfs_ix *ix, sqlite3_stmt *st, const struct ix_rows *rows,
		      void *ctx, struct ix_vec *vec);
int ix_query_rows(struct mfs_ix *ix, int ret, sqlite3_stmt *st,
			 const struct ix_rows *rows, void *ctx, struct ix_vec *vec);
char *ix_col_dup(sqlite3_stmt *st, int col);
int ix_names_run(struct mfs_ix *ix, sqlite3_stmt *st, const char *what,
			mfs_ix_name_fn cb, void *ctx);
/* --- one statement, bound and run in one call (ix_stmt.c) -----------------
 *
 * Parameters as a typed list bound to ?1, ?2, ... in order:
 *   ix_exec_args(ix, ST_BLOCK_DEL, "delete block", IX_ARGS(IX_T(cid), IX_I(idx)));
 * IX_I takes any integer (converted to int64), IX_T text, IX_O text or NULL.
 */
struct ix_arg {
	char type; /* 'i', 't' or 'o' */
	union {
		int64_t i;
		const char *t;
	} v;
};
#define IX_I(x) ((struct ix_arg){ 'i', { .i = (int64_t)(x) } })
#define IX_T(x) ((struct ix_arg){ 't', { .t = (x) } })
#define IX_O(x) ((struct ix_arg){ 'o', { .t = (x) } })
/* Expands to the two arguments (array, count) the functions below take. */
#define IX_ARGS(...) (const struct ix_arg[]){ __VA_ARGS__ }, \
	sizeof((const struct ix_arg[]){ __VA_ARGS__ }) / sizeof(struct ix_arg)

void ix_bind_args(sqlite3_stmt *st, const struct ix_arg *a, size_t n);
/* Binds the prepared statement ix->st[which] and runs it (ix_exec). */
int ix_exec_args(struct mfs_ix *ix, enum ix_st which, const char *what,
		 const struct ix_arg *a, size_t n);
/* Prepares sql, binds, steps once and finalizes (ix_prep + ix_run1). */
int ix_run_sql(struct mfs_ix *ix, const char *what, const char *sql, const struct ix_arg *a,
	       size_t n);
int ix_prep(struct mfs_ix *ix, const char *sql, sqlite3_stmt **st);
int ix_run1(struct mfs_ix *ix, sqlite3_stmt *st, const char *what);
int ix_run_item(struct mfs_ix *ix, sqlite3_stmt *st, const char *what);

/* Rows of one name (readdir lists). */
extern const struct ix_rows ix_name_rows;

#endif
