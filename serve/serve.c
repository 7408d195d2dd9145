/*
 * serve.c - the routes of `modelfs serve` on top of httpd.c (see serve.h).
 *
 * Metadata comes from the catalog (index first; with pull-through the hub
 * and mirrors when the index does not know), bytes from the block layer.
 * Peers ask by content id, so a table content id -> (repo, commit, path,
 * public?) is built from the index (every listed tree reachable from a
 * known ref) and extended with every tree this server loads; it is rebuilt
 * on a miss at most once a second.
 *
 * Access rule: a content id is served without the peer token only when a
 * public, non-gated repo contains it; a repo whose visibility the index
 * does not know is treated as private.
 *
 * Locking: `map_mu` guards the content table; everything else is
 * immutable after mfs_serve_new or thread-safe on its own (catalog, block
 * layer, index).
 */
#include "serve/serve.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache/blockstore.h"
#include "core/blobio.h"
#include "core/catalog.h"
#include "core/tree.h"
#include "fetch/hub.h"
#include "fetch/source.h"
#include "index/index.h"
#include "serve/httpd.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/log.h"
#include "util/repo.h"
#include "util/size.h"
#include "util/strbuf.h"

#define MAP_BUCKETS 4096
#define CHUNK (1u << 20)
#define MAX_SEGS 64

struct cref {
	struct cref *next;
	char id[65];
	struct mfs_repo repo;
	char commit[41];
	char *path;
	uint64_t size;
	bool lfs;
	bool public_;
};

struct mfs_serve {
	char *peer_token;
	bool pull_through;
	struct mfs_ix *ix;
	struct mfs_bs *bs;
	struct mfs_hub *hub;
	struct mfs_srcset *src;
	struct mfs_catalog *cat;
	struct mfs_blobio *bio;
	struct mfs_httpd *httpd;

	pthread_mutex_t map_mu;
	struct cref *map[MAP_BUCKETS];   /* protected by map_mu */
	int64_t map_built_ms;            /* protected by map_mu */
};

/* ---- helpers --------------------------------------------------------------- */

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes n bytes; '+' as space when form. false on bad escapes
 * or a NUL byte. out must hold n+1. */
static bool pct_decode(const char *in, size_t n, char *out, bool form)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == '%') {
			int h, l;
			if (i + 2 >= n)
				return false;
			h = hexval((unsigned char)in[i + 1]);
			l = hexval((unsigned char)in[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return false;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[o++] = form && in[i] == '+' ? ' ' : in[i];
		}
	}
	out[o] = '\0';
	return true;
}

/* First value of `name` in a query string, decoded; false when absent. */
static bool qparam(const char *q, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	for (const char *p = q; p && *p;) {
		size_t len = strcspn(p, "&");
		if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t vl = len - nl - 1;
			if (vl >= cap)
				return false;
			return pct_decode(p + nl + 1, vl, out, true);
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return false;
}

static bool truthy(const char *v)
{
	return !strcasecmp(v, "true") || !strcmp(v, "1");
}

static bool token_ok(const struct mfs_serve *s, const struct mfs_httpd_req *rq)
{
	const char *a = rq->authorization;
	size_t n, m;
	unsigned char diff = 0;

	if (!s->peer_token || !a || strncasecmp(a, "Bearer ", 7) != 0)
		return false;
	a += 7;
	n = strlen(a);
	m = strlen(s->peer_token);
	/* constant time in the token's content */
	for (size_t i = 0; i < m; i++)
		diff |= (unsigned char)(s->peer_token[i] ^ (i < n ? a[i] : 0));
	return diff == 0 && n == m;
}

static void iso_date(int64_t secs, char out[32])
{
	time_t t = (time_t)secs;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* ---- responses ------------------------------------------------------------- */

static const char *reason(int st)
{
	switch (st) {
	case 200: return "OK";
	case 206: return "Partial Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 416: return "Range Not Satisfiable";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	default: return "Error";
	}
}

/* Sends status + headers (extra: complete header lines) + body. */
static int reply(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq, int st,
		 const char *ctype, const char *extra, const char *body, size_t blen)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	bool head = strcmp(rq->method, "HEAD") == 0;
	int rc;

	mfs_strbuf_printf(&sb, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s%s"
			  "Connection: %s\r\n\r\n", st, reason(st), blen,
			  ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
			  extra ? extra : "", rq->keep_alive ? "keep-alive" : "close");
	if (sb.err) {
		mfs_strbuf_free(&sb);
		return -ENOMEM;
	}
	if (!head && blen)
		mfs_strbuf_append(&sb, body, blen);
	rc = sb.err ? -ENOMEM : mfs_httpd_write(c, sb.buf, sb.len);
	mfs_strbuf_free(&sb);
	return rc;
}

static int reply_error(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq, int st,
		       const char *code, const char *msg, const char *commit)
{
	struct mfs_strbuf h = MFS_STRBUF_INIT, b = MFS_STRBUF_INIT;
	int rc;

	if (code)
		mfs_strbuf_printf(&h, "X-Error-Code: %s\r\n", code);
	if (msg)
		mfs_strbuf_printf(&h, "X-Error-Message: %s\r\n", msg);
	if (commit)
		mfs_strbuf_printf(&h, "X-Repo-Commit: %s\r\n", commit);
	mfs_strbuf_puts(&b, "{\"error\":");
	mfs_strbuf_json_str(&b, msg ? msg : reason(st), strlen(msg ? msg : reason(st)));
	mfs_strbuf_puts(&b, "}");
	rc = h.err || b.err ? -ENOMEM :
	     reply(c, rq, st, "application/json; charset=utf-8", h.buf, b.buf, b.len);
	mfs_strbuf_free(&h);
	mfs_strbuf_free(&b);
	return rc;
}

static int reply_errno(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq, int err)
{
	if (err == -ENOENT)
		return reply_error(c, rq, 404, "RepoNotFound", "Repository or revision not found",
				   NULL);
	if (err == -EACCES)
		return reply_error(c, rq, 403, "GatedRepo", "Access restricted", NULL);
	return reply_error(c, rq, 502, NULL, "Upstream unavailable", NULL);
}

/* ---- the content table ---------------------------------------------------- */

static size_t bucket(const char *id)
{
	return (size_t)(mfs_xxh64(id, strlen(id), 0) % MAP_BUCKETS);
}

static bool repo_public(struct mfs_serve *s, const struct mfs_repo *repo)
{
	bool priv = true;
	char gated[16] = "manual";
	int64_t at;

	if (mfs_ix_repo_get(s->ix, repo, &priv, gated, &at) != 0)
		return false;
	return !priv && strcmp(gated, "false") == 0;
}

static void map_add_tree(struct mfs_serve *s, const struct mfs_repo *repo, const char *commit,
			 const struct mfs_tree *t)
{
	bool pub = repo_public(s, repo);

	pthread_mutex_lock(&s->map_mu);
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct mfs_entry *e = &t->entries[i];
		const char *id = mfs_entry_content_id(e);
		struct cref *r;
		size_t b;

		if (e->kind == MFS_KIND_DIR)
			continue;
		b = bucket(id);
		for (r = s->map[b]; r; r = r->next)
			if (strcmp(r->id, id) == 0)
				break;
		if (r) {
			if (pub && !r->public_) {
				/* a public copy makes the content public: point at it */
				char *p = strdup(e->path);
				if (p) {
					free(r->path);
					r->path = p;
					r->repo = *repo;
					memcpy(r->commit, commit, 41);
					r->public_ = true;
				}
			}
			continue;
		}
		r = calloc(1, sizeof(*r));
		if (!r || !(r->path = strdup(e->path))) {
			free(r);
			break;
		}
		snprintf(r->id, sizeof(r->id), "%s", id);
		r->repo = *repo;
		memcpy(r->commit, commit, 41);
		r->size = e->size;
		r->lfs = e->sha256[0] != '\0';
		r->public_ = pub;
		r->next = s->map[b];
		s->map[b] = r;
	}
	pthread_mutex_unlock(&s->map_mu);
}

