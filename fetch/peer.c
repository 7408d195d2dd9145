/*
 * peer.c - the peer protocol client: content-addressed ranged reads from
 * another `modelfs serve` (GET /blobs/<content id>, Range) - see source.h.
 *
 * What it does: one exchange per call (no retries: the source set fails
 * over to the next source instead, which is faster than waiting on a peer
 * that is going away); checks Content-Range before delivering a byte;
 * accepts a 206 that ends early (the peer has only a prefix) and reports
 * how much arrived; optional hints (repo, commit, path) let a pull-through
 * peer locate the file, which it checks against its own listing.
 * What it does not do: verify content, decide which peer to ask.
 */
#include "fetch/source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/health.h"
#include "fetch/http.h"
#include "util/log.h"
#include "util/repo.h"
#include "util/size.h"
#include "util/strbuf.h"

struct mfs_peer {
	char *base;                  /* without trailing '/' */
	char *token;                 /* NULL: none; never logged */
	char *proxy;
	long connect_timeout_ms;
	long fetch_timeout_ms;
	struct mfs_http_pool *pool;  /* has its own lock */
	struct mfs_healthset *hs;    /* NULL: no health; set before use */
	int hid;
};

int mfs_peer_new(const char *base_url, const char *token, const char *proxy,
		 long connect_timeout_ms, long fetch_timeout_ms, struct mfs_peer **out)
{
	struct mfs_peer *p = calloc(1, sizeof(*p));
	char origin[512];
	size_t n;
	int rc = -ENOMEM;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	if (!base_url || mfs_http_url_origin(base_url, origin, sizeof(origin)) < 0) {
		rc = -EINVAL;
		goto fail;
	}
	p->base = strdup(base_url);
	p->token = token && token[0] ? strdup(token) : NULL;
	p->proxy = proxy ? strdup(proxy) : NULL;
	if (!p->base || (token && token[0] && !p->token) || (proxy && !p->proxy))
		goto fail;
	if (p->token && strpbrk(p->token, "\r\n")) {
		rc = -EINVAL;
		goto fail;
	}
	n = strlen(p->base);
	while (n > 0 && p->base[n - 1] == '/')
		p->base[--n] = '\0';
	p->connect_timeout_ms = connect_timeout_ms > 0 ? connect_timeout_ms : 3000;
	p->fetch_timeout_ms = fetch_timeout_ms > 0 ? fetch_timeout_ms : 60000;
	rc = mfs_http_pool_new(&p->pool);
	if (rc < 0)
		goto fail;
	*out = p;
	return 0;
fail:
	mfs_peer_free(p);
	return rc;
}

void mfs_peer_free(struct mfs_peer *p)
{
	if (!p)
		return;
	mfs_http_pool_free(p->pool);
	if (p->token) {
		explicit_bzero(p->token, strlen(p->token));
		free(p->token);
	}
	free(p->base);
	free(p->proxy);
	free(p);
}

void mfs_peer_set_health(struct mfs_peer *p, struct mfs_healthset *hs)
{
	p->hs = hs;
	p->hid = hs ? mfs_health_id(hs, p->base) : -1;
}

/* A peer known down is not asked: the caller fails over at once. */
static bool peer_down(struct mfs_peer *p)
{
	if (!p->hs || mfs_health_up(p->hs, p->hid))
		return false;
	mfs_health_want(p->hs, p->hid);
	return true;
}

static char *blob_url(const struct mfs_peer *p, const char *id, const struct mfs_file_ref *h)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	char *path = NULL, *u = NULL;

	mfs_strbuf_printf(&sb, "%s/blobs/%s", p->base, id);
	if (h && h->repo && h->commit && h->path && (path = mfs_hub_encode_path(h->path)))
		mfs_strbuf_printf(&sb, "?repo=%s/%s&commit=%s&path=%s",
				  mfs_repo_type_api(h->repo->type), h->repo->id, h->commit, path);
	if (!sb.err)
		u = mfs_strbuf_detach(&sb, NULL);
	mfs_strbuf_free(&sb);
	free(path);
	return u;
}

struct peer_ctx {
	mfs_sink_fn sink;
	void *sink_ctx;
	uint64_t off, end;           /* asked [off, end) */
	uint64_t next;               /* next offset to deliver */
	uint64_t pos;                /* offset of the next body byte */
	uint64_t stop;               /* end of what the answer covers */
	bool started;
	int verdict;                 /* 0, -EIO, -ECANCELED */
};

