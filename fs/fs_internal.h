/*
 * fs_internal.h - what fs.c (lookups, files, lifecycle) and fsdir.c
 * (directory listings) share: the node and filesystem structures and the
 * hand-off of requests that may wait on the network.
 *
 * Not for use outside fs/.
 */
#ifndef MFS_FS_FS_INTERNAL_H
#define MFS_FS_FS_INTERNAL_H

#include <fuse_lowlevel.h>
#include <sys/types.h>

#include "core/blobio.h"
#include "core/catalog.h"
#include "core/orglist.h"
#include "fs/fs.h"
#include "fs/hfcache.h"
#include "fs/inodes.h"
#include "fs/names.h"
#include "fs/offload.h"

/* N_HF: a node of the huggingface_hub cache view (hfcache.h) */
enum node_kind { N_ROOT, N_DSROOT, N_ORG, N_REFLINK, N_COMMIT, N_TREE, N_HF };

#define DS_DIR "datasets"

struct fs_node {
	struct mfs_inode in;         /* first: number, key, lookup count */
	enum node_kind kind;
	struct mfs_repo repo;        /* ORG: type + org name; others: the repo */
	char name[97];               /* REFLINK: repo name (symlink target base) */
	char rev[MFS_REV_MAX];       /* REFLINK */
	char commit[41];             /* COMMIT, TREE */
	const struct mfs_tree *tree; /* COMMIT, TREE */
	uint32_t tnode;              /* TREE: node in tree (COMMIT: 0) */
	int64_t mtime_s;
	struct mfs_hfc_node hf;      /* HF */
};

struct mfs_fs {
	struct mfs_fs_config cfg;
	struct mfs_catalog *cat;
	struct mfs_ix *ix;
	struct mfs_orgl *orgl;       /* what ls <org>/ lists */
	struct mfs_blobio *bio;
	struct fuse_session *se;
	int64_t mount_time_s;
	uid_t uid;
	gid_t gid;

	struct mfs_itab nodes;       /* every node the kernel may name */
	struct mfs_offload *slow;    /* requests that may wait on the network */
};

struct open_file {
	struct mfs_blob *blob;       /* NULL for an HF ref file */
	char ref[41];                /* HF ref file: its content */
	struct mfs_readahead ra;     /* updated under the blobio lock */
};

/* One request handed to fs/offload.h. The node is a copy: once an
 * interrupt answered, the kernel may forget the original. */
struct slow {
	struct mfs_fs *fs;
	struct fs_node node;
	struct fuse_file_info fi;
	struct open_file *of;          /* open */
	const struct mfs_entry *e;     /* open: the file (NULL: an HF ref file) */
	char name[];                   /* lookup: the child's name */
};

/* Runs fn for req on a thread of its own (fs/offload.h) with a copy of n
 * (and of fi, name when given; of and e for an open). Out of memory: req
 * is answered ENOMEM and `of` (with its blob) freed. */
void mfs_fs_offload(struct mfs_fs *fs, fuse_req_t req, const struct fs_node *n,
		    struct fuse_file_info *fi, const char *name, mfs_offload_fn fn,
		    struct open_file *of, const struct mfs_entry *e);

/* fsdir.c: the directory operations. */
void mfs_fsd_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mfs_fsd_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi);
void mfs_fsd_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

#endif
