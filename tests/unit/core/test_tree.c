/*
 * test_tree.c - the in-memory commit tree: lookups, listings, and what it
 * does with entries that should never have been there.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tree.h"

static struct mfs_entry *mk(size_t n, const char *const *paths, const enum mfs_kind *kinds)
{
	struct mfs_entry *e = calloc(n, sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		e[i].path = strdup(paths[i]);
		e[i].kind = kinds[i];
		e[i].size = kinds[i] == MFS_KIND_FILE ? 100 + i : 0;
		memset(e[i].oid, 'a', 40);
	}
	return e;
}

#define F MFS_KIND_FILE
#define D MFS_KIND_DIR

Test(tree, lookup_and_children_sorted)
{
	/* deliberately unsorted input, names that sort around '/' */
	const char *paths[] = { "b.txt", "a", "a/z.bin", "a.b", "a/c", "a/c/d.json", "A" };
	enum mfs_kind kinds[] = { F, D, F, F, D, F, F };
	struct mfs_tree *t;
	uint32_t n, m;

	cr_assert_eq(mfs_tree_build(mk(7, paths, kinds), 7, &t), 0);
	cr_assert_eq(t->nodes[0].child_count, 4); /* A, a, a.b, b.txt */
	const char *want[] = { "A", "a", "a.b", "b.txt" };
	for (uint32_t i = 0; i < 4; i++)
		cr_assert_str_eq(t->nodes[t->children[t->nodes[0].child_start + i]].name, want[i]);
	cr_assert_eq(mfs_tree_find(t, "a/c/d.json", &n), 0);
	cr_assert_str_eq(t->nodes[n].e->path, "a/c/d.json");
	cr_assert_eq(mfs_tree_lookup(t, 0, "a.bXX", 3, &m), 0); /* length-bounded name */
	cr_assert_str_eq(t->nodes[m].name, "a.b");
	cr_assert_eq(mfs_tree_find(t, "a/missing", &n), -ENOENT);
	cr_assert_eq(mfs_tree_find(t, "b.txt/x", &n), -ENOTDIR);
	cr_assert_eq(mfs_tree_find(t, "", &n), 0);
	cr_assert_eq(n, 0u);
	cr_assert_eq(t->total_bytes, (100 + 0) + (100 + 2) + (100 + 3) + (100 + 5) + (100 + 6));
	mfs_tree_free(t);
}

Test(tree, orphans_duplicates_and_children_of_files_are_hidden)
{
	const char *paths[] = { "f", "f/under", "nodir/x", "dup", "dup", "ok" };
	enum mfs_kind kinds[] = { F, F, F, F, F, D };
	struct mfs_tree *t;
	uint32_t n;

	cr_assert_eq(mfs_tree_build(mk(6, paths, kinds), 6, &t), 0);
	cr_assert_eq(mfs_tree_find(t, "f/under", &n), -ENOTDIR);
	cr_assert_eq(mfs_tree_find(t, "nodir/x", &n), -ENOENT);
	cr_assert_eq(t->nodes[0].child_count, 3); /* dup (once), f, ok */
	mfs_tree_free(t);
}

Test(tree, large_flat_directory)
{
	size_t count = 100000;
	struct mfs_entry *e = calloc(count + 1, sizeof(*e));
	char name[32];
	struct mfs_tree *t;
	uint32_t n;

	e[0].path = strdup("m");
	e[0].kind = D;
	for (size_t i = 1; i <= count; i++) {
		snprintf(name, sizeof(name), "m/%06zu", (i * 7919) % count);
		e[i].path = strdup(name);
		e[i].kind = F;
		e[i].size = 1;
	}
	cr_assert_eq(mfs_tree_build(e, count + 1, &t), 0);
	cr_assert_eq(mfs_tree_find(t, "m", &n), 0);
	cr_assert_eq(t->nodes[n].child_count, count);
	for (size_t i = 0; i < count; i += 997) {
		snprintf(name, sizeof(name), "m/%06zu", i);
		cr_assert_eq(mfs_tree_find(t, name, &n), 0, "%s", name);
	}
	mfs_tree_free(t);
}

Test(tree, empty)
{
	struct mfs_tree *t;
	uint32_t n;

	cr_assert_eq(mfs_tree_build(NULL, 0, &t), 0);
	cr_assert_eq(t->nodes[0].child_count, 0u);
	cr_assert_eq(mfs_tree_find(t, "x", &n), -ENOENT);
	mfs_tree_free(t);
}
