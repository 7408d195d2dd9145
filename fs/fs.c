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
 * is sent from there (libfuse allows replies from any thread). Nor does
 * anything else: a lookup, readlink, opendir or open that may ask the hub
 * (a name the index cannot settle, an org listing, a ref past its TTL, an
 * incomplete file's reachability probe) runs on a thread of its own
 * (fs/offload.h) and, like a read, answers FUSE_INTERRUPT with EINTR at
 * once (fs/once.h), so a SIGKILLed caller is reaped while the fetch it
 * started goes on for the next one. What memory or the index answers
 * stays on the worker.
 *
 * Directory listings are in fsdir.c; what both files share in
 * fs_internal.h.
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
#include "fs/fs_internal.h"
#include "fs/readreply.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/size.h"

#define IMMUTABLE_TTL (365.0 * 24 * 3600)
/* Offloaded requests at once (fs/offload.h); libfuse's own bound is 16. */
#define SLOW_MAX 64

/* ---- node table ------------------------------------------------------------- */

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

/* ---- requests that may wait on the network ------------------------------------ */

void mfs_fs_offload(struct mfs_fs *fs, fuse_req_t req, const struct fs_node *n,
		    struct fuse_file_info *fi, const char *name, mfs_offload_fn fn,
		    struct open_file *of, const struct mfs_entry *e)
{
	size_t nl = name ? strlen(name) + 1 : 0;
	struct slow *s = malloc(sizeof(*s) + nl);

	if (!s) {
		if (of && of->blob)
			mfs_blob_close(of->blob);
		free(of);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	s->fs = fs;
	s->node = *n;
	if (fi)
		s->fi = *fi;
	s->of = of;
	s->e = e;
	if (nl)
		memcpy(s->name, name, nl);
	mfs_offload(fs->slow, req, fn, s);
}

/* ---- lookup (continued) ------------------------------------------------------------- */

/* true when looking up `name` in p may ask the hub (the index does not
 * settle it): such lookups are offloaded. */
static bool lookup_may_fetch(const struct fs_node *p, const char *name)
{
	switch (p->kind) {
	case N_ROOT:
		if (strcmp(name, DS_DIR) == 0)
			return false;
		/* an org (the hub says whether it exists), or an hf-cache folder */
		return !mfs_hfc_is_root_entry(name) || mfs_hfc_lookup_may_fetch(NULL, name);
	case N_DSROOT:
	case N_ORG:
		return true;
	case N_HF:
		return mfs_hfc_lookup_may_fetch(&p->hf, name);
	default:
		return false; /* in a tree held in memory */
	}
}

static int lookup_child(struct mfs_fs *fs, struct fs_node *p, const char *name,
			struct fs_node **n)
{
	switch (p->kind) {
	case N_ROOT:
		if (strcmp(name, DS_DIR) == 0) {
			*n = node_by_ino(fs, FUSE_ROOT_ID + 1);
			if (!*n)
				return -ENOENT;
			mfs_itab_ref(&fs->nodes, &(*n)->in);
			return 0;
		}
		if (mfs_hfc_is_root_entry(name))
			return lookup_hf(fs, NULL, name, n);
		return lookup_org(fs, MFS_REPO_MODEL, name, n);
	case N_DSROOT:
		return lookup_org(fs, MFS_REPO_DATASET, name, n);
	case N_ORG:
		return lookup_repo(fs, p, name, n);
	case N_COMMIT:
	case N_TREE:
		return lookup_in_tree(fs, p, name, n);
	case N_HF:
		return lookup_hf(fs, p, name, n);
	default:
		return -ENOTDIR;
	}
}

static void lookup_answer(fuse_req_t req, struct mfs_once *o, struct mfs_fs *fs, int rc,
			  struct fs_node *n)
{
	if (!mfs_once_claim(o)) {
		/* answered EINTR: the kernel never saw this entry */
		if (rc == 0 && mfs_itab_forget(&fs->nodes, n->in.ino, 1))
			mfs_itab_after_forgets(&fs->nodes);
	} else if (rc) {
		reply_lookup_error(req, fs, rc);
	} else {
		reply_node(req, fs, n);
	}
	mfs_once_end(o);
}

static void slow_lookup(fuse_req_t req, struct mfs_once *o, void *arg)
{
	struct slow *s = arg;
	struct fs_node *n = NULL;
	/* nobody waits for it any more: skip it */
	int rc = mfs_once_interrupted(o) ? -EINTR : lookup_child(s->fs, &s->node, s->name, &n);

	lookup_answer(req, o, s->fs, rc, n);
	free(s);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mfs_fs *fs = fuse_req_userdata(req);
	struct fs_node *p = node_by_ino(fs, parent), *n = NULL;

	if (!p) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (lookup_may_fetch(p, name)) {
		mfs_fs_offload(fs, req, p, NULL, name, slow_lookup, NULL, NULL);
		return;
	}
	int rc = lookup_child(fs, p, name, &n);

	lookup_answer(req, NULL, fs, rc, n);
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

/* A ref symlink names the commit its ref resolves to now. */
static void slow_readlink(fuse_req_t req, struct mfs_once *o, void *arg)
{
	struct slow *s = arg;
	const struct fs_node *n = &s->node;
	char commit[41], target[MFS_PATH_MAX + 128];
	int64_t date;
	int rc = mfs_once_interrupted(o) ? -EINTR :
		 mfs_cat_resolve(s->fs->cat, &n->repo, n->rev, commit, &date);

	if (mfs_once_claim(o)) {
		if (rc) {
			fuse_reply_err(req, rc == -ENOENT ? ENOENT : rc == -EACCES ? EACCES : EIO);
		} else {
			snprintf(target, sizeof(target), "%s@%s", n->name, commit);
			fuse_reply_readlink(req, target);
		}
	}
	mfs_once_end(o);
	free(s);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct mfs_fs *fs = fuse_req_userdata(req);
	struct fs_node *n = node_by_ino(fs, ino);
	char target[MFS_PATH_MAX + 128];
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
	mfs_fs_offload(fs, req, n, NULL, NULL, slow_readlink, NULL, NULL);
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

/* rc: 0, or the open failed (of->blob closed already, if any). */
static void open_answer(fuse_req_t req, struct mfs_once *o, int rc, struct open_file *of,
			const struct mfs_entry *e, struct fuse_file_info *fi)
{
	if (!mfs_once_claim(o)) {
		if (rc == 0 && of->blob)
			mfs_blob_close(of->blob); /* answered EINTR: no release follows */
		free(of);
	} else if (rc) {
		free(of);
		fuse_reply_err(req, rc == -EACCES || (rc == -ENOENT && !e) ? -rc : EIO);
	} else {
		fi->fh = (uint64_t)(uintptr_t)of;
		fi->keep_cache = e != NULL;   /* commit content never changes */
		fi->noflush = 1;
		fuse_reply_open(req, fi);
	}
	mfs_once_end(o);
}

static void slow_open(fuse_req_t req, struct mfs_once *o, void *arg)
{
	struct slow *s = arg;
	struct open_file *of = s->of;
	int rc = -EINTR;

	if (mfs_once_interrupted(o)) {
		if (of->blob)
			mfs_blob_close(of->blob);
	} else if (!s->e) {
		/* an HF refs/<name> file: the commit it names now; direct I/O
		 * so a moved branch shows at the next open after the ref TTL */
		rc = mfs_hfc_ref_commit(s->fs->cat, &s->node.hf, of->ref);
		s->fi.direct_io = 1;
	} else if ((rc = mfs_blob_check_reachable(of->blob)) != 0) {
		mfs_blob_close(of->blob);
	}
	open_answer(req, o, rc, of, s->e, &s->fi);
	free(s);
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
		/* an HF refs/<name> file: resolved on the offload thread */
		mfs_fs_offload(fs, req, n, fi, NULL, slow_open, of, NULL);
		return;
	}
	struct mfs_blob_desc d = {
		.repo = repo, .commit = commit, .path = e->path,
		.content_id = mfs_entry_content_id(e), .size = e->size,
		.lfs = e->sha256[0] != '\0', .xet_hash = e->xet_hash,
	};
	rc = mfs_blob_open(fs->bio, &d, &of->blob);
	/* an incomplete file asks a source whether it can be read: offloaded */
	if (rc == 0 && e->size > 0 && !mfs_blob_complete(of->blob))
		mfs_fs_offload(fs, req, n, fi, NULL, slow_open, of, e);
	else
		open_answer(req, NULL, rc, of, e, fi);
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
		/* Answered from a copy: once the reply is written the reader
		 * may close and a RELEASE on another worker free `of` while
		 * this one is still returning from writev (AddressSanitizer
		 * reads the iovec after the syscall and aborted the daemon
		 * on exactly that, 2 runs in 4 under load). */
		char ref[40];
		size_t len = (size_t)off >= sizeof(ref) ? 0 : sizeof(ref) - (size_t)off;

		memcpy(ref, of->ref, sizeof(ref));
		fuse_reply_buf(req, ref + (len ? off : 0), len < size ? len : size);
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
	.opendir = mfs_fsd_opendir,
	.readdir = mfs_fsd_readdir,
	.releasedir = mfs_fsd_releasedir,
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
	    mfs_orgl_new(cat, ix, &fs->orgl) || mfs_offload_new(SLOW_MAX, &fs->slow) ||
	    !mfs_itab_insert_at(&fs->nodes, &root.in, FUSE_ROOT_ID) ||
	    !mfs_itab_insert_at(&fs->nodes, &ds.in, FUSE_ROOT_ID + 1))
		goto fail;
	*out = fs;
	return 0;
fail:
	mfs_fs_free(fs);
	return -ENOMEM;
}

void mfs_fs_quiesce(struct mfs_fs *fs)
{
	mfs_offload_free(fs->slow);
	fs->slow = NULL;
}

void mfs_fs_free(struct mfs_fs *fs)
{
	if (!fs)
		return;
	mfs_fs_quiesce(fs);
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
