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
	case MFS_OPT_MIRROR:
	case MFS_OPT_PEER:
		if (mfs_src_list_add(c == MFS_OPT_MIRROR ? &o->mirrors : &o->peers, arg)) {
			fprintf(stderr, "modelfs: --%s: bad URL '%s'\n",
				c == MFS_OPT_MIRROR ? "mirror" : "peer", arg);
			o->bad = 1;
		}
		return true;
	case MFS_OPT_VERIFY:
		if (mfs_cfg_verify_flag(arg, &o->verify_strict)) {
			fprintf(stderr, "modelfs: --verify: 'strict' or 'sources'\n");
			o->bad = 1;
		}
		return true;
	case MFS_OPT_PREFER:
		if (strcmp(arg, "hub") && strcmp(arg, "mirror")) {
			fprintf(stderr, "modelfs: --prefer: 'hub' or 'mirror'\n");
			o->bad = 1;
		}
		o->prefer_mirror = strcmp(arg, "mirror") == 0;
		return true;
	default:
		return false;
	}
}

void mfs_cli_opts_free(struct mfs_cli_opts *o)
{
	mfs_src_list_free(&o->mirrors);
	mfs_src_list_free(&o->peers);
}

/* Mirrors and peers: the flags, or the environment when no flag named any. */
static int source_set(const char *cmd, const struct mfs_cli_opts *o, struct mfs_cache *c,
		      const char *token)
{
	struct mfs_src_list env_m = { .n = 0 }, env_p = { .n = 0 };
	const struct mfs_src_list *m = &o->mirrors, *p = &o->peers;
	const char *v;
	int rc = 0;

	if (o->mirrors.n == 0 && (v = getenv("MODELFS_MIRRORS")) && *v) {
		rc = mfs_src_list_add(&env_m, v);
		m = &env_m;
	}
	if (rc == 0 && o->peers.n == 0 && (v = getenv("MODELFS_PEERS")) && *v) {
		rc = mfs_src_list_add(&env_p, v);
		p = &env_p;
	}
	if (rc == 0) {
		struct mfs_srcset_config sc = {
			.mirrors = (const char *const *)m->urls, .n_mirrors = m->n,
			.peers = (const char *const *)p->urls, .n_peers = p->n,
			.hub_endpoint = c->endpoint, .hub_token = token,
			.peer_token = getenv("MODELFS_PEER_TOKEN"),
			.mirror_token = getenv("MODELFS_MIRROR_TOKEN"),
			.prefer_mirror = o->prefer_mirror, .fetch_timeout_ms = 60000,
		};
		rc = mfs_srcset_new(&sc, c->hub, &c->src);
	}
	if (rc)
		fprintf(stderr, "modelfs %s: bad mirror or peer URL (MODELFS_MIRRORS/MODELFS_PEERS): %s\n",
			cmd, strerror(-rc));
	mfs_src_list_free(&env_m);
	mfs_src_list_free(&env_p);
	return rc;
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

int mfs_cache_open(const char *cmd, struct mfs_cli_opts *o, int what,
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
	if (o->bad) {
		status = 2;
		goto fail;
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
	snprintf(c->trust_dir, sizeof(c->trust_dir), "%s/trust", c->dir);
	c->verify_strict = o->verify_strict;
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
		if (rc)
			fprintf(stderr, "modelfs %s: bad endpoint %s: %s\n", cmd, c->endpoint,
				strerror(-rc));
		else if (source_set(cmd, o, c, token))
			status = 2, rc = -EINVAL;
		if (token) {
			memset(token, 0, strlen(token));
			free(token);
		}
		if (rc)
			goto fail;
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
	if (c->src)
		mfs_cat_set_mirrors(c->cat, c->src);
	mfs_cli_opts_free(o);
	*out = c;
	return 0;
fail:
	mfs_cli_opts_free(o);
	mfs_cache_close(c);
	return status;
}

int mfs_cache_start_io(const char *cmd, struct mfs_cache *c, const struct mfs_cache_params *p)
{
	int rc;

	struct mfs_blobio_config bc = {
		.fetch_threads = p && p->fetch_threads ? p->fetch_threads : 8,
		.coalesce_max = p ? p->coalesce_max : 0,
		.lock_dir = c->lock_dir, .sources = c->src,
		.verify_strict = c->verify_strict, .trust_dir = c->trust_dir,
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
	mfs_srcset_free(c->src);
	mfs_hub_free(c->hub);
	mfs_bs_close(c->bs);
	mfs_ix_close(c->ix);
	free(c);
}
