/*
 * blobio.c - the block layer (see blobio.h for what it promises).
 *
 * Locking: one mutex per blobio (`lock`) guards the blob table, every
 * blob's block states and pending reads, and the job queue. Holding it is
 * always short (no I/O, no hashing, no callbacks under it); the work is
 * done by fetch threads outside it. The decoded-block cache has its own
 * mutex (`mem.lock`) because warm reads take it and should not contend
 * with job scheduling. Order: lock before mem.lock, never the reverse.
 *
 * Why a per-blobio lock rather than per blob: a FUSE read touches one
 * blob, scheduling touches one blob plus the shared queue; a finer lock
 * buys nothing on a 2-core machine and costs lock-order reasoning.
 *
 * Block states: ABSENT -> INFLIGHT (a job owns it) -> PRESENT, or back to
 * ABSENT when the fetch failed, the block vanished from disk (evicted,
 * corrupt), or the blob failed verification.
 */
#include "core/blobio.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blklock.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/size.h"

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
	/* Verification runs in whichever fetch thread claims `hashing`; the
	 * hasher state is touched only by that thread. */
	bool hashing;                  /* protected by bio->lock */
	uint32_t hash_next;            /* protected by bio->lock */
	int verdict;                   /* 1 ok, -EBADMSG bad, 0 unknown; bio->lock */
	union { struct mfs_sha256 s256; struct mfs_sha1 s1; } hasher;
	/* Sources that delivered this blob's present blocks (bit i = source
	 * i of bio->src), so a failed verification demotes them. */
	uint32_t src_mask;             /* protected by bio->lock */
	pthread_cond_t changed;        /* signalled on block/verdict changes */
	int lock_fd;                   /* cross-process block locks, -1 until first
					* fetch; set once under bio->lock */
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

	struct {
		pthread_mutex_t lock;
		struct dblock *table[MEM_BUCKETS]; /* protected by mem.lock */
		struct dblock lru;         /* sentinel; protected by mem.lock */
		size_t bytes;              /* protected by mem.lock */
	} mem;
};

static uint64_t id_hash(const char *id, uint32_t idx)
{
	return mfs_xxh64(id, strlen(id), idx);
}

/* ---- decoded-block cache ------------------------------------------------ */

static void mem_unlink_lru(struct dblock *d)
{
	d->prev->next = d->next;
	d->next->prev = d->prev;
}

static void mem_push_front(struct mfs_blobio *bio, struct dblock *d)
{
	d->next = bio->mem.lru.next;
	d->prev = &bio->mem.lru;
	d->next->prev = d;
	bio->mem.lru.next = d;
}

static void mem_remove_locked(struct mfs_blobio *bio, struct dblock *d)
{
	struct dblock **pp = &bio->mem.table[id_hash(d->id, d->idx) % MEM_BUCKETS];

	while (*pp && *pp != d)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = d->hnext;
	mem_unlink_lru(d);
	bio->mem.bytes -= d->len;
	d->cached = false;
}

static struct dblock *mem_get(struct mfs_blobio *bio, const char *id, uint32_t idx)
{
	struct dblock *d;

	pthread_mutex_lock(&bio->mem.lock);
	for (d = bio->mem.table[id_hash(id, idx) % MEM_BUCKETS]; d; d = d->hnext)
		if (d->idx == idx && strcmp(d->id, id) == 0)
			break;
	if (d) {
		d->refs++;
		mem_unlink_lru(d);
		mem_push_front(bio, d);
	}
	pthread_mutex_unlock(&bio->mem.lock);
	return d;
}

static void mem_put(struct mfs_blobio *bio, struct dblock *d)
{
	bool free_it;

	pthread_mutex_lock(&bio->mem.lock);
	free_it = --d->refs == 0 && !d->cached;
	pthread_mutex_unlock(&bio->mem.lock);
	if (free_it)
		free(d);
}

/* Inserts d (caller keeps its reference) and evicts unreferenced blocks
 * beyond the budget. An older copy of the same block is replaced. */
static void mem_insert(struct mfs_blobio *bio, struct dblock *d)
{
	struct dblock *victims = NULL;
	size_t b = id_hash(d->id, d->idx) % MEM_BUCKETS;

	pthread_mutex_lock(&bio->mem.lock);
	for (struct dblock *o = bio->mem.table[b]; o; o = o->hnext) {
		if (o->idx == d->idx && strcmp(o->id, d->id) == 0) {
			mem_remove_locked(bio, o);
			if (o->refs == 0) {
				o->hnext = victims;
				victims = o;
			}
			break;
		}
	}
	d->hnext = bio->mem.table[b];
	bio->mem.table[b] = d;
	d->cached = true;
	mem_push_front(bio, d);
	bio->mem.bytes += d->len;
	for (struct dblock *v = bio->mem.lru.prev;
	     bio->mem.bytes > bio->cfg.mem_cache_bytes && v != &bio->mem.lru;) {
		struct dblock *prev = v->prev;
		if (v->refs == 0) {
			mem_remove_locked(bio, v);
			v->hnext = victims;
			victims = v;
		}
		v = prev;
	}
	pthread_mutex_unlock(&bio->mem.lock);
	while (victims) {
		struct dblock *n = victims->hnext;
		free(victims);
		victims = n;
	}
}

static void mem_drop_blob(struct mfs_blobio *bio, const char *id)
{
	struct dblock *victims = NULL;

	pthread_mutex_lock(&bio->mem.lock);
	for (struct dblock *v = bio->mem.lru.next; v != &bio->mem.lru;) {
		struct dblock *next = v->next;
		if (strcmp(v->id, id) == 0) {
			mem_remove_locked(bio, v);
			if (v->refs == 0) {
				v->hnext = victims;
				victims = v;
			}
		}
		v = next;
	}
	pthread_mutex_unlock(&bio->mem.lock);
	while (victims) {
		struct dblock *n = victims->hnext;
		free(victims);
		victims = n;
	}
}

static struct dblock *dblock_new(const char *id, uint32_t idx, size_t cap)
{
	struct dblock *d = malloc(sizeof(*d) + cap);

	if (!d)
		return NULL;
	memset(d, 0, sizeof(*d));
	memcpy(d->id, id, strlen(id) + 1);
	d->idx = idx;
	d->refs = 1;
	return d;
}

static uint64_t block_len(const struct mfs_blob *b, uint32_t idx)
{
	uint64_t start = (uint64_t)idx * b->bsize;
	uint64_t end = start + b->bsize;
	return (end > b->size ? b->size : end) - start;
}

