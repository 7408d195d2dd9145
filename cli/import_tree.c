/*
 * import_tree.c - snapshots, refs and --local-dir folders into the index
 * (see import_tree.h).
 *
 * A snapshot folder holds symlinks to ../../blobs/<etag>; the etag is the
 * content id modelfs stores blobs under, so a tree entry is rebuilt from
 * it: sha256 = etag for an LFS file (and the git oid is the sha1 of its LFS
 * pointer, computed), oid = etag otherwise. A snapshot may hold only some
 * files of its commit (hf_hub_download of single files), so when the hub
 * can be reached its full listing is recorded instead; offline, the
 * snapshot's files are what the commit is known to have.
 */
#include "cli/import_tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/names.h"
#include "util/hash.h"

struct evec {
	struct mfs_entry *v;
	size_t n, cap;
};

bool mfs_imp_is_etag(const char *s)
{
	size_t n = strlen(s);

	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return n == 40 || n == 64;
}

static bool has_path(const struct evec *ev, const char *path)
{
	for (size_t i = 0; i < ev->n; i++)
		if (strcmp(ev->v[i].path, path) == 0)
			return true;
	return false;
}

/* Appends a file (etag set) or directory (etag NULL) entry. */
static int add_entry(struct evec *ev, const char *path, const char *etag, uint64_t size)
{
	struct mfs_entry *e;

	if (!mfs_path_valid(path, strlen(path)) || has_path(ev, path))
		return -EINVAL;
	if (ev->n == ev->cap) {
		size_t c = ev->cap ? ev->cap * 2 : 64;
		struct mfs_entry *nv = realloc(ev->v, c * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		ev->v = nv;
		ev->cap = c;
	}
	e = &ev->v[ev->n];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	if (!e->path)
		return -ENOMEM;
	ev->n++;
	if (!etag) {
		e->kind = MFS_KIND_DIR;
		return 0;
	}
	e->kind = MFS_KIND_FILE;
	e->size = size;
	if (strlen(etag) == 40) {
		memcpy(e->oid, etag, 41);
		return 0;
	}
	/* LFS: the git oid is the sha1 of the pointer file (docs/architecture.md, "The hub's HTTP API") */
	char ptr[256], blob[300];
	uint8_t sha[20];
	int pl = snprintf(ptr, sizeof(ptr), "version https://git-lfs.github.com/spec/v1\n"
			  "oid sha256:%s\nsize %" PRIu64 "\n", etag, size);
	int bl = snprintf(blob, sizeof(blob), "blob %d", pl);
	memcpy(blob + bl + 1, ptr, (size_t)pl);
	if (mfs_sha1(blob, (size_t)bl + 1 + (size_t)pl, sha) < 0)
		return -EIO;
	mfs_hex(sha, 20, e->oid);
	memcpy(e->sha256, etag, 65);
	return 0;
}

/* Adds every missing parent directory of the entries. */
static int add_parents(struct evec *ev)
{
	for (size_t i = 0, n = ev->n; i < n; i++) {
		char p[MFS_PATH_MAX + 1];
		snprintf(p, sizeof(p), "%s", ev->v[i].path);
		for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
			*s = '\0';
			if (!has_path(ev, p) && add_entry(ev, p, NULL, 0) == -ENOMEM)
				return -ENOMEM;
			*s = '/';
		}
	}
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct mfs_entry *)a)->path, ((const struct mfs_entry *)b)->path);
}

static void evec_free(struct evec *ev)
{
	mfs_entries_free(ev->v, ev->n);
	*ev = (struct evec){ 0 };
}

static size_t count_files(const struct evec *ev)
{
	size_t n = 0;

	for (size_t i = 0; i < ev->n; i++)
		n += ev->v[i].kind == MFS_KIND_FILE;
	return n;
}

/* Records entries as commit's tree unless the index already has it; the
 * hub's listing wins when it answers. */
static void record_tree(struct mfs_imp *im, const struct mfs_repo *repo, const char *commit,
			struct evec *ev, const char *what)
{
	const struct mfs_tree *t;
	int64_t date;
	bool listed = false;
	int rc;

	if (mfs_ix_commit_get(im->c->ix, repo, commit, &date, &listed) == 0 && listed) {
		fprintf(stderr, "  %s %s: tree already known\n", what, commit);
		im->snapshots++;
		return;
	}
	if (im->dry_run) {
		fprintf(stderr, "  %s %s: would record its tree (%zu files)\n", what, commit,
			count_files(ev));
		im->snapshots++;
		return;
	}
	if (mfs_cat_hub_usable(im->c->cat) &&
	    mfs_cat_tree(im->c->cat, repo, commit, &t) == 0) {
		fprintf(stderr, "  %s %s: recorded the hub's listing (%zu entries)\n", what, commit,
			t->n_entries);
		im->snapshots++;
		return;
	}
	qsort(ev->v, ev->n, sizeof(*ev->v), cmp_entry);
	rc = mfs_ix_commit_put(im->c->ix, repo, commit, 0);
	if (rc == 0)
		rc = mfs_ix_tree_put(im->c->ix, repo, commit, ev->v, ev->n);
	if (rc) {
		fprintf(stderr, "  %s %s: could not record its tree: %s\n", what, commit,
			strerror(-rc));
		im->failed++;
		return;
	}
	/* the folder may hold only some of the commit's files */
	(void)mfs_cat_mark_partial(im->c->cat, repo, commit);
	fprintf(stderr, "  %s %s: recorded from the folder (%zu files; hub not reachable: "
		"replaced by the hub's listing when a mount can reach it)\n", what, commit,
		count_files(ev));
	im->snapshots++;
}

