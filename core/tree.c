/*
 * tree.c - builds the immutable in-memory tree of a commit (see tree.h).
 *
 * Build cost is O(n log n): entries are sorted by path, a hash table maps
 * each directory path to its node so parents are found in O(1), then the
 * children of every directory are sorted by name once. A 100 000-entry
 * listing builds in a few tens of milliseconds, which is paid once per
 * commit per mount.
 */
#include "core/tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/log.h"

static int entry_cmp(const void *a, const void *b)
{
	const struct mfs_entry *x = a, *y = b;
	return strcmp(x->path, y->path);
}

/* Open-addressing map from a directory path to its node index. */
struct dirmap {
	uint32_t *slots;   /* node index + 1; 0 = empty */
	size_t mask;
};

static uint64_t path_hash(const char *s, size_t len)
{
	return mfs_xxh64(s, len, 0x6d6673);
}

static const char *node_path(const struct mfs_tree *t, uint32_t node)
{
	return node ? t->entries[node - 1].path : "";
}

static void dirmap_put(struct dirmap *m, const struct mfs_tree *t, uint32_t node)
{
	const char *p = node_path(t, node);
	size_t i = path_hash(p, strlen(p)) & m->mask;
	while (m->slots[i])
		i = (i + 1) & m->mask;
	m->slots[i] = node + 1;
}

static int dirmap_get(const struct dirmap *m, const struct mfs_tree *t,
		      const char *p, size_t len, uint32_t *node)
{
	size_t i = path_hash(p, len) & m->mask;
	while (m->slots[i]) {
		const char *q = node_path(t, m->slots[i] - 1);
		if (strlen(q) == len && memcmp(q, p, len) == 0) {
			*node = m->slots[i] - 1;
			return 0;
		}
		i = (i + 1) & m->mask;
	}
	return -ENOENT;
}

/* qsort has no context argument in C17, so children are sorted as
 * (name, node) pairs rather than through a global pointer to the tree. */
struct child_ref { const char *name; uint32_t node; };

static int child_cmp(const void *a, const void *b)
{
	const struct child_ref *x = a, *y = b;
	return strcmp(x->name, y->name);
}

int mfs_tree_build(struct mfs_entry *entries, size_t n, struct mfs_tree **out)
{
	struct mfs_tree *t = NULL;
	struct dirmap m = { 0 };
	struct child_ref *refs = NULL;
	uint32_t *parent_of = NULL;
	size_t cap, dropped = 0;
	int rc = -ENOMEM;

	if (n >= UINT32_MAX - 1) {
		rc = -E2BIG;
		goto fail;
	}
	if (n > 1)
		qsort(entries, n, sizeof(*entries), entry_cmp);
	t = calloc(1, sizeof(*t));
	if (!t)
		goto fail;
	t->entries = entries;
	t->n_entries = n;
	t->nodes = calloc(n + 1, sizeof(*t->nodes));
	t->children = calloc(n + 1, sizeof(*t->children));
	refs = calloc(n + 1, sizeof(*refs));
	parent_of = calloc(n + 1, sizeof(*parent_of));
	for (cap = 16; cap < 2 * (n + 1); cap <<= 1)
		;
	m.slots = calloc(cap, sizeof(*m.slots));
	m.mask = cap - 1;
	if (!t->nodes || !t->children || !refs || !parent_of || !m.slots)
		goto fail;

	t->nodes[0].name = "";
	dirmap_put(&m, t, 0);
	/* In sorted order a directory precedes everything below it ("a" is a
	 * prefix of "a/b"), though unrelated names ("a.b") may sit between
	 * them: parents are found through the hash map, not by position. */
	for (size_t i = 0; i < n; i++) {
		struct mfs_entry *e = &entries[i];
		uint32_t node = (uint32_t)i + 1, parent = 0;
		const char *slash = strrchr(e->path, '/');
		bool ok = true;

		if (slash) {
			size_t plen = (size_t)(slash - e->path);
			ok = dirmap_get(&m, t, e->path, plen, &parent) == 0;
		}
		if (i > 0 && strcmp(entries[i - 1].path, e->path) == 0)
			ok = false; /* duplicate path */
		if (!ok) {
			/* Orphan (parent missing, or parent is a file) or a
			 * duplicate: hide it. Mark it so children are dropped too. */
			t->nodes[node].parent = UINT32_MAX;
			t->nodes[node].e = e;
			t->nodes[node].name = slash ? slash + 1 : e->path;
			dropped++;
			continue;
		}
		t->nodes[node].e = e;
		t->nodes[node].name = slash ? slash + 1 : e->path;
		t->nodes[node].parent = parent;
		t->nodes[parent].child_count++;
		if (e->kind == MFS_KIND_DIR)
			dirmap_put(&m, t, node);
		else
			t->total_bytes += e->size;
	}
	if (dropped)
		mfs_warn("tree: %zu entries without a valid parent were hidden", dropped);

	/* Prefix sums give each directory its run of `children`. */
	uint32_t pos = 0;
	for (size_t i = 0; i <= n; i++) {
		t->nodes[i].child_start = pos;
		pos += t->nodes[i].child_count;
		parent_of[i] = 0;
	}
	for (size_t i = 1; i <= n; i++) {
		uint32_t p = t->nodes[i].parent;
		if (p == UINT32_MAX)
			continue;
		refs[t->nodes[p].child_start + parent_of[p]++] =
			(struct child_ref){ t->nodes[i].name, (uint32_t)i };
	}
	for (size_t i = 0; i <= n; i++) {
		struct mfs_tree_node *d = &t->nodes[i];
		if (d->child_count > 1)
			qsort(refs + d->child_start, d->child_count, sizeof(*refs), child_cmp);
	}
	for (uint32_t i = 0; i < pos; i++)
		t->children[i] = refs[i].node;

	free(refs);
	free(parent_of);
	free(m.slots);
	*out = t;
	return 0;
fail:
	free(refs);
	free(parent_of);
	free(m.slots);
	if (t) {
		free(t->nodes);
		free(t->children);
		free(t);
	}
	mfs_entries_free(entries, n);
	return rc;
}

void mfs_tree_free(struct mfs_tree *t)
{
	if (!t)
		return;
	mfs_entries_free(t->entries, t->n_entries);
	free(t->nodes);
	free(t->children);
	free(t);
}

int mfs_tree_lookup(const struct mfs_tree *t, uint32_t dir, const char *name,
		    size_t len, uint32_t *out)
{
	const struct mfs_tree_node *d = &t->nodes[dir];
	size_t lo = 0, hi;

	if (!mfs_tree_is_dir(t, dir))
		return -ENOTDIR;
	hi = d->child_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t c = t->children[d->child_start + mid];
		const char *cn = t->nodes[c].name;
		int r = strncmp(cn, name, len);
		if (r == 0 && cn[len] != '\0')
			r = 1;
		if (r == 0) {
			*out = c;
			return 0;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

int mfs_tree_find(const struct mfs_tree *t, const char *path, uint32_t *out)
{
	uint32_t node = 0;

	while (*path) {
		const char *slash = strchr(path, '/');
		size_t len = slash ? (size_t)(slash - path) : strlen(path);
		int rc = mfs_tree_lookup(t, node, path, len, &node);
		if (rc)
			return rc;
		path += len + (slash ? 1 : 0);
	}
	*out = node;
	return 0;
}
