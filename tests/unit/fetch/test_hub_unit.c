/*
 * test_hub_unit.c - fetch/ without a server: URL encoding, header parsers,
 * URL origin rules, status mapping, repo-info and tree-listing validation
 * against hostile JSON.
 *
 * Expected encodings and timestamps were derived independently with
 * Python (urllib.parse.quote, datetime) as docs/architecture.md ("The hub's HTTP API") says.
 * It does not talk to any server: test_hub_sim.c does.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/http.h"
#include "fetch/hub.h"
#include "fetch/hub_internal.h"
#include "util/log.h"
#include "util/strbuf.h"

#define SHA1A "0123456789abcdef0123456789abcdef01234567"
#define SHA256A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void expect_enc(char *(*fn)(const char *), const char *in, const char *want)
{
	char *got = fn(in);
	cr_assert_not_null(got);
	cr_expect_str_eq(got, want, "encode(%s) = %s, want %s", in, got, want);
	free(got);
}

Test(encode, rev_has_no_safe_chars)
{
	expect_enc(mfs_hub_encode_rev, "refs/pr/1", "refs%2Fpr%2F1");
	expect_enc(mfs_hub_encode_rev, "main", "main");
	expect_enc(mfs_hub_encode_rev, "v1.0 ~_-", "v1.0%20~_-");
	expect_enc(mfs_hub_encode_rev, "", "");
}

Test(encode, path_keeps_slash)
{
	expect_enc(mfs_hub_encode_path, "a b+(c).bin", "a%20b%2B%28c%29.bin");
	expect_enc(mfs_hub_encode_path, "dir/sub/x#?.txt", "dir/sub/x%23%3F.txt");
	expect_enc(mfs_hub_encode_path, "\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.bin",
		   "%C3%A9/%E6%97%A5%E6%9C%AC.bin");
}

Test(headers, content_range)
{
	uint64_t a, b, t;
	bool known;

	cr_assert_eq(mfs_http_parse_content_range("bytes 0-9/100", &a, &b, &t, &known), 0);
	cr_expect(a == 0 && b == 9 && t == 100 && known);
	cr_assert_eq(mfs_http_parse_content_range("bytes 5-5/*", &a, &b, &t, &known), 0);
	cr_expect(a == 5 && b == 5 && !known);
	cr_assert_eq(mfs_http_parse_content_range("bytes 1099511627776-1099511627777/1099511627778",
						  &a, &b, &t, &known), 0);
	cr_expect(a == (1ULL << 40) && t == (1ULL << 40) + 2);
	const char *bad[] = { "bytes 9-0/100", "bytes 0-100/100", "bytes */100", "items 0-1/2",
			      "bytes 0-1/2 junk", "bytes 0-99999999999999999999/1", "bytes -1-2/3",
			      "bytes 0-/10", "", "bytes" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(mfs_http_parse_content_range(bad[i], &a, &b, &t, &known), -EINVAL,
			     "accepted %s", bad[i]);
}

Test(headers, link_next)
{
	char *u = NULL;

	cr_assert_eq(mfs_http_parse_link_next("<https://h/a?cursor=x&b=1>; rel=\"next\"", &u), 0);
	cr_expect_str_eq(u, "https://h/a?cursor=x&b=1");
	free(u);
	cr_assert_eq(mfs_http_parse_link_next("<http://p/1>; rel=\"prev\", <http://n/2>; rel=\"next\"",
					      &u), 0);
	cr_expect_str_eq(u, "http://n/2");
	free(u);
	cr_assert_eq(mfs_http_parse_link_next("<http://n/3>; title=\"x, y\"; rel=next", &u), 0);
	cr_expect_str_eq(u, "http://n/3");
	free(u);
	cr_assert_eq(mfs_http_parse_link_next("<http://n/4>; rel=\"last next\"", &u), 0);
	cr_expect_str_eq(u, "http://n/4");
	free(u);
	cr_expect_eq(mfs_http_parse_link_next("<http://n/5>; rel=\"nextpage\"", &u), -ENOENT);
	cr_expect_eq(mfs_http_parse_link_next("<http://n/6>; rel=\"prev\"", &u), -ENOENT);
	cr_expect_eq(mfs_http_parse_link_next("garbage; rel=next", &u), -ENOENT);
	cr_expect_eq(mfs_http_parse_link_next("<unterminated; rel=next", &u), -ENOENT);
	cr_expect_eq(mfs_http_parse_link_next("", &u), -ENOENT);
	cr_expect_null(u);
}

