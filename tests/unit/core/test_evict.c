/*
 * test_evict.c - criterion tests for the cache quota (core/evict.h), pins
 * and file selection (core/pin.h) and the pin/LRU additions to index/.
 *
 * Each test builds a real index and block store in a temp directory, stores
 * real blocks, and checks which blocks remain on disk and in the index
 * after eviction. Expected orders come from the access times the test sets
 * itself. Does not test fetching (tests/integration does, end to end).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/core/cache_fixture.h"
#include "cache/blockstore.h"
#include "core/blklock.h"
#include "core/evict.h"
#include "core/pin.h"
#include "index/index.h"
#include "util/log.h"

#define BS 4096u


static void setup(void)
{
	mfs_log_set_level(MFS_LOG_ERROR);
	cache_fixture_open("/tmp/mfs-evict-XXXXXX");
}

static void teardown(void)
{
	cache_fixture_close();
}

static void mkid(char id[65], int n)
{
	for (int i = 0; i < 64; i++)
		id[i] = "0123456789abcdef"[(n * 7 + i) % 16];
	id[0] = "0123456789abcdef"[n % 16];
	id[64] = '\0';
}

/* A blob of nblocks random-ish (incompressible) blocks, accessed at `when`. */
static void make_blob(const char *id, uint32_t nblocks, int64_t when)
{
	uint32_t bsz = BS;
	uint8_t buf[BS];

	cr_assert_eq(mfs_ix_blob_ensure(ix, id, (uint64_t)nblocks * BS, &bsz), 0);
	for (uint32_t i = 0; i < nblocks; i++) {
		struct mfs_bs_stats st;
		for (size_t k = 0; k < sizeof(buf); k++)
			buf[k] = (uint8_t)(rand() & 0xff);
		cr_assert_eq(mfs_bs_put(bs, id, i, sizeof(buf), buf, sizeof(buf), 1, &st), 0);
		cr_assert_eq(mfs_ix_block_add(ix, id, i, st.stored_bytes), 0);
	}
	const char *ids[1] = { id };
	cr_assert_eq(mfs_ix_touch(ix, ids, 1, when), 0);
}

static size_t present(const char *id, uint32_t nblocks)
{
	uint8_t bm[64] = { 0 };
	size_t n = 0;

	cr_assert_eq(mfs_ix_blocks_get(ix, id, bm, nblocks), 0);
	for (uint32_t i = 0; i < nblocks; i++) {
		bool in_ix = bm[i / 8] & (1u << (i % 8));
		cr_assert_eq(in_ix, mfs_bs_has(bs, id, i), "index and disk disagree on %u", i);
		n += in_ix;
	}
	return n;
}

static uint64_t stored(void)
{
	struct mfs_ix_totals t;

	cr_assert_eq(mfs_ix_totals(ix, &t), 0);
	return t.stored_bytes;
}

static uint64_t block_cost(const char *id)
{
	struct mfs_ix_block *b;
	size_t n;

	cr_assert_eq(mfs_ix_blob_blocks(ix, id, &b, &n), 0);
	cr_assert_gt(n, 0);
	uint64_t c = b[0].stored_len;
	free(b);
	return c;
}

TestSuite(evict, .init = setup, .fini = teardown);

