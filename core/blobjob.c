/*
 * blobjob.c - the block layer's job queue and fetch threads.
 *
 * schedule marks ABSENT blocks INFLIGHT and queues them as jobs of at most
 * coalesce_max bytes (demand reads at the front, read-ahead at the back);
 * fetch threads pop jobs and run them (blobfetch.c). Cancellation empties
 * the queue and fails its waiters.
 *
 * How many fetch jobs run at once and how many bytes one range request
 * asks for follow the link (core/streams.c): there are fetch_threads
 * threads, but a thread takes a fetch job only while fewer than the
 * controller's stream count run, and a queued job longer than its range
 * size is split when taken (the rest stays at the head of the queue, so
 * a file is still fetched in order). Splitting at the pop, not when
 * queueing, lets a prefetch that queued a whole file at once follow what
 * the link turns out to be.
 *
 * A small job (one block, the whole of a small file) is not held to the
 * stream count: its fetch is one short request that waits on a round
 * trip, not on the link, so readers of many small files at once (`xargs
 * -P 16 cat`) get that many in flight - BIO_SMALL_THREADS more threads
 * than streams - and a small job queued behind a large one held by the
 * stream count is taken first.
 *
 * It does not fetch, store or verify bytes itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/blobio_internal.h"
#include "util/log.h"

/* ---- jobs ----------------------------------------------------------------- */

void bio_enqueue_locked(struct mfs_blobio *bio, struct mfs_blob *b,
			   uint32_t first, uint32_t count, bool front, bool verify_only)
{
	struct job *j = bio->cancelled ? NULL : calloc(1, sizeof(*j));

	if (!j) {
		/* Out of memory (or cancelled): the blocks stay INFLIGHT forever
		 * otherwise. */
		for (uint32_t i = first; i < first + count && !verify_only; i++)
			if (b->state[i] == BLK_INFLIGHT)
				bio_block_set_locked(b, i, BLK_ABSENT);
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
void bio_schedule_locked(struct mfs_blob *b, uint32_t first, uint32_t last, bool demand)
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
			bio_block_set_locked(b, i, BLK_INFLIGHT);
			i++;
		}
		bio_enqueue_locked(bio, b, start, i - start, demand, false);
	}
}

int64_t bio_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Brings fetch_area up to now; called before `fetching` changes. */
static void fetch_area_locked(struct mfs_blobio *bio, int64_t now)
{
	if (bio->fetch_at)
		bio->fetch_area += (double)bio->fetching * (double)(now - bio->fetch_at);
	bio->fetch_at = now;
}

/* A fetch of a whole one-block blob: not held to the stream count. */
static bool job_small(const struct job *j)
{
	return !j->verify_only && j->b->nblocks == 1;
}

/* How far down the queue a thread looks for a small job when its head
 * waits for a stream. */
#define SMALL_SCAN 64

/* Unlinks and returns the first small job among the first SMALL_SCAN
 * behind the head, or NULL. */
static struct job *take_small_locked(struct mfs_blobio *bio)
{
	struct job *prev = bio->q_head;

	for (int n = 0; prev && prev->next && n < SMALL_SCAN; prev = prev->next, n++) {
		struct job *j = prev->next;
		if (!job_small(j))
			continue;
		prev->next = j->next;
		if (bio->q_tail == j)
			bio->q_tail = prev;
		return j;
	}
	return NULL;
}

/* A fetch job starts (under bio->lock). */
static void fetch_started_locked(struct mfs_blobio *bio, const struct job *j)
{
	fetch_area_locked(bio, bio_now_us());
	bio->fetching++;
	if (job_small(j))
		bio->small_fetching++;
}

/* Takes the job at the head of the queue when a thread may run it: a
 * fetch only while fewer than the controller's streams run, cut to its
 * range size (the rest stays at the head). A small job
 * runs at once, and is taken from behind a head that must wait. NULL when
 * it must wait. */
static struct job *take_job_locked(struct mfs_blobio *bio)
{
	struct job *j = bio->q_head, *rest;
	uint32_t max_run;

