/*
 * blobio.h - the block layer: bytes of a blob, from memory, disk or a source.
 *
 * A read of (blob, offset, length) is answered from a small cache of decoded
 * blocks in memory, else from the block store on disk, else the missing
 * blocks are fetched: contiguous missing blocks coalesce into one range
 * request, every block is fetched at most once however many readers wait on
 * it, and the read is answered by the fetch thread when its last block
 * arrives (the caller's thread is never held: this is what keeps FUSE
 * workers free while the network is slow). Sequential readers get a
 * read-ahead window that follows what they demonstrably read (at most
 * twice it plus one block, up to readahead_max) and that stays out of
 * tensor data while a GGUF or safetensors header is being parsed.
 *
 * When every block of a blob has arrived, its digest (sha256 for LFS
 * content, git blob sha1 otherwise) is compared with its content id; on a
 * mismatch every block is dropped, the error is logged and `on_invalid`
 * tells the filesystem to forget cached pages. Blobs of one block are
 * checked before a single byte is served. Bytes that did not come from the
 * hub are served only once verified (core/blobtrust.c).
 *
 * It does not decide where a file lives in a namespace (catalog.h) or talk
 * FUSE; it uses fetch/ for bytes, cache/ for storage and index/ to record
 * which blocks are present.
 */
#ifndef MFS_CORE_BLOBIO_H
#define MFS_CORE_BLOBIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cache/blockstore.h"
#include "core/catalog.h"
#include "fetch/hub.h"
#include "fetch/source.h"
#include "index/index.h"
#include "util/repo.h"

struct mfs_blobio_config {
	uint32_t block_size;      /* default 1 MiB; blobs already cached keep theirs */
	int fetch_threads;        /* default 8 */
	uint64_t readahead_max;   /* bytes; default 64 MiB */
	/* Bytes the kernel reads ahead of a reader on its own (fs/daemon.c
	 * raises read_ahead_kb to 1 MiB): not counted as read when read-ahead
	 * follows consumption. 0: 1 MiB; negative: none (tests). */
	int64_t kernel_readahead;
	uint64_t coalesce_max;    /* bytes per range request; default 8 MiB */
	size_t mem_cache_bytes;   /* decoded blocks kept in memory; default 256 MiB
				     (at least 2 x read-ahead + threads x coalesce) */
	int zstd_level;           /* default 1 */
	/* Called (from a fetch thread) when a blob failed verification. */
	void (*on_invalid)(void *ctx, const char *content_id);
	void *on_invalid_ctx;
	/* Where missing bytes come from (peers, mirrors, hub; fetch/source.h);
	 * not owned. NULL: the hub passed to mfs_blobio_new alone. A source
	 * whose bytes fail verification is demoted there. */
	struct mfs_srcset *sources;
	/* Directory of per-blob lock files (core/blklock.h) so processes
	 * sharing the cache fetch each block once; NULL = no coordination. */
	const char *lock_dir;
	/* Bound on waiting for another process's fetch of a block before
	 * fetching it ourselves; default 120 s. */
	int64_t lock_wait_ms;
	/* The trust model (core/blobtrust.c): bytes from a peer, mirror or
	 * proxy reach a reader only once verified, chunk by chunk (Xet files
	 * with a chunk list) or as a whole file. verify_strict: the hub's
	 * bytes too (--verify strict). trust_dir: where chunk lists and
	 * "holds unverified bytes" marks are kept (<cache>/trust); NULL = in
	 * memory only. */
	bool verify_strict;
	const char *trust_dir;
};

/* Where a blob's bytes can be fetched from, as the filesystem knows it. */
struct mfs_blob_desc {
	const struct mfs_repo *repo;
	const char *commit;
	const char *path;
	const char *content_id;   /* sha256 (LFS) or git sha1 hex */
	uint64_t size;
	bool lfs;
	const char *xet_hash;     /* the listing's xetHash (64 hex) or NULL/"" */
};

struct mfs_blobio;
struct mfs_blob;

/* Per open file: the read-ahead state (core/readahead.c). Zero-initialise. */
struct mfs_readahead {
	uint64_t start;           /* first byte of the current sequential stream */
	uint64_t hi;              /* end of its furthest read; 0 = no stream yet */
	uint32_t issued_until;    /* read-ahead issued below this block */
	uint32_t window;          /* blocks of the last window issued */
	uint32_t mark;            /* reaching this block issues the next window */
};

