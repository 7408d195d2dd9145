/*
 * cmd_import.c - `modelfs import`: adopt what huggingface_hub already
 * downloaded, so it never has to be downloaded again.
 *
 *   modelfs import [DIR]                      a huggingface_hub cache
 *   modelfs import --local-dir DIR REPO@REV   an `hf download --local-dir` folder
 *
 * Cache import: for every models--<org>--<name>/ (datasets--... too) in DIR,
 * every blobs/<etag> is verified against its own name (sha256 for LFS
 * files, git blob sha1 otherwise) and adopted into the block cache (a
 * corrupt one is reported and skipped); every snapshots/<commit>/ is
 * recorded as that commit's tree (the hub's full listing when the hub can
 * be reached, else the files the snapshot holds); every refs/<rev> is
 * recorded with the time the file was written. Then those commits list and
 * read offline. The source is only read (opened O_RDONLY, O_NOATIME when
 * allowed).
 *
 * Local-dir import: each file is verified against the hub's listing of
 * the commit when the hub can be reached, else against the etag huggingface_hub
 * wrote in DIR/.cache/huggingface/download/<path>.metadata (files without
 * one are skipped: nothing to verify them against).
 *
 * It does not download anything but listings, never writes to the
 * source, and does not evict (the quota applies at the next mount or gc).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cache_open.h"
#include "cli/commands.h"
#include "cli/import_tree.h"
#include "core/adopt.h"
#include "fs/hfcache.h"
#include "util/size.h"

static const char import_help[] =
	"usage: modelfs import [OPTIONS] [DIR]\n"
	"       modelfs import [OPTIONS] --local-dir DIR REPO@REV\n\n"
	"Adopts the files of a huggingface_hub cache (DIR, default $HF_HUB_CACHE,\n"
	"then $HF_HOME/hub, then ~/.cache/huggingface/hub) into the modelfs cache:\n"
	"each blob is verified against its name (sha256 or git sha1) first, a corrupt\n"
	"one is reported and skipped; refs and snapshot trees are recorded so those\n"
	"commits list and read offline. The source is never modified.\n"
	"With --local-dir, imports a folder made by `hf download --local-dir` as\n"
	"REPO@REV (REV a commit when the hub cannot be reached): files are verified\n"
	"against the hub's listing, or offline against the etags in\n"
	"DIR/.cache/huggingface/download/.\n"
	"Exits 1 if any file was corrupt or could not be imported.\n\n"
	"options:\n"
	"      --dry-run            report what would be adopted; hash and store nothing\n"
	"      --reflink            share the source's extents (FICLONE) where the file\n"
	"                           systems allow it; copy otherwise\n"
	"      --local-dir DIR      import an `hf download --local-dir` folder\n"
	"  -q, --quiet              no per-file progress\n"
	MFS_CACHE_HELP
	"  -h, --help               this help\n";

/* ---- one file ----------------------------------------------------------------- */

static int open_source(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOATIME | O_CLOEXEC);

	/* O_NOATIME is refused on files we do not own */
	if (fd < 0 && errno == EPERM)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd;
}

static void show_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	char a[32], b[32];

	(void)ctx;
	if (total >= (256ull << 20))
		fprintf(stderr, "    %s %s / %s\n", phase, mfs_cli_size(done, a, sizeof(a)),
			mfs_cli_size(total, b, sizeof(b)));
}

/* Verifies and adopts path as blob id; prints one line; counts. 0 when
 * the bytes are (or, dry run, would be) in the cache, 1 when not. */