struct names {
	char **v;
	size_t n, cap;
};

static int collect(void *ctx, const char *name)
{
	struct names *nm = ctx;

	if (nm->n == nm->cap) {
		size_t cap = nm->cap ? nm->cap * 2 : 16;
		char **v = realloc(nm->v, cap * sizeof(*v));
		if (!v)
			return 1;
		nm->v = v;
		nm->cap = cap;
	}
	nm->v[nm->n] = strdup(name);
	if (nm->v[nm->n])
		nm->n++;
	return 0;
}

static void names_free(struct names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
	memset(nm, 0, sizeof(*nm));
}

/* Walks every known ref of every known repo (callbacks run under the
 * index lock, so names are collected first). */
static void map_rebuild(struct mfs_serve *s)
{
	static const enum mfs_repo_type types[] = { MFS_REPO_MODEL, MFS_REPO_DATASET };
	int64_t now = mfs_now_ms();

	pthread_mutex_lock(&s->map_mu);
	if (s->map_built_ms && now - s->map_built_ms < 1000) {
		pthread_mutex_unlock(&s->map_mu);
		return;
	}
	s->map_built_ms = now;
	pthread_mutex_unlock(&s->map_mu);
	for (size_t t = 0; t < 2; t++) {
		struct names orgs = { 0 };
		(void)mfs_ix_list_orgs(s->ix, types[t], collect, &orgs);
		for (size_t o = 0; o < orgs.n; o++) {
			struct names repos = { 0 };
			(void)mfs_ix_list_repos(s->ix, types[t], orgs.v[o], collect, &repos);
			for (size_t r = 0; r < repos.n; r++) {
				struct mfs_repo repo = { .type = types[t] };
				struct names refs = { 0 };
				int n = snprintf(repo.id, sizeof(repo.id), "%s/%s", orgs.v[o],
						 repos.v[r]);
				if (n < 0 || (size_t)n >= sizeof(repo.id) || !mfs_repo_id_valid(repo.id))
					continue;
				/* list_refs leaves out "" (the default branch) */
				collect(&refs, "");
				(void)mfs_ix_list_refs(s->ix, &repo, collect, &refs);
				for (size_t f = 0; f < refs.n; f++) {
					char commit[41];
					int64_t at;
					const struct mfs_tree *tree;
					if (mfs_ix_ref_get(s->ix, &repo, refs.v[f], commit, &at) == 0 &&
					    mfs_cat_tree(s->cat, &repo, commit, &tree) == 0)
						map_add_tree(s, &repo, commit, tree);
				}
				names_free(&refs);
			}
			names_free(&repos);
		}
		names_free(&orgs);
	}
}

/* Copies the table's entry for id into *out (path malloc'd). */
static bool map_find(struct mfs_serve *s, const char *id, struct cref *out)
{
	bool found = false;

	pthread_mutex_lock(&s->map_mu);
	for (struct cref *r = s->map[bucket(id)]; r; r = r->next) {
		if (strcmp(r->id, id) == 0) {
			*out = *r;
			out->path = strdup(r->path);
			found = out->path != NULL;
			break;
		}
	}
	pthread_mutex_unlock(&s->map_mu);
	return found;
}

static void map_free(struct mfs_serve *s)
{
	for (size_t b = 0; b < MAP_BUCKETS; b++) {
		for (struct cref *r = s->map[b], *n; r; r = n) {
			n = r->next;
			free(r->path);
			free(r);
		}
		s->map[b] = NULL;
	}
}

