/*
 * cache_open.c - shared setup of the cache subcommands (see cache_open.h).
 */
#include "cli/cache_open.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/config.h"
#include "util/size.h"

bool mfs_cli_common_opt(int c, const char *arg, struct mfs_cli_opts *o)
{
	switch (c) {
	case MFS_OPT_CACHE:
		o->cache = arg;
		return true;
	case MFS_OPT_ENDPOINT:
		o->endpoint = arg;
		return true;
	case MFS_OPT_TOKEN_FILE:
		o->token_file = arg;
		return true;
	case MFS_OPT_OFFLINE:
		o->offline = true;
		return true;
	default:
		return false;
	}
}

int mfs_parse_repo_rev(const char *arg, struct mfs_repo *repo, char *rev, size_t cap)
{
	const char *at, *id = arg;
	size_t idlen;

	memset(repo, 0, sizeof(*repo));
	repo->type = MFS_REPO_MODEL;
	if (!strncmp(arg, "datasets/", 9)) {
		repo->type = MFS_REPO_DATASET;
		id = arg + 9;
	} else if (!strncmp(arg, "models/", 7)) {
		id = arg + 7;
	}
	at = strchr(id, '@');
	idlen = at ? (size_t)(at - id) : strlen(id);
	if (idlen == 0 || idlen >= sizeof(repo->id))
		return -EINVAL;
	memcpy(repo->id, id, idlen);
	repo->id[idlen] = '\0';
	if (!mfs_repo_id_valid(repo->id))
		return -EINVAL;
	if (at && (!at[1] || strlen(at + 1) >= cap))
		return -EINVAL;
	snprintf(rev, cap, "%s", at ? at + 1 : "");
	for (const unsigned char *p = (const unsigned char *)rev; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	return 0;
}

int mfs_cache_quota(struct mfs_ix *ix, uint64_t *quota)
{
	const char *env = getenv("MODELFS_CACHE_SIZE");
	char buf[64];

	*quota = 0;
	if (env && *env)
		return mfs_parse_size(env, quota) ? -EINVAL : 0;
	if (ix && mfs_ix_setting_get(ix, "cache_size", buf, sizeof(buf)) == 0 &&
	    mfs_parse_size(buf, quota))
		*quota = 0;
	return 0;
}

const char *mfs_cli_size(uint64_t bytes, char *buf, size_t cap)
{
	return mfs_format_size(bytes, buf, cap);
}

static bool in_use(void *ctx, const char *id)
{
	return mfs_blobio_in_use(ctx, id);
}

int mfs_cache_open(const char *cmd, const struct mfs_cli_opts *o, int what,
		   struct mfs_cache **out)
{
	struct mfs_cache *c = calloc(1, sizeof(*c));
	char path[PATH_MAX + 16];
	char *token = NULL;
	int rc, status = 1;

	if (!c) {
		fprintf(stderr, "modelfs %s: out of memory\n", cmd);
		return 1;
	}
	if (mfs_cfg_cache_dir(o->cache, c->dir, sizeof(c->dir))) {
		fprintf(stderr, "modelfs %s: no cache directory: set --cache or MODELFS_CACHE\n", cmd);
		status = 2;
		goto fail;
	}
	if (mfs_cfg_endpoint(o->endpoint, c->endpoint, sizeof(c->endpoint))) {
		fprintf(stderr, "modelfs %s: endpoint must be an http:// or https:// URL\n", cmd);
		status = 2;
		goto fail;
	}
	c->offline = mfs_cfg_offline(o->offline);
	if (mkdir(c->dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "modelfs %s: cannot create cache directory %s: %s\n", cmd,
			c->dir, strerror(errno));
		goto fail;
	}
	snprintf(c->lock_dir, sizeof(c->lock_dir), "%s/locks", c->dir);
	snprintf(path, sizeof(path), "%s/index.db", c->dir);
	rc = mfs_ix_open(path, &c->ix);
	if (rc) {
		fprintf(stderr, "modelfs %s: cannot open the index %s: %s\n", cmd, path,
			strerror(-rc));
		goto fail;
	}
	if (mfs_cache_quota(c->ix, &c->quota)) {
		fprintf(stderr, "modelfs %s: MODELFS_CACHE_SIZE: bad size '%s'\n", cmd,
			getenv("MODELFS_CACHE_SIZE"));
		status = 2;
		goto fail;
	}
	rc = mfs_bs_open(c->dir, &c->bs);
	if (rc) {
		fprintf(stderr, "modelfs %s: cannot open the cache %s: %s\n", cmd, c->dir,
			strerror(-rc));
		goto fail;
	}
	if ((what & MFS_CACHE_NEED_FETCH) && !c->offline) {
		rc = mfs_cfg_token(o->token_file, &token);
		if (rc) {
			fprintf(stderr, "modelfs %s: cannot read token file %s: %s\n", cmd,
				o->token_file, strerror(-rc));
			goto fail;
		}
		struct mfs_hub_config hc = {
			.endpoint = c->endpoint, .token = token, .connect_timeout_ms = 5000,
			.fetch_timeout_ms = 60000, .max_retries = 5, .max_backoff_ms = 8000,
		};
		rc = mfs_hub_new(&hc, &c->hub);
		if (token) {
			memset(token, 0, strlen(token));
			free(token);
		}
		if (rc) {
			fprintf(stderr, "modelfs %s: bad endpoint %s: %s\n", cmd, c->endpoint,
				strerror(-rc));
			goto fail;
		}
	}
	/* A command resolves a branch now: ref_ttl 0 asks the hub every time
	 * it can be reached, and falls back to the index when it cannot. */
	struct mfs_cat_config cc = {
		.ref_ttl_ms = 0, .dead_retry_ms = 30000,
		.offline = c->offline || !(what & MFS_CACHE_NEED_FETCH),
	};
	rc = mfs_cat_new(c->ix, c->hub, &cc, &c->cat);
	if (rc) {
		fprintf(stderr, "modelfs %s: out of memory\n", cmd);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	mfs_cache_close(c);
	return status;
}

int mfs_cache_start_io(const char *cmd, struct mfs_cache *c, const struct mfs_cache_params *p)
{
	int rc;

	struct mfs_blobio_config bc = {
		.fetch_threads = p && p->fetch_threads ? p->fetch_threads : 8,
		.coalesce_max = p ? p->coalesce_max : 0,
		.lock_dir = c->lock_dir,
	};
	rc = mfs_blobio_new(&bc, c->bs, c->ix, c->hub, c->cat, &c->bio);
	if (rc) {
		fprintf(stderr, "modelfs %s: cannot start fetch threads: %s\n", cmd,
			strerror(-rc));
		return 1;
	}
	struct mfs_evict_config ec = {
		.quota = c->quota, .lock_dir = c->lock_dir,
		.in_use = in_use, .in_use_ctx = c->bio, .tick_ms = 1000,
	};
	rc = mfs_evictor_start(&ec, c->ix, c->bs, &c->ev);
	if (rc) {
		fprintf(stderr, "modelfs %s: cannot start the evictor: %s\n", cmd,
			strerror(-rc));
		return 1;
	}
	struct mfs_blobio_hooks h;
	mfs_evictor_hooks(c->ev, &h);
	mfs_blobio_set_hooks(c->bio, &h);
	return 0;
}

void mfs_cache_close(struct mfs_cache *c)
{
	if (!c)
		return;
	/* The evictor's thread first (its tick reads the block layer), then the
	 * fetch threads (they call its hooks), then the evictor itself. */
	mfs_evictor_stop(c->ev);
	mfs_blobio_free(c->bio);
	mfs_evictor_free(c->ev);
	mfs_cat_free(c->cat);
	mfs_hub_free(c->hub);
	mfs_bs_close(c->bs);
	mfs_ix_close(c->ix);
	free(c);
}