/* Cache-space hooks (the evictor, core/evict.h), called from fetch threads:
 * on_stored after a block was written (its size on disk); on_nospace when
 * the block store said ENOSPC: free space and return 0 to have the write
 * retried once (if it fails again the block is served from memory only and
 * the cause is logged). Set before the first read. */
struct mfs_blobio_hooks {
	void (*on_stored)(void *ctx, uint64_t stored_bytes);
	int (*on_nospace)(void *ctx, uint64_t need_bytes);
	/* NULL but in unit tests: runs in the fetch thread after a block's
	 * readers were answered and before it is stored (forces a race). */
	void (*before_store)(void *ctx, const char *content_id, uint32_t idx);
	void *ctx;
};

/* hub and cat may be NULL (offline: nothing is fetched). None are owned. */
int mfs_blobio_new(const struct mfs_blobio_config *cfg, struct mfs_bs *bs,
		   struct mfs_ix *ix, struct mfs_hub *hub, struct mfs_catalog *cat,
		   struct mfs_blobio **out);
/* Stops the fetch threads (in-flight fetches finish or fail first). */
void mfs_blobio_free(struct mfs_blobio *bio);

void mfs_blobio_set_hooks(struct mfs_blobio *bio, const struct mfs_blobio_hooks *h);

/* Stops fetching for good (Ctrl-C in prefetch): queued fetches are dropped
 * and their waiters fail, later reads that need the network fail with
 * -ECANCELED; fetches already running finish and are stored. */
void mfs_blobio_cancel(struct mfs_blobio *bio);

/* Waits until no job is queued or running: every exchange a finished read
 * or prefetch started has ended and been counted (a waiter is answered
 * from the body, before its exchange's bytes reach the hub's counters). */
void mfs_blobio_quiesce(struct mfs_blobio *bio);

/* true while the blob is open here or has fetches queued (the evictor
 * leaves such blobs for last). */
bool mfs_blobio_in_use(struct mfs_blobio *bio, const char *content_id);

/* Returns the shared handle of a blob (one per content id), refcounted. */
int mfs_blob_open(struct mfs_blobio *bio, const struct mfs_blob_desc *d,
		  struct mfs_blob **out);
void mfs_blob_close(struct mfs_blob *b);

uint64_t mfs_blob_size(const struct mfs_blob *b);
bool mfs_blob_complete(struct mfs_blob *b);
uint64_t mfs_blob_cached_bytes(struct mfs_blob *b);

/* 0 if the blob is complete or a source is reachable for its missing
 * blocks (may cost one quick probe when the source's health is unknown),
 * -EIO (logged with the reason) otherwise. Used at open() so that a loader
 * that maps the whole file is refused up front instead of hitting EIO in
 * the middle of mmap(MAP_POPULATE). */
int mfs_blob_check_reachable(struct mfs_blob *b);

/* Completion of a read: err is 0 or negative errno; on success iov covers
 * exactly the bytes read (shorter than asked only at end of file) and is
 * valid only during the call. Called exactly once, possibly before
 * mfs_blob_read returns, possibly from a fetch thread. */
typedef void (*mfs_blob_read_fn)(void *ctx, int err, const struct iovec *iov, int iovcnt);

void mfs_blob_read(struct mfs_blob *b, uint64_t off, size_t len,
		   struct mfs_readahead *ra, mfs_blob_read_fn cb, void *ctx);

/* Fetches every missing block in [off, off+len) and waits; for prefetch.
 * progress (may be NULL) gets bytes newly stored. 0 or -errno. */
int mfs_blob_fetch_wait(struct mfs_blob *b, uint64_t off, uint64_t len,
			void (*progress)(void *ctx, uint64_t bytes), void *pctx);

/* Blocks until the blob's verification finished (or it is incomplete);
 * returns 1 verified, 0 not complete, -EBADMSG mismatch. */
int mfs_blob_verify_wait(struct mfs_blob *b);

struct mfs_blobio_stats {
	uint64_t reads, reads_mem, reads_disk, reads_waited;
	uint64_t reads_partial;  /* answered before their block was complete */
	uint64_t blocks_fetched, bytes_fetched, fetch_errors, verify_failures;
};
void mfs_blobio_stats(struct mfs_blobio *bio, struct mfs_blobio_stats *st);

#endif
