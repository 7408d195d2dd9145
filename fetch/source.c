/*
 * source.c - the source set: peers, mirrors and the hub behind one read
 * call, with ordering, failover, demotion and health (see source.h).
 *
 * Ordering of one read (built fresh per request, cheap: a handful of
 * sources):
 *   1. peers, by rendezvous score of (peer origin, content id), highest
 *      first; when the set knows its own URL (a serve node), the peers
 *      ranked below itself are not asked - so a request only ever travels
 *      to a peer ranked higher for that blob and cluster requests cannot
 *      loop, while every node agrees which peer owns a blob;
 *   2. the hub and the mirrors (mirrors first with prefer_mirror);
 *   3. a source whose origin is down (fetch/health.h) is not asked at
 *      all - no reader waits on it; the health set's prober brings it
 *      back, and a reader that wanted it brings that probe forward;
 *   4. a source caught sending bad bytes goes last during its grace
 *      period (not asked at all, unless it is the hub).
 * Like CernVM-FS: bounded failovers per request.
 *
 * Each source is an ops table (source.h: peers in peer.c, mirrors and the
 * hub in src_hub.c) and an opaque connection; nothing here branches on
 * how a kind talks to its server.
 *
 * Locking: `mu` guards every source's health fields; it is never held
 * across network I/O.
 */
#include "fetch/source.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch/health.h"
#include "fetch/http.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/size.h"

/* Bad bytes cost a source longer than a transport error. */
#define BAD_DATA_FACTOR 4

struct src {
	const struct mfs_src_ops *ops;
	void *conn;                   /* owned when ops->destroy */
	enum mfs_src_kind kind;       /* ops->kind */
	char url[256];                /* for logs and stats */
	char origin[512];             /* scheme://host:port, for rendezvous */
	int hid;                      /* origin in mfs_srcset.hs; immutable */
	/* health, protected by mfs_srcset.mu */
	struct mfs_src_stats st;
	int64_t demoted_until;        /* monotonic ms; 0 = not demoted */
	bool liar;                    /* demoted for bad data */
};

struct mfs_srcset {
	int64_t demote_ms;
	int max_sources;
	bool prefer_mirror;
	char self_origin[512];        /* "" when not a serve node */
	int hub_idx;                  /* -1 when no hub */
	size_t n;
	size_t n_mirrors;
	int mirror_idx[MFS_SRC_MAX];
	struct src src[MFS_SRC_MAX];
	struct mfs_healthset *hs;     /* up/down per origin; has its own lock */
	bool own_hs;                  /* no hub: the set made it */
	pthread_mutex_t mu;
};

struct mfs_healthset *mfs_srcset_healthset(struct mfs_srcset *s)
{
	return s ? s->hs : NULL;
}

const char *mfs_src_kind_name(enum mfs_src_kind k)
{
	return k == MFS_SRC_PEER ? "peer" : k == MFS_SRC_MIRROR ? "mirror" : "hub";
}

uint64_t mfs_src_rendezvous(const char *url, const char *content_id)
{
	/* Highest random weight: hash of both; the origin is normalised so
	 * "http://A:80/" and "http://a" agree on every node. */
	char o[512], buf[640];
	int n;

	if (mfs_http_url_origin(url, o, sizeof(o)) < 0)
		snprintf(o, sizeof(o), "%s", url);
	n = snprintf(buf, sizeof(buf), "%s|%s", o, content_id);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	return mfs_xxh64(buf, (size_t)n, 0x6d6f64656c6673ull);
}

static void url_for_stats(const char *url, char *out, size_t cap)
{
	mfs_http_url_for_log(url, out, cap);
	/* no user:password@ in stats or logs */
	char *at = strchr(out, '@'), *sl = strstr(out, "://");
	if (at && sl && at > sl)
		memmove(sl + 3, at + 1, strlen(at + 1) + 1);
}

