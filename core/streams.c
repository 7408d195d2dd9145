/*
 * streams.c - the stream-count and range-size controller (streams.h).
 *
 * What it knows is what each finished range request achieved, and how
 * many ranges ran, on average, while it did. The rule:
 *
 * Streams. Each sample gives x = 1 / (ranges in flight, on average,
 * while it ran) and y = what that one stream delivered (bytes / whole
 * request time, first-byte wait included). Fitted over recent samples as
 *     y = a + b x,  so n streams deliver  n y(n) = a n + b:
 * `a` is what every stream added brings (a per-connection cap: streams do
 * not slow each other), `b` what they share whatever their number (one
 * bottleneck - the wire or the CPU - that more streams only divide).
 * The count is the fewest streams whose predicted aggregate is within
 * GAIN of the maximum's: a capped link (b ~ 0) keeps the maximum, a fast
 * one (a ~ 0) the minimum - each stream more costs a thread, a
 * connection, memory and CPU for nothing, and the ranges get larger
 * (below). Between, as many as still pay. The fit needs samples at more
 * than one level of concurrency (a reader's window ramping up, a
 * prefetch's tail, the count's own changes give them); without that the
 * count climbs back one stream per epoch towards the maximum, the safe
 * side, and that change is itself the next measurement. A change waits
 * until the streams have each finished about one range at the new count.
 * It starts at the maximum (what the block layer did before: nothing is
 * lost on a capped link while the first samples come in).
 *
 * Range size. A request first waits a round trip (or two, with the hub's
 * redirect) for its first byte, then streams at the per-stream transfer
 * rate. A range is made RANGE_LATENCIES first-byte waits long, so waiting
 * is at most ~1/9 of a stream's time: on a fast link that is a large
 * range (few requests, little per-request CPU), on a slow one a smaller
 * range, so more of them run in parallel and the tail of a fetch is
 * shared by every stream. Bounded by the configured range limits.
 *
 * It does not schedule anything: the block layer (blobjob.c) splits
 * queued work into ranges of this size and runs at most this many.
 */
#include "core/streams.h"

/* Fewer streams are enough when they bring at least this share of what
 * the maximum would. */
#define GAIN 0.9
/* Weight of a new sample in the fit's moments (~ the last 20 count). */
#define FIT_ALPHA 0.05
/* The fit needs this spread (variance) of 1 / ranges in flight: e.g.
 * samples at both 4 and 8, or at 2 and 3. */
#define FIT_MIN_VAR 0.001
/* A range lasts this many first-byte waits. */
#define RANGE_LATENCIES 8
/* Weight of a new sample in the running averages. */
#define ALPHA 0.3
/* Smaller ranges (a file's tail) say little about the link. */
#define MIN_SAMPLE_BYTES (64u << 10)

void mfs_streams_init(struct mfs_streams *s, const struct mfs_streams_config *cfg)
{
	*s = (struct mfs_streams){ .cfg = *cfg };
	if (s->cfg.max_streams > MFS_STREAMS_MAX)
		s->cfg.max_streams = MFS_STREAMS_MAX;
	if (s->cfg.max_streams < 1)
		s->cfg.max_streams = 1;
	if (s->cfg.min_streams < 1)
		s->cfg.min_streams = 1;
	if (s->cfg.min_streams > s->cfg.max_streams)
		s->cfg.min_streams = s->cfg.max_streams;
	if (s->cfg.min_range == 0)
		s->cfg.min_range = 1;
	if (s->cfg.max_range < s->cfg.min_range)
		s->cfg.max_range = s->cfg.min_range;
	s->streams = s->cfg.max_streams;
	s->range = s->cfg.max_range;
}

static double avg(double old, double v)
{
	return old > 0 ? old + ALPHA * (v - old) : v;
}

static void decide(struct mfs_streams *s)
{
	int max = s->cfg.max_streams, n = s->streams;
	double mx = s->sx / s->w, my = s->sy / s->w;
	double var = s->sxx / s->w - mx * mx;

	if (var < FIT_MIN_VAR) {
		if (n < max)
			n++; /* nothing to tell the levels apart: towards the safe side */
	} else {
		double b = (s->sxy / s->w - mx * my) / var;
		double a = my - b * mx;
		if (a < 0)
			a = 0;
		if (b < 0)
			b = 0;
		double top = a * max + b;
		for (n = s->cfg.min_streams; n < max && a * n + b < GAIN * top; n++)
			;
	}
	if (n < s->cfg.min_streams)
		n = s->cfg.min_streams;
	if (n != s->streams) {
		s->streams = n;
		s->samples = 0;
	}
}

void mfs_streams_sample(struct mfs_streams *s, uint64_t bytes, int64_t ttfb_us,
			int64_t total_us, double inflight)
{
	if (bytes < MIN_SAMPLE_BYTES || total_us <= 0 || ttfb_us < 0 || ttfb_us > total_us ||
	    !(inflight >= 0))
		return;
	if (inflight < 1)
		inflight = 1;

	/* Range size from the transfer rate once the bytes flow. */
	int64_t flow = total_us - ttfb_us;
	if (flow < 1)
		flow = 1;
	double v = (double)bytes * 1e6 / (double)flow;
	/* the best a stream shows (rising at once, sinking slowly): on a
	 * fast link a stream's share falls as streams are added, and ranges
	 * sized on the share would shrink and need yet more streams */
	s->rate = s->rate > 0 ? s->rate + (v > s->rate ? 0.5 : 0.05) * (v - s->rate) : v;
	s->ttfb_us = avg(s->ttfb_us, (double)(ttfb_us > 0 ? ttfb_us : 1));
	double r = RANGE_LATENCIES * s->ttfb_us / 1e6 * s->rate;
	if (r < (double)s->cfg.min_range)
		r = (double)s->cfg.min_range;
	if (r > (double)s->cfg.max_range)
		r = (double)s->cfg.max_range;
	s->range = (uint64_t)r;

	/* Streams from the fit of what one stream delivered, waits included,
	 * against how many ran. */
	double x = 1.0 / inflight, y = (double)bytes * 1e6 / (double)total_us;
	double k = s->w > 0 ? 1 - FIT_ALPHA : 0;
	s->w = k * s->w + 1;
	s->sx = k * s->sx + x;
	s->sy = k * s->sy + y;
	s->sxx = k * s->sxx + x * x;
	s->sxy = k * s->sxy + x * y;
	if (++s->samples >= s->streams)
		decide(s);
}
