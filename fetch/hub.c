/*
 * hub.c - the Hugging Face Hub client: repo info, tree listings, org
 * lookups, ranged file reads and probes (see hub.h for the contract).
 *
 * What it does:
 *   - builds URLs as huggingface_hub does (HUB-API.md §1.2);
 *   - follows redirects by hand: the token goes only to URLs on the
 *     endpoint's own scheme://host:port, so the CDN never sees it;
 *   - remembers where a file's bytes live (signed CDN URL or resolve-cache
 *     URL) per (repo, commit, path) until shortly before it expires, so a
 *     block read usually costs one request;
 *   - retries 408/429/5xx and broken transfers with backoff, resuming a
 *     read from the last byte delivered, all within fetch_timeout_ms;
 *   - checks Content-Range/Content-Length before delivering a byte, slices
 *     a 200 answered to a Range request, never delivers a byte twice.
 * What it does not do: store anything on disk, verify content digests
 * (a block read cannot; core/ verifies whole blobs), native Xet.
 */
#include "fetch/hub.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "fetch/http.h"
#include "fetch/hub_internal.h"
#include "util/json.h"
#include "util/log.h"
#include "util/size.h"
#include "util/strbuf.h"

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

	pthread_mutex_t mu;
	struct url_slot urls[URL_CACHE_N];           /* protected by mu */
	uint64_t url_tick;                           /* protected by mu */
	char eacces_seen[EACCES_LOG_N][MFS_REPO_ID_MAX + 12]; /* protected by mu */
	size_t n_eacces_seen;                        /* protected by mu */
	struct mfs_hub_health health;                /* protected by mu */
};

/* ---------------- encoding ---------------- */

static char *encode(const char *s, bool keep_slash)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		/* Python's quote(): letters, digits and "_.-~" are always safe */
		if (isalnum(*p) || *p == '_' || *p == '.' || *p == '-' || *p == '~' ||
		    (keep_slash && *p == '/')) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hx[*p >> 4];
			*o++ = hx[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

char *mfs_hub_encode_rev(const char *rev)
{
	return rev ? encode(rev, false) : NULL;
}

char *mfs_hub_encode_path(const char *path)
{
	return path ? encode(path, true) : NULL;
}

/* ---------------- small helpers ---------------- */

static bool same_origin(const struct mfs_hub *hub, const char *url)
{
	char o[sizeof(hub->origin)];

	return mfs_http_url_origin(url, o, sizeof(o)) == 0 && strcmp(o, hub->origin) == 0;
}

static uint32_t rand_u32(void)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)mfs_now_ms() * 2654435761u;
	return r;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int mfs_hub_map_status(long st, const char *code, const char *msg)
{
	if (st >= 200 && st < 400)
		return 0;
	if (code && (strcmp(code, "RevisionNotFound") == 0 || strcmp(code, "EntryNotFound") == 0))
		return -ENOENT;
	if (code && strcmp(code, "GatedRepo") == 0)
		return -EACCES;
	if (st == 401) {
		if (msg && strstr(msg, "Invalid credentials"))
			return -EACCES;
		/* anonymous: private and missing look the same (never leaked) */
		if (code && strcmp(code, "RepoNotFound") == 0)
			return -ENOENT;
		return -EACCES;
	}
	if (code && strcmp(code, "RepoNotFound") == 0)
		return -ENOENT;
	if (st == 403)
		return -EACCES;
	if (st == 404 || st == 410)
		return -ENOENT;
	return -EIO;
}