Test(evict, lru_order_tail_first_and_pins_untouched)
{
	char a[65], b[65], c[65], p[65];
	struct mfs_evict_result r;

	mkid(a, 1);
	mkid(b, 2);
	mkid(c, 3);
	mkid(p, 4);
	make_blob(p, 4, 100);   /* oldest of all, but pinned */
	make_blob(a, 4, 200);   /* oldest unpinned */
	make_blob(b, 4, 300);
	make_blob(c, 4, 400);   /* newest */
	const char *pins[1] = { p };
	cr_assert_eq(mfs_ix_pins_apply(ix, pins, 1), 0);
	uint64_t cost = block_cost(a);
	uint64_t total = stored();
	cr_assert_eq(total, 16 * cost);

	/* Room for 10 blocks: all of a (4) and the two last blocks of b go. */
	cr_assert_eq(mfs_evict_to(ix, bs, lockdir, 10 * cost, NULL, NULL, &r), 0);
	cr_assert_eq(r.blocks, 6);
	cr_assert_eq(r.blobs, 2);
	cr_assert_eq(r.before, total);
	cr_assert_eq(r.after, 10 * cost);
	cr_assert_eq(stored(), 10 * cost);
	cr_assert_eq(present(a, 4), 0);
	cr_assert_eq(present(b, 4), 2);
	cr_assert(mfs_bs_has(bs, b, 0) && mfs_bs_has(bs, b, 1), "head of b kept");
	cr_assert_eq(present(c, 4), 4);
	cr_assert_eq(present(p, 4), 4);
	bool verified = true;
	cr_assert_eq(mfs_ix_blob_get(ix, b, NULL, NULL, &verified, NULL), 0);
	cr_assert_not(verified, "a partly evicted blob must be hashed again");

	/* Below what pins hold: everything unpinned goes, then -ENOSPC. */
	cr_assert_eq(mfs_evict_to(ix, bs, lockdir, cost, NULL, NULL, &r), -ENOSPC);
	cr_assert_eq(present(b, 4), 0);
	cr_assert_eq(present(c, 4), 0);
	cr_assert_eq(present(p, 4), 4);
	cr_assert_eq(r.after, 4 * cost);
}

static bool busy_is_a(void *ctx, const char *id)
{
	return strcmp(ctx, id) == 0;
}

Test(evict, blobs_in_use_go_last)
{
	char a[65], b[65];
	struct mfs_evict_result r;

	mkid(a, 5);
	mkid(b, 6);
	make_blob(a, 3, 10);  /* older, but in use */
	make_blob(b, 3, 20);
	uint64_t cost = block_cost(a);
	cr_assert_eq(mfs_evict_to(ix, bs, NULL, 3 * cost, busy_is_a, a, &r), 0);
	cr_assert_eq(present(a, 3), 3);
	cr_assert_eq(present(b, 3), 0);
	/* Nothing else left: the in-use blob makes room, oldest blocks first. */
	cr_assert_eq(mfs_evict_to(ix, bs, NULL, 1 * cost, busy_is_a, a, &r), 0);
	cr_assert_eq(present(a, 3), 1);
	cr_assert(mfs_bs_has(bs, a, 2), "a streaming reader's newest block stays");
}

Test(evict, blocks_locked_by_a_fetch_are_skipped)
{
	char a[65];
	struct mfs_evict_result r;

	mkid(a, 7);
	make_blob(a, 3, 10);
	int fd = mfs_blklock_open(lockdir, a);
	cr_assert_geq(fd, 0);
	cr_assert_eq(mfs_blklock_try(fd, 1, 1), 0);
	cr_assert_eq(mfs_evict_to(ix, bs, lockdir, 0, NULL, NULL, &r), -ENOSPC);
	cr_assert_eq(r.skipped_locked, 1);
	cr_assert_eq(present(a, 3), 1);
	cr_assert(mfs_bs_has(bs, a, 1));
	mfs_blklock_release(fd, 1, 1);
	cr_assert_eq(mfs_evict_to(ix, bs, lockdir, 0, NULL, NULL, &r), 0);
	cr_assert_eq(present(a, 3), 0);
	close(fd);
}

