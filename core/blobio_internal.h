/*
 * blobio_internal.h - what the files of the block layer share: the blob,
 * job and decoded-block structs, the block states and the functions one
 * file calls in another. Not for use outside core/blobio*.c, memcache.c and
 * readahead.c (the public API is core/blobio.h).
 *
 * Files: blobio.c (public API, blob table, serving reads), memcache.c
 * (decoded blocks in memory), blobjob.c (job queue, fetch threads),
 * readahead.c (sequential-read detector), blobverify.c (whole-blob
 * hashing), blobfetch.c (running jobs, failover, storing blocks).
 *
 * Locking: one mutex per blobio (`lock`) guards the blob table, every
 * blob's block states and pending reads, and the job queue; the decoded
 * block cache has its own (`mem.lock`). Order: lock before mem.lock.
 * Functions named *_locked are called with bio->lock held.
 */
#ifndef MFS_CORE_BLOBIO_INTERNAL_H
#define MFS_CORE_BLOBIO_INTERNAL_H

#include <pthread.h>
#include <string.h>

#include "core/blobio.h"
#include "core/fmthdr.h"
#include "core/streams.h"
#include "util/hash.h"
#include "xet/xet.h"

enum { BLK_ABSENT = 0, BLK_INFLIGHT = 1, BLK_PRESENT = 2 };

struct pending_read {
	struct pending_read *next;
	uint64_t off;
	size_t len;
	uint32_t b0, b1;
	mfs_blob_read_fn cb;
	void *ctx;
};

struct mfs_blob {
	struct mfs_blob *hnext;        /* protected by bio->lock */
	struct mfs_blobio *bio;
	int refs;                      /* protected by bio->lock; jobs hold refs */
	char id[65];
	struct mfs_repo repo;
	char commit[41];
	char *path;
	uint64_t size;
	bool lfs;
	uint32_t bsize, nblocks;
	uint8_t *state;                /* protected by bio->lock */
	uint32_t present;              /* protected by bio->lock */
	uint32_t inflight;             /* protected by bio->lock */
	struct pending_read *pending;  /* protected by bio->lock */
	/* Verification runs in whichever thread claims `hashing` (a verify
	 * job, or a caller of mfs_blob_verify_wait); the hasher state is
	 * touched only by that thread. */
	bool hashing;                  /* protected by bio->lock */
	bool hash_queued;              /* a verify job is queued; bio->lock */
	/* Bumped when a failed hash starts dropping the blob's blocks and
	 * again when done (odd: dropping). Bytes that began arriving (or were
	 * looked up on disk) under an older value are not stored and arrive
	 * held (blobfetch.c, bio_block_arrived). */
	uint32_t drops;                /* protected by bio->lock */
	/* Stores of this blob's blocks writing now; a drop waits for them
	 * (after making drops odd, so no new one starts) before it empties
	 * the disk: a block of a rejected blob never shows up there later. */
	uint32_t storing;              /* protected by bio->lock */
	uint32_t hash_next;            /* protected by bio->lock */
	int verdict;                   /* 1 ok, -EBADMSG bad, 0 unknown; bio->lock */
	struct mfs_digest hasher;      /* released with the blob */
	/* Sources that delivered this blob's present blocks (bit i = source
	 * i of bio->src), so a failed verification demotes them. */
	uint32_t src_mask;             /* protected by bio->lock */
	/* Trust (blobtrust.c). held: present blocks include bytes no one has
	 * verified from a source not trusted as they arrive; readers wait for
	 * the verdict. */
	bool held;                     /* protected by bio->lock */
	/* Failed verdicts in a row with readers waiting on the hold: bounds
	 * the refetches a source that always lies can cause (blobtrust.c). */
	uint32_t held_failures;        /* protected by bio->lock */
	char xet[65];                  /* listing's xetHash, "" when none */
	struct mfs_xet_chunk *chunks;  /* verified chunk list; bio->lock */
	size_t nchunks;                /* protected by bio->lock */
	int chunks_state;              /* 0 not asked, 1 have, <0 none; bio->lock */
	/* Where its header ends, for read-ahead (readahead.c): learnt from
	 * the present prefix by whichever thread claims hdr_busy. */
	struct mfs_fmthdr hdr;         /* protected by bio->lock */
	uint32_t hdr_blocks;           /* prefix blocks parsed; bio->lock */
	bool hdr_busy;                 /* protected by bio->lock */
	pthread_cond_t changed;        /* signalled on block/verdict changes */
	int lock_fd;                   /* cross-process block locks, -1 until first
					* fetch; set once under bio->lock */
	/* The last failed fetch (blobfetch.c holds a repeat for a moment):
	 * when (monotonic ms, 0 = none), its error and the health set's
	 * DOWN -> UP count before it started. Protected by bio->lock. */
	int64_t failed_at_ms;
	int failed_err;
	int failed_n;                  /* failures in a row, each < 2 s apart */
	bool failed_slow;              /* the last failure took >= FAIL_SLOW_MS */
	uint64_t failed_ups;
};