/* ---- walking a folder ---------------------------------------------------------- */

/* Called for each entry below the walk's base: `full` is its path, `sub`
 * its path relative to the base, st its lstat. Returning true for a
 * directory descends into it. */
typedef bool (*walk_fn)(struct mfs_imp *im, void *ctx, const char *full, const char *sub,
			const struct stat *st);

static void walk(struct mfs_imp *im, const char *base, const char *rel, int depth, walk_fn fn,
		 void *ctx)
{
	char dir[PATH_MAX];
	struct dirent *d;
	DIR *dp;

	if (snprintf(dir, sizeof(dir), "%s%s%s", base, rel[0] ? "/" : "", rel) >=
	    (int)sizeof(dir) || depth > MFS_DEPTH_MAX || !(dp = opendir(dir)))
		return;
	while ((d = readdir(dp)) != NULL) {
		char full[PATH_MAX], sub[MFS_PATH_MAX + 1];
		struct stat st;
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		if (snprintf(full, sizeof(full), "%s/%s", dir, d->d_name) >= (int)sizeof(full) ||
		    snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", d->d_name) >=
		    (int)sizeof(sub) || lstat(full, &st))
			continue;
		if (fn(im, ctx, full, sub, &st) && S_ISDIR(st.st_mode))
			walk(im, base, sub, depth + 1, fn, ctx);
	}
	closedir(dp);
}

/* ---- snapshots -------------------------------------------------------------- */

/* A snapshot entry: a directory, or a link to ../../blobs/<etag>. */
static bool snapshot_entry(struct mfs_imp *im, void *ctx, const char *full, const char *sub,
			   const struct stat *lst)
{
	struct evec *ev = ctx;
	char target[PATH_MAX];
	const char *slash = NULL;
	struct stat st;
	ssize_t tl;

	if (S_ISDIR(lst->st_mode))
		return add_entry(ev, sub, NULL, 0) == 0;
	tl = S_ISLNK(lst->st_mode) ? readlink(full, target, sizeof(target) - 1) : -1;
	if (tl > 0) {
		target[tl] = '\0';
		slash = strrchr(target, '/');
	}
	if (!slash || !mfs_imp_is_etag(slash + 1) || stat(full, &st) || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "  snapshot file %s: not a link to a blob, skipped\n", sub);
		im->skipped++;
		return false;
	}
	(void)add_entry(ev, sub, slash + 1, (uint64_t)st.st_size);
	return false;
}

void mfs_imp_snapshots(struct mfs_imp *im, const char *repo_dir, const struct mfs_repo *repo)
{
	char path[PATH_MAX];
	struct dirent **ents = NULL;
	int n;

	snprintf(path, sizeof(path), "%s/snapshots", repo_dir);
	n = scandir(path, &ents, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		const char *c = ents[i]->d_name;
		char base[PATH_MAX];
		if (strlen(c) == 40 && mfs_imp_is_etag(c) &&
		    snprintf(base, sizeof(base), "%s/%s", path, c) < (int)sizeof(base)) {
			struct evec ev = { 0 };
			walk(im, base, "", 0, snapshot_entry, &ev);
			record_tree(im, repo, c, &ev, "snapshot");
			evec_free(&ev);
		}
		free(ents[i]);
	}
	free(ents);
}

/* ---- refs ------------------------------------------------------------------------ */

static void record_ref(struct mfs_imp *im, const struct mfs_repo *repo, const char *rev,
		       const char *file, int64_t mtime_ms)
{
	char buf[128], known[41];
	int64_t at;
	ssize_t n;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, " \r\n\t")] = '\0';
	if (strlen(buf) != 40 || !mfs_imp_is_etag(buf)) {
		fprintf(stderr, "  ref %s: not a commit, skipped\n", rev);
		im->skipped++;
		return;
	}
	fprintf(stderr, "  ref %s -> %s%s\n", rev, buf, im->dry_run ? " (would record)" : "");
	im->refs++;
	if (im->dry_run)
		return;
	/* written when the ref was: a mount asks the hub again after its TTL */
	(void)mfs_ix_ref_put(im->c->ix, repo, rev, buf, mtime_ms);
	/* "main" is the default branch of nearly every repo: let <org>/<name>
	 * resolve offline too, unless the cache already knows better */
	if (strcmp(rev, "main") == 0 && mfs_ix_ref_get(im->c->ix, repo, "", known, &at) == -ENOENT)
		(void)mfs_ix_ref_put(im->c->ix, repo, "", buf, mtime_ms);
}

