/*
 * serve.c - `modelfs serve`: the routes table, request dispatch and setup
 * (see serve.h for what is served; internal.h for the other parts).
 *
 * A request target is split on '/' first and each segment then
 * percent-decoded (so %2F inside a revision stays inside it); "." and
 * ".." segments are refused. The segments are matched against ROUTES in
 * order; the first match's handler runs with the repo, revision, path or
 * content id it captured, already validated.
 *
 * It does not decide access (access.c), write bytes (content.c) or build
 * metadata answers (api.c).
 */
#include "serve/serve.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/blockstore.h"
#include "serve/chunks.h"
#include "serve/internal.h"
#include "util/log.h"

#define MAX_SEGS 64
/* Trees kept in memory at once (each can be tens of MB for a big repo);
 * the index holds every tree anyway. */
#define MAX_TREES 32

enum { M_GET = 1, M_POST = 2 };

/* Pattern segments: a literal, or one of
 *   {type}  "models" | "datasets" (sets the repo type)
 *   {org} {name}  the repo id, checked with mfs_repo_id_valid
 *   {rev}   a revision (any one segment)
 *   {id}    a content id (checked by the route)
 *   {path*} the rest, zero or more segments; {path+} one or more */
struct route {
	int methods;
	const char *pattern;
	mfs_sv_route_fn fn;
};

static const struct route ROUTES[] = {
	{ M_GET, "blobs/{id}", mfs_sv_route_blob },
	{ M_GET, "chunks/{id}", mfs_sv_route_chunks },
	{ M_GET, "api/{type}", mfs_sv_route_list },
	{ M_GET, "api/{type}/{org}/{name}", mfs_sv_route_info },
	{ M_GET, "api/{type}/{org}/{name}/revision/{rev}", mfs_sv_route_info },
	{ M_GET, "api/{type}/{org}/{name}/tree/{rev}/{path*}", mfs_sv_route_tree },
	{ M_POST, "api/{type}/{org}/{name}/paths-info/{rev}", mfs_sv_route_paths_info },
	{ M_GET, "datasets/{org}/{name}/resolve/{rev}/{path+}", mfs_sv_route_resolve },
	{ M_GET, "{org}/{name}/resolve/{rev}/{path+}", mfs_sv_route_resolve },
};

/* Matches segs against pattern; fills a (path into *path). 1 match, 0 no
 * match, -400 a match with a bad repo id or path. */
static int match(const char *pattern, char **segs, size_t nseg, struct mfs_sv_args *a,
		 struct mfs_strbuf *path)
{
	const char *org = NULL, *name = NULL;
	size_t k = 0;
	bool dataset_prefix = strncmp(pattern, "datasets/", 9) == 0;