Test(evict, evictor_thread_enforces_the_watermarks)
{
	char ids[6][65];
	struct mfs_evictor *ev;
	struct mfs_blobio_hooks h;

	for (int i = 0; i < 6; i++) {
		mkid(ids[i], 10 + i);
		make_blob(ids[i], 4, 100 + i);
	}
	uint64_t cost = block_cost(ids[0]);
	/* quota 20 blocks: high 19, low 17; we hold 24. */
	struct mfs_evict_config cfg = { .quota = 20 * cost, .lock_dir = lockdir, .tick_ms = 50 };
	cr_assert_eq(mfs_evictor_start(&cfg, ix, bs, &ev), 0);
	mfs_evictor_hooks(ev, &h);
	h.on_stored(h.ctx, 0);
	for (int i = 0; i < 100 && stored() > mfs_evict_high(20 * cost, 95); i++)
		usleep(20000);
	uint64_t s = stored();
	cr_assert_leq(s, mfs_evict_low(20 * cost, 85));
	cr_assert_gt(s, mfs_evict_low(20 * cost, 85) - cost, "evicts only down to the low mark");
	cr_assert_eq(present(ids[0], 4), 0, "the least recently used blob went first");
	cr_assert_eq(present(ids[5], 4), 4);
	/* ENOSPC hook makes room at once. */
	cr_assert_eq(h.on_nospace(h.ctx, BS), 0);
	cr_assert_lt(stored(), s);
	mfs_evictor_stop(ev);
	mfs_evictor_free(ev);
}

TestSuite(pins, .init = setup, .fini = teardown);

Test(pins, globs)
{
	struct mfs_globs g = { 0 }, d;

	cr_assert(mfs_glob_valid("*.gguf"));
	cr_assert(mfs_glob_valid("[ab]*"));
	cr_assert_not(mfs_glob_valid(""));
	cr_assert_not(mfs_glob_valid("[abc"));
	cr_assert_not(mfs_glob_valid("x\\"));
	cr_assert(mfs_globs_match(&g, "anything/at/all"), "no globs: everything");
	cr_assert_eq(mfs_globs_add(&g, "*.gguf", false), 0);
	cr_assert_eq(mfs_globs_add(&g, "*.json", false), 0);
	cr_assert_eq(mfs_globs_add(&g, "draft/*", true), 0);
	cr_assert_eq(mfs_globs_add(&g, "[x", true), -EINVAL);
	cr_assert(mfs_globs_match(&g, "m.gguf"));
	cr_assert(mfs_globs_match(&g, "sub/m.gguf"), "'*' crosses '/' like huggingface_hub");
	cr_assert(mfs_globs_match(&g, "config.json"));
	cr_assert_not(mfs_globs_match(&g, "README.md"));
	cr_assert_not(mfs_globs_match(&g, "draft/m.gguf"));
	char *enc = mfs_globs_encode(&g);
	cr_assert_str_eq(enc, "+*.gguf\n+*.json\n-draft/*\n");
	cr_assert_eq(mfs_globs_decode(enc, &d), 0);
	cr_assert_eq(d.ninc, 2);
	cr_assert_eq(d.nexc, 1);
	cr_assert_not(mfs_globs_match(&d, "draft/m.gguf"));
	cr_assert(mfs_globs_match(&d, "m.gguf"));
	mfs_globs_free(&d);
	cr_assert_eq(mfs_globs_decode("nonsense", &d), -EINVAL);
	free(enc);
	mfs_globs_free(&g);
}

static int count_pins(void *ctx, const struct mfs_ix_pin *p)
{
	int *n = ctx;

	(void)p;
	(*n)++;
	return 0;
}

