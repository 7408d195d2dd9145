/*
 * orglist.h - the repositories an org (or user) publishes, from the hub.
 *
 * GET /api/{models,datasets}?author=<org>, every page: the hub pages the
 * listing with Link rel="next" (absolute URL, opaque cursor), followed
 * verbatim while it stays on the endpoint. Private repos appear when the
 * token sees them (the hub decides). It does not cache (core/orglist.c
 * does) and knows nothing of FUSE.
 */
#ifndef MFS_FETCH_ORGLIST_H
#define MFS_FETCH_ORGLIST_H

#include "fetch/hub.h"

/* Most pages / names one listing may have (a hostile server must not make
 * us loop or eat all memory). */
#define MFS_ORGLIST_MAX_PAGES 10000
#define MFS_ORGLIST_MAX_NAMES 1000000

/* Calls cb(ctx, name) for each repo name (the part after "org/"; ids of
 * another org and invalid names are skipped), page by page, before the
 * next page is asked. cb returning non-zero stops with that value. 0 or
 * the errors of hub.h (-EIO for a malformed page or a next link that
 * leaves the endpoint). */
typedef int (*mfs_orglist_fn)(void *ctx, const char *name);
int mfs_hub_list_org(struct mfs_hub *hub, enum mfs_repo_type t, const char *org,
		     mfs_orglist_fn cb, void *ctx);

/* One page's names (exposed for the unit tests). 0 or -EIO. */
int mfs_orglist_parse_page(const char *json, size_t len, const char *org, mfs_orglist_fn cb,
			   void *ctx, size_t *count);

#endif
