/*
 * fsdir.c - directory listings of the mount (namespace in fs.h): opendir
 * builds the whole listing once (an org's may ask the hub, so it is
 * offloaded, fs/offload.h), readdir hands out slices, releasedir frees.
 *
 * It does not look names up (fs.c).
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/fs_internal.h"

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
	size_t kl = mfs_names_key(key, sizeof(key), 'l', repo->type, repo->id, rev, NULL);
	return mfs_itab_key_ino(key, kl);
}

static int add_org(void *vctx, const char *name)
{
	struct list_ctx *c = vctx;
	char key[512];
	size_t kl = mfs_names_key(key, sizeof(key), 'o', c->dir->kind == N_DSROOT ?
			     MFS_REPO_DATASET : MFS_REPO_MODEL, name, NULL, NULL);
	dirbuf_add(c->db, name, S_IFDIR, mfs_itab_key_ino(key, kl));
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
	dirbuf_add(((struct list_ctx *)vctx)->db, name, type, mfs_itab_key_ino(key, keylen));
	return 0;
}

static void dirbuf_free(struct dirbuf *db)
{
	free(db->p);
	free(db->ends);
	free(db);
}

/* Lists n and answers req (through o when offloaded). */
static void opendir_run(fuse_req_t req, struct mfs_once *o, struct mfs_fs *fs,
			struct fs_node *n, struct fuse_file_info *fi)
{
	struct dirbuf *db = calloc(1, sizeof(*db));

	if (!db) {
		if (mfs_once_claim(o))
			fuse_reply_err(req, ENOMEM);
		mfs_once_end(o);
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
			size_t kl = mfs_names_key(key, sizeof(key), 'c', n->repo.type, n->repo.id,
					     n->commit, e->path);
			dirbuf_add(db, n->tree->nodes[ch].name,
				   e->kind == MFS_KIND_DIR ? S_IFDIR : S_IFREG,
				   mfs_itab_key_ino(key, kl));
		}
		break;
	}
	}
	if (!mfs_once_claim(o) || db->err) {
		if (db->err)
			fuse_reply_err(req, -db->err);
		dirbuf_free(db);
		mfs_once_end(o);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)db;
	/* Commit directories never change: let the kernel cache listings. */
	if (n->kind == N_COMMIT || n->kind == N_TREE ||
	    (n->kind == N_HF && n->hf.kind == MFS_HFC_SNAP))
		fi->cache_readdir = 1;
	fuse_reply_open(req, fi);
	mfs_once_end(o);
}

static void slow_opendir(fuse_req_t req, struct mfs_once *o, void *arg)
{
	struct slow *s = arg;

	opendir_run(req, o, s->fs, &s->node, &s->fi);
	free(s);
}

void mfs_fsd_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs_fs *fs = fuse_req_userdata(req);
	struct fs_node *n = (struct fs_node *)mfs_itab_get(&fs->nodes, ino);

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (n->kind == N_REFLINK || (n->kind == N_TREE && !mfs_tree_is_dir(n->tree, n->tnode)) ||
	    (n->kind == N_HF && !mfs_hfc_is_dir(&n->hf))) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	/* an org's listing may ask the hub; every other comes from memory
	 * or the index */
	if (n->kind == N_ORG)
		mfs_fs_offload(fs, req, n, fi, NULL, slow_opendir, NULL, NULL);
	else
		opendir_run(req, NULL, fs, n, fi);
}

void mfs_fsd_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
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

void mfs_fsd_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	dirbuf_free((struct dirbuf *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

