/*
 * test_index.c - criterion tests for index/ (the sqlite catalogue).
 *
 * Covers round trips of every call, validation errors, tree storage at
 * 100 000 entries (timed and printed, not asserted), the readdir listings,
 * block bitmaps, LRU touch batches, settings, totals, concurrent use from
 * two handles plus a forked process, schema versioning and corrupt files.
 * Where the index exposes no getter (last_access, pinned, complete) the test
 * reads or writes the database directly with sqlite3: that is white-box on
 * purpose. Does not test anything above index/ (core's use of it).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "index/index.h"
#include "util/log.h"

static char dir[64];
static char dbp[128];

static void setup(void)
{
	strcpy(dir, "/tmp/mfs-ix-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(dbp, sizeof dbp, "%s/index.db", dir);
}

static void teardown(void)
{
	char p[160];
	const char *sfx[] = { "", "-wal", "-shm", "-journal" };

	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
		snprintf(p, sizeof p, "%s%s", dbp, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
}

TestSuite(index, .init = setup, .fini = teardown, .timeout = 120);

static struct mfs_ix *xopen(void)
{
	struct mfs_ix *ix = NULL;

	cr_assert_eq(mfs_ix_open(dbp, &ix), 0);
	cr_assert_not_null(ix);
	return ix;
}

static struct mfs_repo repo(enum mfs_repo_type t, const char *id)
{
	struct mfs_repo r = { .type = t };

	snprintf(r.id, sizeof r.id, "%s", id);
	return r;
}

/* A deterministic 40-hex commit id derived from n. */
static void mksha(char out[41], unsigned n)
{
	for (int i = 0; i < 40; i++)
		out[i] = "0123456789abcdef"[(n * 2654435761u >> (i % 8 * 4)) % 16 ^ (unsigned)i % 16];
	out[40] = '\0';
}

static void mkcid64(char out[65], unsigned n)
{
	for (int i = 0; i < 64; i++)
		out[i] = "0123456789abcdef"[((n + 7) * 40503u >> (i % 16)) % 16 ^ (unsigned)(i * 3) % 16];
	out[64] = '\0';
}