int mfs_srcset_add(struct mfs_srcset *s, const struct mfs_src_ops *ops, void *conn,
		   const char *url)
{
	struct src *x;
	int rc = -E2BIG;

	if (s->n >= MFS_SRC_MAX)
		goto fail;
	x = &s->src[s->n];
	memset(x, 0, sizeof(*x));
	rc = -EINVAL;
	if (mfs_http_url_origin(url, x->origin, sizeof(x->origin)) < 0)
		goto fail;
	x->ops = ops;
	x->conn = conn;
	x->kind = ops->kind;
	url_for_stats(url, x->url, sizeof(x->url));
	memcpy(x->st.url, x->url, sizeof(x->st.url));
	x->st.kind = ops->kind;
	if (ops->kind == MFS_SRC_HUB)
		s->hub_idx = (int)s->n;
	else if (ops->kind == MFS_SRC_MIRROR)
		s->mirror_idx[s->n_mirrors++] = (int)s->n;
	x->hid = mfs_health_id(s->hs, url);
	s->n++;
	return 0;
fail:
	if (ops->destroy)
		ops->destroy(conn);
	return rc;
}

int mfs_srcset_new(const struct mfs_srcset_config *cfg, struct mfs_hub *hub,
		   struct mfs_srcset **out)
{
	struct mfs_srcset *s = calloc(1, sizeof(*s));
	char hub_origin[512] = "";
	long cto, fto;
	int rc = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	s->hub_idx = -1;
	s->demote_ms = cfg->demote_ms > 0 ? cfg->demote_ms : 30000;
	s->max_sources = cfg->max_sources_per_read > 0 ? cfg->max_sources_per_read : 4;
	s->prefer_mirror = cfg->prefer_mirror;
	cto = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 3000;
	fto = cfg->fetch_timeout_ms > 0 ? cfg->fetch_timeout_ms : 60000;
	if (cfg->self_url && cfg->self_url[0] &&
	    mfs_http_url_origin(cfg->self_url, s->self_origin, sizeof(s->self_origin)) < 0) {
		rc = -EINVAL;
		goto fail;
	}
	if (cfg->hub_endpoint)
		(void)mfs_http_url_origin(cfg->hub_endpoint, hub_origin, sizeof(hub_origin));
	/* one health state per origin, shared by the hub client, the mirrors'
	 * clients and the peers: a CDN host or a mirror on the hub's origin
	 * is the same host whoever asks it */
	s->hs = mfs_hub_healthset(hub);
	if (!s->hs) {
		rc = mfs_healthset_new(NULL, &s->hs);
		if (rc < 0)
			goto fail;
		s->own_hs = true;
	}

	for (size_t i = 0; i < cfg->n_peers; i++) {
		char o[512];
		if (mfs_http_url_origin(cfg->peers[i], o, sizeof(o)) < 0) {
			mfs_error("bad peer URL '%s'", cfg->peers[i]);
			rc = -EINVAL;
			goto fail;
		}
		if (s->self_origin[0] && strcmp(o, s->self_origin) == 0)
			continue; /* a node listed in its own peer list */
		struct mfs_peer *p;
		rc = mfs_peer_new(cfg->peers[i], cfg->peer_token, cfg->proxy, cto, fto, &p);
		if (rc < 0)
			goto fail;
		mfs_peer_set_health(p, s->hs);
		rc = mfs_srcset_add(s, &mfs_src_peer_ops, p, cfg->peers[i]);
		if (rc < 0)
			goto fail;
	}
	for (size_t i = 0; i < cfg->n_mirrors; i++) {
		struct mfs_hub_config hc = {
			.endpoint = cfg->mirrors[i], .connect_timeout_ms = cto,
			.fetch_timeout_ms = fto, .max_backoff_ms = 1000, .proxy = cfg->proxy,
			/* fail over to the next source rather than retry for long */
			.max_retries = 1, .health = s->hs,
		};
		struct mfs_hub *mh;
		char o[512];
		if (mfs_http_url_origin(cfg->mirrors[i], o, sizeof(o)) < 0) {
			mfs_error("bad mirror URL '%s'", cfg->mirrors[i]);
			rc = -EINVAL;
			goto fail;
		}
		/* the hub token never leaves the hub's origin */
		hc.token = hub_origin[0] && strcmp(o, hub_origin) == 0 ? cfg->hub_token
								       : cfg->mirror_token;
		rc = mfs_hub_new(&hc, &mh);
		if (rc < 0)
			goto fail;
		rc = mfs_srcset_add(s, &mfs_src_mirror_ops, mh, cfg->mirrors[i]);
		if (rc < 0)
			goto fail;
	}
	if (hub) {
		rc = mfs_srcset_add(s, &mfs_src_hub_ops, hub,
				    cfg->hub_endpoint ? cfg->hub_endpoint : "http://hub");
		if (rc < 0)
			goto fail;
		s->src[s->n - 1].hid = mfs_hub_health_id(hub);
	}
	*out = s;
	return 0;
fail:
	mfs_srcset_free(s);
	return rc;
}

