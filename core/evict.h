/*
 * evict.h - the cache quota: high/low watermarks and LRU eviction of
 * unpinned blocks (docs/architecture.md, "A read's path").
 *
 * Stored bytes are what the index records for block files (headers
 * included). When they pass the high watermark (default 95 % of the quota)
 * blocks of the least recently used unpinned blobs are removed until they
 * are under the low watermark (default 85 %). Eviction never runs on the
 * FUSE read path: the daemon's evictor thread does it, woken by the block
 * layer's on_stored hook as the total crosses the high mark (and on a
 * periodic tick, which also sees other processes' writes); `modelfs gc`
 * calls mfs_evict_to directly; an ENOSPC from the block store evicts from
 * the fetch thread that hit it.
 *
 * Safety: a block is removed only while holding its cross-process lock
 * (core/blklock.h), the same lock a fetch holds while storing it, so a
 * block being fetched by any process is skipped, never half-accounted.
 * Index rows go before files: a reader that still believes a block present
 * finds it gone and refetches it (blobio's -EAGAIN path), never a wrong byte.
 * Pinned blobs are never touched. Blobs in use in this process are evicted
 * last (only when nothing else is left), so a file larger than the quota
 * still streams: its older blocks make room for newer ones.
 *
 * It does not decide what is pinned (core/pin.h) or fetch anything.
 */
#ifndef MFS_CORE_EVICT_H
#define MFS_CORE_EVICT_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/blockstore.h"
#include "core/blobio.h"
#include "index/index.h"

/* true while content id is in use by this process (open, being fetched). */
typedef bool (*mfs_evict_in_use_fn)(void *ctx, const char *content_id);

struct mfs_evict_result {
	uint64_t before, after;     /* stored bytes */
	uint64_t freed_bytes, blocks, blobs;
	uint64_t skipped_locked;    /* blocks a fetch held, left alone */
};

/* Evicts LRU unpinned blocks until stored bytes <= target. lock_dir and
 * in_use may be NULL. 0 when the target was reached, -ENOSPC when only
 * pinned (or locked) data is left above it, other -errno on failure;
 * *res is filled in every case. */
int mfs_evict_to(struct mfs_ix *ix, struct mfs_bs *bs, const char *lock_dir,
		 uint64_t target, mfs_evict_in_use_fn in_use, void *in_use_ctx,
		 struct mfs_evict_result *res);

struct mfs_evict_config {
	uint64_t quota;             /* bytes; 0 = none (only ENOSPC evicts) */
	int high_pct, low_pct;      /* defaults 95 and 85 */
	const char *lock_dir;       /* copied */
	mfs_evict_in_use_fn in_use;
	void *in_use_ctx;
	/* Called by the evictor thread every tick_ms and once at stop (the
	 * daemon persists its statistics there, off the read path). */
	void (*tick)(void *ctx);
	void *tick_ctx;
	int64_t tick_ms;            /* default 2000 */
};

struct mfs_evictor;

/* Starts the background thread. ix and bs are not owned. */
int mfs_evictor_start(const struct mfs_evict_config *cfg, struct mfs_ix *ix,
		      struct mfs_bs *bs, struct mfs_evictor **out);
/* Joins the thread, then runs a last tick. The hooks stay usable (a fetch
 * thread may still call them) until mfs_evictor_free: stop the evictor,
 * then the block layer, then free the evictor. */
void mfs_evictor_stop(struct mfs_evictor *ev);
void mfs_evictor_free(struct mfs_evictor *ev);

/* Hooks for the block layer (mfs_blobio_set_hooks). */
void mfs_evictor_hooks(struct mfs_evictor *ev, struct mfs_blobio_hooks *out);

/* High and low watermarks in bytes (0 without a quota). */
uint64_t mfs_evict_high(uint64_t quota, int high_pct);
uint64_t mfs_evict_low(uint64_t quota, int low_pct);

#endif