/* A referenced decoded block from memory or disk. -ENOENT / -EBADMSG when
 * the block is not (or no longer validly) on disk. */
static int block_load(struct mfs_blob *b, uint32_t idx, struct dblock **out)
{
	struct mfs_blobio *bio = b->bio;
	struct dblock *d = mem_get(bio, b->id, idx);
	size_t len;
	int rc;

	if (d) {
		*out = d;
		return 0;
	}
	d = dblock_new(b->id, idx, b->bsize);
	if (!d)
		return -ENOMEM;
	rc = mfs_bs_get(bio->bs, b->id, idx, d->data, b->bsize, &len);
	if (rc == 0 && len != block_len(b, idx))
		rc = -EBADMSG;
	if (rc) {
		free(d);
		return rc;
	}
	d->len = len;
	mem_insert(bio, d);
	*out = d;
	return 0;
}

/* ---- jobs ----------------------------------------------------------------- */

static void enqueue_locked(struct mfs_blobio *bio, struct mfs_blob *b,
			   uint32_t first, uint32_t count, bool front, bool verify_only)
{
	struct job *j = bio->cancelled ? NULL : calloc(1, sizeof(*j));

	if (!j) {
		/* Out of memory (or cancelled): the blocks stay INFLIGHT forever
		 * otherwise. */
		for (uint32_t i = first; i < first + count && !verify_only; i++)
			if (b->state[i] == BLK_INFLIGHT) {
				b->state[i] = BLK_ABSENT;
				b->inflight--;
			}
		return;
	}
	j->b = b;
	j->first = first;
	j->count = count;
	j->verify_only = verify_only;
	b->refs++;
	if (front) {
		j->next = bio->q_head;
		bio->q_head = j;
		if (!bio->q_tail)
			bio->q_tail = j;
	} else {
		if (bio->q_tail)
			bio->q_tail->next = j;
		else
			bio->q_head = j;
		bio->q_tail = j;
	}
	pthread_cond_signal(&bio->work);
}

/* Marks ABSENT blocks of [first, last] INFLIGHT and queues them in runs of
 * at most coalesce_max bytes. */
static void schedule_locked(struct mfs_blob *b, uint32_t first, uint32_t last, bool demand)
{
	struct mfs_blobio *bio = b->bio;
	uint32_t max_run = (uint32_t)(bio->cfg.coalesce_max / b->bsize);

	if (max_run == 0)
		max_run = 1;
	if (last >= b->nblocks)
		last = b->nblocks - 1;
	for (uint32_t i = first; i <= last && i < b->nblocks;) {
		if (b->state[i] != BLK_ABSENT) {
			i++;
			continue;
		}
		uint32_t start = i;
		while (i <= last && b->state[i] == BLK_ABSENT && i - start < max_run) {
			b->state[i] = BLK_INFLIGHT;
			b->inflight++;
			i++;
		}
		enqueue_locked(bio, b, start, i - start, demand, false);
	}
}

static void readahead_locked(struct mfs_blob *b, uint32_t b0, uint32_t b1,
			     struct mfs_readahead *ra)
{
	struct mfs_blobio *bio = b->bio;
	uint32_t max_w = (uint32_t)(bio->cfg.readahead_max / b->bsize);

	if (!ra || max_w == 0)
		return;
	/* Grow only when the reader crosses into the next block: re-reads of
	 * one block (a header parsed 4 KiB at a time) must not fetch ahead,
	 * and the first block read says nothing about what comes next. */
	uint32_t prev = ra->last_block - 1;
	if (ra->last_block != 0 && (b0 == prev || b0 == prev + 1)) {
		if (b1 > prev) {
			ra->window = ra->window ? ra->window * 2 : 1;
			if (ra->window > max_w)
				ra->window = max_w;
		}
	} else {
		ra->window = 0;
		ra->issued_until = 0;
	}
	ra->last_block = b1 + 1;
	if (ra->window == 0)
		return;
	uint32_t want = b1 + 1 + ra->window;
	if (want > b->nblocks)
		want = b->nblocks;
	/* Top up in big runs: only when less than half the window is left. */
	if (ra->issued_until < b1 + 1)
		ra->issued_until = b1 + 1;
	if (ra->issued_until >= want ||
	    (ra->issued_until - (b1 + 1)) * 2 > ra->window)
		return;
	schedule_locked(b, ra->issued_until, want - 1, false);
	ra->issued_until = want;
}

/* ---- completion of reads -------------------------------------------------- */

static int errno_for_reader(int rc)
{
	return rc == -EACCES ? -EACCES : rc == -ENOMEM ? -ENOMEM : -EIO;
}

/* Answers a read whose blocks are all PRESENT. -EAGAIN when a block turned
 * out to be gone from disk (it is then marked ABSENT). */
static int serve(struct mfs_blob *b, uint64_t off, size_t len,
		 mfs_blob_read_fn cb, void *ctx, bool *from_mem)
{
	/* The reply may let the kernel release the file at once, and the last
	 * close frees b: nothing below the callback may touch b. */
	struct mfs_blobio *bio = b->bio;
	uint32_t b0 = (uint32_t)(off / b->bsize);
	uint32_t b1 = (uint32_t)((off + len - 1) / b->bsize);
	uint32_t n = b1 - b0 + 1, got = 0;
	struct dblock *small[4], **blk = n <= 4 ? small : calloc(n, sizeof(*blk));
	struct iovec iovs[4], *iov = n <= 4 ? iovs : calloc(n, sizeof(*iov));
	int rc = 0;

	*from_mem = true;
	if (!blk || !iov) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++, got++) {
		uint32_t idx = b0 + i;
		struct dblock *d = mem_get(b->bio, b->id, idx);
		if (!d) {
			*from_mem = false;
			rc = block_load(b, idx, &d);
		}
		if (rc) {
			if (rc == -ENOENT || rc == -EBADMSG) {
				if (rc == -EBADMSG)
					mfs_warn("block %u of %s failed its checksum; refetching",
						 idx, b->id);
				(void)mfs_ix_block_del(b->bio->ix, b->id, idx);
				pthread_mutex_lock(&b->bio->lock);
				if (b->state[idx] == BLK_PRESENT) {
					b->state[idx] = BLK_ABSENT;
					b->present--;
				}
				pthread_mutex_unlock(&b->bio->lock);
				rc = -EAGAIN;
			}
			goto out;
		}
		blk[i] = d;
		uint64_t bstart = (uint64_t)idx * b->bsize;
		uint64_t s = off > bstart ? off - bstart : 0;
		uint64_t e = off + len - bstart;
		if (e > d->len)
			e = d->len;
		iov[i].iov_base = d->data + s;
		iov[i].iov_len = (size_t)(e - s);
	}
	cb(ctx, 0, iov, (int)n);
