/*
 * cachestats.h - persists a process's block-layer and source counters into
 * the index (cumulative `counters` table) so `modelfs status` can show hit
 * ratios and bytes per source for every process that used the cache.
 *
 * The daemon flushes from its evictor tick (every few seconds, never on the
 * read path) and at exit; `prefetch` flushes once at exit without the read
 * counters (its reads are its own fetches, not a user's cache hits).
 * Counter names: reads, reads_mem, reads_disk, reads_waited, blocks_fetched,
 * bytes_fetched, fetch_errors, verify_failures, and per source
 * "source:<url>:bytes" / ":requests" / ":errors" / ":bad_data".
 * Not thread-safe: one flusher per process.
 */
#ifndef MFS_CORE_CACHESTATS_H
#define MFS_CORE_CACHESTATS_H

#include <stdbool.h>

#include "core/blobio.h"
#include "fetch/hub.h"
#include "fetch/source.h"
#include "index/index.h"

#define MFS_STATSYNC_SRC_MAX 16

struct mfs_statsync {
	struct mfs_blobio_stats last;
	struct mfs_hub_health hlast;
	char endpoint[1024];
	bool reads;
	uint64_t src_bytes[MFS_STATSYNC_SRC_MAX], src_reqs[MFS_STATSYNC_SRC_MAX];
	uint64_t src_errs[MFS_STATSYNC_SRC_MAX], src_bad[MFS_STATSYNC_SRC_MAX];
};

void mfs_statsync_init(struct mfs_statsync *s, const char *endpoint, bool include_reads);
/* Adds what changed since the last flush. With a source set (mirrors,
 * peers) its per-source counters are used, else the hub's; both may be
 * NULL. */
int mfs_statsync_flush(struct mfs_statsync *s, struct mfs_ix *ix, struct mfs_blobio *bio,
		       struct mfs_hub *hub, struct mfs_srcset *src);

#endif
