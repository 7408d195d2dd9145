/*
 * evict.c - quota enforcement by LRU eviction (see evict.h).
 *
 * The evictor thread keeps an estimate of the bytes stored (read from the
 * index, plus what on_stored reports in between) so the block layer's hook
 * is a counter bump; the real total is re-read from the index before any
 * decision, because other processes write to the same cache.
 */
#include "core/evict.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/blklock.h"
#include "util/log.h"
#include "util/size.h"

#define LRU_BATCH 256

uint64_t mfs_evict_high(uint64_t quota, int high_pct)
{
	return quota / 100 * (uint64_t)high_pct + quota % 100 * (uint64_t)high_pct / 100;
}

uint64_t mfs_evict_low(uint64_t quota, int low_pct)
{
	return mfs_evict_high(quota, low_pct);
}

/* Evicts blocks of one blob while stored > target: locks each block it
 * takes, deletes the index rows, then the files, then lets go. */
static int evict_blob(struct mfs_ix *ix, struct mfs_bs *bs, const char *lock_dir,
		      const char *id, bool tail_first, uint64_t target, uint64_t *stored,
		      struct mfs_evict_result *res)
{
	struct mfs_ix_block *blk = NULL;
	uint32_t *take = NULL;
	size_t n = 0, nt = 0;
	int fd = -1, rc;

	rc = mfs_ix_blob_blocks(ix, id, &blk, &n);
	if (rc || n == 0)
		goto out;
	take = calloc(n, sizeof(*take));
	if (!take) {
		rc = -ENOMEM;
		goto out;
	}
	if (lock_dir) {
		fd = mfs_blklock_open(lock_dir, id);
		if (fd < 0)
			mfs_debug("evict: no lock file for %s: %s", id, strerror(-fd));
	}
	for (size_t k = 0; k < n && *stored > target; k++) {
		struct mfs_ix_block *b = &blk[tail_first ? n - 1 - k : k];
		if (fd >= 0 && mfs_blklock_try(fd, b->idx, 1) != 0) {
			res->skipped_locked++;
			continue;
		}
		take[nt++] = b->idx;
		*stored = *stored > b->stored_len ? *stored - b->stored_len : 0;
		res->freed_bytes += b->stored_len;
	}
	if (nt == 0)
		goto out;
	rc = mfs_ix_blocks_del(ix, id, take, nt);
	if (rc == 0) {
		for (size_t k = 0; k < nt; k++)
			(void)mfs_bs_drop(bs, id, take[k]);
		res->blocks += nt;
		res->blobs++;
	}
	for (size_t k = 0; fd >= 0 && k < nt; k++)
		mfs_blklock_release(fd, take[k], 1);
out:
	if (fd >= 0)
		close(fd);
	free(take);
	free(blk);
	return rc;
}

int mfs_evict_to(struct mfs_ix *ix, struct mfs_bs *bs, const char *lock_dir,
		 uint64_t target, mfs_evict_in_use_fn in_use, void *in_use_ctx,
		 struct mfs_evict_result *res)
{
	struct mfs_ix_totals t;
	uint64_t stored;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = mfs_ix_totals(ix, &t);
	if (rc)
		return rc;
	stored = res->before = t.stored_bytes;
	/* Pass 0 leaves blobs in use here alone; pass 1 takes them too (a
	 * file bigger than the quota must make room for its own blocks). */
	for (int pass = 0; pass < 2 && stored > target; pass++) {
		if (pass == 1 && !in_use)
			break;
		for (;;) {
			struct mfs_ix_lru *v = NULL;
			size_t n = 0;
			uint64_t freed = res->freed_bytes;

			rc = mfs_ix_lru_list(ix, LRU_BATCH, &v, &n);
			if (rc)
				return rc;
			for (size_t i = 0; i < n && stored > target; i++) {
				bool busy = in_use && in_use(in_use_ctx, v[i].id);
				if (busy != (pass == 1))
					continue;
				rc = evict_blob(ix, bs, lock_dir, v[i].id, !busy, target,
						&stored, res);
				if (rc) {
					free(v);
					return rc;
				}
			}
			free(v);
			/* Another batch only if this one made progress and the
			 * list may hold more than we saw. */
			if (stored <= target || res->freed_bytes == freed || n < LRU_BATCH)
				break;
		}
	}
	rc = mfs_ix_totals(ix, &t);
	res->after = rc ? stored : t.stored_bytes;
	if (rc)
		return rc;
	return res->after <= target ? 0 : -ENOSPC;
}

