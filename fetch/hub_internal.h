/*
 * hub_internal.h - fetch/ internals exposed for the unit tests only.
 *
 * What it does: declares the pure parsers behind hub.c (header parsers are
 * in http.h; here the JSON/date/tree validators) so tests can feed them
 * hostile input without a server, and what the files of the hub client
 * share (hub.c: exchange, retry and redirect policy, metadata; hub_read.c:
 * file reads and the URL cache; tree.c: listings).
 * What it does not do: nothing here is part of the public fetch API; other
 * modules must use hub.h.
 */
#ifndef MFS_FETCH_HUB_INTERNAL_H
#define MFS_FETCH_HUB_INTERNAL_H

#include <pthread.h>
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

/* ---- shared by hub.c and hub_read.c ---- */

/* Signed/resolved URLs remembered per (repo, commit, path). */
#define URL_CACHE_N 128
/* Renew a signed URL this long before its Expires. */
#define URL_RENEW_MARGIN_MS 30000
/* When a CDN URL carries no Expires we still reuse it for a while; a 403
 * makes us re-resolve anyway. */
#define URL_DEFAULT_TTL_MS (5 * 60 * 1000)
/* Same-origin resolve-cache URLs name the commit: stable, keep longer. */
#define URL_LOCAL_TTL_MS (60 * 60 * 1000)
/* Repos for which an access problem was already explained in the log. */
#define EACCES_LOG_N 64
/* Redirect hops followed by hand in one attempt. */
#define MAX_HOPS 5
/* Largest JSON body accepted for one API response (one tree page). */
#define API_BODY_MAX (256u << 20)

struct url_slot {
	bool used;
	enum mfs_repo_type type;
	char repo[MFS_REPO_ID_MAX];
	char commit[41];
	char *path;
	char *url;
	int64_t renew_wall_ms; /* use until this wall-clock time */
	uint64_t last_use;
};

struct mfs_hub {
	/* immutable after mfs_hub_new */
	char *endpoint;              /* without trailing '/' */
	char origin[512];            /* scheme://host:port of endpoint */
	char *token;                 /* NULL: anonymous. Never logged. */
	char *proxy;                 /* NULL: libcurl's environment */
	long connect_timeout_ms;
	long fetch_timeout_ms;
	long max_backoff_ms;
	int max_retries;
	struct mfs_http_pool *pool;  /* has its own lock */
	struct mfs_healthset *hs;    /* up/down per origin; has its own lock */
	bool own_hs;
	int hid;                     /* health id of the endpoint's origin */

	pthread_mutex_t mu;
	struct url_slot urls[URL_CACHE_N];           /* protected by mu */
	uint64_t url_tick;                           /* protected by mu */
	char eacces_seen[EACCES_LOG_N][MFS_REPO_ID_MAX + 12]; /* protected by mu */
	size_t n_eacces_seen;                        /* protected by mu */
	struct mfs_hub_health health;                /* protected by mu */
	/* /resolve sent a regular file to {endpoint}/api/resolve-cache/
	 * {type}s/{repo}/{commit}/{path}: the other regular files are asked
	 * there directly, one request each. Protected by mu. */
	bool resolve_cache_direct;
};

/* Extra transport outcomes of hub_exchange besides -EHOSTDOWN/-ETIMEDOUT. */
#define XF_TRANSIENT (-EAGAIN) /* reset, partial body...: retry */
#define XF_STALLED (-ETIME)    /* one attempt timed out, deadline not reached */
#define XF_ABORTED (-EPIPE)    /* the body callback stopped the transfer */

/* Runs one exchange: the token only to our own origin, timeouts capped by
 * the deadline. 0 when an HTTP response arrived (any status), or a
 * negative transport outcome (above, or -EHOSTDOWN/-ETIMEDOUT/-ENOMEM).
 * An origin known down (fetch/health.h) is not asked: -EHOSTDOWN at once;
 * every outcome is fed to the origin's health. */
int mfs_hub_exchange(struct mfs_hub *hub, struct mfs_http_req *req,
		     struct mfs_http_resp *resp, int64_t deadline);

/* One request and the redirects it answers, followed by hand (the only
 * place fetch/ follows redirects): every hop goes through mfs_hub_exchange,
 * so the token stays on our origin. *url (malloc'd) is replaced by each
 * hop's target; req->url is set per hop. Returns the last exchange's
 * result, or -ENOMEM/-EIO when a Location cannot be joined; a 3xx left in
 * resp means more than MAX_HOPS hops or no Location. */
struct mfs_hub_follow_hooks {
	void (*before)(void *ctx);   /* before every exchange: reset body state */
	void (*redirected)(void *ctx, int hop, const char *next); /* absolute */
	void *ctx;
};
int mfs_hub_follow(struct mfs_hub *hub, struct mfs_http_req *req, char **url,
		   struct mfs_http_resp *resp, int64_t deadline,
		   const struct mfs_hub_follow_hooks *hooks);

/* Sleeps before retry n (1-based; server hints win over backoff), or
 * returns last_err when out of retries or past the deadline, -EHOSTDOWN
 * when origin hid (of the URL last asked; fetch/health.h) is or goes down
 * (the wait ends then). */
int mfs_hub_retry_wait(struct mfs_hub *hub, int n, const struct mfs_http_resp *r,
		       int64_t deadline, int last_err, int hid);
bool mfs_hub_retryable_status(long st);
bool mfs_hub_is_redirect(long st);
/* Explains an access refusal once per repo. */
void mfs_hub_note_eacces(struct mfs_hub *hub, const struct mfs_repo *repo,
			 const struct mfs_http_resp *r);

#endif
