/*
 * fs.c - FUSE low-level operations for modelfs (namespace in fs.h).
 *
 * Inodes: every node has a key string that names it for good
 * ("c\0<type>\0<repo>\0<commit>\0<path>" for a file of a commit), and its
 * inode number is a hash of the key (fs/inodes.h), so a (commit, path) keeps
 * its inode number across lookups and mounts, which is what lets the kernel
 * keep page cache and what tools that remember inodes expect. Every entry
 * replied to a lookup counts one kernel reference; FORGET drops them and
 * frees the node at zero (fs/inodes.h says why that is race-free), so the
 * daemon's memory follows what the kernel keeps.
 *
 * Caching: everything at or below a commit directory is immutable, so the
 * kernel may keep entries, attributes and pages forever (keep_cache, never
 * direct_io, which breaks shared mmap). Ref symlinks are cached for the
 * ref TTL; a true ENOENT is cached briefly as a negative entry; errors are
 * never cached.
 *
 * Reads never block a FUSE worker on the network: mfs_blob_read answers
 * either at once (memory, disk) or later from a fetch thread, and the reply
 * is sent from there (libfuse allows replies from any thread).
 *
 * It does not create, write or remove anything: the mount is read-only.
 */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/orglist.h"
#include "fs/hfcache.h"
#include "fs/inodes.h"
#include "fs/names.h"
#include "fs/readreply.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/size.h"

/* N_HF: a node of the huggingface_hub cache view (hfcache.h) */
enum node_kind { N_ROOT, N_DSROOT, N_ORG, N_REFLINK, N_COMMIT, N_TREE, N_HF };

#define DS_DIR "datasets"
#define IMMUTABLE_TTL (365.0 * 24 * 3600)

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
};

struct open_file {
	struct mfs_blob *blob;       /* NULL for an HF ref file */
	char ref[41];                /* HF ref file: its content */
	struct mfs_readahead ra;     /* updated under the blobio lock */
};

/* ---- node table ------------------------------------------------------------- */

static uint64_t key_ino(const char *key, size_t len)
{
	return mfs_itab_key_ino(key, len);
}

static struct fs_node *node_by_ino(struct mfs_fs *fs, uint64_t ino)
{
	return (struct fs_node *)mfs_itab_get(&fs->nodes, ino);
}

/* The node for tmpl's key (inserted if new), with one more kernel
 * reference: the caller replies it as an entry. */
static struct fs_node *node_intern(struct mfs_fs *fs, const struct fs_node *tmpl)
{
	return (struct fs_node *)mfs_itab_intern(&fs->nodes, &tmpl->in);
}

/* Builds "kind\0type\0a\0b\0c" keys in buf (names.h); returns the length. */
static size_t make_key(char *buf, size_t cap, char kind, enum mfs_repo_type t,
		       const char *a, const char *b, const char *c)
{
	return mfs_names_key(buf, cap, kind, t, a, b, c);
}

/* ---- attributes --------------------------------------------------------------- */

static void fill_attr(struct mfs_fs *fs, const struct fs_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->in.ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_mtime = st->st_ctime = st->st_atime = n->mtime_s ? n->mtime_s : fs->mount_time_s;
	st->st_blksize = 1 << 20;
	switch (n->kind) {
	case N_HF:
		mfs_hfc_stat(&n->hf, st);
		break;
	case N_REFLINK: {
		char target[512];
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		/* Size of "<name>@<40 hex>"; readlink gives the real target. */
		snprintf(target, sizeof(target), "%s@%040d", n->name, 0);
		st->st_size = (off_t)strlen(target);
		break;
	}
	case N_TREE:
		if (!mfs_tree_is_dir(n->tree, n->tnode)) {
			const struct mfs_entry *e = n->tree->nodes[n->tnode].e;
			st->st_mode = S_IFREG | 0444;
			st->st_nlink = 1;
			st->st_size = (off_t)e->size;
			st->st_blocks = (blkcnt_t)((e->size + 511) / 512);
			break;
		}
		/* fallthrough */
	default:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		st->st_size = 4096;
		break;
	}
}