Test(pins, durable_accumulate_and_recompute)
{
	struct mfs_repo r = { .type = MFS_REPO_MODEL, .id = "org/m" };
	char c1[41], c2[41], ga[65], gb[65], gc[65], p[128];
	struct mfs_entry e1[2], e2[1];
	uint64_t pinned = 0;
	uint32_t bsz = BS;
	int n = 0;

	memset(c1, '1', 40);
	c1[40] = '\0';
	memset(c2, '2', 40);
	c2[40] = '\0';
	mkid(ga, 20);
	mkid(gb, 21);
	mkid(gc, 22);
	memset(e1, 0, sizeof(e1));
	memset(e2, 0, sizeof(e2));
	e1[0] = (struct mfs_entry){ .path = "w.gguf", .kind = MFS_KIND_FILE, .size = 100 };
	strcpy(e1[0].oid, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	strcpy(e1[0].sha256, ga);
	e1[1] = (struct mfs_entry){ .path = "notes.md", .kind = MFS_KIND_FILE, .size = 7 };
	strcpy(e1[1].oid, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	strcpy(e1[1].sha256, gb);
	e2[0] = (struct mfs_entry){ .path = "w.gguf", .kind = MFS_KIND_FILE, .size = 200 };
	strcpy(e2[0].oid, "cccccccccccccccccccccccccccccccccccccccc");
	strcpy(e2[0].sha256, gc);
	cr_assert_eq(mfs_ix_commit_put(ix, &r, c1, 1), 0);
	cr_assert_eq(mfs_ix_tree_put(ix, &r, c1, e1, 2), 0);
	cr_assert_eq(mfs_ix_commit_put(ix, &r, c2, 2), 0);
	cr_assert_eq(mfs_ix_tree_put(ix, &r, c2, e2, 1), 0);
	cr_assert_eq(mfs_ix_blob_ensure(ix, ga, 100, &bsz), 0);
	cr_assert_eq(mfs_ix_blob_ensure(ix, gb, 7, &bsz), 0);
	cr_assert_eq(mfs_ix_blob_ensure(ix, gc, 200, &bsz), 0);

	cr_assert_eq(mfs_ix_pin_add(ix, &r, "main", c1, "+*.gguf\n", 5), 0);
	cr_assert_eq(mfs_pins_recompute(ix, &pinned), 0);
	cr_assert_eq(pinned, 100, "only the glob's file");
	/* --update: the same rev at a new commit keeps the old one too. */
	cr_assert_eq(mfs_ix_pin_add(ix, &r, "main", c2, "+*.gguf\n", 6), 0);
	cr_assert_eq(mfs_ix_pins_list(ix, count_pins, &n), 0);
	cr_assert_eq(n, 2);
	mfs_ix_close(ix);  /* durable: survives reopening */
	snprintf(p, sizeof(p), "%s/index.db", dir);
	cr_assert_eq(mfs_ix_open(p, &ix), 0);
	cr_assert_eq(mfs_pins_recompute(ix, &pinned), 0);
	cr_assert_eq(pinned, 300);
	bool pa, pb, pc;
	cr_assert_eq(mfs_ix_blob_get(ix, ga, NULL, NULL, NULL, &pa), 0);
	cr_assert_eq(mfs_ix_blob_get(ix, gb, NULL, NULL, NULL, &pb), 0);
	cr_assert_eq(mfs_ix_blob_get(ix, gc, NULL, NULL, NULL, &pc), 0);
	cr_assert(pa && !pb && pc);
	struct mfs_ix_commit_stat *cs;
	size_t ncs;
	cr_assert_eq(mfs_ix_commit_stats(ix, &r, &cs, &ncs), 0);
	cr_assert_eq(ncs, 2);
	cr_assert(cs[0].pinned && cs[1].pinned);
	cr_assert_eq(cs[0].size, 107);
	free(cs);

	cr_assert_eq(mfs_ix_pin_del(ix, &r, "main"), 0);
	cr_assert_eq(mfs_ix_pin_del(ix, &r, "main"), -ENOENT);
	n = 0;
	cr_assert_eq(mfs_ix_pins_list(ix, count_pins, &n), 0);
	cr_assert_eq(n, 0, "the pinned commits went with the pin");
	cr_assert_eq(mfs_pins_recompute(ix, &pinned), 0);
	cr_assert_eq(pinned, 0);
	cr_assert_eq(mfs_ix_blob_get(ix, ga, NULL, NULL, NULL, &pa), 0);
	cr_assert_not(pa);
}

static int sum_counter(void *ctx, const char *name, int64_t v)
{
	if (!strcmp(name, "x"))
		*(int64_t *)ctx = v;
	return 0;
}

Test(pins, counters_accumulate)
{
	const char *names[2] = { "x", "y" };
	int64_t d[2] = { 5, 1 }, x = 0;

	cr_assert_eq(mfs_ix_counters_add(ix, names, d, 2), 0);
	d[0] = 7;
	cr_assert_eq(mfs_ix_counters_add(ix, names, d, 2), 0);
	cr_assert_eq(mfs_ix_counters_list(ix, sum_counter, &x), 0);
	cr_assert_eq(x, 12);
}
