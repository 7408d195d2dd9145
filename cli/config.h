/*
 * config.h - where settings come from, in one place for every subcommand.
 *
 * Precedence: command-line flag > environment > default.
 *   endpoint   --endpoint, HF_ENDPOINT, https://huggingface.co
 *   token      --token-file F, HF_TOKEN, HUGGING_FACE_HUB_TOKEN,
 *              HF_TOKEN_PATH, $HF_HOME/token, ~/.cache/huggingface/token
 *              (HF_HUB_DISABLE_IMPLICIT_TOKEN skips the environment/file)
 *   cache      --cache, MODELFS_CACHE, $XDG_CACHE_HOME/modelfs, ~/.cache/modelfs;
 *              /var/cache/modelfs for root
 *   offline    --offline, HF_HUB_OFFLINE (1/ON/YES/TRUE)
 */
#ifndef MFS_CLI_CONFIG_H
#define MFS_CLI_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define MFS_DEFAULT_ENDPOINT "https://huggingface.co"

/* true for 1/ON/YES/TRUE, any case (huggingface_hub's rule). */
bool mfs_cfg_truthy(const char *v);

/* Fills out (cap bytes); flag may be NULL. */
int mfs_cfg_endpoint(const char *flag, char *out, size_t cap);
int mfs_cfg_cache_dir(const char *flag, char *out, size_t cap);

/* Reads the token; *out is malloc'd or NULL when there is none.
 * -errno when --token-file was given and cannot be read. */
int mfs_cfg_token(const char *token_file_flag, char **out);

bool mfs_cfg_offline(bool flag);

/* The explicit quota: the flag (may be NULL), else MODELFS_CACHE_SIZE,
 * else 0 (the cache's remembered quota then applies, core/context.h).
 * -EINVAL with *bad set to the offending string. */
int mfs_cfg_cache_size(const char *flag, uint64_t *out, const char **bad);

struct mfs_src_list;
/* A --mirror/--peer flag: the first flag of a kind replaces what the
 * environment (MODELFS_MIRRORS/MODELFS_PEERS) put in the list, later ones
 * add to it. 0 or -EINVAL (bad URL). */
int mfs_cfg_source_flag(struct mfs_src_list *list, bool *flag_seen, const char *url);

/* --verify sources|strict (README "Trust model"): sources (default) serves
 * the hub's bytes as they arrive and everything else once verified; strict
 * serves nothing unverified. 0 or -EINVAL. */
int mfs_cfg_verify_flag(const char *arg, bool *strict);
#define MFS_VERIFY_HELP \
	"      --verify sources|strict  sources (default): bytes from peers, mirrors and\n" \
	"                           proxies are served only once verified; strict: the\n" \
	"                           hub's too\n"

#endif
