/*
 * content.c - the bytes `modelfs serve` answers with: /resolve (by repo,
 * revision and path) and /blobs/<id> (by content id, for peers).
 *
 * A content id is looked up in the index (every listed file holding it)
 * on each request, and the visibility of each holder's repo is read
 * then: content is served anonymously only while some public, non-gated
 * repo holds it, so a repo turning private stops its bytes being served
 * by hash at once. A peer holding the token may name where to look
 * (?repo=&commit=&path=, with pull-through): the hint is checked against
 * our own listing; hints from anyone else are ignored.
 *
 * Bytes come only through the block layer (checksummed blocks, hashed
 * blobs). The first chunk is read before the status line goes out, so a
 * source failure is an honest error status rather than a cut body.
 * It does not decide routes (serve.c) or repo access (access.c).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/internal.h"
#include "util/log.h"

#define CHUNK (1u << 20)
/* Holders looked at per /blobs request: enough to find a public one among
 * many private copies of a common file (the public ones sort first). */
#define MAX_HOLDERS 16

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
int mfs_sv_send_content(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			struct mfs_httpd_conn *c, const struct mfs_sv_blob *r, const char *extra,
			bool peer)
{
	struct mfs_blob_desc d = { .repo = &r->repo, .commit = r->commit, .path = r->path,
				   .content_id = r->id, .size = r->size, .lfs = r->lfs };
	struct mfs_strbuf h = MFS_STRBUF_INIT;
	struct mfs_readahead ra = { 0 };
	struct mfs_blob *b = NULL;
	uint64_t a = 0, z = 0, end, have;
	char *buf = NULL;
	int pr, st, rc;

	pr = mfs_sv_parse_range(rq->range, r->size, &a, &z);
	if (pr < 0) {
		if (pr == -416) {
			char cr[64];
			snprintf(cr, sizeof(cr), "Content-Range: bytes */%llu\r\n",
				 (unsigned long long)r->size);
			return mfs_sv_reply(c, rq, 416, NULL, cr, NULL, 0);
		}
		return mfs_sv_error(c, rq, 400, NULL, "Malformed Range", NULL);
	}
	if (r->size == 0)
		return mfs_sv_reply(c, rq, 200, "application/octet-stream", extra, NULL, 0);
	if (pr == 1) {
		a = 0;
		z = r->size - 1;
	}
	end = z + 1;
	have = cached_prefix(s, r->id, r->size, a, end);
	if (!s->pull_through) {
		if (have == 0 || (!peer && a + have < end))
			return mfs_sv_error(c, rq, 404, NULL, "Not cached here", NULL);
		end = a + have;
	} else if (a + have < end && !mfs_sv_pull_budget(s, rq)) {
		return mfs_sv_too_many(c, rq);
	}
	st = pr == 1 && end == r->size ? 200 : 206;
	mfs_strbuf_printf(&h, "HTTP/1.1 %d %s\r\nContent-Length: %llu\r\n"
			  "Content-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\n%s",
			  st, mfs_sv_reason(st), (unsigned long long)(end - a), extra ? extra : "");
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
		rc = mfs_sv_error(c, rq, 500, NULL, "Cache unavailable", NULL);
		goto out;
	}
	buf = malloc(CHUNK);
	if (!buf) {
		rc = mfs_sv_error(c, rq, 500, NULL, "Out of memory", NULL);
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
				rc = rc == -EACCES ? mfs_sv_error(c, rq, 403, NULL, "Upstream refused", NULL)
						   : mfs_sv_error(c, rq, 502, NULL, "Upstream failed", NULL);
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

int mfs_sv_route_resolve(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			 struct mfs_httpd_conn *c, const struct mfs_sv_args *a)
{
	struct mfs_strbuf h = MFS_STRBUF_INIT;
	const struct mfs_tree *t;
	const struct mfs_entry *e;
	struct mfs_sv_blob r = { .repo = a->repo };
	char commit[41];
	int64_t ds;
	uint32_t node;
	int rc;

	rc = mfs_sv_open_commit(s, rq, c, &a->repo, a->rev, true, commit, &ds, &t);
	if (rc)
		return rc < 0 ? rc : 0;
	if (mfs_tree_find(t, a->path, &node) != 0 || mfs_tree_is_dir(t, node)) {
		rc = mfs_sv_error(c, rq, 404, "EntryNotFound", "Entry not found", commit);
		goto out;
	}
	e = t->nodes[node].e;
	snprintf(r.id, sizeof(r.id), "%s", mfs_entry_content_id(e));
	memcpy(r.commit, commit, 41);
	r.path = e->path;
	r.size = e->size;
	r.lfs = e->sha256[0] != '\0';
	mfs_strbuf_printf(&h, "X-Repo-Commit: %s\r\n", commit);
	if (r.lfs)
		mfs_strbuf_printf(&h, "ETag: \"%s\"\r\nX-Linked-Etag: \"%s\"\r\nX-Linked-Size: %llu\r\n",
				  e->sha256, e->sha256, (unsigned long long)e->size);
	else
		mfs_strbuf_printf(&h, "ETag: \"%s\"\r\n", e->oid);
	rc = h.err ? mfs_sv_error(c, rq, 500, NULL, "Out of memory", NULL)
		   : mfs_sv_send_content(s, rq, c, &r, h.buf, false);
out:
	mfs_strbuf_free(&h);
	mfs_cat_tree_release(s->cat, t);
	return rc;
}

/* With the token and pull-through: the peer's hint (repo, commit, path),
 * checked against our own listing of that commit. 0 and *out filled
 * (path malloc'd) when it holds id. */
static int blob_from_hint(struct mfs_serve *s, const struct mfs_httpd_req *rq, const char *id,
			  struct mfs_ix_holder *out)
{
	char rp[MFS_REPO_ID_MAX + 16], commit[48], path[MFS_PATH_MAX + 1], resolved[41];
	struct mfs_repo repo = { 0 };
	const struct mfs_tree *t;
	const struct mfs_entry *e;
	int64_t ds;
	uint32_t node;
	int rc = -ENOENT;

	if (!mfs_sv_qparam(rq->query, "repo", rp, sizeof(rp)) ||
	    !mfs_sv_qparam(rq->query, "commit", commit, sizeof(commit)) ||
	    !mfs_sv_qparam(rq->query, "path", path, sizeof(path)))
		return -ENOENT;
	if (strncmp(rp, "models/", 7) == 0) {
		repo.type = MFS_REPO_MODEL;
		snprintf(repo.id, sizeof(repo.id), "%.200s", rp + 7);
	} else if (strncmp(rp, "datasets/", 9) == 0) {
		repo.type = MFS_REPO_DATASET;
		snprintf(repo.id, sizeof(repo.id), "%.200s", rp + 9);
	} else {
		return -ENOENT;
	}
	if (!mfs_repo_id_valid(repo.id) || strlen(commit) != 40 || !mfs_hex_valid(commit, 40) ||
	    !mfs_path_valid(path, strlen(path)))
		return -ENOENT;
	if (mfs_cat_resolve(s->cat, &repo, commit, resolved, &ds) != 0 ||
	    mfs_cat_tree_hold(s->cat, &repo, resolved, &t) != 0)
		return -ENOENT;
	if (mfs_tree_find(t, path, &node) == 0 && !mfs_tree_is_dir(t, node) &&
	    strcmp(mfs_entry_content_id(e = t->nodes[node].e), id) == 0) {
		memset(out, 0, sizeof(*out));
		out->repo = repo;
		memcpy(out->commit, resolved, 41);
		out->path = strdup(e->path);
		out->size = e->size;
		out->lfs = e->sha256[0] != '\0';
		rc = out->path ? 0 : -ENOMEM;
	}
	mfs_cat_tree_release(s->cat, t);
	return rc;
}

int mfs_sv_route_blob(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, const struct mfs_sv_args *a)
{
	size_t n = strlen(a->id), nh = 0;
	bool tok = mfs_sv_token_ok(s, rq);
	struct mfs_ix_holder *hs = NULL, hint = { 0 }, *pick = NULL;
	struct mfs_sv_blob r;
	char id[65], extra[160];
	int rc;

	if ((n != 40 && n != 64) || !mfs_hex_valid(a->id, n))
		return mfs_sv_error(c, rq, 400, NULL, "Bad content id", NULL);
	if (rq->authorization && !tok)
		return mfs_sv_error(c, rq, 401, NULL, "Invalid credentials in Authorization header",
				    NULL);
	for (size_t i = 0; i <= n; i++)
		id[i] = (char)tolower((unsigned char)a->id[i]);
	(void)mfs_ix_content_holders(s->ix, id, MAX_HOLDERS, &hs, &nh);
	for (size_t i = 0; i < nh && !pick; i++)
		if (tok || (!hs[i].private_ && strcmp(hs[i].gated, "false") == 0))
			pick = &hs[i];
	if (!pick && tok && s->pull_through && blob_from_hint(s, rq, id, &hint) == 0)
		pick = &hint;
	if (!pick) {
		/* without the token, content only private repos hold is "not
		 * here", exactly like content nobody holds */
		rc = mfs_sv_error(c, rq, 404, NULL, "Not here", NULL);
		goto out;
	}
	r = (struct mfs_sv_blob){ .repo = pick->repo, .path = pick->path, .size = pick->size,
				  .lfs = pick->lfs };
	memcpy(r.id, id, sizeof(r.id));
	memcpy(r.commit, pick->commit, sizeof(r.commit));
	snprintf(extra, sizeof(extra), "ETag: \"%s\"\r\n", id);
	rc = mfs_sv_send_content(s, rq, c, &r, extra, true);
out:
	mfs_ix_holders_free(hs, nh);
	free(hint.path);
	return rc;
}
