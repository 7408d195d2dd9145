/*
 * context.c - one cache context (see context.h).
 *
 * The defaults written once here: hub connect timeout 5 s (never above
 * the fetch timeout), 5 retries with backoff capped at 8 s; fetch timeout
 * 60 s; block locks in <cache>/locks, trust marks in <cache>/trust.
 * Nothing starts a thread before mfs_ctx_start_io; the mount daemon still
 * forks before mfs_ctx_open (cli/daemon.c), since
 * libraries underneath may keep state that does not survive a fork.
 */
#include "core/context.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"
#include "util/size.h"

#define DEFAULT_FETCH_TIMEOUT_MS 60000

static int fail(int rc, char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (why && cap) {
		va_start(ap, fmt);
		vsnprintf(why, cap, fmt, ap);
		va_end(ap);
	}
	return rc;
}

uint64_t mfs_ctx_resolve_quota(struct mfs_ix *ix, uint64_t explicit_quota)
{
	char buf[32];
	uint64_t q = 0;

	if (explicit_quota) {
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)explicit_quota);
		/* Remembered so commands without a quota of their own agree with
		 * the last mount or serve that set one. Failing to remember it
		 * does not stop this process from honouring it. */
		if (mfs_ix_setting_put(ix, "cache_size", buf))
			mfs_warn("could not remember the cache quota in the index");
		return explicit_quota;
	}
	if (mfs_ix_setting_get(ix, "cache_size", buf, sizeof(buf)) == 0 &&
	    mfs_parse_size(buf, &q))
		q = 0;
	return q;
}

static int open_sources(struct mfs_ctx *c, const struct mfs_ctx_config *cfg, char *why,
			size_t cap)
{
	int64_t timeout = cfg->fetch_timeout_ms > 0 ? cfg->fetch_timeout_ms
						    : DEFAULT_FETCH_TIMEOUT_MS;
	int rc;

	struct mfs_hub_config hc = {
		.endpoint = c->endpoint, .token = cfg->token,
		.connect_timeout_ms = timeout < 5000 ? (long)timeout : 5000,
		.fetch_timeout_ms = (long)timeout, .max_retries = 5, .max_backoff_ms = 8000,
		.proxy = cfg->proxy,
	};
	rc = mfs_hub_new(&hc, &c->hub);
	if (rc)
		return fail(rc, why, cap, "bad endpoint %s: %s", c->endpoint, strerror(-rc));
	struct mfs_srcset_config sc = {
		.mirrors = cfg->mirrors, .n_mirrors = cfg->n_mirrors,
		.peers = cfg->peers, .n_peers = cfg->n_peers, .self_url = cfg->self_url,
		.hub_endpoint = c->endpoint, .hub_token = cfg->token,
		.peer_token = cfg->peer_token, .mirror_token = cfg->mirror_token,
		.prefer_mirror = cfg->prefer_mirror, .proxy = cfg->proxy,
		.fetch_timeout_ms = (long)timeout,
	};
	rc = mfs_srcset_new(&sc, c->hub, &c->src);
	if (rc)
		return fail(rc, why, cap, "bad mirror or peer URL: %s", strerror(-rc));
	return 0;
}