void mfs_srcset_free(struct mfs_srcset *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->src[i].ops->destroy)
			s->src[i].ops->destroy(s->src[i].conn);
	if (s->own_hs)
		mfs_healthset_free(s->hs);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

size_t mfs_srcset_count(const struct mfs_srcset *s)
{
	return s ? s->n : 0;
}

int mfs_srcset_hub_index(const struct mfs_srcset *s)
{
	return s ? s->hub_idx : -1;
}

size_t mfs_srcset_n_mirrors(const struct mfs_srcset *s)
{
	return s ? s->n_mirrors : 0;
}

struct mfs_hub *mfs_srcset_mirror_hub(struct mfs_srcset *s, size_t i)
{
	/* mirrors are HF-compatible endpoints: their conn is a hub client */
	return s && i < s->n_mirrors ? (struct mfs_hub *)s->src[s->mirror_idx[i]].conn : NULL;
}

/* ---- ordering ------------------------------------------------------------ */

struct ranked {
	int idx;
	uint64_t score;
};

static int by_score_desc(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	return x->score < y->score ? 1 : x->score > y->score ? -1 : 0;
}

/* Fills order[] with source indices for this request; returns the count. */
static int plan(struct mfs_srcset *s, const struct mfs_src_read *rq, int order[MFS_SRC_MAX])
{
	struct ranked peers[MFS_SRC_MAX + 1];
	int first[MFS_SRC_MAX], last[MFS_SRC_MAX];
	int nfirst = 0, nlast = 0, np = 0, n = 0;
	int64_t now = mfs_now_ms();

	if (!rq->skip_peers && rq->content_id) {
		for (size_t i = 0; i < s->n; i++)
			if (s->src[i].ops->by_content_id)
				peers[np++] = (struct ranked){ (int)i,
					mfs_src_rendezvous(s->src[i].origin, rq->content_id) };
		if (s->self_origin[0])
			peers[np++] = (struct ranked){ -1,
				mfs_src_rendezvous(s->self_origin, rq->content_id) };
		qsort(peers, (size_t)np, sizeof(peers[0]), by_score_desc);
	}
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < np; i++) {
		struct src *x;
		if (peers[i].idx < 0)
			break; /* ourselves: peers below us are not asked */
		x = &s->src[peers[i].idx];
		if (!mfs_health_up(s->hs, x->hid)) {
			mfs_health_want(s->hs, x->hid);
			continue; /* down: not asked at all, no reader waits on it */
		}
		if (x->demoted_until > now) {
			if (!x->liar)
				last[nlast++] = peers[i].idx;
		} else {
			first[nfirst++] = peers[i].idx;
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		/* pass 0: the preferred kind, pass 1: the other */
		bool want_mirror = (pass == 0) == s->prefer_mirror;
		for (size_t i = 0; i < s->n; i++) {
			struct src *x = &s->src[i];
			if (x->ops->by_content_id || (x->kind == MFS_SRC_MIRROR) != want_mirror)
				continue;
			if (x->kind == MFS_SRC_HUB && rq->skip_hub) {
				/* known down by the caller: still a reader wanting it */
				mfs_health_want(s->hs, x->hid);
				continue;
			}
			if (!mfs_health_up(s->hs, x->hid)) {
				mfs_health_want(s->hs, x->hid);
				continue;
			}
			if (x->demoted_until > now) {
				if (!x->liar || x->kind == MFS_SRC_HUB)
					last[nlast++] = (int)i;
			} else {
				first[nfirst++] = (int)i;
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < nfirst && n < s->max_sources; i++)
		order[n++] = first[i];
	for (int i = 0; i < nlast && n < s->max_sources; i++)
		order[n++] = last[i];
	return n;
}

/* ---- health -------------------------------------------------------------- */

static void note(struct mfs_srcset *s, int i, int rc, uint64_t bytes, int64_t took_ms)
{
	struct src *x = &s->src[i];
	int64_t now = mfs_now_ms();

	/* Up/down is the health set's business (fed by the clients with what
	 * the transport saw); here only the counters for status. */
	pthread_mutex_lock(&s->mu);
	x->st.requests++;
	x->st.bytes += bytes;
	x->st.latency_ms = x->st.latency_ms == 0 ? (double)took_ms
						 : 0.8 * x->st.latency_ms + 0.2 * (double)took_ms;
	if (bytes >= 65536 && took_ms > 0) {
		double bps = (double)bytes * 1000.0 / (double)took_ms;
		x->st.throughput_bps = x->st.throughput_bps == 0 ? bps
					: 0.8 * x->st.throughput_bps + 0.2 * bps;
	}
	if (rc == 0 || rc == -ECANCELED) {
		x->st.last_ok_ms = now;
		if (!x->liar)
			x->demoted_until = 0;
	} else if (rc == -ENOENT) {
		x->st.not_found++;
		x->st.last_ok_ms = now; /* it answered */
	} else if (rc == -EACCES) {
		x->st.last_ok_ms = now;
	} else {
		x->st.errors++;
		x->st.last_err_ms = now;
	}
	pthread_mutex_unlock(&s->mu);
}

void mfs_srcset_demote(struct mfs_srcset *s, int i, const char *why)
{
	struct src *x;

	if (!s || i < 0 || (size_t)i >= s->n)
		return;
	x = &s->src[i];
	pthread_mutex_lock(&s->mu);
	x->st.bad_data++;
	x->st.demotions++;
	x->st.last_err_ms = mfs_now_ms();
	x->demoted_until = mfs_now_ms() + s->demote_ms * BAD_DATA_FACTOR;
	x->liar = true;
	pthread_mutex_unlock(&s->mu);
	mfs_warn("source %s %s sent bad data (%s); demoted for %lld s",
		 mfs_src_kind_name(x->kind), x->url, why ? why : "verification failed",
		 (long long)(s->demote_ms * BAD_DATA_FACTOR / 1000));
}

bool mfs_srcset_demoted(struct mfs_srcset *s, int i)
{
	bool d;

	if (!s || i < 0 || (size_t)i >= s->n)
		return false;
	pthread_mutex_lock(&s->mu);
	d = s->src[i].demoted_until > mfs_now_ms();
	pthread_mutex_unlock(&s->mu);
	return d;
}

size_t mfs_srcset_stats(struct mfs_srcset *s, struct mfs_src_stats *out, size_t cap)
{
	int64_t now = mfs_now_ms();

	if (!s)
		return 0;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n && i < cap; i++) {
		out[i] = s->src[i].st;
		out[i].demoted_for_ms = s->src[i].demoted_until > now ?
					s->src[i].demoted_until - now : 0;
	}
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < s->n && i < cap; i++) {
		struct mfs_health_snap h;
		out[i].up = true;
		if (mfs_health_get(s->hs, s->src[i].hid, &h) == 0) {
			out[i].up = h.up;
			out[i].down_since_wall_ms = h.down_since_wall_ms;
			out[i].next_probe_in_ms = h.next_probe_in_ms;
			memcpy(out[i].last_error, h.last_error, sizeof(out[i].last_error));
		}
	}
	return s->n;
}