Test(headers, ratelimit_and_retry_after)
{
	long r = -1, t = -1, s = -1;

	cr_assert_eq(mfs_http_parse_ratelimit("\"api\";r=0;t=55", &r, &t), 0);
	cr_expect(r == 0 && t == 55);
	cr_assert_eq(mfs_http_parse_ratelimit("\"resolvers\"; r=12; t=3", &r, &t), 0);
	cr_expect(r == 12 && t == 3);
	cr_expect_eq(mfs_http_parse_ratelimit("\"api\";r=0", &r, &t), -EINVAL);
	cr_expect_eq(mfs_http_parse_ratelimit("\"api\";r=x;t=1", &r, &t), -EINVAL);
	cr_expect_eq(mfs_http_parse_ratelimit("", &r, &t), -EINVAL);

	cr_assert_eq(mfs_http_parse_retry_after("1", &s), 0);
	cr_expect_eq(s, 1);
	cr_assert_eq(mfs_http_parse_retry_after(" 30 ", &s), 0);
	cr_expect_eq(s, 30);
	cr_expect_eq(mfs_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", &s), -EINVAL);
	cr_expect_eq(mfs_http_parse_retry_after("-1", &s), -EINVAL);
	cr_expect_eq(mfs_http_parse_retry_after("", &s), -EINVAL);
	cr_expect_eq(mfs_http_parse_retry_after("99999999999999999999999", &s), -EINVAL);
}

Test(dates, iso8601)
{
	int64_t v = 0;

	cr_assert_eq(mfs_hub_parse_iso8601("2024-02-19T11:06:12.000Z", &v), 0);
	cr_expect_eq(v, 1708340772);
	cr_assert_eq(mfs_hub_parse_iso8601("2024-02-19T12:06:12+01:00", &v), 0);
	cr_expect_eq(v, 1708340772);
	cr_assert_eq(mfs_hub_parse_iso8601("2000-02-29T23:59:59Z", &v), 0);
	cr_expect_eq(v, 951868799);
	cr_assert_eq(mfs_hub_parse_iso8601("1969-12-31T23:00:00Z", &v), 0);
	cr_expect_eq(v, -3600);
	cr_assert_eq(mfs_hub_parse_iso8601("1970-01-01T00:00:00Z", &v), 0);
	cr_expect_eq(v, 0);
	const char *bad[] = { "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
			      "2024-02-19T11:06:12", "2024-02-19", "2024-02-19T24:00:00Z",
			      "2024-02-19T11:06:12.Z", "x024-02-19T11:06:12Z", "",
			      "2024-02-19T11:06:12Zjunk", "1900-02-29T00:00:00Z" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(mfs_hub_parse_iso8601(bad[i], &v), -EINVAL, "accepted %s", bad[i]);
}

Test(urls, origin_join_expires)
{
	char o[256];
	char *u = NULL;
	int64_t e = 0;

	cr_assert_eq(mfs_http_url_origin("http://127.0.0.1:8080/x?y=1", o, sizeof(o)), 0);
	cr_expect_str_eq(o, "http://127.0.0.1:8080");
	cr_assert_eq(mfs_http_url_origin("HTTPS://HF.co/a", o, sizeof(o)), 0);
	cr_expect_str_eq(o, "https://hf.co:443");
	cr_expect_eq(mfs_http_url_origin("ftp://x/y", o, sizeof(o)), -EINVAL);
	cr_expect_eq(mfs_http_url_origin("/relative", o, sizeof(o)), -EINVAL);

	cr_assert_eq(mfs_http_url_join("http://h:1/a/b?q=2", "/api/x?y=1", &u), 0);
	cr_expect_str_eq(u, "http://h:1/api/x?y=1");
	free(u);
	cr_assert_eq(mfs_http_url_join("http://h:1/a/b", "https://cdn.example/z?s=1", &u), 0);
	cr_expect_str_eq(u, "https://cdn.example/z?s=1");
	free(u);
	cr_expect_eq(mfs_http_url_join("http://h:1/a", "file:///etc/passwd", &u), -EINVAL);
	cr_expect_null(u);

	cr_assert_eq(mfs_hub_url_expires("https://c/x?repo=a&Expires=1700000000&Signature=z", &e), 0);
	cr_expect_eq(e, 1700000000);
	cr_expect_eq(mfs_hub_url_expires("https://c/x?X-Expires=5", &e), -ENOENT);
	cr_expect_eq(mfs_hub_url_expires("https://c/x?Expires=12ab", &e), -ENOENT);
	cr_expect_eq(mfs_hub_url_expires("https://c/Expires=5", &e), -ENOENT);
}

Test(errors, status_mapping)
{
	cr_expect_eq(mfs_hub_map_status(401, "RepoNotFound", "Repository not found"), -ENOENT);
	cr_expect_eq(mfs_hub_map_status(404, "RepoNotFound", "Repository not found"), -ENOENT);
	cr_expect_eq(mfs_hub_map_status(404, "RevisionNotFound", "Invalid rev id: x"), -ENOENT);
	cr_expect_eq(mfs_hub_map_status(404, "EntryNotFound", NULL), -ENOENT);
	cr_expect_eq(mfs_hub_map_status(401, "GatedRepo", "restricted"), -EACCES);
	cr_expect_eq(mfs_hub_map_status(403, "GatedRepo", "restricted"), -EACCES);
	cr_expect_eq(mfs_hub_map_status(401, NULL, "Invalid credentials in Authorization header"),
		     -EACCES);
	cr_expect_eq(mfs_hub_map_status(403, NULL, "Access to this resource is disabled."), -EACCES);
	cr_expect_eq(mfs_hub_map_status(404, NULL, NULL), -ENOENT);
	cr_expect_eq(mfs_hub_map_status(400, NULL, NULL), -EIO);
	cr_expect_eq(mfs_hub_map_status(500, NULL, NULL), -EIO);
}

Test(repo_info, parse)
{
	struct mfs_repo_info ri;
	const char *good = "{\"id\":\"Org/Name\",\"sha\":\"0123456789ABCDEF0123456789abcdef01234567\","
			   "\"lastModified\":\"2024-02-19T11:06:12.000Z\",\"private\":true,"
			   "\"gated\":\"manual\"}";

	cr_assert_eq(mfs_hub_parse_repo_info(good, strlen(good), "x/y", &ri), 0);
	cr_expect_str_eq(ri.id, "Org/Name");
	cr_expect_str_eq(ri.sha, SHA1A);
	cr_expect_eq(ri.last_modified_s, 1708340772);
	cr_expect(ri.private_);
	cr_expect_str_eq(ri.gated, "manual");

	const char *plain = "{\"id\":\"../evil\",\"sha\":\"" SHA1A "\",\"gated\":false}";
	cr_assert_eq(mfs_hub_parse_repo_info(plain, strlen(plain), "x/y", &ri), 0);
	cr_expect_str_eq(ri.id, "x/y");
	cr_expect_str_eq(ri.gated, "false");
	cr_expect(!ri.private_);
	cr_expect_eq(ri.last_modified_s, 0);

	const char *bad[] = { "{\"sha\":\"0123\"}", "{\"sha\":\"zz23456789abcdef0123456789abcdef01234567\"}",
			      "[]", "{\"sha\":1}", "not json", "{}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(mfs_hub_parse_repo_info(bad[i], strlen(bad[i]), "x/y", &ri), -EIO,
			     "accepted %s", bad[i]);
}

/* ---------------- tree validation ---------------- */

static FILE *logf_;

static void quiet_log(void)
{
	logf_ = tmpfile();
	cr_assert_not_null(logf_);
	mfs_log_set_file(logf_);
}

static void restore_log(void)
{
	mfs_log_set_file(NULL);
	if (logf_)
		fclose(logf_);
	logf_ = NULL;
}

static size_t log_lines(void)
{
	size_t n = 0;
	int c;

	fflush(logf_);
	rewind(logf_);
	while ((c = fgetc(logf_)) != EOF)
		n += c == '\n';
	return n;
}

static const struct mfs_entry *find(const struct mfs_entry *v, size_t n, const char *p)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].path, p) == 0)
			return &v[i];
	return NULL;
}

