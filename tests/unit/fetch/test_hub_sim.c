/*
 * test_hub_sim.c - fetch/ against the real hub simulator (tests/hubsim).
 *
 * Each test gets a fresh temp dir with a few repos (regular files, an LFS
 * file of random bytes, a private and a gated repo, tokens) and a fresh
 * simulator process; expected bytes are read back from the files on disk and
 * expected digests computed with util/hash, never copied from the server.
 * Covers metadata, paging, reads through resolve-cache and the CDN, auth and
 * token containment, and the fault kinds the simulator can inject.
 * It does not test content corruption (a ranged read cannot detect it).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fetch/health.h"
#include "fetch/hub.h"
#include "simproc.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/size.h"
#include "util/strbuf.h"

#define LFS_SIZE ((3u << 20) + 12345u)

static struct simproc sim = { .pid = -1 };
static char root[PATH_MAX];
static unsigned char *lfs_bytes;

static void wfile(const char *rel, const void *d, size_t n)
{
	cr_assert_eq(simproc_write_file(root, rel, d, n), 0, "writing %s", rel);
}

static void wtext(const char *rel, const char *s)
{
	wfile(rel, s, strlen(s));
}

static void setup(void)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;

	/* MFS_TEST_DEBUG=1 shows the client's request log */
	mfs_log_set_level(getenv("MFS_TEST_DEBUG") ? MFS_LOG_DEBUG : MFS_LOG_ERROR);
	snprintf(root, sizeof(root), "/tmp/mfs-fetch-sim-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	lfs_bytes = malloc(LFS_SIZE);
	cr_assert_not_null(lfs_bytes);
	for (size_t i = 0; i < LFS_SIZE; i += 256)
		cr_assert(getrandom(lfs_bytes + i, LFS_SIZE - i < 256 ? LFS_SIZE - i : 256, 0) > 0);
	for (int i = 0; i < 200; i++)
		mfs_strbuf_printf(&sb, "line %03d of the readme, some text to read back\n", i);
	wfile("models/org/plain/main/README.md", sb.buf, sb.len);
	mfs_strbuf_free(&sb);
	wtext("models/org/plain/main/config.json", "{\"hidden_size\": 64}\n");
	wtext("models/org/plain/main/odd name +(1).txt", "odd but fine\n");
	wtext("models/org/plain/main/sub/dir/notes.txt", "nested notes\n");
	wfile("models/org/plain/main/weights.bin", lfs_bytes, LFS_SIZE);
	wtext("models/org/plain/repo.json",
	      "{\"tags\": {\"v1.0\": \"main\"}, \"renamed_from\": [\"org/oldname\"]}");
	wtext("models/org/private/main/secret.txt", "top secret\n");
	wtext("models/org/private/repo.json", "{\"private\": true, \"tokens\": [\"hf_good\"]}");
	wtext("models/org/gated/main/small.txt", "gated small\n");
	wfile("models/org/gated/main/g.bin", lfs_bytes, 100000);
	wtext("models/org/gated/repo.json", "{\"gated\": \"manual\", \"tokens\": [\"hf_good\"]}");
	wtext("datasets/org/ds/main/data.csv", "a,b\n1,2\n3,4\n");
	wtext("tokens.json", "{\"hf_good\": {\"user\": \"alice\"}, \"hf_other\": {\"user\": \"bob\"}}");
	cr_assert_eq(simproc_start(&sim, root), 0, "could not start the hub simulator");
}

static void teardown(void)
{
	simproc_stop(&sim);
	if (root[0])
		simproc_rmtree(root);
	free(lfs_bytes);
	lfs_bytes = NULL;
}

TestSuite(sim, .init = setup, .fini = teardown, .timeout = 120);

/* ---------------- helpers ---------------- */

static struct mfs_hub *mkhub_t(const char *token, long fetch_timeout_ms)
{
	struct mfs_hub_config cfg = {
		.endpoint = sim.hub, .token = token, .connect_timeout_ms = 2000,
		.fetch_timeout_ms = fetch_timeout_ms, .max_retries = 3, .max_backoff_ms = 1000,
		.proxy = "", /* never an environment proxy: 127.0.0.1 only */
	};
	struct mfs_hub *hub = NULL;

	cr_assert_eq(mfs_hub_new(&cfg, &hub), 0);
	return hub;
}

static struct mfs_hub *mkhub(const char *token)
{
	return mkhub_t(token, 30000);
}

static void fault(const char *json)
{
	cr_assert_eq(simproc_control(&sim, "/_sim/fault", json, NULL), 200, "fault %s", json);
}

