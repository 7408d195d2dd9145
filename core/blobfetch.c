/*
 * blobfetch.c - the block layer's fetching: running a job, failover between
 * sources, storing arrived blocks and answering the reads waiting on them.
 *
 * A job first takes blocks another process stored meanwhile from disk, then
 * fetches the rest in runs under the cross-process block locks
 * (core/blklock.h); bytes arrive through the source set (fetch/source.h),
 * which fails over between peers, mirrors and the hub. A one-block blob is
 * checked before anyone sees a byte; a sender of bad bytes is demoted and
 * the block fetched elsewhere (bounded).
 *
 * A fetch of a blob that failed less than FAIL_HOLD_MS ago waits, in the
 * fetch thread, for a source to come back (a DOWN -> UP transition in the
 * health set) and fails with the same error if none does: a loader whose
 * page reads the kernel retries in a loop (mmap(MAP_POPULATE) after the
 * mmap lock was dropped) then costs about one request a second instead of
 * a spin, and its load resumes as soon as the source is back. The first
 * failure is never held: a reader with no source up fails at once. After a
 * fast failure (every source down, a long 429: no time spent) the first
 * FAIL_FREE repeats are not held either, so the kernel's own second try of
 * a failed read (read-ahead, then the page itself) fails at once too; a
 * slow failure (a timeout) is held from its first repeat, so that second
 * try does not cost another --fetch-timeout.
 *
 * It does not decide what to fetch (blobjob.c, readahead.c) nor verify
 * multi-block blobs (blobverify.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blobio_internal.h"
#include "core/blklock.h"
#include "fetch/health.h"
#include "util/log.h"
#include "util/size.h"

/* How long a blob's repeated fetch is held after a failure. */
#define FAIL_HOLD_MS 1000
/* Repeats after a fast failure (every source down, a 429 that outlasts
 * the fetch timeout...: no time spent) that are not held. */
#define FAIL_FREE 2
/* A failure that took this long is slow (a timeout): repeats are held. */
#define FAIL_SLOW_MS 1000

/* ---- fetching --------------------------------------------------------------- */

struct sink_ctx {
	struct mfs_blob *b;
	uint32_t idx;          /* block being filled */
	struct dblock *cur;
	uint64_t stored;       /* bytes delivered so far */
	int err;
	uint32_t cur_mask;     /* sources that sent bytes of the current block */
	bool chunk_verified;   /* bytes come through bio_chunk_read, checked */
	int64_t first_us;      /* when the first byte came (0: not yet) */
	uint32_t gen;          /* b->drops when cur's first byte came */
};

/* Writes a fetched block to the disk cache and the index. */
static void store_io(struct mfs_blob *b, struct dblock *d)
{
	struct mfs_blobio *bio = b->bio;
	struct mfs_bs_stats st = { 0 };
	int rc;

	rc = mfs_bs_put(bio->bs, b->id, d->idx, b->bsize, d->data, d->len,
			bio->cfg.zstd_level, &st);
	/* A full disk: evict, then one more try (docs/architecture.md, "A read's path"). */
	if (rc == -ENOSPC && bio->hooks.on_nospace &&
	    bio->hooks.on_nospace(bio->hooks.ctx, d->len) == 0)
		rc = mfs_bs_put(bio->bs, b->id, d->idx, b->bsize, d->data, d->len,
				bio->cfg.zstd_level, &st);
	if (rc == -ENOSPC) {
		mfs_error("could not store block %u of %s: the cache disk is full "
			  "(ENOSPC) and eviction freed too little; served from memory "
			  "and fetched again when needed", d->idx, b->id);
		return;
	} else if (rc) {
		mfs_warn("could not store block %u of %s: %s (served from memory)",
			 d->idx, b->id, strerror(-rc));
		return;
	}
	rc = mfs_ix_block_add(bio->ix, b->id, d->idx, st.stored_bytes);
	if (rc) {
		/* A block on disk the index does not know would escape the quota
		 * and eviction for good: take it back out (the sweep at the next
		 * mount or gc catches it if even that fails). */
		int drc = mfs_bs_drop(bio->bs, b->id, d->idx);
		mfs_warn("could not record block %u of %s in the index: %s; %s (served "
			 "from memory)", d->idx, b->id, strerror(-rc),
			 drc ? "could not remove it either" : "removed it from disk");
		return;
	}
	if (bio->hooks.on_stored)
		bio->hooks.on_stored(bio->hooks.ctx, st.stored_bytes);
}