/* ---- content --------------------------------------------------------------- */

struct rd {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int err;
	char *buf;
	size_t got;
};

static void rd_cb(void *ctx, int err, const struct iovec *iov, int iovcnt)
{
	struct rd *r = ctx;
	size_t o = 0;

	if (!err)
		for (int i = 0; i < iovcnt; i++) {
			memcpy(r->buf + o, iov[i].iov_base, iov[i].iov_len);
			o += iov[i].iov_len;
		}
	pthread_mutex_lock(&r->mu);
	r->err = err;
	r->got = o;
	r->done = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static int read_sync(struct mfs_blob *b, uint64_t off, size_t len, struct mfs_readahead *ra,
		     char *buf, size_t *got)
{
	struct rd r = { .buf = buf };

	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	mfs_blob_read(b, off, len, ra, rd_cb, &r);
	pthread_mutex_lock(&r.mu);
	while (!r.done)
		pthread_cond_wait(&r.cv, &r.mu);
	pthread_mutex_unlock(&r.mu);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	*got = r.got;
	return r.err;
}

/* Parses a Range header against size. 0 ok (a..b inclusive), 1 no range,
 * -416 unsatisfiable, -400 malformed. */
static int parse_range(const char *h, uint64_t size, uint64_t *a, uint64_t *b)
{
	const char *p;
	char *e;
	unsigned long long x, y;

	if (!h)
		return 1;
	if (strncasecmp(h, "bytes=", 6) != 0)
		return -400;
	p = h + 6;
	if (strchr(p, ','))
		return -416; /* multi-range: not supported */
	if (*p == '-') {
		if (!isdigit((unsigned char)p[1]))
			return -400;
		errno = 0;
		y = strtoull(p + 1, &e, 10);
		if (errno || *e)
			return -400;
		if (y == 0 || size == 0)
			return -416;
		*a = y >= size ? 0 : size - y;
		*b = size - 1;
		return 0;
	}
	if (!isdigit((unsigned char)*p))
		return -400;
	errno = 0;
	x = strtoull(p, &e, 10);
	if (errno || *e != '-')
		return -400;
	p = e + 1;
	if (*p == '\0') {
		y = size ? size - 1 : 0;
	} else {
		if (!isdigit((unsigned char)*p))
			return -400;
		errno = 0;
		y = strtoull(p, &e, 10);
		if (errno || *e)
			return -400;
		if (y < x)
			return -400;
	}
	if (x >= size)
		return -416;
	if (y >= size)
		y = size - 1;
	*a = x;
	*b = y;
	return 0;
}

/* How many bytes from `a` the cache holds contiguously (up to `end`). */
static uint64_t cached_prefix(struct mfs_serve *s, const char *id, uint64_t size, uint64_t a,
			      uint64_t end)
{
	uint64_t isz, got = 0;
	uint32_t bsize, nblocks;
	bool verified, pinned;
	uint8_t *bm;

	if (mfs_ix_blob_get(s->ix, id, &isz, &bsize, &verified, &pinned) != 0 || bsize == 0 ||
	    isz != size)
		return 0;
	nblocks = (uint32_t)((size + bsize - 1) / bsize);
	bm = calloc(nblocks / 8 + 1, 1);
	if (!bm || mfs_ix_blocks_get(s->ix, id, bm, nblocks) != 0) {
		free(bm);
		return 0;
	}
	for (uint32_t i = (uint32_t)(a / bsize); i < nblocks; i++) {
		uint64_t bend = (uint64_t)(i + 1) * bsize;
		if (!(bm[i / 8] & (1u << (i % 8))))
			break;
		got = (bend > end ? end : bend) - a;
		if (bend >= end)
			break;
	}
	free(bm);
	return got;
}

/* Answers with the bytes of a blob. extra: header lines (metadata). */
static int send_content(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			struct mfs_httpd_conn *c, const struct cref *r, const char *extra,
			bool peer)
{
	struct mfs_blob_desc d = { .repo = &r->repo, .commit = r->commit, .path = r->path,
				   .content_id = r->id, .size = r->size, .lfs = r->lfs };
	struct mfs_strbuf h = MFS_STRBUF_INIT;
	struct mfs_readahead ra = { 0 };
	struct mfs_blob *b = NULL;
	uint64_t a = 0, z = 0, end;
	char *buf = NULL;
	int pr, st, rc;

	pr = parse_range(rq->range, r->size, &a, &z);
	if (pr < 0) {
		if (pr == -416) {
			char cr[64];
			snprintf(cr, sizeof(cr), "Content-Range: bytes */%llu\r\n",
				 (unsigned long long)r->size);
			return reply(c, rq, 416, NULL, cr, NULL, 0);
		}
		return reply_error(c, rq, 400, NULL, "Malformed Range", NULL);
	}
	if (r->size == 0)
		return reply(c, rq, 200, "application/octet-stream", extra, NULL, 0);
	if (pr == 1) {
		a = 0;
		z = r->size - 1;
	}
	end = z + 1;
	if (!s->pull_through) {
		uint64_t have = cached_prefix(s, r->id, r->size, a, end);
		if (have == 0 || (!peer && a + have < end))
			return reply_error(c, rq, 404, NULL, "Not cached here", NULL);
		end = a + have;
	}
	st = pr == 1 && end == r->size ? 200 : 206;
	mfs_strbuf_printf(&h, "HTTP/1.1 %d %s\r\nContent-Length: %llu\r\n"
			  "Content-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\n%s",
			  st, reason(st), (unsigned long long)(end - a), extra ? extra : "");
	if (st == 206)
		mfs_strbuf_printf(&h, "Content-Range: bytes %llu-%llu/%llu\r\n",
				  (unsigned long long)a, (unsigned long long)end - 1,
				  (unsigned long long)r->size);
	mfs_strbuf_printf(&h, "Connection: %s\r\n\r\n", rq->keep_alive ? "keep-alive" : "close");
	if (h.err) {
		rc = -ENOMEM;
		goto out;
	}
	if (strcmp(rq->method, "HEAD") == 0) {
		rc = mfs_httpd_write(c, h.buf, h.len);
		goto out;
	}
	rc = mfs_blob_open(s->bio, &d, &b);
	if (rc) {
		rc = reply_error(c, rq, 500, NULL, "Cache unavailable", NULL);
		goto out;
	}
	buf = malloc(CHUNK);
	if (!buf) {
		rc = reply_error(c, rq, 500, NULL, "Out of memory", NULL);
		goto out;
	}
	/* The first chunk is read before the headers go out, so a source
	 * failure is still an honest error status instead of a cut body. */
	for (uint64_t off = a; off < end;) {
		uint64_t cend = (off / CHUNK + 1) * CHUNK;
		size_t got = 0;
		if (cend > end)
			cend = end;
		rc = read_sync(b, off, (size_t)(cend - off), s->pull_through ? &ra : NULL, buf, &got);
		if (rc || got != cend - off) {
			if (off == a) {
				mfs_warn("serve: %s: %s", r->id, strerror(rc ? -rc : EIO));
				rc = rc == -EACCES ? reply_error(c, rq, 403, NULL, "Upstream refused", NULL)
						   : reply_error(c, rq, 502, NULL, "Upstream failed", NULL);
			} else {
				rc = -EIO; /* mid-body: close, the client sees it short */
			}
			goto out;
		}
		if (off == a) {
			rc = mfs_httpd_write(c, h.buf, h.len);
			if (rc)
				goto out;
		}
		rc = mfs_httpd_write(c, buf, got);
		if (rc)
			goto out;
		off = cend;
	}
out:
	free(buf);
	if (b)
		mfs_blob_close(b);
	mfs_strbuf_free(&h);
	return rc;
}

/* ---- routes ---------------------------------------------------------------- */

/* 0 when the client may see this repo's content/metadata, else replies
 * (and returns 1, or negative on a write error). */
static int check_access(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			struct mfs_httpd_conn *c, const struct mfs_repo *repo, bool content)
{
	bool priv = true;
	char gated[16] = "manual";
	int64_t at;
	int rc;

	if (mfs_ix_repo_get(s->ix, repo, &priv, gated, &at) == 0 && !priv &&
	    (strcmp(gated, "false") == 0 || !content))
		return 0;
	if (token_ok(s, rq))
		return 0;
	if (rq->authorization)
		rc = reply_error(c, rq, 401, NULL, "Invalid credentials in Authorization header",
				 NULL);
	else if (priv)
		rc = reply_error(c, rq, 401, "RepoNotFound", "Repository not found", NULL);
	else
		rc = reply_error(c, rq, 403, "GatedRepo", "Access to this repo is restricted", NULL);
	return rc < 0 ? rc : 1;
}

/* Resolves rev, checks access, loads the tree. 0 ok; else replied. */
static int open_commit(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		       struct mfs_httpd_conn *c, const struct mfs_repo *repo, const char *rev,
		       bool content, char commit[41], int64_t *date, const struct mfs_tree **t)
{
	int rc;

	rc = mfs_cat_resolve(s->cat, repo, rev, commit, date);
	/* Without a hub we cannot ask which branch is the default one: a
	 * cache filled through "org/name" knows "" and one filled through
	 * "org/name@main" knows "main"; take either for the other (the usual
	 * default branch), never for any other name. */
	if (rc == -ENOENT && !s->pull_through && (!strcmp(rev, "main") || !rev[0]))
		rc = mfs_cat_resolve(s->cat, repo, rev[0] ? "" : "main", commit, date);
	if (rc) {
		rc = reply_errno(c, rq, rc);
		return rc < 0 ? rc : 1;
	}
	rc = check_access(s, rq, c, repo, content);
	if (rc)
		return rc;
	rc = mfs_cat_tree(s->cat, repo, commit, t);
	if (rc) {
		rc = reply_errno(c, rq, rc);
		return rc < 0 ? rc : 1;
	}
	map_add_tree(s, repo, commit, *t);
	return 0;
}

static void entry_json(struct mfs_strbuf *sb, const struct mfs_entry *e)
{
	if (e->kind == MFS_KIND_DIR) {
		mfs_strbuf_printf(sb, "{\"type\":\"directory\",\"oid\":\"%s\",\"size\":0,\"path\":",
				  e->oid);
		mfs_strbuf_json_str(sb, e->path, strlen(e->path));
		mfs_strbuf_puts(sb, "}");
		return;
	}
	mfs_strbuf_printf(sb, "{\"type\":\"file\",\"oid\":\"%s\",\"size\":%llu,\"path\":", e->oid,
			  (unsigned long long)e->size);
	mfs_strbuf_json_str(sb, e->path, strlen(e->path));
	if (e->sha256[0]) {
		char n[24];
		int digits = snprintf(n, sizeof(n), "%llu", (unsigned long long)e->size);
		/* "version ...v1\n" (43) + "oid sha256:<64>\n" (76) + "size N\n" */
		mfs_strbuf_printf(sb, ",\"lfs\":{\"oid\":\"%s\",\"size\":%llu,\"pointerSize\":%d}",
				  e->sha256, (unsigned long long)e->size, 43 + 76 + 6 + digits);
	}
	if (e->xet_hash[0])
		mfs_strbuf_printf(sb, ",\"xetHash\":\"%s\"", e->xet_hash);
	mfs_strbuf_puts(sb, "}");
}

static int reply_json(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq,
		      struct mfs_strbuf *sb, const char *commit)
{
	char extra[80] = "";

	if (sb->err)
		return reply_error(c, rq, 500, NULL, "Out of memory", NULL);
	if (commit)
		snprintf(extra, sizeof(extra), "X-Repo-Commit: %s\r\n", commit);
	return reply(c, rq, 200, "application/json; charset=utf-8", extra, sb->buf, sb->len);
}

static int route_info(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, const struct mfs_repo *repo, const char *rev)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	const struct mfs_tree *t;
	char commit[41], date[32], gated[16] = "false", v[8];
	bool priv = false, blobs = qparam(rq->query, "blobs", v, sizeof(v)) && truthy(v);
	int64_t ds = 0, at;
	int rc = open_commit(s, rq, c, repo, rev, false, commit, &ds, &t);

	if (rc)
		return rc < 0 ? rc : 0;
	(void)mfs_ix_repo_get(s->ix, repo, &priv, gated, &at);
	iso_date(ds, date);
	mfs_strbuf_puts(&sb, "{\"_id\":");
	mfs_strbuf_json_str(&sb, repo->id, strlen(repo->id));
	mfs_strbuf_puts(&sb, ",\"id\":");
	mfs_strbuf_json_str(&sb, repo->id, strlen(repo->id));
	if (repo->type == MFS_REPO_MODEL) {
		mfs_strbuf_puts(&sb, ",\"modelId\":");
		mfs_strbuf_json_str(&sb, repo->id, strlen(repo->id));
	}
	mfs_strbuf_printf(&sb, ",\"author\":\"%.*s\",\"sha\":\"%s\",\"lastModified\":\"%s\","
			  "\"private\":%s,\"gated\":", (int)strcspn(repo->id, "/"), repo->id,
			  commit, date, priv ? "true" : "false");
	if (strcmp(gated, "false") == 0)
		mfs_strbuf_puts(&sb, "false");
	else
		mfs_strbuf_json_str(&sb, gated, strlen(gated));
	mfs_strbuf_puts(&sb, ",\"disabled\":false,\"siblings\":[");
	for (size_t i = 0, k = 0; i < t->n_entries; i++) {
		const struct mfs_entry *e = &t->entries[i];
		if (e->kind == MFS_KIND_DIR)
			continue;
		mfs_strbuf_puts(&sb, k++ ? ",{\"rfilename\":" : "{\"rfilename\":");
		mfs_strbuf_json_str(&sb, e->path, strlen(e->path));
		if (blobs) {
			mfs_strbuf_printf(&sb, ",\"size\":%llu,\"blobId\":\"%s\"",
					  (unsigned long long)e->size, e->oid);
			if (e->sha256[0])
				mfs_strbuf_printf(&sb, ",\"lfs\":{\"sha256\":\"%s\",\"size\":%llu}",
						  e->sha256, (unsigned long long)e->size);
		}
		mfs_strbuf_puts(&sb, "}");
	}
	mfs_strbuf_puts(&sb, "]}");
	rc = reply_json(c, rq, &sb, commit);
	mfs_strbuf_free(&sb);
	return rc;
}