static unsigned char *disk(const char *rel, size_t *len)
{
	char p[PATH_MAX + 256];
	FILE *f;
	unsigned char *b;
	long n;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	f = fopen(p, "rb");
	cr_assert_not_null(f, "%s", p);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void commit_of(struct mfs_hub *hub, const struct mfs_repo *r, char sha[41])
{
	struct mfs_repo_info ri;

	cr_assert_eq(mfs_hub_repo_info(hub, r, "main", &ri), 0);
	memcpy(sha, ri.sha, 41);
}

/* Collects what the sink receives and checks it is in order, contiguous
 * and inside the asked range. */
struct coll {
	unsigned char *buf;
	uint64_t off, len, next;
	bool disorder;
	int calls;
	int cancel_at; /* >0: return -1 on that call */
};

static int coll_sink(void *ctx, uint64_t off, const void *d, size_t n)
{
	struct coll *c = ctx;

	c->calls++;
	if (c->cancel_at && c->calls >= c->cancel_at)
		return -1;
	if (off != c->next || n == 0 || off + n > c->off + c->len) {
		c->disorder = true;
		return 0;
	}
	memcpy(c->buf + (off - c->off), d, n);
	c->next = off + n;
	return 0;
}

static void coll_init(struct coll *c, uint64_t off, uint64_t len)
{
	memset(c, 0, sizeof(*c));
	c->buf = malloc(len ? len : 1);
	c->off = off;
	c->len = len;
	c->next = off;
}

/* Reads [off, off+len) and returns rc; checks that whatever was delivered
 * (all of it when rc == 0) equals the file's bytes on disk. */
static int read_check(struct mfs_hub *hub, const struct mfs_file_ref *f, const unsigned char *want,
		      uint64_t off, uint64_t len)
{
	struct coll c;
	int rc;

	coll_init(&c, off, len);
	rc = mfs_hub_read(hub, f, off, len, coll_sink, &c);
	cr_expect(!c.disorder, "sink got bytes out of order or twice");
	if (rc == 0)
		cr_expect_eq(c.next, off + len, "short read at rc 0");
	cr_expect(memcmp(c.buf, want + off, c.next - off) == 0,
		  "wrong bytes delivered in [%llu,%llu)", (unsigned long long)off,
		  (unsigned long long)c.next);
	free(c.buf);
	return rc;
}

static const struct mfs_repo PLAIN = { MFS_REPO_MODEL, "org/plain" };
static const struct mfs_repo GATED = { MFS_REPO_MODEL, "org/gated" };
static const struct mfs_repo PRIV = { MFS_REPO_MODEL, "org/private" };

/* ---------------- metadata ---------------- */

Test(sim, repo_info_revisions_and_errors)
{
	struct mfs_hub *hub = mkhub(NULL), *good = mkhub("hf_good"), *bad = mkhub("hf_nope");
	struct mfs_repo_info ri, ri2;
	struct mfs_repo missing = { MFS_REPO_MODEL, "org/missing" };
	struct mfs_repo old = { MFS_REPO_MODEL, "org/oldname" };
	struct mfs_repo ds = { MFS_REPO_DATASET, "org/ds" };

	cr_assert_eq(mfs_hub_repo_info(hub, &PLAIN, "main", &ri), 0);
	cr_expect_str_eq(ri.id, "org/plain");
	cr_expect(mfs_hex_valid(ri.sha, 40));
	cr_expect_gt(ri.last_modified_s, 1500000000);
	cr_expect(!ri.private_);
	cr_expect_str_eq(ri.gated, "false");
	cr_assert_eq(mfs_hub_repo_info(hub, &PLAIN, NULL, &ri2), 0);
	cr_expect_str_eq(ri2.sha, ri.sha);
	cr_assert_eq(mfs_hub_repo_info(hub, &PLAIN, "v1.0", &ri2), 0);
	cr_expect_str_eq(ri2.sha, ri.sha);
	cr_assert_eq(mfs_hub_repo_info(hub, &PLAIN, ri.sha, &ri2), 0);
	cr_expect_str_eq(ri2.sha, ri.sha);
	cr_expect_eq(mfs_hub_repo_info(hub, &PLAIN, "nope", &ri2), -ENOENT);
	cr_expect_eq(mfs_hub_repo_info(hub, &PLAIN, "refs/pr/1", &ri2), -ENOENT);
	cr_expect_eq(mfs_hub_repo_info(hub, &missing, "main", &ri2), -ENOENT);
	/* renamed repo: relative 307 followed by hand */
	cr_assert_eq(mfs_hub_repo_info(hub, &old, "main", &ri2), 0);
	cr_expect_str_eq(ri2.id, "org/plain");
	cr_expect_str_eq(ri2.sha, ri.sha);
	/* private: anonymous cannot tell it exists; a token with access can */
	cr_expect_eq(mfs_hub_repo_info(hub, &PRIV, "main", &ri2), -ENOENT);
	cr_assert_eq(mfs_hub_repo_info(good, &PRIV, "main", &ri2), 0);
	cr_expect(ri2.private_);
	/* gated: metadata is public */
	cr_assert_eq(mfs_hub_repo_info(hub, &GATED, "main", &ri2), 0);
	cr_expect_str_eq(ri2.gated, "manual");
	/* an invalid token is refused everywhere */
	cr_expect_eq(mfs_hub_repo_info(bad, &PLAIN, "main", &ri2), -EACCES);
	cr_assert_eq(mfs_hub_repo_info(hub, &ds, "main", &ri2), 0);
	cr_expect_str_eq(ri2.id, "org/ds");
	/* no retries for these: each was one request (plus the rename hop) */
	cr_expect_eq(simproc_stat(&sim, "requests", "api"), 14);
	mfs_hub_free(hub);
	mfs_hub_free(good);
	mfs_hub_free(bad);
}

static void hex_of(const uint8_t *d, size_t n, char *out)
{
	mfs_hex(d, n, out);
}

Test(sim, list_tree_matches_disk)
{
	struct mfs_hub *hub = mkhub(NULL);
	struct mfs_entry *v;
	size_t n, len;
	char sha[41], want[65];
	const char *paths[] = { "README.md", "config.json", "odd name +(1).txt", "sub", "sub/dir",
				"sub/dir/notes.txt", "weights.bin" };

	commit_of(hub, &PLAIN, sha);
	cr_assert_eq(mfs_hub_list_tree(hub, &PLAIN, sha, &v, &n), 0);
	cr_assert_eq(n, 7);
	for (size_t i = 0; i < n; i++)
		cr_expect_str_eq(v[i].path, paths[i]);
	cr_expect_eq(v[3].kind, MFS_KIND_DIR);
	cr_expect_eq(v[4].kind, MFS_KIND_DIR);

	/* LFS file: size and sha256 of the content */
	cr_expect_eq(v[6].kind, MFS_KIND_FILE);
	cr_expect_eq(v[6].size, LFS_SIZE);
	{
		uint8_t d[32];
		cr_assert_eq(mfs_sha256(lfs_bytes, LFS_SIZE, d), 0);
		hex_of(d, 32, want);
		cr_expect_str_eq(v[6].sha256, want);
		cr_expect(mfs_hex_valid(v[6].xet_hash, 64));
	}
	/* regular file: git blob sha1 of the content, no sha256 */
	{
		unsigned char *b = disk("models/org/plain/main/README.md", &len);
		struct mfs_digest c = MFS_DIGEST_IDLE;
		uint8_t d[32];
		cr_assert_eq(mfs_digest_start_gitblob(&c, len), 0);
		mfs_digest_update(&c, b, len);
		cr_assert_eq(mfs_digest_finish(&c, d), 20);
		hex_of(d, 20, want);
		cr_expect_str_eq(v[0].oid, want);
		cr_expect_eq(v[0].size, len);
		cr_expect_str_eq(v[0].sha256, "");
		free(b);
	}
	mfs_entries_free(v, n);
	cr_expect_eq(mfs_hub_list_tree(hub, &PLAIN, "0000000000000000000000000000000000000000", &v,
				       &n), -ENOENT);
	mfs_hub_free(hub);
}

Test(sim, list_tree_paging)
{
	struct mfs_hub *hub;
	struct mfs_entry *v;
	size_t n;
	char sha[41], rel[128];
	const struct mfs_repo big = { MFS_REPO_MODEL, "org/big" };

	for (int i = 0; i < 2100; i++) {
		snprintf(rel, sizeof(rel), "models/org/big/main/d%d/f%04d.txt", i % 3, i);
		wtext(rel, "x");
	}
	hub = mkhub(NULL);
	commit_of(hub, &big, sha);
	cr_assert_eq(simproc_control(&sim, "/_sim/reset_stats", "{}", NULL), 200);
	cr_assert_eq(mfs_hub_list_tree(hub, &big, sha, &v, &n), 0);
	/* 2100 files + 3 dirs = 2103 entries, at 1000 per page = 3 pages */
	cr_expect_eq(n, 2103);
	cr_expect_eq(simproc_stat(&sim, "requests", "api"), 3);
	for (size_t i = 1; i < n; i++)
		cr_expect(strcmp(v[i - 1].path, v[i].path) < 0);
	mfs_entries_free(v, n);
	mfs_hub_free(hub);
}

Test(sim, hostile_tree_fault)
{
	struct mfs_hub *hub = mkhub(NULL);
	struct mfs_entry *v;
	size_t n;
	char sha[41];

	commit_of(hub, &PLAIN, sha);
	fault("{\"kind\":\"hostile_tree\",\"route\":\"api\",\"entries\":["
	      "{\"type\":\"file\",\"path\":\"../evil\",\"size\":1,\"oid\":\"0123456789abcdef0123456789abcdef01234567\"},"
	      "{\"type\":\"file\",\"path\":\"README.md\",\"size\":1,\"oid\":\"0123456789abcdef0123456789abcdef01234567\"},"
	      "{\"type\":\"file\",\"path\":\"weights.bin/inner\",\"size\":1,\"oid\":\"0123456789abcdef0123456789abcdef01234567\"},"
	      "{\"type\":\"file\",\"path\":\"/etc/passwd\",\"size\":1,\"oid\":\"0123456789abcdef0123456789abcdef01234567\"},"
	      "{\"type\":\"file\",\"path\":\"ok/new.txt\",\"size\":-5,\"oid\":\"0123456789abcdef0123456789abcdef01234567\"},"
	      "\"junk\", 7]}");
	cr_assert_eq(mfs_hub_list_tree(hub, &PLAIN, sha, &v, &n), 0);
	cr_expect_eq(n, 7);
	for (size_t i = 0; i < n; i++) {
		cr_expect(strstr(v[i].path, "evil") == NULL && v[i].path[0] != '/');
		cr_expect(strncmp(v[i].path, "weights.bin/", 12) != 0);
		cr_expect(strncmp(v[i].path, "ok", 2) != 0);
		if (strcmp(v[i].path, "README.md") == 0)
			cr_expect_gt(v[i].size, 1, "the first README.md listing wins");
	}
	mfs_entries_free(v, n);
	mfs_hub_free(hub);
}

Test(sim, org_exists)
{
	struct mfs_hub *hub = mkhub(NULL);

	cr_expect_eq(mfs_hub_org_exists(hub, MFS_REPO_MODEL, "org"), 1);
	cr_expect_eq(mfs_hub_org_exists(hub, MFS_REPO_MODEL, "nobody"), 0);
	cr_expect_eq(mfs_hub_org_exists(hub, MFS_REPO_DATASET, "org"), 1);
	mfs_hub_free(hub);
}

/* ---------------- reads ---------------- */

struct fixture {
	struct mfs_hub *hub;
	char sha[41];
	struct mfs_file_ref readme, lfs;
	unsigned char *readme_bytes;
	size_t readme_len;
};

static void fx_init(struct fixture *fx, const char *token, long fetch_timeout_ms)
{
	struct mfs_hub *anon = mkhub(NULL);

	memset(fx, 0, sizeof(*fx));
	fx->hub = mkhub_t(token, fetch_timeout_ms);
	commit_of(anon, &PLAIN, fx->sha);
	mfs_hub_free(anon);
	fx->readme_bytes = disk("models/org/plain/main/README.md", &fx->readme_len);
	fx->readme = (struct mfs_file_ref){ &PLAIN, fx->sha, "README.md", fx->readme_len, false };
	fx->lfs = (struct mfs_file_ref){ &PLAIN, fx->sha, "weights.bin", LFS_SIZE, true };
	cr_assert_eq(simproc_control(&sim, "/_sim/reset_stats", "{}", NULL), 200);
}

static void fx_fini(struct fixture *fx)
{
	mfs_hub_free(fx->hub);
	free(fx->readme_bytes);
}

Test(sim, read_regular_ranges)
{
	struct fixture fx;
	size_t oddlen, L;
	unsigned char *odd;

	fx_init(&fx, NULL, 30000);
	L = fx.readme_len;
	cr_expect_eq(read_check(fx.hub, &fx.readme, fx.readme_bytes, 0, L), 0);
	cr_expect_eq(read_check(fx.hub, &fx.readme, fx.readme_bytes, 0, 1), 0);
	cr_expect_eq(read_check(fx.hub, &fx.readme, fx.readme_bytes, L - 1, 1), 0);
	cr_expect_eq(read_check(fx.hub, &fx.readme, fx.readme_bytes, 1000, 2500), 0);
	/* the server got exactly the ranges we asked for */
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve-cache"), 4);

	odd = disk("models/org/plain/main/odd name +(1).txt", &oddlen);
	struct mfs_file_ref of = { &PLAIN, fx.sha, "odd name +(1).txt", oddlen, false };
	cr_expect_eq(read_check(fx.hub, &of, odd, 0, oddlen), 0);
	free(odd);

	struct mfs_file_ref missing = { &PLAIN, fx.sha, "nope.txt", 10, false };
	struct coll c;
	coll_init(&c, 0, 10);
	uint64_t before = (uint64_t)simproc_stat(&sim, "requests", "resolve");
	cr_expect_eq(mfs_hub_read(fx.hub, &missing, 0, 10, coll_sink, &c), -ENOENT);
	cr_expect_eq((uint64_t)simproc_stat(&sim, "requests", "resolve"), before + 1,
		     "404 must not be retried");
	free(c.buf);

	const struct mfs_repo ds = { MFS_REPO_DATASET, "org/ds" };
	char dsha[41];
	size_t dlen;
	unsigned char *dd = disk("datasets/org/ds/main/data.csv", &dlen);
	commit_of(fx.hub, &ds, dsha);
	struct mfs_file_ref df = { &ds, dsha, "data.csv", dlen, false };
	cr_expect_eq(read_check(fx.hub, &df, dd, 2, dlen - 2), 0);
	free(dd);
	fx_fini(&fx);
}

/* Issue 15: once /resolve sent one regular file to its resolve-cache URL,
 * the other regular files of the hub are asked there directly: one
 * request each, no /resolve. A direct URL that fails is not trusted for
 * that read: it goes through /resolve. */
Test(sim, regular_files_after_the_first_cost_one_request)
{
	struct fixture fx;
	size_t oddlen;
	unsigned char *odd = disk("models/org/plain/main/odd name +(1).txt", &oddlen);
	struct mfs_file_ref of = { &PLAIN, fx.sha, "odd name +(1).txt", oddlen, false };

	fx_init(&fx, NULL, 30000);
	of.commit = fx.sha;
	cr_expect_eq(read_check(fx.hub, &fx.readme, fx.readme_bytes, 0, 10), 0);
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve"), 1);
	cr_expect_eq(read_check(fx.hub, &of, odd, 0, oddlen), 0);
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve"), 1, "no /resolve for the second");
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve-cache"), 2);

	/* the direct URL answers 404 once: /resolve, then its target */
	fault("{\"kind\":\"status\",\"status\":404,\"route\":\"resolve-cache\",\"count\":1}");
	cr_expect_eq(read_check(fx.hub, &of, odd, 1, oddlen - 1), 0);
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve"), 2);
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve-cache"), 4);
	/* LFS files still go through /resolve (their bytes are on the CDN) */
	struct coll c;
	coll_init(&c, 0, 100);
	cr_expect_eq(mfs_hub_read(fx.hub, &fx.lfs, 0, 100, coll_sink, &c), 0);
	free(c.buf);
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve"), 3);
	free(odd);
	fx_fini(&fx);
}

Test(sim, read_lfs_via_cdn_without_token_leak)
{
	struct fixture fx;
	struct mfs_hub_health h;

	fx_init(&fx, "hf_good", 30000);
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 0, LFS_SIZE), 0);
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, LFS_SIZE - 1, 1), 0);
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 0, 1), 0);
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 1 << 20, 1 << 20), 0);
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 12345, 4096), 0);
	/* the token went to the hub and never to the CDN */
	cr_expect_eq(simproc_stat(&sim, "cdn_auth_seen", NULL), 0);
	cr_expect_geq(simproc_stat(&sim, "auth_seen_hub", NULL), 1);
	/* the signed URL is remembered: one resolve, then straight to the CDN */
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve"), 1);
	cr_expect_eq(simproc_stat(&sim, "requests", "cdn"), 5);
	mfs_hub_health(fx.hub, &h);
	cr_expect_eq(h.requests, 6);
	cr_expect_geq(h.body_bytes, (uint64_t)LFS_SIZE + 1 + 1 + (1u << 20) + 4096);
	cr_expect_gt(h.last_ok_ms, 0);
	cr_expect_eq(h.last_down_ms, 0);
	cr_expect_eq(h.retries, 0);
	fx_fini(&fx);
}

