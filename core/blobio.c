/*
 * blobio.c - the block layer (see blobio.h for what it promises): its
 * public API, the table of open blobs and serving reads whose blocks are
 * present. The rest lives next door (blobio_internal.h lists the files):
 * memcache.c, blobjob.c, readahead.c, blobverify.c, blobfetch.c.
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
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blobio_internal.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/size.h"

/* ---- block states ---------------------------------------------------------- */

void bio_block_set_locked(struct mfs_blob *b, uint32_t idx, uint8_t to)
{
	uint8_t from;

	assert(idx < b->nblocks);
	assert(to == BLK_ABSENT || to == BLK_INFLIGHT || to == BLK_PRESENT);
	from = b->state[idx];
	assert(from != to);
	assert(!(from == BLK_PRESENT && to == BLK_INFLIGHT));
	if (from == BLK_INFLIGHT) {
		assert(b->inflight > 0);
		b->inflight--;
	} else if (from == BLK_PRESENT) {
		assert(b->present > 0);
		b->present--;
	}
	if (to == BLK_INFLIGHT)
		b->inflight++;
	else if (to == BLK_PRESENT)
		b->present++;
	b->state[idx] = to;
	assert(b->present + b->inflight <= b->nblocks);
}

void bio_blob_check_locked(const struct mfs_blob *b)
{
#ifndef NDEBUG
	uint32_t present = 0, inflight = 0;

	for (uint32_t i = 0; i < b->nblocks; i++) {
		assert(b->state[i] <= BLK_PRESENT);
		present += b->state[i] == BLK_PRESENT;
		inflight += b->state[i] == BLK_INFLIGHT;
	}
	assert(present == b->present);
	assert(inflight == b->inflight);
	assert(b->hash_next <= b->nblocks);
#else
	(void)b;
#endif
}

/* ---- completion of reads -------------------------------------------------- */

