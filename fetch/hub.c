/*
 * hub.c - the Hugging Face Hub client: its lifecycle, the policy of one
 * exchange (auth, timeouts, retries, redirects) and the metadata calls:
 * repo info and org lookups (see hub.h for the contract). File reads are
 * in hub_read.c, tree listings in tree.c.
 *
 * What it does:
 *   - builds URLs as huggingface_hub does (docs/architecture.md, "The hub's HTTP API");
 *   - follows redirects by hand, here only (mfs_hub_follow): the token goes
 *     only to URLs on the endpoint's own scheme://host:port, so the CDN
 *     never sees it;
 *   - retries 408/429/5xx and broken transfers with backoff, all within
 *     fetch_timeout_ms.
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

#include "fetch/health.h"
#include "fetch/http.h"
#include "fetch/hub_internal.h"
#include "util/json.h"
#include "util/log.h"
#include "util/size.h"
#include "util/strbuf.h"
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

bool mfs_hub_same_origin(const struct mfs_hub *hub, const char *url)
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

bool mfs_hub_retryable_status(long st)
{
	return st == 408 || st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

/* Explains an access refusal once per repo (reads may hit it per block). */
void mfs_hub_note_eacces(struct mfs_hub *hub, const struct mfs_repo *repo,
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

/* Runs one exchange: the token only to our own origin, timeouts capped by
 * the deadline. Returns 0 when an HTTP response arrived (any status), or a
 * negative transport outcome. */
int mfs_hub_exchange(struct mfs_hub *hub, struct mfs_http_req *req,
			struct mfs_http_resp *resp, int64_t deadline)
{
	int64_t now = mfs_now_ms(), left = deadline - now;
	long stall_ms;
	char shown[256];
	bool connected = false;
	CURLcode cc;
	int rc, hid = mfs_health_id(hub->hs, req->url);

	mfs_http_resp_clear(resp);
	/* No request to an origin known down: the reader fails now, the
	 * background probe brings the origin back. */
	if (!mfs_health_up(hub->hs, hid)) {
		mfs_health_want(hub->hs, hid);
		return -EHOSTDOWN;
	}
	if (left <= 0)
		return -ETIMEDOUT;
	req->token = mfs_hub_same_origin(hub, req->url) ? hub->token : NULL;
	req->proxy = hub->proxy;
	req->timeout_ms = (long)left;
	req->connect_timeout_ms = hub->connect_timeout_ms < left ? hub->connect_timeout_ms : (long)left;
	/* A silent peer is given min(10 s, fetch_timeout / 2) before we call it
	 * a stall: half the budget leaves room to resume on a new connection. */
	stall_ms = hub->fetch_timeout_ms / 2 < 10000 ? hub->fetch_timeout_ms / 2 : 10000;
	req->stall_ms = stall_ms < 1000 ? 1000 : stall_ms;
	/* a black hole is known within half a second, on a reused connection
	 * too: a reader with no other source fails within the second */
	req->dead_ms = MFS_HTTP_DEAD_MS;

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
		if (resp->dead_path)
			rc = -EHOSTDOWN; /* nothing acknowledged there: an outage */
		else if (now >= deadline)
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
	mfs_health_note_exchange(hub->hs, hid, cc, resp, connected);

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
	/* 250 ms doubling: three 5xx in a row (the health threshold) cost
	 * under a second before the origin counts as down */
	w = (int64_t)250 << (n - 1 < 20 ? n - 1 : 20);
	if (w > hub->max_backoff_ms)
		w = hub->max_backoff_ms;
	/* jitter in [3/4 w, w]: clients failing together should not retry together */
	return w - (int64_t)(rand_u32() % (uint32_t)(w / 4 + 1));
}

/* Sleeps before retry `n`, or returns `last_err` when out of retries or
 * when the wait would end past the deadline (sleeping would be useless). */
int mfs_hub_retry_wait(struct mfs_hub *hub, int n, const struct mfs_http_resp *r,
		      int64_t deadline, int last_err, int hid)
{
	int64_t w;

	if (!mfs_health_up(hub->hs, hid))
		return -EHOSTDOWN;
	if (n > hub->max_retries)
		return last_err;
	w = backoff_ms(hub, n, r);
	if (mfs_now_ms() + w >= deadline)
		return last_err;
	/* the wait ends early when the origin goes down meanwhile */
	if (!mfs_health_sleep(hub->hs, hid, w))
		return -EHOSTDOWN;
	pthread_mutex_lock(&hub->mu);
	hub->health.retries++;
	pthread_mutex_unlock(&hub->mu);
	return 0;
}

bool mfs_hub_is_redirect(long st)
{
	return st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
}

/* The one place fetch/ follows redirects (hub_internal.h). */
int mfs_hub_follow(struct mfs_hub *hub, struct mfs_http_req *req, char **url,
		   struct mfs_http_resp *resp, int64_t deadline,
		   const struct mfs_hub_follow_hooks *h)
{
	for (int hops = 0;; hops++) {
		char *nu;
		int rc;

		req->url = *url;
		if (h && h->before)
			h->before(h->ctx);
		rc = mfs_hub_exchange(hub, req, resp, deadline);
		if (rc != 0 || !mfs_hub_is_redirect(resp->status) || !resp->location ||
		    hops >= MAX_HOPS)
			return rc;
		rc = mfs_http_url_join(*url, resp->location, &nu);
		if (rc < 0)
			return rc == -ENOMEM ? -ENOMEM : -EIO;
		if (h && h->redirected)
			h->redirected(h->ctx, hops, nu);
		free(*url);
		*url = nu;
	}
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

static void body_reset(void *ctx)
{
	struct body_buf *b = ctx;

	mfs_strbuf_free(&b->sb);
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
	struct mfs_hub_follow_hooks hooks = { .before = body_reset, .ctx = &bb };
	char *url = NULL;
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
		struct mfs_http_req req = { .compressed_ok = true, .body = collect_body,
					    .body_ctx = &bb };
		rc = mfs_hub_follow(hub, &req, &url, &resp, deadline, &hooks);
		if (rc == XF_ABORTED) {
			rc = bb.too_big ? -EIO : -ENOMEM;
			goto out;
		}
		if (rc == -EHOSTDOWN || rc == -ETIMEDOUT || rc == -ENOMEM || rc == -EIO)
			goto out;
		if (rc == 0) {
			if (resp.status >= 200 && resp.status < 300)
				break;
			if (!mfs_hub_retryable_status(resp.status)) {
				rc = mfs_hub_map_status(resp.status, resp.err_code, resp.err_msg);
				if (rc == 0)
					rc = -EIO; /* a redirect loop or one without Location */
				if (rc == -EACCES && repo)
					mfs_hub_note_eacces(hub, repo, &resp);
				goto out;
			}
			last = -EIO;
		} else {
			last = rc == XF_STALLED ? -ETIMEDOUT : -EIO;
		}
		rc = mfs_hub_retry_wait(hub, ++fails, rc == 0 ? &resp : NULL, deadline, last,
					mfs_health_id(hub->hs, url));
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
	hub->hs = cfg->health;
	if (!hub->hs) {
		rc = mfs_healthset_new(NULL, &hub->hs);
		if (rc < 0)
			goto fail;
		hub->own_hs = true;
	}
	hub->hid = mfs_health_id(hub->hs, hub->endpoint);
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
	if (hub->own_hs)
		mfs_healthset_free(hub->hs);
	if (hub->token) {
		explicit_bzero(hub->token, strlen(hub->token));
		free(hub->token);
	}
	free(hub->endpoint);
	free(hub->proxy);
	pthread_mutex_destroy(&hub->mu);
	free(hub);
}

struct mfs_healthset *mfs_hub_healthset(struct mfs_hub *hub)
{
	return hub ? hub->hs : NULL;
}

int mfs_hub_health_id(struct mfs_hub *hub)
{
	return hub ? hub->hid : -1;
}

bool mfs_hub_up(struct mfs_hub *hub)
{
	return hub && mfs_health_up(hub->hs, hub->hid);
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
		if (page && !mfs_hub_same_origin(hub, page)) {
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
