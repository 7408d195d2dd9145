/*
 * repo.h - the shared vocabulary of modelfs: repositories and tree entries.
 *
 * Every module speaks in these types: fetch/ fills them from the hub's JSON,
 * index/ stores them in sqlite, core/ builds in-memory trees from them, fs/
 * turns them into inodes. They carry no behaviour beyond validation and
 * freeing, so no module depends on another one just to name a file.
 */
#ifndef MFS_UTIL_REPO_H
#define MFS_UTIL_REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mfs_repo_type { MFS_REPO_MODEL = 0, MFS_REPO_DATASET = 1 };

/* Longest repo id we accept ("org/name"); the hub caps names at 96 chars. */
#define MFS_REPO_ID_MAX 256
/* Longest path inside a repo and deepest nesting we expose. */
#define MFS_PATH_MAX 4096
#define MFS_DEPTH_MAX 256
/* Largest file size we believe (2^50 bytes, 1 PiB). */
#define MFS_SIZE_MAX (UINT64_C(1) << 50)

struct mfs_repo {
	enum mfs_repo_type type;
	char id[MFS_REPO_ID_MAX]; /* "org/name", validated by mfs_repo_id_valid */
};

enum mfs_kind { MFS_KIND_FILE = 1, MFS_KIND_DIR = 2 };

/* One path of one commit, as listed by the hub's tree API. */
struct mfs_entry {
	char *path;          /* relative, '/'-separated, validated; owned */
	enum mfs_kind kind;
	uint64_t size;       /* real content size (lfs.size for LFS files) */
	char oid[41];        /* git blob sha1 (files) / tree sha1 (dirs), lowercase hex */
	char sha256[65];     /* lfs.oid, lowercase hex; "" when not an LFS file */
	char xet_hash[65];   /* "" when absent or redacted */
};

/* "models" or "datasets": the URL prefix used by /api/{type}s/ */
const char *mfs_repo_type_api(enum mfs_repo_type t);

/* true when `id` is "org/name" with hub-legal characters ([A-Za-z0-9._-],
 * no "--", no leading/trailing '.' or '-', each part 1..96 chars). */
bool mfs_repo_id_valid(const char *id);
/* true when `name` is a legal org or repo name component (same rules). */
bool mfs_repo_name_valid(const char *name);

/* true when `path` is a safe relative path: non-empty, no leading '/',
 * no empty, "." or ".." components, no NUL/control characters, valid UTF-8,
 * at most MFS_PATH_MAX bytes and MFS_DEPTH_MAX components. */
bool mfs_path_valid(const char *path, size_t len);

/* true for exactly 40 (sha1) or 64 (sha256) lowercase-or-uppercase hex digits */
bool mfs_hex_valid(const char *s, size_t want_len);

/* The id a blob is stored under: sha256 for LFS files, git sha1 otherwise. */
static inline const char *mfs_entry_content_id(const struct mfs_entry *e)
{
	return e->sha256[0] ? e->sha256 : e->oid;
}

void mfs_entries_free(struct mfs_entry *entries, size_t n);

#endif