int bio_errno_for_reader(int rc)
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
		struct dblock *d = bio_mem_get(b->bio, b->id, idx);
		if (!d) {
			*from_mem = false;
			rc = bio_block_load(b, idx, &d);
		}
		if (rc) {
			if (rc == -ENOENT || rc == -EBADMSG) {
				if (rc == -EBADMSG)
					mfs_warn("block %u of %s failed its checksum; refetching",
						 idx, b->id);
				(void)mfs_ix_block_del(b->bio->ix, b->id, idx);
				pthread_mutex_lock(&b->bio->lock);
				if (b->state[idx] == BLK_PRESENT)
					bio_block_set_locked(b, idx, BLK_ABSENT);
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
		bio_mem_put(bio, blk[i]);
	if (blk != small)
		free(blk);
	if (iov != iovs)
		free(iov);
	return rc;
}

bool bio_range_present_locked(const struct mfs_blob *b, uint32_t b0, uint32_t b1)
{
	for (uint32_t i = b0; i <= b1; i++)
		if (b->state[i] != BLK_PRESENT)
			return false;
	return true;
}

/* Completes (outside the lock) every pending read in `list`; reads that
 * find a block gone are re-issued. */
void bio_complete_list(struct mfs_blob *b, struct pending_read *list, int err)
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
	if (bio->cfg.kernel_readahead == 0)
		bio->cfg.kernel_readahead = 1 << 20;
	else if (bio->cfg.kernel_readahead < 0)
		bio->cfg.kernel_readahead = 0;
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
	pthread_cond_init(&bio->idle, NULL);
	pthread_mutex_init(&bio->mem.lock, NULL);
	bio->mem.lru = calloc(1, sizeof(*bio->mem.lru));
	if (!bio->mem.lru) {
		rc = -ENOMEM;
		goto fail;
	}
	bio->mem.lru->next = bio->mem.lru->prev = bio->mem.lru;
	/* Streams between 2 (both cores busy) and the threads; ranges between
	 * one block (at least 1 MiB) and coalesce_max (core/streams.c). */
	struct mfs_streams_config sc = {
		.min_streams = 2, .max_streams = bio->cfg.fetch_threads,
		.min_range = bio->cfg.block_size > (1u << 20) ? bio->cfg.block_size : 1u << 20,
		.max_range = bio->cfg.coalesce_max,
	};
	mfs_streams_init(&bio->streams, &sc);
	/* One thread more than streams: a verify job (hashing, off the
	 * fetch threads) always finds one; BIO_SMALL_THREADS more for small
	 * files, whose fetches wait on round trips, not on the link
	 * (blobjob.c). */
	int nthreads = bio->cfg.fetch_threads + 1 + BIO_SMALL_THREADS;
	bio->threads = calloc((size_t)nthreads, sizeof(pthread_t));
	if (!bio->threads) {
		rc = -ENOMEM;	/* rc is 0 after a successful mfs_srcset_new */
		goto fail;
	}
	for (int i = 0; i < nthreads; i++) {
		rc = -pthread_create(&bio->threads[i], NULL, bio_worker, bio);
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
	for (struct dblock *v = bio->mem.lru ? bio->mem.lru->next : NULL; v != bio->mem.lru;) {
		struct dblock *next = v->next;
		bio_dblock_unmap(v);
		v = next;
	}
	bio_dblock_pool_free(bio);
	free(bio->mem.lru);
	for (int i = 0; i < BLOB_BUCKETS; i++) {
		for (struct mfs_blob *b = bio->blobs[i], *n; b; b = n) {
			n = b->hnext;
			mfs_warn("blob %s still open at shutdown", b->id);
			if (b->lock_fd >= 0)
				close(b->lock_fd);
			bio_trust_free(b);
			free(b->state);
			free(b->path);
			mfs_digest_release(&b->hasher);
			pthread_cond_destroy(&b->changed);
			free(b);
		}
	}
	if (bio->own_src)
		mfs_srcset_free(bio->src);
	pthread_mutex_destroy(&bio->lock);
	pthread_cond_destroy(&bio->work);
	pthread_cond_destroy(&bio->idle);
	pthread_mutex_destroy(&bio->mem.lock);
	free(bio);
}

void bio_blob_unref(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;
	bool gone = false;

	pthread_mutex_lock(&bio->lock);
	if (--b->refs == 0) {
		/* Every INFLIGHT block belongs to a job and every pending read
		 * to an open file, and both hold a reference. */
		assert(b->inflight == 0 && !b->pending);
		bio_blob_check_locked(b);
		struct mfs_blob **pp = &bio->blobs[bio_id_hash(b->id, 0) % BLOB_BUCKETS];
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
	bio_trust_free(b);
	free(b->state);
	free(b->path);
	mfs_digest_release(&b->hasher);
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
	for (found = bio->blobs[bio_id_hash(desc->content_id, 0) % BLOB_BUCKETS]; found;
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
	if (desc->xet_hash && mfs_hex_valid(desc->xet_hash, 64))
		for (size_t i = 0; i < 64; i++)
			b->xet[i] = (char)(desc->xet_hash[i] | 0x20); /* lowercase hex */
	b->bsize = bsize;
	b->nblocks = (uint32_t)((desc->size + bsize - 1) / bsize);
	b->state = calloc(b->nblocks ? b->nblocks : 1, 1);
	bitmap = calloc((b->nblocks + 7) / 8 + 1, 1);
	pthread_cond_init(&b->changed, NULL);
	if (!b->path || !b->state || !bitmap) {
		rc = -ENOMEM;
		goto fail;
	}
	bio_hasher_init(b);
	if (mfs_ix_blocks_get(bio->ix, b->id, bitmap, b->nblocks) == 0) {
		for (uint32_t i = 0; i < b->nblocks; i++)
			if (bitmap[i / 8] & (1u << (i % 8)))
				bio_block_set_locked(b, i, BLK_PRESENT);
	}
	bio_blob_check_locked(b);
	if (mfs_ix_blob_get(bio->ix, b->id, &isize, &bsize, &verified, &pinned) == 0 &&
	    verified && b->present == b->nblocks) {
		b->verdict = 1;
		b->hash_next = b->nblocks;
	}
	free(bitmap);
	bitmap = NULL;
	bio_trust_open(b);

	pthread_mutex_lock(&bio->lock);
	/* Someone may have opened it meanwhile: keep theirs. */
	for (found = bio->blobs[bio_id_hash(b->id, 0) % BLOB_BUCKETS]; found; found = found->hnext)
		if (strcmp(found->id, b->id) == 0)
			break;
	if (found) {
		found->refs++;
		pthread_mutex_unlock(&bio->lock);
		rc = 0;
		*out = found;
		bio_trust_free(b);
		goto fail; /* frees our copy */
	}
	b->hnext = bio->blobs[bio_id_hash(b->id, 0) % BLOB_BUCKETS];
	bio->blobs[bio_id_hash(b->id, 0) % BLOB_BUCKETS] = b;
	if (b->nblocks > 0 && b->present == b->nblocks && b->verdict != 1)
		bio_enqueue_locked(bio, b, 0, 0, false, true);
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
	mfs_digest_release(&b->hasher);
	pthread_cond_destroy(&b->changed);
	free(b);
	return rc;
}

void mfs_blob_close(struct mfs_blob *b)
{
	if (b)
		bio_blob_unref(b);
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
			n += bio_block_len(b, i);
	pthread_mutex_unlock(&b->bio->lock);
	return n;
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
	if (ra && bio_hdr_due_locked(b)) {
		/* A prefix cached before this open is parsed here, once and
		 * before serving (after the reply, b may be gone). */
		pthread_mutex_unlock(&bio->lock);
		bio_hdr_update(b);
		pthread_mutex_lock(&bio->lock);
	}
	bio_readahead_locked(b, off, off + len, ra);
	/* Serve from memory or disk while every block is present (and not
	 * held for verification, blobtrust.c); a block that vanished from
	 * disk (evicted, corrupt) turns this into a miss. */
	for (int attempt = 0; bio_range_present_locked(b, b0, b1) && !bio_hold_locked(b);
	     attempt++) {
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
	bio_schedule_locked(b, b0, b1, true);
	/* Held: nothing is served before the whole blob verifies, so all of
	 * it is fetched now, in parallel. */
	if (bio_hold_locked(b))
		bio_schedule_locked(b, 0, b->nblocks - 1, true);
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
		bio_schedule_locked(b, (uint32_t)(off / b->bsize),
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


bool mfs_blobio_in_use(struct mfs_blobio *bio, const char *content_id)
{
	struct mfs_blob *b;
	bool used = false;

	pthread_mutex_lock(&bio->lock);
	for (b = bio->blobs[bio_id_hash(content_id, 0) % BLOB_BUCKETS]; b; b = b->hnext)
		if (strcmp(b->id, content_id) == 0) {
			used = b->refs > 0;
			break;
		}
	pthread_mutex_unlock(&bio->lock);
	return used;
}

void mfs_blobio_quiesce(struct mfs_blobio *bio)
{
	pthread_mutex_lock(&bio->lock);
	while (bio->busy || bio->q_head)
		pthread_cond_wait(&bio->idle, &bio->lock);
	pthread_mutex_unlock(&bio->lock);
}