static int route_tree(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, const struct mfs_repo *repo, const char *rev,
		      const char *path)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	const struct mfs_tree *t;
	char commit[41], v[8];
	bool rec = qparam(rq->query, "recursive", v, sizeof(v)) && truthy(v);
	int64_t ds;
	uint32_t node = 0;
	size_t k = 0;
	int rc = open_commit(s, rq, c, repo, rev, false, commit, &ds, &t);

	if (rc)
		return rc < 0 ? rc : 0;
	if (path[0] && (mfs_tree_find(t, path, &node) != 0 || !mfs_tree_is_dir(t, node)))
		return reply_error(c, rq, 404, "EntryNotFound", "Entry not found", commit);
	mfs_strbuf_puts(&sb, "[");
	if (rec) {
		size_t pl = strlen(path);
		for (size_t i = 0; i < t->n_entries; i++) {
			const struct mfs_entry *e = &t->entries[i];
			if (pl && (strncmp(e->path, path, pl) != 0 || e->path[pl] != '/'))
				continue;
			if (k++)
				mfs_strbuf_puts(&sb, ",");
			entry_json(&sb, e);
		}
	} else {
		const struct mfs_tree_node *n = &t->nodes[node];
		for (uint32_t i = 0; i < n->child_count; i++) {
			if (k++)
				mfs_strbuf_puts(&sb, ",");
			entry_json(&sb, t->nodes[t->children[n->child_start + i]].e);
		}
	}
	mfs_strbuf_puts(&sb, "]");
	rc = reply_json(c, rq, &sb, commit);
	mfs_strbuf_free(&sb);
	return rc;
}