/* ---- reads --------------------------------------------------------------- */

struct wrap {
	mfs_src_sink_fn sink;
	void *ctx;
	int src;
	uint64_t next;
};

static int wrap_sink(void *vctx, uint64_t off, const void *data, size_t len)
{
	struct wrap *w = vctx;
	int rc = w->sink(w->ctx, w->src, off, data, len);

	if (rc == 0)
		w->next = off + len;
	return rc;
}

/* Error precedence when every source failed: an answer about the file
 * (no access, no such file) says more than "could not connect". */
static int worse(int have, int rc, const struct mfs_src_ops *ops)
{
	if (have == -EACCES)
		return have;
	if (rc == -EACCES)
		return rc;
	if (rc == -ENOENT && ops->by_content_id)
		return have; /* a peer without the blob says nothing about it */
	if (have == -ENOENT)
		return have;
	if (rc == -ENOENT)
		return rc;
	if (have == -EHOSTDOWN || have == 0)
		return rc;
	return have;
}

int mfs_srcset_read(struct mfs_srcset *s, const struct mfs_src_read *rq, uint64_t off,
		    uint64_t len, mfs_src_sink_fn sink, void *ctx, struct mfs_src_outcome *oc)
{
	struct wrap w = { .sink = sink, .ctx = ctx, .next = off };
	int order[MFS_SRC_MAX];
	int n, rc = -EHOSTDOWN, best = 0;
	uint64_t end = off + len;

	if (oc)
		memset(oc, 0, sizeof(*oc));
	if (len == 0)
		return -EINVAL;
	n = plan(s, rq, order);
	/* n == 0: every source is down; -EHOSTDOWN without any I/O */
	for (int k = 0; k < n && w.next < end; k++) {
		int i = order[k];
		struct src *x = &s->src[i];
		uint64_t before = w.next;
		int64_t t0 = mfs_now_ms();

		w.src = i;
		rc = x->ops->read(x->conn, rq, w.next, end - w.next, wrap_sink, &w);
		note(s, i, rc, w.next - before, mfs_now_ms() - t0);
		if (oc) {
			oc->sources_tried++;
			if (i == s->hub_idx) {
				oc->hub_tried = true;
				oc->hub_rc = rc;
			}
		}
		if (rc == -ECANCELED)
			return rc;
		if (rc == 0 && w.next >= end)
			return 0;
		if (rc == 0)
			rc = -EIO; /* a short answer (peer had a prefix): next source */
		if (w.next > before)
			mfs_debug("source %s %s: %llu bytes then %s; failing over", x->url,
				  mfs_src_kind_name(x->kind),
				  (unsigned long long)(w.next - before), strerror(-rc));
		best = worse(best, rc, x->ops);
	}
	if (w.next >= end)
		return 0;
	return best ? best : rc;
}

