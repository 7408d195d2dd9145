/*
 * import_tree.h - `modelfs import`'s state, and the parts that record
 * what a huggingface_hub cache or a --local-dir folder says about commits
 * (snapshots and refs) as trees and refs in the index.
 *
 * cmd_import.c walks the source and adopts blobs; import_tree.c turns
 * snapshot folders into commit trees (the hub's listing when it can be
 * reached), reads refs, and imports --local-dir folders. Neither writes to
 * the source.
 */
#ifndef MFS_CLI_IMPORT_TREE_H
#define MFS_CLI_IMPORT_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/cache_open.h"

struct mfs_imp {
	struct mfs_ctx *c;
	bool dry_run, reflink, quiet;
	struct mfs_repo repo;            /* --local-dir: REPO */
	char rev[256];                   /* --local-dir: REV */
	size_t adopted, cached, corrupt, failed, skipped;
	size_t snapshots, refs;
	uint64_t adopted_bytes;
	uint64_t cloned_bytes;           /* --reflink: stored as shared extents */
};

/* cmd_import.c: verify path as blob id and adopt it (or, dry run, say it
 * would be); one line of output. 0 when its bytes are (would be) cached. */
int mfs_imp_adopt(struct mfs_imp *im, const char *label, const char *path, const char *id,
		  uint64_t *size_out);

/* true for a 40- or 64-digit lowercase hex name (an etag as
 * huggingface_hub names blobs). */
bool mfs_imp_is_etag(const char *s);

/* Records every snapshots/<commit>/ of a repo folder as a tree. */
void mfs_imp_snapshots(struct mfs_imp *im, const char *repo_dir, const struct mfs_repo *repo);
/* Records every refs/<rev> (nested for refs/pr/N) of a repo folder. */
void mfs_imp_refs(struct mfs_imp *im, const char *repo_dir, const struct mfs_repo *repo);
/* `--local-dir DIR REPO@REV` (im->repo, im->rev). 0 or -1 (reported). */
int mfs_imp_local_dir(struct mfs_imp *im, const char *dir);

#endif
