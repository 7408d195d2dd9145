/*
 * test_source.c - the source set without a network: rendezvous hashing,
 * URL lists, construction rules, stats, and failover to "nobody answers"
 * being a prompt -EHOSTDOWN (ports on 127.0.0.1 that nothing listens on).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fetch/source.h"

Test(source, rendezvous_normalises_urls_and_spreads_ids)
{
	const char *peers[3] = { "http://127.0.0.1:7001", "http://127.0.0.1:7002",
				 "http://127.0.0.1:7003" };
	int wins[3] = { 0 };
	char id[65];

	/* the same origin written differently ranks the same */
	cr_assert_eq(mfs_src_rendezvous("http://LOCALHOST:80/", "ab"),
		     mfs_src_rendezvous("http://localhost", "ab"));
	for (int i = 0; i < 3000; i++) {
		uint64_t best = 0;
		int w = 0;
		snprintf(id, sizeof(id), "%064x", i * 2654435761u);
		for (int p = 0; p < 3; p++) {
			uint64_t s = mfs_src_rendezvous(peers[p], id);
			if (s > best) {
				best = s;
				w = p;
			}
		}
		wins[w]++;
	}
	/* each peer owns roughly a third (a fair split is 1000 each) */
	for (int p = 0; p < 3; p++)
		cr_assert(wins[p] > 800 && wins[p] < 1200, "peer %d owns %d of 3000", p, wins[p]);
}

Test(source, url_lists)
{
	struct mfs_src_list l = { 0 };

	cr_assert_eq(mfs_src_list_add(&l, " http://a:1/x , ,https://b "), 0);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.urls[0], "http://a:1/x");
	cr_assert_str_eq(l.urls[1], "https://b");
	cr_assert_eq(mfs_src_list_add(&l, "ftp://c"), -EINVAL);
	cr_assert_eq(l.n, 2);
	mfs_src_list_free(&l);
	cr_assert_eq(l.n, 0);
}

Test(source, construction_and_stats)
{
	const char *mirrors[] = { "http://127.0.0.1:1/" };
	const char *peers[] = { "http://127.0.0.1:2", "http://127.0.0.1:9" };
	const char *bad[] = { "not a url" };
	struct mfs_srcset_config c = { .mirrors = mirrors, .n_mirrors = 1, .peers = peers,
				       .n_peers = 2, .self_url = "http://127.0.0.1:9" };
	struct mfs_src_stats st[8];
	struct mfs_srcset *s;

	cr_assert_eq(mfs_srcset_new(&c, NULL, &s), 0);
	/* the node's own URL is dropped from its peer list */
	cr_assert_eq(mfs_srcset_count(s), 2);
	cr_assert_eq(mfs_srcset_stats(s, st, 8), 2);
	cr_assert_eq(st[0].kind, MFS_SRC_PEER);
	cr_assert_eq(st[1].kind, MFS_SRC_MIRROR);
	cr_assert_eq(mfs_srcset_n_mirrors(s), 1);
	cr_assert_not_null(mfs_srcset_mirror_hub(s, 0));
	cr_assert_eq(mfs_srcset_hub_index(s), -1);
	mfs_srcset_demote(s, 1, "test");
	cr_assert(mfs_srcset_demoted(s, 1));
	mfs_srcset_stats(s, st, 8);
	cr_assert_eq(st[1].bad_data, 1);
	cr_assert_gt(st[1].demoted_for_ms, 0);
	mfs_srcset_free(s);

	c.peers = bad;
	c.n_peers = 1;
	cr_assert_eq(mfs_srcset_new(&c, NULL, &s), -EINVAL);
}

static int count_sink(void *ctx, int src, uint64_t off, const void *d, size_t n)
{
	(void)src;
	(void)off;
	(void)d;
	*(size_t *)ctx += n;
	return 0;
}

Test(source, nobody_listening_fails_fast_and_is_down)
{
	/* port 1 on loopback: connection refused at once */
	const char *mirrors[] = { "http://127.0.0.1:1" };
	const char *peers[] = { "http://127.0.0.1:3" };
	struct mfs_srcset_config c = { .mirrors = mirrors, .n_mirrors = 1, .peers = peers,
				       .n_peers = 1, .fetch_timeout_ms = 3000 };
	struct mfs_repo repo = { .type = MFS_REPO_MODEL, .id = "Org/m" };
	struct mfs_src_read rq = {
		.file = { .repo = &repo, .commit = "0123456789012345678901234567890123456789",
			  .path = "w.bin", .size = 100 },
		.content_id = "0123456789012345678901234567890123456789",
	};
	struct mfs_src_outcome oc;
	struct mfs_src_stats st[4];
	struct mfs_srcset *s;
	size_t got = 0;

	cr_assert_eq(mfs_srcset_new(&c, NULL, &s), 0);
	cr_assert_eq(mfs_srcset_read(s, &rq, 0, 100, count_sink, &got, &oc), -EHOSTDOWN);
	cr_assert_eq(got, 0);
	cr_assert_eq(oc.sources_tried, 2);
	cr_assert_not(oc.hub_tried);
	mfs_srcset_stats(s, st, 4);
	cr_assert_eq(st[0].errors, 1);
	cr_assert_eq(st[1].errors, 1);
	cr_assert(!st[0].up && !st[1].up, "refused: both origins down");
	cr_assert_gt(st[0].down_since_wall_ms, 0);
	cr_assert_neq(st[0].last_error[0], '\0');
	/* down sources are not asked again: no I/O at all */
	cr_assert_eq(mfs_srcset_read(s, &rq, 0, 100, count_sink, &got, &oc), -EHOSTDOWN);
	cr_assert_eq(oc.sources_tried, 0);
	cr_assert_eq(mfs_srcset_probe(s, &rq, &oc), -EHOSTDOWN);
	cr_assert_eq(oc.sources_tried, 0);
	mfs_srcset_free(s);
}
