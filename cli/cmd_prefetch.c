/*
 * cmd_prefetch.c - `modelfs prefetch` and `modelfs pin`: resolve REPO[@REV]
 * arguments, select files by globs, fetch every missing block with
 * parallel range requests, verify every file, report progress.
 *
 * Pinning is prefetching plus a durable record (index pins) that makes the
 * evictor leave those blobs alone; the record is written before the first
 * byte is fetched so a concurrent eviction cannot take what is being pinned.
 * Ctrl-C cancels queued fetches, lets running ones finish and store (a
 * re-run resumes from the blocks on disk), and exits 130.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli/cache_open.h"
#include "cli/commands.h"
#include "core/cachestats.h"
#include "core/pin.h"
#include "util/log.h"
#include "util/size.h"

static const char prefetch_help[] =
	"usage: modelfs prefetch REPO[@REV]... [OPTIONS]\n\n"
	"Downloads every file of each repository revision into the cache (only the\n"
	"blocks not there yet), with parallel range requests, and verifies each file\n"
	"(sha256 for LFS files, git blob sha1 otherwise). REPO is org/name or\n"
	"datasets/org/name; REV a branch, tag or commit (default: the default branch).\n"
	"Works with or without a running mount on the same cache. Ctrl-C stops; a\n"
	"re-run resumes.\n\n"
	"options:\n"
	"      --include GLOB       only files matching GLOB (repeatable)\n"
	"      --exclude GLOB       skip files matching GLOB (repeatable)\n"
	"  -j, --jobs N             parallel range requests (default 8)\n"
	MFS_CACHE_HELP
	"  -h, --help               this help\n";

static const char pin_help[] =
	"usage: modelfs pin REPO[@REV]... [OPTIONS]\n"
	"       modelfs pin --update [REPO[@REV]...]\n\n"
	"Prefetches like `modelfs prefetch`, then keeps those files in the cache:\n"
	"pinned data is never evicted. Pinning a branch pins the commit it resolves to\n"
	"now; pinning it again keeps that commit. --update re-resolves the branch (all\n"
	"pins when no REPO is given) and pins the new commit too. Refuses when pinned\n"
	"data alone would exceed the cache quota.\n\n"
	"options:\n"
	"      --include GLOB       only files matching GLOB (repeatable)\n"
	"      --exclude GLOB       skip files matching GLOB (repeatable)\n"
	"      --update             re-resolve and pin the new commit too\n"
	"  -j, --jobs N             parallel range requests (default 8)\n"
	MFS_CACHE_HELP
	"  -h, --help               this help\n";

enum { OPT_INCLUDE = 1000, OPT_EXCLUDE, OPT_UPDATE };

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	if (interrupted)
		_exit(130); /* second Ctrl-C: now */
	interrupted = 1;
}

struct target {
	char arg[600];
	struct mfs_repo repo;
	char rev[256];
	char commit[41];
	char old_commit[41];     /* pin --update: the commit pinned before */
	char *globs_enc;         /* what the pin stores */
	struct mfs_globs globs;
};

struct file {
	struct mfs_blob *b;
	char id[65];
	char label[MFS_REPO_ID_MAX + MFS_PATH_MAX + 2];
	uint64_t size;
};

struct run {
	struct mfs_ctx *c;
	struct file *files;
	size_t nfiles;
	pthread_mutex_t lock;
	size_t next;             /* protected by lock */
	size_t running;          /* protected by lock: workers not finished */
	uint64_t done;           /* protected by lock: bytes of finished chunks */
	const char *current;     /* protected by lock */
	char **fail;             /* protected by lock */
	size_t nfail;            /* protected by lock */
};

static void add_failure(struct run *r, const char *fmt, const char *a, const char *b)
{
	char buf[8192];
	char **v;

	snprintf(buf, sizeof(buf), fmt, a, b);
	pthread_mutex_lock(&r->lock);
	v = realloc(r->fail, (r->nfail + 1) * sizeof(*v));
	if (v) {
		r->fail = v;
		r->fail[r->nfail] = strdup(buf);
		if (r->fail[r->nfail])
			r->nfail++;
	}
	pthread_mutex_unlock(&r->lock);
}

static void progress(void *ctx, uint64_t bytes)
{
	struct run *r = ctx;

	pthread_mutex_lock(&r->lock);
	r->done += bytes;
	pthread_mutex_unlock(&r->lock);
}

