/*
 * access.c - who may see what through `modelfs serve`.
 *
 * Rules:
 *   - the peer token (Bearer, compared in constant time) opens everything;
 *     a wrong token gets 401 whatever it asked for;
 *   - without it, a repo is served only if the index records it as not
 *     private (only the hub can clear that; catalog.c) and its files only
 *     if it is also not gated; a repo whose visibility was never checked
 *     counts as private;
 *   - access is checked before the revision is resolved, and an anonymous
 *     client gets the same 401 "Repository not found" for a private repo,
 *     a missing one and a missing revision of either (as the hub answers),
 *     so repos cannot be enumerated. The one exception: with pull-through
 *     a repo the index has never seen is resolved first (that is how its
 *     visibility is learnt), then checked the same way;
 *   - pull-through work (anything not answerable from the index and the
 *     cache) is rate-limited per client address (MFS_SV_PULL_*).
 * It does not write content (content.c) or decide routes (serve.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "serve/internal.h"
#include "util/hash.h"
#include "util/size.h"

bool mfs_sv_token_ok(const struct mfs_serve *s, const struct mfs_httpd_req *rq)
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

int mfs_sv_visibility(struct mfs_serve *s, const struct mfs_repo *repo)
{
	bool priv = true;
	char gated[16] = "manual";
	int64_t at;

	if (mfs_ix_repo_get(s->ix, repo, &priv, gated, &at) != 0 || priv)
		return -1;
	return strcmp(gated, "false") == 0 ? 0 : 1;
}

static int replied(int rc)
{
	return rc < 0 ? rc : 1;
}

/* The answer for an anonymous client that may not see a repo, or asked
 * for one (or a revision) that does not exist: the same for all. */
static int not_found_anon(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq)
{
	return replied(mfs_sv_error(c, rq, 401, "RepoNotFound", "Repository not found", NULL));
}

static int reply_errno(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq, int err)
{
	int rc;

	if (err == -ENOENT)
		rc = mfs_sv_error(c, rq, 404, "RepoNotFound", "Repository or revision not found",
				  NULL);
	else if (err == -EACCES)
		rc = mfs_sv_error(c, rq, 403, "GatedRepo", "Access restricted", NULL);
	else
		rc = mfs_sv_error(c, rq, 502, NULL, "Upstream unavailable", NULL);
	return replied(rc);
}

/* True when answering needs nothing the index does not hold yet. */
static bool known_locally(struct mfs_serve *s, const struct mfs_repo *repo, const char *rev)
{
	char commit[41];
	int64_t at, date;
	bool listed = false;

	if (strlen(rev) == 40 && mfs_hex_valid(rev, 40))
		snprintf(commit, sizeof(commit), "%s", rev);
	else if (mfs_ix_ref_get(s->ix, repo, rev, commit, &at) != 0)
		return false;
	return mfs_ix_commit_get(s->ix, repo, commit, &date, &listed) == 0 && listed;
}

int mfs_sv_open_commit(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		       struct mfs_httpd_conn *c, const struct mfs_repo *repo, const char *rev,
		       bool content, char commit[41], int64_t *date, const struct mfs_tree **t)
{
	bool tok = mfs_sv_token_ok(s, rq);
	bool priv_row = false;
	char gated[16];
	int64_t at;
	int vis, rc;

	if (rq->authorization && !tok)
		return replied(mfs_sv_error(c, rq, 401, NULL,
					    "Invalid credentials in Authorization header", NULL));
	vis = mfs_sv_visibility(s, repo);
	if (!tok && vis < 0) {
		/* known and private: no lookup at all. Unknown: only pull-through
		 * can learn what it is. */
		bool known = mfs_ix_repo_get(s->ix, repo, &priv_row, gated, &at) == 0;
		if (known || !s->pull_through)
			return not_found_anon(c, rq);
	}
	if (s->pull_through && !tok && !known_locally(s, repo, rev) && !mfs_sv_pull_budget(s, rq))
		return replied(mfs_sv_too_many(c, rq));
	rc = mfs_cat_resolve(s->cat, repo, rev, commit, date);
	/* Without a hub we cannot ask which branch is the default one: a
	 * cache filled through "org/name" knows "" and one filled through
	 * "org/name@main" knows "main"; take either for the other (the usual
	 * default branch), never for any other name. */
	if (rc == -ENOENT && !s->pull_through && (!strcmp(rev, "main") || !rev[0]))
		rc = mfs_cat_resolve(s->cat, repo, rev[0] ? "" : "main", commit, date);
	if (!tok) {
		vis = mfs_sv_visibility(s, repo); /* resolving may have learnt it */
		if (vis < 0)
			return not_found_anon(c, rq);
		if (!rc && content && vis > 0)
			return replied(mfs_sv_error(c, rq, 403, "GatedRepo",
						    "Access to this repo is restricted", NULL));
	}
	if (rc)
		return reply_errno(c, rq, rc);
	rc = mfs_cat_tree_hold(s->cat, repo, commit, t);
	if (rc)
		return reply_errno(c, rq, rc);
	return 0;
}

/* ---- pull-through budget --------------------------------------------------- */

bool mfs_sv_pull_budget(struct mfs_serve *s, const struct mfs_httpd_req *rq)
{
	const char *who = rq->client ? rq->client : "";
	struct mfs_sv_bucket *b = &s->pull[mfs_xxh64(who, strlen(who), 0) % MFS_SV_PULL_SLOTS];
	int64_t now = mfs_now_ms();
	bool ok;

	if (mfs_sv_token_ok(s, rq))
		return true;
	pthread_mutex_lock(&s->pull_mu);
	if (b->at_ms == 0) {
		/* first use; clients whose addresses share a slot share its budget */
		b->tokens = MFS_SV_PULL_BURST;
		b->at_ms = now;
	}
	b->tokens += (double)(now - b->at_ms) * MFS_SV_PULL_RATE / 1000.0;
	if (b->tokens > MFS_SV_PULL_BURST)
		b->tokens = MFS_SV_PULL_BURST;
	b->at_ms = now;
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	pthread_mutex_unlock(&s->pull_mu);
	return ok;
}

int mfs_sv_too_many(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq)
{
	static const char body[] = "{\"error\":\"Too many requests: slow down\"}";

	return mfs_sv_reply(c, rq, 429, "application/json; charset=utf-8", "Retry-After: 1\r\n",
			    body, sizeof(body) - 1);
}
