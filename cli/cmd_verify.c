/*
 * cmd_verify.c - `modelfs verify`: rehash complete blobs from the block
 * files (sha256 for LFS content, git blob sha1 otherwise) and drop the
 * blocks of any that do not match; exit 1 if one was bad. Works offline
 * and beside a running mount (its in-memory state treats a dropped block
 * as absent and fetches it again).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cache_open.h"
#include "cli/commands.h"
#include "core/pin.h"
#include "util/hash.h"
#include "util/size.h"

static const char verify_help[] =
	"usage: modelfs verify [REPO[@REV]] [OPTIONS]\n\n"
	"Rehashes every complete file in the cache (or those of one repository\n"
	"revision, as last resolved) and drops the blocks of any that does not match\n"
	"its hash, so it is fetched again when read. Exits 1 if any was bad.\n\n"
	"options:\n"
	"      --cache DIR          cache directory (env MODELFS_CACHE)\n"
	"  -h, --help               this help\n";

/* 1 good, 0 bad (or unreadable), -errno on a local failure. */
static int check_blob(struct mfs_bs *bs, const struct mfs_ix_blob_info *bi, char *why,
		      size_t cap)
{
	struct mfs_digest h = MFS_DIGEST_IDLE;
	uint32_t n = (uint32_t)((bi->size + bi->block_size - 1) / bi->block_size);
	uint8_t *buf = malloc(bi->block_size ? bi->block_size : 1);
	char hex[65];
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = mfs_digest_start_for_id(&h, bi->id, bi->size);
	if (rc < 0)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		size_t len;
		uint64_t want = bi->size - (uint64_t)i * bi->block_size;
		int g = mfs_bs_get(bs, bi->id, i, buf, bi->block_size, &len);
		if (g == 0 && len != (want < bi->block_size ? want : bi->block_size))
			g = -EBADMSG;
		if (g) {
			snprintf(why, cap, "block %u %s", i,
				 g == -ENOENT ? "is missing" : g == -EBADMSG ? "is corrupt" :
				 strerror(-g));
			rc = 0;
			goto out;
		}
		mfs_digest_update(&h, buf, len);
	}
	rc = mfs_digest_matches_id(&h, bi->id, hex);
	if (rc == 0)
		snprintf(why, cap, "content hashes to %s", hex);
out:
	mfs_digest_release(&h);
	free(buf);
	return rc;
}

int mfs_cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		MFS_CACHE_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct mfs_cli_opts o = { 0 };
	struct mfs_ix_blob_info *v = NULL;
	struct mfs_idset only = { 0 };
	struct mfs_ctx *c = NULL;
	struct mfs_repo repo;
	char rev[256], commit[41], why[256], sz[32];
	size_t n = 0, checked = 0, bad = 0;
	uint64_t bytes = 0;
	int ch, status, rc;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (mfs_cli_common_opt(ch, optarg, &o))
			continue;
		if (ch == 'h') {
			fputs(verify_help, stdout);
			return 0;
		}
		return mfs_usage_error("verify", "unknown or incomplete option '%s'",
				       argv[optind - 1]);
	}
	if (argc - optind > 1)
		return mfs_usage_error("verify", "unexpected argument '%s'", argv[argc - 1]);
	if (optind < argc && mfs_parse_repo_rev(argv[optind], &repo, rev, sizeof(rev)))
		return mfs_usage_error("verify", "'%s' is not REPO[@REV]", argv[optind]);
	status = mfs_cache_open("verify", &o, 0, &c);
	if (status)
		return status;
	if (optind < argc) {
		struct mfs_entry *e = NULL;
		size_t ne = 0;
		int64_t date;
		rc = mfs_cat_resolve(c->cat, &repo, rev, commit, &date);
		if (!rc)
			rc = mfs_ix_tree_get(c->ix, &repo, commit, &e, &ne);
		if (rc) {
			fprintf(stderr, "modelfs verify: '%s' is not in the cache\n", argv[optind]);
			mfs_ctx_close(c);
			return 2;
		}
		for (size_t i = 0; i < ne; i++)
			if (e[i].kind == MFS_KIND_FILE)
				(void)mfs_idset_add(&only, mfs_entry_content_id(&e[i]), e[i].size);
		mfs_entries_free(e, ne);
		mfs_idset_finish(&only);
	}
	if (mfs_cache_sweep("verify", c)) {
		status = 1;
		goto out;
	}
	rc = mfs_ix_blobs_list(c->ix, true, &v, &n);
	if (rc) {
		fprintf(stderr, "modelfs verify: reading the index failed: %s\n", strerror(-rc));
		status = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (optind < argc) {
			struct mfs_idset_e key;
			snprintf(key.id, sizeof(key.id), "%s", v[i].id);
			bool found = false;
			for (size_t k = 0; k < only.n && !found; k++)
				found = strcmp(only.v[k].id, v[i].id) == 0;
			if (!found)
				continue;
		}
		if (v[i].size == 0)
			continue;
		rc = check_blob(c->bs, &v[i], why, sizeof(why));
		if (rc < 0) {
			fprintf(stderr, "modelfs verify: failed:\n  %s: %s\n", v[i].id, strerror(-rc));
			status = 1;
			goto out;
		}
		checked++;
		bytes += v[i].size;
		if (rc == 1) {
			rc = mfs_ix_blob_set_verified(c->ix, v[i].id, true);
			if (rc) /* not fatal: it is checked again next time */
				fprintf(stderr, "modelfs verify: %s: could not record that it is "
					"good: %s\n", v[i].id, strerror(-rc));
			continue;
		}
		bad++;
		printf("bad: %s (%s): %s; dropped\n", v[i].id, mfs_format_size(v[i].size, sz,
		       sizeof(sz)), why);
		/* Disk first: a row without data is refetched on read, data
		 * without a row would escape the quota. */
		int drc = mfs_bs_drop_blob(c->bs, v[i].id);
		int irc = drc ? 0 : mfs_ix_blob_drop_blocks(c->ix, v[i].id);
		if (drc || irc) {
			fprintf(stderr, "modelfs verify: failed:\n  %s: could not drop its blocks: "
				"%s\n", v[i].id, strerror(-(drc ? drc : irc)));
			status = 1;
			goto out;
		}
	}
	printf("verified %zu file%s (%s): %zu bad\n", checked, checked == 1 ? "" : "s",
	       mfs_format_size(bytes, sz, sizeof(sz)), bad);
	if (bad) {
		fprintf(stderr, "modelfs verify: %zu file%s failed verification (listed above; "
			"their blocks were dropped)\n", bad, bad == 1 ? "" : "s");
		status = 1;
	}
out:
	free(v);
	mfs_idset_free(&only);
	mfs_ctx_close(c);
	return status;
}
