/*
 * readahead.c - the block layer's sequential-read detector.
 *
 * Per open file (struct mfs_readahead) it decides how far ahead of a
 * sequential reader blocks are scheduled; the blocks themselves are queued
 * by blobjob.c at the back of the queue, behind demand reads.
 *
 * It does not fetch or serve bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blobio_internal.h"

void bio_readahead_locked(struct mfs_blob *b, uint32_t b0, uint32_t b1,
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
	bio_schedule_locked(b, ra->issued_until, want - 1, false);
	ra->issued_until = want;
}
