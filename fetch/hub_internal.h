/*
 * hub_internal.h - fetch/ internals exposed for the unit tests only.
 *
 * What it does: declares the pure parsers behind hub.c (header parsers are
 * in http.h; here the JSON/date/tree validators) so tests can feed them
 * hostile input without a server.
 * What it does not do: nothing here is part of the public fetch API; other
 * modules must use hub.h.
 */
#ifndef MFS_FETCH_HUB_INTERNAL_H
#define MFS_FETCH_HUB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/http.h"
#include "fetch/hub.h"
#include "util/repo.h"

/* Caps on what one listing may contain (a hostile or broken server must
 * not make us loop or eat all memory). */
#define MFS_HUB_TREE_MAX_PAGES 10000
#define MFS_HUB_TREE_MAX_ENTRIES 1000000
/* How many per-entry warnings are logged before only a summary is. */
#define MFS_HUB_TREE_MAX_WARNINGS 20

/* ISO-8601 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" -> unix seconds.
 * 0 or -EINVAL. */
int mfs_hub_parse_iso8601(const char *s, int64_t *out);

/* Parses a repo-info JSON document. 0, -EIO (malformed, sha not 40 hex). */
int mfs_hub_parse_repo_info(const char *json, size_t len, const char *fallback_id,
			    struct mfs_repo_info *out);

/* Accumulates validated tree entries over several pages. */
struct mfs_hub_tree;

int mfs_hub_tree_new(struct mfs_hub_tree **out);
void mfs_hub_tree_free(struct mfs_hub_tree *t);
/* Adds one page (a JSON array of entries). Bad entries are skipped with a
 * warning; the page itself being malformed (not JSON, not an array) is -EIO;
 * going over MFS_HUB_TREE_MAX_ENTRIES is -EIO. */
int mfs_hub_tree_add_page(struct mfs_hub_tree *t, const char *json, size_t len);
/* Number of entries skipped so far (bad, duplicate, conflicting). */
size_t mfs_hub_tree_skipped(const struct mfs_hub_tree *t);
/* Synthesizes missing parent directories, sorts by path (strcmp order) and
 * hands the entries to the caller (free with mfs_entries_free). The builder
 * is left empty. */
int mfs_hub_tree_finish(struct mfs_hub_tree *t, struct mfs_entry **out, size_t *n);

/* Unix seconds of the "Expires=" query parameter of a signed URL. 0 or
 * -ENOENT. */
int mfs_hub_url_expires(const char *url, int64_t *out);

/* errno for an HTTP error status and the hub's X-Error-Code/-Message. */
int mfs_hub_map_status(long status, const char *err_code, const char *err_msg);

/* hub.c's JSON GET (retries, redirects by hand, auth only to the
 * endpoint) for the other files of fetch/: *body malloc'd; *next (if
 * wanted) the absolute Link rel="next" URL or NULL. who names the repo or
 * org in log lines about refused access. */
int mfs_hub_api_get(struct mfs_hub *hub, const struct mfs_repo *who, const char *url,
		    char **body, size_t *blen, char **next);
/* true when url is on the endpoint's own scheme://host:port */
bool mfs_hub_same_origin(const struct mfs_hub *hub, const char *url);
/* the endpoint, without a trailing '/' */
const char *mfs_hub_endpoint(const struct mfs_hub *hub);

#endif