struct job {
	struct job *next;
	struct mfs_blob *b;            /* holds a ref */
	uint32_t first, count;
	bool verify_only;
};

/* Decoded blocks in memory, refcounted so a reply can use one while
 * another thread evicts it. */
struct dblock {
	struct dblock *hnext, *prev, *next;
	char id[65];
	uint32_t idx;
	int refs;                      /* protected by mem.lock */
	bool cached;                   /* in the table; protected by mem.lock */
	size_t len;
	size_t cap;                    /* bytes data[] can hold */
	uint8_t data[];
};

#define MEM_BUCKETS 1024
#define BLOB_BUCKETS 256

struct mfs_blobio {
	struct mfs_blobio_config cfg;
	struct mfs_bs *bs;
	struct mfs_ix *ix;
	struct mfs_hub *hub;
	struct mfs_srcset *src;        /* NULL: nothing is fetched */
	bool own_src;                  /* created from `hub` alone */
	struct mfs_catalog *cat;

	pthread_mutex_t lock;
	pthread_cond_t work;
	struct mfs_blob *blobs[BLOB_BUCKETS]; /* protected by lock */
	struct job *q_head, *q_tail;   /* protected by lock */
	bool stopping;                 /* protected by lock */
	bool cancelled;                /* protected by lock; see mfs_blobio_cancel */
	struct mfs_blobio_hooks hooks; /* set before the first read, then read-only */
	pthread_t *threads;
	int nthreads;
	struct mfs_blobio_stats st;    /* protected by lock */
	/* How many fetch jobs run at once and how large a range is
	 * (core/streams.c), fed by every finished range. */
	struct mfs_streams streams;    /* protected by lock */
	int fetching;                  /* fetch jobs running; protected by lock */
	int busy;                      /* jobs taken, of any kind, not yet done;
					* protected by lock */
	pthread_cond_t idle;           /* busy reached 0 with the queue empty */
	int small_fetching;            /* of them small (bio_job_small); lock */
	/* The integral of `fetching` over time (job-us) up to fetch_at (us),
	 * so a range knows how many ran, on average, while it did. Both
	 * protected by lock. */
	double fetch_area;
	int64_t fetch_at;

	struct {
		pthread_mutex_t lock;
		struct dblock *table[MEM_BUCKETS]; /* protected by mem.lock */
		struct dblock *lru;        /* sentinel (allocated: a struct with a
					    * flexible array cannot be a member);
					    * protected by mem.lock */
		size_t bytes;              /* protected by mem.lock */
		/* Unused blocks kept for the next fetch or load (a buffer
		 * pool): a fresh 1 MiB malloc is an mmap whose first touch
		 * faults and zeroes every page (~10 % of the daemon's CPU
		 * in a cold read, perf). Protected by mem.lock. */
		struct dblock *spare;
		unsigned nspare;           /* protected by mem.lock */
	} mem;
};

static inline uint64_t bio_id_hash(const char *id, uint32_t idx)
{
	return mfs_xxh64(id, strlen(id), idx);
}

static inline uint64_t bio_block_len(const struct mfs_blob *b, uint32_t idx)
{
	uint64_t start = (uint64_t)idx * b->bsize;
	uint64_t end = start + b->bsize;
	return (end > b->size ? b->size : end) - start;
}

/* memcache.c */
struct dblock *bio_mem_get(struct mfs_blobio *bio, const char *id, uint32_t idx);
void bio_mem_put(struct mfs_blobio *bio, struct dblock *d);
void bio_mem_insert(struct mfs_blobio *bio, struct dblock *d);
void bio_mem_drop_blob(struct mfs_blobio *bio, const char *id);
struct dblock *bio_dblock_new(struct mfs_blobio *bio, const char *id, uint32_t idx,
			      size_t cap);
/* Gives an unreferenced block back to the pool (or frees it). */
void bio_dblock_free(struct mfs_blobio *bio, struct dblock *d);
/* Returns d's memory to the system (bio_dblock_free pools it instead). */
void bio_dblock_unmap(struct dblock *d);
/* Frees the pool (at shutdown). */
void bio_dblock_pool_free(struct mfs_blobio *bio);
int bio_block_load(struct mfs_blob *b, uint32_t idx, struct dblock **out);

/* blobjob.c */
void bio_enqueue_locked(struct mfs_blobio *bio, struct mfs_blob *b,
			uint32_t first, uint32_t count, bool front, bool verify_only);
