/*
 * catalog.h - what exists: refs, commits and trees, from the index first
 * and the hub when needed, with the offline rules of docs/architecture.md
 * (Health model).
 *
 * Resolution rules:
 *   - a 40-hex revision is a commit: known to the index -> done; else the
 *     hub confirms it once (immutable afterwards);
 *   - any other revision (a branch, a tag, "" for the default branch) is
 *     answered from the index while younger than ref_ttl_ms, else asked of
 *     the hub; when the hub cannot be reached (down, timed out, offline
 *     mode) the last known commit is used, however old;
 *   - a tree is listed from the hub once per commit and kept in the index
 *     and in memory for the life of the catalog.
 *   - a repo's visibility (private, gated) is recorded as the hub says;
 *     a mirror's answer can only tighten it (a repo known only through
 *     mirrors is recorded private): `modelfs serve` decides what it
 *     serves anonymously from it.
 * A hub that is down (fetch/health.h: its client saw a transport failure
 * or repeated 5xx; back when a background probe gets an answer) is not
 * asked: the caller gets the stale answer or the error at once, so an
 * offline mount does not wait on every lookup.
 *
 * It does not fetch file bytes (blobio.h does) or know about FUSE.
 * Thread-safe.
 */
#ifndef MFS_CORE_CATALOG_H
#define MFS_CORE_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tree.h"
#include "fetch/hub.h"
#include "fetch/source.h"
#include "index/index.h"
#include "util/repo.h"

struct mfs_cat_config {
	int64_t ref_ttl_ms;     /* default 60 000 */
	bool offline;           /* never ask the hub */
	size_t max_trees;       /* trees kept in memory beyond those held or
				 * handed out by mfs_cat_tree; 0 = no bound */
};

struct mfs_catalog;

/* ix is required; hub may be NULL (offline). Neither is owned. */
int mfs_cat_new(struct mfs_ix *ix, struct mfs_hub *hub,
		const struct mfs_cat_config *cfg, struct mfs_catalog **out);
void mfs_cat_free(struct mfs_catalog *cat);

/* rev: "" = default branch. On success commit holds 40 hex and *date_s the
 * commit date (0 if unknown). Errors: -ENOENT (no such repo or revision),
 * -EACCES, -EHOSTDOWN/-ETIMEDOUT/-EIO (hub unreachable and nothing known). */
int mfs_cat_resolve(struct mfs_catalog *cat, const struct mfs_repo *repo,
		    const char *rev, char commit[41], int64_t *date_s);

/* The tree of a resolved commit; valid until mfs_cat_free. */
int mfs_cat_tree(struct mfs_catalog *cat, const struct mfs_repo *repo,
		 const char *commit, const struct mfs_tree **out);
/* The same, valid until mfs_cat_tree_release: with max_trees set, trees
 * nobody holds are freed, least recently used first, beyond max_trees
 * (a server whose clients pick the trees must not keep every one). */
int mfs_cat_tree_hold(struct mfs_catalog *cat, const struct mfs_repo *repo,
		      const char *commit, const struct mfs_tree **out);
void mfs_cat_tree_release(struct mfs_catalog *cat, const struct mfs_tree *t);
/* Trees in memory now (for tests and status). */
size_t mfs_cat_trees_cached(struct mfs_catalog *cat);

/* 1 if the org is known locally or to the hub, 0 if not, -errno if the hub
 * could not say. */
int mfs_cat_org_exists(struct mfs_catalog *cat, enum mfs_repo_type t, const char *org);

/* true when the hub may be asked now (configured, its origin up). */
bool mfs_cat_hub_usable(struct mfs_catalog *cat);

/* Marks the stored tree of commit as possibly missing files (recorded from
 * a local snapshot by `modelfs import` without the hub): the first mount
 * that can reach the hub (or a mirror) replaces it with the listing. */
int mfs_cat_mark_partial(struct mfs_catalog *cat, const struct mfs_repo *repo,
			 const char *commit);

/* The hub (NULL when offline) and the ref TTL, for core/orglist.c, whose
 * listings follow the same rules. */
struct mfs_hub *mfs_cat_hub(struct mfs_catalog *cat);
int64_t mfs_cat_ref_ttl_ms(const struct mfs_catalog *cat);

/* Mirrors to ask for metadata when the hub is down or failing (repo
 * info, trees, org lookups), in order. src is not owned; NULL = none.
 * Ignored in offline mode. Call before the first lookup. */
void mfs_cat_set_mirrors(struct mfs_catalog *cat, struct mfs_srcset *src);

/* Kept for callers reporting a hub outcome: the hub client feeds its
 * health itself (every part of the mount shares that one state). */
void mfs_cat_note_hub(struct mfs_catalog *cat, int rc);

#endif