/* plen is the decoded length: a JSON "a.txt\u0000x" is not "a.txt" */
static void paths_add(const struct mfs_tree *t, const char *p, size_t plen,
		      struct mfs_strbuf *sb, size_t *k)
{
	uint32_t node;

	if (!p || !mfs_path_valid(p, plen) || mfs_tree_find(t, p, &node) != 0 || node == 0)
		return;
	if ((*k)++)
		mfs_strbuf_puts(sb, ",");
	entry_json(sb, t->nodes[node].e);
}

static int route_paths_info(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			    struct mfs_httpd_conn *c, const struct mfs_repo *repo,
			    const char *rev)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	struct mfs_json *doc = NULL;
	const struct mfs_tree *t;
	char commit[41];
	int64_t ds;
	size_t k = 0;
	int rc = open_commit(s, rq, c, repo, rev, false, commit, &ds, &t);

	if (rc)
		return rc < 0 ? rc : 0;
	mfs_strbuf_puts(&sb, "[");
	if (rq->body && rq->content_type && strstr(rq->content_type, "json")) {
		const struct mfs_json *paths;
		if (mfs_json_parse(rq->body, rq->body_len, &doc) < 0 ||
		    !(paths = mfs_json_get(doc, "paths"))) {
			rc = reply_error(c, rq, 400, NULL, "Bad paths-info body", NULL);
			goto out;
		}
		size_t plen = 0;
		if (mfs_json_type(paths) == MFS_JSON_STRING) {
			const char *p = mfs_json_str(paths, &plen);
			paths_add(t, p, plen, &sb, &k);
		} else if (mfs_json_type(paths) == MFS_JSON_ARRAY) {
			for (size_t i = 0; i < mfs_json_len(paths) && i < 2000; i++) {
				const char *p = mfs_json_str(mfs_json_at(paths, i), &plen);
				paths_add(t, p, plen, &sb, &k);
			}
		}
	} else if (rq->body) {
		size_t n = 0;
		for (const char *p = rq->body; *p && n < 2000;) {
			size_t len = strcspn(p, "&");
			if (len > 6 && strncmp(p, "paths=", 6) == 0) {
				char *v = malloc(len);
				if (v && pct_decode(p + 6, len - 6, v, true))
					paths_add(t, v, strlen(v), &sb, &k);
				free(v);
				n++;
			}
			p += len;
			if (*p == '&')
				p++;
		}
	}
	mfs_strbuf_puts(&sb, "]");
	rc = reply_json(c, rq, &sb, commit);
