/*
 * blobverify.c - the block layer's verification of whole blobs.
 *
 * When blocks arrive, a verify job is queued (blobfetch.c); the thread
 * running it (or mfs_blob_verify_wait's caller) claims `hashing` and feeds
 * consecutive present blocks into the blob's hasher (sha256 for LFS content, git blob
 * sha1 otherwise); at the last block the digest is compared with the
 * content id. A mismatch demotes the sources that sent the bytes, drops
 * every block (disk, index, memory), tells the filesystem (on_invalid) and
 * drops unverified blocks the same liars sent for other open blobs.
 *
 * It does not fetch: refetching happens when a reader asks again.
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

/* ---- verification -------------------------------------------------------- */

void bio_hasher_init(struct mfs_blob *b)
{
	/* A failed start leaves the digest idle; bio_hasher_matches then
	 * says "no", the blocks are dropped and fetched again. */
	if (mfs_digest_start_for_id(&b->hasher, b->id, b->size) < 0)
		mfs_warn("blob %s: cannot start its digest", b->id);
}

void bio_hasher_update(struct mfs_blob *b, const void *p, size_t n)
{
	mfs_digest_update(&b->hasher, p, n);
}

bool bio_hasher_matches(struct mfs_blob *b)
{
	return mfs_digest_matches_id(&b->hasher, b->id, NULL) == 1;
}

static void drop_blob_blocks(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;
	bool held;

	/* Odd while dropping (bumped again below): no store of a block that
	 * arrived before starts now (blobfetch.c, store_block); the ones
	 * writing are waited for, so the drop below removes their blocks. */
	pthread_mutex_lock(&bio->lock);
	b->drops++;
	while (b->storing)
		pthread_cond_wait(&b->changed, &bio->lock);
	pthread_mutex_unlock(&bio->lock);
	int drc = mfs_bs_drop_blob(bio->bs, b->id);
	/* Rows stay when the data could not go: data without rows would
	 * escape the quota, rows without data are refetched on read. */
	int irc = drc ? 0 : mfs_ix_blob_drop_blocks(bio->ix, b->id);
	if (drc || irc)
		mfs_error("could not drop the blocks of %s from the %s: %s", b->id,
			  drc ? "cache" : "index", strerror(-(drc ? drc : irc)));
	bio_mem_drop_blob(bio, b->id);
	pthread_mutex_lock(&bio->lock);
	held = b->held;
	b->drops++;
	for (uint32_t i = 0; i < b->nblocks; i++)
		if (b->state[i] == BLK_PRESENT)
			bio_block_set_locked(b, i, BLK_ABSENT);
	assert(b->present == 0);
	bio_blob_check_locked(b);
	b->hash_next = 0;
	b->verdict = -EBADMSG;
	bio->st.verify_failures++;
	pthread_cond_broadcast(&b->changed);
	pthread_mutex_unlock(&bio->lock);
	/* A held blob's bytes never reached the kernel, and its readers wait
	 * in read() holding page locks that an invalidation would wait for. */
	if (bio->cfg.on_invalid && !held)
		bio->cfg.on_invalid(bio->cfg.on_invalid_ctx, b->id);
	bio_trust_verdict(b, false);
}


/* A source just caught lying: blocks it sent for other open blobs that are
 * not verified yet are not kept either (issue: "blocks from a demoted
 * source are not kept"); they are refetched from the others. Blobs being
 * hashed right now are left to their own check, which catches the same
 * bytes without racing the hasher. */
void bio_drop_unverified_from(struct mfs_blobio *bio, uint32_t liars,
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
			bio_hasher_init(o);
		o->verdict = 0;
		pthread_mutex_unlock(&bio->lock);
		mfs_warn("%s/%s: dropped its unverified blocks: a source that sent some of them "
			 "sent bad data elsewhere", o->repo.id, o->path);
		bio_blob_unref(o);
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
void bio_hash_advance(struct mfs_blob *b)
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
		int lrc = bio_block_load(b, i, &d);
		if (lrc) {
			pthread_mutex_lock(&bio->lock);
			b->hashing = false;
			/* Evicted (or corrupt) since it arrived: it is absent, or
			 * verify_wait would see a complete blob forever. */
			if ((lrc == -ENOENT || lrc == -EBADMSG) && b->state[i] == BLK_PRESENT) {
				bio_block_set_locked(b, i, BLK_ABSENT);
				pthread_cond_broadcast(&b->changed);
			}
			pthread_mutex_unlock(&bio->lock);
			if (lrc == -ENOENT || lrc == -EBADMSG)
				(void)mfs_ix_block_del(bio->ix, b->id, i);
			break;
		}
		bio_hasher_update(b, d->data, d->len);
		bio_mem_put(bio, d);
		pthread_mutex_lock(&bio->lock);
		b->hash_next = i + 1;
		bool done = b->hash_next == b->nblocks;
		pthread_mutex_unlock(&bio->lock);
		if (!done)
			continue;
		if (bio_hasher_matches(b)) {
			(void)mfs_ix_blob_set_verified(bio->ix, b->id, true);
			pthread_mutex_lock(&bio->lock);
			b->verdict = 1;
			b->hashing = false;
			pthread_cond_broadcast(&b->changed);
			pthread_mutex_unlock(&bio->lock);
			bio_trust_verdict(b, true);
		} else {
			/* Demote first so a refetch avoids the liar, drop (and
			 * invalidate the kernel's pages) next, log last: whoever
			 * acts on the log line finds the bad bytes gone. */
			uint32_t liars = demote_senders(b);
			drop_blob_blocks(b);
			mfs_error("%s/%s: content does not match its hash %s; "
				  "dropped its blocks, they will be fetched again",
				  b->repo.id, b->path, b->id);
			bio_drop_unverified_from(bio, liars, b);
			pthread_mutex_lock(&bio->lock);
			bio_hasher_init(b);
			b->hashing = false;
			pthread_mutex_unlock(&bio->lock);
		}
		break;
	}
}

/* Claims the hasher if the next block to hash is present. */
bool bio_hash_due_locked(const struct mfs_blob *b)
{
	return !b->hashing && b->verdict != 1 && b->hash_next < b->nblocks &&
	       b->state[b->hash_next] == BLK_PRESENT;
}

bool bio_claim_hashing_locked(struct mfs_blob *b)
{
	if (!bio_hash_due_locked(b))
		return false;
	b->hashing = true;
	return true;
}
int mfs_blob_verify_wait(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;
	int rc;

	pthread_mutex_lock(&bio->lock);
	while (b->present == b->nblocks && b->verdict == 0 && b->nblocks > 0) {
		if (!b->hashing && bio_claim_hashing_locked(b)) {
			pthread_mutex_unlock(&bio->lock);
			bio_hash_advance(b);
			pthread_mutex_lock(&bio->lock);
			continue;
		}
		pthread_cond_wait(&b->changed, &bio->lock);
	}
	rc = b->nblocks == 0 ? 1 : b->verdict == 1 ? 1 : b->verdict < 0 ? -EBADMSG : 0;
	pthread_mutex_unlock(&bio->lock);
	return rc;
}