int mfs_ctx_open(const struct mfs_ctx_config *cfg, struct mfs_ctx **out, char *why,
		 size_t cap)
{
	struct mfs_ctx *c = calloc(1, sizeof(*c));
	char path[PATH_MAX + 16];
	int rc;

	*out = NULL;
	if (!c)
		return fail(-ENOMEM, why, cap, "out of memory");
	if (!cfg->cache_dir || snprintf(c->dir, sizeof(c->dir), "%s", cfg->cache_dir) >=
	    (int)sizeof(c->dir)) {
		rc = fail(-ENAMETOOLONG, why, cap, "cache directory name too long");
		goto out;
	}
	snprintf(c->endpoint, sizeof(c->endpoint), "%s", cfg->endpoint ? cfg->endpoint : "");
	snprintf(c->lock_dir, sizeof(c->lock_dir), "%s/locks", c->dir);
	snprintf(c->trust_dir, sizeof(c->trust_dir), "%s/trust", c->dir);
	c->verify_strict = cfg->verify_strict;
	c->offline = cfg->offline;
	if (mkdir(c->dir, 0755) && errno != EEXIST) {
		rc = fail(-errno, why, cap, "cannot create cache directory %s: %s", c->dir,
			  strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/index.db", c->dir);
	rc = mfs_ix_open(path, &c->ix);
	if (rc) {
		fail(rc, why, cap, "cannot open the index %s: %s", path, strerror(-rc));
		goto out;
	}
	rc = mfs_bs_open(c->dir, &c->bs);
	if (rc) {
		fail(rc, why, cap, "cannot open the cache %s: %s", c->dir, strerror(-rc));
		goto out;
	}
	c->quota = mfs_ctx_resolve_quota(c->ix, cfg->quota);
	if (cfg->fetch && !cfg->offline) {
		rc = open_sources(c, cfg, why, cap);
		if (rc)
			goto out;
	}
	struct mfs_cat_config cc = {
		.ref_ttl_ms = cfg->ref_ttl_ms, .max_trees = cfg->max_trees,
		.offline = cfg->offline || !cfg->fetch,
	};
	rc = mfs_cat_new(c->ix, c->hub, &cc, &c->cat);
	if (rc) {
		fail(rc, why, cap, "cannot create the catalogue: %s", strerror(-rc));
		goto out;
	}
	if (c->src)
		mfs_cat_set_mirrors(c->cat, c->src);
	*out = c;
	return 0;
out:
	mfs_ctx_close(c);
	return rc;
}

static bool blob_in_use(void *bio, const char *id)
{
	return mfs_blobio_in_use(bio, id);
}

static void stats_tick(void *vc)
{
	struct mfs_ctx *c = vc;

	/* A failed flush is retried with the next tick's totals. */
	if (mfs_statsync_flush(&c->stats, c->ix, c->bio, c->hub, c->src))
		mfs_debug("could not persist statistics this tick");
	if (c->health_file[0] && c->src)
		(void)mfs_srcset_health_write(c->src, c->health_file);
}

int mfs_ctx_start_io(struct mfs_ctx *c, const struct mfs_ctx_io *io, char *why, size_t cap)
{
	static const struct mfs_ctx_io none;
	int rc;

	if (!io)
		io = &none;
	struct mfs_blobio_config bc = {
		.block_size = io->block_size, .fetch_threads = io->fetch_threads,
		.coalesce_max = io->coalesce_max,
		.on_invalid = io->on_invalid, .on_invalid_ctx = io->on_invalid_ctx,
		.lock_dir = c->lock_dir, .sources = c->src,
		.verify_strict = c->verify_strict, .trust_dir = c->trust_dir,
	};
	rc = mfs_blobio_new(&bc, c->bs, c->ix, c->hub, c->cat, &c->bio);
	if (rc)
		return fail(rc, why, cap, "cannot start fetch threads: %s", strerror(-rc));
	if (io->persist_stats)
		mfs_statsync_init(&c->stats, c->endpoint, true);
	snprintf(c->health_file, sizeof(c->health_file), "%s",
		 io->health_file ? io->health_file : "");
	struct mfs_evict_config ec = {
		.quota = c->quota, .lock_dir = c->lock_dir,
		.in_use = blob_in_use, .in_use_ctx = c->bio,
		.tick = io->persist_stats ? stats_tick : NULL, .tick_ctx = c,
		.tick_ms = io->tick_ms,
	};
	rc = mfs_evictor_start(&ec, c->ix, c->bs, &c->ev);
	if (rc) {
		mfs_ctx_stop_io(c);
		return fail(rc, why, cap, "cannot start the evictor: %s", strerror(-rc));
	}
	struct mfs_blobio_hooks h;
	mfs_evictor_hooks(c->ev, &h);
	mfs_blobio_set_hooks(c->bio, &h);
	if (c->quota)
		mfs_info("cache quota %llu bytes", (unsigned long long)c->quota);
	return 0;
}

void mfs_ctx_stop_io(struct mfs_ctx *c)
{
	if (!c)
		return;
	mfs_evictor_stop(c->ev);
	mfs_blobio_free(c->bio);
	mfs_evictor_free(c->ev);
	c->bio = NULL;
	c->ev = NULL;
}

void mfs_ctx_close(struct mfs_ctx *c)
{
	if (!c)
		return;
	mfs_ctx_stop_io(c);
	mfs_cat_free(c->cat);
	mfs_srcset_free(c->src);
	mfs_hub_free(c->hub);
	mfs_bs_close(c->bs);
	mfs_ix_close(c->ix);
	free(c);
}