int mfs_srcset_peer_doc(struct mfs_srcset *s, const struct mfs_src_read *rq, const char *path,
			size_t max, mfs_src_doc_fn accept, void *ctx)
{
	int order[MFS_SRC_MAX];
	int n = plan(s, rq, order);

	for (int k = 0; k < n; k++) {
		struct src *x = &s->src[order[k]];
		uint8_t *body;
		size_t len;
		int64_t t0 = mfs_now_ms();

		if (x->ops != &mfs_src_peer_ops || mfs_srcset_demoted(s, order[k]))
			continue;
		int rc = mfs_peer_get(x->conn, path, max, &body, &len);
		note(s, order[k], rc, rc ? 0 : len, mfs_now_ms() - t0);
		if (rc)
			continue;
		rc = accept(ctx, order[k], body, len);
		free(body);
		if (rc == 0)
			return 0;
		if (rc == -EBADMSG) {
			pthread_mutex_lock(&s->mu);
			x->st.bad_data++;
			pthread_mutex_unlock(&s->mu);
			mfs_warn("source %s %s: %s failed its check; not used", x->url,
				 mfs_src_kind_name(x->kind), path);
		}
	}
	return -ENOENT;
}

bool mfs_srcset_is_hub(const struct mfs_srcset *s, int src)
{
	return s && src >= 0 && src == s->hub_idx;
}