/* Stores a block whose bytes began arriving at drop generation gen. The
 * reads were answered before the store; if the blob failed its hash since
 * (another thread hashed this block from memory), the block is not
 * written: the drop already emptied the disk, and a block written after it
 * would be found there by the next fetch and served as if it had never
 * been rejected. The check and the `storing` count share bio->lock with
 * the drop's first step, and the drop waits for the count: a store either
 * ends before the drop empties the disk or never starts. */
/* The blob's drop generation now: taken when a block's bytes begin to
 * arrive (or before a disk lookup) and checked when it is stored. */
static uint32_t drop_gen(struct mfs_blob *b)
{
	uint32_t gen;

	pthread_mutex_lock(&b->bio->lock);
	gen = b->drops;
	pthread_mutex_unlock(&b->bio->lock);
	return gen;
}

static void store_block(struct mfs_blob *b, struct dblock *d, uint32_t gen)
{
	struct mfs_blobio *bio = b->bio;

	if (bio->hooks.before_store)
		bio->hooks.before_store(bio->hooks.ctx, b->id, d->idx);
	pthread_mutex_lock(&bio->lock);
	bool go = b->drops == gen && b->state[d->idx] == BLK_PRESENT;
	if (go)
		b->storing++;
	pthread_mutex_unlock(&bio->lock);
	if (!go) {
		mfs_debug("block %u of %s not stored: the blob failed its hash since "
			  "it arrived", d->idx, b->id);
		return;
	}
	store_io(b, d);
	pthread_mutex_lock(&bio->lock);
	b->storing--;
	pthread_cond_broadcast(&b->changed);
	pthread_mutex_unlock(&bio->lock);
}

/* A block's bytes are complete: publish, answer waiters, then store and
 * record (a waiting reader does not pay for the disk write), then queue
 * the hashing. */
