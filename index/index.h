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

/* One listed file whose content id is the one asked for, with its repo's
 * visibility as the index knows it now. */
struct mfs_ix_holder {
	struct mfs_repo repo;
	char commit[41];
	char *path;
	uint64_t size;
	bool lfs;                /* the id is its sha256 (else its git sha1) */
	bool private_;           /* also true when visibility was never checked */
	char gated[16];
};
/* Up to max listed files holding content_id (sha256 of an LFS file, git
 * sha1 of another), public non-gated repos first; -EINVAL for a bad id.
 * Free with mfs_ix_holders_free. */
int mfs_ix_content_holders(struct mfs_ix *ix, const char *content_id, size_t max,
			   struct mfs_ix_holder **out, size_t *n);
void mfs_ix_holders_free(struct mfs_ix_holder *v, size_t n);

/* --- names for readdir --------------------------------------------------- */
typedef int (*mfs_ix_name_fn)(void *ctx, const char *name);
/* Distinct orgs of repos of that type; distinct repo names of an org;
 * revision names recorded for a repo. cb returning non-zero stops. */
int mfs_ix_list_orgs(struct mfs_ix *ix, enum mfs_repo_type t, mfs_ix_name_fn cb, void *ctx);
int mfs_ix_list_repos(struct mfs_ix *ix, enum mfs_repo_type t, const char *org,
		      mfs_ix_name_fn cb, void *ctx);
int mfs_ix_list_refs(struct mfs_ix *ix, const struct mfs_repo *repo,
		     mfs_ix_name_fn cb, void *ctx);

/* For the huggingface_hub cache view: listed commits of a repo and those
 * its refs name; the
 * distinct content ids (etags) of the files of its listed commits; the
 * listed commits holding a file with that content id. */
int mfs_ix_list_commits(struct mfs_ix *ix, const struct mfs_repo *repo,
			mfs_ix_name_fn cb, void *ctx);
int mfs_ix_list_blob_ids(struct mfs_ix *ix, const struct mfs_repo *repo,
			 mfs_ix_name_fn cb, void *ctx);
int mfs_ix_blob_commits(struct mfs_ix *ix, const struct mfs_repo *repo,
			const char *content_id, mfs_ix_name_fn cb, void *ctx);

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
/* A file listed with this xetHash: its content id and size. -ENOENT. */
int mfs_ix_xet_content(struct mfs_ix *ix, const char *xet_hash, char cid[65], uint64_t *size);
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

/* --- pins, eviction, cache statistics ------------------------------------
 * Used by `modelfs pin/unpin/ls/status/gc/verify` and the evictor (core/
 * evict.h). None of these is on the FUSE read path. */

/* Records that repo@rev (rev "" = the default branch) is pinned at commit,
 * with `globs` ("" = every file; else "+GLOB" / "-GLOB" lines). Pinning the
 * same rev again at another commit keeps the older commit pinned too (that
 * is `pin --update`); the globs are replaced. */
int mfs_ix_pin_add(struct mfs_ix *ix, const struct mfs_repo *repo, const char *rev,
		   const char *commit, const char *globs, int64_t now_ms);
/* Forgets repo@rev and every commit pinned under it; -ENOENT if none. */
int mfs_ix_pin_del(struct mfs_ix *ix, const struct mfs_repo *repo, const char *rev);

struct mfs_ix_pin {
	struct mfs_repo repo;
	const char *rev;
	const char *commit;
	const char *globs;
	int64_t created_ms;
	bool current;            /* the commit the pin was last (re)pinned at */
};
typedef int (*mfs_ix_pin_fn)(void *ctx, const struct mfs_ix_pin *p);
/* One call per (pin, commit), ordered by repo and rev; cb runs outside the
 * index lock; non-zero stops. */
int mfs_ix_pins_list(struct mfs_ix *ix, mfs_ix_pin_fn cb, void *ctx);
/* Makes blobs.pinned true for exactly these content ids (one transaction);
 * ids without a blob row are ignored. */
int mfs_ix_pins_apply(struct mfs_ix *ix, const char *const *content_ids, size_t n);

/* Unpinned blobs that have blocks on disk, least recently used first. */
struct mfs_ix_lru {
	char id[65];
	int64_t last_access_ms;
	uint64_t stored_bytes;
};
/* Up to max entries; caller frees *out. */
int mfs_ix_lru_list(struct mfs_ix *ix, size_t max, struct mfs_ix_lru **out, size_t *n);

struct mfs_ix_block {
	uint32_t idx;
	uint64_t stored_len;
};
/* The blocks of a blob recorded present, by index; caller frees *out. */
int mfs_ix_blob_blocks(struct mfs_ix *ix, const char *content_id,
		       struct mfs_ix_block **out, size_t *n);
/* Deletes these block rows and clears verified, in one transaction. */
int mfs_ix_blocks_del(struct mfs_ix *ix, const char *content_id,
		      const uint32_t *idx, size_t n);

struct mfs_ix_blob_info {
	char id[65];
	uint64_t size;
	uint32_t block_size;
	bool complete, verified, pinned;
	int64_t last_access_ms;
	uint64_t stored_bytes;   /* on disk, headers included */
	uint64_t cached_bytes;   /* raw bytes of the blocks present */
};
/* Every blob (only complete ones with complete_only); caller frees *out. */
int mfs_ix_blobs_list(struct mfs_ix *ix, bool complete_only,
		      struct mfs_ix_blob_info **out, size_t *n);

/* One listed commit of a repo, as `modelfs ls` shows it. */
struct mfs_ix_commit_stat {
	struct mfs_repo repo;
	char commit[41];
	char refs[256];          /* refs resolving to it, ','-separated ("" = default
				  * branch is shown as "(default)"); may be cut short */
	int64_t date_s;
	uint64_t files, size, cached_bytes;
	int64_t last_access_ms;  /* newest access of any of its files */
	bool pinned;
};
/* Every listed commit (of `repo` only when not NULL); caller frees *out. */
int mfs_ix_commit_stats(struct mfs_ix *ix, const struct mfs_repo *repo,
			struct mfs_ix_commit_stat **out, size_t *n);

/* Cumulative named counters shared by every process using the cache (the
 * daemon's hit and fetch statistics): value += delta, atomically. */
int mfs_ix_counters_add(struct mfs_ix *ix, const char *const *names,
			const int64_t *deltas, size_t n);
typedef int (*mfs_ix_counter_fn)(void *ctx, const char *name, int64_t value);
int mfs_ix_counters_list(struct mfs_ix *ix, mfs_ix_counter_fn cb, void *ctx);

#endif