static bool retryable_status(long st)
{
	return st == 408 || st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

/* Explains an access refusal once per repo (reads may hit it per block). */
static void note_eacces(struct mfs_hub *hub, const struct mfs_repo *repo,
			const struct mfs_http_resp *r)
{
	char key[MFS_REPO_ID_MAX + 12];
	bool fresh = true;

	snprintf(key, sizeof(key), "%s:%s", mfs_repo_type_api(repo->type), repo->id);
	pthread_mutex_lock(&hub->mu);
	for (size_t i = 0; i < hub->n_eacces_seen; i++)
		if (strcmp(hub->eacces_seen[i], key) == 0)
			fresh = false;
	if (fresh && hub->n_eacces_seen < EACCES_LOG_N)
		memcpy(hub->eacces_seen[hub->n_eacces_seen++], key, sizeof(key));
	pthread_mutex_unlock(&hub->mu);
	if (!fresh)
		return;
	if (r->err_msg && strstr(r->err_msg, "Invalid credentials"))
		mfs_warn("hub: access to %s %s refused: the configured token is invalid "
			 "(check HF_TOKEN)", mfs_repo_type_api(repo->type), repo->id);
	else if (hub->token)
		mfs_warn("hub: access to %s %s refused (HTTP %ld%s%s): the token has no access; "
			 "for a gated repo, request access on the hub", mfs_repo_type_api(repo->type),
			 repo->id, r->status, r->err_code ? " " : "", r->err_code ? r->err_code : "");
	else
		mfs_warn("hub: access to %s %s refused (HTTP %ld%s%s): set HF_TOKEN to a token "
			 "with access", mfs_repo_type_api(repo->type), repo->id, r->status,
			 r->err_code ? " " : "", r->err_code ? r->err_code : "");
}

/* ---------------- one exchange, with the hub's policy ---------------- */

/* Extra transport outcomes of hub_exchange besides -EHOSTDOWN/-ETIMEDOUT. */
#define XF_TRANSIENT (-EAGAIN) /* reset, partial body...: retry */
#define XF_STALLED (-ETIME)    /* one attempt timed out, deadline not reached */
#define XF_ABORTED (-EPIPE)    /* the body callback stopped the transfer */

/* Runs one exchange: the token only to our own origin, timeouts capped by
 * the deadline. Returns 0 when an HTTP response arrived (any status), or a
 * negative transport outcome. */
static int hub_exchange(struct mfs_hub *hub, struct mfs_http_req *req,
			struct mfs_http_resp *resp, int64_t deadline)
{
	int64_t now = mfs_now_ms(), left = deadline - now;
	long stall_ms;
	char shown[256];
	bool connected = false;
	CURLcode cc;
	int rc;

	if (left <= 0)
		return -ETIMEDOUT;
	req->token = same_origin(hub, req->url) ? hub->token : NULL;
	req->proxy = hub->proxy;
	req->timeout_ms = (long)left;
	req->connect_timeout_ms = hub->connect_timeout_ms < left ? hub->connect_timeout_ms : (long)left;
	/* A silent peer is given min(10 s, fetch_timeout / 2) before we call it
	 * a stall: half the budget leaves room to resume on a new connection. */
	stall_ms = hub->fetch_timeout_ms / 2 < 10000 ? hub->fetch_timeout_ms / 2 : 10000;
	req->stall_ms = stall_ms < 1000 ? 1000 : stall_ms;

	mfs_http_url_for_log(req->url, shown, sizeof(shown));
	mfs_debug("hub: %s %s", req->head ? "HEAD" : "GET", shown);
	cc = mfs_http_perform(hub->pool, req, resp, &connected);
	now = mfs_now_ms();

	switch (cc) {
	case CURLE_OK:
		rc = 0;
		break;
	case CURLE_WRITE_ERROR:
		rc = XF_ABORTED;
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		rc = -EHOSTDOWN;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		if (now >= deadline)
			rc = -ETIMEDOUT;
		else if (!connected)
			rc = -EHOSTDOWN; /* connect timeout: nobody answers there */
		else
			rc = XF_STALLED;
		break;
	case CURLE_OUT_OF_MEMORY:
		rc = -ENOMEM;
		break;
	case CURLE_URL_MALFORMAT:
		rc = -EIO;
		break;
	/* CURLE_UNSUPPORTED_PROTOCOL lands in the default: with only http(s)
	 * allowed and every Location checked, it means a garbled reply (e.g.
	 * junk left on a reused connection), which a new attempt may cure. */
	default:
		rc = XF_TRANSIENT;
		break;
	}
	if (rc != 0 && rc != XF_ABORTED)
		mfs_debug("hub: %s: %s", shown, curl_easy_strerror(cc));

	pthread_mutex_lock(&hub->mu);
	hub->health.requests++;
	hub->health.body_bytes += resp->body_bytes;
	if (rc == -EHOSTDOWN || rc == -ETIMEDOUT || rc == XF_STALLED)
		hub->health.last_down_ms = now;
	else if (resp->status != 0)
		hub->health.last_ok_ms = now;
	pthread_mutex_unlock(&hub->mu);
	return rc;
}

/* Wait before retry number `n` (1-based). Server hints win over backoff. */
static int64_t backoff_ms(const struct mfs_hub *hub, int n, const struct mfs_http_resp *r)
{
	int64_t w;

	if (r && r->status == 429 && r->ratelimit_r == 0 && r->ratelimit_t >= 0)
		return ((int64_t)r->ratelimit_t + 1) * 1000;
	if (r && r->retry_after_s >= 0)
		return ((int64_t)r->retry_after_s + 1) * 1000;
	w = (int64_t)1000 << (n - 1 < 20 ? n - 1 : 20);
	if (w > hub->max_backoff_ms)
		w = hub->max_backoff_ms;
	/* jitter in [3/4 w, w]: clients failing together should not retry together */
	return w - (int64_t)(rand_u32() % (uint32_t)(w / 4 + 1));
}

/* Sleeps before retry `n`, or returns `last_err` when out of retries or
 * when the wait would end past the deadline (sleeping would be useless). */
static int retry_wait(struct mfs_hub *hub, int n, const struct mfs_http_resp *r,
		      int64_t deadline, int last_err)
{
	int64_t w;

	if (n > hub->max_retries)
		return last_err;
	w = backoff_ms(hub, n, r);
	if (mfs_now_ms() + w >= deadline)
		return last_err;
	sleep_ms(w);
	pthread_mutex_lock(&hub->mu);
	hub->health.retries++;
	pthread_mutex_unlock(&hub->mu);
	return 0;
}

static bool is_redirect(long st)
{
	return st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
}

/* ---------------- JSON API GETs ---------------- */

struct body_buf {
	struct mfs_strbuf sb;
	bool too_big;
};

static bool collect_body(void *ctx, const struct mfs_http_resp *r, const char *d, size_t n)
{
	struct body_buf *b = ctx;

	if (r->status < 200 || r->status >= 300)
		return true; /* redirect/error bodies: headers say enough */
	if (b->sb.len + n > API_BODY_MAX) {
		b->too_big = true;
		return false;
	}
	return mfs_strbuf_append(&b->sb, d, n) == 0;
}

/* GET a JSON document with redirects (by hand) and retries. On success
 * *body (malloc'd) and, if wanted, *next (Link rel="next", absolute, or
 * NULL) are set. */
static int api_get(struct mfs_hub *hub, const struct mfs_repo *repo, const char *url0,
		   char **body, size_t *blen, char **next)
{
	int64_t deadline = mfs_now_ms() + hub->fetch_timeout_ms;
	struct mfs_http_resp resp;
	struct body_buf bb = { MFS_STRBUF_INIT, false };
	char *url = NULL, *nu;
	int fails = 0, rc, last;

	*body = NULL;
	*blen = 0;
	if (next)
		*next = NULL;
	mfs_http_resp_init(&resp);
	for (;;) {
		free(url);
		url = strdup(url0);
		if (!url) {
			rc = -ENOMEM;
			goto out;
		}
		for (int hops = 0;; hops++) {
			struct mfs_http_req req = { .url = url, .compressed_ok = true,
						    .body = collect_body, .body_ctx = &bb };
			mfs_strbuf_free(&bb.sb);
			rc = hub_exchange(hub, &req, &resp, deadline);
			if (rc != 0 || !is_redirect(resp.status) || !resp.location || hops >= MAX_HOPS)
				break;
			rc = mfs_http_url_join(url, resp.location, &nu);
			if (rc < 0)
				goto out;
			free(url);
			url = nu;
		}
		if (rc == XF_ABORTED) {
			rc = bb.too_big ? -EIO : -ENOMEM;
			goto out;
		}
		if (rc == -EHOSTDOWN || rc == -ETIMEDOUT || rc == -ENOMEM || rc == -EIO)
			goto out;
		if (rc == 0) {
			if (resp.status >= 200 && resp.status < 300)
				break;
			if (!retryable_status(resp.status)) {
				rc = mfs_hub_map_status(resp.status, resp.err_code, resp.err_msg);
				if (rc == 0)
					rc = -EIO; /* a redirect loop or one without Location */
				if (rc == -EACCES && repo)
					note_eacces(hub, repo, &resp);
				goto out;
			}
			last = -EIO;
		} else {
			last = rc == XF_STALLED ? -ETIMEDOUT : -EIO;
		}
		rc = retry_wait(hub, ++fails, rc == 0 ? &resp : NULL, deadline, last);
		if (rc < 0)
			goto out;
	}
	if (next && resp.link_next) {
		char o[sizeof(hub->origin)];
		/* an absolute next URL is followed verbatim (its cursor is opaque);
		 * a relative one is resolved against the page it came from */
		if (mfs_http_url_origin(resp.link_next, o, sizeof(o)) == 0) {
			*next = strdup(resp.link_next);
			rc = *next ? 0 : -ENOMEM;
		} else {
			rc = mfs_http_url_join(url, resp.link_next, next);
			if (rc == -EINVAL)
				rc = -EIO;
		}
		if (rc < 0)
			goto out;
	}
	if (!bb.sb.buf && mfs_strbuf_append(&bb.sb, "", 0) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	*body = mfs_strbuf_detach(&bb.sb, blen);
	rc = *body ? 0 : -ENOMEM;
out:
	mfs_strbuf_free(&bb.sb);
	mfs_http_resp_clear(&resp);
	free(url);
	return rc;
}

/* For the other files of fetch/ (hub_internal.h). */
int mfs_hub_api_get(struct mfs_hub *hub, const struct mfs_repo *who, const char *url,
		    char **body, size_t *blen, char **next)
{
	return api_get(hub, who, url, body, blen, next);
}

bool mfs_hub_same_origin(const struct mfs_hub *hub, const char *url)
{
	return same_origin(hub, url);
}

const char *mfs_hub_endpoint(const struct mfs_hub *hub)
{
	return hub->endpoint;
}

/* ---------------- public: lifecycle ---------------- */

int mfs_hub_new(const struct mfs_hub_config *cfg, struct mfs_hub **out)
{
	struct mfs_hub *hub = NULL;
	size_t n;
	int rc;

	*out = NULL;
	if (!cfg || !cfg->endpoint)
		return -EINVAL;
	hub = calloc(1, sizeof(*hub));
	if (!hub)
		return -ENOMEM;
	if (pthread_mutex_init(&hub->mu, NULL) != 0) {
		free(hub);
		return -ENOMEM;
	}
	hub->endpoint = strdup(cfg->endpoint);
	hub->token = cfg->token && cfg->token[0] ? strdup(cfg->token) : NULL;
	hub->proxy = cfg->proxy ? strdup(cfg->proxy) : NULL;
	if (!hub->endpoint || (cfg->token && cfg->token[0] && !hub->token) ||
	    (cfg->proxy && !hub->proxy)) {
		rc = -ENOMEM;
		goto fail;
	}
	n = strlen(hub->endpoint);
	while (n > 0 && hub->endpoint[n - 1] == '/')
		hub->endpoint[--n] = '\0';
	/* a token in a header must not be able to inject another header */
	if (hub->token && strpbrk(hub->token, "\r\n")) {
		rc = -EINVAL;
		goto fail;
	}
	rc = mfs_http_url_origin(hub->endpoint, hub->origin, sizeof(hub->origin));
	if (rc < 0)
		goto fail;
	hub->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
	hub->fetch_timeout_ms = cfg->fetch_timeout_ms > 0 ? cfg->fetch_timeout_ms : 60000;
	/* 0 means "default" like the other fields; a negative value asks for
	 * no retries at all */
	hub->max_retries = cfg->max_retries > 0 ? cfg->max_retries : (cfg->max_retries < 0 ? 0 : 5);
	hub->max_backoff_ms = cfg->max_backoff_ms > 0 ? cfg->max_backoff_ms : 8000;
	rc = mfs_http_pool_new(&hub->pool);
	if (rc < 0)
		goto fail;
	*out = hub;
	return 0;
fail:
	mfs_hub_free(hub);
	return rc;
}

void mfs_hub_free(struct mfs_hub *hub)
{
	if (!hub)
		return;
	for (size_t i = 0; i < URL_CACHE_N; i++) {
		free(hub->urls[i].path);
		free(hub->urls[i].url);
	}
	mfs_http_pool_free(hub->pool);
	if (hub->token) {
		explicit_bzero(hub->token, strlen(hub->token));
		free(hub->token);
	}
	free(hub->endpoint);
	free(hub->proxy);
	pthread_mutex_destroy(&hub->mu);
	free(hub);
}

void mfs_hub_health(struct mfs_hub *hub, struct mfs_hub_health *h)
{
	pthread_mutex_lock(&hub->mu);
	*h = hub->health;
	pthread_mutex_unlock(&hub->mu);
}

/* ---------------- public: metadata ---------------- */

int mfs_hub_repo_info(struct mfs_hub *hub, const struct mfs_repo *repo, const char *rev,
		      struct mfs_repo_info *out)
{
	struct mfs_strbuf url = MFS_STRBUF_INIT;
	char *enc = NULL, *body = NULL;
	size_t blen;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!repo || !mfs_repo_id_valid(repo->id))
		return -EINVAL;
	mfs_strbuf_printf(&url, "%s/api/%s/%s", hub->endpoint, mfs_repo_type_api(repo->type),
			  repo->id);
	if (rev && rev[0]) {
		enc = mfs_hub_encode_rev(rev);
		if (!enc) {
			rc = -ENOMEM;
			goto out;
		}
		mfs_strbuf_printf(&url, "/revision/%s", enc);
	}
	if (url.err) {
		rc = -ENOMEM;
		goto out;
	}
	rc = api_get(hub, repo, url.buf, &body, &blen, NULL);
	if (rc < 0)
		goto out;
	rc = mfs_hub_parse_repo_info(body, blen, repo->id, out);
	if (rc < 0)
		mfs_warn("hub: unusable repo info for %s (no valid sha)", repo->id);
out:
	free(enc);
	free(body);
	mfs_strbuf_free(&url);
	return rc;
}

int mfs_hub_list_tree(struct mfs_hub *hub, const struct mfs_repo *repo, const char *commit,
		      struct mfs_entry **out, size_t *n)
{
	struct mfs_strbuf url = MFS_STRBUF_INIT;
	struct mfs_hub_tree *t = NULL;
	char *enc = NULL, *body = NULL, *page = NULL, *next = NULL;
	size_t blen, pages = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!repo || !mfs_repo_id_valid(repo->id) || !commit || !commit[0])
		return -EINVAL;
	enc = mfs_hub_encode_rev(commit);
	if (!enc) {
		rc = -ENOMEM;
		goto out;
	}
	mfs_strbuf_printf(&url, "%s/api/%s/%s/tree/%s?recursive=true&expand=false", hub->endpoint,
			  mfs_repo_type_api(repo->type), repo->id, enc);
	if (url.err) {
		rc = -ENOMEM;
		goto out;
	}
	page = mfs_strbuf_detach(&url, NULL);
	rc = mfs_hub_tree_new(&t);
	if (rc < 0)
		goto out;
	/* Each page is one bounded call: a huge repo may need more than
	 * fetch_timeout_ms in all, but no single page may. */
	while (page) {
		if (++pages > MFS_HUB_TREE_MAX_PAGES) {
			mfs_warn("hub: tree of %s has more than %d pages, giving up", repo->id,
				 MFS_HUB_TREE_MAX_PAGES);
			rc = -EIO;
			goto out;
		}
		rc = api_get(hub, repo, page, &body, &blen, &next);
		if (rc < 0)
			goto out;
		rc = mfs_hub_tree_add_page(t, body, blen);
		free(body);
		body = NULL;
		if (rc < 0)
			goto out;
		free(page);
		page = next;
		next = NULL;
		if (page && !same_origin(hub, page)) {
			/* following it would send our token elsewhere or trust a
			 * stranger's listing */
			mfs_warn("hub: tree of %s: next page link leaves the endpoint, refused",
				 repo->id);
			rc = -EIO;
			goto out;
		}
	}
	rc = mfs_hub_tree_finish(t, out, n);
out:
	mfs_hub_tree_free(t);
	free(enc);
	free(body);
	free(page);
	free(next);
	mfs_strbuf_free(&url);
	return rc;
}