/* Runs a one-integer query straight against the file (white box). */
static int64_t raw_int(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	cr_assert_eq(sqlite3_open(dbp, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void raw_exec(const char *sql)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open(dbp, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sql);
	sqlite3_close(db);
}

/* --- open ------------------------------------------------------------------ */

Test(index, open_sets_wal_and_schema_version_and_persists)
{
	struct mfs_ix *ix = xopen();
	struct mfs_repo r = repo(MFS_REPO_MODEL, "org/name");
	char sha[41], got[41];

	mksha(sha, 1);
	cr_assert_eq(mfs_ix_ref_put(ix, &r, "main", sha, 5), 0);
	mfs_ix_close(ix);
	cr_assert_eq(raw_int("PRAGMA user_version"), 3); /* IX_SCHEMA_VERSION */

	/* WAL is persistent in the file header: read it from a fresh conn. */
	sqlite3 *db;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(dbp, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);

	ix = xopen();
	cr_assert_eq(mfs_ix_ref_get(ix, &r, "main", got, NULL), 0);
	cr_assert_str_eq(got, sha);
	mfs_ix_close(ix);
}

Test(index, open_bad_arguments)
{
	struct mfs_ix *ix = (struct mfs_ix *)&ix;
	char p[200];

	cr_assert_eq(mfs_ix_open(NULL, &ix), -EINVAL);
	cr_assert_eq(mfs_ix_open("", &ix), -EINVAL);
	cr_assert_eq(mfs_ix_open(dbp, NULL), -EINVAL);
	snprintf(p, sizeof p, "%s/no/such/dir/index.db", dir);
	ix = (struct mfs_ix *)&ix;
	/* The real errno, not -EIO: rebuilding would not help here. */
	cr_assert_eq(mfs_ix_open(p, &ix), -ENOENT);
	cr_assert_null(ix);
	mfs_ix_close(NULL); /* must be a no-op */
}

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* Opens dbp with log lines captured; returns the rc and the log text. */
static int open_capturing(struct mfs_ix **ix, char *log, size_t cap)
{
	FILE *f = tmpfile();
	size_t n;
	int rc;

	cr_assert_not_null(f);
	mfs_log_set_file(f);
	rc = mfs_ix_open(dbp, ix);
	mfs_log_set_file(NULL);
	rewind(f);
	n = fread(log, 1, cap - 1, f);
	log[n] = '\0';
	fclose(f);
	return rc;
}

Test(index, corrupt_file_is_eio_with_clear_log)
{
	static unsigned char junk[16384];
	char log[4096];
	struct mfs_ix *ix = (struct mfs_ix *)&ix;
	unsigned x = 12345;

	for (size_t i = 0; i < sizeof junk; i++) {
		x = x * 1103515245u + 12345u;
		junk[i] = (unsigned char)(x >> 16);
	}
	write_file(dbp, junk, sizeof junk);
	cr_assert_eq(open_capturing(&ix, log, sizeof log), -EIO);
	cr_assert_null(ix);
	cr_assert(strstr(log, dbp) != NULL, "log names the file: %s", log);
	cr_assert(strstr(log, "not a usable database") != NULL, "log: %s", log);
	cr_assert(strstr(log, "ERROR") != NULL || strstr(log, "error") != NULL, "%s", log);

	/* Also a short text file (smaller than a sqlite header). */
	write_file(dbp, "hello, world\n", 13);
	ix = (struct mfs_ix *)&ix;
	cr_assert_eq(open_capturing(&ix, log, sizeof log), -EIO);
	cr_assert_null(ix);
	cr_assert(strstr(log, "not a usable database") != NULL, "log: %s", log);
}

Test(index, newer_schema_version_is_refused_not_rebuilt)
{
	struct mfs_ix *ix = xopen();
	char log[4096];

	mfs_ix_close(ix);
	raw_exec("PRAGMA user_version = 99");
	ix = (struct mfs_ix *)&ix;
	cr_assert_eq(open_capturing(&ix, log, sizeof log), -ENOTSUP);
	cr_assert_null(ix);
	cr_assert(strstr(log, "newer") != NULL, "log: %s", log);
	/* The file was left alone. */
	cr_assert_eq(raw_int("PRAGMA user_version"), 99);
}

/* --- repos and refs ---------------------------------------------------------- */

Test(index, repo_round_trip)
{
	struct mfs_ix *ix = xopen();
	struct mfs_repo r = repo(MFS_REPO_MODEL, "TheOrg/tiny-llama");
	struct mfs_repo d = repo(MFS_REPO_DATASET, "TheOrg/tiny-llama");
	bool priv = false;
	char gated[16];
	int64_t at = 0;

	cr_assert_eq(mfs_ix_repo_get(ix, &r, &priv, gated, &at), -ENOENT);
	cr_assert_eq(mfs_ix_repo_put(ix, &r, true, "manual", 1700000000123), 0);
	cr_assert_eq(mfs_ix_repo_get(ix, &r, &priv, gated, &at), 0);
	cr_assert(priv);
	cr_assert_str_eq(gated, "manual");
	cr_assert_eq(at, 1700000000123);
	/* Same id, other type: a different repo. */
	cr_assert_eq(mfs_ix_repo_get(ix, &d, &priv, gated, &at), -ENOENT);

	cr_assert_eq(mfs_ix_repo_put(ix, &r, false, NULL, 1700000000999), 0);
	cr_assert_eq(mfs_ix_repo_get(ix, &r, &priv, gated, &at), 0);
	cr_assert_not(priv);
	cr_assert_str_eq(gated, "false");
	cr_assert_eq(at, 1700000000999);
	cr_assert_eq(mfs_ix_repo_get(ix, &r, NULL, NULL, NULL), 0);

	struct mfs_repo bad = repo(MFS_REPO_MODEL, "no-slash");
	cr_assert_eq(mfs_ix_repo_put(ix, &bad, false, "false", 1), -EINVAL);
	bad = repo((enum mfs_repo_type)7, "a/b");
	cr_assert_eq(mfs_ix_repo_put(ix, &bad, false, "false", 1), -EINVAL);
	cr_assert_eq(mfs_ix_repo_put(ix, &r, false, "sixteen-chars-xx", 1), -EINVAL);
	cr_assert_eq(mfs_ix_repo_put(NULL, &r, false, "false", 1), -EINVAL);
	mfs_ix_close(ix);
}

Test(index, repo_created_by_ref_is_not_checked)
{
	struct mfs_ix *ix = xopen();
	struct mfs_repo r = repo(MFS_REPO_MODEL, "a/b");
	char sha[41];

	mksha(sha, 3);
	cr_assert_eq(mfs_ix_ref_put(ix, &r, "main", sha, 1), 0);
	cr_assert_eq(mfs_ix_repo_get(ix, &r, NULL, NULL, NULL), -ENOENT);
	mfs_ix_close(ix);
}

Test(index, ref_round_trip_overwrite_and_default_branch)
{
	struct mfs_ix *ix = xopen();
	struct mfs_repo r = repo(MFS_REPO_MODEL, "org/m");
	char a[41], b[41], c[41], got[41];
	int64_t at;

	mksha(a, 10);
	mksha(b, 11);
	mksha(c, 12);
	cr_assert_str_neq(a, b);
	cr_assert_eq(mfs_ix_ref_get(ix, &r, "main", got, &at), -ENOENT);
	cr_assert_eq(mfs_ix_ref_put(ix, &r, "main", a, 1000), 0);
	cr_assert_eq(mfs_ix_ref_put(ix, &r, "", c, 1500), 0);
	cr_assert_eq(mfs_ix_ref_get(ix, &r, "main", got, &at), 0);
	cr_assert_str_eq(got, a);
	cr_assert_eq(at, 1000);

	/* Branch moved: newer resolution overwrites. */
	cr_assert_eq(mfs_ix_ref_put(ix, &r, "main", b, 2000), 0);
	cr_assert_eq(mfs_ix_ref_get(ix, &r, "main", got, &at), 0);
	cr_assert_str_eq(got, b);
	cr_assert_eq(at, 2000);

	/* "" is its own key, untouched by the "main" update. */
	cr_assert_eq(mfs_ix_ref_get(ix, &r, "", got, &at), 0);
	cr_assert_str_eq(got, c);
	cr_assert_eq(at, 1500);

	/* Uppercase input is stored lowercase. */
	char up[41];
	for (int i = 0; i < 41; i++)
		up[i] = (char)(a[i] >= 'a' && a[i] <= 'f' ? a[i] - 32 : a[i]);
	cr_assert_eq(mfs_ix_ref_put(ix, &r, "refs/pr/1", up, 3000), 0);
	cr_assert_eq(mfs_ix_ref_get(ix, &r, "refs/pr/1", got, NULL), 0);
	cr_assert_str_eq(got, a);

	/* Invalid commits and revs. */
	char shortsha[41];
	memcpy(shortsha, a, 39);
	shortsha[39] = '\0';
	cr_assert_eq(mfs_ix_ref_put(ix, &r, "x", shortsha, 1), -EINVAL);
	char longsha[42];
	memcpy(longsha, a, 40);
	longsha[40] = '0';
	longsha[41] = '\0';
	cr_assert_eq(mfs_ix_ref_put(ix, &r, "x", longsha, 1), -EINVAL);
	char nothex[41];
	memcpy(nothex, a, 41);
	nothex[17] = 'g';
	cr_assert_eq(mfs_ix_ref_put(ix, &r, "x", nothex, 1), -EINVAL);
	cr_assert_eq(mfs_ix_ref_put(ix, &r, NULL, a, 1), -EINVAL);
	cr_assert_eq(mfs_ix_ref_put(ix, &r, "bad\nrev", a, 1), -EINVAL);
	cr_assert_eq(mfs_ix_ref_get(ix, &r, "x", got, NULL), -ENOENT);

	/* Another repo does not see these refs. */
	struct mfs_repo o = repo(MFS_REPO_DATASET, "org/m");
	cr_assert_eq(mfs_ix_ref_get(ix, &o, "main", got, NULL), -ENOENT);
	mfs_ix_close(ix);
}

/* --- commits and trees -------------------------------------------------------- */

/* `modelfs serve` answers /blobs/<hash> from this: every listed file with
 * that content, with its repo's visibility as known now. */
Test(index, content_holders_with_current_visibility)
{
	struct mfs_ix *ix = xopen();
	struct mfs_repo pub = repo(MFS_REPO_MODEL, "org/pub"), priv = repo(MFS_REPO_MODEL, "org/priv");
	struct mfs_repo never = repo(MFS_REPO_DATASET, "org/never");
	struct mfs_ix_holder *h;
	size_t n;
	char a[41], b[41], c[41], big[65];
	struct mfs_entry e[2] = {
		{ .path = "w.bin", .kind = MFS_KIND_FILE, .size = 1000 },
		{ .path = "d/config.json", .kind = MFS_KIND_FILE, .size = 12 },
	};

	mksha(a, 30);
	mksha(b, 31);
	mksha(c, 32);
	mksha(e[0].oid, 33);
	mksha(e[1].oid, 34);
	snprintf(big, sizeof big, "%s%.24s", a, b);
	memcpy(e[0].sha256, big, 65);
	cr_assert_eq(mfs_ix_repo_put(ix, &pub, false, "false", 1), 0);
	cr_assert_eq(mfs_ix_repo_put(ix, &priv, true, "false", 1), 0);
	cr_assert_eq(mfs_ix_tree_put(ix, &priv, a, e, 2), 0);
	cr_assert_eq(mfs_ix_tree_put(ix, &pub, b, e, 2), 0);
	cr_assert_eq(mfs_ix_tree_put(ix, &never, c, &e[1], 1), 0);

	cr_assert_eq(mfs_ix_content_holders(ix, big, 10, &h, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(h[0].repo.id, "org/pub"); /* readable first */
	cr_expect_not(h[0].private_);
	cr_expect(h[0].lfs);
	cr_expect_str_eq(h[0].path, "w.bin");
	cr_expect_eq(h[0].size, 1000);
	cr_expect_str_eq(h[0].commit, b);
	cr_expect_str_eq(h[1].repo.id, "org/priv");
	cr_expect(h[1].private_);
	mfs_ix_holders_free(h, n);

	/* a git sha1 finds non-LFS files only (an LFS file's oid is its pointer's) */
	cr_assert_eq(mfs_ix_content_holders(ix, e[0].oid, 10, &h, &n), 0);
	cr_expect_eq(n, 0);
	mfs_ix_holders_free(h, n);
	cr_assert_eq(mfs_ix_content_holders(ix, e[1].oid, 10, &h, &n), 0);
	cr_assert_eq(n, 3);
	cr_expect_not(h[0].private_);
	cr_expect(h[1].private_ && h[2].private_); /* "never" was never checked */
	cr_expect_not(h[0].lfs);
	mfs_ix_holders_free(h, n);
	cr_assert_eq(mfs_ix_content_holders(ix, e[1].oid, 1, &h, &n), 0);
	cr_expect_eq(n, 1);
	mfs_ix_holders_free(h, n);

	/* visibility is read on each call: the repo turning private shows */
	cr_assert_eq(mfs_ix_repo_put(ix, &pub, true, "false", 2), 0);
	cr_assert_eq(mfs_ix_content_holders(ix, big, 10, &h, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect(h[0].private_ && h[1].private_);
	mfs_ix_holders_free(h, n);

	cr_expect_eq(mfs_ix_content_holders(ix, "zz", 10, &h, &n), -EINVAL);
	cr_expect_eq(mfs_ix_content_holders(ix, big, 0, &h, &n), -EINVAL);
	mfs_ix_close(ix);
}

Test(index, commit_round_trip)
{
	struct mfs_ix *ix = xopen();
	struct mfs_repo r = repo(MFS_REPO_MODEL, "org/m");
	char a[41];
	int64_t date = 0;
	bool listed = true;

	mksha(a, 20);
	cr_assert_eq(mfs_ix_commit_get(ix, &r, a, &date, &listed), -ENOENT);
	cr_assert_eq(mfs_ix_commit_put(ix, &r, a, 1712345678), 0);
	cr_assert_eq(mfs_ix_commit_get(ix, &r, a, &date, &listed), 0);
	cr_assert_eq(date, 1712345678);
	cr_assert_not(listed);

	struct mfs_entry e = { .path = "config.json", .kind = MFS_KIND_FILE, .size = 12 };
	mksha(e.oid, 21);
	cr_assert_eq(mfs_ix_tree_put(ix, &r, a, &e, 1), 0);
	cr_assert_eq(mfs_ix_commit_get(ix, &r, a, &date, &listed), 0);
	cr_assert(listed);
	cr_assert_eq(date, 1712345678);

	/* Re-putting the commit updates the date and keeps it listed. */
	cr_assert_eq(mfs_ix_commit_put(ix, &r, a, 1712345679), 0);
	cr_assert_eq(mfs_ix_commit_get(ix, &r, a, &date, &listed), 0);
	cr_assert_eq(date, 1712345679);
	cr_assert(listed);

	struct mfs_repo o = repo(MFS_REPO_MODEL, "org/other");
	cr_assert_eq(mfs_ix_commit_get(ix, &o, a, &date, &listed), -ENOENT);
	cr_assert_eq(mfs_ix_commit_put(ix, &r, "main", 1), -EINVAL);
	mfs_ix_close(ix);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct mfs_entry *)a)->path, ((const struct mfs_entry *)b)->path);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* n entries with a mix of ASCII and multi-byte UTF-8 paths, dirs and
 * LFS/non-LFS files, in a scrambled (non-sorted) order. */
static struct mfs_entry *make_tree(size_t n, unsigned seed)
{
	static const char *const tops[] = { "weights", "données", "модель", "日本語", "z" };
	struct mfs_entry *v = calloc(n, sizeof *v);
	char p[256];

	cr_assert_not_null(v);
	for (size_t i = 0; i < n; i++) {
		/* i * 7919 mod n scrambles when gcd(7919, n) == 1. */
		size_t k = (i * 7919u + seed) % n;
		struct mfs_entry *e = &v[i];

		snprintf(p, sizeof p, "%s/s%03zu/f-%07zu%s", tops[k % 5], k % 997, k,
			 k % 3 == 0 ? ".safetensors" : ".json");
		e->path = strdup(p);
		cr_assert_not_null(e->path);
		e->kind = k % 50 == 0 ? MFS_KIND_DIR : MFS_KIND_FILE;
		e->size = (uint64_t)k * 4099u + seed;
		mksha(e->oid, (unsigned)k + seed);
		if (e->kind == MFS_KIND_FILE && k % 3 == 0)
			mkcid64(e->sha256, (unsigned)k + seed);
		if (k % 6 == 0)
			mkcid64(e->xet_hash, (unsigned)k * 3 + seed);
	}
	return v;
}

static void assert_same_tree(struct mfs_entry *want, size_t nw, struct mfs_entry *got, size_t ng)
{
	cr_assert_eq(ng, nw);
	qsort(want, nw, sizeof *want, cmp_entry);
	for (size_t i = 0; i < nw; i++) {
		cr_assert_str_eq(got[i].path, want[i].path, "at %zu", i);
		cr_assert_eq(got[i].kind, want[i].kind, "at %zu", i);
		cr_assert_eq(got[i].size, want[i].size, "at %zu", i);
		cr_assert_str_eq(got[i].oid, want[i].oid, "at %zu", i);
		cr_assert_str_eq(got[i].sha256, want[i].sha256, "at %zu", i);
		cr_assert_str_eq(got[i].xet_hash, want[i].xet_hash, "at %zu", i);
	}
}

Test(index, tree_100k_store_load_compare)
{
	const size_t n = 100000;
	struct mfs_ix *ix = xopen();
	struct mfs_repo r = repo(MFS_REPO_MODEL, "big/tree");
	struct mfs_entry *want = make_tree(n, 1), *got = NULL;
	size_t ng = 0;
	char a[41];
	double t0, t1, t2;

	mksha(a, 30);
	t0 = now_s();
	cr_assert_eq(mfs_ix_tree_put(ix, &r, a, want, n), 0);
	t1 = now_s();
	cr_assert_eq(mfs_ix_tree_get(ix, &r, a, &got, &ng), 0);
	t2 = now_s();
	fprintf(stderr, "index: tree_put of %zu entries took %.3f s, tree_get %.3f s\n",
		n, t1 - t0, t2 - t1);
	assert_same_tree(want, n, got, ng);
	mfs_entries_free(got, ng);
	mfs_entries_free(want, n);
	mfs_ix_close(ix);
}

Test(index, tree_put_replaces_previous_rows)
{
	struct mfs_ix *ix = xopen();
	struct mfs_repo r = repo(MFS_REPO_DATASET, "org/ds");
	struct mfs_entry *first = make_tree(101, 5), *second = make_tree(37, 9), *got;
	size_t ng;
	char a[41];

	mksha(a, 40);
	cr_assert_eq(mfs_ix_tree_put(ix, &r, a, first, 101), 0);
	cr_assert_eq(mfs_ix_tree_put(ix, &r, a, second, 37), 0);
	cr_assert_eq(mfs_ix_tree_get(ix, &r, a, &got, &ng), 0);
	assert_same_tree(second, 37, got, ng);
	mfs_entries_free(got, ng);

	/* A duplicate path fails the whole put and leaves the old tree. */
	free(first[3].path);
	first[3].path = strdup(first[4].path);
	cr_assert_eq(mfs_ix_tree_put(ix, &r, a, first, 101), -EINVAL);
	cr_assert_eq(mfs_ix_tree_get(ix, &r, a, &got, &ng), 0);
	cr_assert_eq(ng, 37);
	mfs_entries_free(got, ng);

	/* Invalid entries are refused before anything is written. */
	struct mfs_entry bad = { .path = "../escape", .kind = MFS_KIND_FILE };
	cr_assert_eq(mfs_ix_tree_put(ix, &r, a, &bad, 1), -EINVAL);
	bad.path = "ok";
	bad.kind = (enum mfs_kind)9;
	cr_assert_eq(mfs_ix_tree_put(ix, &r, a, &bad, 1), -EINVAL);
	cr_assert_eq(mfs_ix_tree_put(ix, &r, a, NULL, 1), -EINVAL);

	mfs_entries_free(first, 101);
	mfs_entries_free(second, 37);
	mfs_ix_close(ix);
}

Test(index, tree_get_unlisted_unknown_and_empty)
{
	struct mfs_ix *ix = xopen();
	struct mfs_repo r = repo(MFS_REPO_MODEL, "org/m");
	struct mfs_entry *got = (struct mfs_entry *)&got;
	size_t ng = 99;
	char a[41], b[41], c[41];

	mksha(a, 50);
	mksha(b, 51);
	mksha(c, 52);
	cr_assert_eq(mfs_ix_commit_put(ix, &r, a, 1), 0);
	cr_assert_eq(mfs_ix_tree_get(ix, &r, a, &got, &ng), -ENOENT);
	cr_assert_null(got);
	cr_assert_eq(ng, 0);
	cr_assert_eq(mfs_ix_tree_get(ix, &r, b, &got, &ng), -ENOENT);

	/* A listed empty tree is found, with zero entries. */
	cr_assert_eq(mfs_ix_tree_put(ix, &r, c, NULL, 0), 0);
	cr_assert_eq(mfs_ix_tree_get(ix, &r, c, &got, &ng), 0);
	cr_assert_eq(ng, 0);
	mfs_entries_free(got, ng);
	mfs_ix_close(ix);
}

/* --- listings ------------------------------------------------------------------ */

struct names {
	char v[32][64];
	int n, stop_after, stop_value;
	struct mfs_ix *ix; /* when set, the callback re-enters the index */
};

static int collect(void *ctx, const char *name)
{
	struct names *l = ctx;

	cr_assert_lt(l->n, 32);
	snprintf(l->v[l->n++], sizeof l->v[0], "%s", name);
	if (l->ix) {
		struct mfs_ix_totals t;

		cr_assert_eq(mfs_ix_totals(l->ix, &t), 0);
	}
	if (l->stop_after && l->n == l->stop_after)
		return l->stop_value;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Expected list derived from the input: sorted, deduplicated. */
static int expect_sorted(const char **v, int n)
{
	int m = 0;

	qsort(v, (size_t)n, sizeof *v, cmp_str);
	for (int i = 0; i < n; i++)
		if (m == 0 || strcmp(v[m - 1], v[i]) != 0)
			v[m++] = v[i];
	return m;
}

static void assert_names(const struct names *l, const char **want, int n)
{
	cr_assert_eq(l->n, n);
	for (int i = 0; i < n; i++)
		cr_assert_str_eq(l->v[i], want[i], "at %d", i);
}

static const struct {
	enum mfs_repo_type t;
	const char *id;
} list_repos_fixture[] = {
	{ MFS_REPO_MODEL, "alpha/one" },    { MFS_REPO_MODEL, "alpha/two" },
	{ MFS_REPO_MODEL, "beta/x" },       { MFS_REPO_MODEL, "alphabet/z" },
	{ MFS_REPO_MODEL, "alpha.x/y" },    { MFS_REPO_MODEL, "alpha0/q" },
	{ MFS_REPO_MODEL, "alpha/three" },  { MFS_REPO_DATASET, "gamma/d1" },
	{ MFS_REPO_DATASET, "alpha/d2" },
};
#define NFIX ((int)(sizeof list_repos_fixture / sizeof list_repos_fixture[0]))

Test(index, list_orgs_repos_refs)
{
	struct mfs_ix *ix = xopen();
	char sha[41];
	struct names l;
	const char *want[NFIX];
	int nw;

	mksha(sha, 60);
	for (int i = 0; i < NFIX; i++) {
		struct mfs_repo r = repo(list_repos_fixture[i].t, list_repos_fixture[i].id);

		/* Half via repo_put, half implicitly via a ref. */
		if (i % 2)
			cr_assert_eq(mfs_ix_repo_put(ix, &r, false, "false", 1), 0);
		else
			cr_assert_eq(mfs_ix_ref_put(ix, &r, "main", sha, 1), 0);
	}

	for (int t = 0; t < 2; t++) {
		/* orgs of type t */
		nw = 0;
		for (int i = 0; i < NFIX; i++) {
			const char *id = list_repos_fixture[i].id;

			if ((int)list_repos_fixture[i].t == t)
				want[nw++] = strndup(id, (size_t)(strchr(id, '/') - id));
		}
		char *owned[NFIX];
		memcpy(owned, want, sizeof(char *) * (size_t)nw);
		int nown = nw;
		nw = expect_sorted(want, nw);
		memset(&l, 0, sizeof l);
		cr_assert_eq(mfs_ix_list_orgs(ix, (enum mfs_repo_type)t, collect, &l), 0);
		assert_names(&l, want, nw);
		for (int i = 0; i < nown; i++)
			free(owned[i]);

		/* repos of every org of type t, including orgs of the other type */
		const char *orgs[] = { "alpha", "alphabet", "alpha0", "beta", "gamma", "nobody" };
		for (size_t o = 0; o < sizeof orgs / sizeof orgs[0]; o++) {
			size_t ol = strlen(orgs[o]);

			nw = 0;
			for (int i = 0; i < NFIX; i++) {
				const char *id = list_repos_fixture[i].id;

				if ((int)list_repos_fixture[i].t == t &&
				    strncmp(id, orgs[o], ol) == 0 && id[ol] == '/')
					want[nw++] = id + ol + 1;
			}
			nw = expect_sorted(want, nw);
			memset(&l, 0, sizeof l);
			cr_assert_eq(mfs_ix_list_repos(ix, (enum mfs_repo_type)t, orgs[o],
						       collect, &l), 0);
			assert_names(&l, want, nw);
		}
	}
	cr_assert_eq(mfs_ix_list_repos(ix, MFS_REPO_MODEL, "bad/org", collect, &l), -EINVAL);
	cr_assert_eq(mfs_ix_list_repos(ix, MFS_REPO_MODEL, NULL, collect, &l), -EINVAL);
	cr_assert_eq(mfs_ix_list_orgs(ix, MFS_REPO_MODEL, NULL, NULL), -EINVAL);

	/* refs: the default-branch entry "" is not listed */
	struct mfs_repo r = repo(MFS_REPO_MODEL, "alpha/one");
	const char *revs[] = { "v1.0", "", "refs/pr/1", "dev", "main" };
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(mfs_ix_ref_put(ix, &r, revs[i], sha, 2), 0);
	nw = 0;
	for (size_t i = 0; i < 5; i++)
		if (revs[i][0])
			want[nw++] = revs[i];
	nw = expect_sorted(want, nw);
	memset(&l, 0, sizeof l);
	cr_assert_eq(mfs_ix_list_refs(ix, &r, collect, &l), 0);
	assert_names(&l, want, nw);

	struct mfs_repo none = repo(MFS_REPO_MODEL, "nobody/nothing");
	memset(&l, 0, sizeof l);
	cr_assert_eq(mfs_ix_list_refs(ix, &none, collect, &l), 0);
	cr_assert_eq(l.n, 0);
	mfs_ix_close(ix);
}

Test(index, list_callback_can_stop_and_reenter)
{
	struct mfs_ix *ix = xopen();
	char sha[41];
	struct names l;

	mksha(sha, 61);
	for (int i = 0; i < 5; i++) {
		char id[32];

		snprintf(id, sizeof id, "org%d/r", i);
		struct mfs_repo r = repo(MFS_REPO_MODEL, id);
		cr_assert_eq(mfs_ix_ref_put(ix, &r, "main", sha, 1), 0);
	}
	memset(&l, 0, sizeof l);
	l.stop_after = 2;
	l.stop_value = 42;
	cr_assert_eq(mfs_ix_list_orgs(ix, MFS_REPO_MODEL, collect, &l), 42);
	cr_assert_eq(l.n, 2);

	/* Re-entering the index from the callback must not deadlock. */
	memset(&l, 0, sizeof l);
	l.ix = ix;
	cr_assert_eq(mfs_ix_list_orgs(ix, MFS_REPO_MODEL, collect, &l), 0);
	cr_assert_eq(l.n, 5);
	mfs_ix_close(ix);
}

/* --- blobs and blocks ------------------------------------------------------------ */

Test(index, blob_ensure_keeps_first_block_size)
{
	struct mfs_ix *ix = xopen();
	char cid[65];
	uint32_t bs = 4u << 20;
	uint64_t size = 0;
	bool verified = true, pinned = true;

	mkcid64(cid, 1);
	cr_assert_eq(mfs_ix_blob_get(ix, cid, &size, &bs, &verified, &pinned), -ENOENT);
	bs = 4u << 20;
	cr_assert_eq(mfs_ix_blob_ensure(ix, cid, 123456789, &bs), 0);
	cr_assert_eq(bs, 4u << 20);
	bs = 1u << 20;
	cr_assert_eq(mfs_ix_blob_ensure(ix, cid, 123456789, &bs), 0);
	cr_assert_eq(bs, 4u << 20, "existing block size wins");
	bs = 0;
	cr_assert_eq(mfs_ix_blob_get(ix, cid, &size, &bs, &verified, &pinned), 0);
	cr_assert_eq(size, 123456789);
	cr_assert_eq(bs, 4u << 20);
	cr_assert_not(verified);
	cr_assert_not(pinned);

	/* A git sha1 (40 hex) is a valid content id too, case-insensitive. */
	char sha1[41], upper[41];
	mksha(sha1, 70);
	for (int i = 0; i < 41; i++)
		upper[i] = (char)(sha1[i] >= 'a' && sha1[i] <= 'f' ? sha1[i] - 32 : sha1[i]);
	bs = 65536;
	cr_assert_eq(mfs_ix_blob_ensure(ix, upper, 10, &bs), 0);
	cr_assert_eq(mfs_ix_blob_get(ix, sha1, &size, NULL, NULL, NULL), 0);
	cr_assert_eq(size, 10);

	bs = 0;
	cr_assert_eq(mfs_ix_blob_ensure(ix, cid, 1, &bs), -EINVAL);
	bs = 1;
	cr_assert_eq(mfs_ix_blob_ensure(ix, "abc", 1, &bs), -EINVAL);
	cr_assert_eq(mfs_ix_blob_ensure(ix, cid, 1, NULL), -EINVAL);
	cr_assert_eq(mfs_ix_blob_ensure(ix, cid, MFS_SIZE_MAX + 1, &bs), -EINVAL);
	mfs_ix_close(ix);
}

/* Checks bitmap bit by bit against a plain bool array. */
static void assert_bitmap(const uint8_t *bm, const bool *present, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq((bm[i / 8] >> (i % 8)) & 1, present[i] ? 1 : 0, "block %u", i);
}

Test(index, blocks_bitmap_add_del_drop)
{
	struct mfs_ix *ix = xopen();
	char cid[65];
	const uint32_t bsz = 1000, n = 13; /* not a multiple of 8 */
	uint32_t bs = bsz;
	bool present[13] = { false };
	const uint32_t add[] = { 0, 3, 7, 8, 12 };
	uint8_t bm[3];
	bool verified;

	mkcid64(cid, 2);
	cr_assert_eq(mfs_ix_blob_ensure(ix, cid, (uint64_t)bsz * (n - 1) + 1, &bs), 0);
	for (size_t i = 0; i < sizeof add / sizeof add[0]; i++) {
		cr_assert_eq(mfs_ix_block_add(ix, cid, add[i], 100 + add[i]), 0);
		present[add[i]] = true;
	}
	memset(bm, 0xff, sizeof bm);
	cr_assert_eq(mfs_ix_blocks_get(ix, cid, bm, n), 0);
	assert_bitmap(bm, present, n);
	cr_assert_eq(bm[2], 0xff, "wrote past ceil(13/8) bytes");
	/* bits 13..15 of the last byte are cleared (no block beyond the end) */
	cr_assert_eq(bm[1] >> 5, 0);

	/* A shorter view ignores blocks at or past nblocks. */
	memset(bm, 0xff, sizeof bm);
	cr_assert_eq(mfs_ix_blocks_get(ix, cid, bm, 5), 0);
	assert_bitmap(bm, present, 5);
	cr_assert_eq(bm[0] >> 5, 0);
	cr_assert_eq(bm[1], 0xff);

	/* Out of range index, unknown blob. */
	cr_assert_eq(mfs_ix_block_add(ix, cid, n, 1), -EINVAL);
	char other[65];
	mkcid64(other, 3);
	cr_assert_eq(mfs_ix_block_add(ix, other, 0, 1), -ENOENT);
	memset(bm, 0xff, sizeof bm);
	cr_assert_eq(mfs_ix_blocks_get(ix, other, bm, n), 0);
	cr_assert_eq(bm[0], 0);
	cr_assert_eq(bm[1], 0);

	/* Delete one (twice: idempotent), re-add one (replace). */
	cr_assert_eq(mfs_ix_block_del(ix, cid, 7), 0);
	cr_assert_eq(mfs_ix_block_del(ix, cid, 7), 0);
	present[7] = false;
	cr_assert_eq(mfs_ix_block_add(ix, cid, 3, 999), 0);
	cr_assert_eq(mfs_ix_blocks_get(ix, cid, bm, n), 0);
	assert_bitmap(bm, present, n);
	cr_assert_eq(raw_int("SELECT stored_len FROM blocks WHERE idx = 3"), 999);

	/* Fill every block: 'complete' follows; drop clears it and verified. */
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(mfs_ix_block_add(ix, cid, i, 10), 0);
	cr_assert_eq(raw_int("SELECT complete FROM blobs WHERE size = 12001"), 1);
	cr_assert_eq(mfs_ix_blob_set_verified(ix, cid, true), 0);
	cr_assert_eq(mfs_ix_blob_get(ix, cid, NULL, NULL, &verified, NULL), 0);
	cr_assert(verified);
	cr_assert_eq(mfs_ix_blob_drop_blocks(ix, cid), 0);
	memset(bm, 0xff, sizeof bm);
	cr_assert_eq(mfs_ix_blocks_get(ix, cid, bm, n), 0);
	cr_assert_eq(bm[0], 0);
	cr_assert_eq(bm[1], 0);
	cr_assert_eq(mfs_ix_blob_get(ix, cid, NULL, NULL, &verified, NULL), 0);
	cr_assert_not(verified);
	cr_assert_eq(raw_int("SELECT complete FROM blobs WHERE size = 12001"), 0);

	cr_assert_eq(mfs_ix_blocks_get(ix, cid, NULL, 3), -EINVAL);
	cr_assert_eq(mfs_ix_blocks_get(ix, cid, NULL, 0), 0);
	mfs_ix_close(ix);
}

Test(index, set_verified_round_trip)
{
	struct mfs_ix *ix = xopen();
	char cid[65], other[65];
	uint32_t bs = 4096;
	bool v = true;

	mkcid64(cid, 4);
	mkcid64(other, 5);
	cr_assert_eq(mfs_ix_blob_ensure(ix, cid, 1, &bs), 0);
	cr_assert_eq(mfs_ix_blob_set_verified(ix, cid, true), 0);
	cr_assert_eq(mfs_ix_blob_set_verified(ix, cid, true), 0); /* unchanged: still ok */
	cr_assert_eq(mfs_ix_blob_get(ix, cid, NULL, NULL, &v, NULL), 0);
	cr_assert(v);
	cr_assert_eq(mfs_ix_blob_set_verified(ix, cid, false), 0);
	cr_assert_eq(mfs_ix_blob_get(ix, cid, NULL, NULL, &v, NULL), 0);
	cr_assert_not(v);
	cr_assert_eq(mfs_ix_blob_set_verified(ix, other, true), -ENOENT);
	mfs_ix_close(ix);
}

Test(index, touch_batch)
{
	struct mfs_ix *ix = xopen();
	char c[4][65], unknown[65], sql[400];
	const char *ids[5];
	uint32_t bs = 4096;

	for (int i = 0; i < 4; i++) {
		mkcid64(c[i], 10 + (unsigned)i);
		cr_assert_eq(mfs_ix_blob_ensure(ix, c[i], 100, &bs), 0);
	}
	mkcid64(unknown, 99);
	ids[0] = c[0];
	ids[1] = c[2];
	ids[2] = unknown; /* evicted meanwhile: ignored */
	ids[3] = c[3];
	cr_assert_eq(mfs_ix_touch(ix, ids, 4, 5000), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(sql, sizeof sql, "SELECT last_access FROM blobs WHERE content_id = '%s'", c[i]);
		cr_assert_eq(raw_int(sql), i == 1 ? 0 : 5000, "blob %d", i);
	}
	/* An older batch does not move time backwards; a newer one does. */
	cr_assert_eq(mfs_ix_touch(ix, ids, 1, 4000), 0);
	snprintf(sql, sizeof sql, "SELECT last_access FROM blobs WHERE content_id = '%s'", c[0]);
	cr_assert_eq(raw_int(sql), 5000);
	cr_assert_eq(mfs_ix_touch(ix, ids, 1, 6000), 0);
	cr_assert_eq(raw_int(sql), 6000);

	/* A bad id rejects the whole batch before anything changes. */
	ids[0] = c[1];
	ids[1] = "nothex";
	cr_assert_eq(mfs_ix_touch(ix, ids, 2, 9000), -EINVAL);
	snprintf(sql, sizeof sql, "SELECT last_access FROM blobs WHERE content_id = '%s'", c[1]);
	cr_assert_eq(raw_int(sql), 0);
	cr_assert_eq(mfs_ix_touch(ix, NULL, 0, 1), 0);
	cr_assert_eq(mfs_ix_touch(ix, NULL, 2, 1), -EINVAL);
	mfs_ix_close(ix);
}

/* --- settings and totals ------------------------------------------------------------ */

Test(index, settings)
{
	struct mfs_ix *ix = xopen();
	char v[8];

	cr_assert_eq(mfs_ix_setting_get(ix, "quota", v, sizeof v), -ENOENT);
	cr_assert_eq(mfs_ix_setting_put(ix, "quota", "10G"), 0);
	cr_assert_eq(mfs_ix_setting_get(ix, "quota", v, sizeof v), 0);
	cr_assert_str_eq(v, "10G");
	cr_assert_eq(mfs_ix_setting_put(ix, "quota", "1234567"), 0); /* exactly fits */
	cr_assert_eq(mfs_ix_setting_get(ix, "quota", v, sizeof v), 0);
	cr_assert_str_eq(v, "1234567");
	cr_assert_eq(mfs_ix_setting_put(ix, "quota", "12345678"), 0);
	cr_assert_eq(mfs_ix_setting_get(ix, "quota", v, sizeof v), -ERANGE);
	cr_assert_eq(mfs_ix_setting_put(ix, "ключ", "значение"), 0);
	char big[64];
	cr_assert_eq(mfs_ix_setting_get(ix, "ключ", big, sizeof big), 0);
	cr_assert_str_eq(big, "значение");
	cr_assert_eq(mfs_ix_setting_put(ix, "", "x"), -EINVAL);
	cr_assert_eq(mfs_ix_setting_put(ix, "k", NULL), -EINVAL);
	cr_assert_eq(mfs_ix_setting_get(ix, "k", v, 0), -EINVAL);
	mfs_ix_close(ix);
}

Test(index, totals)
{
	struct mfs_ix *ix = xopen();
	struct mfs_ix_totals t;
	uint64_t sizes[5] = { 10000, 5, 777777, 4096, 9000 };
	uint64_t want_blocks = 0, want_stored = 0, want_pinned = 0;
	char cid[65], sha[41], sql[400];

	cr_assert_eq(mfs_ix_totals(ix, &t), 0);
	cr_assert_eq(t.blobs + t.blocks + t.stored_bytes + t.pinned_bytes + t.repos + t.commits, 0);

	for (unsigned i = 0; i < 5; i++) {
		uint32_t bs = 4096;

		mkcid64(cid, 20 + i);
		cr_assert_eq(mfs_ix_blob_ensure(ix, cid, sizes[i], &bs), 0);
		uint32_t nb = (uint32_t)((sizes[i] + bs - 1) / bs);
		for (uint32_t b = 0; b < nb; b += 1 + i % 2) {
			uint64_t len = 100 + i * 10 + b;

			cr_assert_eq(mfs_ix_block_add(ix, cid, b, len), 0);
			want_blocks++;
			want_stored += len;
		}
		if (i % 2 == 0) {
			snprintf(sql, sizeof sql, "UPDATE blobs SET pinned = 1 WHERE content_id = '%s'", cid);
			raw_exec(sql);
			want_pinned += sizes[i];
		}
	}
	struct mfs_repo a = repo(MFS_REPO_MODEL, "o/a"), b = repo(MFS_REPO_DATASET, "o/a");
	mksha(sha, 80);
	cr_assert_eq(mfs_ix_commit_put(ix, &a, sha, 1), 0);
	cr_assert_eq(mfs_ix_commit_put(ix, &b, sha, 1), 0);
	mksha(sha, 81);
	cr_assert_eq(mfs_ix_commit_put(ix, &a, sha, 1), 0);

	cr_assert_eq(mfs_ix_totals(ix, &t), 0);
	cr_assert_eq(t.blobs, 5);
	cr_assert_eq(t.blocks, want_blocks);
	cr_assert_eq(t.stored_bytes, want_stored);
	cr_assert_eq(t.pinned_bytes, want_pinned);
	cr_assert_eq(t.repos, 2);
	cr_assert_eq(t.commits, 3);
	cr_assert_eq(mfs_ix_totals(ix, NULL), -EINVAL);
	mfs_ix_close(ix);
}

/* --- concurrency ------------------------------------------------------------------------ */

#define CONC_OPS 600

struct writer {
	int id;
	int failures;
	int first_err;
};

/* One writer: its own handle; block adds on its own blob, refs on a shared
 * repo, touches, and every 100 ops a 5 000-entry tree (a longer write
 * transaction the others have to wait for). */
static void writer_run(struct writer *w)
{
	struct mfs_ix *ix = NULL;
	struct mfs_repo r = repo(MFS_REPO_MODEL, "shared/repo");
	char cid[65], sha[41], rev[32];
	uint32_t bs = 512;
	int rc;

#define NOTE(expr)                                                                    \
	do {                                                                          \
		rc = (expr);                                                          \
		if (rc) {                                                             \
			w->failures++;                                                \
			if (!w->first_err)                                            \
				w->first_err = rc;                                    \
		}                                                                     \
	} while (0)

	NOTE(mfs_ix_open(dbp, &ix));
	if (!ix)
		return;
	mkcid64(cid, 100 + (unsigned)w->id);
	NOTE(mfs_ix_blob_ensure(ix, cid, (uint64_t)CONC_OPS * 512, &bs));
	struct mfs_entry *tree = make_tree(5000, (unsigned)w->id);
	const char *ids[1] = { cid };
	for (int i = 0; i < CONC_OPS; i++) {
		NOTE(mfs_ix_block_add(ix, cid, (uint32_t)i, 17));
		snprintf(rev, sizeof rev, "w%d-r%d", w->id, i % 20);
		mksha(sha, (unsigned)(w->id * 100000 + i));
		NOTE(mfs_ix_ref_put(ix, &r, rev, sha, i));
		if (i % 10 == 0)
			NOTE(mfs_ix_touch(ix, ids, 1, i));
		if (i % 100 == 0) {
			mksha(sha, (unsigned)(w->id * 1000 + i));
			NOTE(mfs_ix_tree_put(ix, &r, sha, tree, 5000));
		}
	}
	mfs_entries_free(tree, 5000);
	mfs_ix_close(ix);
#undef NOTE
}

static void *writer_thread(void *arg)
{
	writer_run(arg);
	return NULL;
}

static void check_writer_result(struct mfs_ix *ix, int id)
{
	char cid[65], sha[41], got[41], rev[32];
	uint8_t bm[(CONC_OPS + 7) / 8];
	struct mfs_repo r = repo(MFS_REPO_MODEL, "shared/repo");

	mkcid64(cid, 100 + (unsigned)id);
	cr_assert_eq(mfs_ix_blocks_get(ix, cid, bm, CONC_OPS), 0);
	for (int i = 0; i < CONC_OPS; i++)
		cr_assert((bm[i / 8] >> (i % 8)) & 1, "writer %d block %d missing", id, i);
	/* The last write of each rev of this writer is what we read back. */
	for (int k = 0; k < 20; k++) {
		int last = CONC_OPS - 20 + k;

		snprintf(rev, sizeof rev, "w%d-r%d", id, k);
		mksha(sha, (unsigned)(id * 100000 + last));
		cr_assert_eq(mfs_ix_ref_get(ix, &r, rev, got, NULL), 0);
		cr_assert_str_eq(got, sha, "writer %d rev %s", id, rev);
	}
}

Test(index, concurrent_handles_and_fork)
{
	int go[2];
	pid_t pid;
	char c;
	struct writer w[3] = { { .id = 0 }, { .id = 1 }, { .id = 2 } };
	pthread_t th[2];
	int status = 0;

	/* Fork before any handle exists: a sqlite connection must never cross
	 * a fork. The child blocks on the pipe so all three start together;
	 * the schema is created by whoever opens first (concurrent creation is
	 * part of what is tested). */
	cr_assert_eq(pipe(go), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(100);
		writer_run(&w[2]);
		_exit(w[2].failures ? (w[2].first_err < 0 && -w[2].first_err < 100
					       ? -w[2].first_err : 99)
				    : 0);
	}
	close(go[0]);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, writer_thread, &w[i]);
	if (write(go[1], "g", 1) != 1)
		kill(pid, SIGKILL);
	close(go[1]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	/* Reap the child before any assertion can end the test. */
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child died");
	cr_assert_eq(WEXITSTATUS(status), 0, "child failed with errno %d", WEXITSTATUS(status));
	for (int i = 0; i < 2; i++)
		cr_assert_eq(w[i].failures, 0, "writer %d: %d failures, first %d", i,
			     w[i].failures, w[i].first_err);

	struct mfs_ix *ix = xopen();
	for (int i = 0; i < 3; i++)
		check_writer_result(ix, i);
	struct mfs_ix_totals t;
	cr_assert_eq(mfs_ix_totals(ix, &t), 0);
	cr_assert_eq(t.blocks, 3 * CONC_OPS);
	cr_assert_eq(t.stored_bytes, 3 * CONC_OPS * 17);
	cr_assert_eq(t.commits, 3 * (CONC_OPS / 100));
	mfs_ix_close(ix);
}

/* Several threads sharing ONE handle: the mutex must serialize them. */
struct shared_arg {
	struct mfs_ix *ix;
	int id, failures;
};

static void *shared_thread(void *p)
{
	struct shared_arg *a = p;
	char cid[65];
	uint32_t bs = 100;
	uint8_t bm[(200 + 7) / 8];

	mkcid64(cid, 300 + (unsigned)a->id);
	if (mfs_ix_blob_ensure(a->ix, cid, 200 * 100, &bs))
		a->failures++;
	for (uint32_t i = 0; i < 200; i++) {
		if (mfs_ix_block_add(a->ix, cid, i, i))
			a->failures++;
		if (mfs_ix_blocks_get(a->ix, cid, bm, 200) || !((bm[i / 8] >> (i % 8)) & 1))
			a->failures++;
	}
	return NULL;
}

Test(index, threads_share_one_handle)
{
	struct mfs_ix *ix = xopen();
	struct shared_arg a[4];
	pthread_t th[4];
	struct mfs_ix_totals t;

	for (int i = 0; i < 4; i++) {
		a[i] = (struct shared_arg){ .ix = ix, .id = i };
		pthread_create(&th[i], NULL, shared_thread, &a[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(a[i].failures, 0, "thread %d", i);
	cr_assert_eq(mfs_ix_totals(ix, &t), 0);
	cr_assert_eq(t.blocks, 800);
	cr_assert_eq(t.stored_bytes, 4 * (199 * 200 / 2));
	mfs_ix_close(ix);
}