static bool peer_body(void *ctx, const struct mfs_http_resp *r, const char *d, size_t n)
{
	struct peer_ctx *c = ctx;

	if (r->status != 200 && r->status != 206)
		return true;
	if (!c->started) {
		c->started = true;
		if (r->status == 206) {
			/* a prefix of what we asked is fine; anything else is a lie */
			if (!r->has_crange || r->cr_start != c->off || r->cr_end >= c->end ||
			    r->cr_end < r->cr_start ||
			    (r->content_length >= 0 &&
			     (uint64_t)r->content_length != r->cr_end - r->cr_start + 1)) {
				c->verdict = -EIO;
				return false;
			}
			c->pos = r->cr_start;
			c->stop = r->cr_end + 1;
		} else {
			c->pos = 0;
			c->stop = c->end;
		}
	}
	while (n > 0) {
		size_t take;
		if (c->pos < c->next) {
			take = c->next - c->pos < n ? (size_t)(c->next - c->pos) : n;
		} else if (c->next >= c->stop) {
			if (r->status == 206) {
				c->verdict = -EIO; /* more than the 206 claimed */
				return false;
			}
			return false; /* a 200: we have what we wanted */
		} else {
			take = c->stop - c->next < n ? (size_t)(c->stop - c->next) : n;
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
	return !(r->status == 200 && c->next >= c->stop);
}

static int map_curl(CURLcode cc, bool connected)
{
	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTDOWN;
	case CURLE_OPERATION_TIMEDOUT:
		return connected ? -ETIMEDOUT : -EHOSTDOWN;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static int map_status(long st)
{
	if (st == 404 || st == 410)
		return -ENOENT;
	if (st == 401 || st == 403)
		return -EACCES;
	if (st == 416)
		return -ENOENT; /* it does not have those bytes */
	return -EIO;
}

/* What every request to a peer carries: its URL, the peer token (peers
 * are never sent the hub token), the proxy and the connect bound. */
static void peer_req(const struct mfs_peer *p, struct mfs_http_req *req, const char *url)
{
	req->url = url;
	req->token = p->token;
	req->proxy = p->proxy;
	req->connect_timeout_ms = p->connect_timeout_ms;
	req->dead_ms = MFS_HTTP_DEAD_MS;
}

/* What an exchange tells the health set. A timeout after the peer's TCP
 * took the connection and acknowledged the request (no dead path) is the
 * reader's bound running out, not an outage: a pull-through peer busy
 * fetching the bytes itself is slow, and taking it down would send every
 * other reader of those bytes to the hub. Only that reader fails over.
 * (The hub keeps its stricter rule: a silent CDN is down.) */
static void peer_note(struct mfs_peer *p, CURLcode cc, const struct mfs_http_resp *r,
		      bool connected)
{
	if (cc == CURLE_OPERATION_TIMEDOUT && connected && !r->dead_path)
		return;
	mfs_health_note_exchange(p->hs, p->hid, cc, r, connected);
}

int mfs_peer_read(struct mfs_peer *p, const char *content_id, const struct mfs_file_ref *hint,
		  uint64_t off, uint64_t len, mfs_sink_fn sink, void *ctx, uint64_t *got)
{
	struct peer_ctx c = { .sink = sink, .sink_ctx = ctx, .off = off, .end = off + len,
			      .next = off };
	struct mfs_http_resp resp;
	struct mfs_http_req req = { 0 };
	size_t idlen = content_id ? strlen(content_id) : 0;
	bool connected = false;
	CURLcode cc;
	char *url;
	int rc;

	*got = 0;
	if ((idlen != 40 && idlen != 64) || !mfs_hex_valid(content_id, idlen) || len == 0)
		return -EINVAL;
	if (peer_down(p))
		return -EHOSTDOWN;
	url = blob_url(p, content_id, hint);
	if (!url)
		return -ENOMEM;
	mfs_http_resp_init(&resp);
	peer_req(p, &req, url);
	req.has_range = true;
	req.range_start = off;
	req.range_end = off + len - 1;
	req.timeout_ms = p->fetch_timeout_ms;
	/* a peer that goes quiet is left quickly: another source can serve */
	req.stall_ms = p->fetch_timeout_ms / 4 < 5000 ? p->fetch_timeout_ms / 4 : 5000;
	if (req.stall_ms < 1000)
		req.stall_ms = 1000;
	req.body = peer_body;
	req.body_ctx = &c;
	cc = mfs_http_perform(p->pool, &req, &resp, &connected);
	peer_note(p, cc, &resp, connected);
	*got = c.next - off;
	if (c.verdict == -ECANCELED) {
		rc = -ECANCELED;
	} else if (c.verdict < 0) {
		rc = -EIO;
	} else if (cc == CURLE_WRITE_ERROR && resp.status == 200 && c.next >= c.end) {
		rc = 0; /* we stopped a 200 once we had our range */
	} else if ((rc = map_curl(cc, connected)) < 0) {
		/* a break: bytes already delivered stay delivered */
	} else if (resp.status == 200 || resp.status == 206) {
		rc = c.next > off ? 0 : -EIO;
	} else {
		rc = map_status(resp.status);
	}
	mfs_http_resp_clear(&resp);
	free(url);
	return rc;
}

int mfs_peer_probe(struct mfs_peer *p, const char *content_id, const struct mfs_file_ref *hint)
{
	struct mfs_http_resp resp;
	struct mfs_http_req req = { 0 };
	bool connected = false;
	CURLcode cc;
	char *url;
	int rc;

	if (peer_down(p))
		return -EHOSTDOWN;
	url = blob_url(p, content_id, hint);
	if (!url)
		return -ENOMEM;
	mfs_http_resp_init(&resp);
	peer_req(p, &req, url);
	req.head = true;
	/* an open() waits on this: bounded like the hub's probe */
	req.timeout_ms = MFS_HUB_PROBE_MS;
	if (req.connect_timeout_ms > req.timeout_ms)
		req.connect_timeout_ms = req.timeout_ms;
	cc = mfs_http_perform(p->pool, &req, &resp, &connected);
	peer_note(p, cc, &resp, connected);
	rc = map_curl(cc, connected);
	if (rc == 0 && resp.status != 200)
		rc = map_status(resp.status);
	mfs_http_resp_clear(&resp);
	free(url);
	return rc;
}

/* ---- the peer kind of source (source.h) ---------------------------------- */

static int src_peer_read(void *conn, const struct mfs_src_read *rq, uint64_t off, uint64_t len,
			 mfs_sink_fn sink, void *ctx)
{
	uint64_t got; /* the set counts what reached its sink itself */

	return mfs_peer_read(conn, rq->content_id, &rq->file, off, len, sink, ctx, &got);
}

static int src_peer_probe(void *conn, const struct mfs_src_read *rq)
{
	return mfs_peer_probe(conn, rq->content_id, &rq->file);
}

static void src_peer_destroy(void *conn)
{
	mfs_peer_free(conn);
}

const struct mfs_src_ops mfs_src_peer_ops = {
	.kind = MFS_SRC_PEER,
	.read = src_peer_read,
	.probe = src_peer_probe,
	.destroy = src_peer_destroy,
	.by_content_id = true,
};

struct doc_ctx {
	struct mfs_strbuf sb;
	size_t max;
	bool too_big;
};

static bool doc_body(void *ctx, const struct mfs_http_resp *r, const char *d, size_t n)
{
	struct doc_ctx *c = ctx;

	if (r->status != 200)
		return true;
	if (c->sb.len + n > c->max) {
		c->too_big = true;
		return false;
	}
	mfs_strbuf_append(&c->sb, d, n);
	return !c->sb.err;
}

int mfs_peer_get(struct mfs_peer *p, const char *path, size_t max, uint8_t **out, size_t *len)
{
	struct doc_ctx c = { .sb = MFS_STRBUF_INIT, .max = max };
	struct mfs_http_resp resp;
	struct mfs_http_req req = { 0 };
	struct mfs_strbuf u = MFS_STRBUF_INIT;
	bool connected = false;
	CURLcode cc;
	int rc;

	*out = NULL;
	*len = 0;
	mfs_strbuf_printf(&u, "%s%s", p->base, path);
	if (u.err) {
		mfs_strbuf_free(&u);
		return -ENOMEM;
	}
	mfs_http_resp_init(&resp);
	peer_req(p, &req, u.buf);
	req.timeout_ms = p->fetch_timeout_ms;
	req.body = doc_body;
	req.body_ctx = &c;
	cc = mfs_http_perform(p->pool, &req, &resp, &connected);
	if (c.too_big || c.sb.err)
		rc = c.too_big ? -EFBIG : -ENOMEM;
	else if ((rc = map_curl(cc, connected)) == 0 && resp.status != 200)
		rc = map_status(resp.status);
	if (rc == 0) {
		*len = c.sb.len;
		*out = c.sb.len ? (uint8_t *)mfs_strbuf_detach(&c.sb, NULL) : calloc(1, 1);
		if (!*out)
			rc = -ENOMEM;
	}
	mfs_strbuf_free(&c.sb);
	mfs_strbuf_free(&u);
	mfs_http_resp_clear(&resp);
	return rc;
}