out:
	for (uint32_t i = 0; i < got; i++)
		mem_put(bio, blk[i]);
	if (blk != small)
		free(blk);
	if (iov != iovs)
		free(iov);
	return rc;
}

static bool range_present_locked(const struct mfs_blob *b, uint32_t b0, uint32_t b1)
{
	for (uint32_t i = b0; i <= b1; i++)
		if (b->state[i] != BLK_PRESENT)
			return false;
	return true;
}

/* Completes (outside the lock) every pending read in `list`; reads that
 * find a block gone are re-issued. */
static void complete_list(struct mfs_blob *b, struct pending_read *list, int err)
{
	while (list) {
		struct pending_read *p = list;
		list = p->next;
		bool mem;
		if (err) {
			p->cb(p->ctx, err, NULL, 0);
		} else if (serve(b, p->off, p->len, p->cb, p->ctx, &mem) == -EAGAIN) {
			mfs_blob_read(b, p->off, p->len, NULL, p->cb, p->ctx);
		}
		free(p);
	}
}

/* ---- verification -------------------------------------------------------- */

static void hasher_init(struct mfs_blob *b)
{
	if (strlen(b->id) == 64)
		mfs_sha256_init(&b->hasher.s256);
	else
		mfs_gitsha1_init(&b->hasher.s1, b->size);
}

static void hasher_update(struct mfs_blob *b, const void *p, size_t n)
{
	if (strlen(b->id) == 64)
		mfs_sha256_update(&b->hasher.s256, p, n);
	else
		mfs_sha1_update(&b->hasher.s1, p, n);
}

static bool hasher_matches(struct mfs_blob *b)
{
	uint8_t d[32];
	char hex[65];
	size_t n = strlen(b->id) == 64 ? 32 : 20;

	if (n == 32)
		mfs_sha256_final(&b->hasher.s256, d);
	else
		mfs_sha1_final(&b->hasher.s1, d);
	mfs_hex(d, n, hex);
	return strcasecmp(hex, b->id) == 0;
}

static void drop_blob_blocks(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;

	(void)mfs_bs_drop_blob(bio->bs, b->id);
	(void)mfs_ix_blob_drop_blocks(bio->ix, b->id);
	mem_drop_blob(bio, b->id);
	pthread_mutex_lock(&bio->lock);
	for (uint32_t i = 0; i < b->nblocks; i++)
		if (b->state[i] == BLK_PRESENT)
			b->state[i] = BLK_ABSENT;
	b->present = 0;
	b->hash_next = 0;
	b->verdict = -EBADMSG;
	bio->st.verify_failures++;
	pthread_cond_broadcast(&b->changed);
	pthread_mutex_unlock(&bio->lock);
	if (bio->cfg.on_invalid)
		bio->cfg.on_invalid(bio->cfg.on_invalid_ctx, b->id);
}

static void blob_unref(struct mfs_blob *b);

/* A source just caught lying: blocks it sent for other open blobs that are
 * not verified yet are not kept either (issue: "blocks from a demoted
 * source are not kept"); they are refetched from the others. Blobs being
 * hashed right now are left to their own check, which catches the same
 * bytes without racing the hasher. */
static void drop_unverified_from(struct mfs_blobio *bio, uint32_t liars,
				 const struct mfs_blob *except)
{
	struct mfs_blob *victims[64];
	size_t n = 0;

	if (!liars)
		return;
	pthread_mutex_lock(&bio->lock);
	for (int i = 0; i < BLOB_BUCKETS && n < 64; i++) {
		for (struct mfs_blob *o = bio->blobs[i]; o && n < 64; o = o->hnext) {
			if (o == except || !(o->src_mask & liars) || o->verdict == 1 || o->hashing)
				continue;
			o->refs++;
			o->src_mask &= ~liars;
			victims[n++] = o;
		}
	}
	pthread_mutex_unlock(&bio->lock);
	for (size_t i = 0; i < n; i++) {
		struct mfs_blob *o = victims[i];
		drop_blob_blocks(o);
		pthread_mutex_lock(&bio->lock);
		if (!o->hashing)
			hasher_init(o);
		o->verdict = 0;
		pthread_mutex_unlock(&bio->lock);
		mfs_warn("%s/%s: dropped its unverified blocks: a source that sent some of them "
			 "sent bad data elsewhere", o->repo.id, o->path);
		blob_unref(o);
	}
}

/* Bad content: blame the sources that sent it. When the hub and others
 * both contributed, the others are blamed (the hub is the reference).
 * Returns the sources demoted. */
static uint32_t demote_senders(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;
	int hub = mfs_srcset_hub_index(bio->src);
	uint32_t mask;

	pthread_mutex_lock(&bio->lock);
	mask = b->src_mask;
	b->src_mask = 0;
	pthread_mutex_unlock(&bio->lock);
	if (hub >= 0 && hub < 32 && (mask & ~(1u << hub)))
		mask &= ~(1u << hub);
	for (int i = 0; i < 32; i++)
		if (mask & (1u << i))
			mfs_srcset_demote(bio->src, i, b->id);
	/* The hub is the reference: its blocks elsewhere are not suspect. */
	return hub >= 0 && hub < 32 ? mask & ~(1u << hub) : mask;
}

/* Feeds consecutive present blocks into the hasher; called by the thread
 * that set b->hashing. Finishes the verdict at the last block. */
