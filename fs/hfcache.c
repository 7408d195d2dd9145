/*
 * hfcache.c - the huggingface_hub cache layout of the mount (see hfcache.h).
 *
 * What it does: parses and prints repo folder names, answers lookups and
 * listings of refs/, snapshots/ and blobs/ from the catalog (which asks the
 * hub when it must) and the index (which knows what was listed before), and
 * computes the symlink targets huggingface_hub writes.
 * What it does not do: inodes, replies, reads (fs.c), or any write: every
 * name here is read-only.
 */
#include "fs/hfcache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"

#define MODELS_PFX "models--"
#define DATASETS_PFX "datasets--"

/* ---- repo folder names ---------------------------------------------------- */

int mfs_hfc_repo_dir(const struct mfs_repo *repo, char *out, size_t cap)
{
	const char *slash = strchr(repo->id, '/');
	int n;

	if (!slash)
		return -EINVAL;
	n = snprintf(out, cap, "%s%.*s--%s",
		     repo->type == MFS_REPO_DATASET ? DATASETS_PFX : MODELS_PFX,
		     (int)(slash - repo->id), repo->id, slash + 1);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int mfs_hfc_parse_repo_dir(const char *name, struct mfs_repo *out)
{
	const char *rest, *sep;
	int n;

	if (strncmp(name, MODELS_PFX, strlen(MODELS_PFX)) == 0) {
		out->type = MFS_REPO_MODEL;
		rest = name + strlen(MODELS_PFX);
	} else if (strncmp(name, DATASETS_PFX, strlen(DATASETS_PFX)) == 0) {
		out->type = MFS_REPO_DATASET;
		rest = name + strlen(DATASETS_PFX);
	} else {
		return -ENOENT;
	}
	/* Repo ids never contain "--" (huggingface_hub forbids it), so the
	 * first one separates org from name and there is no other. */
	sep = strstr(rest, "--");
	if (!sep || sep == rest)
		return -ENOENT;
	n = snprintf(out->id, sizeof(out->id), "%.*s/%s", (int)(sep - rest), rest, sep + 2);
	if (n < 0 || (size_t)n >= sizeof(out->id) || !mfs_repo_id_valid(out->id))
		return -ENOENT;
	return 0;
}

#define LOCKS_DIR ".locks"

bool mfs_hfc_is_root_entry(const char *name)
{
	struct mfs_repo r;

	return strcmp(name, LOCKS_DIR) == 0 || mfs_hfc_parse_repo_dir(name, &r) == 0;
}

/* ---- identities and attributes -------------------------------------------- */

size_t mfs_hfc_key(const struct mfs_hfc_node *n, char *buf, size_t cap)
{
	const char *a = NULL, *b = NULL;
	/* kind letters 'A'.. never clash with fs.c's lowercase ones */
	char sub = (char)('A' + n->kind);

	switch (n->kind) {
	case MFS_HFC_REFS:
	case MFS_HFC_REF:
		a = n->ref;
		break;
	case MFS_HFC_SNAP:
	case MFS_HFC_LINK:
		/* a directory and a link of one commit differ by path alone */
		sub = 'A';
		a = n->commit;
		b = n->tnode ? n->tree->nodes[n->tnode].e->path : "";
		break;
	case MFS_HFC_BLOB:
		a = mfs_entry_content_id(n->tree->nodes[n->tnode].e);
		break;
	default:
		break;
	}
	return mfs_names_key(buf, cap, sub, n->repo.type, n->repo.id, a, b);
}

bool mfs_hfc_is_dir(const struct mfs_hfc_node *n)
{
	return n->kind != MFS_HFC_REF && n->kind != MFS_HFC_LINK && n->kind != MFS_HFC_BLOB;
}

const struct mfs_entry *mfs_hfc_file_entry(const struct mfs_hfc_node *n)
{
	return n->kind == MFS_HFC_BLOB ? n->tree->nodes[n->tnode].e : NULL;
}

/* "../" once per level from snapshots/<commit>/<path>'s directory up to
 * the repo folder, then blobs/<etag>: what huggingface_hub's
 * _create_symlink writes (a relative link, so the cache can move). */
static int link_target(const struct mfs_entry *e, char *out, size_t cap)
{
	size_t o = 0, up = 2;

	for (const char *p = e->path; *p; p++)
		up += *p == '/';
	for (size_t i = 0; i < up; i++) {
		if (o + 3 >= cap)
			return -ENAMETOOLONG;
		memcpy(out + o, "../", 3);
		o += 3;
	}
	int n = snprintf(out + o, cap - o, "blobs/%s", mfs_entry_content_id(e));
	return n < 0 || (size_t)n >= cap - o ? -ENAMETOOLONG : 0;
}

int mfs_hfc_readlink(const struct mfs_hfc_node *n, char *out, size_t cap)
{
	if (n->kind != MFS_HFC_LINK)
		return -EINVAL;
	return link_target(n->tree->nodes[n->tnode].e, out, cap);
}

void mfs_hfc_stat(const struct mfs_hfc_node *n, struct stat *st)
{
	char target[MFS_PATH_MAX + 128];
	uint64_t size = 4096;
	mode_t mode = S_IFDIR | 0555;

	switch (n->kind) {
	case MFS_HFC_REF:
		mode = S_IFREG | 0444;
		size = 40;
		break;
	case MFS_HFC_BLOB:
		mode = S_IFREG | 0444;
		size = n->tree->nodes[n->tnode].e->size;
		break;
	case MFS_HFC_LINK:
		mode = S_IFLNK | 0777;
		size = mfs_hfc_readlink(n, target, sizeof(target)) == 0 ? strlen(target) : 0;
		break;
	default:
		break;
	}
	st->st_mode = mode;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_size = (off_t)size;
	st->st_blocks = S_ISREG(mode) ? (blkcnt_t)((size + 511) / 512) : 0;
}

double mfs_hfc_ttl(const struct mfs_hfc_node *n, double ref_ttl, double forever)
{
	switch (n->kind) {
	case MFS_HFC_REF:
		return ref_ttl;
	case MFS_HFC_SNAP:
	case MFS_HFC_LINK:
	case MFS_HFC_BLOB:
		return forever;
	default:
		return 1.0;
	}
}

int mfs_hfc_ref_commit(struct mfs_catalog *cat, const struct mfs_hfc_node *n, char commit[41])
{
	int64_t date;

	if (n->kind != MFS_HFC_REF)
		return -EINVAL;
	return mfs_cat_resolve(cat, &n->repo, n->ref, commit, &date);
}

/* ---- lookup ----------------------------------------------------------------- */

static bool lower_hex(const char *s, size_t want)
{
	if (strlen(s) != want)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

struct ref_scan {
	const char *prefix;   /* "refs/pr/" */
	size_t plen;
	bool found;
};

static int ref_under(void *vctx, const char *name)
{
	struct ref_scan *s = vctx;

	if (strncmp(name, s->prefix, s->plen) == 0) {
		s->found = true;
		return 1;
	}
	return 0;
}

/* Directories huggingface_hub makes under refs/ for revisions with '/'
 * (refs/pr/1 -> refs/refs/pr/1), whether or not any is known yet. */
static bool well_known_ref_dir(const char *full)
{
	return strcmp(full, "refs") == 0 || strcmp(full, "refs/pr") == 0 ||
	       strcmp(full, "refs/convert") == 0;
}

static int lookup_ref(struct mfs_catalog *cat, struct mfs_ix *ix, const struct mfs_hfc_node *dir,
		      const char *name, struct mfs_hfc_node *out)
{
	char full[MFS_REV_MAX + 1], commit[41];
	int64_t date;
	int n, rc;

	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '%')
			return -ENOENT;
	n = snprintf(full, sizeof(full), "%s%s", dir->ref, name);
	if (n < 0 || (size_t)n + 1 >= MFS_REV_MAX || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return -ENOENT;
	*out = *dir;
	struct ref_scan s = { full, (size_t)n + 1, false };
	full[n] = '/';
	full[n + 1] = '\0';
	(void)mfs_ix_list_refs(ix, &dir->repo, ref_under, &s);
	full[n] = '\0';
	if (s.found || well_known_ref_dir(full)) {
		out->kind = MFS_HFC_REFS;
		memcpy(out->ref, full, (size_t)n); /* n + 1 < MFS_REV_MAX: checked above */
		out->ref[n] = '/';
		out->ref[n + 1] = '\0';
		return 0;
	}
	/* huggingface_hub never writes a ref named like a commit */
	if (mfs_names_is_commit(full))
		return -ENOENT;
	rc = mfs_cat_resolve(cat, &dir->repo, full, commit, &date);
	if (rc)
		return rc;
	out->kind = MFS_HFC_REF;
	memcpy(out->ref, full, (size_t)n + 1);
	return 0;
}

static int lookup_snapshot(struct mfs_catalog *cat, const struct mfs_hfc_node *dir,
			   const char *name, struct mfs_hfc_node *out)
{
	char commit[41];
	int64_t date;
	int rc;

	if (!lower_hex(name, 40))
		return -ENOENT;
	rc = mfs_cat_resolve(cat, &dir->repo, name, commit, &date);
	if (rc)
		return rc;
	*out = *dir;
	out->kind = MFS_HFC_SNAP;
	memcpy(out->commit, commit, sizeof(out->commit));
	out->tnode = 0;
	return mfs_cat_tree(cat, &dir->repo, commit, &out->tree);
}

struct blob_find {
	struct mfs_catalog *cat;
	const struct mfs_repo *repo;
	const char *etag;
	struct mfs_hfc_node *out;
	int rc;
};

static int blob_in_commit(void *vctx, const char *commit)
{
	struct blob_find *f = vctx;
	const struct mfs_tree *t;

	f->rc = mfs_cat_tree(f->cat, f->repo, commit, &t);
	if (f->rc)
		return 0; /* try the next commit that has it */
	for (size_t i = 0; i < t->n_entries; i++) {
		if (t->entries[i].kind != MFS_KIND_FILE ||
		    strcmp(mfs_entry_content_id(&t->entries[i]), f->etag))
			continue;
		f->out->tree = t;
		f->out->tnode = (uint32_t)(i + 1);
		snprintf(f->out->commit, sizeof(f->out->commit), "%s", commit);
		f->rc = 0;
		return 1;
	}
	f->rc = -ENOENT;
	return 0;
}

static int lookup_blob(struct mfs_catalog *cat, struct mfs_ix *ix, const struct mfs_hfc_node *dir,
		       const char *name, struct mfs_hfc_node *out)
{
	struct blob_find f = { cat, &dir->repo, name, out, -ENOENT };
	int rc;

	if (!lower_hex(name, 40) && !lower_hex(name, 64))
		return -ENOENT;
	*out = *dir;
	out->kind = MFS_HFC_BLOB;
	rc = mfs_ix_blob_commits(ix, &dir->repo, name, blob_in_commit, &f);
	if (rc < 0)
		return rc;
	return rc == 1 ? 0 : f.rc;
}

static int lookup_repo_dir(struct mfs_catalog *cat, struct mfs_ix *ix, const char *name,
			   struct mfs_hfc_node *out)
{
	char commit[41], gated[16];
	int64_t when, date;
	bool priv;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = mfs_hfc_parse_repo_dir(name, &out->repo);
	if (rc)
		return rc;
	out->kind = MFS_HFC_REPO;
	/* A repo the index knows exists (offline too); any other must be one
	 * the hub can resolve. */
	if (mfs_ix_repo_get(ix, &out->repo, &priv, gated, &when) == 0)
		return 0;
	return mfs_cat_resolve(cat, &out->repo, "", commit, &date);
}

bool mfs_hfc_lookup_may_fetch(const struct mfs_hfc_node *dir, const char *name)
{
	if (!dir)
		return strcmp(name, LOCKS_DIR) != 0; /* a repo folder: resolved */
	/* refs, snapshots and blobs resolve or list; the rest is in hand */
	return dir->kind == MFS_HFC_REFS || dir->kind == MFS_HFC_SNAPS ||
	       dir->kind == MFS_HFC_BLOBS;
}

int mfs_hfc_lookup(struct mfs_catalog *cat, struct mfs_ix *ix, const struct mfs_hfc_node *dir,
		   const char *name, struct mfs_hfc_node *out)
{
	if (!dir && strcmp(name, LOCKS_DIR) == 0) {
		memset(out, 0, sizeof(*out));
		out->kind = MFS_HFC_LOCKS;
		return 0;
	}
	if (!dir)
		return lookup_repo_dir(cat, ix, name, out);
	switch (dir->kind) {
	case MFS_HFC_LOCKS:
		*out = *dir;
		out->kind = MFS_HFC_LOCKDIR;
		return mfs_hfc_parse_repo_dir(name, &out->repo);
	case MFS_HFC_REPO:
		*out = *dir;
		if (strcmp(name, "refs") == 0)
			out->kind = MFS_HFC_REFS;
		else if (strcmp(name, "snapshots") == 0)
			out->kind = MFS_HFC_SNAPS;
		else if (strcmp(name, "blobs") == 0)
			out->kind = MFS_HFC_BLOBS;
		else
			return -ENOENT;
		out->ref[0] = '\0';
		return 0;
	case MFS_HFC_REFS:
		return lookup_ref(cat, ix, dir, name, out);
	case MFS_HFC_SNAPS:
		return lookup_snapshot(cat, dir, name, out);
	case MFS_HFC_SNAP: {
		uint32_t child;
		int rc = mfs_tree_lookup(dir->tree, dir->tnode, name, strlen(name), &child);
		if (rc)
			return rc;
		*out = *dir;
		out->tnode = child;
		out->kind = mfs_tree_is_dir(dir->tree, child) ? MFS_HFC_SNAP : MFS_HFC_LINK;
		return 0;
	}
	case MFS_HFC_BLOBS:
		return lookup_blob(cat, ix, dir, name, out);
	default:
		return mfs_hfc_is_dir(dir) ? -ENOENT : -ENOTDIR;
	}
}

/* ---- listings ----------------------------------------------------------------- */

struct list_ctx {
	struct mfs_ix *ix;
	mfs_hfc_add_fn cb;
	void *ctx;
	struct mfs_hfc_node child;   /* template of the entries being listed */
	char last_dir[MFS_REV_MAX];  /* REFS: last subdirectory emitted */
	enum mfs_repo_type type;
	const char *org;
};

static int emit(struct list_ctx *c, const char *name, mode_t type)
{
	char key[MFS_PATH_MAX + 512];
	size_t kl = mfs_hfc_key(&c->child, key, sizeof(key));

	return kl ? c->cb(c->ctx, name, type, key, kl) : 0;
}

static int add_repo(void *vctx, const char *name)
{
	struct list_ctx *c = vctx;
	char dir[MFS_REPO_ID_MAX + 16];

	c->child.kind = MFS_HFC_REPO;
	c->child.repo.type = c->type;
	if (snprintf(c->child.repo.id, sizeof(c->child.repo.id), "%s/%s", c->org, name) >=
	    (int)sizeof(c->child.repo.id) || mfs_hfc_repo_dir(&c->child.repo, dir, sizeof(dir)))
		return 0;
	return emit(c, dir, S_IFDIR);
}

static int add_org(void *vctx, const char *org)
{
	struct list_ctx *c = vctx;

	c->org = org;
	/* one org failing to list must not hide the others */
	(void)mfs_ix_list_repos(c->ix, c->type, org, add_repo, c);
	return 0;
}

static int add_ref(void *vctx, const char *name)
{
	struct list_ctx *c = vctx;
	size_t plen = strlen(c->child.ref);
	const char *rest, *slash;

	if (strncmp(name, c->child.ref, plen) || mfs_names_is_commit(name))
		return 0;
	rest = name + plen;
	slash = strchr(rest, '/');
	struct mfs_hfc_node save = c->child;
	int rc = 0;
	if (!slash) {
		c->child.kind = MFS_HFC_REF;
		snprintf(c->child.ref, sizeof(c->child.ref), "%s", name);
		rc = emit(c, rest, S_IFREG);
	} else if ((size_t)(slash - rest) < sizeof(c->last_dir) &&
		   (strncmp(c->last_dir, rest, (size_t)(slash - rest)) ||
		    c->last_dir[slash - rest] != '\0')) {
		/* names come sorted, so one subdirectory's refs are adjacent */
		snprintf(c->last_dir, sizeof(c->last_dir), "%.*s", (int)(slash - rest), rest);
		snprintf(c->child.ref, sizeof(c->child.ref), "%.*s", (int)(slash - name + 1), name);
		rc = emit(c, c->last_dir, S_IFDIR);
	}
	c->child = save;
	return rc;
}

static int add_commit(void *vctx, const char *commit)
{
	struct list_ctx *c = vctx;

	snprintf(c->child.commit, sizeof(c->child.commit), "%s", commit);
	c->child.kind = MFS_HFC_SNAP;
	c->child.tnode = 0; /* the commit's root: its key needs no tree */
	return emit(c, commit, S_IFDIR);
}

static int add_blob(void *vctx, const char *etag)
{
	struct list_ctx *c = vctx;
	char key[512];
	/* the key of a BLOB is its etag (what mfs_hfc_key gives once the
	 * lookup found the tree entry) */
	size_t kl = mfs_names_key(key, sizeof(key), (char)('A' + MFS_HFC_BLOB), c->child.repo.type,
				  c->child.repo.id, etag, NULL);

	return kl ? c->cb(c->ctx, etag, S_IFREG, key, kl) : 0;
}

int mfs_hfc_list(struct mfs_catalog *cat, struct mfs_ix *ix, const struct mfs_hfc_node *dir,
		 mfs_hfc_add_fn cb, void *ctx)
{
	struct list_ctx c = { .ix = ix, .cb = cb, .ctx = ctx };
	int rc = 0;

	(void)cat;
	if (!dir) {
		for (int t = MFS_REPO_MODEL; t <= MFS_REPO_DATASET && !rc; t++) {
			c.type = (enum mfs_repo_type)t;
			rc = mfs_ix_list_orgs(ix, c.type, add_org, &c);
		}
		return rc < 0 ? rc : 0;
	}
	c.child = *dir;
	switch (dir->kind) {
	case MFS_HFC_REPO: {
		static const struct { const char *name; enum mfs_hfc_kind k; } subs[] = {
			{ "blobs", MFS_HFC_BLOBS }, { "refs", MFS_HFC_REFS },
			{ "snapshots", MFS_HFC_SNAPS },
		};
		c.child.ref[0] = '\0';
		for (size_t i = 0; i < 3 && !rc; i++) {
			c.child.kind = subs[i].k;
			rc = emit(&c, subs[i].name, S_IFDIR);
		}
		break;
	}
	case MFS_HFC_REFS:
		rc = mfs_ix_list_refs(ix, &dir->repo, add_ref, &c);
		break;
	case MFS_HFC_SNAPS:
		rc = mfs_ix_list_commits(ix, &dir->repo, add_commit, &c);
		break;
	case MFS_HFC_BLOBS:
		rc = mfs_ix_list_blob_ids(ix, &dir->repo, add_blob, &c);
		break;
	case MFS_HFC_LOCKS:
	case MFS_HFC_LOCKDIR:
		break; /* nothing is ever locked here: nothing is ever written */
	case MFS_HFC_SNAP: {
		const struct mfs_tree_node *d = &dir->tree->nodes[dir->tnode];
		for (uint32_t i = 0; i < d->child_count && !rc; i++) {
			uint32_t ch = dir->tree->children[d->child_start + i];
			bool isdir = mfs_tree_is_dir(dir->tree, ch);
			c.child.tnode = ch;
			c.child.kind = isdir ? MFS_HFC_SNAP : MFS_HFC_LINK;
			rc = emit(&c, dir->tree->nodes[ch].name, isdir ? S_IFDIR : S_IFLNK);
		}
		break;
	}
	default:
		return -ENOTDIR;
	}
	return rc < 0 ? rc : 0;
}