static double node_ttl(struct mfs_fs *fs, const struct fs_node *n)
{
	switch (n->kind) {
	case N_COMMIT:
	case N_TREE:
		return IMMUTABLE_TTL;
	case N_REFLINK:
		return (double)fs->cfg.ref_ttl_ms / 1000.0;
	case N_HF:
		return mfs_hfc_ttl(&n->hf, (double)fs->cfg.ref_ttl_ms / 1000.0, IMMUTABLE_TTL);
	default:
		return 1.0;
	}
}

static int reply_node(fuse_req_t req, struct mfs_fs *fs, struct fs_node *n)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = n->in.ino;
	e.generation = 1;
	fill_attr(fs, n, &e.attr);
	e.attr_timeout = node_ttl(fs, n);
	e.entry_timeout = n->kind == N_ORG ? 60.0 : node_ttl(fs, n);
	int rc = fuse_reply_entry(req, &e);
	/* The kernel never saw this entry: it will not forget it. */
	if (rc && mfs_itab_forget(&fs->nodes, n->in.ino, 1))
		mfs_itab_after_forgets(&fs->nodes);
	return rc;
}

/* ENOENT is cached by the kernel for neg_ttl; every other error is not. */
static void reply_lookup_error(fuse_req_t req, struct mfs_fs *fs, int err)
{
	if (err == -ENOENT) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.entry_timeout = (double)fs->cfg.neg_ttl_ms / 1000.0;
		fuse_reply_entry(req, &e);
		return;
	}
	fuse_reply_err(req, err == -EACCES ? EACCES : err == -ENOTDIR ? ENOTDIR : EIO);
}

/* ---- lookup --------------------------------------------------------------------- */

static int lookup_org(struct mfs_fs *fs, enum mfs_repo_type t, const char *name,
		      struct fs_node **out)
{
	struct fs_node tmpl = { 0 };
	char key[512];
	int rc;

	if (!mfs_repo_name_valid(name))
		return -ENOENT;
	rc = mfs_cat_org_exists(fs->cat, t, name);
	if (rc == 0)
		return -ENOENT;
	if (rc < 0)
		return rc;
	tmpl.kind = N_ORG;
	tmpl.repo.type = t;
	snprintf(tmpl.repo.id, sizeof(tmpl.repo.id), "%s", name);
	tmpl.in.keylen = make_key(key, sizeof(key), 'o', t, name, NULL, NULL);
	tmpl.in.key = key;
	*out = node_intern(fs, &tmpl);
	return *out ? 0 : -ENOMEM;
}

static int lookup_repo(struct mfs_fs *fs, struct fs_node *org, const char *entry,
		       struct fs_node **out)
{
	struct fs_node tmpl = { 0 };
	char key[1024], commit[41];
	int64_t date = 0;
	int rc;

	rc = mfs_names_parse(entry, tmpl.name, tmpl.rev);
	if (rc)
		return rc;
	tmpl.repo.type = org->repo.type;
	if (snprintf(tmpl.repo.id, sizeof(tmpl.repo.id), "%s/%s", org->repo.id,
		     tmpl.name) >= (int)sizeof(tmpl.repo.id) || !mfs_repo_id_valid(tmpl.repo.id))
		return -ENOENT;
	rc = mfs_cat_resolve(fs->cat, &tmpl.repo, tmpl.rev, commit, &date);
	if (rc)
		return rc;
	if (mfs_names_is_commit(tmpl.rev)) {
		const struct mfs_tree *tree;
		rc = mfs_cat_tree(fs->cat, &tmpl.repo, commit, &tree);
		if (rc)
			return rc;
		tmpl.kind = N_COMMIT;
		memcpy(tmpl.commit, commit, 41);
		tmpl.tree = tree;
		tmpl.mtime_s = date;
		tmpl.in.keylen = make_key(key, sizeof(key), 'c', tmpl.repo.type, tmpl.repo.id,
				       commit, "");
	} else {
		tmpl.kind = N_REFLINK;
		tmpl.in.keylen = make_key(key, sizeof(key), 'l', tmpl.repo.type, tmpl.repo.id,
				       tmpl.rev, NULL);
	}
	if (tmpl.in.keylen == 0)
		return -ENOENT;
	tmpl.in.key = key;
	*out = node_intern(fs, &tmpl);
	return *out ? 0 : -ENOMEM;
}