static void hash_advance(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;

	for (;;) {
		struct dblock *d;
		uint32_t i;

		pthread_mutex_lock(&bio->lock);
		i = b->hash_next;
		if (i >= b->nblocks || b->state[i] != BLK_PRESENT) {
			b->hashing = false;
			pthread_mutex_unlock(&bio->lock);
			break;
		}
		pthread_mutex_unlock(&bio->lock);
		int lrc = block_load(b, i, &d);
		if (lrc) {
			pthread_mutex_lock(&bio->lock);
			b->hashing = false;
			/* Evicted (or corrupt) since it arrived: it is absent, or
			 * verify_wait would see a complete blob forever. */
			if ((lrc == -ENOENT || lrc == -EBADMSG) && b->state[i] == BLK_PRESENT) {
				b->state[i] = BLK_ABSENT;
				b->present--;
				pthread_cond_broadcast(&b->changed);
			}
			pthread_mutex_unlock(&bio->lock);
			if (lrc == -ENOENT || lrc == -EBADMSG)
				(void)mfs_ix_block_del(bio->ix, b->id, i);
			break;
		}
		hasher_update(b, d->data, d->len);
		mem_put(bio, d);
		pthread_mutex_lock(&bio->lock);
		b->hash_next = i + 1;
		bool done = b->hash_next == b->nblocks;
		pthread_mutex_unlock(&bio->lock);
		if (!done)
			continue;
		if (hasher_matches(b)) {
			(void)mfs_ix_blob_set_verified(bio->ix, b->id, true);
			pthread_mutex_lock(&bio->lock);
			b->verdict = 1;
			b->hashing = false;
			pthread_cond_broadcast(&b->changed);
			pthread_mutex_unlock(&bio->lock);
		} else {
			/* Demote first so a refetch avoids the liar, drop (and
			 * invalidate the kernel's pages) next, log last: whoever
			 * acts on the log line finds the bad bytes gone. */
			uint32_t liars = demote_senders(b);
			drop_blob_blocks(b);
			mfs_error("%s/%s: content does not match its hash %s; "
				  "dropped its blocks, they will be fetched again",
				  b->repo.id, b->path, b->id);
			drop_unverified_from(bio, liars, b);
			pthread_mutex_lock(&bio->lock);
			hasher_init(b);
			b->hashing = false;
			pthread_mutex_unlock(&bio->lock);
		}
		break;
	}
}

/* Claims the hasher if the next block to hash is present. */
static bool claim_hashing_locked(struct mfs_blob *b)
{
	if (b->hashing || b->verdict == 1 || b->hash_next >= b->nblocks ||
	    b->state[b->hash_next] != BLK_PRESENT)
		return false;
	b->hashing = true;
	return true;
}

/* ---- fetching --------------------------------------------------------------- */

struct sink_ctx {
	struct mfs_blob *b;
	uint32_t idx;          /* block being filled */
	struct dblock *cur;
	uint64_t stored;       /* bytes delivered so far */
	int err;
	uint32_t cur_mask;     /* sources that sent bytes of the current block */
};

/* A block's bytes are complete: store, record, publish, answer waiters. */
static int block_arrived(struct mfs_blob *b, struct dblock *d, bool from_disk)
{
	struct mfs_blobio *bio = b->bio;
	struct pending_read *ready = NULL, **pp;
	struct mfs_bs_stats st = { 0 };
	bool hash;
	int rc;

	if (b->nblocks == 1 && b->verdict != 1) {
		/* Whole blob in one block: check before anyone sees a byte. */
		hasher_init(b);
		hasher_update(b, d->data, d->len);
		if (!hasher_matches(b)) {
			mfs_error("%s/%s: content does not match its hash %s; not served",
				  b->repo.id, b->path, b->id);
			(void)mfs_bs_drop_blob(bio->bs, b->id);
			pthread_mutex_lock(&bio->lock);
			bio->st.verify_failures++;
			pthread_mutex_unlock(&bio->lock);
			mem_put(bio, d);
			return -EBADMSG;
		}
		pthread_mutex_lock(&bio->lock);
		b->verdict = 1;
		b->hash_next = 1;
		pthread_mutex_unlock(&bio->lock);
		(void)mfs_ix_blob_set_verified(bio->ix, b->id, true);
	}
	if (!from_disk) {
		rc = mfs_bs_put(bio->bs, b->id, d->idx, d->data, d->len,
				bio->cfg.zstd_level, &st);
		/* A full disk: evict, then one more try (DESIGN.md §4). */
		if (rc == -ENOSPC && bio->hooks.on_nospace &&
		    bio->hooks.on_nospace(bio->hooks.ctx, d->len) == 0)
			rc = mfs_bs_put(bio->bs, b->id, d->idx, d->data, d->len,
					bio->cfg.zstd_level, &st);
		if (rc == -ENOSPC) {
			mfs_error("could not store block %u of %s: the cache disk is full "
				  "(ENOSPC) and eviction freed too little; served from memory "
				  "and fetched again when needed", d->idx, b->id);
		} else if (rc) {
			mfs_warn("could not store block %u of %s: %s (served from memory)",
				 d->idx, b->id, strerror(-rc));
		} else {
			(void)mfs_ix_block_add(bio->ix, b->id, d->idx, st.stored_bytes);
			if (bio->hooks.on_stored)
				bio->hooks.on_stored(bio->hooks.ctx, st.stored_bytes);
		}
	}
	mem_insert(bio, d);
	mem_put(bio, d);

	pthread_mutex_lock(&bio->lock);
	if (b->state[d->idx] == BLK_INFLIGHT)
		b->inflight--;
	if (b->state[d->idx] != BLK_PRESENT) {
		b->state[d->idx] = BLK_PRESENT;
		b->present++;
	}
	if (!from_disk) {
		bio->st.blocks_fetched++;
		bio->st.bytes_fetched += d->len;
	}
	for (pp = &b->pending; *pp;) {
		struct pending_read *p = *pp;
		if (p->b0 <= d->idx && d->idx <= p->b1 && range_present_locked(b, p->b0, p->b1)) {
			*pp = p->next;
			p->next = ready;
			ready = p;
		} else {
			pp = &p->next;
		}
	}
	hash = claim_hashing_locked(b);
	pthread_cond_broadcast(&b->changed);
	pthread_mutex_unlock(&bio->lock);

	complete_list(b, ready, 0);
	if (hash)
		hash_advance(b);
	return 0;
}

