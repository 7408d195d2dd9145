/*
 * cmd_unpin.c - `modelfs unpin`: forget pins; their files stay cached but
 * become evictable (least recently used first, like everything else).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cache_open.h"
#include "cli/commands.h"
#include "core/pin.h"

static const char unpin_help[] =
	"usage: modelfs unpin REPO[@REV]... [OPTIONS]\n\n"
	"Removes pins made by `modelfs pin` (every commit pinned under that REV,\n"
	"including those added by --update). Without @REV, every pin of REPO goes.\n"
	"The files stay in the cache until evicted.\n\n"
	"options:\n"
	"      --cache DIR          cache directory (env MODELFS_CACHE)\n"
	"  -h, --help               this help\n";

struct revs {
	const struct mfs_repo *repo;
	char v[64][256];
	size_t n;
};

static int collect_revs(void *ctx, const struct mfs_ix_pin *p)
{
	struct revs *r = ctx;

	if (p->repo.type != r->repo->type || strcmp(p->repo.id, r->repo->id))
		return 0;
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i], p->rev))
			return 0;
	if (r->n < 64)
		snprintf(r->v[r->n++], sizeof(r->v[0]), "%s", p->rev);
	return 0;
}

int mfs_cmd_unpin(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		MFS_CACHE_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct mfs_cli_opts o = { 0 };
	struct mfs_ctx *c = NULL;
	struct mfs_repo repo;
	char rev[256];
	int ch, status, rc, failed = 0;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (mfs_cli_common_opt(ch, optarg, &o))
			continue;
		if (ch == 'h') {
			fputs(unpin_help, stdout);
			return 0;
		}
		return mfs_usage_error("unpin", "unknown or incomplete option '%s'",
				       argv[optind - 1]);
	}
	if (optind == argc)
		return mfs_usage_error("unpin", "missing REPO[@REV]");
	for (int i = optind; i < argc; i++)
		if (mfs_parse_repo_rev(argv[i], &repo, rev, sizeof(rev)))
			return mfs_usage_error("unpin", "'%s' is not REPO[@REV]", argv[i]);
	status = mfs_cache_open("unpin", &o, 0, &c);
	if (status)
		return status;
	for (int i = optind; i < argc; i++) {
		struct revs r = { .repo = &repo };
		(void)mfs_parse_repo_rev(argv[i], &repo, rev, sizeof(rev));
		rc = mfs_ix_pin_del(c->ix, &repo, rev);
		if (rc == -ENOENT && !rev[0]) {
			/* "unpin org/name" removes every pin of the repo. */
			rc = mfs_ix_pins_list(c->ix, collect_revs, &r);
			if (!rc && r.n == 0)
				rc = -ENOENT;
			for (size_t k = 0; !rc && k < r.n; k++)
				rc = mfs_ix_pin_del(c->ix, &repo, r.v[k]);
		}
		if (rc) {
			if (!failed++)
				fprintf(stderr, "modelfs unpin: failed:\n");
			fprintf(stderr, "  %s: %s\n", argv[i],
				rc == -ENOENT ? "not pinned" : strerror(-rc));
		} else {
			printf("%s: unpinned\n", argv[i]);
		}
	}
	rc = mfs_pins_recompute(c->ix, NULL);
	if (rc) {
		fprintf(stderr, "modelfs unpin: updating pinned blobs failed: %s\n", strerror(-rc));
		failed++;
	}
	mfs_ctx_close(c);
	return failed ? 1 : 0;
}
