/*
 * adopt.h - put a local file's bytes into the block cache, verified first.
 *
 * For `modelfs import`: a file that claims to be blob <id> (sha256 hex of an
 * LFS file, git blob sha1 hex otherwise) is hashed in full; only if it is
 * what its id says are its blocks stored (zstd like any fetched block) and
 * recorded in the index, and the blob marked verified. A blob the cache
 * already holds complete and verified is left alone. The source file is
 * only read.
 *
 * It does not walk directories, know huggingface_hub's layout or touch the
 * catalog (cli/cmd_import.c does). It does not evict: the caller's quota
 * applies at the next mount or `modelfs gc`.
 */
#ifndef MFS_CORE_ADOPT_H
#define MFS_CORE_ADOPT_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/blockstore.h"
#include "index/index.h"

enum mfs_adopt_result {
	MFS_ADOPTED = 0,        /* verified and stored */
	MFS_ADOPT_CACHED,       /* already complete and verified: nothing done */
	MFS_ADOPT_CORRUPT,      /* content does not hash to the id: nothing stored */
};

/* Progress: bytes hashed or stored so far of `total` (called about every
 * 64 MiB and at the end of each pass). */
typedef void (*mfs_adopt_progress_fn)(void *ctx, const char *phase, uint64_t done,
				      uint64_t total);

struct mfs_adopt_opts {
	bool dry_run;               /* hash nothing, store nothing: report only */
	bool reflink;               /* share the source's extents where possible */
	uint64_t *cloned_bytes;     /* reflink: += bytes stored as shared extents; may be NULL */
	mfs_adopt_progress_fn progress;  /* may be NULL */
	void *progress_ctx;
};

/* fd: the source, open for reading, `size` bytes. Returns an
 * mfs_adopt_result (dry run: MFS_ADOPTED or MFS_ADOPT_CACHED), or -errno
 * (-EIO reading the source, -ENOSPC storing, -EINVAL bad id). hex_out (65
 * bytes, may be NULL) gets what the content hashed to. */
int mfs_adopt_fd(struct mfs_ix *ix, struct mfs_bs *bs, int fd, uint64_t size, const char *id,
		 const struct mfs_adopt_opts *o, char *hex_out);

/* true when the index has blob `id` complete and verified. */
bool mfs_adopt_is_cached(struct mfs_ix *ix, const char *id);

#endif