static int sink(void *vctx, int src, uint64_t off, const void *data, size_t len)
{
	struct sink_ctx *sc = vctx;
	struct mfs_blob *b = sc->b;
	const uint8_t *p = data;

	(void)off;
	if (src >= 0 && src < 32)
		sc->cur_mask |= 1u << src;
	while (len) {
		if (!sc->cur) {
			sc->cur = dblock_new(b->id, sc->idx, b->bsize);
			if (!sc->cur)
				return -ENOMEM;
		}
		size_t want = (size_t)block_len(b, sc->idx) - sc->cur->len;
		size_t n = len < want ? len : want;
		memcpy(sc->cur->data + sc->cur->len, p, n);
		sc->cur->len += n;
		p += n;
		len -= n;
		if (sc->cur->len == block_len(b, sc->idx)) {
			struct dblock *d = sc->cur;
			sc->cur = NULL;
			pthread_mutex_lock(&b->bio->lock);
			b->src_mask |= sc->cur_mask;
			pthread_mutex_unlock(&b->bio->lock);
			int rc = block_arrived(b, d, false);
			if (rc) {
				/* sc->idx still names the failed block: it fails too;
				 * cur_mask still names who sent it. */
				sc->err = rc;
				return rc;
			}
			sc->idx++;
			/* the source sending now also sent the next block's start */
			sc->cur_mask = src >= 0 && src < 32 ? 1u << src : 0;
		}
	}
	return 0;
}

/* Fails the blocks [from, to) of a job and every read waiting on them. */
static void fail_blocks(struct mfs_blob *b, uint32_t from, uint32_t to, int err)
{
	struct mfs_blobio *bio = b->bio;
	struct pending_read *failed = NULL, **pp;

	pthread_mutex_lock(&bio->lock);
	for (uint32_t i = from; i < to; i++) {
		if (b->state[i] == BLK_INFLIGHT) {
			b->state[i] = BLK_ABSENT;
			b->inflight--;
		}
	}
	for (pp = &b->pending; *pp;) {
		struct pending_read *p = *pp;
		if (p->b0 < to && p->b1 >= from) {
			*pp = p->next;
			p->next = failed;
			failed = p;
		} else {
			pp = &p->next;
		}
	}
	bio->st.fetch_errors++;
	pthread_cond_broadcast(&b->changed);
	pthread_mutex_unlock(&bio->lock);
	complete_list(b, failed, errno_for_reader(err));
}

static int fetch_run(struct mfs_blob *b, uint32_t first, uint32_t end)
{
	struct mfs_blobio *bio = b->bio;
	struct sink_ctx sc = { .b = b, .idx = first };
	struct mfs_src_read rq = {
		.file = { .repo = &b->repo, .commit = b->commit, .path = b->path,
			  .size = b->size, .lfs = b->lfs },
		.content_id = b->id,
	};
	struct mfs_src_outcome oc;
	uint64_t off = (uint64_t)first * b->bsize;
	uint64_t stop = (uint64_t)end * b->bsize;
	int rc;

	if (stop > b->size)
		stop = b->size;
	/* The catalog may already know the hub is down: skip it, not the
	 * mirrors and peers. */
	rq.skip_hub = bio->cat && !mfs_cat_hub_usable(bio->cat);
	for (int attempt = 0;; attempt++) {
		uint64_t from = (uint64_t)sc.idx * b->bsize;

		if (!bio->src) {
			rc = -EHOSTDOWN;
			break;
		}
		rc = mfs_srcset_read(bio->src, &rq, from, stop - from, sink, &sc, &oc);
		if (bio->cat && oc.hub_tried)
			mfs_cat_note_hub(bio->cat, oc.hub_rc == 0 || oc.hub_rc == -ECANCELED ||
					 oc.hub_rc == -EACCES || oc.hub_rc == -ENOENT ? 0 : oc.hub_rc);
		if (rc == -ECANCELED && sc.err)
			rc = sc.err;
		/* A one-block blob that failed its hash before being served:
		 * blame its sender and fetch it elsewhere (bounded). */
		if (rc != -EBADMSG || attempt >= 2 || !sc.cur_mask)
			break;
		{
			int hub = mfs_srcset_hub_index(bio->src);
			uint32_t m = sc.cur_mask;
			if (hub >= 0 && (m & ~(1u << hub)))
				m &= ~(1u << hub);
			for (int i = 0; i < 32; i++)
				if (m & (1u << i))
					mfs_srcset_demote(bio->src, i, b->id);
			if (hub >= 0 && hub < 32)
				m &= ~(1u << hub);
			drop_unverified_from(bio, m, b);
		}
		pthread_mutex_lock(&bio->lock);
		b->src_mask = 0;
		pthread_mutex_unlock(&bio->lock);
		sc.err = 0;
		sc.cur_mask = 0;
		if (sc.cur) {
			free(sc.cur);
			sc.cur = NULL;
		}
	}
	if (sc.cur)
		free(sc.cur);
	if (rc == -EHOSTDOWN) {
		mfs_debug("%s/%s: no source reachable", b->repo.id, b->path);
		fail_blocks(b, sc.idx, end, rc);
	} else if (rc) {
		mfs_warn("%s/%s: fetching bytes %llu-%llu failed: %s",
			 b->repo.id, b->path, (unsigned long long)off,
			 (unsigned long long)stop - 1, strerror(-rc));
		fail_blocks(b, sc.idx, end, rc);
	}
	return rc;
}

/* The blob's lock file descriptor, opened on first use; -1 without a lock
 * dir or when it cannot be opened (then fetches are merely uncoordinated). */
static int blob_lock_fd(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;
	int fd, keep;

	if (!bio->cfg.lock_dir)
		return -1;
	pthread_mutex_lock(&bio->lock);
	fd = b->lock_fd;
	pthread_mutex_unlock(&bio->lock);
	if (fd >= 0)
		return fd;
	fd = mfs_blklock_open(bio->cfg.lock_dir, b->id);
	if (fd < 0) {
		mfs_warn("cannot open the block lock of %s in %s: %s", b->id,
			 bio->cfg.lock_dir, strerror(-fd));
		return -1;
	}
	pthread_mutex_lock(&bio->lock);
	if (b->lock_fd < 0) {
		b->lock_fd = fd;
		fd = -1;
	}
	keep = b->lock_fd;
	pthread_mutex_unlock(&bio->lock);
	if (fd >= 0)
		close(fd);
	return keep;
}