/* ---- the background evictor --------------------------------------------- */

struct mfs_evictor {
	struct mfs_evict_config cfg;
	char *lock_dir;
	struct mfs_ix *ix;
	struct mfs_bs *bs;
	uint64_t high, low;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;                  /* protected by lock */
	bool kick;                  /* protected by lock: crossed the high mark */
	uint64_t estimate;          /* protected by lock: stored bytes, approx. */
	/* One eviction at a time (thread, ENOSPC hook): they would only race
	 * for the same LRU blobs. */
	pthread_mutex_t run_lock;
};

static void log_result(const char *why, const struct mfs_evict_result *r, int rc)
{
	char a[32], b[32], f[32];

	mfs_info("evicted %llu blocks of %llu blobs (%s) for %s: %s -> %s%s",
		 (unsigned long long)r->blocks, (unsigned long long)r->blobs,
		 mfs_format_size(r->freed_bytes, f, sizeof(f)), why,
		 mfs_format_size(r->before, a, sizeof(a)),
		 mfs_format_size(r->after, b, sizeof(b)),
		 rc == -ENOSPC ? " (the rest is pinned or being fetched)" : "");
}

static int evict_now(struct mfs_evictor *ev, uint64_t target, const char *why)
{
	struct mfs_evict_result r;
	int rc;

	pthread_mutex_lock(&ev->run_lock);
	rc = mfs_evict_to(ev->ix, ev->bs, ev->lock_dir, target, ev->cfg.in_use,
			  ev->cfg.in_use_ctx, &r);
	pthread_mutex_unlock(&ev->run_lock);
	if (r.blocks || rc)
		log_result(why, &r, rc);
	pthread_mutex_lock(&ev->lock);
	ev->estimate = r.after;
	pthread_mutex_unlock(&ev->lock);
	return rc == 0 || r.blocks ? 0 : rc;
}

static void *evictor_main(void *arg)
{
	struct mfs_evictor *ev = arg;

	for (;;) {
		struct timespec ts;
		bool stop;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += ev->cfg.tick_ms / 1000;
		ts.tv_nsec += (ev->cfg.tick_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&ev->lock);
		while (!ev->stop && !ev->kick &&
		       pthread_cond_timedwait(&ev->wake, &ev->lock, &ts) == 0)
			;
		stop = ev->stop;
		ev->kick = false;
		pthread_mutex_unlock(&ev->lock);
		if (stop)
			break;
		if (ev->cfg.quota) {
			struct mfs_ix_totals t;
			if (mfs_ix_totals(ev->ix, &t) == 0) {
				pthread_mutex_lock(&ev->lock);
				ev->estimate = t.stored_bytes;
				pthread_mutex_unlock(&ev->lock);
				if (t.stored_bytes > ev->high)
					(void)evict_now(ev, ev->low, "the cache quota");
			}
		}
		if (ev->cfg.tick)
			ev->cfg.tick(ev->cfg.tick_ctx);
	}
	return NULL;
}

static void hook_stored(void *ctx, uint64_t bytes)
{
	struct mfs_evictor *ev = ctx;

	pthread_mutex_lock(&ev->lock);
	ev->estimate += bytes;
	if (ev->cfg.quota && ev->estimate > ev->high && !ev->kick) {
		ev->kick = true;
		pthread_cond_signal(&ev->wake);
	}
	pthread_mutex_unlock(&ev->lock);
}

