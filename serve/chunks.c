/*
 * chunks.c - the Xet chunk lists `modelfs serve` hands to peers
 * (GET /chunks/<xetHash>, format in xet/chunklist.c and the README).
 *
 * A list is served only for a file this cache holds complete and verified
 * against the hub's listing, and only if hashing its bytes gives the
 * listing's xetHash (so a fake or wrong xetHash gets no list). It is
 * computed once, from the stored blocks, and kept in <cache>/trust/chunks/
 * next to the lists the block layer fetched and checked itself.
 * It does not decide who may see a list (serve.c checks the peer token the
 * same way as for /blobs) nor serve file bytes.
 */
#include "serve/chunks.h"
#include "serve/internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "xet/xet.h"

static int read_file(const char *p, uint8_t **out, size_t *len)
{
	struct stat st;
	int fd = open(p, O_RDONLY | O_CLOEXEC), rc = -ENOENT;

	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size <= (64 << 20) &&
	    (*out = malloc((size_t)st.st_size))) {
		if (read(fd, *out, (size_t)st.st_size) == st.st_size) {
			*len = (size_t)st.st_size;
			rc = 0;
		} else {
			free(*out);
			*out = NULL;
		}
	}
	close(fd);
	return rc;
}

/* A stored list that decodes and checks against the xetHash. */
static bool list_ok(const uint8_t *buf, size_t len, const uint8_t want[32], uint64_t size)
{
	struct mfs_xet_chunk *c;
	size_t n;
	uint64_t sz;
	bool ok = mfs_xet_list_decode(buf, len, &c, &n, &sz) == 0 && sz == size &&
		  mfs_xet_list_check(c, n, size, want) == 0;

	free(c);
	return ok;
}

static int compute(struct mfs_ix *ix, struct mfs_bs *bs, const char *cid, uint64_t size,
		   const uint8_t want[32], uint8_t **out, size_t *len)
{
	uint64_t isize;
	uint32_t bsize;
	bool verified = false;
	int rc = mfs_ix_blob_get(ix, cid, &isize, &bsize, &verified, NULL);

	if (rc || !verified || isize != size || bsize == 0)
		return -ENOENT;
	struct mfs_xet_hasher *x = mfs_xet_hasher_new();
	uint8_t *buf = malloc(bsize), got[32];
	if (!x || !buf) {
		rc = -ENOMEM;
		goto out;
	}
	uint32_t nblocks = (uint32_t)((size + bsize - 1) / bsize);
	for (uint32_t i = 0; i < nblocks && !rc; i++) {
		size_t n;
		rc = mfs_bs_get(bs, cid, i, buf, bsize, &n);
		if (!rc)
			rc = mfs_xet_hasher_update(x, buf, n);
	}
	if (rc) {
		rc = rc == -ENOMEM ? rc : -ENOENT; /* evicted meanwhile: not here */
		goto out;
	}
	rc = mfs_xet_hasher_final(x, got);
	if (!rc && memcmp(got, want, 32) != 0) {
		mfs_warn("serve: %s hashes to another xetHash than its listing says; no chunk list",
			 cid);
		rc = -ENOENT;
	}
	if (!rc) {
		size_t nc;
		const struct mfs_xet_chunk *c = mfs_xet_hasher_chunks(x, &nc);
		rc = mfs_xet_list_encode(c, nc, size, out, len);
	}
out:
	mfs_xet_hasher_free(x);
	free(buf);
	return rc;
}

int mfs_serve_chunk_list(const char *trust_dir, struct mfs_ix *ix, struct mfs_bs *bs,
			 const char *xet, const char *cid, uint64_t size, uint8_t **out,
			 size_t *len)
{
	char dir[4096], p[4200], tmp[4300];
	uint8_t want[32];
	int rc;

	*out = NULL;
	if (mfs_xet_parse(xet, want))
		return -EINVAL;
	snprintf(dir, sizeof dir, "%s/chunks", trust_dir);
	snprintf(p, sizeof p, "%s/%s", dir, xet);
	if (read_file(p, out, len) == 0) {
		if (list_ok(*out, *len, want, size))
			return 0;
		free(*out);
		*out = NULL;
	}
	rc = compute(ix, bs, cid, size, want, out, len);
	if (rc)
		return rc;
	(void)mkdir(trust_dir, 0755);
	(void)mkdir(dir, 0755);
	snprintf(tmp, sizeof tmp, "%s.tmp%ld", p, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		bool ok = write(fd, *out, *len) == (ssize_t)*len;
		close(fd);
		if (!ok || rename(tmp, p))
			(void)unlink(tmp);
	}
	return 0;
}

int mfs_sv_route_chunks(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			struct mfs_httpd_conn *c, const struct mfs_sv_args *a)
{
	char cid[65], xet[65];
	bool tok = mfs_sv_token_ok(s, rq), ok = false;
	struct mfs_ix_holder *hs = NULL;
	size_t nh = 0, len = 0;
	uint8_t *body = NULL;
	uint64_t size;
	int rc;

	if (strlen(a->id) != 64 || !mfs_hex_valid(a->id, 64))
		return mfs_sv_error(c, rq, 400, NULL, "Bad xetHash", NULL);
	if (rq->authorization && !tok)
		return mfs_sv_error(c, rq, 401, NULL, "Invalid credentials in Authorization header",
				    NULL);
	for (size_t i = 0; i <= 64; i++)
		xet[i] = (char)tolower((unsigned char)a->id[i]);
	/* The same rule as the file's bytes: a list of content only private
	 * or gated repos hold needs the peer token. */
	if (mfs_ix_xet_content(s->ix, xet, cid, &size) == 0 &&
	    mfs_ix_content_holders(s->ix, cid, 16, &hs, &nh) == 0)
		for (size_t i = 0; i < nh && !ok; i++)
			ok = tok || (!hs[i].private_ && strcmp(hs[i].gated, "false") == 0);
	mfs_ix_holders_free(hs, nh);
	if (!ok)
		return mfs_sv_error(c, rq, 404, NULL, "Not here", NULL);
	rc = mfs_serve_chunk_list(s->trust_dir, s->ix, s->bs, xet, cid, size, &body, &len);
	if (rc)
		return rc == -ENOMEM ? rc : mfs_sv_error(c, rq, 404, NULL, "No verified chunk list",
							   NULL);
	rc = mfs_sv_reply(c, rq, 200, "application/octet-stream", NULL, (const char *)body, len);
	free(body);
	return rc;
}
