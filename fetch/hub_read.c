/*
 * hub_read.c - the hub client's file reads: ranged reads and probes of
 * /resolve URLs, and the cache of where a file's bytes live (see hub.h).
 *
 * What it does:
 *   - remembers where a file's bytes live (signed CDN URL or resolve-cache
 *     URL) per (repo, commit, path) until shortly before it expires, so a
 *     block read usually costs one request;
 *   - checks Content-Range/Content-Length before delivering a byte, slices
 *     a 200 answered to a Range request, never delivers a byte twice;
 *   - retries broken transfers, resuming from the last byte delivered,
 *     within fetch_timeout_ms (the exchange, redirect and retry policy are
 *     hub.c's: mfs_hub_follow, mfs_hub_retry_wait).
 * What it does not do: metadata (hub.c, tree.c), verify content digests.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/health.h"
#include "fetch/http.h"
#include "fetch/hub.h"
#include "fetch/hub_internal.h"
#include "util/log.h"
#include "util/size.h"
#include "util/strbuf.h"

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
		renew = now + (mfs_hub_same_origin(hub, url) ? URL_LOCAL_TTL_MS : URL_DEFAULT_TTL_MS);
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

/* Where the hub serves a regular (non-LFS) file's bytes itself:
 * {endpoint}/api/resolve-cache/{type}s/{repo}/{commit}/{path}, what its
 * /resolve answers with a 307 (the query it adds may be dropped:
 * huggingface_hub drops it). */
static char *resolve_cache_url(const struct mfs_hub *hub, const struct mfs_file_ref *f)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	char *path = mfs_hub_encode_path(f->path), *u = NULL;

	if (path &&
	    mfs_strbuf_printf(&sb, "%s/api/resolve-cache/%s/%s/%s/%s", hub->endpoint,
			      mfs_repo_type_api(f->repo->type), f->repo->id, f->commit, path) == 0)
		u = mfs_strbuf_detach(&sb, NULL);
	mfs_strbuf_free(&sb);
	free(path);
	return u;
}

/* The resolve-cache URL of a regular file, once /resolve showed that the
 * hub serves regular files there (else NULL): a small file then costs one
 * request instead of two. */
static char *direct_url(struct mfs_hub *hub, const struct mfs_file_ref *f)
{
	bool known;

	if (f->lfs)
		return NULL;
	pthread_mutex_lock(&hub->mu);
	known = hub->resolve_cache_direct;
	pthread_mutex_unlock(&hub->mu);
	return known ? resolve_cache_url(hub, f) : NULL;
}

/* /resolve redirected regular file f to `next`: when that is exactly its
 * resolve-cache URL (plus a query), the hub keeps to that layout. */
static void learn_direct(struct mfs_hub *hub, const struct mfs_file_ref *f, const char *next)
{
	char *want;
	size_t n = strcspn(next, "?#");

	if (f->lfs || !mfs_hub_same_origin(hub, next) || !(want = resolve_cache_url(hub, f)))
		return;
	if (strlen(want) == n && strncmp(want, next, n) == 0) {
		pthread_mutex_lock(&hub->mu);
		hub->resolve_cache_direct = true;
		pthread_mutex_unlock(&hub->mu);
	}
	free(want);
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
	bool via_resolve;   /* the direct resolve-cache URL failed: ask /resolve */
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
	int hid;             /* health id of the origin last asked */
};

struct hop_ctx {
	struct mfs_hub *hub;
	const struct mfs_file_ref *f;
	struct read_ctx *c;
	bool from_cache;
};

static void read_hop_reset(void *ctx)
{
	struct hop_ctx *h = ctx;

	h->c->req_start = h->c->next;
	h->c->started = false;
	h->c->verdict = 0;
}

/* Where /resolve sent us is remembered (the first hop; later ones are the
 * CDN's business). */
static void read_redirected(void *ctx, int hop, const char *next)
{
	struct hop_ctx *h = ctx;

	if (hop == 0 && !h->from_cache) {
		url_cache_put(h->hub, h->f, next);
		learn_direct(h->hub, h->f, next);
	}
}

/* One attempt at [c->next, c->end): from a remembered URL or /resolve,
 * following redirects by hand. 0 = all delivered, XF_TRANSIENT = retry,
 * other negative = final. */
