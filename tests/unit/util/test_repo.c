/*
 * test_repo.c - validation of repo ids, names, in-repo paths and hex ids.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/repo.h"

static bool pv(const char *s)
{
	return mfs_path_valid(s, strlen(s));
}

Test(repo, type_api)
{
	cr_assert_str_eq(mfs_repo_type_api(MFS_REPO_MODEL), "models");
	cr_assert_str_eq(mfs_repo_type_api(MFS_REPO_DATASET), "datasets");
}

Test(repo, repo_ids)
{
	const char *ok[] = { "TheOrg/tiny-llama", "a/b", "meta-llama/Llama-3.1-8B", "org_1/x.y_z-w",
			     "gpt2/gpt2" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_assert(mfs_repo_id_valid(ok[i]), "%s", ok[i]);
	const char *bad[] = { "", "noslash", "/name", "org/", "a/b/c", "org--x/name", "org/na--me",
			      ".org/name", "org/name.", "-a/b", "a/b-", "a b/c", "org/na..me", "../x",
			      "org/\xc3\xa9", "org/na:me", "org\\name" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(!mfs_repo_id_valid(bad[i]), "%s", bad[i]);
	cr_assert(!mfs_repo_id_valid(NULL));

	char name[120];
	memset(name, 'a', 96);
	name[96] = '\0';
	char id[256];
	snprintf(id, sizeof(id), "org/%s", name);
	cr_assert(mfs_repo_id_valid(id), "96 chars is the limit");
	cr_assert(mfs_repo_name_valid(name));
	name[96] = 'a';
	name[97] = '\0';
	snprintf(id, sizeof(id), "org/%s", name);
	cr_assert(!mfs_repo_id_valid(id));
	cr_assert(!mfs_repo_name_valid(name));
	cr_assert(mfs_repo_name_valid("tiny-llama"));
	cr_assert(!mfs_repo_name_valid("a/b"));
	cr_assert(!mfs_repo_name_valid(""));
	cr_assert(!mfs_repo_name_valid(NULL));
}

Test(repo, paths_valid)
{
	const char *ok[] = { "config.json", "a/b/c.txt", ".gitattributes", "dir/.hidden", "...",
			     "a/..b", "caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
			     "name with spaces", "x" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_assert(pv(ok[i]), "%s", ok[i]);
}

Test(repo, paths_invalid)
{
	const char *bad[] = {
		"", "/abs", "a//b", "a/", "./a", "a/./b", "..", "../x", "a/../b", "a/..", ".",
		"tab\there", "nl\n", "del\x7f", "esc\x1b",
		"\x80", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", /* overlongs */
		"\xed\xa0\x80", "\xed\xbf\xbf",                                      /* surrogates */
		"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xc3", "a\xe2\x82",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(!pv(bad[i]), "case %zu", i);
	cr_assert(!mfs_path_valid("a\0b", 3), "embedded NUL");
	cr_assert(!mfs_path_valid(NULL, 0));
	/* The length bounds what is checked. */
	cr_assert(mfs_path_valid("ab/../x", 2));
}

Test(repo, path_limits)
{
	char *p = malloc(MFS_PATH_MAX + 2);
	memset(p, 'a', MFS_PATH_MAX + 1);
	cr_assert(mfs_path_valid(p, MFS_PATH_MAX));
	cr_assert(!mfs_path_valid(p, MFS_PATH_MAX + 1));
	/* Depth: "a/a/.../a" with exactly MFS_DEPTH_MAX components, then one more. */
	size_t n = 0;
	for (int i = 0; i < MFS_DEPTH_MAX; i++) {
		p[n++] = 'a';
		p[n++] = '/';
	}
	cr_assert(mfs_path_valid(p, n - 1));
	p[n] = 'a';
	cr_assert(!mfs_path_valid(p, n + 1));
	free(p);
}

Test(repo, hex)
{
	cr_assert(mfs_hex_valid("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", 40));
	cr_assert(mfs_hex_valid("E69DE29BB2D1D6434B8B29AE775AD8C2E48C5391", 40));
	cr_assert(mfs_hex_valid("9be78edb0123456789abcdef0123456789abcdef0123456789abcdef01235436", 64));
	cr_assert(!mfs_hex_valid("e69de29bb2d1d6434b8b29ae775ad8c2e48c539", 40));
	cr_assert(!mfs_hex_valid("e69de29bb2d1d6434b8b29ae775ad8c2e48c53911", 40));
	cr_assert(!mfs_hex_valid("g69de29bb2d1d6434b8b29ae775ad8c2e48c5391", 40));
	cr_assert(!mfs_hex_valid("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", 64));
	cr_assert(!mfs_hex_valid("abc", 3), "only 40 and 64 are digest lengths");
	cr_assert(!mfs_hex_valid(NULL, 40));
}

Test(repo, entries_free)
{
	struct mfs_entry *e = calloc(3, sizeof(*e));
	for (int i = 0; i < 3; i++)
		e[i].path = strdup("some/path");
	e[1].sha256[0] = 'a';
	cr_assert_eq(mfs_entry_content_id(&e[1]), e[1].sha256);
	cr_assert_eq(mfs_entry_content_id(&e[0]), e[0].oid);
	mfs_entries_free(e, 3); /* leaks would fail the sanitizer build */
	mfs_entries_free(NULL, 0);
}
