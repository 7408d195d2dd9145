/*
 * orglist.c - listing an org's repositories from the hub (see orglist.h).
 *
 * What it does: builds the listing URL, walks the Link rel="next" chain
 * through hub.c's API GET (so retries, redirects and the token rules are
 * the same as every other API call), and hands out the valid names.
 * What it does not do: cache, sort or merge with what the cache knows
 * (core/orglist.c).
 */
#include "fetch/orglist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch/hub_internal.h"
#include "util/json.h"
#include "util/log.h"
#include "util/strbuf.h"

int mfs_orglist_parse_page(const char *json, size_t len, const char *org, mfs_orglist_fn cb,
			   void *ctx, size_t *count)
{
	struct mfs_json *doc = NULL;
	size_t olen = strlen(org);
	int rc = 0;

	if (mfs_json_parse(json, len, &doc) < 0 || mfs_json_type(doc) != MFS_JSON_ARRAY) {
		mfs_json_free(doc);
		return -EIO;
	}
	for (size_t i = 0; i < mfs_json_len(doc) && !rc; i++) {
		const char *id = mfs_json_get_str(mfs_json_at(doc, i), "id");
		/* the hub's org may differ in case from what was typed */
		if (!id || strncasecmp(id, org, olen) || id[olen] != '/' ||
		    !mfs_repo_id_valid(id))
			continue;
		if (++*count > MFS_ORGLIST_MAX_NAMES) {
			rc = -EIO;
			break;
		}
		rc = cb(ctx, id + olen + 1);
	}
	mfs_json_free(doc);
	return rc;
}

int mfs_hub_list_org(struct mfs_hub *hub, enum mfs_repo_type t, const char *org,
		     mfs_orglist_fn cb, void *ctx)
{
	struct mfs_strbuf url = MFS_STRBUF_INIT;
	struct mfs_repo who = { .type = t };
	char *page, *next = NULL, *body = NULL;
	size_t blen, pages = 0, count = 0;
	int rc = 0;

	if (!mfs_repo_name_valid(org))
		return -EINVAL;
	snprintf(who.id, sizeof(who.id), "%s", org);
	if (mfs_strbuf_printf(&url, "%s/api/%s?author=%s", mfs_hub_endpoint(hub),
			      mfs_repo_type_api(t), org) < 0)
		return -ENOMEM;
	page = mfs_strbuf_detach(&url, NULL);
	if (!page)
		return -ENOMEM;
	while (page && !rc) {
		if (++pages > MFS_ORGLIST_MAX_PAGES) {
			mfs_warn("hub: repos of %s: more than %d pages, giving up", org,
				 MFS_ORGLIST_MAX_PAGES);
			rc = -EIO;
			break;
		}
		rc = mfs_hub_api_get(hub, &who, page, &body, &blen, &next);
		if (rc < 0)
			break;
		rc = mfs_orglist_parse_page(body, blen, org, cb, ctx, &count);
		free(body);
		body = NULL;
		free(page);
		page = next;
		next = NULL;
		if (!rc && page && !mfs_hub_same_origin(hub, page)) {
			/* following it would send our token elsewhere */
			mfs_warn("hub: repos of %s: next page link leaves the endpoint, refused", org);
			rc = -EIO;
		}
	}
	free(page);
	mfs_strbuf_free(&url);
	return rc;
}