static int lookup_in_tree(struct mfs_fs *fs, struct fs_node *dir, const char *name,
			  struct fs_node **out)
{
	struct fs_node tmpl = *dir;
	char *key;
	uint32_t child;
	int rc;

	rc = mfs_tree_lookup(dir->tree, dir->tnode, name, strlen(name), &child);
	if (rc)
		return rc;
	const char *path = dir->tree->nodes[child].e->path;
	size_t cap = strlen(path) + strlen(dir->repo.id) + 64;
	key = malloc(cap);
	if (!key)
		return -ENOMEM;
	tmpl.kind = N_TREE;
	tmpl.tnode = child;
	tmpl.in.keylen = make_key(key, cap, 'c', dir->repo.type, dir->repo.id, dir->commit, path);
	tmpl.in.key = key;
	*out = node_intern(fs, &tmpl);
	free(key);
	return *out ? 0 : -ENOMEM;
}

/* A child of the huggingface_hub cache view (parent NULL: the root). */
static int lookup_hf(struct mfs_fs *fs, struct fs_node *parent, const char *name,
		     struct fs_node **out)
{
	struct fs_node tmpl = { .kind = N_HF };
	char key[MFS_PATH_MAX + 512];
	int rc = mfs_hfc_lookup(fs->cat, fs->ix, parent ? &parent->hf : NULL, name, &tmpl.hf);

	if (rc)
		return rc;
	tmpl.in.keylen = mfs_hfc_key(&tmpl.hf, key, sizeof(key));
	if (tmpl.in.keylen == 0)
		return -ENOENT;
	tmpl.in.key = key;
	*out = node_intern(fs, &tmpl);
	return *out ? 0 : -ENOMEM;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mfs_fs *fs = fuse_req_userdata(req);
	struct fs_node *p = node_by_ino(fs, parent), *n = NULL;
	int rc;

	if (!p) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	switch (p->kind) {
	case N_ROOT:
		if (strcmp(name, DS_DIR) == 0) {
			n = node_by_ino(fs, FUSE_ROOT_ID + 1);
			rc = n ? 0 : -ENOENT;
			if (n)
				mfs_itab_ref(&fs->nodes, &n->in);
		} else if (mfs_hfc_is_root_entry(name)) {
			rc = lookup_hf(fs, NULL, name, &n);
		} else {
			rc = lookup_org(fs, MFS_REPO_MODEL, name, &n);
		}
		break;
	case N_DSROOT:
		rc = lookup_org(fs, MFS_REPO_DATASET, name, &n);
		break;
	case N_ORG:
		rc = lookup_repo(fs, p, name, &n);
		break;
	case N_COMMIT:
	case N_TREE:
		rc = lookup_in_tree(fs, p, name, &n);
		break;
	case N_HF:
		rc = lookup_hf(fs, p, name, &n);
		break;
	default:
		rc = -ENOTDIR;
		break;
	}
	if (rc)
		reply_lookup_error(req, fs, rc);
	else
		reply_node(req, fs, n);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct mfs_fs *fs = fuse_req_userdata(req);

	if (mfs_itab_forget(&fs->nodes, ino, nlookup))
		mfs_itab_after_forgets(&fs->nodes);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	struct mfs_fs *fs = fuse_req_userdata(req);
	bool freed = false;