static void *worker(void *arg)
{
	struct run *r = arg;

	for (;;) {
		struct file *f;
		int rc = 0, v = 0;

		pthread_mutex_lock(&r->lock);
		if (r->next >= r->nfiles || interrupted) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		f = &r->files[r->next++];
		r->current = f->label;
		pthread_mutex_unlock(&r->lock);
		/* A failed verification drops the blocks; eviction by another
		 * process may take some: fetch what is missing again, twice. */
		for (int attempt = 0; attempt < 3 && !interrupted; attempt++) {
			rc = mfs_blob_fetch_wait(f->b, 0, f->size, progress, r);
			if (rc)
				break;
			v = mfs_blob_verify_wait(f->b);
			if (v == 1)
				break;
		}
		if (interrupted)
			break;
		/* A held blob (--verify strict, or bytes from a mirror) fails
		 * the fetch itself when it keeps failing its hash: say that. */
		if (rc && mfs_blob_verify_wait(f->b) == -EBADMSG) {
			rc = 0;
			v = -EBADMSG;
		}
		if (rc)
			add_failure(r, "%s: %s", f->label, strerror(-rc));
		else if (v == -EBADMSG)
			add_failure(r, "%s: %s", f->label,
				    "content does not match its hash (dropped; source is lying?)");
		else if (v != 1)
			add_failure(r, "%s: %s", f->label,
				    "blocks were evicted while prefetching (cache quota too small?)");
	}
	pthread_mutex_lock(&r->lock);
	r->running--;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void show_progress(struct run *r, uint64_t total, double rate, bool tty, bool final)
{
	char d[32], t[32], s[32], line[512];
	uint64_t done;
	const char *cur;

	pthread_mutex_lock(&r->lock);
	done = r->done > total ? total : r->done;
	cur = r->current ? r->current : "";
	pthread_mutex_unlock(&r->lock);
	double pct = total ? 100.0 * (double)done / (double)total : 100.0;
	double eta = rate > 1 ? (double)(total - done) / rate : -1;
	char etas[32];
	if (eta < 0)
		snprintf(etas, sizeof(etas), "--");
	else if (eta >= 3600)
		snprintf(etas, sizeof(etas), "%dh%02dm", (int)(eta / 3600), (int)(eta / 60) % 60);
	else
		snprintf(etas, sizeof(etas), "%dm%02ds", (int)(eta / 60), (int)eta % 60);
	mfs_format_size(done, d, sizeof(d));
	mfs_format_size(total, t, sizeof(t));
	mfs_format_size((uint64_t)rate, s, sizeof(s));
	if (tty) {
		char bar[26];
		int fill = (int)(pct / 4);
		for (int i = 0; i < 25; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[25] = '\0';
		snprintf(line, sizeof(line), "\r[%s] %5.1f%% %s/%s %s/s ETA %s %.40s", bar, pct,
			 d, t, s, etas, cur);
		printf("%-110s%s", line, final ? "\n" : "");
	} else {
		printf("prefetch: %.1f%% %s of %s, %s/s, ETA %s, %s\n", pct, d, t, s, etas, cur);
	}
	fflush(stdout);
}

/* Runs the fetch of every file; returns 0, 1 (failures listed) or 130. */
static int run_files(const char *cmd, struct mfs_ctx *c, struct file *files, size_t n,
		     int jobs)
{
	struct run r = { .c = c, .files = files, .nfiles = n };
	struct sigaction sa, old_int, old_term;
	pthread_t *th = calloc((size_t)jobs, sizeof(*th));
	bool tty = isatty(STDOUT_FILENO);
	uint64_t total = 0, last_fetched = 0;
	int64_t start = mfs_now_ms(), last_t = start, last_print = 0;
	double rate = 0;
	int nth = 0, status = 0;

	if (!th)
		return 1;
	for (size_t i = 0; i < n; i++)
		total += files[i].size;
	pthread_mutex_init(&r.lock, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	for (int i = 0; i < jobs; i++) {
		/* Counted before it starts: a worker with nothing to do ends at
		 * once and must not be missed. */
		pthread_mutex_lock(&r.lock);
		r.running++;
		pthread_mutex_unlock(&r.lock);
		if (pthread_create(&th[i], NULL, worker, &r)) {
			pthread_mutex_lock(&r.lock);
			r.running--;
			pthread_mutex_unlock(&r.lock);
			break;
		}
		nth++;
	}
	for (bool cancelled = false;;) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		struct mfs_blobio_stats st;
		size_t running;

		nanosleep(&ts, NULL);
		if (interrupted && !cancelled) {
			/* Queued fetches go; running ones finish and are kept. */
			mfs_blobio_cancel(c->bio);
			cancelled = true;
		}
		pthread_mutex_lock(&r.lock);
		running = r.running;
		pthread_mutex_unlock(&r.lock);
		int64_t now = mfs_now_ms();
		mfs_blobio_stats(c->bio, &st);
		if (now - last_t >= 500) {
			double inst = (double)(st.bytes_fetched - last_fetched) * 1000.0 /
				      (double)(now - last_t);
			rate = rate == 0 ? inst : 0.7 * rate + 0.3 * inst;
			last_fetched = st.bytes_fetched;
			last_t = now;
		}
		if (running == 0)
			break;
		if (!interrupted && (tty ? now - last_print >= 200 : now - last_print >= 2000)) {
			show_progress(&r, total, rate, tty, false);
			last_print = now;
		}
	}
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	struct mfs_blobio_stats st;
	mfs_blobio_stats(c->bio, &st);
	double secs = (double)(mfs_now_ms() - start) / 1000.0;
	char a[32], b[32], s[32];
	if (interrupted) {
		if (tty)
			printf("\n");
		printf("modelfs %s: interrupted; %s fetched and kept, re-run to resume\n", cmd,
		       mfs_format_size(st.bytes_fetched, a, sizeof(a)));
		status = 130;
	} else {
		if (tty)
			show_progress(&r, total, rate, tty, true);
		printf("%s %zu file%s (%s): fetched %s in %.1f s (%s/s)%s\n",
		       r.nfail ? "processed" : "verified", n, n == 1 ? "" : "s",
		       mfs_format_size(total, a, sizeof(a)),
		       mfs_format_size(st.bytes_fetched, b, sizeof(b)), secs,
		       mfs_format_size(secs > 0 ? (uint64_t)((double)st.bytes_fetched / secs) : 0,
				       s, sizeof(s)),
		       r.nfail ? "" : ", all verified");
		if (r.nfail) {
			fprintf(stderr, "modelfs %s: %zu failed:\n", cmd, r.nfail);
			for (size_t i = 0; i < r.nfail; i++)
				fprintf(stderr, "  %s\n", r.fail[i]);
			status = 1;
		}
	}
	fflush(stdout);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	for (size_t i = 0; i < r.nfail; i++)
		free(r.fail[i]);
	free(r.fail);
	free(th);
	pthread_mutex_destroy(&r.lock);
	return status;
}

/* Resolves t->rev to t->commit and makes sure its tree is in the index.
 * Returns 0, 2 (unknown repo/revision: bad argument) or 1 (message in err). */
static int resolve_target(struct mfs_ctx *c, struct target *t, char *err, size_t cap)
{
	const struct mfs_tree *tree;
	int64_t date;
	int rc;

	if (!t->commit[0]) {
		rc = mfs_cat_resolve(c->cat, &t->repo, t->rev, t->commit, &date);
		if (rc == -ENOENT) {
			snprintf(err, cap, "unknown repository or revision '%s'", t->arg);
			return 2;
		}
		if (rc) {
			snprintf(err, cap, "%s: cannot resolve: %s%s", t->arg, strerror(-rc),
				 rc == -EACCES ? " (gated or private: set HF_TOKEN)" : "");
			return 1;
		}
	}
	rc = mfs_cat_tree(c->cat, &t->repo, t->commit, &tree);
	if (rc) {
		snprintf(err, cap, "%s: cannot list commit %s: %s", t->arg, t->commit,
			 strerror(-rc));
		return rc == -ENOENT ? 2 : 1;
	}
	return 0;
}

/* Appends the selected files of t (deduplicated by content id via ids). */
static int select_files(struct mfs_ctx *c, struct target *t, struct file **files,
			size_t *n, struct mfs_idset *ids, char *err, size_t cap)
{
	struct mfs_entry *e = NULL;
	size_t ne = 0, picked = 0;
	int rc;

	rc = mfs_ix_tree_get(c->ix, &t->repo, t->commit, &e, &ne);
	if (rc) {
		snprintf(err, cap, "%s: tree of %s not readable: %s", t->arg, t->commit,
			 strerror(-rc));
		return 1;
	}
	for (size_t i = 0; i < ne; i++) {
		if (e[i].kind != MFS_KIND_FILE || !mfs_globs_match(&t->globs, e[i].path))
			continue;
		picked++;
		const char *cid = mfs_entry_content_id(&e[i]);
		bool dup = false;
		for (size_t k = 0; k < *n && !dup; k++)
			dup = strcasecmp((*files)[k].id, cid) == 0;
		if (ids)
			(void)mfs_idset_add(ids, cid, e[i].size);
		if (dup)
			continue;
		struct mfs_blob_desc d = {
			.repo = &t->repo, .commit = t->commit, .path = e[i].path,
			.content_id = cid, .size = e[i].size, .lfs = e[i].sha256[0] != '\0',
			.xet_hash = e[i].xet_hash,
		};
		struct file *nf = realloc(*files, (*n + 1) * sizeof(**files));
		if (!nf) {
			rc = -ENOMEM;
			break;
		}
		*files = nf;
		struct file *f = &nf[*n];
		memset(f, 0, sizeof(*f));
		rc = mfs_blob_open(c->bio, &d, &f->b);
		if (rc)
			break;
		snprintf(f->label, sizeof(f->label), "%s%s/%s",
			 t->repo.type == MFS_REPO_DATASET ? "datasets/" : "", t->repo.id, e[i].path);
		f->size = e[i].size;
		snprintf(f->id, sizeof(f->id), "%s", cid);
		(*n)++;
	}
	mfs_entries_free(e, ne);
	if (rc) {
		snprintf(err, cap, "%s: %s", t->arg, strerror(-rc));
		return 1;
	}
	if (picked == 0)
		fprintf(stderr, "modelfs: %s: no file matches the globs\n", t->arg);
	return 0;
}

struct pin_lookup {
	const struct mfs_repo *repo;
	const char *rev;
	char commit[41];
	char *globs;
	int64_t created;
	bool found;
};

static int find_pin(void *ctx, const struct mfs_ix_pin *p)
{
	struct pin_lookup *l = ctx;

	if (p->repo.type != l->repo->type || strcmp(p->repo.id, l->repo->id) ||
	    strcmp(p->rev, l->rev))
		return 0;
	l->found = true;
	if (!l->globs)
		l->globs = strdup(p->globs);
	if (!p->current)
		return 0;
	snprintf(l->commit, sizeof(l->commit), "%s", p->commit);
	return 0;
}

struct pin_all {
	struct target *v;
	size_t n;
};

static int list_pin_targets(void *ctx, const struct mfs_ix_pin *p)
{
	struct pin_all *a = ctx;

	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].repo.type == p->repo.type && !strcmp(a->v[i].repo.id, p->repo.id) &&
		    !strcmp(a->v[i].rev, p->rev))
			return 0;
	struct target *nv = realloc(a->v, (a->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	a->v = nv;
	struct target *t = &nv[a->n++];
	memset(t, 0, sizeof(*t));
	t->repo = p->repo;
	snprintf(t->rev, sizeof(t->rev), "%s", p->rev);
	snprintf(t->arg, sizeof(t->arg), "%s%s%s%s",
		 p->repo.type == MFS_REPO_DATASET ? "datasets/" : "", p->repo.id,
		 p->rev[0] ? "@" : "", p->rev);
	return 0;
}

static int run_cmd(int argc, char **argv, bool pin)
{
	static const struct option longopts[] = {
		{ "include", required_argument, NULL, OPT_INCLUDE },
		{ "exclude", required_argument, NULL, OPT_EXCLUDE },
		{ "update", no_argument, NULL, OPT_UPDATE },
		{ "jobs", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		MFS_CACHE_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = pin ? "pin" : "prefetch";
	struct mfs_cli_opts o = { 0 };
	struct mfs_globs globs = { 0 };
	struct target *t = NULL;
	struct file *files = NULL;
	struct mfs_ctx *c = NULL;
	struct mfs_idset ids = { 0 };
	size_t nt = 0, nfiles = 0;
	bool update = false;
	char err[8192];
	int jobs = 8, ch, status = 0;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "hj:", longopts, NULL)) != -1) {
		if (mfs_cli_common_opt(ch, optarg, &o))
			continue;
		switch (ch) {
		case 'h':
			fputs(pin ? pin_help : prefetch_help, stdout);
			status = 0;
			goto out;
		case OPT_INCLUDE:
		case OPT_EXCLUDE:
			if (mfs_globs_add(&globs, optarg, ch == OPT_EXCLUDE)) {
				status = mfs_usage_error(cmd, "malformed glob '%s'", optarg);
				goto out;
			}
			break;
		case OPT_UPDATE:
			if (!pin) {
				status = mfs_usage_error(cmd, "unknown option '--update'");
				goto out;
			}
			update = true;
			break;
		case 'j': {
			long v;
			if (mfs_parse_int(optarg, 1, 64, &v)) {
				status = mfs_usage_error(cmd, "--jobs: a number from 1 to 64, not '%s'",
							 optarg);
				goto out;
			}
			jobs = (int)v;
			break;
		}
		default:
			status = mfs_usage_error(cmd, "unknown or incomplete option '%s'",
						 argv[optind - 1]);
			goto out;
		}
	}
	if (optind == argc && !(pin && update)) {
		status = mfs_usage_error(cmd, "missing REPO[@REV]");
		goto out;
	}
	nt = (size_t)(argc - optind);
	t = calloc(nt ? nt : 1, sizeof(*t));
	if (!t) {
		status = 1;
		goto out;
	}
	for (size_t i = 0; i < nt; i++) {
		snprintf(t[i].arg, sizeof(t[i].arg), "%s", argv[optind + (int)i]);
		if (mfs_parse_repo_rev(t[i].arg, &t[i].repo, t[i].rev, sizeof(t[i].rev))) {
			status = mfs_usage_error(cmd, "'%s' is not REPO[@REV] (org/name or "
						 "datasets/org/name)", t[i].arg);
			goto out;
		}
	}
	status = mfs_cache_open(cmd, &o, MFS_CACHE_NEED_FETCH, &c);
	if (status)
		goto out;
	if (pin && update && nt == 0) {
		struct pin_all a = { 0 };
		if (mfs_ix_pins_list(c->ix, list_pin_targets, &a)) {
			free(a.v);
			status = 1;
			goto out;
		}
		free(t);
		t = a.v;
		nt = a.n;
		if (nt == 0) {
			printf("nothing is pinned\n");
			goto out;
		}
	}
	/* Resolve everything before fetching anything: a typo fails fast. */
	uint64_t want = 0;
	for (size_t i = 0; i < nt; i++) {
		struct pin_lookup l = { .repo = &t[i].repo, .rev = t[i].rev };
		if (pin)
			(void)mfs_ix_pins_list(c->ix, find_pin, &l);
		/* Pinning again keeps the pinned commit; --update re-resolves. */
		if (l.found && update)
			snprintf(t[i].old_commit, sizeof(t[i].old_commit), "%s", l.commit);
		else if (l.found)
			snprintf(t[i].commit, sizeof(t[i].commit), "%s", l.commit);
		int rc = mfs_globs_decode(l.found && globs.ninc + globs.nexc == 0 ? l.globs : "",
					  &t[i].globs);
		free(l.globs);
		if (rc == 0 && globs.ninc + globs.nexc) {
			for (size_t k = 0; k < globs.ninc && !rc; k++)
				rc = mfs_globs_add(&t[i].globs, globs.inc[k], false);
			for (size_t k = 0; k < globs.nexc && !rc; k++)
				rc = mfs_globs_add(&t[i].globs, globs.exc[k], true);
		}
		t[i].globs_enc = rc ? NULL : mfs_globs_encode(&t[i].globs);
		if (!t[i].globs_enc) {
			status = 1;
			goto out;
		}
		status = resolve_target(c, &t[i], err, sizeof(err));
		if (status == 2) {
			fprintf(stderr, "modelfs %s: %s\n", cmd, err);
			goto out;
		}
		if (status) {
			fprintf(stderr, "modelfs %s: failed:\n  %s\n", cmd, err);
			goto out;
		}
	}
	for (size_t i = 0; i < nt; i++) {
		struct mfs_entry *e = NULL;
		size_t ne = 0;
		if (mfs_ix_tree_get(c->ix, &t[i].repo, t[i].commit, &e, &ne) == 0)
			for (size_t k = 0; k < ne; k++)
				if (e[k].kind == MFS_KIND_FILE && mfs_globs_match(&t[i].globs, e[k].path))
					want += e[k].size;
		mfs_entries_free(e, ne);
	}
	/* Big requests (fewer round trips) when there is a lot to fetch; small
	 * enough that every stream has work till the end. */
	struct mfs_ctx_io p = { .fetch_threads = jobs };
	p.coalesce_max = want / ((uint64_t)jobs * 4);
	if (p.coalesce_max < (4u << 20))
		p.coalesce_max = 4u << 20;
	if (p.coalesce_max > (32u << 20))
		p.coalesce_max = 32u << 20;
	p.coalesce_max &= ~(uint64_t)((1u << 20) - 1);
	status = mfs_cache_start_io(cmd, c, &p);
	if (status)
		goto out;
	for (size_t i = 0; i < nt; i++) {
		status = select_files(c, &t[i], &files, &nfiles, pin ? &ids : NULL, err, sizeof(err));
		if (status) {
			fprintf(stderr, "modelfs %s: failed:\n  %s\n", cmd, err);
			goto out;
		}
	}
	if (pin) {
		char a[32], b[32], q[32];
		uint64_t before = 0, total;
		struct mfs_idset old = { 0 };
		if (mfs_pins_collect(c->ix, &old) == 0)
			before = mfs_idset_finish(&old);
		for (size_t i = 0; i < old.n; i++)
			(void)mfs_idset_add(&ids, old.v[i].id, old.v[i].size);
		mfs_idset_free(&old);
		total = mfs_idset_finish(&ids);
		if (c->quota && total > c->quota) {
			fprintf(stderr, "modelfs pin: refusing: pinned data would be %s (%s pinned "
				"already), more than the cache quota %s; raise the quota "
				"(MODELFS_CACHE_SIZE or mount --cache-size) or unpin something\n",
				mfs_format_size(total, a, sizeof(a)),
				mfs_format_size(before, b, sizeof(b)),
				mfs_format_size(c->quota, q, sizeof(q)));
			status = 1;
			goto out;
		}
		for (size_t i = 0; i < nt; i++) {
			int rc = mfs_ix_pin_add(c->ix, &t[i].repo, t[i].rev, t[i].commit,
						t[i].globs_enc, mfs_wall_ms());
			if (rc) {
				fprintf(stderr, "modelfs pin: failed:\n  %s: cannot record the pin: %s\n",
					t[i].arg, strerror(-rc));
				status = 1;
				goto out;
			}
			if (t[i].old_commit[0] && strcmp(t[i].old_commit, t[i].commit))
				printf("%s: now also pins %s (was %s)\n", t[i].arg, t[i].commit,
				       t[i].old_commit);
			else
				printf("%s: pinned %s\n", t[i].arg, t[i].commit);
		}
		int rc = mfs_pins_recompute(c->ix, NULL);
		if (rc) {
			fprintf(stderr, "modelfs pin: failed:\n  updating pinned blobs: %s\n",
				strerror(-rc));
			status = 1;
			goto out;
		}
	}
	fflush(stdout);
	status = run_files(cmd, c, files, nfiles, jobs);
	mfs_blobio_quiesce(c->bio); /* the last exchange is counted, then flushed */
	struct mfs_statsync ss;
	mfs_statsync_init(&ss, c->endpoint, false);
	(void)mfs_statsync_flush(&ss, c->ix, c->bio, c->hub, NULL);
out:
	for (size_t i = 0; i < nfiles; i++)
		mfs_blob_close(files[i].b);
	free(files);
	for (size_t i = 0; t && i < nt; i++) {
		mfs_globs_free(&t[i].globs);
		free(t[i].globs_enc);
	}
	free(t);
	mfs_idset_free(&ids);
	mfs_globs_free(&globs);
	mfs_ctx_close(c);
	return status;
}

int mfs_cmd_prefetch(int argc, char **argv)
{
	return run_cmd(argc, argv, false);
}

int mfs_cmd_pin(int argc, char **argv)
{
	return run_cmd(argc, argv, true);
}
