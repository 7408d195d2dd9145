/*
 * hfcache.h - the mount seen as a huggingface_hub cache (HF_HUB_CACHE).
 *
 * Next to the orgs, the mount root has, looked up on demand:
 *   models--<org>--<name>/            (datasets--<org>--<name>/ for datasets)
 *     refs/<branch or tag>            file: the 40-hex commit, no newline;
 *                                     "refs/pr/1" is refs/refs/pr/1
 *     snapshots/<commit>/<path>       symlink -> ../../blobs/<etag> (one more
 *                                     "../" per directory level of <path>)
 *     blobs/<etag>                    the file (etag = sha256 for LFS files,
 *                                     git blob sha1 otherwise)
 * exactly huggingface_hub's layout, so its lookups (and huggingface.js's)
 * find what a download would have left. snapshots/<commit> works for any
 * commit of the repo (the catalog confirms unknown ones with the hub);
 * readdir lists what the index knows. refs/ follows the ref TTL like the
 * name@rev symlinks; everything else is immutable.
 *
 * Also .locks/<repo folder>/, empty directories that exist for any repo
 * folder name (not listed): hf_hub_download, once the hub answered, makes
 * that directory (exist_ok) before it checks for the snapshot file it would
 * return, so without it every online lookup would fail with EROFS.
 *
 * This file decides names, node identities, attributes, link targets and
 * listings; fs.c owns inodes and FUSE replies and calls in here for nodes of
 * kind N_HF. It reads bytes through nothing: a blob is opened by fs.c like
 * any file of a commit tree (mfs_hfc_file_entry). It writes nothing: the
 * view is read-only.
 */
#ifndef MFS_FS_HFCACHE_H
#define MFS_FS_HFCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/catalog.h"
#include "fs/names.h"

enum mfs_hfc_kind {
	MFS_HFC_REPO = 1,   /* models--org--name/ */
	MFS_HFC_REFS,       /* refs/ or a directory below it (ref = "refs/pr/") */
	MFS_HFC_REF,        /* refs/<ref>: a file */
	MFS_HFC_SNAPS,      /* snapshots/ */
	MFS_HFC_SNAP,       /* snapshots/<commit>[/<dir>] */
	MFS_HFC_LINK,       /* snapshots/<commit>/<file>: a symlink */
	MFS_HFC_BLOBS,      /* blobs/ */
	MFS_HFC_BLOB,       /* blobs/<etag>: a file */
	MFS_HFC_LOCKS,      /* .locks/ at the root */
	MFS_HFC_LOCKDIR,    /* .locks/<repo folder>/: always empty */
};

struct mfs_hfc_node {
	enum mfs_hfc_kind kind;
	struct mfs_repo repo;
	char ref[MFS_REV_MAX];       /* REFS: prefix ("" or ending in '/'); REF: name */
	char commit[41];             /* SNAP, LINK, BLOB: the commit whose tree holds it */
	const struct mfs_tree *tree; /* SNAP, LINK, BLOB; valid until the catalog is freed */
	uint32_t tnode;              /* node in tree (SNAP of a commit: 0) */
};

/* true when `name` has the form of a repo folder at the root
 * ("models--" or "datasets--" + org + "--" + name), or is ".locks". */
bool mfs_hfc_is_root_entry(const char *name);

/* Child `name` of dir (dir NULL = the mount root). 0, -ENOENT, -ENOTDIR,
 * -EACCES, or the catalog's transport errors. */
int mfs_hfc_lookup(struct mfs_catalog *cat, struct mfs_ix *ix, const struct mfs_hfc_node *dir,
		   const char *name, struct mfs_hfc_node *out);

/* false when mfs_hfc_lookup of name in dir (NULL: the root) answers from
 * memory or the index alone; true when it may ask the hub. */
bool mfs_hfc_lookup_may_fetch(const struct mfs_hfc_node *dir, const char *name);

/* The node's identity (mfs_names_key with kind 'A' + kind); 0 if it
 * does not fit in cap. */
size_t mfs_hfc_key(const struct mfs_hfc_node *n, char *buf, size_t cap);

/* Mode (type and permissions), link count, size and blocks of a node; the
 * rest of *st is the caller's. */
void mfs_hfc_stat(const struct mfs_hfc_node *n, struct stat *st);
/* Seconds the kernel may cache a node: ref_ttl for refs, `forever` for
 * what lives under a commit (snapshots, blobs), 1 s for listings. */
double mfs_hfc_ttl(const struct mfs_hfc_node *n, double ref_ttl, double forever);
bool mfs_hfc_is_dir(const struct mfs_hfc_node *n);

/* The target of a LINK ("../../blobs/<etag>"); -EINVAL for other nodes. */
int mfs_hfc_readlink(const struct mfs_hfc_node *n, char *out, size_t cap);

/* The tree entry a BLOB reads as; NULL for other nodes. */
const struct mfs_entry *mfs_hfc_file_entry(const struct mfs_hfc_node *n);

/* The commit a REF names now (ref TTL rules of the catalog). */
int mfs_hfc_ref_commit(struct mfs_catalog *cat, const struct mfs_hfc_node *n, char commit[41]);

/* Listing: cb(name, type, key of the child). Children of the root are the
 * repo folders of every repo the index knows. */
typedef int (*mfs_hfc_add_fn)(void *ctx, const char *name, mode_t type, const char *key,
			      size_t keylen);
int mfs_hfc_list(struct mfs_catalog *cat, struct mfs_ix *ix, const struct mfs_hfc_node *dir,
		 mfs_hfc_add_fn cb, void *ctx);

/* "models--org--name" for a repo; -ENAMETOOLONG. Used by `modelfs import`
 * too, in the other direction (mfs_hfc_parse_repo_dir). */
int mfs_hfc_repo_dir(const struct mfs_repo *repo, char *out, size_t cap);
int mfs_hfc_parse_repo_dir(const char *name, struct mfs_repo *out);

#endif