Test(sim, renamed_repo_read)
{
	struct fixture fx;
	const struct mfs_repo old = { MFS_REPO_MODEL, "org/oldname" };

	fx_init(&fx, NULL, 30000);
	struct mfs_file_ref f = { &old, fx.sha, "README.md", fx.readme_len, false };
	cr_expect_eq(read_check(fx.hub, &f, fx.readme_bytes, 10, 100), 0);
	fx_fini(&fx);
}

Test(sim, gated_and_private_access)
{
	struct mfs_hub *anon = mkhub(NULL), *good = mkhub("hf_good"), *other = mkhub("hf_other"),
		       *bad = mkhub("hf_invalid");
	char gsha[41], psha[41];
	size_t glen;
	unsigned char *gb = disk("models/org/gated/main/small.txt", &glen);

	commit_of(anon, &GATED, gsha);
	commit_of(good, &PRIV, psha);
	struct mfs_file_ref gs = { &GATED, gsha, "small.txt", glen, false };
	struct mfs_file_ref gl = { &GATED, gsha, "g.bin", 100000, true };
	struct mfs_file_ref ps = { &PRIV, psha, "secret.txt", 11, false };

	cr_expect_eq(read_check(anon, &gs, gb, 0, glen), -EACCES);
	cr_expect_eq(read_check(anon, &gl, lfs_bytes, 0, 100), -EACCES);
	cr_expect_eq(read_check(other, &gs, gb, 0, glen), -EACCES);
	cr_expect_eq(read_check(bad, &gs, gb, 0, glen), -EACCES);
	cr_expect_eq(read_check(good, &gs, gb, 0, glen), 0);
	cr_expect_eq(read_check(good, &gl, lfs_bytes, 99000, 1000), 0);
	cr_expect_eq(mfs_hub_probe(anon, &gs), -EACCES);
	cr_expect_eq(mfs_hub_probe(good, &gs), 0);

	cr_expect_eq(read_check(anon, &ps, (const unsigned char *)"top secret\n", 0, 11), -ENOENT);
	cr_expect_eq(read_check(other, &ps, (const unsigned char *)"top secret\n", 0, 11), -ENOENT);
	cr_expect_eq(read_check(good, &ps, (const unsigned char *)"top secret\n", 0, 11), 0);
	cr_expect_eq(simproc_stat(&sim, "cdn_auth_seen", NULL), 0);
	free(gb);
	mfs_hub_free(anon);
	mfs_hub_free(good);
	mfs_hub_free(other);
	mfs_hub_free(bad);
}