int mfs_imp_adopt(struct mfs_imp *im, const char *label, const char *path, const char *id,
		  uint64_t *size_out)
{
	struct mfs_adopt_opts o = { .dry_run = im->dry_run, .reflink = im->reflink,
				    .cloned_bytes = &im->cloned_bytes,
				    .progress = im->quiet ? NULL : show_progress };
	char hex[65] = "", sz[32];
	struct stat st;
	int fd = open_source(path), rc;

	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "  %s %s: cannot read %s: %s\n", label, id, path,
			fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		im->failed++;
		return 1;
	}
	mfs_cli_size((uint64_t)st.st_size, sz, sizeof(sz));
	rc = mfs_adopt_fd(im->c->ix, im->c->bs, fd, (uint64_t)st.st_size, id, &o, hex);
	close(fd);
	if (size_out)
		*size_out = (uint64_t)st.st_size;
	switch (rc) {
	case MFS_ADOPTED:
		im->adopted++;
		im->adopted_bytes += (uint64_t)st.st_size;
		if (!im->quiet)
			fprintf(stderr, "  %s %s (%s): %s\n", label, id, sz,
				im->dry_run ? "would adopt" : "verified, adopted");
		return 0;
	case MFS_ADOPT_CACHED:
		im->cached++;
		if (!im->quiet)
			fprintf(stderr, "  %s %s (%s): already cached\n", label, id, sz);
		return 0;
	case MFS_ADOPT_CORRUPT:
		im->corrupt++;
		fprintf(stderr, "  %s %s (%s): CORRUPT, content hashes to %s; skipped\n", label,
			id, sz, hex);
		return 1;
	default:
		im->failed++;
		fprintf(stderr, "  %s %s (%s): not imported: %s\n", label, id, sz, strerror(-rc));
		return 1;
	}
}

/* ---- a huggingface_hub cache -------------------------------------------------------- */

static void import_blobs(struct mfs_imp *im, const char *repo_dir, const char *name)
{
	char path[PATH_MAX], label[64];
	struct dirent **ents = NULL;
	int n, k = 0, total = 0;

	if (snprintf(path, sizeof(path), "%s/blobs", repo_dir) >= (int)sizeof(path))
		return;
	n = scandir(path, &ents, NULL, alphasort);
	for (int i = 0; i < n; i++)
		total += mfs_imp_is_etag(ents[i]->d_name);
	for (int i = 0; i < n; i++) {
		const char *e = ents[i]->d_name;
		if (e[0] != '.' && !mfs_imp_is_etag(e)) {
			/* .incomplete and .lock files of interrupted downloads */
			if (!im->quiet)
				fprintf(stderr, "  %s/blobs/%s: not a finished blob, skipped\n", name, e);
		} else if (e[0] != '.' &&
			   snprintf(path, sizeof(path), "%s/blobs/%s", repo_dir, e) < (int)sizeof(path)) {
			snprintf(label, sizeof(label), "blob %d/%d", ++k, total);
			(void)mfs_imp_adopt(im, label, path, e, NULL);
		}
		free(ents[i]);
	}
	free(ents);
}

static int import_repo(struct mfs_imp *im, const char *dir, const char *name,
		       const struct mfs_repo *repo)
{
	char repo_dir[PATH_MAX];

	if (snprintf(repo_dir, sizeof(repo_dir), "%s/%s", dir, name) >= (int)sizeof(repo_dir))
		return 0;
	fprintf(stderr, "%s (%s %s)\n", name, repo->type == MFS_REPO_DATASET ? "dataset" : "model",
		repo->id);
	import_blobs(im, repo_dir, name);
	mfs_imp_snapshots(im, repo_dir, repo);
	mfs_imp_refs(im, repo_dir, repo);
	return 0;
}

static int import_cache(struct mfs_imp *im, const char *dir)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort), repos = 0;

	if (n < 0) {
		fprintf(stderr, "modelfs import: cannot read %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct mfs_repo repo;
		if (mfs_hfc_parse_repo_dir(ents[i]->d_name, &repo) == 0) {
			import_repo(im, dir, ents[i]->d_name, &repo);
			repos++;
		}
		free(ents[i]);
	}
	free(ents);
	if (repos == 0)
		fprintf(stderr, "modelfs import: %s holds no models--*/datasets--* folders\n", dir);
	return repos;
}

