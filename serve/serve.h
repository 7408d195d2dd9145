/*
 * serve.h - `modelfs serve`: this machine's cache as an HF-compatible
 * mirror and a content-addressed peer.
 *
 * What it serves (from the cache index; nothing else):
 *   GET  /api/{models|datasets}/{id}[/revision/{rev}]   repo info (sha, siblings)
 *   GET  /api/{type}s/{id}/tree/{rev}[/{path}]?recursive=
 *   POST /api/{type}s/{id}/paths-info/{rev}              form or JSON body
 *   GET  /api/{type}s?author=ORG                         repos known of an org
 *   HEAD|GET /[datasets/]{id}/resolve/{rev}/{path}       bytes, Range -> 206, with
 *        the hub's headers (X-Repo-Commit, ETag, X-Linked-Etag/-Size,
 *        Accept-Ranges), answered directly (no redirect)
 *   HEAD|GET /blobs/{sha256|git sha1}                    for peers: Range -> 206
 *        with the bytes it has (a prefix of the range), 404 if none
 * Content of private or gated repos only with "Authorization: Bearer
 * <peer token>" (visibility as the hub last said; anonymous clients get
 * the same 401 for private and missing repos, and 404 by hash for private
 * and unknown content); blocks only through the block layer, which checks
 * every block's checksum and drops blobs that fail their hash. With
 * pull_through a miss is fetched from this node's own sources (hub,
 * mirrors, peers ranked above it), cached and streamed, at a bounded rate
 * per client address.
 *
 * What it does not do: uploads, write endpoints, TLS.
 */
#ifndef MFS_SERVE_SERVE_H
#define MFS_SERVE_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mfs_serve_config {
	const char *host;            /* default 127.0.0.1 */
	int port;                    /* 0 = any */
	const char *cache_dir;
	const char *peer_token;      /* NULL: private/gated content never served */
	bool pull_through;
	const char *endpoint;        /* hub, for pull-through */
	const char *token;           /* hub token; never logged, never served */
	const char *mirror_token;    /* Bearer for mirrors; NULL: none (never the
				      * peer or hub token) */
	const char *const *mirrors;
	size_t n_mirrors;
	const char *const *peers;
	size_t n_peers;
	const char *proxy;
	int64_t fetch_timeout_ms;    /* default 60000 */
	uint64_t cache_size;         /* explicit quota (core/context.h); 0 = the
				      * cache's remembered one, if any */
	int workers;                 /* default 8 */
	int max_conns;               /* default 512 */
	int idle_ms;                 /* default 30000 */
	int io_ms;                   /* default 10000 */
	bool verify_strict;          /* --verify strict (pull-through fetches) */
};

struct mfs_serve;

/* Opens the cache and binds the socket. */
int mfs_serve_new(const struct mfs_serve_config *cfg, struct mfs_serve **out);
int mfs_serve_port(const struct mfs_serve *s);
/* Serves until stop_fd is readable. */
int mfs_serve_run(struct mfs_serve *s, int stop_fd);
void mfs_serve_free(struct mfs_serve *s);

#endif
