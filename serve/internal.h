/*
 * internal.h - what the parts of `modelfs serve` share (not a public API).
 *
 * serve.c    the routes table, request dispatch and setup
 * reply.c    response writing, query strings, percent-decoding, Range
 * access.c   who may see what: the peer token, repo visibility (checked
 *            before anything is resolved), per-client pull-through budget
 * content.c  bytes: /resolve and /blobs bodies, blob lookup by content id
 *            (in the index, every holder's current visibility checked)
 * api.c      the metadata routes (repo info, tree, paths-info, list)
 */
#ifndef MFS_SERVE_INTERNAL_H
#define MFS_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/blobio.h"
#include "core/catalog.h"
#include "core/context.h"
#include "fetch/hub.h"
#include "fetch/source.h"
#include "index/index.h"
#include "serve/httpd.h"
#include "util/repo.h"
#include "util/strbuf.h"

/* Pull-through work a client address may start: a bucket of BURST that
 * refills at RATE per second (clients holding the peer token are not
 * limited: they are this cluster's own nodes). */
#define MFS_SV_PULL_RATE 10
#define MFS_SV_PULL_BURST 40
#define MFS_SV_PULL_SLOTS 1024

struct mfs_sv_bucket {
	double tokens;
	int64_t at_ms;
};

struct mfs_serve {
	char *peer_token;
	char *trust_dir;                 /* <cache>/trust: Xet chunk lists (chunks.c) */
	bool pull_through;
	struct mfs_ctx *ctx;             /* owns everything below but httpd */
	struct mfs_ix *ix;
	struct mfs_bs *bs;
	struct mfs_hub *hub;
	struct mfs_srcset *src;
	struct mfs_catalog *cat;
	struct mfs_blobio *bio;
	struct mfs_httpd *httpd;

	pthread_mutex_t pull_mu;
	struct mfs_sv_bucket pull[MFS_SV_PULL_SLOTS]; /* protected by pull_mu */
};

/* What a route was matched with (strings point into the request). */
struct mfs_sv_args {
	struct mfs_repo repo;
	const char *rev;
	const char *path;      /* "" when the route has none */
	const char *id;        /* /blobs/{id} */
};

typedef int (*mfs_sv_route_fn)(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			       struct mfs_httpd_conn *c, const struct mfs_sv_args *a);

/* ---- reply.c ---- */
const char *mfs_sv_reason(int st);
int mfs_sv_reply(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq, int st,
		 const char *ctype, const char *extra, const char *body, size_t blen);
int mfs_sv_error(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq, int st,
		 const char *code, const char *msg, const char *commit);
int mfs_sv_json(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq,
		struct mfs_strbuf *sb, const char *commit);
/* Percent-decodes n bytes into out (n+1 bytes); '+' as space when form.
 * false on a bad escape or an encoded NUL. */
bool mfs_sv_pct_decode(const char *in, size_t n, char *out, bool form);
/* First value of `name` in a query string, decoded; false when absent. */
bool mfs_sv_qparam(const char *q, const char *name, char *out, size_t cap);
bool mfs_sv_qflag(const char *q, const char *name);
/* A Range header against size: 0 ok (a..b inclusive), 1 no range, -416
 * unsatisfiable, -400 malformed. */
int mfs_sv_parse_range(const char *h, uint64_t size, uint64_t *a, uint64_t *b);

/* ---- access.c ---- */
bool mfs_sv_token_ok(const struct mfs_serve *s, const struct mfs_httpd_req *rq);
/* The repo's visibility as the index records it: 0 public, 1 gated, -1
 * private or never checked. */
int mfs_sv_visibility(struct mfs_serve *s, const struct mfs_repo *repo);
/* Resolves rev and loads the tree, access checked first; on success the
 * caller releases *t with mfs_cat_tree_release. 0 ok; otherwise it has
 * replied (returns 1, or a negative write error). */
int mfs_sv_open_commit(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		       struct mfs_httpd_conn *c, const struct mfs_repo *repo, const char *rev,
		       bool content, char commit[41], int64_t *date, const struct mfs_tree **t);
/* Takes one unit of pull-through budget for this client: true if allowed. */
bool mfs_sv_pull_budget(struct mfs_serve *s, const struct mfs_httpd_req *rq);
int mfs_sv_too_many(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq);

/* ---- content.c ---- */
struct mfs_sv_blob {
	char id[65];
	struct mfs_repo repo;
	char commit[41];
	const char *path;
	uint64_t size;
	bool lfs;
};
int mfs_sv_send_content(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			struct mfs_httpd_conn *c, const struct mfs_sv_blob *b, const char *extra,
			bool peer);
int mfs_sv_route_blob(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, const struct mfs_sv_args *a);
int mfs_sv_route_resolve(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			 struct mfs_httpd_conn *c, const struct mfs_sv_args *a);

/* ---- api.c ---- */
int mfs_sv_route_info(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, const struct mfs_sv_args *a);
int mfs_sv_route_tree(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, const struct mfs_sv_args *a);
int mfs_sv_route_paths_info(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			    struct mfs_httpd_conn *c, const struct mfs_sv_args *a);
int mfs_sv_route_list(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, const struct mfs_sv_args *a);

#endif