#define FILE_E(path, size) \
	"{\"type\":\"file\",\"oid\":\"" SHA1A "\",\"size\":" #size ",\"path\":\"" path "\"}"

TestSuite(tree, .init = quiet_log, .fini = restore_log);

Test(tree, hostile_entries_skipped_good_kept)
{
	struct mfs_hub_tree *t;
	struct mfs_entry *v;
	size_t n;
	const char *page =
		"["
		FILE_E("a.txt", 5) ","
		"{\"type\":\"file\",\"oid\":\"" SHA1A "\",\"size\":1000,\"path\":\"m/model.bin\","
		" \"lfs\":{\"oid\":\"" SHA256A "\",\"size\":1000,\"pointerSize\":134},"
		" \"xetHash\":\"" "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789" "\"},"
		"{\"type\":\"file\",\"oid\":\"" SHA1A "\",\"size\":7,\"path\":\"red.bin\","
		" \"xetHash\":\"****************************************************************\"},"
		FILE_E("..", 1) "," FILE_E("/abs", 1) "," FILE_E("a//b", 1) ","
		FILE_E("a/../b", 1) "," FILE_E("x\\u0000y", 1) "," FILE_E("ctl\\u0001", 1) ","
		FILE_E("", 1) "," FILE_E("trailing/", 1) "," FILE_E("./dot", 1) ","
		FILE_E("neg", -1) "," FILE_E("huge", 1152921504606846976) "," FILE_E("frac", 1.5) ","
		"{\"type\":\"file\",\"oid\":\"" SHA1A "\",\"size\":\"12\",\"path\":\"strsize\"},"
		"{\"type\":\"file\",\"oid\":\"zz23456789abcdef0123456789abcdef01234567\",\"size\":1,"
		" \"path\":\"badoid\"},"
		"{\"type\":\"file\",\"oid\":\"0123456789abcdef0123456789abcdef0123456\",\"size\":1,"
		" \"path\":\"shortoid\"},"
		"{\"type\":\"file\",\"oid\":\"" SHA1A "\",\"size\":9,\"path\":\"badlfs\","
		" \"lfs\":{\"oid\":\"nothex\",\"size\":9}},"
		"{\"type\":\"file\",\"oid\":\"" SHA1A "\",\"size\":9,\"path\":\"lfssize\","
		" \"lfs\":{\"oid\":\"" SHA256A "\",\"size\":10}},"
		"{\"type\":\"unknown\",\"oid\":\"" SHA1A "\",\"size\":1,\"path\":\"unk\"},"
		"{\"type\":\"file\",\"oid\":\"" SHA1A "\",\"size\":1},"
		"42, null, [],"
		"{\"type\":\"file\",\"oid\":\"ffffffffffffffffffffffffffffffffffffffff\",\"size\":99,"
		" \"path\":\"a.txt\"},"                               /* duplicate: first kept */
		FILE_E("d", 3) ","
		"{\"type\":\"directory\",\"oid\":\"" SHA1A "\",\"size\":0,\"path\":\"d\"},"
		FILE_E("d/under", 3) ","                               /* under a file */
		FILE_E("g/child", 3) ","
		FILE_E("g", 3) ","                                     /* file where a dir is */
		"{\"type\":\"directory\",\"oid\":\"" SHA1A "\",\"size\":0,\"path\":\"g\"},"
		FILE_E("deep/er/still/f.txt", 4)
		"]";

	cr_assert_eq(mfs_hub_tree_new(&t), 0);
	cr_assert_eq(mfs_hub_tree_add_page(t, page, strlen(page)), 0);
	size_t skipped = mfs_hub_tree_skipped(t);
	cr_assert_eq(mfs_hub_tree_finish(t, &v, &n), 0);
	mfs_hub_tree_free(t);

	/* kept: a.txt m m/model.bin red.bin d g g/child deep deep/er
	 * deep/er/still deep/er/still/f.txt */
	cr_expect_eq(n, 11, "got %zu entries", n);
	/* 4 duplicate/conflict + 22 invalid */
	cr_expect_eq(skipped, 26, "skipped %zu", skipped);
	for (size_t i = 1; i < n; i++)
		cr_expect(strcmp(v[i - 1].path, v[i].path) < 0, "not sorted at %zu", i);

	const struct mfs_entry *e = find(v, n, "a.txt");
	cr_assert_not_null(e);
	cr_expect_eq(e->size, 5);
	cr_expect_str_eq(e->oid, SHA1A);
	e = find(v, n, "m/model.bin");
	cr_assert_not_null(e);
	cr_expect_str_eq(e->sha256, SHA256A);
	cr_expect_str_eq(e->xet_hash, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	cr_expect_eq(e->kind, MFS_KIND_FILE);
	e = find(v, n, "m");
	cr_assert_not_null(e);
	cr_expect_eq(e->kind, MFS_KIND_DIR);
	e = find(v, n, "red.bin");
	cr_assert_not_null(e);
	cr_expect_str_eq(e->xet_hash, "");
	cr_expect_str_eq(e->sha256, "");
	e = find(v, n, "d");
	cr_assert_not_null(e);
	cr_expect_eq(e->kind, MFS_KIND_FILE);
	e = find(v, n, "g");
	cr_assert_not_null(e);
	cr_expect_eq(e->kind, MFS_KIND_DIR);
	cr_expect_str_eq(e->oid, SHA1A, "explicit dir listing fills the inferred dir");
	cr_expect_null(find(v, n, "d/under"));
	cr_expect_not_null(find(v, n, "deep/er/still"));
	cr_expect_null(find(v, n, "x"));
	/* the warning lines are capped */
	cr_expect_leq(log_lines(), MFS_HUB_TREE_MAX_WARNINGS + 1);
	cr_expect_geq(log_lines(), MFS_HUB_TREE_MAX_WARNINGS);
	mfs_entries_free(v, n);
}

Test(tree, malformed_pages)
{
	struct mfs_hub_tree *t;
	struct mfs_entry *v;
	size_t n;
	const char *good = "[" FILE_E("keep.txt", 1) "]";
	const char *bad_utf8 = "[{\"type\":\"file\",\"oid\":\"" SHA1A "\",\"size\":1,\"path\":\"\xff\xfe\"}]";
	const char *bad[] = { "{}", "not json", "[", "[1,]", "\"x\"", "" };

	cr_assert_eq(mfs_hub_tree_new(&t), 0);
	cr_assert_eq(mfs_hub_tree_add_page(t, good, strlen(good)), 0);
	/* raw invalid UTF-8 loses that entry (skipped by path validation),
	 * not the page: the page is accepted and the bad name never appears */
	cr_expect_eq(mfs_hub_tree_add_page(t, bad_utf8, strlen(bad_utf8)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(mfs_hub_tree_add_page(t, bad[i], strlen(bad[i])), -EIO, "accepted %s",
			     bad[i]);
	cr_assert_eq(mfs_hub_tree_finish(t, &v, &n), 0);
	cr_expect_eq(n, 1);
	cr_expect_str_eq(v[0].path, "keep.txt");
	mfs_entries_free(v, n);
	/* an empty listing is valid too */
	cr_assert_eq(mfs_hub_tree_add_page(t, "[]", 2), 0);
	cr_assert_eq(mfs_hub_tree_finish(t, &v, &n), 0);
	cr_expect_eq(n, 0);
	cr_expect_not_null(v);
	mfs_entries_free(v, n);
	mfs_hub_tree_free(t);
}

Test(tree, many_entries_over_pages, .timeout = 60)
{
	struct mfs_hub_tree *t;
	struct mfs_entry *v;
	size_t n;
	const size_t total = 100000, per = 1000;

	cr_assert_eq(mfs_hub_tree_new(&t), 0);
	/* listed in reverse so sorting is exercised; dirs implicit */
	for (size_t p = 0; p < total / per; p++) {
		struct mfs_strbuf sb = MFS_STRBUF_INIT;
		mfs_strbuf_puts(&sb, "[");
		for (size_t i = 0; i < per; i++) {
			size_t k = total - 1 - (p * per + i);
			mfs_strbuf_printf(&sb, "%s{\"type\":\"file\",\"oid\":\"%s\",\"size\":%zu,"
					  "\"path\":\"d%02zu/f%06zu\"}", i ? "," : "", SHA1A, k, k % 50, k);
		}
		mfs_strbuf_puts(&sb, "]");
		cr_assert_eq(sb.err, 0);
		cr_assert_eq(mfs_hub_tree_add_page(t, sb.buf, sb.len), 0);
		mfs_strbuf_free(&sb);
	}
	cr_assert_eq(mfs_hub_tree_finish(t, &v, &n), 0);
	mfs_hub_tree_free(t);
	cr_expect_eq(n, total + 50);
	cr_expect_str_eq(v[0].path, "d00");
	cr_expect_eq(v[0].kind, MFS_KIND_DIR);
	cr_expect_str_eq(v[1].path, "d00/f000000");
	cr_expect_eq(v[1].size, 0);
	cr_expect_str_eq(v[n - 1].path, "d49/f099999");
	cr_expect_eq(v[n - 1].size, 99999);
	for (size_t i = 1; i < n; i++)
		cr_assert(strcmp(v[i - 1].path, v[i].path) < 0);
	mfs_entries_free(v, n);
}

static char *deep_path(size_t depth)
{
	char *p = malloc(depth * 2);
	for (size_t i = 0; i < depth; i++) {
		p[2 * i] = 'a';
		p[2 * i + 1] = i + 1 < depth ? '/' : '\0';
	}
	return p;
}

Test(tree, deep_paths)
{
	struct mfs_hub_tree *t;
	struct mfs_entry *v;
	size_t n;
	char *p1000 = deep_path(1000), *p200 = deep_path(200);
	struct mfs_strbuf sb = MFS_STRBUF_INIT;

	mfs_strbuf_printf(&sb, "[{\"type\":\"file\",\"oid\":\"%s\",\"size\":1,\"path\":\"%s\"},"
			  "{\"type\":\"file\",\"oid\":\"%s\",\"size\":2,\"path\":\"%s\"}]",
			  SHA1A, p1000, SHA1A, p200);
	cr_assert_eq(mfs_hub_tree_new(&t), 0);
	cr_assert_eq(mfs_hub_tree_add_page(t, sb.buf, sb.len), 0);
	cr_expect_eq(mfs_hub_tree_skipped(t), 1);
	cr_assert_eq(mfs_hub_tree_finish(t, &v, &n), 0);
	cr_expect_eq(n, 200, "199 synthesized dirs + 1 file, got %zu", n);
	const struct mfs_entry *e = find(v, n, p200);
	cr_assert_not_null(e);
	cr_expect_eq(e->size, 2);
	cr_expect_eq(e->kind, MFS_KIND_FILE);
	for (size_t i = 0; i < n; i++)
		cr_expect(v[i].kind == MFS_KIND_DIR || &v[i] == e);
	mfs_entries_free(v, n);
	mfs_hub_tree_free(t);
	mfs_strbuf_free(&sb);
	free(p1000);
	free(p200);
}

/* The kernel refuses a name over 255 bytes at lookup and a readdir entry
 * over 1024: a hostile hub listing such names must not break `ls`, so they
 * are dropped at the listing (issue 12, finding 10). */
Test(tree, names_the_kernel_refuses_are_dropped)
{
	struct mfs_hub_tree *t;
	struct mfs_entry *v;
	size_t n;
	char name255[256], name256[257], *long_path = malloc(1100);
	struct mfs_strbuf sb = MFS_STRBUF_INIT;

	memset(name255, 'n', 255);
	name255[255] = '\0';
	memset(name256, 'm', 256);
	name256[256] = '\0';
	/* 5 components of 200 + 4 slashes + "/x": 1006 ok; one more: over 1024 */
	for (size_t i = 0; i < 1100; i++)
		long_path[i] = i % 201 == 200 ? '/' : 'd';
	long_path[1030] = '\0';
	mfs_strbuf_printf(&sb, "[{\"type\":\"file\",\"oid\":\"%s\",\"size\":1,\"path\":\"%s\"},"
			  "{\"type\":\"file\",\"oid\":\"%s\",\"size\":2,\"path\":\"dir/%s\"},"
			  "{\"type\":\"file\",\"oid\":\"%s\",\"size\":3,\"path\":\"%s\"},"
			  "{\"type\":\"file\",\"oid\":\"%s\",\"size\":4,\"path\":\"ok.txt\"}]",
			  SHA1A, name255, SHA1A, name256, SHA1A, long_path, SHA1A);
	cr_assert_eq(mfs_hub_tree_new(&t), 0);
	cr_assert_eq(mfs_hub_tree_add_page(t, sb.buf, sb.len), 0);
	cr_expect_eq(mfs_hub_tree_skipped(t), 2);
	cr_assert_eq(mfs_hub_tree_finish(t, &v, &n), 0);
	cr_expect_eq(n, 2, "name255 and ok.txt, got %zu", n);
	cr_expect_not_null(find(v, n, name255));
	cr_expect_not_null(find(v, n, "ok.txt"));
	for (size_t i = 0; i < n; i++)
		cr_expect(strlen(v[i].path) <= 1024);
	mfs_entries_free(v, n);
	mfs_hub_tree_free(t);
	mfs_strbuf_free(&sb);
	free(long_path);
}

/* ---------------- argument checks (no network needed) ---------------- */

static int null_sink(void *ctx, uint64_t off, const void *d, size_t len)
{
	(void)ctx;
	(void)off;
	(void)d;
	(void)len;
	return 0;
}

Test(api, invalid_arguments)
{
	struct mfs_hub_config cfg = { .endpoint = "http://127.0.0.1:9", .proxy = "" };
	struct mfs_hub *hub;
	struct mfs_repo repo = { MFS_REPO_MODEL, "org/name" };
	struct mfs_file_ref f = { &repo, SHA1A, "a.bin", 100, false };

	cr_expect_eq(mfs_hub_new(&(struct mfs_hub_config){ .endpoint = "ftp://x" }, &hub), -EINVAL);
	cr_expect_eq(mfs_hub_new(&(struct mfs_hub_config){ .endpoint = "http://h",
							    .token = "a\r\nX-Evil: 1" }, &hub), -EINVAL);
	cr_assert_eq(mfs_hub_new(&cfg, &hub), 0);
	cr_expect_eq(mfs_hub_read(hub, &f, 0, 0, null_sink, NULL), -EINVAL);
	cr_expect_eq(mfs_hub_read(hub, &f, 50, 51, null_sink, NULL), -EINVAL);
	cr_expect_eq(mfs_hub_read(hub, &f, UINT64_MAX, 2, null_sink, NULL), -EINVAL);
	f.path = "../etc/passwd";
	cr_expect_eq(mfs_hub_read(hub, &f, 0, 1, null_sink, NULL), -EINVAL);
	f.path = "a.bin";
	f.commit = "main";
	cr_expect_eq(mfs_hub_read(hub, &f, 0, 1, null_sink, NULL), -EINVAL);
	struct mfs_repo bad = { MFS_REPO_MODEL, "../x" };
	struct mfs_repo_info ri;
	cr_expect_eq(mfs_hub_repo_info(hub, &bad, "main", &ri), -EINVAL);
	cr_expect_eq(mfs_hub_org_exists(hub, MFS_REPO_MODEL, "a/b"), -EINVAL);
	mfs_hub_free(hub);
}

/* The dead-path verdict stretches with the round trip: a black hole on a
 * LAN is called within MFS_HTTP_DEAD_MS, a long healthy link is not. */
Test(deadpath, lan_black_hole_is_dead_by_the_floor)
{
	struct mfs_tcp_seen lost = { .established = true, .retransmits = 1, .unacked = 1,
				     .rtt_us = 50 };

	cr_assert(mfs_http_path_dead(&lost, MFS_HTTP_DEAD_MS, 50));
	/* an acknowledged request is a slow server, never a dead path */
	struct mfs_tcp_seen acked = { .established = true, .rtt_us = 50 };
	cr_assert_not(mfs_http_path_dead(&acked, 60000, 50));
	/* bytes in flight not yet resent: a packet may still be on its way */
	struct mfs_tcp_seen flying = { .established = true, .unacked = 1, .rtt_us = 50 };
	cr_assert_not(mfs_http_path_dead(&flying, 60000, 50));
}

Test(deadpath, a_resend_on_a_600ms_link_is_given_four_round_trips)
{
	struct mfs_tcp_seen sat = { .established = true, .retransmits = 1, .unacked = 1,
				    .rtt_us = 600000 };

	cr_assert_not(mfs_http_path_dead(&sat, 1000, 0), "a lost packet the resend repairs");
	cr_assert_not(mfs_http_path_dead(&sat, 2600, 0));
	cr_assert(mfs_http_path_dead(&sat, 2700, 0));
}

Test(deadpath, a_connect_waits_for_its_resend_unless_the_round_trip_is_known)
{
	struct mfs_tcp_seen syn = { .syn_sent = true };
	struct mfs_tcp_seen resent = { .syn_sent = true, .retransmits = 1 };

	/* nothing known about the path: a 600 ms link still connects at 0.6 s */
	cr_assert_not(mfs_http_path_dead(&syn, MFS_HTTP_DEAD_MS, 0));
	cr_assert_not(mfs_http_path_dead(&syn, 900, 0));
	/* the kernel resent the SYN (1 s without an answer) */
	cr_assert(mfs_http_path_dead(&resent, 1000, 0));
	/* a LAN path (50 us): no SYN answer within the floor is a black hole */
	cr_assert(mfs_http_path_dead(&syn, MFS_HTTP_DEAD_MS, 50));
	/* a 600 ms path learnt earlier: 4 round trips + 300 ms */
	cr_assert_not(mfs_http_path_dead(&syn, 900, 600000));
	cr_assert(mfs_http_path_dead(&syn, 2700, 600000));
}