static void run_job(struct job *j)
{
	struct mfs_blob *b = j->b;
	uint32_t end = j->first + j->count;

	if (j->verify_only) {
		pthread_mutex_lock(&b->bio->lock);
		bool claimed = claim_hashing_locked(b);
		pthread_mutex_unlock(&b->bio->lock);
		if (claimed)
			hash_advance(b);
		return;
	}
	/* Another process (prefetch, a second mount) may have stored some of
	 * these blocks since we looked: take them from disk, fetch the rest.
	 * With a lock dir, a block is fetched only under its cross-process
	 * lock; a block another process is fetching is waited for and then
	 * read from disk, so each block crosses the network once. */
	int fd = blob_lock_fd(b);
	for (uint32_t i = j->first; i < end;) {
		struct mfs_bs *bs = b->bio->bs;
		struct dblock *d;
		bool locked = false;
		if (mfs_bs_has(bs, b->id, i) && block_load(b, i, &d) == 0 &&
		    block_arrived(b, d, true) == 0) {
			i++;
			continue;
		}
		if (fd >= 0) {
			int lr = mfs_blklock_try(fd, i, 1);
			if (lr == -EAGAIN &&
			    mfs_blklock_wait(fd, i, b->bio->cfg.lock_wait_ms) == 0)
				continue; /* look at the disk again */
			locked = lr == 0;
			if (locked && mfs_bs_has(bs, b->id, i)) {
				/* Stored by another process just before we locked. */
				mfs_blklock_release(fd, i, 1);
				continue;
			}
		}
		uint32_t run_end = i + 1;
		while (run_end < end && !mfs_bs_has(bs, b->id, run_end)) {
			if (locked) {
				if (mfs_blklock_try(fd, run_end, 1))
					break;
				if (mfs_bs_has(bs, b->id, run_end)) {
					mfs_blklock_release(fd, run_end, 1);
					break;
				}
			}
			run_end++;
		}
		int frc = fetch_run(b, i, run_end);
		if (locked)
			mfs_blklock_release(fd, i, run_end - i);
		if (frc) {
			/* The source failed; the rest of this job fails too rather
			 * than hammering it once per block. */
			if (run_end < end)
				fail_blocks(b, run_end, end, -EIO);
			break;
		}
		i = run_end;
	}
}


static void *worker(void *arg)
{
	struct mfs_blobio *bio = arg;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&bio->lock);
		while (!bio->q_head && !bio->stopping)
			pthread_cond_wait(&bio->work, &bio->lock);
		if (!bio->q_head) {
			pthread_mutex_unlock(&bio->lock);
			break;
		}
		j = bio->q_head;
		bio->q_head = j->next;
		if (!bio->q_head)
			bio->q_tail = NULL;
		pthread_mutex_unlock(&bio->lock);
		run_job(j);
		blob_unref(j->b);
		free(j);
	}
	return NULL;
}

/* ---- public API ------------------------------------------------------------ */

int mfs_blobio_new(const struct mfs_blobio_config *cfg, struct mfs_bs *bs,
		   struct mfs_ix *ix, struct mfs_hub *hub, struct mfs_catalog *cat,
		   struct mfs_blobio **out)
{
	struct mfs_blobio *bio = calloc(1, sizeof(*bio));
	int rc = -ENOMEM;

	if (!bio)
		return -ENOMEM;
	bio->cfg = *cfg;
	if (!bio->cfg.block_size)
		bio->cfg.block_size = 1 << 20;
	if (bio->cfg.fetch_threads <= 0)
		bio->cfg.fetch_threads = 8;
	if (!bio->cfg.readahead_max)
		bio->cfg.readahead_max = 64u << 20;
	if (!bio->cfg.coalesce_max)
		bio->cfg.coalesce_max = 8u << 20;
	/* The memory cache must hold the read-ahead window plus what is in
	 * flight, or blocks just fetched are evicted before the reader and the
	 * hasher get to them and are read back from disk: with 64 MiB a cold
	 * GiB was read back 2.2 times (bench/bench_mount.py, strace). */
	if (!bio->cfg.mem_cache_bytes) {
		size_t want = 2 * bio->cfg.readahead_max +
			      (size_t)bio->cfg.fetch_threads * bio->cfg.coalesce_max;
		bio->cfg.mem_cache_bytes = want > (256u << 20) ? want : (256u << 20);
	}
	if (!bio->cfg.zstd_level)
		bio->cfg.zstd_level = 1;
	if (bio->cfg.lock_wait_ms <= 0)
		bio->cfg.lock_wait_ms = 120000;
	bio->bs = bs;
	bio->ix = ix;
	bio->hub = hub;
	bio->src = cfg->sources;
	if (!bio->src && hub) {
		struct mfs_srcset_config sc = { 0 };
		rc = mfs_srcset_new(&sc, hub, &bio->src);
		if (rc)
			goto fail;
		bio->own_src = true;
	}
	bio->cat = cat;
	pthread_mutex_init(&bio->lock, NULL);
	pthread_cond_init(&bio->work, NULL);
	pthread_mutex_init(&bio->mem.lock, NULL);
	bio->mem.lru.next = bio->mem.lru.prev = &bio->mem.lru;
	bio->threads = calloc((size_t)bio->cfg.fetch_threads, sizeof(pthread_t));
	if (!bio->threads)
		goto fail;
	for (int i = 0; i < bio->cfg.fetch_threads; i++) {
		rc = -pthread_create(&bio->threads[i], NULL, worker, bio);
		if (rc)
			goto fail;
		bio->nthreads++;
	}
	*out = bio;
	return 0;
fail:
	mfs_blobio_free(bio);
	return rc;
}

void mfs_blobio_free(struct mfs_blobio *bio)
{
	if (!bio)
		return;
	pthread_mutex_lock(&bio->lock);
	bio->stopping = true;
	pthread_cond_broadcast(&bio->work);
	pthread_mutex_unlock(&bio->lock);
	for (int i = 0; i < bio->nthreads; i++)
		pthread_join(bio->threads[i], NULL);
	free(bio->threads);
	for (struct dblock *v = bio->mem.lru.next; v != &bio->mem.lru;) {
		struct dblock *next = v->next;
		free(v);
		v = next;
	}
	for (int i = 0; i < BLOB_BUCKETS; i++) {
		for (struct mfs_blob *b = bio->blobs[i], *n; b; b = n) {
			n = b->hnext;
			mfs_warn("blob %s still open at shutdown", b->id);
			if (b->lock_fd >= 0)
				close(b->lock_fd);
			free(b->state);
			free(b->path);
			pthread_cond_destroy(&b->changed);
			free(b);
		}
	}
	if (bio->own_src)
		mfs_srcset_free(bio->src);
	pthread_mutex_destroy(&bio->lock);
	pthread_cond_destroy(&bio->work);
	pthread_mutex_destroy(&bio->mem.lock);
	free(bio);
}