int mfs_hub_org_exists(struct mfs_hub *hub, enum mfs_repo_type t, const char *org)
{
	struct mfs_strbuf url = MFS_STRBUF_INIT;
	struct mfs_json *doc = NULL;
	char *body = NULL;
	size_t blen;
	int rc;

	if (!mfs_repo_name_valid(org))
		return -EINVAL;
	if (mfs_strbuf_printf(&url, "%s/api/%s?author=%s&limit=1", hub->endpoint,
			      mfs_repo_type_api(t), org) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	/* Named like a repo so an access refusal (an invalid token) is
	 * explained in the log like any other. */
	struct mfs_repo who = { .type = t };
	snprintf(who.id, sizeof(who.id), "%s", org);
	rc = api_get(hub, &who, url.buf, &body, &blen, NULL);
	if (rc < 0)
		goto out;
	if (mfs_json_parse(body, blen, &doc) < 0 || mfs_json_type(doc) != MFS_JSON_ARRAY) {
		rc = -EIO;
		goto out;
	}
	rc = mfs_json_len(doc) > 0 ? 1 : 0;
out:
	mfs_json_free(doc);
	free(body);
	mfs_strbuf_free(&url);
	return rc;
}

/* ---------------- URL cache ---------------- */

int mfs_hub_url_expires(const char *url, int64_t *out)
{
	const char *q = strchr(url, '?'), *p;

	if (!q)
		return -ENOENT;
	for (p = q + 1; *p;) {
		if (strncmp(p, "Expires=", 8) == 0) {
			int64_t v = 0;
			const char *d = p + 8;
			if (!isdigit((unsigned char)*d))
				return -ENOENT;
			for (; isdigit((unsigned char)*d); d++) {
				if (v > (INT64_MAX / 1000 - 9) / 10)
					return -ENOENT;
				v = v * 10 + (*d - '0');
			}
			if (*d != '\0' && *d != '&' && *d != '#')
				return -ENOENT;
			*out = v;
			return 0;
		}
		p += strcspn(p, "&#");
		if (*p != '&')
			break;
		p++;
	}
	return -ENOENT;
}

static bool slot_matches(const struct url_slot *s, const struct mfs_file_ref *f)
{
	return s->used && s->type == f->repo->type && strcmp(s->repo, f->repo->id) == 0 &&
	       strcmp(s->commit, f->commit) == 0 && strcmp(s->path, f->path) == 0;
}

static void slot_clear(struct url_slot *s)
{
	free(s->path);
	free(s->url);
	memset(s, 0, sizeof(*s));
}

/* malloc'd copy of a still-valid remembered URL, or NULL. */
static char *url_cache_get(struct mfs_hub *hub, const struct mfs_file_ref *f)
{
	int64_t now = mfs_wall_ms();
	char *u = NULL;

	pthread_mutex_lock(&hub->mu);
	for (size_t i = 0; i < URL_CACHE_N; i++) {
		struct url_slot *s = &hub->urls[i];
		if (!slot_matches(s, f))
			continue;
		if (now >= s->renew_wall_ms) {
			slot_clear(s);
		} else {
			s->last_use = ++hub->url_tick;
			u = strdup(s->url);
		}
		break;
	}
	pthread_mutex_unlock(&hub->mu);
	return u;
}

static void url_cache_drop(struct mfs_hub *hub, const struct mfs_file_ref *f)
{
	pthread_mutex_lock(&hub->mu);
	for (size_t i = 0; i < URL_CACHE_N; i++)
		if (slot_matches(&hub->urls[i], f))
			slot_clear(&hub->urls[i]);
	pthread_mutex_unlock(&hub->mu);
}

static void url_cache_put(struct mfs_hub *hub, const struct mfs_file_ref *f, const char *url)
{
	int64_t now = mfs_wall_ms(), exp_s, renew;
	struct url_slot *victim = NULL;
	char *p, *u;

	if (mfs_hub_url_expires(url, &exp_s) == 0)
		renew = exp_s * 1000 - URL_RENEW_MARGIN_MS;
	else
		renew = now + (same_origin(hub, url) ? URL_LOCAL_TTL_MS : URL_DEFAULT_TTL_MS);
	if (renew <= now)
		return; /* already (nearly) expired: use once, don't remember */
	p = strdup(f->path);
	u = strdup(url);
	if (!p || !u) {
		free(p);
		free(u);
		return; /* the cache is an optimisation */
	}
	pthread_mutex_lock(&hub->mu);
	for (size_t i = 0; i < URL_CACHE_N && !victim; i++)
		if (slot_matches(&hub->urls[i], f))
			victim = &hub->urls[i];
	for (size_t i = 0; i < URL_CACHE_N && !victim; i++)
		if (!hub->urls[i].used)
			victim = &hub->urls[i];
	if (!victim) {
		victim = &hub->urls[0];
		for (size_t i = 1; i < URL_CACHE_N; i++)
			if (hub->urls[i].last_use < victim->last_use)
				victim = &hub->urls[i];
	}
	slot_clear(victim);
	victim->used = true;
	victim->type = f->repo->type;
	snprintf(victim->repo, sizeof(victim->repo), "%s", f->repo->id);
	snprintf(victim->commit, sizeof(victim->commit), "%s", f->commit);
	victim->path = p;
	victim->url = u;
	victim->renew_wall_ms = renew;
	victim->last_use = ++hub->url_tick;
	pthread_mutex_unlock(&hub->mu);
}

/* ---------------- reads ---------------- */

static char *resolve_url(const struct mfs_hub *hub, const struct mfs_file_ref *f)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	char *rev = mfs_hub_encode_rev(f->commit), *path = mfs_hub_encode_path(f->path), *u = NULL;

	if (rev && path &&
	    mfs_strbuf_printf(&sb, "%s/%s%s/resolve/%s/%s", hub->endpoint,
			      f->repo->type == MFS_REPO_DATASET ? "datasets/" : "", f->repo->id, rev,
			      path) == 0)
		u = mfs_strbuf_detach(&sb, NULL);
	mfs_strbuf_free(&sb);
	free(rev);
	free(path);
	return u;
}