Test(sim, probe)
{
	struct fixture fx;

	fx_init(&fx, NULL, 30000);
	cr_expect_eq(mfs_hub_probe(fx.hub, &fx.readme), 0);
	cr_expect_eq(mfs_hub_probe(fx.hub, &fx.lfs), 0);
	struct mfs_file_ref missing = { &PLAIN, fx.sha, "nope.txt", 10, false };
	cr_expect_eq(mfs_hub_probe(fx.hub, &missing), -ENOENT);
	/* an LFS probe asks the CDN too (it must be up to serve the bytes):
	 * one HEAD, without the token */
	cr_expect_eq(simproc_stat(&sim, "requests", "cdn"), 1);
	cr_expect_eq(simproc_stat(&sim, "cdn_auth_seen", NULL), 0);
	fx_fini(&fx);
}

Test(sim, sink_cancel)
{
	struct fixture fx;
	struct coll c;

	fx_init(&fx, NULL, 30000);
	coll_init(&c, 0, LFS_SIZE);
	c.cancel_at = 2;
	cr_expect_eq(mfs_hub_read(fx.hub, &fx.lfs, 0, LFS_SIZE, coll_sink, &c), -ECANCELED);
	cr_expect_eq(c.calls, 2, "no sink call after it asked to stop");
	free(c.buf);
	fx_fini(&fx);
}

