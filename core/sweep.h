/*
 * sweep.h - make the block store and the index agree again.
 *
 * A block whose file was written but whose index row was not (the index
 * write failed, the process died between the two) is invisible to the
 * quota and to eviction: nothing would ever remove it. The sweep finds
 * every stored block without a row and removes it (it is fetched again if
 * needed; adopting it would need a checksum pass the caller has not paid
 * for). A block another process is fetching right now (its cross-process
 * block lock is held) is left alone: its row is about to be written.
 *
 * It does not touch rows without data (reads find those and refetch), and
 * it does not verify content (`modelfs verify` does). Runs at mount, in
 * `modelfs gc` and in `modelfs verify`.
 */
#ifndef MFS_CORE_SWEEP_H
#define MFS_CORE_SWEEP_H

#include <stdint.h>

#include "cache/blockstore.h"
#include "index/index.h"

struct mfs_sweep_result {
	uint64_t blocks_seen;      /* stored blocks looked at */
	uint64_t orphans;          /* without an index row: removed */
	uint64_t orphan_bytes;     /* their size on disk */
	uint64_t busy;             /* without a row but locked by a fetch: kept */
};

/* lock_dir: the cache's block-lock directory (core/blklock.h), or NULL when
 * no other process can be using the cache. 0 or the first -errno of the
 * store or the index (the result counts what was done until then). */
int mfs_sweep_orphans(struct mfs_ix *ix, struct mfs_bs *bs, const char *lock_dir,
		      struct mfs_sweep_result *res);

#endif