static int check_ref(const struct mfs_file_ref *f)
{
	if (!f || !f->repo || !mfs_repo_id_valid(f->repo->id) || !f->commit ||
	    !mfs_hex_valid(f->commit, 40) || !f->path || !mfs_path_valid(f->path, strlen(f->path)))
		return -EINVAL;
	return 0;
}

#define READ_DONE 1

struct read_ctx {
	mfs_sink_fn sink;
	void *sink_ctx;
	uint64_t next;      /* next file offset to deliver */
	uint64_t end;       /* exclusive end of the whole read */
	uint64_t size;      /* file size from the listing */
	uint64_t req_start; /* Range start of the current attempt */
	uint64_t pos;       /* file offset of the next incoming body byte */
	bool started;       /* the current 2xx response was validated */
	int verdict;        /* 0, READ_DONE, -EIO (server lied), -ECANCELED */
};

/* Checks a 2xx answer's claims before a single byte of it is delivered. */
static int validate_2xx(struct read_ctx *c, const struct mfs_http_resp *r)
{
	if (r->status == 206) {
		if (!r->has_crange || r->cr_start != c->req_start || r->cr_end != c->end - 1 ||
		    (r->cr_total_known && r->cr_total != c->size) ||
		    (r->content_length >= 0 &&
		     (uint64_t)r->content_length != r->cr_end - r->cr_start + 1))
			return -EIO;
		c->pos = r->cr_start;
		return 0;
	}
	if (r->status == 200) {
		/* Range ignored: the whole file follows; we slice it. */
		if (r->content_length >= 0 && (uint64_t)r->content_length != c->size)
			return -EIO;
		c->pos = 0;
		return 0;
	}
	return -EIO;
}