/* ---------------- faults ---------------- */

Test(sim, retry_503_then_success)
{
	struct fixture fx;
	struct mfs_hub_health h;
	int64_t t0;

	fx_init(&fx, NULL, 30000);
	fault("{\"kind\":\"status\",\"status\":503,\"route\":\"cdn\",\"count\":2}");
	t0 = mfs_now_ms();
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 100, 5000), 0);
	cr_expect_geq(mfs_now_ms() - t0, 560, "two backoff waits (>= 3/4 of 250 + 500 ms)");
	mfs_hub_health(fx.hub, &h);
	cr_expect_eq(h.retries, 2);
	cr_expect_eq(simproc_stat(&sim, "requests", "cdn"), 3);
	/* persistent failure: three 5xx in a row and the origin is down; the
	 * read gives up at once (no fourth request) */
	fault("{\"kind\":\"status\",\"status\":502,\"route\":\"resolve-cache\",\"count\":100}");
	cr_expect_eq(read_check(fx.hub, &fx.readme, fx.readme_bytes, 0, 10), -EHOSTDOWN);
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve-cache"), 3, "3 tries, then down");
	cr_expect_not(mfs_hub_up(fx.hub));
	fx_fini(&fx);
}

Test(sim, retry_429_retry_after_and_ratelimit)
{
	struct fixture fx;
	int64_t t0, dt;

	fx_init(&fx, NULL, 30000);
	fault("{\"kind\":\"status\",\"status\":429,\"route\":\"resolve-cache\",\"retry_after\":1}");
	t0 = mfs_now_ms();
	cr_expect_eq(read_check(fx.hub, &fx.readme, fx.readme_bytes, 5, 50), 0);
	dt = mfs_now_ms() - t0;
	cr_expect_geq(dt, 1900, "Retry-After: 1 means waiting 1+1 s, took %lld ms", (long long)dt);
	/* RateLimit "r=0;t=1" on a 429: wait t+1 s too */
	fault("{\"kind\":\"status\",\"status\":429,\"route\":\"api\",\"ratelimit_reset\":1}");
	t0 = mfs_now_ms();
	struct mfs_repo_info ri;
	cr_expect_eq(mfs_hub_repo_info(fx.hub, &PLAIN, "main", &ri), 0);
	dt = mfs_now_ms() - t0;
	cr_expect_geq(dt, 1900, "RateLimit t=1 means waiting 2 s, took %lld ms", (long long)dt);
	/* a wait beyond the deadline is not slept: fail right away */
	struct mfs_hub *quick = mkhub_t(NULL, 1500);
	fault("{\"kind\":\"status\",\"status\":429,\"route\":\"resolve-cache\",\"retry_after\":30}");
	t0 = mfs_now_ms();
	cr_expect_lt(read_check(quick, &fx.readme, fx.readme_bytes, 0, 10), 0);
	cr_expect_lt(mfs_now_ms() - t0, 1000);
	mfs_hub_free(quick);
	fx_fini(&fx);
}