	for (size_t i = 0; i < count; i++)
		freed |= mfs_itab_forget(&fs->nodes, f[i].ino, f[i].nlookup);
	if (freed)
		mfs_itab_after_forgets(&fs->nodes);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs_fs *fs = fuse_req_userdata(req);
	struct fs_node *n = node_by_ino(fs, ino);
	struct stat st;

	(void)fi;
	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	fill_attr(fs, n, &st);
	fuse_reply_attr(req, &st, node_ttl(fs, n));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct mfs_fs *fs = fuse_req_userdata(req);
	struct fs_node *n = node_by_ino(fs, ino);
	char commit[41], target[MFS_PATH_MAX + 128];
	int64_t date;
	int rc;

	if (n && n->kind == N_HF) {
		rc = mfs_hfc_readlink(&n->hf, target, sizeof(target));
		(void)(rc ? fuse_reply_err(req, -rc) : fuse_reply_readlink(req, target));
		return;
	}
	if (!n || n->kind != N_REFLINK) {
		fuse_reply_err(req, n ? EINVAL : ESTALE);
		return;
	}
	rc = mfs_cat_resolve(fs->cat, &n->repo, n->rev, commit, &date);
	if (rc) {
		fuse_reply_err(req, rc == -ENOENT ? ENOENT : rc == -EACCES ? EACCES : EIO);
		return;
	}
	snprintf(target, sizeof(target), "%s@%s", n->name, commit);
	fuse_reply_readlink(req, target);
}

/* ---- directories ------------------------------------------------------------------ */

/* A whole listing, built at opendir; `ends[i]` is where entry i ends,
 * which is also the offset the kernel hands back to continue after it. */
struct dirbuf {
	fuse_req_t req;
	char *p;
	size_t len, cap;
	size_t *ends;
	size_t n, ends_cap;
	int err;
};

static void dirbuf_add(struct dirbuf *db, const char *name, mode_t mode, uint64_t ino)
{
	struct stat st = { .st_ino = ino, .st_mode = mode };
	size_t need = fuse_add_direntry(db->req, NULL, 0, name, NULL, 0);

	if (db->err)
		return;
	if (db->len + need > db->cap) {
		size_t ncap = db->cap ? db->cap * 2 : 4096;
		while (ncap < db->len + need)
			ncap *= 2;
		char *np = realloc(db->p, ncap);
		if (!np) {
			db->err = -ENOMEM;
			return;
		}
		db->p = np;
		db->cap = ncap;
	}
	if (db->n == db->ends_cap) {
		size_t nc = db->ends_cap ? db->ends_cap * 2 : 64;
		size_t *ne = realloc(db->ends, nc * sizeof(*ne));
		if (!ne) {
			db->err = -ENOMEM;
			return;
		}
		db->ends = ne;
		db->ends_cap = nc;
	}
	fuse_add_direntry(db->req, db->p + db->len, need, name, &st, (off_t)(db->len + need));
	db->len += need;
	db->ends[db->n++] = db->len;
}

struct list_ctx {
	struct dirbuf *db;
	struct fs_node *dir;
	mode_t mode;
	const char *repo_name;     /* when listing refs of a repo */
	const struct mfs_repo *repo;
	struct mfs_fs *fs;
};

/* d_ino of a ref symlink: the inode lookup gives the same entry. */
static uint64_t reflink_ino(const struct mfs_repo *repo, const char *rev)
{
	char key[1024];
	size_t kl = make_key(key, sizeof(key), 'l', repo->type, repo->id, rev, NULL);
	return key_ino(key, kl);
}

static int add_org(void *vctx, const char *name)
{
	struct list_ctx *c = vctx;
	char key[512];
	size_t kl = make_key(key, sizeof(key), 'o', c->dir->kind == N_DSROOT ?
			     MFS_REPO_DATASET : MFS_REPO_MODEL, name, NULL, NULL);
	dirbuf_add(c->db, name, S_IFDIR, key_ino(key, kl));
	return 0;
}