out:
	mfs_json_free(doc);
	mfs_strbuf_free(&sb);
	return rc;
}

static int route_list(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, enum mfs_repo_type type)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	struct names repos = { 0 };
	char org[128], lim[16];
	long limit = 1000;
	size_t k = 0;
	int rc;

	if (!qparam(rq->query, "author", org, sizeof(org)) || !mfs_repo_name_valid(org))
		return reply_error(c, rq, 400, NULL, "author= required", NULL);
	if (qparam(rq->query, "limit", lim, sizeof(lim)))
		limit = strtol(lim, NULL, 10);
	(void)mfs_ix_list_repos(s->ix, type, org, collect, &repos);
	mfs_strbuf_puts(&sb, "[");
	for (size_t i = 0; i < repos.n && (long)k < limit; i++) {
		struct mfs_repo repo = { .type = type };
		snprintf(repo.id, sizeof(repo.id), "%s/%s", org, repos.v[i]);
		bool priv = true;
		char gated[16];
		int64_t at;
		/* like the hub: gated repos are listed (only their files need
		 * access), private ones only to holders of the token */
		if ((mfs_ix_repo_get(s->ix, &repo, &priv, gated, &at) != 0 || priv) &&
		    !token_ok(s, rq))
			continue;
		mfs_strbuf_puts(&sb, k++ ? ",{\"id\":" : "{\"id\":");
		mfs_strbuf_json_str(&sb, repo.id, strlen(repo.id));
		mfs_strbuf_puts(&sb, "}");
	}
	mfs_strbuf_puts(&sb, "]");
	names_free(&repos);
	rc = reply_json(c, rq, &sb, NULL);
	mfs_strbuf_free(&sb);
	return rc;
}

static int route_resolve(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			 struct mfs_httpd_conn *c, const struct mfs_repo *repo, const char *rev,
			 const char *path)
{
	struct mfs_strbuf h = MFS_STRBUF_INIT;
	const struct mfs_tree *t;
	const struct mfs_entry *e;
	struct cref r = { 0 };
	char commit[41];
	int64_t ds;
	uint32_t node;
	int rc;

	if (!mfs_path_valid(path, strlen(path)))
		return reply_error(c, rq, 400, NULL, "Bad path", NULL);
	rc = open_commit(s, rq, c, repo, rev, true, commit, &ds, &t);
	if (rc)
		return rc < 0 ? rc : 0;
	if (mfs_tree_find(t, path, &node) != 0 || mfs_tree_is_dir(t, node))
		return reply_error(c, rq, 404, "EntryNotFound", "Entry not found", commit);
	e = t->nodes[node].e;
	snprintf(r.id, sizeof(r.id), "%s", mfs_entry_content_id(e));
	r.repo = *repo;
	memcpy(r.commit, commit, 41);
	r.path = (char *)e->path;
	r.size = e->size;
	r.lfs = e->sha256[0] != '\0';
	mfs_strbuf_printf(&h, "X-Repo-Commit: %s\r\n", commit);
	if (r.lfs)
		mfs_strbuf_printf(&h, "ETag: \"%s\"\r\nX-Linked-Etag: \"%s\"\r\nX-Linked-Size: %llu\r\n",
				  e->sha256, e->sha256, (unsigned long long)e->size);
	else
		mfs_strbuf_printf(&h, "ETag: \"%s\"\r\n", e->oid);
	rc = h.err ? reply_error(c, rq, 500, NULL, "Out of memory", NULL)
		   : send_content(s, rq, c, &r, h.buf, false);
	mfs_strbuf_free(&h);
	return rc;
}

/* Finds a blob a peer asks for: the table, a rebuilt table, or (with
 * pull-through) the peer's hints checked against our own listing. */
static bool find_blob(struct mfs_serve *s, const struct mfs_httpd_req *rq, const char *id,
		      struct cref *out)
{
	char rp[MFS_REPO_ID_MAX + 16], commit[48], path[MFS_PATH_MAX + 1];
	struct mfs_repo repo;
	const struct mfs_tree *t;
	char resolved[41];
	int64_t ds;
	uint32_t node;