static void blob_unref(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;
	bool gone = false;

	pthread_mutex_lock(&bio->lock);
	if (--b->refs == 0) {
		struct mfs_blob **pp = &bio->blobs[id_hash(b->id, 0) % BLOB_BUCKETS];
		while (*pp != b)
			pp = &(*pp)->hnext;
		*pp = b->hnext;
		gone = true;
	}
	pthread_mutex_unlock(&bio->lock);
	if (!gone)
		return;
	if (b->lock_fd >= 0)
		close(b->lock_fd);
	free(b->state);
	free(b->path);
	pthread_cond_destroy(&b->changed);
	free(b);
}

int mfs_blob_open(struct mfs_blobio *bio, const struct mfs_blob_desc *desc,
		  struct mfs_blob **out)
{
	struct mfs_blob *b = NULL, *found;
	uint32_t bsize = bio->cfg.block_size;
	uint8_t *bitmap = NULL;
	bool verified = false, pinned = false;
	uint64_t isize;
	size_t idlen = strlen(desc->content_id);
	int rc;

	if ((idlen != 40 && idlen != 64) || !mfs_hex_valid(desc->content_id, idlen))
		return -EINVAL;
	pthread_mutex_lock(&bio->lock);
	for (found = bio->blobs[id_hash(desc->content_id, 0) % BLOB_BUCKETS]; found;
	     found = found->hnext)
		if (strcmp(found->id, desc->content_id) == 0)
			break;
	if (found)
		found->refs++;
	pthread_mutex_unlock(&bio->lock);
	if (found) {
		*out = found;
		return 0;
	}

	rc = mfs_ix_blob_ensure(bio->ix, desc->content_id, desc->size, &bsize);
	if (rc)
		return rc;
	if (bsize == 0)
		bsize = bio->cfg.block_size;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->bio = bio;
	b->refs = 1;
	b->lock_fd = -1;
	memcpy(b->id, desc->content_id, idlen + 1);
	for (size_t i = 0; i < idlen; i++)
		if (b->id[i] >= 'A' && b->id[i] <= 'F')
			b->id[i] = (char)(b->id[i] + 32);
	b->repo = *desc->repo;
	memcpy(b->commit, desc->commit, 41);
	b->path = strdup(desc->path);
	b->size = desc->size;
	b->lfs = desc->lfs;
	b->bsize = bsize;
	b->nblocks = (uint32_t)((desc->size + bsize - 1) / bsize);
	b->state = calloc(b->nblocks ? b->nblocks : 1, 1);
	bitmap = calloc((b->nblocks + 7) / 8 + 1, 1);
	pthread_cond_init(&b->changed, NULL);
	if (!b->path || !b->state || !bitmap) {
		rc = -ENOMEM;
		goto fail;
	}
	hasher_init(b);
	if (mfs_ix_blocks_get(bio->ix, b->id, bitmap, b->nblocks) == 0) {
		for (uint32_t i = 0; i < b->nblocks; i++)
			if (bitmap[i / 8] & (1u << (i % 8))) {
				b->state[i] = BLK_PRESENT;
				b->present++;
			}
	}
	if (mfs_ix_blob_get(bio->ix, b->id, &isize, &bsize, &verified, &pinned) == 0 &&
	    verified && b->present == b->nblocks) {
		b->verdict = 1;
		b->hash_next = b->nblocks;
	}
	free(bitmap);
	bitmap = NULL;

	pthread_mutex_lock(&bio->lock);
	/* Someone may have opened it meanwhile: keep theirs. */
	for (found = bio->blobs[id_hash(b->id, 0) % BLOB_BUCKETS]; found; found = found->hnext)
		if (strcmp(found->id, b->id) == 0)
			break;
	if (found) {
		found->refs++;
		pthread_mutex_unlock(&bio->lock);
		rc = 0;
		*out = found;
		goto fail; /* frees our copy */
	}
	b->hnext = bio->blobs[id_hash(b->id, 0) % BLOB_BUCKETS];
	bio->blobs[id_hash(b->id, 0) % BLOB_BUCKETS] = b;
	if (b->nblocks > 0 && b->present == b->nblocks && b->verdict != 1)
		enqueue_locked(bio, b, 0, 0, false, true);
	pthread_mutex_unlock(&bio->lock);
	{
		const char *ids[1] = { b->id };
		(void)mfs_ix_touch(bio->ix, ids, 1, mfs_wall_ms());
	}
	*out = b;
	return 0;
fail:
	free(bitmap);
	free(b->state);
	free(b->path);
	pthread_cond_destroy(&b->changed);
	free(b);
	return rc;
}

void mfs_blob_close(struct mfs_blob *b)
{
	if (b)
		blob_unref(b);
}

uint64_t mfs_blob_size(const struct mfs_blob *b)
{
	return b->size;
}

bool mfs_blob_complete(struct mfs_blob *b)
{
	bool c;

	pthread_mutex_lock(&b->bio->lock);
	c = b->present == b->nblocks;
	pthread_mutex_unlock(&b->bio->lock);
	return c;
}

uint64_t mfs_blob_cached_bytes(struct mfs_blob *b)
{
	uint64_t n = 0;

	pthread_mutex_lock(&b->bio->lock);
	for (uint32_t i = 0; i < b->nblocks; i++)
		if (b->state[i] == BLK_PRESENT)
			n += block_len(b, i);
	pthread_mutex_unlock(&b->bio->lock);
	return n;
}

int mfs_blob_check_reachable(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;
	struct mfs_src_read rq = {
		.file = { .repo = &b->repo, .commit = b->commit, .path = b->path,
			  .size = b->size, .lfs = b->lfs },
		.content_id = b->id,
	};
	struct mfs_src_outcome oc;
	int rc;

	if (mfs_blob_complete(b))
		return 0;
	if (!bio->src) {
		rc = -EHOSTDOWN;
		goto refuse;
	}
	rq.skip_hub = bio->cat && !mfs_cat_hub_usable(bio->cat);
	/* Always ask: trusting a source that answered a moment ago is exactly
	 * the case that hangs a loader (header read, source dies, the loader
	 * reopens and populates). One probe per open of an incomplete file is
	 * the price; a complete file costs nothing. Refuse only what retrying
	 * cannot fix (mfs_srcset_probe lets a 429/5xx answer through). */
	rc = mfs_srcset_probe(bio->src, &rq, &oc);
	if (bio->cat && oc.hub_tried)
		mfs_cat_note_hub(bio->cat, oc.hub_rc == -EACCES || oc.hub_rc == -ENOENT ||
				 oc.hub_rc == -EIO ? 0 : oc.hub_rc);
	if (rc == 0)
		return 0;
	if (rc == -EACCES)
		return -EACCES;
refuse:
	mfs_warn("%s/%s: refusing open: %llu of %llu bytes cached and no source "
		 "can provide the rest (%s)", b->repo.id, b->path,
		 (unsigned long long)mfs_blob_cached_bytes(b),
		 (unsigned long long)b->size, strerror(-rc));
	return -EIO;
}