static bool read_body(void *ctx, const struct mfs_http_resp *r, const char *d, size_t n)
{
	struct read_ctx *c = ctx;

	if (r->status < 200 || r->status >= 300)
		return true; /* redirect or error text: not file bytes */
	if (!c->started) {
		c->started = true;
		c->verdict = validate_2xx(c, r);
		if (c->verdict < 0)
			return false;
	}
	while (n > 0) {
		size_t take;

		if (c->pos < c->next) { /* before what we still need: skip */
			take = c->next - c->pos < n ? (size_t)(c->next - c->pos) : n;
		} else if (c->next >= c->end) {
			/* more than asked: fine to stop a 200, a lie from a 206 */
			c->verdict = r->status == 200 ? READ_DONE : -EIO;
			return false;
		} else {
			take = c->end - c->next < n ? (size_t)(c->end - c->next) : n;
			if (c->sink(c->sink_ctx, c->next, d, take) < 0) {
				c->verdict = -ECANCELED;
				return false;
			}
			c->next += take;
		}
		c->pos += take;
		d += take;
		n -= take;
	}
	if (r->status == 200 && c->next >= c->end) {
		c->verdict = READ_DONE; /* don't download the rest of the file */
		return false;
	}
	return true;
}

/* What one attempt tells the retry loop. */
struct attempt_out {
	int last_err;        /* error to report if we give up now */
	bool hint;           /* resp holds a status worth reading for waits */
	bool immediate;      /* a stale URL was dropped: re-resolve now */
};