static int read_attempt(struct mfs_hub *hub, const struct mfs_file_ref *f, struct read_ctx *c,
			int64_t deadline, struct mfs_http_resp *resp, struct attempt_out *ao)
{
	char *url = url_cache_get(hub, f);
	bool direct = false;
	int rc;

	if (!url && !c->via_resolve)
		direct = (url = direct_url(hub, f)) != NULL;
	struct hop_ctx hc = { hub, f, c, url != NULL };
	struct mfs_hub_follow_hooks hooks = { read_hop_reset, read_redirected, &hc };
	bool from_cache = url != NULL;

	ao->last_err = -EIO;
	ao->hint = false;
	ao->immediate = false;
	if (!url)
		url = resolve_url(hub, f);
	if (!url)
		return -ENOMEM;
	{
		struct mfs_http_req req = { .has_range = true, .range_start = c->next,
					    .range_end = c->end - 1, .compressed_ok = false,
					    .body = read_body, .body_ctx = c };
		rc = mfs_hub_follow(hub, &req, &url, resp, deadline, &hooks);
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
		if (mfs_hub_is_redirect(resp->status) && resp->location) {
			rc = -EIO; /* more hops than MAX_HOPS */
			goto out;
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
		/* An error status. A remembered, direct or off-origin (CDN) URL
		 * may just have gone stale: forget it and re-resolve. */
		if ((from_cache || !mfs_hub_same_origin(hub, url)) && resp->status >= 400 &&
		    resp->status < 500 && !mfs_hub_retryable_status(resp->status)) {
			url_cache_drop(hub, f);
			if (direct)
				c->via_resolve = true;
			ao->immediate = true;
			rc = XF_TRANSIENT;
			goto out;
		}
		if (mfs_hub_retryable_status(resp->status)) {
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
			mfs_hub_note_eacces(hub, f->repo, resp);
		goto out;
	}
out:
	ao->hid = mfs_health_id(hub->hs, url);
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
		rc = mfs_hub_retry_wait(hub, ++fails, ao.hint ? &resp : NULL, deadline, ao.last_err,
					ao.hid);
		if (rc < 0)
			break;
	}
	mfs_http_resp_clear(&resp);
	return rc;
}

/* The probe reads no body past its first byte (bodies flow: a server that
 * resets after the headers fails here); a redirect's body is read so the
 * next hop is followed. */
static bool probe_body(void *ctx, const struct mfs_http_resp *r, const char *d, size_t n)
{
	(void)ctx;
	(void)d;
	(void)n;
	return mfs_hub_is_redirect(r->status);
}

struct probe_hop {
	struct mfs_hub *hub;
	struct mfs_http_req *req;
};

/* Per hop: on the hub's own origin a GET of one byte (it must see a body
 * start), elsewhere (the CDN) a HEAD: no content transfer there. */
static void probe_hop(void *ctx)
{
	struct probe_hop *p = ctx;
	bool own = mfs_hub_same_origin(p->hub, p->req->url);

	p->req->head = !own;
	p->req->has_range = own;
	p->req->body = own ? probe_body : NULL;
}

int mfs_hub_probe(struct mfs_hub *hub, const struct mfs_file_ref *f)
{
	struct mfs_http_resp resp;
	int64_t deadline;
	int rc = -EIO, errs = 0, hid;

	if (check_ref(f) < 0)
		return -EINVAL;
	deadline = mfs_now_ms() + (hub->fetch_timeout_ms < MFS_HUB_PROBE_MS ? hub->fetch_timeout_ms
									    : MFS_HUB_PROBE_MS);
	mfs_http_resp_init(&resp);
	for (;;) {
		/* through every redirect: the CDN must answer too (LFS) */
		struct mfs_http_req req = { .range_start = 0, .range_end = 0, .compressed_ok = false };
		struct probe_hop ph = { hub, &req };
		struct mfs_hub_follow_hooks hooks = { .before = probe_hop, .ctx = &ph };
		char *url = resolve_url(hub, f);
		if (!url) {
			rc = -ENOMEM;
			break;
		}
		rc = mfs_hub_follow(hub, &req, &url, &resp, deadline, &hooks);
		hid = mfs_health_id(hub->hs, url);
		bool cdn = !mfs_hub_same_origin(hub, url);
		free(url);
		if (rc == XF_ABORTED && resp.status != 0)
			rc = 0; /* stopped at its first body byte */
		if (rc == XF_STALLED)
			rc = -ETIMEDOUT;
		else if (rc == XF_TRANSIENT || rc == XF_ABORTED)
			rc = mfs_health_up(hub->hs, hid) ? -EIO : -EHOSTDOWN;
		if (rc < 0 || (resp.status >= 200 && resp.status < 300))
			break;
		if (cdn && resp.status >= 400 && resp.status < 500 && resp.status != 429) {
			/* the CDN answered: access is the hub's to refuse, a 403
			 * there is an expired signature a read renews */
			rc = 0;
			break;
		}
		if (resp.status == 429) {
			/* refused for longer than a read may wait: cannot serve */
			long wait = resp.ratelimit_r == 0 && resp.ratelimit_t >= 0 ? resp.ratelimit_t
										    : resp.retry_after_s;
			rc = wait >= 0 && wait * 1000 >= hub->fetch_timeout_ms ? -EAGAIN : -EIO;
			break;
		}
		if (mfs_hub_retryable_status(resp.status)) {
			/* ask again (briefly) until it answers or counts as down */
			if (++errs > 4 || mfs_now_ms() + 100L * errs >= deadline ||
			    !mfs_health_sleep(hub->hs, hid, 100L * errs)) {
				rc = mfs_health_up(hub->hs, hid) ? -EIO : -EHOSTDOWN;
				break;
			}
			continue;
		}
		rc = mfs_hub_map_status(resp.status, resp.err_code, resp.err_msg);
		if (rc == 0)
			rc = -EIO; /* a redirect loop, a 3xx without Location */
		if (rc == -EACCES)
			mfs_hub_note_eacces(hub, f->repo, &resp);
		break;
	}
	mfs_http_resp_clear(&resp);
	return rc;
}