static int add_ref(void *vctx, const char *rev)
{
	struct list_ctx *c = vctx;
	char entry[512];

	if (mfs_names_format(c->repo_name, rev, entry, sizeof(entry)) == 0)
		dirbuf_add(c->db, entry, S_IFLNK, reflink_ino(c->repo, rev));
	return 0;
}

static int add_repo(void *vctx, const char *name)
{
	struct list_ctx *c = vctx;
	struct mfs_repo repo = { .type = c->dir->repo.type };

	if (snprintf(repo.id, sizeof(repo.id), "%s/%s", c->dir->repo.id, name) >=
	    (int)sizeof(repo.id))
		return 0;
	dirbuf_add(c->db, name, S_IFLNK, reflink_ino(&repo, ""));
	c->repo_name = name;
	c->repo = &repo;
	(void)mfs_ix_list_refs(c->fs->ix, &repo, add_ref, c);
	return 0;
}

static int add_hf(void *vctx, const char *name, mode_t type, const char *key, size_t keylen)
{
	dirbuf_add(((struct list_ctx *)vctx)->db, name, type, key_ino(key, keylen));
	return 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs_fs *fs = fuse_req_userdata(req);
	struct fs_node *n = node_by_ino(fs, ino);
	struct dirbuf *db;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (n->kind == N_REFLINK || (n->kind == N_TREE && !mfs_tree_is_dir(n->tree, n->tnode)) ||
	    (n->kind == N_HF && !mfs_hfc_is_dir(&n->hf))) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	db = calloc(1, sizeof(*db));
	if (!db) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	db->req = req;
	struct list_ctx c = { .db = db, .dir = n, .fs = fs };
	dirbuf_add(db, ".", S_IFDIR, n->in.ino);
	dirbuf_add(db, "..", S_IFDIR, FUSE_ROOT_ID);
	switch (n->kind) {
	case N_ROOT:
		dirbuf_add(db, DS_DIR, S_IFDIR, FUSE_ROOT_ID + 1);
		(void)mfs_ix_list_orgs(fs->ix, MFS_REPO_MODEL, add_org, &c);
		(void)mfs_hfc_list(fs->cat, fs->ix, NULL, add_hf, &c);
		break;
	case N_HF:
		(void)mfs_hfc_list(fs->cat, fs->ix, &n->hf, add_hf, &c);
		break;
	case N_DSROOT:
		(void)mfs_ix_list_orgs(fs->ix, MFS_REPO_DATASET, add_org, &c);
		break;
	case N_ORG:
		(void)mfs_orgl_list(fs->orgl, n->repo.type, n->repo.id, add_repo, &c);
		break;
	default: {
		const struct mfs_tree_node *d = &n->tree->nodes[n->tnode];
		for (uint32_t i = 0; i < d->child_count; i++) {
			uint32_t ch = n->tree->children[d->child_start + i];
			const struct mfs_entry *e = n->tree->nodes[ch].e;
			char key[MFS_PATH_MAX + 512];
			size_t kl = make_key(key, sizeof(key), 'c', n->repo.type, n->repo.id,
					     n->commit, e->path);
			dirbuf_add(db, n->tree->nodes[ch].name,
				   e->kind == MFS_KIND_DIR ? S_IFDIR : S_IFREG,
				   key_ino(key, kl));
		}
		break;
	}
	}
	if (db->err) {
		int err = db->err;
		free(db->p);
		free(db->ends);
		free(db);
		fuse_reply_err(req, -err);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)db;
	/* Commit directories never change: let the kernel cache listings. */
	if (n->kind == N_COMMIT || n->kind == N_TREE ||
	    (n->kind == N_HF && n->hf.kind == MFS_HFC_SNAP))
		fi->cache_readdir = 1;
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct dirbuf *db = (struct dirbuf *)(uintptr_t)fi->fh;

	(void)ino;
	if (off < 0 || (size_t)off >= db->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* Offsets we hand out are entry ends; return whole entries that fit. */
	size_t lo = 0, hi = db->n, end = (size_t)off;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (db->ends[mid] <= (size_t)off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < db->n && db->ends[i] - (size_t)off <= size; i++)
		end = db->ends[i];
	/* Reply from a private copy, not from db: the kernel completes the
	 * request inside our writev, so the reader may close the directory and
	 * a RELEASEDIR on another worker may free db before writev returns here
	 * (seen under ASan, whose writev interceptor reads the iovec after the
	 * syscall). db itself is valid until we answer: the reader is blocked
	 * in getdents until then, so no RELEASEDIR can come first. The copy is
	 * at most `size` bytes (one getdents buffer), cheaper than a refcount
	 * and lock on every directory handle. */
	size_t len = end - (size_t)off;
	char *copy = malloc(len ? len : 1);
	if (!copy) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(copy, db->p + off, len);
	fuse_reply_buf(req, copy, len);
	free(copy);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirbuf *db = (struct dirbuf *)(uintptr_t)fi->fh;

	(void)ino;
	free(db->p);
	free(db->ends);
	free(db);
	fuse_reply_err(req, 0);
}

/* ---- files ------------------------------------------------------------------------- */

/* The tree entry a file node reads as (a file of a commit, or an HF blob),
 * with the repo and commit to fetch it from; NULL for anything else. */
static const struct mfs_entry *node_file(const struct fs_node *n, const struct mfs_repo **repo,
					 const char **commit)
{
	if (n->kind == N_HF) {
		*repo = &n->hf.repo;
		*commit = n->hf.commit;
		return mfs_hfc_file_entry(&n->hf);
	}
	*repo = &n->repo;
	*commit = n->commit;
	return n->kind == N_TREE && !mfs_tree_is_dir(n->tree, n->tnode) ?
	       n->tree->nodes[n->tnode].e : NULL;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs_fs *fs = fuse_req_userdata(req);
	struct fs_node *n = node_by_ino(fs, ino);
	struct open_file *of = NULL;
	const struct mfs_entry *e;
	const struct mfs_repo *repo;
	const char *commit;
	int rc;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	e = node_file(n, &repo, &commit);
	if (!e && !(n->kind == N_HF && n->hf.kind == MFS_HFC_REF)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_APPEND))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	of = calloc(1, sizeof(*of));
	if (!of) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (!e) {
		/* an HF refs/<name> file: the commit it names now; direct I/O
		 * so a moved branch shows at the next open after the ref TTL */
		rc = mfs_hfc_ref_commit(fs->cat, &n->hf, of->ref);
		fi->direct_io = 1;
	} else {
		struct mfs_blob_desc d = {
			.repo = repo, .commit = commit, .path = e->path,
			.content_id = mfs_entry_content_id(e), .size = e->size,
			.lfs = e->sha256[0] != '\0', .xet_hash = e->xet_hash,
		};
		rc = mfs_blob_open(fs->bio, &d, &of->blob);
		if (rc == 0 && e->size > 0 && (rc = mfs_blob_check_reachable(of->blob)) != 0)
			mfs_blob_close(of->blob);
	}
	if (rc) {
		free(of);
		fuse_reply_err(req, rc == -EACCES || (rc == -ENOENT && !e) ? -rc : EIO);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)of;
	fi->keep_cache = e != NULL;   /* commit content never changes */
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	(void)ino;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!of->blob) {
		size_t len = (size_t)off >= 40 ? 0 : 40 - (size_t)off;
		fuse_reply_buf(req, of->ref + (len ? off : 0), len < size ? len : size);
		return;
	}
	mfs_fs_read_blob(req, of->blob, (uint64_t)off, size, &of->ra);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	(void)ino;
	if (of->blob)
		mfs_blob_close(of->blob);
	free(of);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct mfs_fs *fs = fuse_req_userdata(req);
	struct mfs_ix_totals t = { 0 };
	struct statvfs sv;

	(void)ino;
	(void)mfs_ix_totals(fs->ix, &t);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	uint64_t total = fs->cfg.quota_bytes > t.stored_bytes ? fs->cfg.quota_bytes : t.stored_bytes;
	sv.f_blocks = total / 4096;
	sv.f_bfree = sv.f_bavail = (total - t.stored_bytes) / 4096;
	sv.f_files = mfs_itab_count(&fs->nodes);
	sv.f_ffree = sv.f_favail = 0;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &sv);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Large reads: the kernel sends up to max_pages per request; read-ahead
	 * size is raised on the bdi by the daemon after mounting. */
	conn->max_readahead = 16u << 20;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* No writeback cache (read-only), no symlink caching: ref symlinks must
	 * be re-read so a moved branch shows after the TTL. */
	conn->want &= ~(unsigned)FUSE_CAP_CACHE_SYMLINKS;
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.statfs = op_statfs,
};

