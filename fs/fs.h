/*
 * fs.h - the FUSE low-level filesystem: namespace, inodes, and the glue
 * from FUSE requests to the catalog (what exists) and the block layer
 * (bytes).
 *
 * Namespace (docs/architecture.md, Namespace):
 *   /                              orgs known to the index, and "datasets"
 *   /datasets/                     dataset orgs
 *   /<org>/                        appears on lookup if the hub knows it; lists
 *                                  the org's repos (core/orglist.h)
 *   /<org>/<name>                  symlink -> <name>@<commit> (default branch)
 *   /<org>/<name>@<rev>            symlink -> <name>@<commit>; '/' in rev is
 *                                  written %2F (name@refs%2Fpr%2F1)
 *   /<org>/<name>@<40-hex commit>  the tree of that commit, immutable
 *   /models--<org>--<name>/...     the huggingface_hub cache layout (hfcache.h)
 * It does not speak HTTP or SQL: everything goes through core/.
 */
#ifndef MFS_FS_FS_H
#define MFS_FS_FS_H

#include <stdint.h>

#include "core/blobio.h"
#include "core/catalog.h"

struct mfs_fs;
struct fuse_session;

struct mfs_fs_config {
	int64_t ref_ttl_ms;        /* kernel cache time of ref symlinks */
	int64_t neg_ttl_ms;        /* kernel cache time of true ENOENT */
	uint64_t quota_bytes;      /* shown by statfs (0 = unknown) */
};

int mfs_fs_new(const struct mfs_fs_config *cfg, struct mfs_catalog *cat,
	       struct mfs_ix *ix, struct mfs_fs **out);
void mfs_fs_free(struct mfs_fs *fs);
/* Waits for requests still working on other threads (fs/offload.h); call
 * once the session loop ended, before the block layer stops. */
void mfs_fs_quiesce(struct mfs_fs *fs);

/* Must be called before the session starts; needed to invalidate the
 * kernel's pages of a blob that failed verification. */
void mfs_fs_set_session(struct mfs_fs *fs, struct fuse_session *se);
void mfs_fs_set_blobio(struct mfs_fs *fs, struct mfs_blobio *bio);

/* The blobio on_invalid hook (ctx = struct mfs_fs *). */
void mfs_fs_blob_invalid(void *ctx, const char *content_id);

/* The operation table to pass to fuse_session_new (userdata = mfs_fs). */
const struct fuse_lowlevel_ops *mfs_fs_ops(void);

#endif