	memset(a, 0, sizeof(*a));
	a->rev = a->path = "";
	a->repo.type = dataset_prefix ? MFS_REPO_DATASET : MFS_REPO_MODEL;
	for (const char *p = pattern; *p; k++) {
		size_t len = strcspn(p, "/");
		bool rest = !strncmp(p, "{path*}", len) || !strncmp(p, "{path+}", len);

		if (rest) {
			if (p[5] == '+' && k >= nseg)
				return 0;
			for (; k < nseg; k++)
				if (segs[k][0] || k + 1 < nseg) /* a trailing '/' adds nothing */
					mfs_strbuf_printf(path, "%s%s", path->len ? "/" : "", segs[k]);
			if (path->err)
				return -ENOMEM;
			if (path->len && !mfs_path_valid(path->buf, path->len))
				return -400;
			a->path = path->len ? path->buf : "";
			break;
		}
		if (k >= nseg)
			return 0;
		if (!strncmp(p, "{type}", len)) {
			if (strcmp(segs[k], "models") && strcmp(segs[k], "datasets"))
				return 0;
			a->repo.type = segs[k][0] == 'm' ? MFS_REPO_MODEL : MFS_REPO_DATASET;
		} else if (!strncmp(p, "{org}", len)) {
			org = segs[k];
		} else if (!strncmp(p, "{name}", len)) {
			name = segs[k];
		} else if (!strncmp(p, "{rev}", len)) {
			a->rev = segs[k];
		} else if (!strncmp(p, "{id}", len)) {
			a->id = segs[k];
		} else if (strlen(segs[k]) != len || strncmp(p, segs[k], len) != 0) {
			return 0;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	if (k < nseg)
		return 0;
	if (org && name) {
		int n = snprintf(a->repo.id, sizeof(a->repo.id), "%s/%s", org, name);
		if (n < 0 || (size_t)n >= sizeof(a->repo.id) || !mfs_repo_id_valid(a->repo.id))
			return -400;
	}
	return 1;
}

static int handler(void *ctx, const struct mfs_httpd_req *rq, struct mfs_httpd_conn *c)
{
	struct mfs_serve *s = ctx;
	char *segs[MAX_SEGS];
	size_t nseg = 0;
	char *work = NULL, *p;
	int method = !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD") ? M_GET :
		     !strcmp(rq->method, "POST") ? M_POST : 0;
	int rc = 0;

	if (!method)
		return mfs_sv_reply(c, rq, 405, NULL, "Allow: GET, HEAD, POST\r\n", NULL, 0);
	work = strdup(rq->target + 1);
	if (!work)
		return -ENOMEM;
	for (p = work; nseg < MAX_SEGS;) {
		char *sl = strchr(p, '/');
		if (sl)
			*sl = '\0';
		if (!mfs_sv_pct_decode(p, strlen(p), p, false)) {
			rc = mfs_sv_error(c, rq, 400, NULL, "Bad percent-encoding", NULL);
			goto out;
		}
		if (!strcmp(p, "..") || !strcmp(p, ".")) {
			rc = mfs_sv_error(c, rq, 400, NULL, "Bad path", NULL);
			goto out;
		}
		segs[nseg++] = p;
		if (!sl)
			break;
		p = sl + 1;
	}
	if (nseg == MAX_SEGS) {
		rc = mfs_sv_error(c, rq, 414, NULL, "Too deep", NULL);
		goto out;
	}
	for (size_t i = 0; i < sizeof(ROUTES) / sizeof(ROUTES[0]); i++) {
		struct mfs_strbuf path = MFS_STRBUF_INIT;
		struct mfs_sv_args a;
		int m;

		if (!(ROUTES[i].methods & method))
			continue;
		m = match(ROUTES[i].pattern, segs, nseg, &a, &path);
		if (m == 1)
			rc = ROUTES[i].fn(s, rq, c, &a);
		else if (m == -400)
			rc = mfs_sv_error(c, rq, 400, NULL, "Bad repo id or path", NULL);
		else if (m < 0)
			rc = m;
		mfs_strbuf_free(&path);
		if (m != 0)
			goto out;
	}
	rc = mfs_sv_error(c, rq, 404, NULL, "Not found", NULL);
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
	char path[PATH_MAX], self[128], why[PATH_MAX + 256];
	int rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->pull_mu, NULL);
	s->pull_through = cfg->pull_through;
	if (cfg->peer_token && cfg->peer_token[0] && !(s->peer_token = strdup(cfg->peer_token))) {
		rc = -ENOMEM;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/trust", cfg->cache_dir);
	if (!(s->trust_dir = strdup(path))) {
		rc = -ENOMEM;
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
	/* The same context a mount builds (core/context.h): quota, evictor and
	 * cross-process block locks come with it. Without pull-through nothing
	 * is fetched, but the block layer still serves (and checks) the cache.
	 * A bounded tree cache: clients choose which trees get loaded. */
	struct mfs_ctx_config cc = {
		.cache_dir = cfg->cache_dir, .endpoint = cfg->endpoint, .token = cfg->token,
		.fetch = cfg->pull_through && cfg->endpoint,
		.mirrors = cfg->mirrors, .n_mirrors = cfg->n_mirrors,
		.peers = cfg->peers, .n_peers = cfg->n_peers, .self_url = self,
		.peer_token = cfg->peer_token, .mirror_token = cfg->mirror_token,
		.proxy = cfg->proxy, .fetch_timeout_ms = cfg->fetch_timeout_ms,
		.ref_ttl_ms = 60000, .max_trees = MAX_TREES, .quota = cfg->cache_size,
		.verify_strict = cfg->verify_strict,
	};
	rc = mfs_ctx_open(&cc, &s->ctx, why, sizeof(why));
	if (rc == 0)
		rc = mfs_ctx_start_io(s->ctx, NULL, why, sizeof(why));
	if (rc) {
		mfs_error("serve: %s", why);
		goto fail;
	}
	s->ix = s->ctx->ix;
	s->bs = s->ctx->bs;
	s->hub = s->ctx->hub;
	s->src = s->ctx->src;
	s->cat = s->ctx->cat;
	s->bio = s->ctx->bio;
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
	mfs_ctx_close(s->ctx);
	if (s->peer_token) {
		explicit_bzero(s->peer_token, strlen(s->peer_token));
		free(s->peer_token);
	}
	free(s->trust_dir);
	pthread_mutex_destroy(&s->pull_mu);
	free(s);
}