int mfs_srcset_probe(struct mfs_srcset *s, const struct mfs_src_read *rq,
		     struct mfs_src_outcome *oc)
{
	int order[MFS_SRC_MAX];
	int n, rc = -EHOSTDOWN, best = 0;

	if (oc)
		memset(oc, 0, sizeof(*oc));
	n = plan(s, rq, order);
	/* Always ask (no "answered a moment ago" shortcut): trusting a source
	 * that just died is what hangs a loader's populate. */
	for (int k = 0; k < n; k++) {
		struct src *x = &s->src[order[k]];
		int64_t t0 = mfs_now_ms();
		rc = x->ops->probe(x->conn, rq);
		note(s, order[k], rc == -EIO ? 0 : rc, 0, mfs_now_ms() - t0);
		if (oc) {
			oc->sources_tried++;
			if (order[k] == s->hub_idx) {
				oc->hub_tried = true;
				oc->hub_rc = rc;
			}
		}
		/* a 5xx answer below the health threshold means the source is
		 * there: reads retry; a 429 longer than a read may wait (-EAGAIN)
		 * or an origin down on the way (-EHOSTDOWN) cannot serve it */
		if (rc == 0 || (rc == -EIO && !x->ops->by_content_id))
			return 0;
		best = worse(best, rc, x->ops);
	}
	return best ? best : rc;
}

bool mfs_srcset_known_up(struct mfs_srcset *s, const struct mfs_src_read *rq)
{
	int order[MFS_SRC_MAX];

	/* plan() leaves out every source whose origin is down and puts the
	 * demoted ones last: the first one it names is up and trusted */
	return s && plan(s, rq, order) > 0 && !mfs_srcset_demoted(s, order[0]);
}

int mfs_srcset_health_write(struct mfs_srcset *s, const char *path)
{
	struct mfs_health_snap h[MFS_HEALTH_MAX];
	char tmp[4200];
	size_t n;
	FILE *f;
	int rc = 0;

	if (!s || (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -EINVAL;
	n = mfs_health_snapshot(s->hs, h, MFS_HEALTH_MAX);
	if (n > MFS_HEALTH_MAX)
		n = MFS_HEALTH_MAX;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	for (size_t i = 0; i < n; i++) {
		const char *kind = "cdn";
		for (size_t j = 0; j < s->n; j++)
			if (strcmp(s->src[j].origin, h[i].origin) == 0) {
				kind = mfs_src_kind_name(s->src[j].kind);
				break;
			}
		/* the error text is curl's or ours: no tabs or newlines, but be sure */
		for (char *c = h[i].last_error; *c; c++)
			if (*c == '\t' || *c == '\n')
				*c = ' ';
		fprintf(f, "%s\t%s\t%s\t%lld\t%lld\t%lld\t%s\n", kind, h[i].origin,
			h[i].up ? "up" : "down", (long long)h[i].down_since_wall_ms,
			(long long)h[i].next_probe_in_ms, (long long)h[i].last_error_wall_ms,
			h[i].last_error);
	}
	if (fclose(f) != 0)
		rc = -EIO;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

/* ---- URL lists ------------------------------------------------------------ */

int mfs_src_list_add(struct mfs_src_list *l, const char *csv)
{
	const char *p = csv;

	while (p && *p) {
		size_t n = strcspn(p, ",");
		char o[512], *u;

		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > 0) {
			if (l->n >= MFS_SRC_MAX)
				return -E2BIG;
			u = strndup(p, n);
			if (!u)
				return -ENOMEM;
			if (mfs_http_url_origin(u, o, sizeof(o)) < 0) {
				mfs_error("not an http(s) URL: '%s'", u);
				free(u);
				return -EINVAL;
			}
			l->urls[l->n++] = u;
		}
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
	return 0;
}

void mfs_src_list_free(struct mfs_src_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->urls[i]);
	l->n = 0;
}