/* One attempt at [c->next, c->end): from a remembered URL or /resolve,
 * following redirects by hand. 0 = all delivered, XF_TRANSIENT = retry,
 * other negative = final. */
static int read_attempt(struct mfs_hub *hub, const struct mfs_file_ref *f, struct read_ctx *c,
			int64_t deadline, struct mfs_http_resp *resp, struct attempt_out *ao)
{
	char *url = url_cache_get(hub, f), *nu;
	bool from_cache = url != NULL;
	int rc;

	ao->last_err = -EIO;
	ao->hint = false;
	ao->immediate = false;
	if (!url)
		url = resolve_url(hub, f);
	if (!url)
		return -ENOMEM;
	for (int hops = 0;; hops++) {
		struct mfs_http_req req = { .url = url, .has_range = true, .range_start = c->next,
					    .range_end = c->end - 1, .compressed_ok = false,
					    .body = read_body, .body_ctx = c };
		c->req_start = c->next;
		c->started = false;
		c->verdict = 0;
		rc = hub_exchange(hub, &req, resp, deadline);
		if (rc == XF_ABORTED) {
			if (c->verdict == READ_DONE || c->verdict == -ECANCELED) {
				rc = c->verdict == READ_DONE ? 0 : -ECANCELED;
			} else if (c->verdict == -EIO && c->next < c->end) {
				mfs_debug("hub: %s: response does not match the range asked", f->path);
				rc = XF_TRANSIENT;
			} else {
				/* excess after the whole range was delivered, or out of memory */
				rc = c->verdict == -EIO ? -EIO : -ENOMEM;
			}
			goto out;
		}
		if (rc == XF_STALLED || rc == XF_TRANSIENT) {
			ao->last_err = rc == XF_STALLED ? -ETIMEDOUT : -EIO;
			rc = XF_TRANSIENT;
			goto out;
		}
		if (rc < 0)
			goto out;
		if (is_redirect(resp->status) && resp->location) {
			if (hops >= MAX_HOPS) {
				rc = -EIO;
				goto out;
			}
			rc = mfs_http_url_join(url, resp->location, &nu);
			if (rc < 0) {
				rc = rc == -ENOMEM ? -ENOMEM : -EIO;
				goto out;
			}
			if (hops == 0 && !from_cache)
				url_cache_put(hub, f, nu);
			free(url);
			url = nu;
			continue;
		}
		if (resp->status >= 200 && resp->status < 300) {
			if (!c->started)
				c->verdict = validate_2xx(c, resp);
			if (c->next >= c->end) {
				rc = 0;
			} else {
				/* fewer bytes than asked, or headers that lie: resume */
				rc = XF_TRANSIENT;
			}
			goto out;
		}
		/* An error status. A remembered or off-origin (CDN) URL may just
		 * have gone stale: forget it and re-resolve. */
		if ((from_cache || !same_origin(hub, url)) && resp->status >= 400 &&
		    resp->status < 500 && !retryable_status(resp->status)) {
			url_cache_drop(hub, f);
			ao->immediate = true;
			rc = XF_TRANSIENT;
			goto out;
		}
		if (retryable_status(resp->status)) {
			ao->hint = true;
			rc = XF_TRANSIENT;
			goto out;
		}
		if (resp->status == 416) {
			mfs_warn("hub: %s is shorter than listed (416)", f->path);
			rc = -EIO;
			goto out;
		}
		rc = mfs_hub_map_status(resp->status, resp->err_code, resp->err_msg);
		if (rc == 0)
			rc = -EIO; /* a 3xx without Location, 1xx... */
		if (rc == -EACCES)
			note_eacces(hub, f->repo, resp);
		goto out;
	}
out:
	free(url);
	return rc;
}

