/*
 * test_sweep.c - criterion tests for core/sweep.h: stored blocks without an
 * index row are removed, blocks with one are kept, a block whose
 * cross-process lock is held (a fetch about to write its row) is kept, and
 * a blob with no index row at all is removed whole.
 *
 * Each test builds a real index and block store in a temp directory.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/core/cache_fixture.h"
#include "cache/blockstore.h"
#include "core/blklock.h"
#include "core/sweep.h"
#include "index/index.h"
#include "util/log.h"

#define BS 4096u


static void setup(void)
{
	mfs_log_set_level(MFS_LOG_ERROR);
	cache_fixture_open("/tmp/mfs-sweep-XXXXXX");
}

static void teardown(void)
{
	cache_fixture_close();
}

static void mkid(char id[65], int n)
{
	for (int i = 0; i < 64; i++)
		id[i] = "0123456789abcdef"[(n * 5 + i) % 16];
	id[0] = "0123456789abcdef"[n % 16];
	id[64] = '\0';
}

/* Stores blocks 0..n-1 of blob `id`; rows only for those in `with_row`. */
static void store(const char *id, uint32_t n, const bool *with_row)
{
	uint8_t buf[BS];
	uint32_t bsz = BS;
	struct mfs_bs_stats st;

	cr_assert_eq(mfs_ix_blob_ensure(ix, id, (uint64_t)n * BS, &bsz), 0);
	for (uint32_t i = 0; i < n; i++) {
		memset(buf, (int)(i + 1), sizeof(buf));
		cr_assert_eq(mfs_bs_put(bs, id, i, BS, buf, sizeof(buf), 1, &st), 0);
		if (!with_row || with_row[i])
			cr_assert_eq(mfs_ix_block_add(ix, id, i, st.stored_bytes), 0);
	}
}

TestSuite(sweep, .init = setup, .fini = teardown);

Test(sweep, removes_blocks_without_rows_and_keeps_the_rest)
{
	char a[65], b[65];
	bool rows[4] = { true, false, true, false };
	struct mfs_sweep_result r;

	mkid(a, 1);
	mkid(b, 2);
	store(a, 4, rows);
	store(b, 3, NULL);
	cr_assert_eq(mfs_sweep_orphans(ix, bs, lockdir, &r), 0);
	cr_assert_eq(r.blocks_seen, 7);
	cr_assert_eq(r.orphans, 2);
	cr_assert_gt(r.orphan_bytes, 0);
	cr_assert_eq(r.busy, 0);
	cr_assert(mfs_bs_has(bs, a, 0));
	cr_assert_not(mfs_bs_has(bs, a, 1));
	cr_assert(mfs_bs_has(bs, a, 2));
	cr_assert_not(mfs_bs_has(bs, a, 3));
	for (uint32_t i = 0; i < 3; i++)
		cr_assert(mfs_bs_has(bs, b, i));
	/* A second sweep finds nothing: store and index agree now. */
	cr_assert_eq(mfs_sweep_orphans(ix, bs, lockdir, &r), 0);
	cr_assert_eq(r.orphans, 0);
	cr_assert_eq(r.blocks_seen, 5);
}

Test(sweep, blob_unknown_to_the_index_goes_whole)
{
	char a[65];
	uint8_t buf[BS] = { 7 };
	struct mfs_bs_stats st;
	struct mfs_sweep_result r;

	mkid(a, 3);
	for (uint32_t i = 0; i < 2; i++)
		cr_assert_eq(mfs_bs_put(bs, a, i, BS, buf, sizeof(buf), 1, &st), 0);
	cr_assert_eq(mfs_sweep_orphans(ix, bs, NULL, &r), 0);
	cr_assert_eq(r.orphans, 2);
	cr_assert_not(mfs_bs_has(bs, a, 0));
	cr_assert_not(mfs_bs_has(bs, a, 1));
}

/* A fetch holds the block's lock between storing it and writing its row:
 * the sweep must not take the block from under it. */
Test(sweep, a_locked_block_is_left_alone)
{
	char a[65];
	bool rows[2] = { false, false };
	struct mfs_sweep_result r;

	mkid(a, 4);
	store(a, 2, rows);
	int fd = mfs_blklock_open(lockdir, a);
	cr_assert_geq(fd, 0);
	cr_assert_eq(mfs_blklock_try(fd, 1, 1), 0);
	cr_assert_eq(mfs_sweep_orphans(ix, bs, lockdir, &r), 0);
	cr_assert_eq(r.orphans, 1);
	cr_assert_eq(r.busy, 1);
	cr_assert_not(mfs_bs_has(bs, a, 0));
	cr_assert(mfs_bs_has(bs, a, 1));
	mfs_blklock_release(fd, 1, 1);
	close(fd);
}
