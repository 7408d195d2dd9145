/*
 * blobjob.c - the block layer's job queue and fetch threads.
 *
 * schedule marks ABSENT blocks INFLIGHT and queues them as jobs of at most
 * coalesce_max bytes (demand reads at the front, read-ahead at the back);
 * fetch threads pop jobs and run them (blobfetch.c). Cancellation empties
 * the queue and fails its waiters.
 *
 * It does not fetch, store or verify bytes itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blobio_internal.h"

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
void *bio_worker(void *arg)
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
		bio_run_job(j);
		bio_blob_unref(j->b);
		free(j);
	}
	return NULL;
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
			bio_fail_blocks(j->b, j->first, j->first + j->count, -ECANCELED);
		bio_blob_unref(j->b);
		free(j);
	}
	bio_trust_cancel(bio);
}
