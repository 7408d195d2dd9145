/*
 * cache_open.h - what the cache subcommands (prefetch, pin, unpin, ls,
 * status, gc, verify) share: the common flags, REPO[@REV] parsing, and
 * turning them into a cache context (core/context.h, the same constructor
 * `mount` and `serve` use), resolved as `mount` resolves them (cli/config.h:
 * flags > environment > defaults).
 *
 * It holds no logic a subcommand could not share; each command file does
 * one job and prints its own output.
 */
#ifndef MFS_CLI_CACHE_OPEN_H
#define MFS_CLI_CACHE_OPEN_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/config.h"
#include "core/context.h"
#include "fetch/source.h"
#include "util/repo.h"

/* getopt_long codes of the common options; commands add theirs above. */
enum {
	MFS_OPT_CACHE = 900, MFS_OPT_ENDPOINT, MFS_OPT_TOKEN_FILE, MFS_OPT_OFFLINE,
	MFS_OPT_MIRROR, MFS_OPT_PEER, MFS_OPT_PREFER, MFS_OPT_VERIFY,
};
#define MFS_CACHE_LONGOPTS \
	{ "cache", required_argument, NULL, MFS_OPT_CACHE }, \
	{ "endpoint", required_argument, NULL, MFS_OPT_ENDPOINT }, \
	{ "token-file", required_argument, NULL, MFS_OPT_TOKEN_FILE }, \
	{ "offline", no_argument, NULL, MFS_OPT_OFFLINE }, \
	{ "mirror", required_argument, NULL, MFS_OPT_MIRROR }, \
	{ "peer", required_argument, NULL, MFS_OPT_PEER }, \
	{ "prefer", required_argument, NULL, MFS_OPT_PREFER }, \
	{ "verify", required_argument, NULL, MFS_OPT_VERIFY }

#define MFS_CACHE_HELP \
	"      --cache DIR          cache directory (env MODELFS_CACHE)\n" \
	"      --endpoint URL       hub endpoint (env HF_ENDPOINT)\n" \
	"      --token-file F       read the hub token from F (default: HF_TOKEN,\n" \
	"                           HF_TOKEN_PATH, $HF_HOME/token)\n" \
	"      --offline            never contact the hub (env HF_HUB_OFFLINE=1)\n" \
	"      --mirror URL         an HF-compatible mirror, used when the hub fails\n" \
	"                           (repeatable; env MODELFS_MIRRORS, comma-separated)\n" \
	"      --peer URL           a `modelfs serve` peer, asked first by content hash\n" \
	"                           (repeatable; env MODELFS_PEERS; token MODELFS_PEER_TOKEN)\n" \
	"      --prefer hub|mirror  which to try first for file bytes (default hub)\n" \
	MFS_VERIFY_HELP

struct mfs_cli_opts {
	const char *cache, *endpoint, *token_file;
	bool offline;
	bool prefer_mirror;
	bool verify_strict;                   /* --verify strict */
	struct mfs_src_list mirrors, peers;  /* from flags; env when none given */
	int bad;                              /* a common option's value was bad */
};

/* true if c was a common option (stored in o; a bad value sets o->bad and
 * prints why). Free the lists with mfs_cli_opts_free. */
bool mfs_cli_common_opt(int c, const char *arg, struct mfs_cli_opts *o);
void mfs_cli_opts_free(struct mfs_cli_opts *o);

/* "org/name[@rev]" or "datasets/org/name[@rev]" (also "models/org/name").
 * rev "" when absent. -EINVAL when malformed. */
int mfs_parse_repo_rev(const char *arg, struct mfs_repo *repo, char *rev, size_t cap);

enum {
	MFS_CACHE_NEED_FETCH = 1,  /* a hub client and a catalog that may use it */
};

/* Opens the cache context (core/context.h) from the common options: index,
 * block store, catalogue (and hub and sources with NEED_FETCH, unless
 * offline). The quota is MODELFS_CACHE_SIZE if set (then remembered), else
 * the remembered one. On failure prints "modelfs CMD: ..." and returns the
 * exit status (2 for bad settings, 1 otherwise); 0 on success. Consumes
 * o's source lists. Close with mfs_ctx_close. */
int mfs_cache_open(const char *cmd, struct mfs_cli_opts *o, int what,
		   struct mfs_ctx **out);
/* Starts the block layer and the evictor (mfs_ctx_start_io). Exit status
 * as above. */
int mfs_cache_start_io(const char *cmd, struct mfs_ctx *c, const struct mfs_ctx_io *io);

/* Removes stored blocks the index does not know (core/sweep.h) and says so
 * on stdout when there were any. 0, or prints why and returns 1. */
int mfs_cache_sweep(const char *cmd, struct mfs_ctx *c);

/* "12.3 MiB"-style into a static-duration caller buffer. */
const char *mfs_cli_size(uint64_t bytes, char *buf, size_t cap);

#endif