static bool ref_entry(struct mfs_imp *im, void *ctx, const char *full, const char *sub,
		      const struct stat *st)
{
	if (strchr(sub, '.') == sub || strstr(sub, "/."))
		return false;
	if (S_ISREG(st->st_mode))
		record_ref(im, ctx, sub, full,
			   (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000);
	return S_ISDIR(st->st_mode);
}

void mfs_imp_refs(struct mfs_imp *im, const char *repo_dir, const struct mfs_repo *repo)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/refs", repo_dir) < (int)sizeof(path))
		walk(im, path, "", 0, ref_entry, (void *)repo);
}

/* ---- --local-dir -------------------------------------------------------------------- */

/* DIR/.cache/huggingface/download/<rel>.metadata: "commit\netag\ntime\n". */
static int read_metadata(const char *dir, const char *rel, char commit[41], char etag[65])
{
	char path[PATH_MAX], buf[512], *nl;
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "%s/.cache/huggingface/download/%s.metadata", dir, rel) >=
	    (int)sizeof(path) || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	if (!nl || nl - buf != 40)
		return -EINVAL;
	memcpy(commit, buf, 40);
	commit[40] = '\0';
	char *e = nl + 1, *e_end = strchr(e, '\n');
	if (!e_end || (e_end - e != 40 && e_end - e != 64))
		return -EINVAL;
	memcpy(etag, e, (size_t)(e_end - e));
	etag[e_end - e] = '\0';
	return mfs_imp_is_etag(commit) && mfs_imp_is_etag(etag) ? 0 : -EINVAL;
}

struct local_ctx {
	const char *base, *commit;
	struct evec ev;
};

/* A file of the folder, verified against its metadata. */
static bool local_entry(struct mfs_imp *im, void *vctx, const char *full, const char *sub,
			const struct stat *st)
{
	struct local_ctx *c = vctx;
	char mc[41] = "", etag[65];
	uint64_t size;
	int rc;

	if (S_ISDIR(st->st_mode))
		return strcmp(sub, ".cache") != 0;
	rc = S_ISREG(st->st_mode) ? read_metadata(c->base, sub, mc, etag) : -EINVAL;
	if (rc || strcmp(mc, c->commit)) {
		fprintf(stderr, "  %s: %s, skipped\n", sub,
			rc == -ENOENT ? "no .cache/huggingface metadata to verify it against" :
			rc ? "unreadable metadata" : "its metadata names another commit");
		im->skipped++;
		return false;
	}
	if (mfs_imp_adopt(im, sub, full, etag, &size) == 0)
		(void)add_entry(&c->ev, sub, etag, size);
	return false;
}

int mfs_imp_local_dir(struct mfs_imp *im, const char *dir)
{
	struct mfs_catalog *cat = im->c->cat;
	const struct mfs_tree *t;
	char commit[41];
	int64_t date;
	int rc = -EHOSTDOWN;

	fprintf(stderr, "%s as %s@%s\n", dir, im->repo.id, im->rev);
	if (mfs_cat_hub_usable(cat)) {
		rc = mfs_cat_resolve(cat, &im->repo, im->rev, commit, &date);
		if (rc == 0)
			rc = mfs_cat_tree(cat, &im->repo, commit, &t);
		if (rc == 0) {
			fprintf(stderr, "  verifying against the hub's listing of %s\n", commit);
			for (size_t i = 0; i < t->n_entries; i++) {
				const struct mfs_entry *e = &t->entries[i];
				char path[PATH_MAX];
				if (e->kind != MFS_KIND_FILE)
					continue;
				snprintf(path, sizeof(path), "%s/%s", dir, e->path);
				if (access(path, F_OK) == 0)
					(void)mfs_imp_adopt(im, e->path, path,
							    mfs_entry_content_id(e), NULL);
				else
					im->skipped++;
			}
			im->snapshots++;
			return 0;
		}
		if (rc != -EHOSTDOWN && rc != -ETIMEDOUT && rc != -EIO) {
			fprintf(stderr, "modelfs import: %s@%s: %s\n", im->repo.id, im->rev,
				rc == -ENOENT ? "no such repository or revision" : strerror(-rc));
			return -1;
		}
	}
	if (!mfs_names_is_commit(im->rev)) {
		fprintf(stderr, "modelfs import: the hub cannot be reached to resolve '%s'; give "
			"the commit (REPO@<40-hex>)\n", im->rev);
		return -1;
	}
	for (int i = 0; i < 41; i++)
		commit[i] = (char)(im->rev[i] >= 'A' && im->rev[i] <= 'F' ? im->rev[i] + 32 :
				   im->rev[i]);
	fprintf(stderr, "  hub not reachable: verifying against .cache/huggingface metadata\n");
	struct local_ctx lc = { dir, commit, { 0 } };
	walk(im, dir, "", 0, local_entry, &lc);
	if (add_parents(&lc.ev) == 0 && lc.ev.n)
		record_tree(im, &im->repo, commit, &lc.ev, "commit");
	evec_free(&lc.ev);
	return 0;
}