void bio_schedule_locked(struct mfs_blob *b, uint32_t first, uint32_t last, bool demand);
void *bio_worker(void *arg);
/* Fetch threads beyond fetch_threads (+1 for verify jobs) that only small
 * jobs keep busy. */
#define BIO_SMALL_THREADS 8
/* A range request's clock: when it was sent, and bio->fetch_area then. */
struct bio_range_clock {
	int64_t sent_us;
	double area;
};
int64_t bio_now_us(void);
void bio_range_start(struct mfs_blobio *bio, struct bio_range_clock *c);
/* The range started at c ended with `bytes`, its first byte at first_us:
 * feeds the controller (blobjob.c). */
void bio_streams_sample(struct mfs_blobio *bio, const struct bio_range_clock *c,
			uint64_t bytes, int64_t first_us);

/* readahead.c */
/* Schedules read-ahead for a read of bytes [off, end) (end <= size). */
void bio_readahead_locked(struct mfs_blob *b, uint64_t off, uint64_t end,
			  struct mfs_readahead *ra);
/* Learns where the blob's header ends (fmthdr.h) from its present prefix;
 * called without bio->lock when bio_hdr_due_locked said so. */
void bio_hdr_update(struct mfs_blob *b);
bool bio_hdr_due_locked(const struct mfs_blob *b);

/* blobverify.c */
void bio_hasher_init(struct mfs_blob *b);
void bio_hasher_update(struct mfs_blob *b, const void *p, size_t n);
bool bio_hasher_matches(struct mfs_blob *b);
void bio_drop_unverified_from(struct mfs_blobio *bio, uint32_t liars,
			      const struct mfs_blob *except);
void bio_hash_advance(struct mfs_blob *b);
/* The next block to hash is present and nobody is hashing. */
bool bio_hash_due_locked(const struct mfs_blob *b);
bool bio_claim_hashing_locked(struct mfs_blob *b);

/* blobfetch.c */
/* gen: the blob's drops when its bytes began arriving (or its disk lookup
 * began). */
int bio_block_arrived(struct mfs_blob *b, struct dblock *d, bool from_disk, uint32_t gen);
void bio_fail_blocks(struct mfs_blob *b, uint32_t from, uint32_t to, int err);
void bio_run_job(struct job *j);

/* blobtrust.c */
bool bio_hold_locked(const struct mfs_blob *b);
void bio_trust_open(struct mfs_blob *b);
void bio_trust_free(struct mfs_blob *b);
void bio_trust_disk_block(struct mfs_blob *b);
void bio_untrusted_arrived(struct mfs_blob *b, uint32_t src_mask);
/* A block whose bytes predate a drop of its blob arrives (bio->lock held):
 * holds the blob. true if it was not held: call bio_trust_mark_held after
 * unlocking. */
bool bio_trust_stale_locked(struct mfs_blob *b);
void bio_trust_mark_held(struct mfs_blob *b);
/* True when bytes sent by these sources may reach a reader before the blob
 * verifies (the hub, and not --verify strict). */
bool bio_sources_trusted(const struct mfs_blobio *bio, uint32_t src_mask);
void bio_trust_verdict(struct mfs_blob *b, bool ok);
void bio_trust_cancel(struct mfs_blobio *bio);
bool bio_trust_chunks(struct mfs_blob *b);
int bio_chunk_read(struct mfs_blob *b, struct mfs_src_read *rq, uint64_t from,
		   uint64_t stop, mfs_src_sink_fn sink, void *sctx, uint32_t *bad_mask,
		   struct mfs_src_outcome *oc);

/* blobio.c */
/* The one place a block changes state (bio->lock held, or the blob not yet
 * shared); keeps `present` and `inflight` equal to the number of blocks in
 * those states. Legal: ABSENT -> INFLIGHT (a job owns it), INFLIGHT ->
 * PRESENT (it arrived), ABSENT -> PRESENT (found on disk), INFLIGHT ->
 * ABSENT (the fetch failed or was dropped), PRESENT -> ABSENT (evicted,
 * corrupt, failed verification). Anything else is a bug and asserts. */
void bio_block_set_locked(struct mfs_blob *b, uint32_t idx, uint8_t to);
/* Asserts (in builds with assertions) that the counters match the states:
 * O(blocks), so called where the caller walks the blocks anyway. */
void bio_blob_check_locked(const struct mfs_blob *b);
int bio_errno_for_reader(int rc);
bool bio_range_present_locked(const struct mfs_blob *b, uint32_t b0, uint32_t b1);
void bio_complete_list(struct mfs_blob *b, struct pending_read *list, int err);
void bio_blob_unref(struct mfs_blob *b);

#endif