int bio_block_arrived(struct mfs_blob *b, struct dblock *d, bool from_disk, uint32_t gen)
{
	struct mfs_blobio *bio = b->bio;
	struct pending_read *ready = NULL, **pp;
	bool hdr, stale;

	if (from_disk)
		bio_trust_disk_block(b);
	if (b->nblocks == 1 && b->verdict != 1) {
		/* Whole blob in one block: check before anyone sees a byte. */
		bio_hasher_init(b);
		bio_hasher_update(b, d->data, d->len);
		if (!bio_hasher_matches(b)) {
			mfs_error("%s/%s: content does not match its hash %s; not served",
				  b->repo.id, b->path, b->id);
			(void)mfs_bs_drop_blob(bio->bs, b->id);
			pthread_mutex_lock(&bio->lock);
			bio->st.verify_failures++;
			pthread_mutex_unlock(&bio->lock);
			bio_mem_put(bio, d);
			return -EBADMSG;
		}
		pthread_mutex_lock(&bio->lock);
		b->verdict = 1;
		b->hash_next = 1;
		pthread_mutex_unlock(&bio->lock);
		(void)mfs_ix_blob_set_verified(bio->ix, b->id, true);
	}
	bio_mem_insert(bio, d);

	pthread_mutex_lock(&bio->lock);
	/* The blob failed its hash since these bytes began arriving (or were
	 * found on disk): they may be the rejected ones, and the hold their
	 * sender set was lifted with the drop. Held again, in the same lock
	 * as the block turns present: no reader sees them before the blob
	 * verifies. */
	stale = b->drops != gen && bio_trust_stale_locked(b);
	if (b->state[d->idx] != BLK_PRESENT)
		bio_block_set_locked(b, d->idx, BLK_PRESENT);
	/* A failed verdict was about the dropped blocks: refetched ones are
	 * unknown until hashed (else verify_wait reports the old mismatch). */
	if (b->verdict < 0)
		b->verdict = 0;
	if (!from_disk) {
		bio->st.blocks_fetched++;
		bio->st.bytes_fetched += d->len;
	}
	for (pp = &b->pending; *pp && !bio_hold_locked(b);) {
		struct pending_read *p = *pp;
		if (p->b0 <= d->idx && d->idx <= p->b1 && bio_range_present_locked(b, p->b0, p->b1)) {
			*pp = p->next;
			p->next = ready;
			ready = p;
		} else {
			pp = &p->next;
		}
	}
	pthread_cond_broadcast(&b->changed);
	pthread_mutex_unlock(&bio->lock);
	if (stale)
		bio_trust_mark_held(b);
	bio_complete_list(b, ready, 0);

	if (!from_disk)
		store_block(b, d, gen);
	bio_mem_put(bio, d);

	pthread_mutex_lock(&bio->lock);
	/* The blob's hash is computed by a verify job on another thread, not
	 * here: this thread's connection would stall mid-range while it
	 * hashed the blocks other streams fetched (up to a read-ahead window
	 * at once), delaying its next bytes and its next range. */
	if (!b->hash_queued && bio_hash_due_locked(b)) {
		b->hash_queued = true;
		bio_enqueue_locked(bio, b, 0, 0, true, true);
	}
	hdr = bio_hdr_due_locked(b);
	pthread_cond_broadcast(&b->changed);
	pthread_mutex_unlock(&bio->lock);
	if (hdr)
		bio_hdr_update(b);
	return 0;
}

/* Answers the reads waiting on the block being filled whose bytes have all
 * arrived, without waiting for the rest of the block: a 4 KiB read in a
 * 1 MiB block on a 50 MB/s connection waits for its own bytes, not 20 ms.
 * Only reads inside this one block; never for a one-block blob that is not
 * verified yet (nothing of it is served before its hash matches). */
static void answer_partial(struct sink_ctx *sc)
{
	struct mfs_blob *b = sc->b;
	struct mfs_blobio *bio = b->bio;
	struct dblock *d = sc->cur;
	uint64_t bstart = (uint64_t)sc->idx * b->bsize;
	struct pending_read *ready = NULL, **pp;

	/* The trust model (blobtrust.c): bytes of a source that is not the
	 * hub reach no reader before the blob verifies, unless each chunk was
	 * checked against the hub's chunk list before it reached the sink. */
	if (!sc->chunk_verified && !bio_sources_trusted(bio, sc->cur_mask))
		return;
	pthread_mutex_lock(&bio->lock);
	if ((b->nblocks == 1 && b->verdict != 1) || bio_hold_locked(b)) {
		pthread_mutex_unlock(&bio->lock);
		return;
	}
	for (pp = &b->pending; *pp;) {
		struct pending_read *p = *pp;
		if (p->b0 == sc->idx && p->b1 == sc->idx && p->off + p->len <= bstart + d->len) {
			*pp = p->next;
			p->next = ready;
			ready = p;
		} else {
			pp = &p->next;
		}
	}
	if (ready) {
		/* whoever sent these bytes answers for them if the blob fails */
		b->src_mask |= sc->cur_mask;
		bio->st.reads_partial++;
	}
	pthread_mutex_unlock(&bio->lock);
	while (ready) {
		struct pending_read *p = ready;
		struct iovec iov = { d->data + (p->off - bstart), p->len };
		ready = p->next;
		p->cb(p->ctx, 0, &iov, 1);
		free(p);
	}
}

