/*
 * cmd_gc.c - `modelfs gc`: evict least-recently-used unpinned blocks now,
 * down to a size (default: the quota's low watermark). Safe while mounts
 * and prefetches run: blocks they are fetching are skipped (core/evict.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cache_open.h"
#include "cli/commands.h"
#include "core/evict.h"
#include "util/size.h"

static const char gc_help[] =
	"usage: modelfs gc [--to SIZE] [OPTIONS]\n\n"
	"Evicts the least recently used blocks of unpinned files until the cache\n"
	"holds at most SIZE (e.g. 20G; default: the low watermark, 85% of the quota).\n"
	"Pinned files are never evicted.\n\n"
	"options:\n"
	"      --to SIZE            target size of the cache\n"
	"      --cache DIR          cache directory (env MODELFS_CACHE)\n"
	"  -h, --help               this help\n";

enum { OPT_TO = 1000 };

int mfs_cmd_gc(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, OPT_TO },
		{ "help", no_argument, NULL, 'h' },
		MFS_CACHE_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct mfs_cli_opts o = { 0 };
	struct mfs_evict_result r;
	struct mfs_ctx *c = NULL;
	uint64_t target = 0;
	bool have_to = false;
	char a[32], b[32], f[32], g[32];
	int ch, status, rc;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (mfs_cli_common_opt(ch, optarg, &o))
			continue;
		switch (ch) {
		case 'h':
			fputs(gc_help, stdout);
			return 0;
		case OPT_TO:
			if (mfs_parse_size(optarg, &target))
				return mfs_usage_error("gc", "--to: bad size '%s'", optarg);
			have_to = true;
			break;
		default:
			return mfs_usage_error("gc", "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind != argc)
		return mfs_usage_error("gc", "unexpected argument '%s'", argv[optind]);
	status = mfs_cache_open("gc", &o, 0, &c);
	if (status)
		return status;
	if (!have_to) {
		if (!c->quota) {
			mfs_ctx_close(c);
			return mfs_usage_error("gc", "no cache quota is set (MODELFS_CACHE_SIZE or "
					       "mount --cache-size): give --to SIZE");
		}
		target = mfs_evict_low(c->quota, 85);
	}
	/* First what nothing else would ever remove: blocks without a row. */
	if (mfs_cache_sweep("gc", c)) {
		mfs_ctx_close(c);
		return 1;
	}
	rc = mfs_evict_to(c->ix, c->bs, c->lock_dir, target, NULL, NULL, &r);
	printf("evicted %llu blocks of %llu files, freed %s: %s -> %s (target %s)\n",
	       (unsigned long long)r.blocks, (unsigned long long)r.blobs,
	       mfs_format_size(r.freed_bytes, f, sizeof(f)),
	       mfs_format_size(r.before, a, sizeof(a)), mfs_format_size(r.after, b, sizeof(b)),
	       mfs_format_size(target, g, sizeof(g)));
	if (rc == -ENOSPC) {
		struct mfs_ix_totals t = { 0 };
		if (mfs_ix_totals(c->ix, &t))
			t.pinned_bytes = 0; /* the message below then says less */
		fprintf(stderr, "modelfs gc: failed:\n  could not get below %s: %s is pinned%s\n",
			g, mfs_format_size(t.pinned_bytes, a, sizeof(a)),
			r.skipped_locked ? " and some blocks are being fetched" : "");
		status = 1;
	} else if (rc) {
		fprintf(stderr, "modelfs gc: failed:\n  %s\n", strerror(-rc));
		status = 1;
	}
	mfs_ctx_close(c);
	return status;
}
