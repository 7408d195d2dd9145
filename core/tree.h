/*
 * tree.h - one commit's file tree, in memory, for lookups and readdir.
 *
 * Built once from the validated entries of a listing (fetch/ or index/),
 * then immutable: a commit never changes, so no locking is needed to read
 * it and it is kept until the mount ends. Node 0 is the commit's root
 * directory; node i+1 is entries[i]. Children of a directory are a
 * contiguous, name-sorted run of `children`, so a lookup is a binary
 * search and readdir is a slice.
 *
 * It does not fetch, store or validate entries (fetch/ validated them).
 */
#ifndef MFS_CORE_TREE_H
#define MFS_CORE_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "util/repo.h"

struct mfs_tree_node {
	const char *name;            /* last path component ("" for the root) */
	const struct mfs_entry *e;   /* NULL for the root */
	uint32_t parent;             /* node index of the parent (root: 0) */
	uint32_t child_start;        /* index into tree->children */
	uint32_t child_count;
};

struct mfs_tree {
	struct mfs_entry *entries;   /* owned */
	size_t n_entries;
	struct mfs_tree_node *nodes; /* n_entries + 1 */
	uint32_t *children;          /* node indices, grouped per parent */
	uint64_t total_bytes;        /* sum of file sizes */
};

/* Takes ownership of `entries` (even on failure). Entries whose parent is
 * missing or is a file are dropped with a warning (defence in depth). */
int mfs_tree_build(struct mfs_entry *entries, size_t n, struct mfs_tree **out);
void mfs_tree_free(struct mfs_tree *t);

/* Child `name` (len bytes) of directory node `dir`; -ENOENT / -ENOTDIR. */
int mfs_tree_lookup(const struct mfs_tree *t, uint32_t dir, const char *name,
		    size_t len, uint32_t *out);
/* Node for a whole path ("" = root); -ENOENT. */
int mfs_tree_find(const struct mfs_tree *t, const char *path, uint32_t *out);

static inline int mfs_tree_is_dir(const struct mfs_tree *t, uint32_t node)
{
	return node == 0 || t->nodes[node].e->kind == MFS_KIND_DIR;
}

#endif