int mfs_hub_read(struct mfs_hub *hub, const struct mfs_file_ref *f, uint64_t off, uint64_t len,
		 mfs_sink_fn sink, void *ctx)
{
	int64_t deadline = mfs_now_ms() + hub->fetch_timeout_ms;
	struct read_ctx c = { .sink = sink, .sink_ctx = ctx, .next = off };
	struct mfs_http_resp resp;
	struct attempt_out ao;
	int fails = 0, rc;

	if (check_ref(f) < 0 || !sink || len == 0 || off > f->size || len > f->size - off)
		return -EINVAL;
	c.end = off + len;
	c.size = f->size;
	mfs_http_resp_init(&resp);
	for (;;) {
		uint64_t before = c.next;

		rc = read_attempt(hub, f, &c, deadline, &resp, &ao);
		if (rc != XF_TRANSIENT)
			break;
		if (c.next > before) {
			/* progress: resume at once; a server that keeps making
			 * progress is bounded by the deadline, not the retry count */
			fails = 0;
			pthread_mutex_lock(&hub->mu);
			hub->health.retries++;
			pthread_mutex_unlock(&hub->mu);
			if (mfs_now_ms() >= deadline) {
				rc = -ETIMEDOUT;
				break;
			}
			continue;
		}
		if (ao.immediate && ++fails <= hub->max_retries) {
			pthread_mutex_lock(&hub->mu);
			hub->health.retries++;
			pthread_mutex_unlock(&hub->mu);
			continue;
		}
		if (ao.immediate) {
			rc = ao.last_err;
			break;
		}
		rc = retry_wait(hub, ++fails, ao.hint ? &resp : NULL, deadline, ao.last_err);
		if (rc < 0)
			break;
	}
	mfs_http_resp_clear(&resp);
	return rc;
}

int mfs_hub_probe(struct mfs_hub *hub, const struct mfs_file_ref *f)
{
	struct mfs_http_resp resp;
	long budget = hub->connect_timeout_ms * 2;
	char *url;
	int rc;

	if (check_ref(f) < 0)
		return -EINVAL;
	if (budget > hub->fetch_timeout_ms)
		budget = hub->fetch_timeout_ms;
	url = resolve_url(hub, f);
	if (!url)
		return -ENOMEM;
	mfs_http_resp_init(&resp);
	{
		struct mfs_http_req req = { .url = url, .head = true, .compressed_ok = false };
		rc = hub_exchange(hub, &req, &resp, mfs_now_ms() + budget);
	}
	if (rc == XF_STALLED)
		rc = -ETIMEDOUT;
	else if (rc == XF_TRANSIENT || rc == XF_ABORTED)
		rc = -EIO;
	else if (rc == 0 && !(resp.status >= 200 && resp.status < 400)) {
		rc = mfs_hub_map_status(resp.status, resp.err_code, resp.err_msg);
		if (rc == 0)
			rc = -EIO;
		if (rc == -EACCES)
			note_eacces(hub, f->repo, &resp);
	}
	mfs_http_resp_clear(&resp);
	free(url);
	return rc;
}