	if (map_find(s, id, out))
		return true;
	map_rebuild(s);
	if (map_find(s, id, out))
		return true;
	if (!s->pull_through || !qparam(rq->query, "repo", rp, sizeof(rp)) ||
	    !qparam(rq->query, "commit", commit, sizeof(commit)) ||
	    !qparam(rq->query, "path", path, sizeof(path)))
		return false;
	memset(&repo, 0, sizeof(repo));
	if (strncmp(rp, "models/", 7) == 0) {
		repo.type = MFS_REPO_MODEL;
		snprintf(repo.id, sizeof(repo.id), "%.200s", rp + 7);
	} else if (strncmp(rp, "datasets/", 9) == 0) {
		repo.type = MFS_REPO_DATASET;
		snprintf(repo.id, sizeof(repo.id), "%.200s", rp + 9);
	} else {
		return false;
	}
	if (!mfs_repo_id_valid(repo.id) || strlen(commit) != 40 || !mfs_hex_valid(commit, 40) ||
	    !mfs_path_valid(path, strlen(path)))
		return false;
	/* the hint only says where to look; our own listing decides */
	if (mfs_cat_resolve(s->cat, &repo, commit, resolved, &ds) != 0 ||
	    mfs_cat_tree(s->cat, &repo, resolved, &t) != 0)
		return false;
	if (mfs_tree_find(t, path, &node) != 0 || mfs_tree_is_dir(t, node) ||
	    strcmp(mfs_entry_content_id(t->nodes[node].e), id) != 0)
		return false;
	map_add_tree(s, &repo, resolved, t);
	return map_find(s, id, out);
}

static int route_blob(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, const char *seg)
{
	size_t n = strlen(seg);
	struct cref r;
	char id[65], extra[160];
	int rc;

	if ((n != 40 && n != 64) || !mfs_hex_valid(seg, n))
		return reply_error(c, rq, 400, NULL, "Bad content id", NULL);
	for (size_t i = 0; i <= n; i++)
		id[i] = (char)tolower((unsigned char)seg[i]);
	if (!find_blob(s, rq, id, &r))
		return reply_error(c, rq, 404, NULL, "Not here", NULL);
	if (!r.public_ && !token_ok(s, rq)) {
		free(r.path);
		return reply_error(c, rq, rq->authorization ? 403 : 401, NULL,
				   "Peer token required", NULL);
	}
	snprintf(extra, sizeof(extra), "ETag: \"%s\"\r\n", id);
	rc = send_content(s, rq, c, &r, extra, true);
	free(r.path);
	return rc;
}

