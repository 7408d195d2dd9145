/*
 * test_streams.c - criterion tests of core/streams.h: the stream count and
 * range size follow a replayed link (a per-connection cap keeps many
 * streams, one shared bottleneck brings them down to the fewest, a link
 * that changes is followed back up) and never leave their bounds.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "core/streams.h"

#define MB 1000000.0
#define MiB (1u << 20)

static const struct mfs_streams_config cfg = {
	.min_streams = 2, .max_streams = 8, .min_range = 1 * MiB, .max_range = 16 * MiB,
};

/* A link: each of n streams gets per_conn bytes/s, all together at most
 * total bytes/s; every request waits ttfb_us for its first byte. */
struct link {
	double per_conn, total;
	int64_t ttfb_us;
};

/* One round: `n` ranges of the controller's size end with n in flight. */
static void round_at(struct mfs_streams *s, const struct link *l, int n)
{
	double each = l->total / n < l->per_conn ? l->total / n : l->per_conn;
	uint64_t bytes = mfs_streams_range(s);
	int64_t total = l->ttfb_us + (int64_t)((double)bytes / each * 1e6);

	for (int i = 0; i < n; i++)
		mfs_streams_sample(s, bytes, l->ttfb_us, total, n);
}

/* A reader's window ramping up (1, 2, 4 ranges in flight), then rounds at
 * whatever count the controller says; returns the mean count over the
 * second half of those (it probes a neighbour now and then). */
static double run(struct mfs_streams *s, const struct link *l, int rounds, bool ramp)
{
	double sum = 0;

	for (int n = 1; ramp && n < cfg.max_streams; n *= 2)
		round_at(s, l, n);
	for (int i = 0; i < rounds; i++) {
		round_at(s, l, mfs_streams_count(s));
		if (i >= rounds / 2)
			sum += mfs_streams_count(s);
	}
	return sum / (rounds - rounds / 2);
}

Test(streams, a_capped_connection_keeps_every_stream)
{
	struct mfs_streams s;
	struct link l = { .per_conn = 50 * MB, .total = 1e12, .ttfb_us = 40000 };

	mfs_streams_init(&s, &cfg);
	cr_assert_eq(run(&s, &l, 40, true), 8);
	/* 8 waits of 40 ms at 50 MB/s = 16 MB: the 16 MiB bound is close */
	cr_assert_geq(mfs_streams_range(&s), 15 * MiB);
}

Test(streams, one_shared_bottleneck_needs_the_fewest_streams)
{
	struct mfs_streams s;
	struct link l = { .per_conn = 1e12, .total = 1000 * MB, .ttfb_us = 2000 };

	mfs_streams_init(&s, &cfg);
	/* A stream more only overlaps another's 2 ms first-byte wait: a few
	 * streams (2-5, probing), ranges of 8 waits at 1000 MB/s / that. */
	cr_assert_leq(run(&s, &l, 80, true), 4.5);
	cr_assert_geq(mfs_streams_range(&s), 3 * MiB);
}

Test(streams, a_slow_round_trip_on_a_slow_link_gets_short_ranges)
{
	struct mfs_streams s;
	struct link l = { .per_conn = 10 * MB, .total = 1e12, .ttfb_us = 20000 };

	mfs_streams_init(&s, &cfg);
	cr_assert_eq(run(&s, &l, 20, true), 8);
	/* 8 waits of 20 ms at 10 MB/s = 1.6 MB */
	cr_assert_geq(mfs_streams_range(&s), 1 * MiB);
	cr_assert_leq(mfs_streams_range(&s), 2 * MiB);
}

Test(streams, a_link_that_becomes_capped_gets_its_streams_back)
{
	struct mfs_streams s;
	struct link fast = { .per_conn = 1e12, .total = 1000 * MB, .ttfb_us = 2000 };
	struct link capped = { .per_conn = 20 * MB, .total = 1e12, .ttfb_us = 20000 };

	mfs_streams_init(&s, &cfg);
	cr_assert_leq(run(&s, &fast, 80, true), 4.5);
	/* The fit forgets the fast link and sees streams that do not slow
	 * each other; the count climbs back. */
	cr_assert_geq(run(&s, &capped, 80, false), 7.5);
}

Test(streams, random_samples_stay_within_the_bounds)
{
	struct mfs_streams s;

	srand(7);
	mfs_streams_init(&s, &cfg);
	for (int i = 0; i < 20000; i++) {
		int64_t total = 1 + rand() % 2000000;
		mfs_streams_sample(&s, (uint64_t)(rand() % (64 * MiB)), rand() % (total + 1),
				   total, (rand() % 1200) / 100.0);
		cr_assert_geq(mfs_streams_count(&s), 2);
		cr_assert_leq(mfs_streams_count(&s), 8);
		cr_assert_geq(mfs_streams_range(&s), 1 * MiB);
		cr_assert_leq(mfs_streams_range(&s), 16 * MiB);
	}
}

Test(streams, bounds_are_sane_whatever_the_config)
{
	struct mfs_streams s;
	struct mfs_streams_config c = { .min_streams = 9, .max_streams = 1000 };

	mfs_streams_init(&s, &c);
	cr_assert_eq(mfs_streams_count(&s), MFS_STREAMS_MAX);
	cr_assert_geq(mfs_streams_range(&s), 1);
}
