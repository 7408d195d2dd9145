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
#include "core/sweep.h"
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
static int env_sources(const char *cmd, struct mfs_cli_opts *o)
{
	const char *v;

	if (o->mirrors.n == 0 && (v = getenv("MODELFS_MIRRORS")) && *v &&
	    mfs_src_list_add(&o->mirrors, v))
		goto bad;
	if (o->peers.n == 0 && (v = getenv("MODELFS_PEERS")) && *v &&
	    mfs_src_list_add(&o->peers, v))
		goto bad;
	return 0;
bad:
	fprintf(stderr, "modelfs %s: bad mirror or peer URL (MODELFS_MIRRORS/MODELFS_PEERS)\n",
		cmd);
	return -EINVAL;
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

const char *mfs_cli_size(uint64_t bytes, char *buf, size_t cap)
{
	return mfs_format_size(bytes, buf, cap);
}

int mfs_cache_open(const char *cmd, struct mfs_cli_opts *o, int what,
		   struct mfs_ctx **out)
{
	char dir[PATH_MAX], endpoint[2048], why[PATH_MAX + 256];
	const char *bad_size;
	bool fetch = what & MFS_CACHE_NEED_FETCH;
	char *token = NULL;
	uint64_t quota = 0;
	int rc, status = 2;

	*out = NULL;
	if (o->bad)
		goto out;
	if (mfs_cfg_cache_dir(o->cache, dir, sizeof(dir))) {
		fprintf(stderr, "modelfs %s: no cache directory: set --cache or MODELFS_CACHE\n", cmd);
		goto out;
	}
	if (mfs_cfg_endpoint(o->endpoint, endpoint, sizeof(endpoint))) {
		fprintf(stderr, "modelfs %s: endpoint must be an http:// or https:// URL\n", cmd);
		goto out;
	}
	if (mfs_cfg_cache_size(NULL, &quota, &bad_size)) {
		fprintf(stderr, "modelfs %s: MODELFS_CACHE_SIZE: bad size '%s'\n", cmd, bad_size);
		goto out;
	}
	bool offline = mfs_cfg_offline(o->offline);
	if (fetch && !offline) {
		if (env_sources(cmd, o))
			goto out;
		rc = mfs_cfg_token(o->token_file, &token);
		if (rc) {
			fprintf(stderr, "modelfs %s: cannot read token file %s: %s\n", cmd,
				o->token_file, strerror(-rc));
			status = 1;
			goto out;
		}
	}
	/* A command resolves a branch now: ref_ttl 0 asks the hub every time
	 * it can be reached, and falls back to the index when it cannot. */
	struct mfs_ctx_config cc = {
		.cache_dir = dir, .endpoint = endpoint, .token = token, .offline = offline,
		.fetch = fetch,
		.mirrors = (const char *const *)o->mirrors.urls, .n_mirrors = o->mirrors.n,
		.peers = (const char *const *)o->peers.urls, .n_peers = o->peers.n,
		.peer_token = getenv("MODELFS_PEER_TOKEN"),
		.mirror_token = getenv("MODELFS_MIRROR_TOKEN"),
		.prefer_mirror = o->prefer_mirror, .ref_ttl_ms = 0, .quota = quota,
		.verify_strict = o->verify_strict,
	};
	rc = mfs_ctx_open(&cc, out, why, sizeof(why));
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	if (rc) {
		fprintf(stderr, "modelfs %s: %s\n", cmd, why);
		status = rc == -EINVAL ? 2 : 1;
		goto out;
	}
	status = 0;
out:
	mfs_cli_opts_free(o);
	return status;
}

int mfs_cache_start_io(const char *cmd, struct mfs_ctx *c, const struct mfs_ctx_io *io)
{
	char why[256];
	struct mfs_ctx_io d = io ? *io : (struct mfs_ctx_io){ 0 };

	/* Commands finish in seconds: a short tick keeps the evictor current. */
	if (!d.tick_ms)
		d.tick_ms = 1000;
	if (mfs_ctx_start_io(c, &d, why, sizeof(why))) {
		fprintf(stderr, "modelfs %s: %s\n", cmd, why);
		return 1;
	}
	return 0;
}

int mfs_cache_sweep(const char *cmd, struct mfs_ctx *c)
{
	struct mfs_sweep_result r;
	char sz[32];
	int rc = mfs_sweep_orphans(c->ix, c->bs, c->lock_dir, &r);

	if (r.orphans)
		printf("removed %llu stored block%s the index did not know (%s)\n",
		       (unsigned long long)r.orphans, r.orphans == 1 ? "" : "s",
		       mfs_format_size(r.orphan_bytes, sz, sizeof(sz)));
	if (rc) {
		fprintf(stderr, "modelfs %s: failed:\n  sweeping blocks the index does not know: "
			"%s\n", cmd, strerror(-rc));
		return 1;
	}
	return 0;
}
