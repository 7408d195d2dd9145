/*
 * streams.h - how many range requests run at once and how long each is,
 * following the throughput each one achieves (reads and prefetch alike).
 *
 * Fed one sample per finished range request (bytes, time to its first
 * byte, time to its last, how many ranges were in flight when it ended),
 * it answers two numbers, each within the bounds it was given: the number
 * of streams (range requests running at once) and the range size. The
 * rule and why are in streams.c.
 *
 * It does no I/O, takes no lock and reads no clock: the caller serialises
 * calls (the block layer holds bio->lock) and measures, so unit tests
 * replay a link exactly.
 */
#ifndef MFS_CORE_STREAMS_H
#define MFS_CORE_STREAMS_H

#include <stdint.h>

#define MFS_STREAMS_MAX 64

struct mfs_streams_config {
	int min_streams;          /* >= 1 */
	int max_streams;          /* <= MFS_STREAMS_MAX; also the start */
	uint64_t min_range;       /* bytes */
	uint64_t max_range;       /* bytes; also the start */
};

struct mfs_streams {
	struct mfs_streams_config cfg;
	int streams;
	uint64_t range;
	/* Running (exponentially weighted) moments of x = 1 / ranges in
	 * flight and y = what one stream delivered, for the fit y = a + b x. */
	double w, sx, sy, sxx, sxy;
	int samples;              /* since the count last changed */
	double rate;              /* best per-stream transfer rate (bytes/s) */
	double ttfb_us;           /* time to first byte (us) */
};

void mfs_streams_init(struct mfs_streams *s, const struct mfs_streams_config *cfg);

/* One finished range: `bytes` received, the first `ttfb_us` after the
 * request went out, the last `total_us` after; `inflight` ranges ran on
 * average while it did (itself included). */
void mfs_streams_sample(struct mfs_streams *s, uint64_t bytes, int64_t ttfb_us,
			int64_t total_us, double inflight);

static inline int mfs_streams_count(const struct mfs_streams *s)
{
	return s->streams;
}

static inline uint64_t mfs_streams_range(const struct mfs_streams *s)
{
	return s->range;
}

#endif