void mfs_blob_read(struct mfs_blob *b, uint64_t off, size_t len,
		   struct mfs_readahead *ra, mfs_blob_read_fn cb, void *ctx)
{
	struct mfs_blobio *bio = b->bio;
	struct pending_read *p;
	uint32_t b0, b1;
	bool mem;

	if (off >= b->size || len == 0) {
		cb(ctx, 0, NULL, 0);
		return;
	}
	if (len > b->size - off)
		len = (size_t)(b->size - off);
	b0 = (uint32_t)(off / b->bsize);
	b1 = (uint32_t)((off + len - 1) / b->bsize);

	pthread_mutex_lock(&bio->lock);
	bio->st.reads++;
	readahead_locked(b, b0, b1, ra);
	/* Serve from memory or disk while every block is present; a block
	 * that vanished from disk (evicted, corrupt) turns this into a miss. */
	for (int attempt = 0; range_present_locked(b, b0, b1); attempt++) {
		pthread_mutex_unlock(&bio->lock);
		int rc = attempt < 3 ? serve(b, off, len, cb, ctx, &mem) : -EIO;
		if (rc == 0) {
			pthread_mutex_lock(&bio->lock);
			if (mem)
				bio->st.reads_mem++;
			else
				bio->st.reads_disk++;
			pthread_mutex_unlock(&bio->lock);
			return;
		}
		if (rc != -EAGAIN) {
			cb(ctx, rc, NULL, 0);
			return;
		}
		pthread_mutex_lock(&bio->lock);
	}
	/* Miss (holding bio->lock): the fetch thread will answer. */
	if (bio->cancelled) {
		pthread_mutex_unlock(&bio->lock);
		cb(ctx, -ECANCELED, NULL, 0);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		pthread_mutex_unlock(&bio->lock);
		cb(ctx, -ENOMEM, NULL, 0);
		return;
	}
	*p = (struct pending_read){ b->pending, off, len, b0, b1, cb, ctx };
	b->pending = p;
	bio->st.reads_waited++;
	schedule_locked(b, b0, b1, true);
	pthread_mutex_unlock(&bio->lock);
}

struct wait_ctx {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int err;
};

static void wait_cb(void *vctx, int err, const struct iovec *iov, int iovcnt)
{
	struct wait_ctx *w = vctx;

	(void)iov;
	(void)iovcnt;
	pthread_mutex_lock(&w->lock);
	w->done = true;
	w->err = err;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int mfs_blob_fetch_wait(struct mfs_blob *b, uint64_t off, uint64_t len,
			void (*progress)(void *ctx, uint64_t bytes), void *pctx)
{
	uint64_t end = off + len > b->size ? b->size : off + len;
	uint64_t step = b->bio->cfg.coalesce_max;
	int rc = 0;

	/* Issue everything up front (the fetch threads run in parallel), then
	 * wait chunk by chunk by reading one byte at the end of each chunk. */
	pthread_mutex_lock(&b->bio->lock);
	if (end > off)
		schedule_locked(b, (uint32_t)(off / b->bsize),
				(uint32_t)((end - 1) / b->bsize), false);
	pthread_mutex_unlock(&b->bio->lock);
	for (uint64_t pos = off; pos < end && rc == 0; pos += step) {
		uint64_t chunk_end = pos + step > end ? end : pos + step;
		struct wait_ctx w = { .done = false };
		pthread_mutex_init(&w.lock, NULL);
		pthread_cond_init(&w.cond, NULL);
		mfs_blob_read(b, pos, (size_t)(chunk_end - pos), NULL, wait_cb, &w);
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cond, &w.lock);
		pthread_mutex_unlock(&w.lock);
		pthread_mutex_destroy(&w.lock);
		pthread_cond_destroy(&w.cond);
		rc = w.err;
		if (rc == 0 && progress)
			progress(pctx, chunk_end - pos);
	}
	return rc;
}

int mfs_blob_verify_wait(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;
	int rc;

	pthread_mutex_lock(&bio->lock);
	while (b->present == b->nblocks && b->verdict == 0 && b->nblocks > 0) {
		if (!b->hashing && claim_hashing_locked(b)) {
			pthread_mutex_unlock(&bio->lock);
			hash_advance(b);
			pthread_mutex_lock(&bio->lock);
			continue;
		}
		pthread_cond_wait(&b->changed, &bio->lock);
	}
	rc = b->nblocks == 0 ? 1 : b->verdict == 1 ? 1 : b->verdict < 0 ? -EBADMSG : 0;
	pthread_mutex_unlock(&bio->lock);
	return rc;
}

void mfs_blobio_stats(struct mfs_blobio *bio, struct mfs_blobio_stats *st)
{
	pthread_mutex_lock(&bio->lock);
	*st = bio->st;
	pthread_mutex_unlock(&bio->lock);
}

/* ---- cache-space hooks and cancellation (prefetch, evictor) ---------------- */

void mfs_blobio_set_hooks(struct mfs_blobio *bio, const struct mfs_blobio_hooks *h)
{
	bio->hooks = *h;
}

void mfs_blobio_cancel(struct mfs_blobio *bio)
{
	struct job *list;

	pthread_mutex_lock(&bio->lock);
	bio->cancelled = true;
	list = bio->q_head;
	bio->q_head = bio->q_tail = NULL;
	pthread_mutex_unlock(&bio->lock);
	while (list) {
		struct job *j = list;
		list = j->next;
		if (!j->verify_only)
			fail_blocks(j->b, j->first, j->first + j->count, -ECANCELED);
		blob_unref(j->b);
		free(j);
	}
}

bool mfs_blobio_in_use(struct mfs_blobio *bio, const char *content_id)
{
	struct mfs_blob *b;
	bool used = false;

	pthread_mutex_lock(&bio->lock);
	for (b = bio->blobs[id_hash(content_id, 0) % BLOB_BUCKETS]; b; b = b->hnext)
		if (strcmp(b->id, content_id) == 0) {
			used = b->refs > 0;
			break;
		}
	pthread_mutex_unlock(&bio->lock);
	return used;
}