Test(sim, reset_mid_body_resumes)
{
	struct fixture fx;
	struct mfs_hub_health h;
	struct mfs_json *st = NULL;

	fx_init(&fx, NULL, 30000);
	fault("{\"kind\":\"reset\",\"route\":\"cdn\",\"after_bytes\":1048576}");
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 0, LFS_SIZE), 0);
	mfs_hub_health(fx.hub, &h);
	cr_expect_geq(h.retries, 1);
	cr_expect_eq(simproc_stat(&sim, "requests", "cdn"), 2);
	/* the second request asked for the rest only (resumed, not restarted) */
	cr_assert_eq(simproc_stats(&sim, &st), 0);
	const struct mfs_json *r = mfs_json_get(st, "ranges");
	cr_assert_eq(mfs_json_len(r), 2);
	int64_t s1 = -1, e1 = -1;
	mfs_json_int(mfs_json_at(mfs_json_at(r, 1), 2), &s1);
	mfs_json_int(mfs_json_at(mfs_json_at(r, 1), 3), &e1);
	cr_expect_gt(s1, 0, "resume started at %lld", (long long)s1);
	cr_expect_eq(e1, LFS_SIZE - 1);
	mfs_json_free(st);
	fx_fini(&fx);
}

Test(sim, stall_mid_body_resumes)
{
	struct fixture fx;

	/* 4 s stall detection (half the budget), 8 s for the call */
	fx_init(&fx, NULL, 8000);
	fault("{\"kind\":\"stall\",\"route\":\"cdn\",\"when\":\"mid\",\"after_bytes\":65536,"
	      "\"seconds\":20}");
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 0, 1 << 20), 0);
	fx_fini(&fx);
}