/* HF_HUB_CACHE, then $HF_HOME/hub, then ~/.cache/huggingface/hub
 * (huggingface_hub's own order). */
static int default_dir(char *out, size_t cap)
{
	const char *v = getenv("HF_HUB_CACHE"), *home;
	int n;

	if (v && v[0])
		n = snprintf(out, cap, "%s", v);
	else if ((v = getenv("HF_HOME")) && v[0])
		n = snprintf(out, cap, "%s/hub", v);
	else if ((home = getenv("HOME")) && home[0])
		n = snprintf(out, cap, "%s/.cache/huggingface/hub", home);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int mfs_cmd_import(int argc, char **argv)
{
	enum { OPT_DRY = 1, OPT_REFLINK, OPT_LOCAL };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "dry-run", no_argument, NULL, OPT_DRY },
		{ "reflink", no_argument, NULL, OPT_REFLINK },
		{ "local-dir", required_argument, NULL, OPT_LOCAL },
		MFS_CACHE_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct mfs_cli_opts o = { 0 };
	struct mfs_imp im = { 0 };
	const char *local = NULL;
	char dir[PATH_MAX], a[32], b[32];
	int ch, status, rc;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
		if (mfs_cli_common_opt(ch, optarg, &o))
			continue;
		switch (ch) {
		case 'h':
			fputs(import_help, stdout);
			mfs_cli_opts_free(&o);
			return 0;
		case 'q':
			im.quiet = true;
			break;
		case OPT_DRY:
			im.dry_run = true;
			break;
		case OPT_REFLINK:
			im.reflink = true;
			break;
		case OPT_LOCAL:
			local = optarg;
			break;
		default:
			mfs_cli_opts_free(&o);
			return mfs_usage_error("import", "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (o.bad) {
		mfs_cli_opts_free(&o);
		return 2;
	}
	if (local ? argc - optind != 1 : argc - optind > 1) {
		mfs_cli_opts_free(&o);
		return mfs_usage_error("import", local ? "--local-dir needs exactly one REPO@REV"
				       : "at most one DIR");
	}
	if (local) {
		if (mfs_parse_repo_rev(argv[optind], &im.repo, im.rev, sizeof(im.rev)) ||
		    !im.rev[0]) {
			mfs_cli_opts_free(&o);
			return mfs_usage_error("import", "'%s' is not REPO@REV", argv[optind]);
		}
	} else if (optind < argc) {
		snprintf(dir, sizeof(dir), "%s", argv[optind]);
	} else if (default_dir(dir, sizeof(dir))) {
		mfs_cli_opts_free(&o);
		return mfs_usage_error("import", "no DIR, and neither HF_HUB_CACHE, HF_HOME nor "
				       "HOME is set");
	}
	status = mfs_cache_open("import", &o, MFS_CACHE_NEED_FETCH, &im.c);
	if (status)
		return status;
	if (local)
		rc = mfs_imp_local_dir(&im, local);
	else
		rc = import_cache(&im, dir);
	printf("%s%zu files %s (%s), %zu already cached, %zu corrupt, %zu not imported; "
	       "%zu snapshots, %zu refs %s\n", im.dry_run ? "dry run: " : "", im.adopted,
	       im.dry_run ? "would be adopted" : "adopted",
	       mfs_cli_size(im.adopted_bytes, a, sizeof(a)), im.cached, im.corrupt, im.failed,
	       im.snapshots, im.refs, im.dry_run ? "would be recorded" : "recorded");
	if (im.reflink && !im.dry_run)
		printf("reflink: %s of %s shared with the source, the rest copied\n",
		       mfs_cli_size(im.cloned_bytes, a, sizeof(a)),
		       mfs_cli_size(im.adopted_bytes, b, sizeof(b)));
	mfs_ctx_close(im.c);
	return rc < 0 || im.corrupt || im.failed ? 1 : 0;
}
