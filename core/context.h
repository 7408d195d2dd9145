/*
 * context.h - one cache context: index, block store, hub client, source
 * set, catalog, and (once started) the block layer and the evictor, built
 * from one set of options the same way for every user.
 *
 * `modelfs mount` (fs/mount.c), the cache commands (cli/cache_open.c) and
 * `modelfs serve` (serve/serve.c) each used to assemble these by hand and
 * had drifted apart (serve had no quota, no evictor, no cross-process block
 * locks and no hub retries; the quota was resolved two ways). Now every
 * default lives here: hub timeouts and retries, the lock and trust
 * directories, the
 * quota rule (an explicit quota is remembered in the cache; without one the
 * remembered one applies).
 *
 * Two steps because the filesystem must exist before the block layer (it
 * is the block layer's on_invalid callback): mfs_ctx_open builds
 * everything that starts no thread, mfs_ctx_start_io starts the fetch
 * threads and the evictor. mfs_ctx_stop_io / mfs_ctx_close undo them.
 *
 * What it does not do: read flags or the environment (cli/config.h does,
 * then fills the options), print anything (errors come back as -errno and
 * a one-line reason), fork, mount, or listen.
 */
#ifndef MFS_CORE_CONTEXT_H
#define MFS_CORE_CONTEXT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/blockstore.h"
#include "core/blobio.h"
#include "core/cachestats.h"
#include "core/catalog.h"
#include "core/evict.h"
#include "fetch/hub.h"
#include "fetch/source.h"
#include "index/index.h"

struct mfs_ctx_config {
	const char *cache_dir;        /* created if missing; kept as given */
	const char *endpoint;         /* the hub; needed unless offline or !fetch */
	const char *token;            /* hub token, NULL = anonymous; never logged */
	bool offline;                 /* no hub and no other source */
	bool fetch;                   /* may fetch: hub client and sources (unless
				       * offline); false opens the cache alone */
	/* Sources beyond the hub (fetch/source.h). */
	const char *const *mirrors;
	size_t n_mirrors;
	const char *const *peers;
	size_t n_peers;
	const char *self_url;         /* this node's serve URL (fetch/source.h) */
	const char *peer_token;       /* never logged */
	const char *mirror_token;     /* never logged */
	bool prefer_mirror;
	const char *proxy;            /* NULL: libcurl's environment */
	int64_t fetch_timeout_ms;     /* default 60000 */
	int64_t ref_ttl_ms;           /* catalogue: branch re-resolution (0 =
				       * every time it can reach the hub) */
	size_t max_trees;             /* catalogue: unheld trees kept in memory
				       * (0 = no bound) */
	uint64_t quota;               /* explicit quota in bytes, remembered in
				       * the cache; 0 = the remembered one, if any */
	bool verify_strict;           /* --verify strict: nothing unverified is
				       * served (core/blobtrust.c) */
};

struct mfs_ctx_io {
	uint32_t block_size;          /* 0: block layer default */
	int fetch_threads;            /* 0: block layer default */
	uint64_t coalesce_max;        /* 0: block layer default */
	void (*on_invalid)(void *ctx, const char *content_id);
	void *on_invalid_ctx;
	bool persist_stats;           /* flush counters to the index every tick */
	int64_t tick_ms;              /* evictor tick; 0: its default */
	const char *health_file;      /* with persist_stats: the sources' up/down
				       * states written here every tick, for
				       * `modelfs status`; NULL = not written */
};

struct mfs_ctx {
	char dir[PATH_MAX];
	char lock_dir[PATH_MAX + 8];  /* cross-process block locks: <dir>/locks */
	char trust_dir[PATH_MAX + 8]; /* chunk lists, hold marks: <dir>/trust */
	bool verify_strict;
	char endpoint[2048];
	bool offline;
	uint64_t quota;               /* resolved; 0 = none */
	struct mfs_ix *ix;
	struct mfs_bs *bs;
	struct mfs_hub *hub;          /* NULL offline or without fetch */
	struct mfs_srcset *src;       /* NULL offline or without fetch */
	struct mfs_catalog *cat;      /* always (offline without fetch) */
	struct mfs_blobio *bio;       /* after mfs_ctx_start_io */
	struct mfs_evictor *ev;       /* after mfs_ctx_start_io */
	struct mfs_statsync stats;    /* written by the evictor thread only */
	char health_file[PATH_MAX];   /* "" = none; set by mfs_ctx_start_io */
};

/* Opens index, block store, hub, sources and catalogue. On failure returns
 * -errno (-EINVAL for a bad setting such as a mirror URL) and a reason in
 * why (no trailing newline); *out is NULL then. */
int mfs_ctx_open(const struct mfs_ctx_config *cfg, struct mfs_ctx **out, char *why,
		 size_t cap);
/* Starts the block layer (with cross-process block locks) and the evictor
 * (with the quota). Same error convention. */
int mfs_ctx_start_io(struct mfs_ctx *c, const struct mfs_ctx_io *io, char *why, size_t cap);
/* Stops the evictor's thread, the fetch threads, then frees the evictor
 * (that order: the evictor's last tick reads the block layer, fetch threads
 * call the evictor's hooks). Idempotent; the rest stays open. */
void mfs_ctx_stop_io(struct mfs_ctx *c);
/* Stops I/O if running and frees everything. NULL is fine. */
void mfs_ctx_close(struct mfs_ctx *c);

/* The quota rule alone (for tests and `status`): explicit > remembered > 0.
 * An explicit quota is written to the cache's settings. */
uint64_t mfs_ctx_resolve_quota(struct mfs_ix *ix, uint64_t explicit_quota);

#endif