Test(sim, ignore_range_is_sliced)
{
	struct fixture fx;

	fx_init(&fx, NULL, 30000);
	fault("{\"kind\":\"ignore_range\",\"route\":\"cdn\"}");
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 777777, 4321), 0);
	fault("{\"kind\":\"ignore_range\",\"route\":\"resolve-cache\"}");
	cr_expect_eq(read_check(fx.hub, &fx.readme, fx.readme_bytes, 100, 200), 0);
	cr_expect_eq(simproc_stat(&sim, "requests", "cdn"), 1, "a 200 is used, not retried");
	fx_fini(&fx);
}

Test(sim, short_long_and_bad_content_range)
{
	struct fixture fx;

	fx_init(&fx, NULL, 30000);
	fault("{\"kind\":\"short\",\"route\":\"cdn\"}");
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 10, 200000), 0);
	fault("{\"kind\":\"long\",\"route\":\"cdn\",\"extra\":16}");
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 20, 300000), 0);
	fault("{\"kind\":\"long\",\"route\":\"cdn\",\"extra\":16,\"mode\":\"framing\"}");
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 30, 400000), 0);
	fault("{\"kind\":\"bad_content_range\",\"route\":\"cdn\",\"delta\":1}");
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 40, 500000), 0);
	fault("{\"kind\":\"long\",\"route\":\"resolve-cache\",\"extra\":5}");
	cr_expect_eq(read_check(fx.hub, &fx.readme, fx.readme_bytes, 0, fx.readme_len), 0);
	fx_fini(&fx);
}

Test(sim, persistent_liar_delivers_nothing)
{
	struct fixture fx;
	struct coll c;

	fx_init(&fx, NULL, 30000);
	fault("{\"kind\":\"bad_content_range\",\"route\":\"cdn\",\"delta\":-1,\"count\":100}");
	coll_init(&c, 5000, 1000);
	cr_expect_eq(mfs_hub_read(fx.hub, &fx.lfs, 5000, 1000, coll_sink, &c), -EIO);
	cr_expect_eq(c.calls, 0, "no byte of a lying response may reach the sink");
	free(c.buf);
	cr_assert_eq(simproc_control(&sim, "/_sim/clear", "{}", NULL), 200);
	fault("{\"kind\":\"long\",\"route\":\"cdn\",\"count\":100}");
	coll_init(&c, 0, 1000);
	cr_expect_eq(mfs_hub_read(fx.hub, &fx.lfs, 0, 1000, coll_sink, &c), -EIO);
	cr_expect_eq(c.calls, 0);
	free(c.buf);
	fx_fini(&fx);
}

Test(sim, expired_url_is_renewed)
{
	struct fixture fx;

	fx_init(&fx, NULL, 30000);
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 0, 100), 0);
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 100, 100), 0);
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve"), 1);
	fault("{\"kind\":\"expire_urls\",\"route\":\"cdn\"}");
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 200, 100), 0);
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve"), 2, "re-resolved once");
	cr_expect_eq(simproc_stat(&sim, "requests", "cdn"), 4);

	/* URLs valid for less than the renewal margin are never reused */
	cr_assert_eq(simproc_control(&sim, "/_sim/config", "{\"url_ttl\": 10}", NULL), 200);
	struct mfs_hub *fresh = mkhub(NULL);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(read_check(fresh, &fx.lfs, lfs_bytes, (uint64_t)i * 1000, 10), 0);
	cr_expect_eq(simproc_stat(&sim, "requests", "resolve"), 5);
	mfs_hub_free(fresh);
	fx_fini(&fx);
}