static int handler(void *ctx, const struct mfs_httpd_req *rq, struct mfs_httpd_conn *c)
{
	struct mfs_serve *s = ctx;
	char *segs[MAX_SEGS];
	size_t nseg = 0, k = 0;
	char *work = NULL, *p;
	struct mfs_repo repo = { 0 };
	bool get = !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD");
	bool post = !strcmp(rq->method, "POST");
	int rc = 0;

	if (!get && !post) {
		rc = reply(c, rq, 405, NULL, "Allow: GET, HEAD, POST\r\n", NULL, 0);
		goto out;
	}
	/* split on '/' first, then decode each segment: %2F inside a revision
	 * stays inside its segment */
	work = strdup(rq->target + 1);
	if (!work) {
		rc = -ENOMEM;
		goto out;
	}
	for (p = work; nseg < MAX_SEGS;) {
		char *sl = strchr(p, '/');
		if (sl)
			*sl = '\0';
		if (!pct_decode(p, strlen(p), p, false)) {
			rc = reply_error(c, rq, 400, NULL, "Bad percent-encoding", NULL);
			goto out;
		}
		segs[nseg++] = p;
		if (!sl)
			break;
		p = sl + 1;
	}
	if (nseg == MAX_SEGS) {
		rc = reply_error(c, rq, 414, NULL, "Too deep", NULL);
		goto out;
	}
	for (size_t i = 0; i < nseg; i++)
		if (!strcmp(segs[i], "..") || !strcmp(segs[i], ".")) {
			rc = reply_error(c, rq, 400, NULL, "Bad path", NULL);
			goto out;
		}

	if (nseg == 2 && !strcmp(segs[0], "blobs") && get) {
		rc = route_blob(s, rq, c, segs[1]);
		goto out;
	}
	if (nseg >= 2 && !strcmp(segs[0], "api") &&
	    (!strcmp(segs[1], "models") || !strcmp(segs[1], "datasets"))) {
		repo.type = segs[1][0] == 'm' ? MFS_REPO_MODEL : MFS_REPO_DATASET;
		if (nseg == 2 && get) {
			rc = route_list(s, rq, c, repo.type);
			goto out;
		}
		if (nseg < 4)
			goto notfound;
		snprintf(repo.id, sizeof(repo.id), "%.100s/%.100s", segs[2], segs[3]);
		if (!mfs_repo_id_valid(repo.id)) {
			rc = reply_error(c, rq, 400, NULL, "Bad repo id", NULL);
			goto out;
		}
		if (nseg == 4 && get) {
			rc = route_info(s, rq, c, &repo, "");
		} else if (nseg == 6 && !strcmp(segs[4], "revision") && get) {
			rc = route_info(s, rq, c, &repo, segs[5]);
		} else if (nseg >= 6 && !strcmp(segs[4], "tree") && get) {
			struct mfs_strbuf path = MFS_STRBUF_INIT;
			for (size_t i = 6; i < nseg; i++)
				if (segs[i][0])
					mfs_strbuf_printf(&path, "%s%s", path.len ? "/" : "", segs[i]);
			if (path.err || (path.len && !mfs_path_valid(path.buf, path.len)))
				rc = reply_error(c, rq, 400, NULL, "Bad path", NULL);
			else
				rc = route_tree(s, rq, c, &repo, segs[5], path.len ? path.buf : "");
			mfs_strbuf_free(&path);
		} else if (nseg == 6 && !strcmp(segs[4], "paths-info") && post) {
			rc = route_paths_info(s, rq, c, &repo, segs[5]);
		} else {
			goto notfound;
		}
		goto out;
	}
	if (nseg > 0 && !strcmp(segs[0], "datasets")) {
		repo.type = MFS_REPO_DATASET;
		k = 1;
	}
	if (nseg >= k + 5 && !strcmp(segs[k + 2], "resolve") && get) {
		struct mfs_strbuf path = MFS_STRBUF_INIT;
		snprintf(repo.id, sizeof(repo.id), "%.100s/%.100s", segs[k], segs[k + 1]);
		if (!mfs_repo_id_valid(repo.id)) {
			rc = reply_error(c, rq, 400, NULL, "Bad repo id", NULL);
			goto out;
		}
		for (size_t i = k + 4; i < nseg; i++)
			mfs_strbuf_printf(&path, "%s%s", i > k + 4 ? "/" : "", segs[i]);
		rc = path.err ? -ENOMEM : route_resolve(s, rq, c, &repo, segs[k + 3], path.buf);
		mfs_strbuf_free(&path);
		goto out;
	}
notfound:
	rc = reply_error(c, rq, get || post ? 404 : 405, NULL, "Not found", NULL);
out:
	free(work);
	return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

int mfs_serve_new(const struct mfs_serve_config *cfg, struct mfs_serve **out)
{
	struct mfs_serve *s = calloc(1, sizeof(*s));
	struct mfs_httpd_config hc = {
		.host = cfg->host, .port = cfg->port, .workers = cfg->workers,
		.max_conns = cfg->max_conns, .idle_ms = cfg->idle_ms, .io_ms = cfg->io_ms,
	};
	char path[PATH_MAX], self[128];
	int rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->map_mu, NULL);
	s->pull_through = cfg->pull_through;
	if (cfg->peer_token && cfg->peer_token[0] && !(s->peer_token = strdup(cfg->peer_token))) {
		rc = -ENOMEM;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/index.db", cfg->cache_dir);
	rc = mfs_ix_open(path, &s->ix);
	if (rc) {
		mfs_error("serve: cannot open the index %s: %s", path, strerror(-rc));
		goto fail;
	}
	rc = mfs_bs_open(cfg->cache_dir, &s->bs);
	if (rc) {
		mfs_error("serve: cannot open the cache %s: %s", cfg->cache_dir, strerror(-rc));
		goto fail;
	}
	rc = mfs_httpd_new(&hc, handler, s, &s->httpd);
	if (rc) {
		mfs_error("serve: cannot listen on %s:%d: %s", hc.host ? hc.host : "127.0.0.1",
			  cfg->port, strerror(-rc));
		goto fail;
	}
	snprintf(self, sizeof(self), "http://%s:%d", cfg->host ? cfg->host : "127.0.0.1",
		 mfs_httpd_port(s->httpd));
	if (cfg->pull_through) {
		struct mfs_hub_config hub_cfg = {
			.endpoint = cfg->endpoint, .token = cfg->token,
			.fetch_timeout_ms = cfg->fetch_timeout_ms, .proxy = cfg->proxy,
		};
		struct mfs_srcset_config sc = {
			.mirrors = cfg->mirrors, .n_mirrors = cfg->n_mirrors,
			.peers = cfg->peers, .n_peers = cfg->n_peers, .self_url = self,
			.hub_endpoint = cfg->endpoint, .hub_token = cfg->token,
			.peer_token = cfg->peer_token, .mirror_token = cfg->mirror_token,
			.proxy = cfg->proxy,
			.fetch_timeout_ms = cfg->fetch_timeout_ms,
		};
		if (cfg->endpoint) {
			rc = mfs_hub_new(&hub_cfg, &s->hub);
			if (rc) {
				mfs_error("serve: bad endpoint %s", cfg->endpoint);
				goto fail;
			}
		}
		rc = mfs_srcset_new(&sc, s->hub, &s->src);
		if (rc)
			goto fail;
	}
	{
		struct mfs_cat_config cc = { .ref_ttl_ms = 60000, .offline = !cfg->pull_through };
		rc = mfs_cat_new(s->ix, s->hub, &cc, &s->cat);
		if (rc)
			goto fail;
		mfs_cat_set_mirrors(s->cat, s->src);
	}
	{
		struct mfs_blobio_config bc = { .sources = s->src };
		rc = mfs_blobio_new(&bc, s->bs, s->ix, s->hub, s->pull_through ? s->cat : NULL,
				    &s->bio);
		if (rc)
			goto fail;
	}
	*out = s;
	return 0;
fail:
	mfs_serve_free(s);
	return rc;
}

int mfs_serve_port(const struct mfs_serve *s)
{
	return mfs_httpd_port(s->httpd);
}

int mfs_serve_run(struct mfs_serve *s, int stop_fd)
{
	return mfs_httpd_run(s->httpd, stop_fd);
}

void mfs_serve_free(struct mfs_serve *s)
{
	if (!s)
		return;
	/* workers first: they use everything below */
	mfs_httpd_free(s->httpd);
	mfs_blobio_free(s->bio);
	mfs_cat_free(s->cat);
	mfs_srcset_free(s->src);
	mfs_hub_free(s->hub);
	mfs_bs_close(s->bs);
	mfs_ix_close(s->ix);
	map_free(s);
	if (s->peer_token) {
		explicit_bzero(s->peer_token, strlen(s->peer_token));
		free(s->peer_token);
	}
	pthread_mutex_destroy(&s->map_mu);
	free(s);
}