static int hook_nospace(void *ctx, uint64_t need)
{
	struct mfs_evictor *ev = ctx;
	struct mfs_ix_totals t;
	uint64_t target, room;

	if (mfs_ix_totals(ev->ix, &t))
		return -EIO;
	/* Without a quota the disk itself is the limit: make a useful amount
	 * of room (a tenth of the cache, at least 64 blocks' worth). */
	room = t.stored_bytes / 10;
	if (room < need * 64)
		room = need * 64;
	target = t.stored_bytes > room ? t.stored_bytes - room : 0;
	if (ev->cfg.quota && ev->low < target)
		target = ev->low;
	mfs_warn("the cache disk is full (ENOSPC): evicting down to %llu bytes",
		 (unsigned long long)target);
	return evict_now(ev, target, "a full disk (ENOSPC)");
}

void mfs_evictor_hooks(struct mfs_evictor *ev, struct mfs_blobio_hooks *out)
{
	out->on_stored = hook_stored;
	out->on_nospace = hook_nospace;
	out->before_store = NULL;
	out->ctx = ev;
}

int mfs_evictor_start(const struct mfs_evict_config *cfg, struct mfs_ix *ix,
		      struct mfs_bs *bs, struct mfs_evictor **out)
{
	struct mfs_evictor *ev = calloc(1, sizeof(*ev));
	struct mfs_ix_totals t = { 0 };
	int rc;

	if (!ev)
		return -ENOMEM;
	ev->cfg = *cfg;
	if (ev->cfg.high_pct <= 0 || ev->cfg.high_pct > 100)
		ev->cfg.high_pct = 95;
	if (ev->cfg.low_pct <= 0 || ev->cfg.low_pct >= ev->cfg.high_pct)
		ev->cfg.low_pct = ev->cfg.high_pct > 10 ? ev->cfg.high_pct - 10 : 1;
	if (ev->cfg.tick_ms <= 0)
		ev->cfg.tick_ms = 2000;
	if (cfg->lock_dir && !(ev->lock_dir = strdup(cfg->lock_dir))) {
		free(ev);
		return -ENOMEM;
	}
	ev->cfg.lock_dir = ev->lock_dir;
	ev->ix = ix;
	ev->bs = bs;
	ev->high = mfs_evict_high(ev->cfg.quota, ev->cfg.high_pct);
	ev->low = mfs_evict_low(ev->cfg.quota, ev->cfg.low_pct);
	(void)mfs_ix_totals(ix, &t);
	ev->estimate = t.stored_bytes;
	/* Over the mark already (quota lowered since last time): start at once. */
	ev->kick = ev->cfg.quota && t.stored_bytes > ev->high;
	pthread_mutex_init(&ev->lock, NULL);
	pthread_mutex_init(&ev->run_lock, NULL);
	pthread_cond_init(&ev->wake, NULL);
	rc = -pthread_create(&ev->thread, NULL, evictor_main, ev);
	if (rc) {
		pthread_mutex_destroy(&ev->lock);
		pthread_mutex_destroy(&ev->run_lock);
		pthread_cond_destroy(&ev->wake);
		free(ev->lock_dir);
		free(ev);
		return rc;
	}
	*out = ev;
	return 0;
}

void mfs_evictor_stop(struct mfs_evictor *ev)
{
	bool was;

	if (!ev)
		return;
	pthread_mutex_lock(&ev->lock);
	was = ev->stop;
	ev->stop = true;
	pthread_cond_signal(&ev->wake);
	pthread_mutex_unlock(&ev->lock);
	if (was)
		return;
	pthread_join(ev->thread, NULL);
	if (ev->cfg.tick)
		ev->cfg.tick(ev->cfg.tick_ctx);
}

void mfs_evictor_free(struct mfs_evictor *ev)
{
	if (!ev)
		return;
	mfs_evictor_stop(ev);
	pthread_mutex_destroy(&ev->lock);
	pthread_mutex_destroy(&ev->run_lock);
	pthread_cond_destroy(&ev->wake);
	free(ev->lock_dir);
	free(ev);
}
