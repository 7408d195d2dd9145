/*
 * cache_fixture.h - the temporary cache the core unit tests run against:
 * a fresh directory with an index (index.db) and a block store, opened in
 * a criterion .init and removed in .fini. Header-only, one per test file:
 * the state is the file's own statics, so tests in different files never
 * share a cache.
 */
#ifndef MFS_TESTS_CACHE_FIXTURE_H
#define MFS_TESTS_CACHE_FIXTURE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/blockstore.h"
#include "index/index.h"

static char dir[64], lockdir[96];
static struct mfs_ix *ix;
static struct mfs_bs *bs;

/* tmpl: a mkdtemp template such as "/tmp/mfs-evict-XXXXXX". */
static inline void cache_fixture_open(const char *tmpl)
{
	char p[128];

	snprintf(dir, sizeof(dir), "%s", tmpl);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/index.db", dir);
	snprintf(lockdir, sizeof(lockdir), "%s/locks", dir);
	cr_assert_eq(mfs_ix_open(p, &ix), 0);
	cr_assert_eq(mfs_bs_open(dir, &bs), 0);
}

static inline void cache_fixture_close(void)
{
	char cmd[128];

	mfs_bs_close(bs);
	mfs_ix_close(ix);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

#endif
