/*
 * index.h - the sqlite catalogue of everything modelfs knows.
 *
 * One database file (WAL, busy timeout, short transactions) shared by the
 * mount daemon and the CLI at the same time. It records:
 *   repos     type, id, private, gated, when last checked
 *   refs      (repo, revision name) -> commit, with the time it was resolved
 *   commits   (repo, sha) -> commit date, whether its full tree is stored
 *   entries   one row per path of a listed commit
 *   blobs     content id -> size, block size, verified, last access, pinned
 *   blocks    which blocks of which blob are on disk
 *   settings  key/value (e.g. the cache quota)
 * It does no network I/O and knows nothing of FUSE. All calls are
 * thread-safe (one connection behind a mutex: sqlite serializes writers
 * anyway and every statement here is a point query or a short batch).
 * Errors are negative errno: -ENOENT for "not known", -EIO for sqlite
 * failures (logged once with sqlite's message).
 */
#ifndef MFS_INDEX_INDEX_H
#define MFS_INDEX_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/repo.h"

struct mfs_ix;

int mfs_ix_open(const char *db_path, struct mfs_ix **out);
void mfs_ix_close(struct mfs_ix *ix);

/* --- repos and refs ------------------------------------------------------ */
int mfs_ix_repo_put(struct mfs_ix *ix, const struct mfs_repo *repo,
		    bool private_, const char *gated /* "false","auto","manual" */,
		    int64_t checked_at_ms);
int mfs_ix_repo_get(struct mfs_ix *ix, const struct mfs_repo *repo,
		    bool *private_, char gated[16], int64_t *checked_at_ms);

/* rev is the user-facing revision ("main", "v1.0", "refs/pr/1", or "" for
 * the default branch). */
int mfs_ix_ref_put(struct mfs_ix *ix, const struct mfs_repo *repo,
		   const char *rev, const char *commit, int64_t resolved_at_ms);
int mfs_ix_ref_get(struct mfs_ix *ix, const struct mfs_repo *repo,
		   const char *rev, char commit[41], int64_t *resolved_at_ms);

/* --- commits and trees --------------------------------------------------- */
int mfs_ix_commit_put(struct mfs_ix *ix, const struct mfs_repo *repo,
		      const char *commit, int64_t date_s);
/* -ENOENT if the commit is not known for that repo. */
int mfs_ix_commit_get(struct mfs_ix *ix, const struct mfs_repo *repo,
		      const char *commit, int64_t *date_s, bool *listed);
/* Stores the whole tree of a commit in one transaction and marks it listed.
 * Entries must already be validated (fetch/ does that). */
int mfs_ix_tree_put(struct mfs_ix *ix, const struct mfs_repo *repo,
		    const char *commit, const struct mfs_entry *e, size_t n);
/* Loads a listed tree; -ENOENT if it was never listed. Caller frees with
 * mfs_entries_free. */
int mfs_ix_tree_get(struct mfs_ix *ix, const struct mfs_repo *repo,
		    const char *commit, struct mfs_entry **out, size_t *n);

/* --- names for readdir --------------------------------------------------- */
typedef int (*mfs_ix_name_fn)(void *ctx, const char *name);
/* Distinct orgs of repos of that type; distinct repo names of an org;
 * revision names recorded for a repo. cb returning non-zero stops. */
int mfs_ix_list_orgs(struct mfs_ix *ix, enum mfs_repo_type t, mfs_ix_name_fn cb, void *ctx);
int mfs_ix_list_repos(struct mfs_ix *ix, enum mfs_repo_type t, const char *org,
		      mfs_ix_name_fn cb, void *ctx);
int mfs_ix_list_refs(struct mfs_ix *ix, const struct mfs_repo *repo,
		     mfs_ix_name_fn cb, void *ctx);

/* --- blobs and blocks ---------------------------------------------------- */
/* Creates the blob row if missing. If it exists, *block_size gets the block
 * size its blocks were stored with (which wins over the requested one). */
int mfs_ix_blob_ensure(struct mfs_ix *ix, const char *content_id, uint64_t size,
		       uint32_t *block_size);
/* Fills bitmap (ceil(nblocks/8) bytes, bit i = block i present). */
int mfs_ix_blocks_get(struct mfs_ix *ix, const char *content_id,
		      uint8_t *bitmap, uint32_t nblocks);
int mfs_ix_block_add(struct mfs_ix *ix, const char *content_id, uint32_t idx,
		     uint64_t stored_len);
int mfs_ix_block_del(struct mfs_ix *ix, const char *content_id, uint32_t idx);
/* Forgets every block of a blob (after a failed verification or eviction). */
int mfs_ix_blob_drop_blocks(struct mfs_ix *ix, const char *content_id);
int mfs_ix_blob_set_verified(struct mfs_ix *ix, const char *content_id, bool ok);
int mfs_ix_blob_get(struct mfs_ix *ix, const char *content_id, uint64_t *size,
		    uint32_t *block_size, bool *verified, bool *pinned);
/* Batched LRU touch: one transaction for n ids. */
int mfs_ix_touch(struct mfs_ix *ix, const char *const *content_ids, size_t n,
		 int64_t when_ms);

/* --- settings ------------------------------------------------------------ */
int mfs_ix_setting_put(struct mfs_ix *ix, const char *key, const char *value);
/* -ENOENT if unset. */
int mfs_ix_setting_get(struct mfs_ix *ix, const char *key, char *value, size_t cap);

/* --- totals -------------------------------------------------------------- */
struct mfs_ix_totals {
	uint64_t blobs, blocks, stored_bytes, pinned_bytes;
	uint64_t repos, commits;
};
int mfs_ix_totals(struct mfs_ix *ix, struct mfs_ix_totals *t);

#endif