Test(sim, offline_fails_fast)
{
	struct fixture fx;
	struct mfs_hub_health h;
	struct mfs_repo_info ri;
	int64_t t0;

	fx_init(&fx, NULL, 30000);
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 0, 10), 0);
	cr_assert_eq(simproc_control(&sim, "/_sim/offline", "{\"offline\": true}", NULL), 200);
	t0 = mfs_now_ms();
	cr_expect_eq(read_check(fx.hub, &fx.readme, fx.readme_bytes, 0, 10), -EHOSTDOWN);
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 0, 10), -EHOSTDOWN);
	/* the first stall may be on a reused connection (not held against the
	 * hub); the deadline or the fresh connection's stall ends it */
	int rc = mfs_hub_repo_info(fx.hub, &PLAIN, "main", &ri);
	cr_expect(rc == -ETIMEDOUT || rc == -EHOSTDOWN, "rc %d", rc);
	cr_expect_eq(mfs_hub_probe(fx.hub, &fx.readme), -EHOSTDOWN);
	cr_expect_lt(mfs_now_ms() - t0, 1000, "a dead source must fail fast");
	mfs_hub_health(fx.hub, &h);
	cr_expect_gt(h.last_down_ms, 0);
	cr_expect_eq(h.retries, 0);
	cr_assert_eq(simproc_control(&sim, "/_sim/offline", "{\"offline\": false}", NULL), 200);
	/* back: the background probe (1 s after going down) notices */
	t0 = mfs_now_ms();
	cr_expect(mfs_health_wait_up(mfs_hub_healthset(fx.hub), mfs_hub_health_id(fx.hub), 5000));
	cr_expect_lt(mfs_now_ms() - t0, 3000);
	cr_expect_eq(read_check(fx.hub, &fx.readme, fx.readme_bytes, 0, 10), 0);
	mfs_hub_health(fx.hub, &h);
	cr_expect_gt(h.last_ok_ms, h.last_down_ms);
	fx_fini(&fx);
}

Test(sim, stall_beyond_timeout)
{
	struct fixture fx;
	int64_t t0, dt;

	fx_init(&fx, NULL, 2000);
	fault("{\"kind\":\"stall\",\"route\":\"cdn\",\"seconds\":10,\"count\":100}");
	t0 = mfs_now_ms();
	/* no reply on a fresh connection: the CDN is down, not retried */
	cr_expect_eq(read_check(fx.hub, &fx.lfs, lfs_bytes, 0, 100), -EHOSTDOWN);
	dt = mfs_now_ms() - t0;
	/* at least one stall-detection period (1 s here); once no retry can
	 * finish before the deadline the call gives up without sleeping */
	cr_expect_geq(dt, 900);
	cr_expect_leq(dt, 3000, "bounded by ~1.5 x fetch_timeout, took %lld ms", (long long)dt);
	fault("{\"kind\":\"stall\",\"route\":\"api\",\"seconds\":10,\"count\":100}");
	t0 = mfs_now_ms();
	struct mfs_repo_info ri;
	/* the first stall may be on a reused connection (not held against the
	 * hub); the deadline or the fresh connection's stall ends it */
	int rc = mfs_hub_repo_info(fx.hub, &PLAIN, "main", &ri);
	cr_expect(rc == -ETIMEDOUT || rc == -EHOSTDOWN, "rc %d", rc);
	cr_expect_leq(mfs_now_ms() - t0, 3000);
	fx_fini(&fx);
}

struct par {
	struct mfs_hub *hub;
	const struct mfs_file_ref *f;
	int id;
	int fails;
};

static void *par_reader(void *arg)
{
	struct par *p = arg;

	for (int i = 0; i < 8; i++) {
		uint64_t off = ((uint64_t)(p->id * 8 + i) * 97531u) % (LFS_SIZE - 70000);
		struct coll c;
		coll_init(&c, off, 65536 + (uint64_t)i);
		if (mfs_hub_read(p->hub, p->f, off, c.len, coll_sink, &c) != 0 || c.disorder ||
		    memcmp(c.buf, lfs_bytes + off, c.len) != 0)
			p->fails++;
		free(c.buf);
	}
	return NULL;
}

Test(sim, concurrent_reads_share_one_hub)
{
	struct fixture fx;
	pthread_t th[4];
	struct par p[4];

	fx_init(&fx, "hf_good", 30000);
	for (int i = 0; i < 4; i++) {
		p[i] = (struct par){ fx.hub, &fx.lfs, i, 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, par_reader, &p[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(p[i].fails, 0, "thread %d", i);
	}
	cr_expect_eq(simproc_stat(&sim, "cdn_auth_seen", NULL), 0);
	fx_fini(&fx);
}