const struct fuse_lowlevel_ops *mfs_fs_ops(void)
{
	return &ops;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int mfs_fs_new(const struct mfs_fs_config *cfg, struct mfs_catalog *cat,
	       struct mfs_ix *ix, struct mfs_fs **out)
{
	struct mfs_fs *fs = calloc(1, sizeof(*fs));
	/* The two roots at fixed inodes 1 and 2 (key_ino never returns < 16,
	 * and their keys are not of any form the namespace builds). */
	struct fs_node root = { .in = { .key = "/", .keylen = 1, .pinned = true },
				.kind = N_ROOT };
	struct fs_node ds = { .in = { .key = "/datasets", .keylen = 9, .pinned = true },
			      .kind = N_DSROOT };

	if (!fs)
		return -ENOMEM;
	fs->cfg = *cfg;
	fs->cat = cat;
	fs->ix = ix;
	fs->mount_time_s = mfs_wall_ms() / 1000;
	fs->uid = getuid();
	fs->gid = getgid();
	if (mfs_itab_init(&fs->nodes, sizeof(struct fs_node)) ||
	    mfs_orgl_new(cat, ix, &fs->orgl) ||
	    !mfs_itab_insert_at(&fs->nodes, &root.in, FUSE_ROOT_ID) ||
	    !mfs_itab_insert_at(&fs->nodes, &ds.in, FUSE_ROOT_ID + 1))
		goto fail;
	*out = fs;
	return 0;
fail:
	mfs_fs_free(fs);
	return -ENOMEM;
}

void mfs_fs_free(struct mfs_fs *fs)
{
	if (!fs)
		return;
	mfs_itab_destroy(&fs->nodes);
	mfs_orgl_free(fs->orgl);
	free(fs);
}

void mfs_fs_set_session(struct mfs_fs *fs, struct fuse_session *se)
{
	fs->se = se;
}

void mfs_fs_set_blobio(struct mfs_fs *fs, struct mfs_blobio *bio)
{
	fs->bio = bio;
}

struct invalid_match {
	const char *content_id;
};

/* Runs under the inode table's lock: no I/O, no FUSE calls. */
static bool node_has_content(const struct mfs_inode *in, void *arg)
{
	const struct invalid_match *m = arg;
	const struct fs_node *nd = (const struct fs_node *)in;
	const struct mfs_repo *r;
	const char *c;
	const struct mfs_entry *e = node_file(nd, &r, &c);

	return e && strcasecmp(mfs_entry_content_id(e), m->content_id) == 0;
}

void mfs_fs_blob_invalid(void *ctx, const char *content_id)
{
	struct mfs_fs *fs = ctx;
	struct invalid_match m = { content_id };
	uint64_t *inos = NULL;
	size_t n;

	if (!fs->se)
		return;
	n = mfs_itab_select(&fs->nodes, node_has_content, &m, &inos);
	/* Outside the lock: notification may wait for the kernel. */
	for (size_t i = 0; i < n; i++) {
		int rc = fuse_lowlevel_notify_inval_inode(fs->se, inos[i], 0, 0);
		mfs_debug("invalidated the pages of inode %llu (%s): %d",
			  (unsigned long long)inos[i], content_id, rc);
	}
	free(inos);
}