	if (!j)
		return NULL;
	if (!j->verify_only && !job_small(j)) {
		/* (stopping: the queue drains at any pace) */
		if (bio->fetching - bio->small_fetching >= mfs_streams_count(&bio->streams) &&
		    !bio->stopping) {
			/* the head waits for a stream; a small job need not */
			j = take_small_locked(bio);
			if (j)
				fetch_started_locked(bio, j);
			return j;
		}
		max_run = (uint32_t)(mfs_streams_range(&bio->streams) / j->b->bsize);
		if (max_run == 0)
			max_run = 1;
		if (j->count > max_run && (rest = calloc(1, sizeof(*rest)))) {
			*rest = *j;
			rest->first = j->first + max_run;
			rest->count = j->count - max_run;
			j->count = max_run;
			j->b->refs++;
			j->next = rest;
			if (bio->q_tail == j)
				bio->q_tail = rest;
		}
	}
	if (!j->verify_only)
		fetch_started_locked(bio, j);
	bio->q_head = j->next;
	if (!bio->q_head)
		bio->q_tail = NULL;
	return j;
}

void *bio_worker(void *arg)
{
	struct mfs_blobio *bio = arg;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&bio->lock);
		while (!(j = take_job_locked(bio)) && !bio->stopping)
			pthread_cond_wait(&bio->work, &bio->lock);
		if (!j) {
			pthread_mutex_unlock(&bio->lock);
			break;
		}
		bio->busy++;
		pthread_mutex_unlock(&bio->lock);
		bio_run_job(j);
		pthread_mutex_lock(&bio->lock);
		if (--bio->busy == 0 && !bio->q_head)
			pthread_cond_broadcast(&bio->idle);
		if (!j->verify_only) {
			fetch_area_locked(bio, bio_now_us());
			bio->fetching--;
			if (job_small(j))
				bio->small_fetching--;
			/* a stream is free: a thread waiting for one may go */
			if (bio->q_head)
				pthread_cond_signal(&bio->work);
		}
		pthread_mutex_unlock(&bio->lock);
		bio_blob_unref(j->b);
		free(j);
	}
	return NULL;
}

void bio_range_start(struct mfs_blobio *bio, struct bio_range_clock *c)
{
	int64_t now = bio_now_us();

	pthread_mutex_lock(&bio->lock);
	fetch_area_locked(bio, now);
	c->sent_us = now;
	c->area = bio->fetch_area;
	pthread_mutex_unlock(&bio->lock);
}

void bio_streams_sample(struct mfs_blobio *bio, const struct bio_range_clock *c,
			uint64_t bytes, int64_t first_us)
{
	int64_t now = bio_now_us(), total = now - c->sent_us;

	pthread_mutex_lock(&bio->lock);
	fetch_area_locked(bio, now);
	/* how many ranges ran, on average, while this one did */
	double inflight = total > 0 ? (bio->fetch_area - c->area) / (double)total
				    : bio->fetching;
	int before = mfs_streams_count(&bio->streams);
	mfs_streams_sample(&bio->streams, bytes, first_us - c->sent_us, total, inflight);
	int after = mfs_streams_count(&bio->streams);
	uint64_t range = mfs_streams_range(&bio->streams);
	if (after > before)
		pthread_cond_broadcast(&bio->work);
	pthread_mutex_unlock(&bio->lock);
	if (after != before)
		mfs_debug("fetch streams %d -> %d (ranges of %llu KiB; this one %llu KiB "
			  "with %.1f in flight, first byte after %lld us, %lld us in all)",
			  before, after, (unsigned long long)range >> 10,
			  (unsigned long long)bytes >> 10, inflight,
			  (long long)(first_us - c->sent_us), (long long)total);
}

void mfs_blobio_cancel(struct mfs_blobio *bio)
{
	struct job *list;

	pthread_mutex_lock(&bio->lock);
	bio->cancelled = true;
	list = bio->q_head;
	bio->q_head = bio->q_tail = NULL;
	if (!bio->busy)
		pthread_cond_broadcast(&bio->idle);
	pthread_mutex_unlock(&bio->lock);
	while (list) {
		struct job *j = list;
		list = j->next;
		if (!j->verify_only)
			bio_fail_blocks(j->b, j->first, j->first + j->count, -ECANCELED);
		bio_blob_unref(j->b);
		free(j);
	}
	bio_trust_cancel(bio);
}
