/*
 * test_catalog.c - the catalog's tree cache: with max_trees, trees nobody
 * holds are freed least recently used first, held ones stay valid, and
 * trees handed out by mfs_cat_tree (the mount's way) are never freed early.
 * Offline catalog over a real index in a temporary directory; no network.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/catalog.h"
#include "index/index.h"

static char dir[64];
static struct mfs_ix *ix;
static struct mfs_repo repo = { .type = MFS_REPO_MODEL, .id = "org/m" };

static void commit_of(unsigned i, char out[41])
{
	for (int k = 0; k < 40; k++)
		out[k] = "0123456789abcdef"[(i + (unsigned)k * 7) % 16];
	out[40] = '\0';
}

static void setup(void)
{
	char path[128];

	snprintf(dir, sizeof dir, "/tmp/mfs-cat-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/index.db", dir);
	cr_assert_eq(mfs_ix_open(path, &ix), 0);
	for (unsigned i = 0; i < 6; i++) {
		char c[41], name[32];
		struct mfs_entry e = { .path = name, .kind = MFS_KIND_FILE, .size = i };
		commit_of(i, c);
		snprintf(name, sizeof name, "file-%u.bin", i);
		commit_of(100 + i, e.oid);
		cr_assert_eq(mfs_ix_tree_put(ix, &repo, c, &e, 1), 0);
	}
}

static void teardown(void)
{
	char cmd[128];

	mfs_ix_close(ix);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(catalog, .init = setup, .fini = teardown, .timeout = 60);

Test(catalog, held_trees_stay_and_unheld_ones_are_bounded)
{
	struct mfs_cat_config cc = { .offline = true, .max_trees = 2 };
	struct mfs_catalog *cat;
	const struct mfs_tree *t[6];
	char c[41];

	cr_assert_eq(mfs_cat_new(ix, NULL, &cc, &cat), 0);
	for (unsigned i = 0; i < 4; i++) {
		commit_of(i, c);
		cr_assert_eq(mfs_cat_tree_hold(cat, &repo, c, &t[i]), 0);
	}
	/* all four held: none may go */
	cr_expect_eq(mfs_cat_trees_cached(cat), 4);
	for (unsigned i = 1; i < 4; i++)
		mfs_cat_tree_release(cat, t[i]);
	cr_expect_eq(mfs_cat_trees_cached(cat), 2);
	/* t[0] is still held and intact */
	cr_expect_eq(t[0]->n_entries, 1);
	cr_expect_str_eq(t[0]->entries[0].path, "file-0.bin");
	/* the most recently used unheld tree is the one kept */
	commit_of(3, c);
	const struct mfs_tree *again;
	cr_assert_eq(mfs_cat_tree_hold(cat, &repo, c, &again), 0);
	cr_expect_eq(again, t[3]);
	mfs_cat_tree_release(cat, again);
	mfs_cat_tree_release(cat, t[0]);
	cr_expect_eq(mfs_cat_trees_cached(cat), 2);
	mfs_cat_free(cat);
}

Test(catalog, trees_handed_out_for_good_are_never_freed)
{
	struct mfs_cat_config cc = { .offline = true, .max_trees = 1 };
	struct mfs_catalog *cat;
	const struct mfs_tree *kept, *t;
	char c[41];

	cr_assert_eq(mfs_cat_new(ix, NULL, &cc, &cat), 0);
	commit_of(0, c);
	cr_assert_eq(mfs_cat_tree(cat, &repo, c, &kept), 0);
	for (unsigned i = 1; i < 6; i++) {
		commit_of(i, c);
		cr_assert_eq(mfs_cat_tree_hold(cat, &repo, c, &t), 0);
		mfs_cat_tree_release(cat, t);
	}
	cr_expect_leq(mfs_cat_trees_cached(cat), 2);
	cr_expect_str_eq(kept->entries[0].path, "file-0.bin");
	mfs_cat_free(cat);
}

Test(catalog, no_bound_by_default)
{
	struct mfs_cat_config cc = { .offline = true };
	struct mfs_catalog *cat;
	const struct mfs_tree *t;
	char c[41];

	cr_assert_eq(mfs_cat_new(ix, NULL, &cc, &cat), 0);
	for (unsigned i = 0; i < 6; i++) {
		commit_of(i, c);
		cr_assert_eq(mfs_cat_tree_hold(cat, &repo, c, &t), 0);
		mfs_cat_tree_release(cat, t);
	}
	cr_expect_eq(mfs_cat_trees_cached(cat), 6);
	mfs_cat_free(cat);
}
