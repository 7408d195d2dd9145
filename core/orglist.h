/*
 * orglist.h - what `ls <mount>/<org>/` lists: the org's repositories.
 *
 * The hub's listing (fetch/orglist.h, every page), kept in memory for the
 * ref TTL, merged with the repos of that org the index knows; with the hub
 * unreachable (down, offline, refusing), the last listing this mount got
 * and the index's repos. Names come sorted, each once.
 * It does not store listings in the index: a repo is only "known" to the
 * cache once it was used. Thread-safe.
 */
#ifndef MFS_CORE_ORGLIST_H
#define MFS_CORE_ORGLIST_H

#include "core/catalog.h"

struct mfs_orgl;

/* cat and ix are not owned. */
int mfs_orgl_new(struct mfs_catalog *cat, struct mfs_ix *ix, struct mfs_orgl **out);
void mfs_orgl_free(struct mfs_orgl *o);

/* cb(ctx, name) per repo name of org; a non-zero return stops. 0 or
 * -ENOMEM (hub errors only shrink the listing to what is known). */
int mfs_orgl_list(struct mfs_orgl *o, enum mfs_repo_type t, const char *org, mfs_ix_name_fn cb,
		  void *ctx);

#endif