static int sink(void *vctx, int src, uint64_t off, const void *data, size_t len)
{
	struct sink_ctx *sc = vctx;
	struct mfs_blob *b = sc->b;
	const uint8_t *p = data;

	(void)off;
	if (!sc->first_us)
		sc->first_us = bio_now_us();
	if (src >= 0 && src < 32)
		sc->cur_mask |= 1u << src;
	while (len) {
		if (!sc->cur) {
			sc->cur = bio_dblock_new(b->bio, b->id, sc->idx, b->bsize);
			if (!sc->cur)
				return -ENOMEM;
			sc->gen = drop_gen(b);
		}
		size_t want = (size_t)bio_block_len(b, sc->idx) - sc->cur->len;
		size_t n = len < want ? len : want;
		memcpy(sc->cur->data + sc->cur->len, p, n);
		sc->cur->len += n;
		p += n;
		len -= n;
		if (sc->cur->len < bio_block_len(b, sc->idx)) {
			answer_partial(sc);
		} else {
			struct dblock *d = sc->cur;
			sc->cur = NULL;
			pthread_mutex_lock(&b->bio->lock);
			b->src_mask |= sc->cur_mask;
			pthread_mutex_unlock(&b->bio->lock);
			if (!sc->chunk_verified)
				bio_untrusted_arrived(b, sc->cur_mask);
			int rc = bio_block_arrived(b, d, false, sc->gen);
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

/* Fails the blocks [from, to) of a job and every read waiting on them (on
 * any block, when the blob is held). */
void bio_fail_blocks(struct mfs_blob *b, uint32_t from, uint32_t to, int err)
{
	struct mfs_blobio *bio = b->bio;
	struct pending_read *failed = NULL, **pp;

	pthread_mutex_lock(&bio->lock);
	for (uint32_t i = from; i < to; i++)
		if (b->state[i] == BLK_INFLIGHT)
			bio_block_set_locked(b, i, BLK_ABSENT);
	bio_blob_check_locked(b);
	/* A held blob's readers wait for every block (blobtrust.c): without
	 * these it cannot verify, so they fail too rather than wait for good. */
	bool all = bio_hold_locked(b);
	for (pp = &b->pending; *pp;) {
		struct pending_read *p = *pp;
		if (all || (p->b0 < to && p->b1 >= from)) {
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
	bio_complete_list(b, failed, bio_errno_for_reader(err));
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
	int rc, attempt;

	if (stop > b->size)
		stop = b->size;
	uint64_t ups = mfs_health_ups(mfs_srcset_healthset(bio->src));
	int64_t started = mfs_now_ms();
	struct bio_range_clock clk;

	bio_range_start(bio, &clk);
	/* The catalog may already know the hub is down: skip it, not the
	 * mirrors and peers. */
	rq.skip_hub = bio->cat && !mfs_cat_hub_usable(bio->cat);
	for (attempt = 0;; attempt++) {
		uint64_t from = (uint64_t)sc.idx * b->bsize;

		if (!bio->src) {
			rc = -EHOSTDOWN;
			break;
		}
		/* Xet files with a verified chunk list: every chunk is checked
		 * before its bytes reach the sink (blobtrust.c). */
		sc.chunk_verified = bio_trust_chunks(b);
		if (sc.chunk_verified) {
			uint32_t bad = 0;
			rc = bio_chunk_read(b, &rq, from, stop, sink, &sc, &bad, &oc);
			if (bad) {
				sc.err = -EBADMSG;
				sc.cur_mask = bad;
			}
		} else {
			rc = mfs_srcset_read(bio->src, &rq, from, stop - from, sink, &sc, &oc);
		}
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
			bio_drop_unverified_from(bio, m, b);
		}
		pthread_mutex_lock(&bio->lock);
		b->src_mask = 0;
		pthread_mutex_unlock(&bio->lock);
		sc.err = 0;
		sc.cur_mask = 0;
		if (sc.cur) {
			bio_dblock_free(bio, sc.cur);
			sc.cur = NULL;
		}
	}
	if (sc.cur)
		bio_dblock_free(bio, sc.cur);
	/* What this range achieved sets how many run and how long they are
	 * (core/streams.c); a retried range says little about the link. */
	if (rc == 0 && attempt == 0 && sc.first_us)
		bio_streams_sample(bio, &clk, stop - off, sc.first_us);
	pthread_mutex_lock(&bio->lock);
	if (rc == 0) {
		b->failed_at_ms = 0;
	} else if (rc != -ECANCELED) {
		int64_t now = mfs_now_ms();
		b->failed_n = b->failed_at_ms && now - b->failed_at_ms < 2 * FAIL_HOLD_MS
			      ? b->failed_n + 1 : 1;
		b->failed_at_ms = now;
		b->failed_slow = now - started >= FAIL_SLOW_MS;
		b->failed_err = rc;
		b->failed_ups = ups;
	}
	pthread_mutex_unlock(&bio->lock);
	if (rc == -EHOSTDOWN) {
		mfs_debug("%s/%s: no source reachable", b->repo.id, b->path);
		bio_fail_blocks(b, sc.idx, end, rc);
	} else if (rc) {
		mfs_warn("%s/%s: fetching bytes %llu-%llu failed: %s",
			 b->repo.id, b->path, (unsigned long long)off,
			 (unsigned long long)stop - 1, strerror(-rc));
		bio_fail_blocks(b, sc.idx, end, rc);
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

/* A fetch of b failed under FAIL_HOLD_MS ago: wait out the rest of it
 * for a source to come back. Returns 0 to fetch, or the error to fail the
 * job with (nothing came back). */
static int hold_after_failure(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;
	int64_t at, left;
	uint64_t seen;
	int err, n;
	bool slow;

	pthread_mutex_lock(&bio->lock);
	at = b->failed_at_ms;
	slow = b->failed_slow;
	seen = b->failed_ups;
	err = b->failed_err;
	n = b->failed_n;
	pthread_mutex_unlock(&bio->lock);
	left = at ? FAIL_HOLD_MS - (mfs_now_ms() - at) : 0;
	if (left <= 0 || !bio->src || (!slow && n <= FAIL_FREE))
		return 0;
	if (mfs_health_wait_ups(mfs_srcset_healthset(bio->src), seen, left))
		return 0;
	return err;
}

void bio_run_job(struct job *j)
{
	struct mfs_blob *b = j->b;
	uint32_t end = j->first + j->count;

	if (j->verify_only) {
		pthread_mutex_lock(&b->bio->lock);
		b->hash_queued = false;
		bool claimed = bio_claim_hashing_locked(b);
		pthread_mutex_unlock(&b->bio->lock);
		if (claimed)
			bio_hash_advance(b);
		return;
	}
	int held = hold_after_failure(b);
	if (held) {
		bio_fail_blocks(b, j->first, end, held);
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
		uint32_t gen = drop_gen(b);
		if (mfs_bs_has(bs, b->id, i) && bio_block_load(b, i, &d) == 0 &&
		    bio_block_arrived(b, d, true, gen) == 0) {
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
				bio_fail_blocks(b, run_end, end, -EIO);
			break;
		}
		i = run_end;
	}
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
	/* A small file (one block) whose source is up by the health state
	 * (fetch/health.h) is not probed: its read is the check. That read
	 * finds a source that died since as fast as a probe would (a black
	 * hole within MFS_HTTP_DEAD_MS, on a reused connection too; a refusal
	 * or a close at once), so it still fails within the second, and a
	 * dataset of small files costs no probe per file. */
	if (b->nblocks <= 1 && mfs_srcset_known_up(bio->src, &rq))
		return 0;
	/* A multi-block file is always asked: trusting a source that answered
	 * a moment ago is exactly the case that hangs a loader (header read,
	 * source dies, the loader reopens and populates). One probe per open
	 * of an incomplete file is the price; a complete file costs nothing.
	 * Refuse only what retrying cannot fix (mfs_srcset_probe lets a
	 * 429/5xx answer through). */
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
